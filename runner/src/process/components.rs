//! Component control on this host: start, stop, kill and restart the processes an
//! environment names, find them again (by the pid recorded at start, a pid file, or a
//! command-line pattern), wait for them to be ready, and make sure nothing a run started
//! outlives it.
//!
//! A recorded pid is stored with the process's start time, so a pid reused by another
//! process after a crash is never mistaken for the component.

use super::control::RunControl;
use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::kill_group;
use super::pid_record::{self, PreExecRecord};
use crate::environment::{Component, Environment, EnvironmentError, Find};
use crate::net::codec::{ControlSpec, FindSpec};
use crate::process;

/// Why a component command did not do what it was asked. A step that gets one fails (the
/// system under test did not start, stop or die as asked), unless [`is_bad_input`] says
/// the environment file or the step named something wrong.
///
/// [`is_bad_input`]: ComponentError::is_bad_input
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// A component's `ready.log` or `find` pattern is not a regex.
    #[error("`{pattern}`: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// A component's control did not render with the run's variables.
    #[error(transparent)]
    Template(#[from] EnvironmentError),
    /// A daemon was sent a control it cannot use.
    #[error("`{name}` cannot be controlled: {source}")]
    Uncontrollable {
        name: String,
        #[source]
        source: Box<ComponentError>,
    },
    /// Why the component's control is unusable, found when it was configured and shared
    /// by every command on it.
    #[error(transparent)]
    Unusable(std::sync::Arc<ComponentError>),
    #[error(
        "`{name}` is not a component controlled here (these are: {})",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    NotHere { name: String, known: Vec<String> },
    #[error("`{name}` is already running (pid {pid}); stop it first or use `restart`")]
    AlreadyRunning { name: String, pid: i32 },
    #[error("`{name}` has no start command")]
    NoStartCommand { name: String },
    #[error("cannot copy {} to {} for `{name}`: {source}", from.display(), to.display())]
    Copy {
        name: String,
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {}: {source}", path.display())]
    OpenOutput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot record `{name}`: {source}")]
    Record {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start `{name}` ({program}): {source}")]
    Spawn {
        name: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{name}` exited while starting; its output ends with:\n{tail}")]
    ExitedWhileStarting { name: String, tail: String },
    #[error(
        "`{name}` (pid {pid}) was not ready within {}s; it keeps running, its output ends with:\n{tail}",
        within.as_secs_f64()
    )]
    NotReady {
        name: String,
        pid: i32,
        within: Duration,
        tail: String,
    },
    #[error("interrupted while `{name}` was starting")]
    Interrupted { name: String },
    #[error("`{name}` (pid {pid}) survived SIGKILL")]
    SurvivedKill { name: String, pid: i32 },
    #[error("`{name}` is not running: there is nothing to kill")]
    NotRunning { name: String },
    #[error("`{name}` (pid {pid}) is still there 5s after SIGKILL")]
    StillThere { name: String, pid: i32 },
    /// A failed `kill`, with the command that asked for it.
    #[error("{source} (kill {signal} {name})")]
    Kill {
        signal: String,
        name: String,
        #[source]
        source: Box<ComponentError>,
    },
}

impl ComponentError {
    /// Whether the environment file or the step is the cause (a pattern that is no regex,
    /// a variable not set, a component not controlled here) rather than the component or
    /// the machine.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ComponentError::Pattern { .. }
            | ComponentError::Template(_)
            | ComponentError::NotHere { .. } => true,
            ComponentError::Uncontrollable { source, .. } | ComponentError::Kill { source, .. } => {
                source.is_bad_input()
            }
            ComponentError::Unusable(e) => e.is_bad_input(),
            _ => false,
        }
    }

    /// This error as the answer to `kill -SIG name`.
    pub fn in_kill(self, sig: i32, name: &str) -> ComponentError {
        ComponentError::Kill {
            signal: signal_name(sig),
            name: name.to_string(),
            source: Box::new(self),
        }
    }
}

/// A component's control, ready to use: its spec with the regexes compiled.
struct Ready {
    spec: ControlSpec,
    ready_log: Option<regex::Regex>,
    find_cmdline: Option<regex::Regex>,
}

impl Ready {
    fn compile(spec: ControlSpec) -> Result<Ready, ComponentError> {
        let re = |p: &str| {
            regex::Regex::new(p).map_err(|source| ComponentError::Pattern {
                pattern: p.to_string(),
                source,
            })
        };
        Ok(Ready {
            ready_log: spec.ready_log.as_deref().map(re).transpose()?,
            find_cmdline: match &spec.find {
                FindSpec::Cmdline { pattern } => Some(re(pattern)?),
                _ => None,
            },
            spec,
        })
    }
}

/// A component's control, or why it cannot be used (shared by every command on it).
type Usable = Result<std::sync::Arc<Ready>, std::sync::Arc<ComponentError>>;

/// Controls the components of one host. A run uses one for the components no daemon
/// covers; a daemon uses one for the components of its host (the script manager routes
/// their commands to it). Owns what it started: reaps it, stops it at the end.
pub struct Components {
    /// Name → how to control it, or why it cannot be (a template that did not render).
    specs: Mutex<BTreeMap<String, Usable>>,
    /// Where they run and what they do not inherit.
    place: Mutex<Place>,
    /// Components this process started, kept to reap them and to stop them at the end.
    children: Mutex<HashMap<String, Child>>,
    /// One control command per component at a time.
    busy: Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
}

/// Where components run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// Where pid files and components' output go.
    pub dir: PathBuf,
    /// The components' working directory.
    pub cwd: PathBuf,
    /// Secrets' environment variables: components do not inherit them.
    pub remove_env: Vec<String>,
}

/// What a control command did, for the step's output.
pub type Control = Result<String, ComponentError>;

/// A component's control rendered with a run's variables: its log path (relative to
/// `dir`) becomes `#{log}` for its start command.
pub fn control_spec(
    c: &Component,
    dir: &Path,
    vars: &BTreeMap<String, String>,
) -> Result<ControlSpec, EnvironmentError> {
    let log = match &c.log {
        Some(t) => {
            let p = PathBuf::from(t.render(vars)?);
            Some(if p.is_relative() { dir.join(p) } else { p })
        }
        None => None,
    };
    let mut with_log = vars.clone();
    if let Some(l) = &log {
        with_log.insert("log".into(), l.display().to_string());
    }
    let render_all = |ts: &[crate::environment::template::Template],
                      vars: &BTreeMap<String, String>| {
        ts.iter()
            .map(|t| t.render(vars))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(ControlSpec {
        start: render_all(&c.start, &with_log)?,
        stop: c.stop.as_deref().map(|s| render_all(s, vars)).transpose()?,
        env: c
            .env
            .iter()
            .map(|(k, t)| t.render(&with_log).map(|v| (k.clone(), v)))
            .collect::<Result<_, _>>()?,
        find: match &c.find {
            Find::Recorded => FindSpec::Recorded,
            Find::Pidfile(t) => {
                let p = PathBuf::from(t.render(vars)?);
                let p = if p.is_relative() { dir.join(p) } else { p };
                FindSpec::Pidfile {
                    path: p.display().to_string(),
                }
            }
            Find::Cmdline(re) => FindSpec::Cmdline {
                pattern: re.as_str().to_string(),
            },
        },
        log: log.map(|l| l.display().to_string()),
        ready_log: c.ready_log.as_ref().map(|r| r.as_str().to_string()),
        ready_tcp: c.ready_tcp.as_ref().map(|t| t.render(vars)).transpose()?,
        ready_timeout_ms: c.ready_timeout.as_millis() as u64,
        stop_timeout_ms: c.stop_timeout.as_millis() as u64,
        writable: c
            .writable
            .iter()
            .map(|(from, to)| {
                let under = |t: &crate::environment::template::Template| {
                    t.render(vars).map(|p| dir.join(p).display().to_string())
                };
                Ok((under(from)?, under(to)?))
            })
            .collect::<Result<_, EnvironmentError>>()?,
    })
}

impl Components {
    pub fn new(place: Place) -> Self {
        Components {
            specs: Mutex::new(BTreeMap::new()),
            place: Mutex::new(place),
            children: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
        }
    }

    /// The lock that keeps one control command per component at a time (commands on
    /// other components do not wait for it).
    fn lock_of(&self, name: &str) -> std::sync::Arc<Mutex<()>> {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    pub fn place(&self) -> Place {
        self.place.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn dir(&self) -> PathBuf {
        self.place().dir
    }

    /// The components of `env` (those `only` accepts), rendered with a run's variables.
    pub fn for_environment(
        env: &Environment,
        dir: PathBuf,
        project: PathBuf,
        vars: &BTreeMap<String, String>,
        only: impl Fn(&str) -> bool,
    ) -> Self {
        let specs = env
            .components
            .iter()
            .filter(|(name, _)| only(name))
            .map(|(name, c)| {
                (
                    name.clone(),
                    control_spec(c, &dir, vars)
                        .map_err(ComponentError::from)
                        .and_then(Ready::compile),
                )
            })
            .collect();
        let components = Components::new(Place {
            dir,
            cwd: project,
            remove_env: env.secret_vars(),
        });
        components.replace_specs(specs);
        components
    }

    /// Takes a new configuration (a daemon's, for a new run). What runs keeps running.
    pub fn configure(&self, place: Place, specs: impl IntoIterator<Item = (String, ControlSpec)>) {
        *self.place.lock().unwrap_or_else(|e| e.into_inner()) = place;
        let specs = specs
            .into_iter()
            .map(|(name, spec)| {
                let ready = Ready::compile(spec).map_err(|e| ComponentError::Uncontrollable {
                    name: name.clone(),
                    source: Box::new(e),
                });
                (name, ready)
            })
            .collect();
        self.replace_specs(specs);
    }

    fn replace_specs(&self, specs: BTreeMap<String, Result<Ready, ComponentError>>) {
        *self.specs.lock().unwrap_or_else(|e| e.into_inner()) = specs
            .into_iter()
            .map(|(n, r)| (n, r.map(std::sync::Arc::new).map_err(std::sync::Arc::new)))
            .collect();
    }

    /// The names this controls.
    pub fn names(&self) -> Vec<String> {
        self.specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn spec(&self, name: &str) -> Result<std::sync::Arc<Ready>, ComponentError> {
        let specs = self.specs.lock().unwrap_or_else(|e| e.into_inner());
        match specs.get(name) {
            Some(r) => r.clone().map_err(ComponentError::Unusable),
            None => Err(ComponentError::NotHere {
                name: name.to_string(),
                known: specs.keys().cloned().collect(),
            }),
        }
    }

    fn pidfile(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.pid"))
    }

    /// Present while a component is being stopped on purpose (see `daemon::collect`).
    fn stop_marker(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.stopping"))
    }

    /// The component's pid when its process is alive.
    pub fn find(&self, name: &str) -> Result<Option<i32>, ComponentError> {
        let c = self.spec(name)?;
        Ok(self.find_with(name, &c))
    }

    fn find_with(&self, name: &str, c: &Ready) -> Option<i32> {
        self.reap(name);
        match &c.spec.find {
            FindSpec::Recorded => pid_record::read(&self.pidfile(name)),
            FindSpec::Pidfile { path } => std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .filter(|&pid| alive(pid)),
            FindSpec::Cmdline { .. } => c.find_cmdline.as_ref().and_then(find_by_cmdline),
        }
    }

    /// Reaps the component if it is our child and has exited, so it does not linger as
    /// a zombie that still looks alive.
    fn reap(&self, name: &str) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = children.get_mut(name)
            && process::reap(child)
        {
            children.remove(name);
        }
    }

    /// Starts the component and waits until it is ready, at most `limit` (and at most
    /// its `ready.timeout`).
    pub fn start(&self, name: &str, limit: Duration, stop: Option<&RunControl>) -> Control {
        let lock = self.lock_of(name);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let c = self.spec(name)?;
        if let Some(pid) = self.find_with(name, &c) {
            return Err(ComponentError::AlreadyRunning {
                name: name.to_string(),
                pid,
            });
        }
        let started = Instant::now();
        let place = self.place();
        std::fs::create_dir_all(&place.dir).map_err(|source| ComponentError::CreateDir {
            dir: place.dir.clone(),
            source,
        })?;
        let log = c.spec.log.as_ref().map(PathBuf::from);
        let argv = &c.spec.start;
        if argv.is_empty() {
            return Err(ComponentError::NoStartCommand {
                name: name.to_string(),
            });
        }
        let log_offset = log
            .as_ref()
            .and_then(|l| std::fs::metadata(l).ok())
            .map_or(0, |m| m.len());
        let out_path = place.dir.join(format!("{name}.out"));
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(|source| ComponentError::OpenOutput {
                path: out_path.clone(),
                source,
            })?;
        let err = out.try_clone()?;
        // Its own copies of what it rewrites, fresh from the rendered files each start.
        for (from, to) in &c.spec.writable {
            if let Some(parent) = Path::new(to).parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::copy(from, to).map_err(|source| ComponentError::Copy {
                name: name.to_string(),
                from: from.into(),
                to: to.into(),
                source,
            })?;
        }
        let _ = std::fs::remove_file(self.stop_marker(name));
        let record =
            PreExecRecord::new(&self.pidfile(name)).map_err(|source| ComponentError::Record {
                name: name.to_string(),
                source,
            })?;
        let mut command = Command::new(&argv[0]);
        // SAFETY: the hook runs between fork and exec and makes only async-signal-safe
        // calls (`write_in_child` allocates nothing).
        unsafe {
            command.pre_exec(move || record.write_in_child());
        }
        for var in &place.remove_env {
            command.env_remove(var);
        }
        let child = command
            .args(&argv[1..])
            .envs(c.spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&place.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| {
                // A child whose exec failed may have recorded itself: it is gone.
                let _ = std::fs::remove_file(self.pidfile(name));
                ComponentError::Spawn {
                    name: name.to_string(),
                    program: argv[0].clone(),
                    source,
                }
            })?;
        // The child recorded itself before exec (see `pid_record`).
        let pid = child.id() as i32;
        stall_after_spawn_for_tests(pid);
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), child);

        let ready_timeout = Duration::from_millis(c.spec.ready_timeout_ms);
        let deadline = started + ready_timeout.min(limit);
        let mut log_pos = log_offset;
        let mut pending = String::new();
        // Each condition is remembered once met: a log line read while the port is not
        // open yet is not read again.
        let mut log_ready = c.ready_log.is_none();
        let mut tcp = None;
        loop {
            self.reap(name);
            if !alive(pid) {
                let _ = std::fs::remove_file(self.pidfile(name));
                return Err(ComponentError::ExitedWhileStarting {
                    name: name.to_string(),
                    tail: tail(&out_path, 10),
                });
            }
            if !log_ready && let (Some(re), Some(path)) = (&c.ready_log, &log) {
                log_ready = scan_log(path, &mut log_pos, &mut pending, re);
            }
            let mut ready = log_ready;
            if ready && let Some(addr) = &c.spec.ready_tcp {
                if tcp.is_none() {
                    tcp = addr.to_socket_addrs().ok().and_then(|mut a| a.next());
                }
                ready &= tcp.is_some_and(|a| {
                    TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_ok()
                });
            }
            if ready {
                return Ok(format!(
                    "started {name} (pid {pid}), ready in {}ms",
                    started.elapsed().as_millis()
                ));
            }
            if Instant::now() >= deadline {
                return Err(ComponentError::NotReady {
                    name: name.to_string(),
                    pid,
                    within: ready_timeout.min(limit),
                    tail: tail(&out_path, 10),
                });
            }
            if !super::control::sleep(Duration::from_millis(5), stop) {
                return Err(ComponentError::Interrupted {
                    name: name.to_string(),
                });
            }
        }
    }

    pub fn stop(&self, name: &str) -> Control {
        let lock = self.lock_of(name);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.stop_locked(name)
    }

    fn stop_locked(&self, name: &str) -> Control {
        let c = self.spec(name)?;
        let Some(pid) = self.find_with(name, &c) else {
            let _ = std::fs::remove_file(self.pidfile(name));
            return Ok(format!("{name} is not running"));
        };
        let stop_timeout = Duration::from_millis(c.spec.stop_timeout_ms);
        let place = self.place();
        let started = Instant::now();
        let own = self.is_ours(name, pid);
        // Said before it goes, so a monitoring daemon reports STOPPED, not CRASHED.
        let _ = std::fs::write(self.stop_marker(name), b"");
        // Its own stop command first, when it has one; signals when that fails.
        let mut note = String::new();
        let mut by_command = false;
        if let Some(argv) = c.spec.stop.as_ref().filter(|a| !a.is_empty()) {
            let outcome = process::run(&process::Spec {
                program: argv[0].as_ref(),
                args: &argv[1..],
                env: &[],
                cwd: Some(&place.cwd),
                timeout: stop_timeout,
                limit: 4096,
                stop: None,
                inherit: &process::ChildEnv::inherit(&place.remove_env),
            });
            match outcome {
                Ok(o) if o.status == 0 => by_command = true,
                Ok(o) => {
                    note = format!(
                        "; its stop command exited with status {} ({}), so it got SIGTERM",
                        o.status,
                        o.stderr.text.trim()
                    );
                }
                Err(e) => {
                    note = format!("; its stop command could not run ({e}), so it got SIGTERM")
                }
            }
        }
        if !by_command {
            signal(pid, libc::SIGTERM, own);
        }
        let how = if self.wait_gone(name, pid, stop_timeout) {
            "stopped"
        } else {
            signal(pid, libc::SIGKILL, own);
            if !self.wait_gone(name, pid, Duration::from_secs(5)) {
                return Err(ComponentError::SurvivedKill {
                    name: name.to_string(),
                    pid,
                });
            }
            "killed (it ignored SIGTERM)"
        };
        let _ = std::fs::remove_file(self.pidfile(name));
        Ok(format!(
            "{how} {name} (pid {pid}) in {}ms{note}",
            started.elapsed().as_millis()
        ))
    }

    /// Sends `sig`; for a signal that ends a process, waits until it has.
    pub fn kill(&self, name: &str, sig: i32) -> Control {
        let lock = self.lock_of(name);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let c = self.spec(name)?;
        let Some(pid) = self.find_with(name, &c) else {
            return Err(ComponentError::NotRunning {
                name: name.to_string(),
            });
        };
        let started = Instant::now();
        signal(pid, sig, self.is_ours(name, pid));
        let fatal = matches!(
            sig,
            libc::SIGKILL
                | libc::SIGTERM
                | libc::SIGINT
                | libc::SIGQUIT
                | libc::SIGABRT
                | libc::SIGHUP
                | libc::SIGSEGV
        );
        if !fatal {
            return Ok(format!("sent {} to {name} (pid {pid})", signal_name(sig)));
        }
        let limit = if sig == libc::SIGKILL {
            Duration::from_secs(5)
        } else {
            Duration::from_millis(c.spec.stop_timeout_ms)
        };
        if self.wait_gone(name, pid, limit) {
            Ok(format!(
                "{name} (pid {pid}) ended {}ms after {}",
                started.elapsed().as_millis(),
                signal_name(sig)
            ))
        } else if sig == libc::SIGKILL {
            Err(ComponentError::StillThere {
                name: name.to_string(),
                pid,
            })
        } else {
            Ok(format!(
                "sent {} to {name} (pid {pid}); it is still running",
                signal_name(sig)
            ))
        }
    }

    pub fn restart(&self, name: &str, limit: Duration, stop: Option<&RunControl>) -> Control {
        let stopped = self.stop(name)?;
        let started = self.start(name, limit, stop)?;
        Ok(format!("{stopped}\n{started}"))
    }

    /// Whether `pid` is the component as this lowtouch (or an earlier run) started it.
    fn is_ours(&self, name: &str, pid: i32) -> bool {
        pid_record::read(&self.pidfile(name)) == Some(pid)
    }

    fn wait_gone(&self, name: &str, pid: i32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            self.reap(name);
            if !alive(pid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops components an earlier, crashed run left behind (found by their recorded
    /// pid and start time). Returns what it did.
    pub fn stop_leftovers(&self) -> Vec<String> {
        let recorded: Vec<String> = self
            .specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, c)| c.as_ref().is_ok_and(|c| c.spec.find == FindSpec::Recorded))
            .map(|(name, _)| name.clone())
            .collect();
        let mut notes = Vec::new();
        for name in &recorded {
            if let Some(pid) = pid_record::read(&self.pidfile(name)) {
                match self.stop(name) {
                    Ok(_) => notes.push(format!(
                        "stopped {name} (pid {pid}), left running by an earlier run"
                    )),
                    Err(e) => {
                        notes.push(format!("could not stop {name} left by an earlier run: {e}"))
                    }
                }
            }
        }
        notes
    }

    /// Stops every component this process started that is still running: nothing a run
    /// started outlives it.
    pub fn stop_all_started(&self) -> Vec<String> {
        let names: Vec<String> = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        let mut notes = Vec::new();
        for name in names {
            if let Ok(Some(_)) = self.find(&name) {
                match self.stop(&name) {
                    Ok(m) => notes.push(format!("{m} (still running at the end of the run)")),
                    Err(e) => notes.push(format!("could not stop {name}: {e}")),
                }
            }
        }
        notes
    }
}

/// A fault-injection point for the crash tests only: with `LOWTOUCH_TEST_STALL_AFTER_SPAWN`
/// set to a path, a start writes the new component's pid there and then never goes on, so a
/// test can kill lowtouch right after `spawn()` returned (a moment too short to hit
/// otherwise). Unset, as everywhere but those tests, it does nothing.
fn stall_after_spawn_for_tests(pid: i32) {
    if let Some(path) = std::env::var_os("LOWTOUCH_TEST_STALL_AFTER_SPAWN") {
        let _ = std::fs::write(&path, format!("{pid}\n"));
        loop {
            std::thread::park();
        }
    }
}

/// Components lowtouch started lead their own process group: signal the group, so a
/// wrapper script's children go too. A process found otherwise (a pid file, a command
/// line) is signalled alone: its group may hold processes that are not ours.
fn signal(pid: i32, sig: i32, own_group: bool) {
    // SAFETY: getpgid and kill take plain integers.
    unsafe {
        if own_group && libc::getpgid(pid) == pid {
            kill_group(pid, sig);
        } else {
            libc::kill(pid, sig);
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGSTOP => "SIGSTOP".into(),
        libc::SIGCONT => "SIGCONT".into(),
        n => format!("signal {n}"),
    }
}

/// The process's state and start time from /proc/PID/stat (fields 3 and 22).
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, t)| t)
}

/// Alive: some thread of the process has not exited. A zombie thread-group leader (its
/// main thread ended) is not gone while another of its threads runs: that thread still
/// holds the process's files and sockets, its port among them. Its threads are listed in
/// /proc/PID/task; a thread that has exited has released them.
pub fn alive(pid: i32) -> bool {
    let running = |state: char| state != 'Z' && state != 'X';
    match proc_stat(pid) {
        Some((state, _)) if running(state) => true,
        Some(_) => std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|task| {
                std::fs::read_to_string(task.path().join("stat"))
                    .ok()
                    .and_then(|stat| {
                        let rest = &stat[stat.rfind(')')? + 2..];
                        rest.chars().next()
                    })
                    .is_some_and(running)
            }),
        None => false,
    }
}

fn find_by_cmdline(re: &regex::Regex) -> Option<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        if pid == me {
            return None;
        }
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        (re.is_match(cmdline.trim_end()) && alive(pid)).then_some(pid)
    })
}

