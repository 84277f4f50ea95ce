//! The last seen tip of every followed ref of every watched repository, in tree `tips`,
//! so a restarted server neither re-runs old commits nor misses one pushed while it was
//! down.
//!
//! | key                                | value          |
//! |------------------------------------|----------------|
//! | `<repository key> 0x00`            | [`RepositorySeen`]: the repository has been fetched once |
//! | `<repository key> 0x00 <ref name>` | [`TipRecord`]  |
//!
//! The repository key is the caller's (the server uses `PIPELINE/NAME`, so two pipelines
//! following one URL each see every change); it must not contain a NUL byte.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::store::Store;

/// A repository has been seen: its tips below are a baseline, even when there are none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepositorySeen {
    /// When the tips were last replaced (RFC 3339).
    pub updated_at: String,
}

/// The last seen commit of one followed ref.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TipRecord {
    /// The commit under test (a tag's peeled commit), hex.
    pub commit: String,
    pub recorded_at: String,
}

/// Repository keys come from checked names; an empty one or one with a NUL byte would
/// break the key layout, so it is refused.
fn bad_key(key: &str) -> StoreError {
    StoreError::Io(sled::Error::Unsupported(format!(
        "{:?} cannot name a watched repository or ref",
        key
    )))
}

use super::encoding::{decode, encode};

fn prefix(repository: &str) -> Result<Vec<u8>, StoreError> {
    if repository.is_empty() || repository.contains('\0') {
        return Err(bad_key(repository));
    }
    let mut key = repository.as_bytes().to_vec();
    key.push(0);
    Ok(key)
}

impl Store {
    /// The stored tips of `repository` (ref name → commit), or `None` if it was never
    /// seen: the first fetch is then a baseline, not a list of new commits.
    pub fn tips(&self, repository: &str) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let prefix = prefix(repository)?;
        let mut seen = false;
        let mut tips = BTreeMap::new();
        for entry in self.tips.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let name = &k[prefix.len()..];
            if name.is_empty() {
                let _: RepositorySeen = decode(&k, &v)?;
                seen = true;
            } else {
                let tip: TipRecord = decode(&k, &v)?;
                tips.insert(String::from_utf8_lossy(name).to_string(), tip.commit);
            }
        }
        Ok(seen.then_some(tips))
    }

    /// Replaces all tips of `repository` at once (one sled batch, flushed before this
    /// returns): refs not in `tips` are forgotten.
    pub fn replace_tips(
        &self,
        repository: &str,
        tips: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let prefix = prefix(repository)?;
        self.room(super::space::RESERVE)?;
        let now = crate::clock::now();
        let mut batch = sled::Batch::default();
        for entry in self.tips.scan_prefix(&prefix) {
            let (k, _) = entry?;
            batch.remove(k);
        }
        let seen = RepositorySeen {
            updated_at: now.clone(),
        };
        batch.insert(prefix.clone(), encode(&prefix, &seen)?);
        for (name, commit) in tips {
            let mut key = prefix.clone();
            key.extend_from_slice(name.as_bytes());
            let tip = TipRecord {
                commit: commit.clone(),
                recorded_at: now.clone(),
            };
            let value = encode(&key, &tip)?;
            batch.insert(key, value);
        }
        self.tips.apply_batch(batch)?;
        self.flush()
    }

    /// Records one ref's tip (`None`: the ref is gone), flushed before this returns. For a
    /// server that moves a tip only once the run it asked for is queued.
    pub fn set_tip(
        &self,
        repository: &str,
        name: &str,
        commit: Option<&str>,
    ) -> Result<(), StoreError> {
        let prefix = prefix(repository)?;
        self.room(super::space::RESERVE)?;
        if name.is_empty() {
            return Err(bad_key(name));
        }
        let now = crate::clock::now();
        let mut key = prefix.clone();
        key.extend_from_slice(name.as_bytes());
        let mut batch = sled::Batch::default();
        let seen = RepositorySeen {
            updated_at: now.clone(),
        };
        batch.insert(prefix.clone(), encode(&prefix, &seen)?);
        match commit {
            Some(commit) => {
                let tip = TipRecord {
                    commit: commit.to_string(),
                    recorded_at: now,
                };
                let value = encode(&key, &tip)?;
                batch.insert(key, value);
            }
            None => batch.remove(key),
        }
        self.tips.apply_batch(batch)?;
        self.flush()
    }

    /// The keys of every repository with stored tips, sorted.
    pub fn watched_repositories(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tips.iter() {
            let (k, _) = entry?;
            if let Some(repository) = k.strip_suffix(&[0]) {
                out.push(String::from_utf8_lossy(repository).to_string());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn tips_are_replaced_set_and_kept_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.tips("p/product").unwrap(), None);
            store.replace_tips("p/product", &map(&[])).unwrap();
            assert_eq!(store.tips("p/product").unwrap(), Some(map(&[])));
            store
                .replace_tips(
                    "p/product",
                    &map(&[("refs/heads/main", "aa"), ("refs/heads/old", "bb")]),
                )
                .unwrap();
            store
                .replace_tips("p/product", &map(&[("refs/heads/main", "cc")]))
                .unwrap();
            store
                .set_tip("p/product", "refs/tags/v1", Some("dd"))
                .unwrap();
            store
                .set_tip("p/tools", "refs/heads/main", Some("ee"))
                .unwrap();
            store.set_tip("p/tools", "refs/heads/main", None).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.tips("p/product").unwrap(),
            Some(map(&[("refs/heads/main", "cc"), ("refs/tags/v1", "dd")]))
        );
        assert_eq!(store.tips("p/tools").unwrap(), Some(map(&[])));
        // A key that is a prefix of another is its own repository.
        assert_eq!(store.tips("p/prod").unwrap(), None);
        assert_eq!(
            store.watched_repositories().unwrap(),
            vec!["p/product".to_string(), "p/tools".to_string()]
        );
    }

    #[test]
    fn bad_repository_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        assert!(store.tips("a\0b").is_err());
        assert!(store.tips("").is_err());
        assert!(store.set_tip("a", "", Some("x")).is_err());
    }
}
