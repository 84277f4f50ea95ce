//! The embedded store (sled). Two databases in one directory: the catalog (the store's
//! directory itself: runs, releases, controls — small, opened by every command) and the
//! detail (`<store>/detail`, see [`super::detail`]: scenarios, steps, artifacts,
//! observations — nearly all the bytes, opened when first needed). One tree each, values
//! JSON records with `v`:
//!
//! | tree        | key                                   | value            |
//! |-------------|---------------------------------------|------------------|
//! | `meta`      | `schema_version`                      | decimal text     |
//! | `runs`      | `<run id>`                            | [`RunRecord`]      |
//! | `active`    | `<run id>`                            | empty: a run not yet finished |
//! | `revisions` | `<revision> 0x00 <run id>`            | empty: runs per revision |
//! | `control`   | `<environment>`                       | [`super::control::EnvControl`]: paused, locked |
//! | `leases`    | `<environment>`                       | [`super::control::Lease`]: the run using it |
//! | `statuses`  | `<sha> 0x00 <context>`                | the verdict last posted to GitHub |
//! | `releases`, `tips` | see [`super::releases`], [`super::tips`] | |
//! | detail: `scenarios` | `<run id> 0x00 <index: u32 BE>` | [`ScenarioRecord`] |
//! | detail: `steps` | `<run id> 0x00 <index: u32 BE> <seq: u64 BE>` | [`StepRecord`] |
//! | detail: `artifacts` | `<run id> 0x00 <name>` | the bytes |
//! | detail: `judged` | `<run id> 0x00 f` / `v` | the judge's features / verdict ([`super::judged`]) |
//! | detail: `observations` | `<env> 0x00 <µs u64 BE> <daemon> 0x00 <n u32 BE>` | [`super::observations::ObservationRecord`] |
//!
//! Run ids sort by time, so a reverse scan of `runs` is newest first.
//!
//! Durability: sled's own flusher writes dirty data every [`FLUSH_EVERY_MS`], so a step's
//! record is on disk at most that long after it is written, and flushes are grouped
//! (a fast scenario does not pay an fsync per step). The end of every scenario and run
//! flushes explicitly: the detail first, so a run stored as finished has all its steps.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;
use crate::record::{RunRecord, SCHEMA_VERSION, ScenarioRecord, Status, StepRecord};

/// How often sled flushes dirty data in the background.
pub const FLUSH_EVERY_MS: u64 = 50;

#[derive(Clone)]
pub struct Store {
    pub(super) db: sled::Db,
    path: PathBuf,
    pub(super) runs: sled::Tree,
    pub(super) active: sled::Tree,
    pub(super) revisions: sled::Tree,
    pub(super) tips: sled::Tree,
    pub(super) control: sled::Tree,
    pub(super) leases: sled::Tree,
    pub(super) statuses: sled::Tree,
    pub(super) releases: sled::Tree,
    /// Scenarios, steps, artifacts and observations: opened when first used.
    detail: std::sync::Arc<super::detail::Lazy>,
    /// Runs found unfinished at open and marked crashed.
    pub recovered: Vec<String>,
    /// A handle from [`Store::share`]: dropping it closes nothing.
    shared: bool,
    /// The newest sample of every metric this process stored (environment → series):
    /// what a step's `around` reads, without a scan back through the time series.
    pub(super) latest: std::sync::Arc<std::sync::Mutex<super::observations::Latest>>,
}

impl Store {
    /// Another handle onto this open store (for a thread or task): dropping it closes
    /// nothing.
    pub fn share(&self) -> Store {
        let mut shared = self.clone();
        shared.shared = true;
        shared.recovered.clear();
        shared
    }

