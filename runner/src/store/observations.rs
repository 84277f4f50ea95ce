//! The data processor's part of the store: events and metric samples as time series,
//! tree `observations`, key `<environment> 0x00 <time µs, u64 BE, offset> <daemon> 0x00
//! <n u32 BE>` — so one environment's observations of a time range are one range scan,
//! in time order. A run's observations are its environments' in its time range.
//!
//! Exactly once across a server restart: each daemon numbers what it sends, and the
//! tree also holds, per daemon process (`boot`), the next number it expects, under keys
//! starting with 0xff (no environment name does). A batch of observations and the marks
//! they move are one atomic sled batch, so a crash stores either both or neither.

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::store::Store;

/// One stored observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationRecord {
    /// On the management server's timeline, µs since the epoch.
    pub at_us: i64,
    pub environment: String,
    pub daemon: String,
    /// The component, or `system`.
    pub source: String,
    /// `event` or `metric`.
    pub kind: String,
    pub name: String,
    /// An event's value.
    #[serde(default)]
    pub text: Option<String>,
    /// A metric's value.
    #[serde(default)]
    pub number: Option<f64>,
}

/// Environment → (daemon, source, name) → the newest sample stored by this process.
pub type Latest = std::collections::HashMap<
    String,
    std::collections::BTreeMap<(String, String, String), crate::record::Sample>,
>;

/// Times sort as unsigned big-endian: shift the sign away.
fn time_key(at_us: i64) -> [u8; 8] {
    ((at_us as i128 - i64::MIN as i128) as u64).to_be_bytes()
}

/// The first byte of a mark's key: never the first byte of UTF-8 text.
const MARK: u8 = 0xff;

/// The first byte of a metric chunk's key (`store::chunk`): `0xfd <environment> 0x00 <µs of
/// its first sample> <daemon> 0x00 <n u32 BE>`.
const CHUNK: u8 = 0xfd;

/// The first byte of the events index (an event's key again, behind it): what waits and
/// reports read, without the metric samples around them. Also never UTF-8.
const EVENT: u8 = 0xfe;

