//! What the judge keeps per run, in the detail tree `judged`: the run's features (key
//! `<run id> 0x00 f`) and its whole verdict (`<run id> 0x00 v`), so a verdict can be
//! explained and recomputed later; the short form goes on the run's record
//! ([`crate::record::Judgement`]), where baselines and history read it.
//!
//! The store knows these only as serde values: their shape is the judge's.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError};
use crate::record::RunRecord;

fn key(run_id: &str, what: u8) -> Vec<u8> {
    let mut k = run_id.as_bytes().to_vec();
    k.push(0);
    k.push(what);
    k
}

const FEATURES: u8 = b'f';
const VERDICT: u8 = b'v';

impl Store {
    pub fn put_features<T: Serialize>(&self, run_id: &str, features: &T) -> Result<(), StoreError> {
        self.put(&self.detail()?.judged, &key(run_id, FEATURES), features)
    }

    pub fn features<T: DeserializeOwned>(&self, run_id: &str) -> Result<Option<T>, StoreError> {
        let k = key(run_id, FEATURES);
        match self.detail()?.judged.get(&k)? {
            Some(bytes) => Ok(Some(Store::decode_record(&k, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Stores a run's verdict and its short form on the run's record, durably: the
    /// detail first, so a record that says it was judged has its verdict.
    pub fn put_verdict<T: Serialize>(
        &self,
        run: &RunRecord,
        verdict: &T,
    ) -> Result<(), StoreError> {
        let detail = self.detail()?;
        self.put(&detail.judged, &key(&run.id, VERDICT), verdict)?;
        detail.db.flush()?;
        self.put_within(
            &self.runs,
            run.id.as_bytes(),
            run,
            super::space::FINAL_RESERVE,
        )?;
        self.db.flush()?;
        Ok(())
    }

    pub fn verdict<T: DeserializeOwned>(&self, run_id: &str) -> Result<Option<T>, StoreError> {
        let k = key(run_id, VERDICT);
        match self.detail()?.judged.get(&k)? {
            Some(bytes) => Ok(Some(Store::decode_record(&k, &bytes)?)),
            None => Ok(None),
        }
    }
}