    /// Opens (creating if needed) the store and marks runs a dead process left unfinished.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
            // The project's state directory holds more than the store: rendered configs
            // with secrets' real values, logs, mirrors. A `--db` elsewhere leaves its
            // parent as it is (it may be a directory others share on purpose).
            if parent.file_name().is_some_and(|n| n == ".lowtouch") {
                set_mode(parent, 0o700);
            }
        }
        if let Some(note) = super::gc::recover_compaction(path) {
            crate::errln!("{note}");
        }
        let db = open_db(path)?;
        let meta = db.open_tree("meta")?;
        let found = match meta.get("schema_version")? {
            Some(v) => {
                let found: u32 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::TooNew {
                        path: path.to_path_buf(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(found)
            }
            None => {
                meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
                None
            }
        };
        write_owner(path);
        let mut store = Store {
            runs: db.open_tree("runs")?,
            active: db.open_tree("active")?,
            revisions: db.open_tree("revisions")?,
            tips: db.open_tree("tips")?,
            control: db.open_tree("control")?,
            leases: db.open_tree("leases")?,
            statuses: db.open_tree("statuses")?,
            releases: db.open_tree("releases")?,
            detail: Default::default(),
            db,
            path: path.to_path_buf(),
            recovered: Vec::new(),
            shared: false,
            latest: Default::default(),
        };
        if let Some(found) = found.filter(|f| *f < SCHEMA_VERSION) {
            if let Some(what) = super::migrate::migrate(&store, found)? {
                crate::errln!("{what}");
            }
            meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
            store.flush()?;
        }
        store.recover()?;
        store.release_stale_leases()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a run can be stored: the detail database opens and the disk has room. A
    /// run asks before it starts anything, rather than learn it half-way.
    pub fn ready_for_run(&self) -> Result<(), StoreError> {
        self.detail()?;
        super::space::room(&self.path, super::space::RESERVE)
    }

    /// Opens the detail database now, rather than in the middle of something that cannot
    /// wait for it (the data processor's first batch, inside the server's runtime).
    pub fn open_detail(&self) -> Result<(), StoreError> {
        self.detail().map(|_| ())
    }

    /// Ok when a write of this kind leaves the store's disk at least `reserve` bytes
    /// ([`super::space`]): every write asks first, so sled never meets a full disk.
    pub(super) fn room(&self, reserve: u64) -> Result<(), StoreError> {
        super::space::room(&self.path, reserve)
    }

    /// The detail database (scenarios, steps, artifacts, observations), opened on first use.
    pub(super) fn detail(&self) -> Result<&super::detail::Detail, StoreError> {
        self.detail.get(&self.path)
    }

    /// We hold sled's lock, so every run still marked active belongs to a dead process.
    fn recover(&mut self) -> Result<(), StoreError> {
        let reserve = super::space::FINAL_RESERVE;
        // On a full disk this waits for an open with room: reading goes on.
        if self.active.is_empty() || self.room(reserve).is_err() {
            return Ok(());
        }
        // First the records, made durable (detail, then catalog); only then the `active`
        // marks go: a crash in between finds the runs again and marks them again.
        let ids: Vec<String> = self
            .active
            .iter()
            .keys()
            .map(|k| k.map(|k| String::from_utf8_lossy(&k).to_string()))
            .collect::<Result<_, _>>()?;
        for id in &ids {
            if let Some(mut run) = self.run(id)? {
                let mut scenarios = self.scenarios(id)?;
                for sc in &mut scenarios {
                    if sc.status == Status::Running {
                        sc.status = Status::Crashed;
                        let key = scenario_key(id, sc.index);
                        self.put_within(&self.detail()?.scenarios, &key, &*sc, reserve)?;
                    }
                }
                if run.status == Status::Running {
                    run.status = Status::Crashed;
                    // Its counts were to be made at its end: made from what it stored.
                    (
                        run.passed,
                        run.failed,
                        run.skipped,
                        run.interrupted,
                        run.flaky,
                    ) = (0, 0, 0, 0, 0);
                    run.count(&scenarios);
                    self.put_within(&self.runs, id.as_bytes(), &run, reserve)?;
                }
            }
        }
        self.flush()?;
        for id in ids {
            self.active.remove(id.as_bytes())?;
            self.recovered.push(id);
        }
        self.flush()?;
        Ok(())
    }

    /// Writes a record, if the disk has room for it (see [`super::space`]).
    pub(super) fn put<T: Serialize>(
        &self,
        tree: &sled::Tree,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        self.put_within(tree, key, value, super::space::RESERVE)
    }

    pub(super) fn put_within<T: Serialize>(
        &self,
        tree: &sled::Tree,
        key: &[u8],
        value: &T,
        reserve: u64,
    ) -> Result<(), StoreError> {
        self.room(reserve)?;
        let bytes = super::encoding::encode(key, value)?;
        tree.insert(key, bytes)?;
        Ok(())
    }

    pub(super) fn decode_record<T: DeserializeOwned>(
        key: &[u8],
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        Store::decode(key, bytes)
    }

    fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
        super::encoding::decode(key, bytes)
    }

    pub fn begin_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.put(&self.runs, run.id.as_bytes(), run)?;
        self.active.insert(run.id.as_bytes(), &[])?;
        let mut rev_key = run.revision.as_bytes().to_vec();
        rev_key.push(0);
        rev_key.extend_from_slice(run.id.as_bytes());
        self.revisions.insert(rev_key, &[])?;
        self.flush()?;
        Ok(())
    }

    pub fn put_scenario(&self, sc: &ScenarioRecord) -> Result<(), StoreError> {
        self.put(
            &self.detail()?.scenarios,
            &scenario_key(&sc.run_id, sc.index),
            sc,
        )
    }

    /// A scenario's final record: flushed before this returns.
    pub fn finish_scenario(&self, sc: &ScenarioRecord) -> Result<(), StoreError> {
        self.put_scenario(sc)?;
        self.detail()?.db.flush()?;
        Ok(())
    }

    pub fn put_step(&self, step: &StepRecord) -> Result<(), StoreError> {
        let mut key = scenario_key(&step.run_id, step.scenario_index);
        key.extend_from_slice(&step.seq.to_be_bytes());
        self.put(&self.detail()?.steps, &key, step)
    }

    /// The run's final record: flushed before this returns.
    pub fn finish_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        if let Some(detail) = self.detail.opened() {
            detail.db.flush()?;
        }
        let reserve = super::space::FINAL_RESERVE;
        self.put_within(&self.runs, run.id.as_bytes(), run, reserve)?;
        self.active.remove(run.id.as_bytes())?;
        // The detail is durable already.
        self.db.flush()?;
        Ok(())
    }

    /// Makes everything written so far durable: the detail (if open) first, then the
    /// catalog that points into it.
    pub fn flush(&self) -> Result<(), StoreError> {
        if let Some(detail) = self.detail.opened() {
            detail.db.flush()?;
        }
        self.db.flush()?;
        Ok(())
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        match self.runs.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(Self::decode(id.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    /// Runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_newest_first().take(limit).collect()
    }

    /// Runs, newest first, read as the iterator is.
    pub fn runs_newest_first(&self) -> impl Iterator<Item = Result<RunRecord, StoreError>> + '_ {
        self.runs.iter().rev().map(|entry| {
            let (k, v) = entry?;
            Self::decode(&k, &v)
        })
    }

    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// Run ids for a revision, oldest first.
    pub fn runs_for_revision(&self, revision: &str) -> Result<Vec<String>, StoreError> {
        let mut prefix = revision.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.revisions.scan_prefix(&prefix) {
            let (k, _) = entry?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).to_string());
        }
        Ok(out)
    }

    pub fn scenarios(&self, run_id: &str) -> Result<Vec<ScenarioRecord>, StoreError> {
        let mut prefix = run_id.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.detail()?.scenarios.scan_prefix(&prefix) {
            let (k, v) = entry?;
            out.push(Self::decode(&k, &v)?);
        }
        Ok(out)
    }

    pub fn steps(&self, run_id: &str, scenario_index: u32) -> Result<Vec<StepRecord>, StoreError> {
        let prefix = scenario_key(run_id, scenario_index);
        let mut out = Vec::new();
        for entry in self.detail()?.steps.scan_prefix(&prefix) {
            let (k, v) = entry?;
            out.push(Self::decode(&k, &v)?);
        }
        Ok(out)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.flush();
        if !self.shared {
            let _ = std::fs::remove_file(owner_path(&self.path));
        }
    }
}

