//! What a daemon does when the router asks: only what its configuration allows — control
//! of the components configured for this host, and the named commands (aliases and
//! plugins, resolved by the router to a program and its arguments) it is given. Anything
//! else is refused and reported; nothing passes through a shell.

use std::path::PathBuf;
use std::time::Duration;

use super::Shared;
use crate::net::codec::{Command, DaemonConfig};
use crate::process;
use crate::process::components::{Components, Control, Place};

/// What came of a command, as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Done {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    /// Set when it was refused or could not run.
    pub error: Option<String>,
}

fn refused(message: String) -> Done {
    Done {
        status: 126,
        error: Some(message),
        ..Done::default()
    }
}

/// A component command's result as an answer.
fn control(result: Control) -> Done {
    match result {
        Ok(text) => Done {
            stdout: format!("{text}\n"),
            ..Done::default()
        },
        Err(e) => Done {
            status: 1,
            error: Some(e.to_string()),
            ..Done::default()
        },
    }
}

/// A start waits for readiness; without a limit from the router it is this long.
const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// The daemon's own secret is never a child's, whatever the configuration says.
const OWN_SECRET: &str = "LOWTOUCH_DAEMON_SECRET";

/// Applies a new configuration to the components this daemon controls.
pub fn configure(components: &Components, config: &DaemonConfig) {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let existing = |p: &Option<String>| {
        p.as_ref()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(|| here.clone())
    };
    let mut remove_env = config.remove_env.clone();
    remove_env.push(OWN_SECRET.into());
    let dir = config
        .runtime_dir
        .as_ref()
        .map_or_else(|| here.clone(), PathBuf::from);
    components.configure(
        Place {
            dir,
            cwd: existing(&config.workdir),
            remove_env,
        },
        config
            .components
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.control.clone()?))),
    );
}

pub fn execute(config: Option<&DaemonConfig>, command: &Command, shared: &Shared) -> Done {
    let Some(config) = config else {
        return refused("this daemon has no configuration yet".into());
    };
    let controlled = |name: &str| {
        config
            .components
            .iter()
            .any(|c| c.name == name && c.control.is_some())
    };
    let not_ours = |name: &str| {
        refused(format!(
            "component `{name}` is not one this daemon controls ({})",
            names(config)
        ))
    };
    let components = &shared.components;
    let limit = |ms: &Option<u64>| ms.map_or(DEFAULT_LIMIT, Duration::from_millis);
    match command {
        Command::Noop => Done::default(),
        Command::Kill {
            component: name,
            signal,
        } => {
            if !controlled(name) {
                return not_ours(name);
            }
            if !(1..=64).contains(signal) {
                return refused(format!("{signal} is not a signal"));
            }
            control(
                components
                    .kill(name, *signal)
                    .map_err(|e| e.in_kill(*signal, name)),
            )
        }
        Command::Start {
            component: name,
            limit_ms,
        } => {
            if !controlled(name) {
                return not_ours(name);
            }
            // A daemon inside a run's process gives up with that run (its Ctrl-C or
            // cancellation); a daemon process with its own Ctrl-C.
            control(components.start(name, limit(limit_ms), Some(&shared.stop)))
        }
        Command::Stop { component: name } => {
            if !controlled(name) {
                return not_ours(name);
            }
            control(components.stop(name))
        }
        Command::Find { component: name } => {
            if !controlled(name) {
                return not_ours(name);
            }
            match components.find(name) {
                Ok(Some(pid)) => Done {
                    stdout: format!("{pid}\n"),
                    ..Done::default()
                },
                Ok(None) => Done {
                    status: 1,
                    ..Done::default()
                },
                Err(e) => control(Err(e)),
            }
        }
        Command::Restart {
            component: name,
            limit_ms,
        } => {
            if !controlled(name) {
                return not_ours(name);
            }
            control(components.restart(name, limit(limit_ms), Some(&shared.stop)))
        }
        Command::Tidy { all } => {
            // At a run's end: what this daemon started, and what a daemon process before
            // it started for the run (found by recorded pid and start time).
            let mut notes = if *all {
                components.stop_all_started()
            } else {
                Vec::new()
            };
            notes.extend(components.stop_leftovers());
            Done {
                stdout: notes.iter().map(|n| format!("{n}\n")).collect(),
                ..Done::default()
            }
        }
        Command::Run {
            name,
            args,
            timeout_ms,
            env,
        } => {
            let Some(spec) = config.commands.iter().find(|c| &c.name == name) else {
                return refused(format!(
                    "`{name}` is not a command this daemon may run (it may run: {})",
                    if config.commands.is_empty() {
                        "nothing".to_string()
                    } else {
                        config
                            .commands
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ));
            };
            if let Some((key, _)) = env
                .iter()
                .find(|(k, _)| !k.starts_with("LOWTOUCH_") || k == OWN_SECRET)
            {
                return refused(format!(
                    "`{key}` is not a variable a router may set (only LOWTOUCH_* ones)"
                ));
            }
            let Some((program, fixed)) = spec.argv.split_first() else {
                return refused(format!("`{name}` has no program"));
            };
            let mut argv: Vec<String> = fixed.to_vec();
            argv.extend(args.iter().cloned());
            let place = components.place();
            let outcome = process::run(&process::Spec {
                program: program.as_ref(),
                args: &argv,
                env,
                cwd: Some(&place.cwd),
                timeout: limit(timeout_ms),
                limit: OUTPUT_LIMIT,
                stop: None,
                inherit: &process::ChildEnv::inherit(&place.remove_env),
            });
            match outcome {
                Ok(o) => Done {
                    status: o.status,
                    stdout: o.stdout.text,
                    stderr: o.stderr.text,
                    error: o.timed_out.then(|| {
                        format!(
                            "`{name}` did not end within {}s (its process group was killed)",
                            limit(timeout_ms).as_secs_f64()
                        )
                    }),
                },
                Err(e) => Done {
                    status: 127,
                    error: Some(format!("cannot run {program}: {e}")),
                    ..Done::default()
                },
            }
        }
    }
}

/// Output kept for the answer (a frame must hold it).
const OUTPUT_LIMIT: usize = 64 * 1024;

fn names(config: &DaemonConfig) -> String {
    let n: Vec<&str> = config.components.iter().map(|c| c.name.as_str()).collect();
    if n.is_empty() {
        "none".into()
    } else {
        n.join(", ")
    }
}
