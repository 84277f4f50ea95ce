//! The detail half of the store: the bulky records — scenarios, steps, artifacts and the
//! daemons' observations — in a second sled database inside the store's directory
//! (`<store>/detail`), opened the first time something reads or writes one of them.
//!
//! Why two databases: opening sled walks all of its files (`PageCache::start`,
//! `SegmentAccountant::start`), so its open time grows with everything ever stored. Steps
//! and observations are nearly all of the bytes; the run records, releases and controls
//! that `history`, `status` or `pause` read are a few kilobytes. Kept apart, those commands
//! open the small database only, and answer in the same time on the thousandth run as on
//! the first. sled ignores a directory it did not make inside its own, and a store stays one
//! directory to move, copy or compact.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::error::StoreError;

/// The trees that live in the detail database.
pub const TREES: [&str; 5] = ["scenarios", "steps", "artifacts", "observations", "judged"];

/// The detail database's directory inside the store's.
pub fn path_of(store: &Path) -> PathBuf {
    store.join("detail")
}

pub(super) struct Detail {
    pub db: sled::Db,
    pub scenarios: sled::Tree,
    pub steps: sled::Tree,
    pub artifacts: sled::Tree,
    pub observations: sled::Tree,
    /// The judge's features and verdicts ([`super::judged`]).
    pub judged: sled::Tree,
}

impl Detail {
    fn open(store: &Path) -> Result<Detail, StoreError> {
        let db = super::store::open_db(&path_of(store))?;
        Ok(Detail {
            scenarios: db.open_tree("scenarios")?,
            steps: db.open_tree("steps")?,
            artifacts: db.open_tree("artifacts")?,
            observations: db.open_tree("observations")?,
            judged: db.open_tree("judged")?,
            db,
        })
    }

    pub fn tree(&self, name: &str) -> &sled::Tree {
        match name {
            "scenarios" => &self.scenarios,
            "steps" => &self.steps,
            "artifacts" => &self.artifacts,
            "judged" => &self.judged,
            _ => &self.observations,
        }
    }
}

/// The detail database, opened at most once per store handle (and its clones): sled locks
/// its files against every other opener, this process included.
#[derive(Default)]
pub(super) struct Lazy {
    opened: OnceLock<Detail>,
    opening: Mutex<()>,
}

impl Lazy {
    pub fn get(&self, store: &Path) -> Result<&Detail, StoreError> {
        if let Some(d) = self.opened.get() {
            return Ok(d);
        }
        let _one_at_a_time = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = self.opened.get() {
            return Ok(d);
        }
        let detail = Detail::open(store)?;
        Ok(self.opened.get_or_init(|| detail))
    }

    /// The detail database if something already opened it.
    pub fn opened(&self) -> Option<&Detail> {
        self.opened.get()
    }
}