/// How long `open` keeps trying for sled's lock. A store this process just closed can
/// hold it for a moment (sled's flusher thread lets go last), and a second process would
/// rather wait a little than fail at once.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        let opened = sled::Config::new()
            .path(path)
            .flush_every_ms(Some(FLUSH_EVERY_MS))
            .cache_capacity(64 * 1024 * 1024)
            .open();
        match opened {
            Ok(db) => {
                make_private(path);
                return Ok(db);
            }
            Err(sled::Error::Io(io)) if io.to_string().contains("lock") => {
                if std::time::Instant::now() >= deadline {
                    return Err(StoreError::Locked {
                        path: path.to_path_buf(),
                        owner: read_owner(path),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(e) if super::error::is_no_space(&e) => {
                return Err(StoreError::NoSpace {
                    path: Some(path.to_path_buf()),
                });
            }
            Err(e @ sled::Error::Corruption { .. }) => {
                return Err(StoreError::Unreadable {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
            Err(e) => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
    }
}

fn scenario_key(run_id: &str, index: u32) -> Vec<u8> {
    let mut key = run_id.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn owner_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".owner");
    db.with_file_name(name)
}

/// Records who holds the store, so a second process can say so. Only the subcommand:
/// the rest of the command line may hold values (`--set`) that are nobody's business.
/// Makes a database's directory readable by its owner only: directories 0700, files
/// 0600, whatever the umask was. Runs' outputs, configs and observations are in there.
/// sled creates its files with the umask's modes; files it adds later are still behind
/// the 0700 directory, and the next open tightens them too.
fn make_private(dir: &Path) {
    set_mode(dir, 0o700);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => make_private(&path),
            Ok(t) if t.is_file() => set_mode(&path, 0o600),
            _ => {}
        }
    }
}

/// Sets a file's mode; a file system without Unix modes, or a file of another user,
/// keeps what it has (the store still works; `ls -l` shows what it got).
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

fn write_owner(db: &Path) {
    let sub = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-') && !Path::new(a).is_dir())
        .unwrap_or_default();
    let _ = std::fs::write(
        owner_path(db),
        format!("pid {} (lowtouch {sub})", std::process::id()),
    );
    set_mode(&owner_path(db), 0o600);
}

fn read_owner(db: &Path) -> String {
    match std::fs::read_to_string(owner_path(db)) {
        Ok(s) if !s.trim().is_empty() => format!(": {}", s.trim()),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_runs_leaves_the_detail_closed_and_steps_open_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = Store::open(&path).unwrap();
            let run = RunRecord::for_test("20261125-000000.000-abcd");
            store.begin_run(&run).unwrap();
            store
                .put_artifact(&run.id, "log", b"the detail's bytes")
                .unwrap();
            store.finish_run(&run).unwrap();
        }
        assert!(super::super::detail::path_of(&path).is_dir());
        let store = Store::open(&path).unwrap();
        assert_eq!(store.runs(10).unwrap().len(), 1);
        assert!(store.detail.opened().is_none(), "history opened the detail");
        // Not even its lock is taken.
        assert!(open_db(&super::super::detail::path_of(&path)).is_ok());
        let artifact = store.artifact("20261125-000000.000-abcd", "log").unwrap();
        assert_eq!(artifact.as_deref(), Some(&b"the detail's bytes"[..]));
        assert!(store.detail.opened().is_some());
    }

    #[test]
    fn a_crashed_run_counts_the_scenarios_it_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let id = "20261125-000000.000-dead";
        {
            let store = Store::open(&path).unwrap();
            let mut run = RunRecord::for_test(id);
            run.status = Status::Running;
            store.begin_run(&run).unwrap();
            for (i, status) in [
                Status::Passed,
                Status::Failed,
                Status::Passed,
                Status::Running,
            ]
            .into_iter()
            .enumerate()
            {
                let sc = ScenarioRecord::for_test(id, i as u32, &format!("s{i}"), status);
                store.put_scenario(&sc).unwrap();
            }
            // A failed first attempt that was retried counts once, as its last attempt.
            let mut retried = ScenarioRecord::for_test(id, 4, "flaky", Status::Failed);
            retried.retried = true;
            store.put_scenario(&retried).unwrap();
            let mut again = ScenarioRecord::for_test(id, 5, "flaky", Status::Passed);
            again.attempt = 1;
            store.put_scenario(&again).unwrap();
            // The process dies here: no finish_run.
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.recovered, vec![id.to_string()]);
        let run = store.run(id).unwrap().unwrap();
        assert_eq!(run.status, Status::Crashed);
        // The scenario it was in counts as failed: it crashed.
        assert_eq!(
            (run.passed, run.failed, run.skipped, run.flaky),
            (3, 2, 0, 1)
        );
    }
}
