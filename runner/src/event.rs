//! The run's events: the one seam between execution and everything that listens to it
//! (the store, the terminal, later the router's data processor). Execution emits; it never
//! calls a reporter directly.

use crate::record::{RunRecord, ScenarioRecord, StepRecord};

#[derive(Debug)]
pub enum RunEvent<'a> {
    RunStarted(&'a RunRecord),
    /// Something a person should know that is not a step: leftovers cleaned up, a
    /// component stopped by the safety net.
    Notice(&'a str),
    ScenarioStarted(&'a ScenarioRecord),
    StepStarted {
        scenario: &'a str,
        scenario_index: u32,
        seq: u64,
        line: u32,
        command: &'a str,
        args: &'a [String],
    },
    StepFinished(&'a StepRecord),
    ScenarioFinished(&'a ScenarioRecord),
    /// Something kept with the run: a component's log tail, a rendered config.
    Artifact {
        run_id: &'a str,
        name: &'a str,
        content: &'a [u8],
    },
    /// A finished scenario is run again (`retries:`): its record now says so.
    ScenarioRetried(&'a ScenarioRecord),
    RunFinished(&'a RunRecord),
}

/// Anything that wants the events. Scenarios of a parallel group emit from their own
/// threads, so listeners are `Sync`.
pub trait Listener: Send + Sync {
    fn on_event(&self, event: &RunEvent<'_>);
}

/// Fans one event out to every listener, in order.
pub struct Fanout<'a> {
    pub listeners: Vec<&'a dyn Listener>,
}

impl Fanout<'_> {
    pub fn emit(&self, event: &RunEvent<'_>) {
        for l in &self.listeners {
            l.on_event(event);
        }
    }
}
