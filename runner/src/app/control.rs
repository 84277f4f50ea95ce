//! Keeping the server off an environment and giving it back: `pause`, `resume`, `lock`,
//! `unlock`. Giving one back inside a server frees what waited for it at once.

use super::{App, Error, environments};
use crate::clock;
use crate::record::RunRecord;
use crate::store::control::{EnvLock, Lease};

impl App {
    /// Pauses (or resumes) `env`; a resume frees the server's work that waited.
    pub fn pause(&self, env: &str, paused: bool) -> Result<(), Error> {
        environments::known(self.project(), env)?;
        let store = self.store()?;
        let mut c = store.control(env)?;
        c.paused = paused;
        c.paused_at = paused.then(clock::now);
        store.set_control(env, &c)?;
        if !paused {
            self.freed();
        }
        Ok(())
    }

    /// Locks `env` for `by` (default: `$USER`); refused while someone holds it.
    pub fn lock(&self, env: &str, by: Option<String>, reason: &str) -> Result<EnvLock, Error> {
        environments::known(self.project(), env)?;
        let store = self.store()?;
        let mut c = store.control(env)?;
        if let Some(l) = &c.lock {
            return Err(Error::input(format!(
                "{env} is already locked by {} since {}: {}; `lowtouch unlock {env}` first",
                l.by, l.since, l.reason
            )));
        }
        let by = by
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "someone".into());
        let lock = EnvLock {
            by,
            reason: reason.to_string(),
            since: clock::now(),
        };
        c.lock = Some(lock.clone());
        store.set_control(env, &c)?;
        Ok(lock)
    }

    /// Unlocks `env`: the lock it had, if any. Frees the server's work that waited.
    pub fn unlock(&self, env: &str) -> Result<Option<EnvLock>, Error> {
        environments::known(self.project(), env)?;
        let store = self.store()?;
        let mut c = store.control(env)?;
        let was = c.lock.take();
        if was.is_some() {
            store.set_control(env, &c)?;
            self.freed();
        }
        Ok(was)
    }

    /// The webhook deliveries the running server kept (`status --deliveries`).
    pub fn deliveries(&self) -> Result<Vec<super::activity::Delivered>, Error> {
        match self.activity() {
            Some(activity) => Ok(activity.deliveries()),
            None => Err(Error::input(
                "no server runs here: `lowtouch serve` keeps the webhook deliveries while it runs",
            )),
        }
    }

    /// Cancels run `id`, which must be in progress in this process — the server's, when
    /// asked through its local API (a run started by `lowtouch run` holds the store
    /// itself; Ctrl-C stops it). `Ok(lease)`: it is being stopped; `Err(run)`: it is
    /// stored and not running.
    pub fn cancel(&self, id: &str) -> Result<Result<Lease, RunRecord>, Error> {
        let store = self.store()?;
        if let Some(lease) = store.leases()?.into_iter().find(|l| l.run_id == id) {
            if lease.pid != std::process::id() {
                return Err(Error::infra(format!(
                    "run {id} belongs to process {}; stop it there (Ctrl-C, or kill -TERM {})",
                    lease.pid, lease.pid
                )));
            }
            if self.runs().cancel(&lease.run_id) {
                return Ok(Ok(lease));
            }
        }
        match store.run(id)? {
            Some(run) => Ok(Err(run)),
            None => Err(Error::input(format!(
                "no run `{id}`; `lowtouch history` lists them"
            ))),
        }
    }

    fn freed(&self) {
        if let Some(activity) = self.activity() {
            activity.freed();
        }
    }
}
