//! The data processor's part of the store: events and metric samples as time series,
//! tree `observations`, key `<environment> 0x00 <time µs, u64 BE, offset> <daemon> 0x00
//! <n u32 BE>` — so one environment's observations of a time range are one range scan,
//! in time order. A run's observations are its environments' in its time range.

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::records::SCHEMA_VERSION;
use super::store::Store;

/// One stored observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationRecord {
    pub v: u32,
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
    std::collections::BTreeMap<(String, String, String), super::records::Sample>,
>;

/// Times sort as unsigned big-endian: shift the sign away.
fn time_key(at_us: i64) -> [u8; 8] {
    ((at_us as i128 - i64::MIN as i128) as u64).to_be_bytes()
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
        let mut key = prefix(&o.environment);
        key.extend_from_slice(&time_key(o.at_us));
        key.extend_from_slice(o.daemon.as_bytes());
        key.push(0);
        key.extend_from_slice(&n.to_be_bytes());
        let mut record = o.clone();
        record.v = SCHEMA_VERSION;
        self.put_record(&self.observations, &key, &record)?;
        if let Some(value) = o.number {
            let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            let series = latest.entry(o.environment.clone()).or_default();
            let key = (o.daemon.clone(), o.source.clone(), o.name.clone());
            if series.get(&key).is_none_or(|s| s.at_us <= o.at_us) {
                series.insert(
                    key,
                    super::records::Sample {
                        daemon: o.daemon.clone(),
                        source: o.source.clone(),
                        name: o.name.clone(),
                        value,
                        at_us: o.at_us,
                    },
                );
            }
        }
        Ok(())
    }

    /// The newest sample of each metric of `environment` that this process stored.
    pub fn latest_metrics(&self, environment: &str) -> Vec<super::records::Sample> {
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
        for entry in self.observations.range(start..end) {
            let (k, v) = entry?;
            out.push(Store::decode_record(&k, &v)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(env: &str, at_us: i64, name: &str) -> ObservationRecord {
        ObservationRecord {
            v: 0,
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
