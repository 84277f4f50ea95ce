//! Who may use an environment: a tester's lock or pause (`lowtouch lock`, `pause`), and
//! the lease a run holds while it uses it. One environment never runs two pipelines at
//! once; a lease whose process is gone (a crash) is released when the store opens.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvControl {
    /// Paused: the server schedules nothing on it; a person may still run it.
    pub paused: bool,
    pub paused_at: Option<String>,
    /// Locked: a tester has it for manual work; nothing is scheduled on it meanwhile.
    pub lock: Option<EnvLock>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvLock {
    pub by: String,
    pub reason: String,
    pub since: String,
}

impl EnvControl {
    /// Why the server must leave the environment alone, if it must.
    pub fn hold(&self) -> Option<String> {
        match (&self.lock, self.paused) {
            (Some(l), _) => Some(format!(
                "locked by {} since {}: {}",
                l.by, l.since, l.reason
            )),
            (None, true) => Some(format!(
                "paused since {}",
                self.paused_at.as_deref().unwrap_or("?")
            )),
            (None, false) => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    pub environment: String,
    pub run_id: String,
    pub pipelines: Vec<String>,
    pub pid: u32,
    pub since: String,
}

use super::encoding::{decode, encode};

impl Store {
    pub fn control(&self, env: &str) -> Result<EnvControl, StoreError> {
        Ok(match self.control.get(env.as_bytes())? {
            Some(bytes) => decode(env.as_bytes(), &bytes)?,
            None => EnvControl {
                ..Default::default()
            },
        })
    }

    /// Writes an environment's control record, flushed before this returns.
    pub fn set_control(&self, env: &str, control: &EnvControl) -> Result<(), StoreError> {
        self.room(super::space::RESERVE)?;
        self.control
            .insert(env.as_bytes(), encode(env.as_bytes(), control)?)?;
        self.flush()
    }

    /// Takes the environment for a run. Returns the holder when another run has it.
    pub fn take_lease(&self, lease: &Lease) -> Result<Option<Lease>, StoreError> {
        let key = lease.environment.as_bytes();
        let value = encode(lease.environment.as_bytes(), lease)?;
        self.room(super::space::RESERVE)?;
        if let Some(bytes) = self.leases.get(key)? {
            let held: Lease = decode(key, &bytes)?;
            if self.lease_is_stale(&held, false)? {
                self.leases.remove(key)?;
            }
        }
        match self
            .leases
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))?
        {
            Ok(()) => {
                self.flush()?;
                Ok(None)
            }
            Err(current) => match current.current {
                Some(bytes) => Ok(Some(decode(key, &bytes)?)),
                None => Ok(None),
            },
        }
    }

    pub fn release_lease(&self, env: &str, run_id: &str) -> Result<(), StoreError> {
        if let Some(bytes) = self.leases.get(env.as_bytes())? {
            let lease: Lease = decode(env.as_bytes(), &bytes)?;
            if lease.run_id == run_id {
                self.room(super::space::FINAL_RESERVE)?;
                self.leases.remove(env.as_bytes())?;
                self.flush()?;
            }
        }
        Ok(())
    }

    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let mut out = Vec::new();
        for entry in self.leases.iter() {
            let (k, v) = entry?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// The verdict last posted to GitHub for a commit and context.
    pub fn posted_status(&self, sha: &str, context: &str) -> Result<Option<String>, StoreError> {
        let key = [sha.as_bytes(), &[0], context.as_bytes()].concat();
        Ok(self
            .statuses
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn record_posted_status(
        &self,
        sha: &str,
        context: &str,
        verdict: &str,
    ) -> Result<(), StoreError> {
        let key = [sha.as_bytes(), &[0], context.as_bytes()].concat();
        self.room(super::space::RESERVE)?;
        self.statuses.insert(key, verdict.as_bytes())?;
        self.flush()
    }

    /// Whether a lease outlived its run: its process is gone (a crash; at open, a lease
    /// with this process's pid is an earlier process's that had the same pid), or its run
    /// is stored finished (a release that could not be written, in a server that lives on).
    fn lease_is_stale(&self, lease: &Lease, at_open: bool) -> Result<bool, StoreError> {
        let ours = lease.pid == std::process::id();
        let gone = !std::path::Path::new(&format!("/proc/{}", lease.pid)).exists();
        if (ours && at_open) || (!ours && gone) {
            return Ok(true);
        }
        Ok(self
            .run(&lease.run_id)?
            .is_some_and(|r| r.status != crate::record::Status::Running))
    }

    /// Releases the leases that outlived their runs (on a full disk: later).
    pub(super) fn release_stale_leases(&self) -> Result<(), StoreError> {
        if self.room(super::space::FINAL_RESERVE).is_err() {
            return Ok(());
        }
        for lease in self.leases()? {
            if self.lease_is_stale(&lease, true)? {
                self.leases.remove(lease.environment.as_bytes())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_exclude_and_crashed_ones_are_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let lease = |run: &str, pid: u32| Lease {
            environment: "uat-1".into(),
            run_id: run.into(),
            pipelines: vec!["demo".into()],
            pid,
            since: "now".into(),
        };
        assert_eq!(
            store.take_lease(&lease("a", std::process::id())).unwrap(),
            None
        );
        let holder = store.take_lease(&lease("b", std::process::id())).unwrap();
        assert_eq!(holder.map(|l| l.run_id), Some("a".into()));
        store.release_lease("uat-1", "b").unwrap();
        assert_eq!(store.leases().unwrap().len(), 1, "only the holder releases");
        store.release_lease("uat-1", "a").unwrap();
        assert!(store.leases().unwrap().is_empty());
        // A lease of a process that no longer exists is released at the next open.
        store.take_lease(&lease("c", 999_999_999)).unwrap();
        drop(store);
        let store = Store::open(&dir.path().join("db")).unwrap();
        assert!(store.leases().unwrap().is_empty());
    }

    #[test]
    fn locks_and_pauses_hold_an_environment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        assert_eq!(store.control("local").unwrap().hold(), None);
        let mut c = store.control("local").unwrap();
        c.lock = Some(EnvLock {
            by: "anna".into(),
            reason: "manual failover drill".into(),
            since: "09:00".into(),
        });
        store.set_control("local", &c).unwrap();
        assert!(
            store
                .control("local")
                .unwrap()
                .hold()
                .unwrap()
                .contains("locked by anna")
        );
    }
}
