//! The application layer: what runs, when, and what came of it. Everything that starts
//! work — the command line, a webhook, a schedule, the 24/7 loop, an event — builds a
//! [`RunRequest`] and hands it to [`App::run`], which returns a [`RunOutcome`]: the run as
//! stored, its comparison, where its JUnit went. Publishing (GitHub), printing and the
//! server's decisions work from that value, never by looking up "the newest run".
//!
//! [`App`] owns what a process shares between its runs: the [`Project`] and its paths,
//! the store (opened once, on first use), the way to the daemons (the server's router, or
//! none: each run starts its own), the controls of the runs in progress, and the
//! remotes' backoff. Nothing here is process-global: a second `App` is a second world.
//!
//! Owns no parsing (scenario, pipeline, environment), no I/O protocol (store, net,
//! github) and no terminal formatting (report): it decides and calls them.

pub mod activity;
mod check;
mod control;
mod deploy;
pub mod environments;
pub mod error;
pub mod history;
pub mod init;
pub mod judge;
pub mod project;
pub mod publish;
pub mod report;
pub mod request;
pub mod rollout;
pub mod round;
mod run;
pub mod runs;

use std::sync::{Mutex, OnceLock};

pub use activity::Activity;
pub use check::Checked;
pub use error::{Error, exit};
pub use project::Project;
pub use request::{RunRequest, Selection, Trigger};
pub use run::{Ran, RunOutcome};
pub use runs::Runs;

use crate::daemon::local::Network;
use crate::process::control::RunControl;
use crate::process::interrupt::Signals;
use crate::store::Store;

/// One lowtouch process's application: a project, its store, its runs.
pub struct App {
    project: Project,
    /// Installed when the first run starts (or given): a command that runs nothing
    /// keeps the default Ctrl-C, which ends it at once.
    signals: OnceLock<Signals>,
    /// Opened at first use and kept: sled locks its files against every other opener,
    /// this process included, so every part of the process shares this one.
    store: Mutex<Option<Store>>,
    /// Runs found unfinished when the store opened: reported by the first run.
    recovered: Mutex<Vec<String>>,
    /// The server's router, once it listens; unset: each run starts its own network
    /// on loopback.
    network: OnceLock<Network>,
    /// What the server is doing; unset outside `lowtouch serve`.
    activity: OnceLock<Activity>,
    runs: Runs,
    backoff: Mutex<round::Backoff>,
}

impl App {
    /// The application of `project`; its runs stop on Ctrl-C and SIGTERM.
    pub fn new(project: Project) -> App {
        App {
            project,
            signals: OnceLock::new(),
            store: Mutex::new(None),
            recovered: Mutex::new(Vec::new()),
            network: OnceLock::new(),
            activity: OnceLock::new(),
            runs: Runs::default(),
            backoff: Mutex::new(round::Backoff::default()),
        }
    }

    /// Its runs stop on `signals` instead of the process's (tests: [`Signals::ignored`]).
    pub fn with_signals(self, signals: Signals) -> App {
        let _ = self.signals.set(signals);
        self
    }

    /// From now on runs go to the daemons through `network` (the server's router, once
    /// it listens). Set once.
    pub fn attach_network(&self, network: Network) {
        let _ = self.network.set(network);
    }

    /// This process is a server doing `activity`. Set once.
    pub fn attach_activity(&self, activity: Activity) {
        let _ = self.activity.set(activity);
    }

    /// What the server is doing, when this process is one.
    pub fn activity(&self) -> Option<&Activity> {
        self.activity.get()
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    /// What the process's signals tell (the handlers are installed on first use).
    pub fn signals(&self) -> Signals {
        *self.signals.get_or_init(crate::process::interrupt::install)
    }

    /// The server's way to the daemons, if this process has one.
    pub fn network(&self) -> Option<&Network> {
        self.network.get()
    }

    /// The runs in progress in this process.
    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// A new control for a run: stopped by this process's signals and by a cancellation.
    pub fn new_control(&self) -> RunControl {
        RunControl::new(self.signals())
    }

    /// The store, opened on first use (and the runs a dead process left unfinished marked
    /// crashed then). Every call shares the one open store.
    pub fn store(&self) -> Result<Store, Error> {
        let mut slot = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = slot.as_ref() {
            return Ok(store.share());
        }
        let mut store = Store::open(self.project.db())?;
        *self.recovered.lock().unwrap_or_else(|e| e.into_inner()) =
            std::mem::take(&mut store.recovered);
        let shared = store.share();
        *slot = Some(store);
        Ok(shared)
    }

    /// Runs marked crashed when the store opened, once: the first run reports them.
    fn take_recovered(&self) -> Vec<String> {
        std::mem::take(&mut *self.recovered.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the process must stop (Ctrl-C or SIGTERM).
    pub fn shutting_down(&self) -> bool {
        self.signals().received()
    }
}
