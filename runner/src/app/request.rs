//! What to run and why: built by the command line, a webhook's round, a schedule, the
//! 24/7 loop or an event — the same value whoever asks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::watch::{Action, Candidate};

/// Which pipelines a run runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Those marked `default: true`.
    Defaults,
    /// By name (`pipelines/NAME.yaml`) or path.
    Pipelines(Vec<String>),
    /// One scenario file against an environment (`run --scenario FILE --env NAME`).
    Scenario { file: PathBuf, environment: String },
}

/// Why a run starts: it decides what the run may skip and what may stop it.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A person asked (`lowtouch run`, here or through the server): a paused or locked
    /// environment is run anyway, with a note; the deploy stage always runs.
    Person,
    /// A change a poll or a webhook found: its candidate, and what the change asks for.
    Change {
        candidate: Candidate,
        action: Action,
    },
    /// A `schedule:` pattern fired.
    Schedule { pattern: String },
    /// The 24/7 loop: nothing new arrived. A new candidate or a person's run pre-empts it
    /// at the next scenario boundary.
    Continuous,
    /// An event the pipeline's `on_event` entry `entry` listens for, with the event's
    /// variables (`event.source`, …).
    Event {
        entry: usize,
        vars: BTreeMap<String, String>,
    },
}

impl Trigger {
    /// Started by the server, not a person: a paused or locked environment, or a
    /// pipeline in its maintenance window, is left alone.
    pub fn scheduled(&self) -> bool {
        !matches!(self, Trigger::Person)
    }

    /// Whether a new candidate may stop it at a scenario boundary.
    pub fn preemptible(&self) -> bool {
        matches!(self, Trigger::Continuous)
    }
}

/// A run to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub selection: Selection,
    pub trigger: Trigger,
    /// More directories to search for `lowtouch-NAME` plugins.
    pub tools: Vec<PathBuf>,
    /// Environment variables overridden for this run (`--set NAME=VALUE`).
    pub overrides: Vec<(String, String)>,
    /// Where the JUnit XML goes (relative: the project's).
    pub junit: PathBuf,
    /// Every step and its output as it runs, not only scenarios.
    pub verbose: bool,
    /// Only the scenarios these name (`--filter`: a substring of the name, or a glob of
    /// the name or path); none: all of them.
    pub filter: Vec<String>,
}

impl RunRequest {
    /// The named pipelines, for `trigger`, every other option at its default.
    pub fn pipelines(names: Vec<String>, trigger: Trigger) -> RunRequest {
        RunRequest {
            selection: Selection::Pipelines(names),
            trigger,
            tools: Vec::new(),
            overrides: Vec::new(),
            junit: PathBuf::from(DEFAULT_JUNIT),
            verbose: false,
            filter: Vec::new(),
        }
    }

    /// How a person's request reads in logs and `lowtouch status`.
    pub fn describe(&self) -> String {
        match &self.selection {
            Selection::Scenario { file, .. } => format!("run --scenario {}", file.display()),
            Selection::Defaults => "run (the default pipelines)".to_string(),
            Selection::Pipelines(names) => format!("run {}", names.join(" ")),
        }
    }
}

/// Where JUnit goes unless told.
pub const DEFAULT_JUNIT: &str = "reports/junit.xml";
