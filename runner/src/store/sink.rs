//! The store as an event listener: every record a run emits is written as it happens.

use std::sync::Mutex;

use super::{RunRecord, Store, StoreError};
use crate::event::{Listener, RunEvent};

pub struct StoreSink<'a> {
    store: &'a Store,
    /// The first write that failed: the run goes on, and ends with exit code 3.
    pub error: Mutex<Option<StoreError>>,
}

impl<'a> StoreSink<'a> {
    pub fn new(store: &'a Store) -> Self {
        StoreSink {
            store,
            error: Mutex::new(None),
        }
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
    }
}
