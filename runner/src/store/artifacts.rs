//! A run's artifacts: the tail of each component's log and the rendered configs it ran
//! against, kept with the run (tree `artifacts`, key `<run id> 0x00 <name>`, the bytes as
//! they were, at most [`MAX_ARTIFACT`] each). The output of its steps is in their records.

use super::{Store, StoreError};

/// The most bytes kept of one artifact (the end of it, for a log).
pub const MAX_ARTIFACT: usize = 256 * 1024;

fn key(run_id: &str, name: &str) -> Vec<u8> {
    let mut k = run_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

impl Store {
    pub fn put_artifact(&self, run_id: &str, name: &str, content: &[u8]) -> Result<(), StoreError> {
        let kept = &content[content.len().saturating_sub(MAX_ARTIFACT)..];
        super::space::room(self.path(), super::space::RESERVE)?;
        self.detail()?.artifacts.insert(key(run_id, name), kept)?;
        Ok(())
    }

    /// A run's artifacts: name and size.
    pub fn artifacts(&self, run_id: &str) -> Result<Vec<(String, usize)>, StoreError> {
        let prefix = key(run_id, "");
        let mut out = Vec::new();
        for entry in self.detail()?.artifacts.scan_prefix(&prefix) {
            let (k, v) = entry?;
            out.push((
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                v.len(),
            ));
        }
        Ok(out)
    }

    pub fn artifact(&self, run_id: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .detail()?
            .artifacts
            .get(key(run_id, name))?
            .map(|v| v.to_vec()))
    }
}
