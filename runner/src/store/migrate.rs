//! Bringing a store written by an older lowtouch up to this one's schema, when it opens.
//! Every step is idempotent, so a migration a crash cut short carries on at the next
//! open; the version moves last.
//!
//! - 2 → 3: scenarios, steps, artifacts and observations move out of the catalog into the
//!   detail database (`store::detail`): copied in batches, made durable, then dropped from
//!   the catalog. The catalog's files keep their size until `lowtouch gc` compacts them.
//! - 1 → 2: metric samples move from one JSON record each into chunks (`store::chunk`),
//!   and every event gets its entry in the events index. Done in batches, each atomic
//!   (a chunk written and its records removed together). Run after 2 → 3 (on the moved
//!   observations): it does not care which database holds them.

use super::observations::ObservationRecord;
use super::{Store, StoreError};

/// Migrates `store` from `found` to the current version; returns what it did, for the
/// person who opened it.
pub fn migrate(store: &Store, found: u32) -> Result<Option<String>, StoreError> {
    if found >= crate::record::SCHEMA_VERSION {
        return Ok(None);
    }
    // It copies records: on a full disk it waits (this lowtouch cannot read the old layout).
    store.room(super::space::RESERVE)?;
    let mut did = Vec::new();
    if found < 3 {
        let moved = trees_into_detail(store)?;
        did.push(format!(
            "{moved} records moved into {} (`lowtouch gc` gives the space they held back)",
            super::detail::path_of(store.path()).display()
        ));
    }
    if found < 2 {
        let (samples, events) = metrics_into_chunks(store)?;
        did.push(format!(
            "{samples} metric samples into chunks, {events} events indexed"
        ));
    }
    Ok(Some(format!(
        "migrated the store from schema {found} to {}: {}",
        crate::record::SCHEMA_VERSION,
        did.join("; ")
    )))
}

fn trees_into_detail(store: &Store) -> Result<usize, StoreError> {
    const BATCH: usize = 4096;
    let detail = store.detail()?;
    let names = store.db.tree_names();
    let mut moved = 0;
    for name in super::detail::TREES {
        if !names.iter().any(|n| n == name.as_bytes()) {
            continue;
        }
        let from = store.db.open_tree(name)?;
        let to = detail.tree(name);
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for entry in from.iter() {
            let (k, v) = entry?;
            batch.insert(k, v);
            in_batch += 1;
            if in_batch == BATCH {
                to.apply_batch(std::mem::take(&mut batch))?;
                moved += in_batch;
                in_batch = 0;
            }
        }
        to.apply_batch(batch)?;
        moved += in_batch;
        // Durable in the detail before it goes from the catalog.
        detail.db.flush()?;
        store.db.drop_tree(name)?;
        store.db.flush()?;
    }
    Ok(moved)
}

fn metrics_into_chunks(store: &Store) -> Result<(usize, usize), StoreError> {
    const BATCH: usize = 4096;
    let tree = &store.detail()?.observations;
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
