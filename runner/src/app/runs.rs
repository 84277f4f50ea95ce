//! The runs in progress in one process, each with its own control: what `lowtouch
//! cancel RUN` stops, and what a new candidate pre-empts. Leases keep one environment to
//! one run; this keeps one run's stop buttons away from another's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::process::control::RunControl;

#[derive(Default)]
pub struct Runs {
    running: Mutex<BTreeMap<String, Running>>,
}

struct Running {
    control: RunControl,
    /// A continuous iteration: a new candidate or a person's run stops it at its next
    /// scenario boundary.
    preemptible: bool,
}

impl Runs {
    /// Run `id` is in progress under `control` until the returned guard drops.
    pub fn begin(&self, id: &str, control: &RunControl, preemptible: bool) -> RunGuard<'_> {
        self.lock().insert(
            id.to_string(),
            Running {
                control: control.clone(),
                preemptible,
            },
        );
        RunGuard {
            runs: self,
            id: id.to_string(),
        }
    }

    /// Stops run `id` as Ctrl-C would, without stopping the process. False when this
    /// process is not running it (any more).
    pub fn cancel(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(r) => {
                r.control.cancel();
                true
            }
            None => false,
        }
    }

    /// Asks every pre-emptible run to stop at its next scenario boundary.
    pub fn preempt(&self) {
        for r in self.lock().values().filter(|r| r.preemptible) {
            r.control.preempt();
        }
    }

    /// The ids of the runs in progress.
    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A run in progress; it is forgotten when this drops (a cancellation that came too late
/// reaches nothing).
pub struct RunGuard<'a> {
    runs: &'a Runs,
    id: String,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.runs.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_reaches_its_run_only_and_only_while_it_runs() {
        let runs = Runs::default();
        let (a, b) = (RunControl::detached(), RunControl::detached());
        let guard_a = runs.begin("a", &a, false);
        let _guard_b = runs.begin("b", &b, false);
        assert!(runs.cancel("a"));
        assert!(a.stop_requested() && !b.stop_requested());
        drop(guard_a);
        assert!(!runs.cancel("a"), "a finished run is not cancelled");
        assert_eq!(runs.ids(), vec!["b".to_string()]);
    }

    #[test]
    fn a_preemption_reaches_continuous_runs_only() {
        let runs = Runs::default();
        let (looping, asked) = (RunControl::detached(), RunControl::detached());
        let _g1 = runs.begin("loop", &looping, true);
        let _g2 = runs.begin("asked", &asked, false);
        runs.preempt();
        assert!(looping.preempted() && !asked.preempted());
    }
}
