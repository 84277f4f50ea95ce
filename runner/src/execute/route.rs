//! The script manager: where each step executes. Builtins run in the interpreter;
//! control of a component whose host has a monitoring daemon, and an alias a daemon is
//! allowed to run (a host-bound alias), go to that daemon through the router; the rest
//! runs in this process. A routed step's pre-condition is that its daemon is connected;
//! the daemon checks the rest (the component is one it controls and, for `kill`, that
//! it runs).

use crate::process::control::RunControl;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::daemon::local::{Failed, Network};
use crate::environment::{AliasKind, Environment};
use crate::net::codec::Command;
use crate::net::router::{Outcome, RouterError};
use crate::process::components::{Components, signal_name};
use crate::scenario::builtin::{Action, Signal};

/// A daemon a step can be routed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// `ENVIRONMENT/NAME`, as the router knows it.
    pub key: String,
    pub name: String,
    pub host: String,
}

/// Which component and which alias goes to which daemon.
#[derive(Debug, Default)]
pub struct Routes {
    components: BTreeMap<String, Daemon>,
    aliases: BTreeMap<String, Daemon>,
}

impl Routes {
    /// A component goes to the daemon of its host; an alias to the daemon that `allow`s it (an environment allows each alias
    /// on one daemon at most).
    pub fn for_environment(env: &Environment) -> Routes {
        let daemon = |d: &crate::environment::environment::Daemon| Daemon {
            key: format!("{}/{}", env.name, d.name),
            name: d.name.clone(),
            host: d.host.clone(),
        };
        let mut routes = Routes::default();
        for (name, c) in &env.components {
            // Loading gave it the only host when it names none.
            let Some(host) = &c.host else { continue };
            if let Some(d) = env.daemons.values().find(|d| &d.host == host) {
                routes.components.insert(name.clone(), daemon(d));
            }
        }
        for d in env.daemons.values() {
            for a in &d.allow {
                if matches!(env.aliases.get(a).map(|a| &a.kind), Some(AliasKind::Run(_))) {
                    routes.aliases.insert(a.clone(), daemon(d));
                }
            }
        }
        routes
    }

    pub fn component(&self, name: &str) -> Option<&Daemon> {
        self.components.get(name)
    }

    pub fn alias(&self, name: &str) -> Option<&Daemon> {
        self.aliases.get(name)
    }

    /// Every daemon some step may be routed to, once each.
    pub fn daemons(&self) -> Vec<&Daemon> {
        let mut seen = BTreeSet::new();
        self.components
            .values()
            .chain(self.aliases.values())
            .filter(|d| seen.insert(d.key.clone()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.components.is_empty() && self.aliases.is_empty()
    }
}

/// A run's control of its environment: the components this process controls itself,
/// and the way to the daemons of the rest.
pub struct Control<'a> {
    pub local: Components,
    pub routes: Routes,
    pub network: Option<&'a Network>,
}

/// What a routed command came to: done (its output), or failed (why), or interrupted.
pub enum Routed {
    Done(Outcome),
    Failed(String),
    Interrupted,
}

/// How long past its own limit a routed command is waited for: the way there and back.
const MARGIN: Duration = Duration::from_secs(5);

impl<'a> Control<'a> {
    /// The environment's control for a run with these variables. With a network, the
    /// daemons get their configuration rendered with the same variables first.
    pub fn new(
        env: &Environment,
        env_dir: &Path,
        project: &Path,
        vars: &BTreeMap<String, String>,
        network: Option<&'a Network>,
    ) -> Control<'a> {
        let routes = match network {
            Some(_) => Routes::for_environment(env),
            None => Routes::default(),
        };
        let local = Components::for_environment(
            env,
            env_dir.to_path_buf(),
            project.to_path_buf(),
            vars,
            |name| routes.component(name).is_none(),
        );
        if let Some(network) = network {
            for (key, config) in crate::daemon::config::for_run(env, env_dir, project, vars) {
                network.router.configure(&key, config);
            }
        }
        Control {
            local,
            routes,
            network,
        }
    }

    /// Sends `command` to `daemon` for a step whose command line is `line`.
    pub fn send(
        &self,
        daemon: &Daemon,
        line: &str,
        command: Command,
        limit: Duration,
        stop: Option<&RunControl>,
    ) -> Routed {
        let Some(network) = self.network else {
            return Routed::Failed(format!(
                "`{line}` goes to daemon `{}`, but this run has no monitoring network",
                daemon.name
            ));
        };
        match network.command(&daemon.key, command, limit + MARGIN, stop) {
            Ok(outcome) => Routed::Done(outcome),
            Err(Failed::Interrupted) => Routed::Interrupted,
            Err(Failed::Router(RouterError::NotConnected(_))) => Routed::Failed(format!(
                "pre-condition of `{line}`: daemon `{}` (host {}) is not connected, so nothing was done; start it there (`lowtouch daemon --name {} …`) or check its link",
                daemon.name, daemon.host, daemon.name
            )),
            Err(Failed::Router(e)) => Routed::Failed(format!("`{line}`: {e}")),
        }
    }

