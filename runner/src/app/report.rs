//! `lowtouch report`: a stored run with what it is compared with (its previous release,
//! its verdict), rendered as JUnit XML or a single HTML page.

use std::path::Path;

use crate::app::Error;
use crate::compare::Comparison;
use crate::compare::history::{self, RELEASE_PATTERN};
use crate::judge::Verdict;
use crate::record::RunRecord;
use crate::record::StoredRun;
use crate::store::Store;

/// A stored run and what its reports compare it with.
pub struct Report {
    pub run: RunRecord,
    pub stored: StoredRun,
    /// Its previous release, as `NAME (ID)`.
    pub label: Option<String>,
    previous: Option<RunRecord>,
    comparison: Option<Comparison>,
    verdict: Option<Verdict>,
}

impl Report {
    /// `run` (already resolved) with its previous release's comparison and its verdict.
    pub fn load(store: &Store, project: &Path, run: RunRecord) -> Result<Report, Error> {
        let stored = history::load(store, &run.id)?
            .ok_or_else(|| Error::input(format!("run {} is gone", run.id)))?;
        let previous = history::previous_release(store, project, &run, RELEASE_PATTERN)?;
        let comparison = match &previous {
            Some((_, baseline)) => Some(history::comparison(
                store,
                &crate::pipeline::masks_for(project, &run.pipelines),
                baseline,
                &run,
            )?),
            None => None,
        };
        Ok(Report {
            label: previous.as_ref().map(|(n, r)| format!("{n} ({})", r.id)),
            previous: previous.map(|(_, r)| r),
            verdict: store.verdict(&run.id)?,
            comparison,
            stored,
            run,
        })
    }

    pub fn junit(&self) -> Result<String, Error> {
        crate::report::junit::render_compared(
            &self.stored,
            &crate::report::junit::Compared {
                with: self.label.as_deref(),
                comparison: self.comparison.as_ref(),
                verdict: self.verdict.as_ref(),
            },
        )
        .map_err(|e| Error::infra(format!("cannot render JUnit: {e}")))
    }

    /// The HTML page, with the run's first 12 metric series beside its previous release's.
    pub fn html(&self, store: &Store) -> Result<String, Error> {
        let current = history::series(store, &self.run)?;
        let before = match &self.previous {
            Some(r) => history::series(store, r)?,
            None => Default::default(),
        };
        let series: Vec<crate::report::html::Series> = current
            .into_iter()
            .take(12)
            .map(|(name, points)| crate::report::html::Series {
                previous: before.get(&name).cloned().unwrap_or_default(),
                current: points,
                name,
            })
            .collect();
        Ok(crate::report::html::render(
            &self.stored,
            self.comparison.as_ref(),
            self.label.as_deref(),
            self.verdict.as_ref(),
            &series,
        ))
    }
}

/// Writes `text` to `path`, making its directory first.
pub fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::infra(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Error::infra(format!("cannot write {}: {e}", path.display())))
}
