//! Releases: runs a person named (`lowtouch release NAME`), tree `releases`, key the name.
//! A run whose revision carries a release tag is a release too; that is read from git
//! where it is needed (`compare::history`), not stored.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub name: String,
    pub run_id: String,
    /// When it was named.
    pub at: String,
}

impl Store {
    /// Names run `run_id` a release. A name is given once: naming it again is refused
    /// (`Ok(Some(existing))`).
    pub fn put_release(
        &self,
        name: &str,
        run_id: &str,
        at: &str,
    ) -> Result<Option<ReleaseRecord>, StoreError> {
        if let Some(existing) = self.release(name)? {
            return Ok(Some(existing));
        }
        let record = ReleaseRecord {
            name: name.to_string(),
            run_id: run_id.to_string(),
            at: at.to_string(),
        };
        let bytes = super::encoding::encode(name.as_bytes(), &record)?;
        self.room(super::space::RESERVE)?;
        self.releases.insert(name.as_bytes(), bytes)?;
        self.releases.flush()?;
        Ok(None)
    }

    pub fn release(&self, name: &str) -> Result<Option<ReleaseRecord>, StoreError> {
        match self.releases.get(name.as_bytes())? {
            Some(bytes) => Ok(Some(Store::decode_record(name.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        let mut out = Vec::new();
        for entry in self.releases.iter() {
            let (k, v) = entry?;
            out.push(Store::decode_record(&k, &v)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_name_is_given_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        assert_eq!(store.put_release("v1.4.0", "run-a", "t1").unwrap(), None);
        let again = store.put_release("v1.4.0", "run-b", "t2").unwrap().unwrap();
        assert_eq!(again.run_id, "run-a");
        assert_eq!(store.releases().unwrap().len(), 1);
    }
}