    /// A component control (`start`, `stop`, `restart`, `kill`), here or on the daemon
    /// of the component's host.
    pub fn component(
        &self,
        action: &Action,
        component: &str,
        limit: Duration,
        stop: Option<&RunControl>,
    ) -> Result<String, ControlError> {
        let Some(daemon) = self.routes.component(component) else {
            let local = &self.local;
            return match action {
                Action::Start => local.start(component, limit, stop),
                Action::Stop => local.stop(component),
                Action::Restart => local.restart(component, limit, stop),
                Action::Kill(signal) => {
                    let sig = signal.unwrap_or(Signal::TERM).number();
                    local
                        .kill(component, sig)
                        .map_err(|e| e.in_kill(sig, component))
                }
            }
            .map_err(|e| ControlError::Failed(e.to_string()));
        };
        let limit_ms = Some(limit.as_millis() as u64);
        let (command, line) = match action {
            Action::Start => (
                Command::Start {
                    component: component.into(),
                    limit_ms,
                },
                format!("start {component}"),
            ),
            Action::Stop => (
                Command::Stop {
                    component: component.into(),
                },
                format!("stop {component}"),
            ),
            Action::Restart => (
                Command::Restart {
                    component: component.into(),
                    limit_ms,
                },
                format!("restart {component}"),
            ),
            Action::Kill(signal) => {
                let sig = signal.unwrap_or(Signal::TERM).number();
                (
                    Command::Kill {
                        component: component.into(),
                        signal: sig,
                    },
                    format!("kill {} {component}", signal_name(sig)),
                )
            }
        };
        match self.send(daemon, &line, command, limit, stop) {
            Routed::Done(o) => match o.error {
                None if o.status == 0 => Ok(format!(
                    "{} (daemon {} on {})",
                    o.stdout.trim_end(),
                    daemon.name,
                    daemon.host
                )),
                None => Err(ControlError::Failed(o.stderr)),
                Some(e) => Err(ControlError::Failed(e)),
            },
            Routed::Failed(why) => Err(ControlError::Failed(why)),
            Routed::Interrupted => Err(ControlError::Interrupted),
        }
    }

    /// Whether `component` runs now, here or as its host's daemon finds it.
    pub fn running(&self, component: &str, stop: Option<&RunControl>) -> Result<bool, String> {
        let Some(daemon) = self.routes.component(component) else {
            return self
                .local
                .find(component)
                .map(|pid| pid.is_some())
                .map_err(|e| e.to_string());
        };
        let line = format!("find {component}");
        let command = Command::Find {
            component: component.into(),
        };
        match self.send(daemon, &line, command, MARGIN, stop) {
            Routed::Done(o) => match o.error {
                None => Ok(o.status == 0),
                Some(e) => Err(e),
            },
            Routed::Failed(why) => Err(why),
            Routed::Interrupted => Err("interrupted".into()),
        }
    }

    /// Before the first step: what earlier runs left running is stopped, here and by
    /// each daemon. Returns notes for the run's output.
    pub fn stop_leftovers(&self) -> Vec<String> {
        let mut notes = self.local.stop_leftovers();
        notes.extend(self.tidy(false));
        notes
    }

    /// After the last step: nothing the run started outlives it.
    pub fn stop_all_started(&self) -> Vec<String> {
        let mut notes = self.local.stop_all_started();
        notes.extend(self.tidy(true));
        notes
    }

    fn tidy(&self, all: bool) -> Vec<String> {
        let mut notes = Vec::new();
        for daemon in self.routes.daemons() {
            let line = if all {
                "stop what the run started"
            } else {
                "stop what earlier runs left"
            };
            match self.send(
                daemon,
                line,
                Command::Tidy { all },
                Duration::from_secs(60),
                None,
            ) {
                Routed::Done(o) => notes.extend(
                    o.stdout
                        .lines()
                        .map(|l| format!("{l} (daemon {} on {})", daemon.name, daemon.host)),
                ),
                Routed::Failed(why) => notes.push(why),
                Routed::Interrupted => {}
            }
        }
        notes
    }
}

/// Why a component command did not do what it said.
pub enum ControlError {
    Failed(String),
    Interrupted,
}