/// An observation's key: environment, time, daemon, n.
fn key_of(o: &ObservationRecord, n: u32) -> Vec<u8> {
    let mut key = prefix(&o.environment);
    key.extend_from_slice(&time_key(o.at_us));
    key.extend_from_slice(o.daemon.as_bytes());
    key.push(0);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

fn event_key(observation_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(observation_key.len() + 1);
    k.push(EVENT);
    k.extend_from_slice(observation_key);
    k
}

fn mark_key(environment: &str, daemon: &str, boot: &str) -> Vec<u8> {
    let mut k = vec![MARK];
    k.extend_from_slice(format!("{environment}\0{daemon}\0{boot}").as_bytes());
    k
}

fn prefix(environment: &str) -> Vec<u8> {
    let mut k = environment.as_bytes().to_vec();
    k.push(0);
    k
}

impl Store {
    /// Stores one observation. `n` tells apart observations of one daemon at the same
    /// microsecond (the order they came in).
    pub fn put_observation(&self, o: &ObservationRecord, n: u32) -> Result<(), StoreError> {
        self.put_observations(&[(o.clone(), n)], &[])
    }

    /// Stores a batch of observations — each with its `n` — and moves the marks of the
    /// daemon processes they came from (`(environment, daemon, boot)` → next expected
    /// sequence number), atomically. [`Store::flush_observations`] makes it durable.
    pub fn put_observations(
        &self,
        items: &[(ObservationRecord, u32)],
        marks: &[((String, String, String), u64)],
    ) -> Result<(), StoreError> {
        let mut batch = self.chunk_batch(items);
        for (o, n) in items {
            if o.kind == "metric" && o.number.is_some() {
                continue;
            }
            let key = key_of(o, *n);
            if o.kind == "event" {
                batch.insert(event_key(&key), &[][..]);
            }
            let bytes = super::encoding::encode(&key, o)?;
            batch.insert(key, bytes);
        }
        for ((env, daemon, boot), next) in marks {
            batch.insert(mark_key(env, daemon, boot), &next.to_be_bytes()[..]);
        }
        super::space::room(self.path(), super::space::RESERVE)?;
        self.detail()?.observations.apply_batch(batch)?;
        // The newest sample of each series in the batch, found without copying names.
        let mut newest: std::collections::HashMap<(&str, &str, &str, &str), &ObservationRecord> =
            std::collections::HashMap::new();
        for (o, _) in items.iter().filter(|(o, _)| o.number.is_some()) {
            let key = (
                o.environment.as_str(),
                o.daemon.as_str(),
                o.source.as_str(),
                o.name.as_str(),
            );
            match newest.get(&key) {
                Some(seen) if seen.at_us > o.at_us => {}
                _ => {
                    newest.insert(key, o);
                }
            }
        }
        for o in newest.into_values() {
            self.remember_latest(o);
        }
        Ok(())
    }

    /// A batch holding the metric samples among `items` as chunks, one daemon's at a time
    /// (see `store::chunk`).
    pub(super) fn chunk_batch(&self, items: &[(ObservationRecord, u32)]) -> sled::Batch {
        let mut batch = sled::Batch::default();
        // Metric samples go into chunks, one daemon's at a time (see `store::chunk`).
        let mut metrics: std::collections::BTreeMap<(&str, &str), Vec<(&ObservationRecord, u32)>> =
            std::collections::BTreeMap::new();
        for (o, n) in items {
            if let (Some(_), "metric") = (o.number, o.kind.as_str()) {
                metrics
                    .entry((o.environment.as_str(), o.daemon.as_str()))
                    .or_default()
                    .push((o, *n));
            }
        }
        for ((environment, daemon), mut samples) in metrics {
            samples.sort_by_key(|(o, n)| (o.at_us, *n));
            let mut rest = &samples[..];
            while let Some((first, first_n)) = rest.first() {
                let len = rest
                    .iter()
                    .position(|(o, _)| o.at_us - first.at_us > super::chunk::MAX_SPAN_US)
                    .unwrap_or(rest.len());
                let (chunk, after) = rest.split_at(len);
                let encoded: Vec<super::chunk::Sample<'_>> = chunk
                    .iter()
                    .map(|(o, _)| {
                        (
                            o.source.as_str(),
                            o.name.as_str(),
                            o.at_us,
                            o.number.unwrap_or_default(),
                        )
                    })
                    .collect();
                let mut key = vec![CHUNK];
                key.extend_from_slice(&prefix(environment));
                key.extend_from_slice(&time_key(first.at_us));
                key.extend_from_slice(daemon.as_bytes());
                key.push(0);
                key.extend_from_slice(&first_n.to_be_bytes());
                batch.insert(key, super::chunk::encode(&encoded));
                rest = after;
            }
        }
        batch
    }

    /// One environment's events from `from_us` to `to_us` (inclusive), in time order:
    /// read through the events index, however many metric samples lie between them.
    pub fn events(
        &self,
        environment: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<ObservationRecord>, StoreError> {
        let mut start = vec![EVENT];
        start.extend_from_slice(&prefix(environment));
        start.extend_from_slice(&time_key(from_us));
        let mut end = vec![EVENT];
        end.extend_from_slice(&prefix(environment));
        end.extend_from_slice(&time_key(to_us.saturating_add(1)));
        let mut out = Vec::new();
        for entry in self.detail()?.observations.range(start..end) {
            let (k, _) = entry?;
            if let Some(v) = self.detail()?.observations.get(&k[1..])? {
                out.push(Store::decode_record(&k[1..], &v)?);
            }
        }
        Ok(out)
    }

    /// Waits until what was stored is on disk: only then are the daemons told it is.
    pub async fn flush_observations(&self) -> Result<(), StoreError> {
        self.detail()?.observations.flush_async().await?;
        Ok(())
    }

    /// Every daemon process's mark: `(environment, daemon, boot)` → the next sequence
    /// number not stored yet.
    pub fn inbox_marks(
        &self,
    ) -> Result<std::collections::HashMap<(String, String, String), u64>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for entry in self.detail()?.observations.scan_prefix([MARK]) {
            let (k, v) = entry?;
            let text = String::from_utf8_lossy(&k[1..]).into_owned();
            let mut parts = text.split('\0');
            let (Some(env), Some(daemon), Some(boot)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(bytes) = <[u8; 8]>::try_from(&v[..]) else {
                continue;
            };
            out.insert(
                (env.to_string(), daemon.to_string(), boot.to_string()),
                u64::from_be_bytes(bytes),
            );
        }
        Ok(out)
    }

    fn remember_latest(&self, o: &ObservationRecord) {
        let Some(value) = o.number else { return };
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let series = latest.entry(o.environment.clone()).or_default();
        let key = (o.daemon.clone(), o.source.clone(), o.name.clone());
        if series.get(&key).is_none_or(|s| s.at_us <= o.at_us) {
            series.insert(
                key,
                crate::record::Sample {
                    daemon: o.daemon.clone(),
                    source: o.source.clone(),
                    name: o.name.clone(),
                    value,
                    at_us: o.at_us,
                },
            );
        }
    }

    /// The newest sample of each metric of `environment` that this process stored.
    pub fn latest_metrics(&self, environment: &str) -> Vec<crate::record::Sample> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(environment)
            .map(|series| series.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One environment's observations from `from_us` to `to_us` (inclusive), in time order.
    pub fn observations(
        &self,
        environment: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<ObservationRecord>, StoreError> {
        let mut start = prefix(environment);
        start.extend_from_slice(&time_key(from_us));
        let mut end = prefix(environment);
        end.extend_from_slice(&time_key(to_us.saturating_add(1)));
        let mut out = Vec::new();
        for entry in self.detail()?.observations.range(start..end) {
            let (k, v) = entry?;
            out.push(Store::decode_record(&k, &v)?);
        }
        // Metric chunks that may hold samples of the range: those begun up to a chunk's
        // span before it.
        let mut start = vec![CHUNK];
        start.extend_from_slice(&prefix(environment));
        start.extend_from_slice(&time_key(from_us.saturating_sub(super::chunk::MAX_SPAN_US)));
        let mut end = vec![CHUNK];
        end.extend_from_slice(&prefix(environment));
        end.extend_from_slice(&time_key(to_us.saturating_add(1)));
        let daemon_at = 1 + environment.len() + 1 + 8;
        let mut samples = Vec::new();
        for entry in self.detail()?.observations.range(start..end) {
            let (k, v) = entry?;
            let daemon = k
                .get(daemon_at..)
                .and_then(|rest| rest.split(|b| *b == 0).next())
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .unwrap_or_default();
            let decoded = super::chunk::decode(&v).map_err(|e| StoreError::Damaged {
                key: String::from_utf8_lossy(&k).into_owned(),
                why: e.to_string(),
            })?;
            for (source, name, at_us, value) in decoded {
                if (from_us..=to_us).contains(&at_us) {
                    samples.push(ObservationRecord {
                        at_us,
                        environment: environment.to_string(),
                        daemon: daemon.clone(),
                        source,
                        kind: "metric".into(),
                        name,
                        text: None,
                        number: Some(value),
                    });
                }
            }
        }
        if !samples.is_empty() {
            out.extend(samples);
            // Stable: what arrived together stays in its order.
            out.sort_by_key(|o| o.at_us);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(env: &str, at_us: i64, name: &str) -> ObservationRecord {
        ObservationRecord {
            at_us,
            environment: env.into(),
            daemon: "matching".into(),
            source: "MatchingEnginePrimary".into(),
            kind: "event".into(),
            name: name.into(),
            text: Some("READY".into()),
            number: None,
        }
    }

    #[test]
    fn the_events_index_holds_the_events_alone_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let mut items = Vec::new();
        for i in 0..1000u32 {
            let mut o = obs("local", 1000 - i as i64, &format!("m{i}"));
            if i % 250 != 7 {
                o.kind = "metric".into();
                o.text = None;
                o.number = Some(i as f64);
            }
            items.push((o, i));
        }
        store.put_observations(&items, &[]).unwrap();
        store
            .put_observation(&obs("local-2", 500, "other"), 0)
            .unwrap();
        let events: Vec<String> = store
            .events("local", i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(events, vec!["m757", "m507", "m257", "m7"]);
        assert_eq!(store.events("local", 0, 500).unwrap().len(), 2);
        assert_eq!(
            store
                .observations("local", i64::MIN, i64::MAX)
                .unwrap()
                .len(),
            1000
        );
    }

    #[test]
    fn a_time_range_of_one_environment_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        for (i, at) in [30, -5, 10, 20, 10].iter().enumerate() {
            store
                .put_observation(&obs("local", *at, &format!("e{i}")), i as u32)
                .unwrap();
        }
        store
            .put_observation(&obs("uat-1", 15, "other"), 0)
            .unwrap();
        store
            .put_observation(&obs("local-2", 15, "prefix"), 0)
            .unwrap();
        let got: Vec<String> = store
            .observations("local", 0, 20)
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(got, vec!["e2", "e4", "e3"]);
        assert_eq!(
            store
                .observations("local", i64::MIN, i64::MAX)
                .unwrap()
                .len(),
            5
        );
    }
}
