//! What `history` asks of the store beyond the list of runs: one run by id (or `last`),
//! a run's steps with their scenarios' names, the flaky scenarios among some runs.

use crate::app::Error;
use crate::compare::flaky::Flaky;
use crate::record::{RunRecord, StepRecord};
use crate::store::Store;

/// The run `id` names: a stored run's id, or `last` for the newest.
pub fn run_named(store: &Store, id: &str) -> Result<RunRecord, Error> {
    let run = if id == "last" {
        store.runs(1)?.into_iter().next()
    } else {
        store.run(id)?
    };
    run.ok_or_else(|| Error::input(format!("no run `{id}`; `lowtouch history` lists them")))
}

/// Every step of `run`, in order, each with the name of its scenario.
pub fn steps(store: &Store, run: &RunRecord) -> Result<Vec<(String, StepRecord)>, Error> {
    let mut all = Vec::new();
    for sc in store.scenarios(&run.id)? {
        for step in store.steps(&run.id, sc.index)? {
            all.push((sc.name.clone(), step));
        }
    }
    Ok(all)
}

/// Per scenario, its outcomes across `runs` of the same candidate: those that both
/// passed and failed.
pub fn flaky(store: &Store, runs: &[RunRecord]) -> Result<Vec<Flaky>, Error> {
    let mut with_scenarios = Vec::new();
    for run in runs {
        with_scenarios.push((run.clone(), store.scenarios(&run.id)?));
    }
    Ok(crate::compare::flaky::flaky(&with_scenarios))
}
