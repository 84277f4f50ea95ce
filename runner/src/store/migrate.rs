//! Bringing a store written by an older lowtouch up to this one's schema, when it opens.
//!
//! - 1 → 2: metric samples move from one JSON record each into chunks (`store::chunk`),
//!   and every event gets its entry in the events index. Done in batches, each atomic
//!   (a chunk written and its records removed together), and idempotent: a migration a
//!   crash cut short carries on at the next open; the version moves last.

use super::observations::ObservationRecord;
use super::{Store, StoreError};

/// Migrates `store` from `found` to the current version; returns what it did, for the
/// person who opened it.
pub fn migrate(store: &Store, found: u32) -> Result<Option<String>, StoreError> {
    if found >= 2 {
        return Ok(None);
    }
    let (samples, events) = metrics_into_chunks(store)?;
    Ok(Some(format!(
        "migrated the store from schema {found} to 2: {samples} metric samples into chunks, {events} events indexed"
    )))
}

fn metrics_into_chunks(store: &Store) -> Result<(usize, usize), StoreError> {
    const BATCH: usize = 4096;
    let tree = &store.observations;
    let (mut samples, mut events) = (0, 0);
    loop {
        // One batch of per-record observations (keys not behind 0xfd, 0xfe or 0xff).
        let mut metrics: Vec<(sled::IVec, ObservationRecord)> = Vec::new();
        let mut indexed = sled::Batch::default();
        let mut seen = 0;
        for entry in tree.iter() {
            let (k, v) = entry?;
            if matches!(k.first(), Some(0xfd..=0xff)) {
                continue;
            }
            let record: ObservationRecord = Store::decode_record(&k, &v)?;
            if record.kind == "event" {
                let mut index = vec![0xfe];
                index.extend_from_slice(&k);
                if tree.get(&index)?.is_none() {
                    indexed.insert(index, &[][..]);
                    events += 1;
                    seen += 1;
                }
            } else if record.number.is_some() {
                metrics.push((k, record));
                seen += 1;
            }
            if seen >= BATCH {
                break;
            }
        }
        if seen == 0 {
            return Ok((samples, events));
        }
        tree.apply_batch(indexed)?;
        if metrics.is_empty() {
            continue;
        }
        // The records' own numbers (the key's last 4 bytes) keep chunk keys apart.
        let n_of = |k: &[u8]| {
            k.get(k.len().saturating_sub(4)..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, u32::from_be_bytes)
        };
        let items: Vec<(ObservationRecord, u32)> =
            metrics.iter().map(|(k, r)| (r.clone(), n_of(k))).collect();
        samples += items.len();
        // Chunks in, records out: one atomic batch.
        let mut batch = store.chunk_batch(&items);
        for (k, _) in &metrics {
            batch.remove(k.clone());
        }
        tree.apply_batch(batch)?;
    }
}