/// Reads lines appended to `path` since `pos`; true when one matches `re`.
fn scan_log(path: &Path, pos: &mut u64, pending: &mut String, re: &regex::Regex) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    if len < *pos {
        // Truncated or replaced: read from the start.
        *pos = 0;
        pending.clear();
    }
    if f.seek(SeekFrom::Start(*pos)).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return false;
    }
    *pos += buf.len() as u64;
    pending.push_str(&String::from_utf8_lossy(&buf));
    let mut found = false;
    while let Some(nl) = pending.find('\n') {
        found |= re.is_match(&pending[..nl]);
        pending.drain(..=nl);
    }
    found
}

/// The last `n` lines of a file, for error messages.
fn tail(path: &Path, n: usize) -> String {
    let bytes = crate::monitor::tail::last_lines(path, n, 64 * 1024).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let out = text.trim_end_matches('\n');
    if out.is_empty() {
        "(no output)".into()
    } else {
        out.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process whose main thread ends (leaving a zombie thread-group leader) once the
    /// file `argv[2]` exists, while another thread still holds a listening port; it
    /// ignores SIGTERM, so only SIGKILL ends it.
    const ZOMBIE_LEADER: &str = r#"
import ctypes, os, signal, socket, sys, threading, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
def hold():
    while True:
        time.sleep(1)
threading.Thread(target=hold).start()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
ctypes.CDLL(None).pthread_exit(None)
"#;

    #[test]
    fn a_name_or_pattern_is_bad_input_a_component_that_will_not_start_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let components = Components::new(Place {
            dir: dir.path().to_path_buf(),
            cwd: dir.path().to_path_buf(),
            remove_env: Vec::new(),
        });
        let bad_pattern = ControlSpec {
            start: vec!["true".into()],
            ready_log: Some("(".into()),
            ..ControlSpec::default()
        };
        let exits = ControlSpec {
            start: vec!["false".into()],
            // Never ready (nothing listens on port 1): it is found exited, not ready.
            ready_tcp: Some("127.0.0.1:1".into()),
            ready_timeout_ms: 10_000,
            ..ControlSpec::default()
        };
        components.configure(
            components.place(),
            [("db".to_string(), bad_pattern), ("app".to_string(), exits)],
        );

        let unknown = components.stop("web").unwrap_err();
        assert!(unknown.is_bad_input());
        assert_eq!(
            unknown.to_string(),
            "`web` is not a component controlled here (these are: app, db)"
        );
        let unusable = components
            .start("db", Duration::from_secs(5), None)
            .unwrap_err();
        assert!(unusable.is_bad_input());
        assert!(
            unusable
                .to_string()
                .starts_with("`db` cannot be controlled: `(`: "),
            "{unusable}"
        );
        let exited = components
            .start("app", Duration::from_secs(5), None)
            .unwrap_err();
        assert!(
            matches!(exited, ComponentError::ExitedWhileStarting { .. }),
            "{exited}"
        );
        assert!(!exited.is_bad_input());
        let not_running = components
            .kill("app", libc::SIGTERM)
            .unwrap_err()
            .in_kill(libc::SIGTERM, "app");
        assert!(!not_running.is_bad_input());
        assert_eq!(
            not_running.to_string(),
            "`app` is not running: there is nothing to kill (kill SIGTERM app)"
        );
    }

    /// Whatever a failed assertion leaves running goes with the test.
    struct KillGroupOnDrop(i32);

    impl Drop for KillGroupOnDrop {
        fn drop(&mut self) {
            kill_group(self.0, libc::SIGKILL);
        }
    }

    fn components(dir: &Path, name: &str, spec: ControlSpec) -> Components {
        let place = Place {
            dir: dir.to_path_buf(),
            cwd: dir.to_path_buf(),
            remove_env: Vec::new(),
        };
        let c = Components::new(place.clone());
        c.configure(place, [(name.to_string(), spec)]);
        c
    }

    #[test]
    fn a_process_is_gone_only_when_its_whole_thread_group_has_exited() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("zombie_leader.py");
        std::fs::write(&script, ZOMBIE_LEADER).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spec = ControlSpec {
            start: vec![
                "python3".into(),
                script.display().to_string(),
                port.to_string(),
                dir.path().join("go").display().to_string(),
            ],
            ready_tcp: Some(format!("127.0.0.1:{port}")),
            ready_timeout_ms: 20_000,
            stop_timeout_ms: 200,
            ..ControlSpec::default()
        };
        let c = components(dir.path(), "Z", spec);
        c.start("Z", Duration::from_secs(20), None).unwrap();
        let pid = c.find("Z").unwrap().expect("it runs");
        let _cleanup = KillGroupOnDrop(pid);
        std::fs::write(dir.path().join("go"), b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while proc_stat(pid).map(|(state, _)| state) != Some('Z') {
            assert!(Instant::now() < deadline, "the main thread never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(alive(pid), "a thread of it still runs");
        let stopped = c.stop("Z").unwrap();
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "`stop` said `{stopped}` while the process still held its port"
        );
        assert!(!alive(pid));
    }
}
