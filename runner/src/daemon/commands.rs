//! What a daemon does when the router asks: only what its configuration allows — control
//! of the components configured for this host, and the named commands (aliases and
//! plugins, resolved by the router to a program and its arguments) it is given. Anything
//! else is refused and reported; nothing passes through a shell.

use std::path::Path;

use super::Shared;
use super::collect::read_pid_file;
use crate::monitor::procfs;
use crate::net::codec::{Command, DaemonConfig};

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

pub fn execute(config: Option<&DaemonConfig>, command: &Command, shared: &Shared) -> Done {
    let Some(config) = config else {
        return refused("this daemon has no configuration yet".into());
    };
    let component = |name: &str| config.components.iter().find(|c| c.name == name);
    match command {
        Command::Noop => Done::default(),
        Command::Kill {
            component: name,
            signal,
        } => {
            let Some(c) = component(name) else {
                return refused(format!(
                    "component `{name}` is not one this daemon controls ({})",
                    names(config)
                ));
            };
            if !(1..=64).contains(signal) {
                return refused(format!("{signal} is not a signal"));
            }
            let Some((pid, start)) = c
                .pid_file
                .as_deref()
                .and_then(|p| read_pid_file(Path::new(p)))
            else {
                return Done {
                    status: 1,
                    error: Some(format!("{name} is not running (no pid recorded)")),
                    ..Done::default()
                };
            };
            // The recorded pid must still be that process: a reused pid is someone else.
            let alive = procfs::read_process(Path::new("/proc"), pid)
                .ok()
                .flatten()
                .is_some_and(|s| s.stat.start_ticks == start && s.stat.state != b'Z');
            if !alive {
                return Done {
                    status: 1,
                    error: Some(format!("{name} is not running (pid {pid} is gone)")),
                    ..Done::default()
                };
            }
            if *signal == libc::SIGTERM || *signal == libc::SIGINT {
                shared
                    .stopping
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(name.clone());
            }
            // SAFETY: sending a signal to a pid we just checked is the component.
            let r = unsafe { libc::kill(pid as i32, *signal) };
            if r == 0 {
                Done {
                    stdout: format!("sent signal {signal} to {name} (pid {pid})\n"),
                    ..Done::default()
                }
            } else {
                Done {
                    status: 1,
                    error: Some(format!(
                        "cannot signal {name} (pid {pid}): {}",
                        std::io::Error::last_os_error()
                    )),
                    ..Done::default()
                }
            }
        }
        Command::Start { component: name }
        | Command::Stop { component: name }
        | Command::Restart { component: name } => {
            if component(name).is_none() {
                return refused(format!(
                    "component `{name}` is not one this daemon controls ({})",
                    names(config)
                ));
            }
            refused(format!(
                "starting and stopping {name} through a daemon is not built yet; the run that owns it does"
            ))
        }
        Command::Run { name, args } => {
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
            let Some((program, fixed)) = spec.argv.split_first() else {
                return refused(format!("`{name}` has no program"));
            };
            let mut argv: Vec<String> = fixed.to_vec();
            argv.extend(args.iter().cloned());
            let started = std::process::Command::new(program)
                .args(&argv)
                .stdin(std::process::Stdio::null())
                .output();
            match started {
                Ok(out) => Done {
                    status: out.status.code().unwrap_or(128),
                    stdout: bounded(&out.stdout),
                    stderr: bounded(&out.stderr),
                    error: None,
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

fn names(config: &DaemonConfig) -> String {
    let n: Vec<&str> = config.components.iter().map(|c| c.name.as_str()).collect();
    if n.is_empty() {
        "none".into()
    } else {
        n.join(", ")
    }
}

/// Output kept for the answer: 64 KiB, the rest counted.
fn bounded(bytes: &[u8]) -> String {
    const KEEP: usize = 64 * 1024;
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(KEEP)]).into_owned();
    if bytes.len() > KEEP {
        text.push_str(&format!("\n[{} more bytes]\n", bytes.len() - KEEP));
    }
    text
}
