//! The store as an event listener: every record a run emits is written as it happens.
//! Once a write fails (the disk's reserve reached), the records it could not write are
//! kept in memory instead: the run is stopped at that point (see `cli::run`), and its
//! JUnit still tells everything it did.

use std::sync::Mutex;

use super::{Store, StoreError};
use crate::event::{Listener, RunEvent};
use crate::record::{RunRecord, ScenarioRecord, StepRecord};

pub struct StoreSink<'a> {
    store: &'a Store,
    /// The first write that failed: the run stops, and ends with exit code 3.
    pub error: Mutex<Option<StoreError>>,
    /// What was not written since then (in order). Bounded by what a stopping run still
    /// does: the rest of its step, its cleanup, a record per scenario it skips.
    unwritten: Mutex<Unwritten>,
}

/// Records a failed store did not take.
#[derive(Default)]
pub struct Unwritten {
    pub scenarios: Vec<ScenarioRecord>,
    pub steps: Vec<StepRecord>,
}

impl<'a> StoreSink<'a> {
    pub fn new(store: &'a Store) -> Self {
        StoreSink {
            store,
            error: Mutex::new(None),
            unwritten: Mutex::new(Unwritten::default()),
        }
    }

    /// Whether a write failed.
    pub fn failed(&self) -> bool {
        self.error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The records the store did not take, oldest first.
    pub fn take_unwritten(&self) -> Unwritten {
        std::mem::take(&mut *self.unwritten.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The first write that failed, naming the store where the error did not.
    pub fn take_error(&self) -> Option<StoreError> {
        match self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(StoreError::NoSpace { path: None }) => Some(StoreError::NoSpace {
                path: Some(self.store.path().to_path_buf()),
            }),
            other => other,
        }
    }
}

/// The note of a run a failed write stopped.
pub const STOPPED: &str = "stopped: the store could not keep its records";

impl Listener for StoreSink<'_> {
    fn on_event(&self, event: &RunEvent<'_>) {
        let result = match event {
            RunEvent::RunStarted(run) => self.store.begin_run(run),
            RunEvent::ScenarioStarted(sc) => self.store.put_scenario(sc),
            RunEvent::StepFinished(step) => self.store.put_step(step),
            RunEvent::ScenarioFinished(sc) | RunEvent::ScenarioRetried(sc) => {
                self.store.finish_scenario(sc)
            }
            RunEvent::RunFinished(run) => {
                let failed = (self.error.lock().unwrap_or_else(|e| e.into_inner()))
                    .as_ref()
                    .map(|e| format!("a write failed: {e}"));
                match failed {
                    // Stored as it is: what the store kept of it, and why not more.
                    Some(why) => self.store.finish_run(&RunRecord {
                        incomplete: Some(why),
                        note: Some(STOPPED.into()),
                        ..(*run).clone()
                    }),
                    None => self.store.finish_run(run),
                }
            }
            RunEvent::Artifact {
                run_id,
                name,
                content,
            } => self.store.put_artifact(run_id, name, content),
            RunEvent::Notice(_) | RunEvent::StepStarted { .. } => Ok(()),
        };
        if let Err(e) = result {
            let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(e);
        }
        if self.failed() {
            let mut unwritten = self.unwritten.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                RunEvent::ScenarioStarted(sc)
                | RunEvent::ScenarioFinished(sc)
                | RunEvent::ScenarioRetried(sc) => unwritten.scenarios.push((*sc).clone()),
                RunEvent::StepFinished(step) => unwritten.steps.push((*step).clone()),
                _ => {}
            }
        }
    }
}
