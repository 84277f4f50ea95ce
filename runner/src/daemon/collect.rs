//! The daemon's collectors, on a thread of their own that sleeps in one `poll(2)`: it
//! wakes when a followed log's directory changes (inotify: a line written, a file
//! rotated or created — the pid files live there too), when a component's process exits
//! (a pidfd each), when the interval's metrics are due, and at the latest every
//! [`LOG_POLL`] in case a file system does not report changes. Nothing is read while
//! nothing happens. Everything goes into the shared outbox, on this host's clock.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Shared;
use crate::clock::now_us;
use crate::monitor::procfs::{self, CpuTimes, ProcStat};
use crate::monitor::{Follower, Rule, RuleKind, RuleSet};
use crate::net::codec::{DaemonConfig, Observation};

/// The shortest window a process's CPU percentage is measured over: `/proc` counts CPU
/// time in clock ticks (10 ms), so a 1 s window is accurate to about 1 %.
pub const CPU_WINDOW: Duration = Duration::from_millis(950);

/// The longest the collector sleeps without looking (for file systems without inotify).
pub const LOG_POLL: Duration = Duration::from_secs(1);

/// Stops the collector thread when dropped.
pub struct Collector {
    stop: Arc<AtomicBool>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts collecting into `shared` until the returned handle is dropped.
pub fn spawn(shared: Arc<Shared>) -> Collector {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("collect".into())
        .spawn(move || collect(shared, flag))
        .ok();
    Collector { stop }
}

/// A component's process as last seen.
#[derive(Default)]
struct Tracked {
    /// pid and start time: a process's identity.
    identity: Option<(u32, u64)>,
    /// Readable once that process has exited.
    pidfd: Option<std::os::fd::OwnedFd>,
    last: Option<(Instant, ProcStat)>,
    /// Whether it was looked for at least once (the first sighting is no event).
    looked: bool,
    /// The last process reported ended (or found ended at the first look): not again.
    ended: Option<(u32, u64)>,
    /// The pid file's modification time and length when last read.
    stamp: Option<(std::time::SystemTime, u64)>,
}

fn pidfd_open(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative return is a descriptor we own.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// inotify on the directories of the followed logs and pid files.
struct DirWatch {
    fd: Option<std::os::fd::OwnedFd>,
    watched: std::collections::HashSet<std::path::PathBuf>,
    /// Watch descriptor → its directory, to name the files that changed.
    dirs: HashMap<i32, std::path::PathBuf>,
}

/// What changed since the last look: some files, or (after a timeout or a lost event)
/// possibly anything.
enum Changed {
    Files(std::collections::HashSet<std::path::PathBuf>),
    Anything,
}

impl Changed {
    fn any(&self) -> bool {
        match self {
            Changed::Files(f) => !f.is_empty(),
            Changed::Anything => true,
        }
    }

    fn has(&self, path: &Path) -> bool {
        match self {
            Changed::Files(f) => f.contains(path),
            Changed::Anything => true,
        }
    }

    /// A log changed: its file, or a file named after it in its directory (where a
    /// rotated-away `app.log.1` or `app.log-20261125` still gets its last lines).
    fn has_log(&self, path: &Path) -> bool {
        match self {
            Changed::Files(f) => f.iter().any(|c| {
                c == path
                    || (c.parent() == path.parent()
                        && path
                            .file_name()
                            .zip(c.file_name())
                            .is_some_and(|(log, name)| {
                                name.as_encoded_bytes().starts_with(log.as_encoded_bytes())
                            }))
            }),
            Changed::Anything => true,
        }
    }
}

impl DirWatch {
    fn new() -> DirWatch {
        use std::os::fd::FromRawFd;
        // SAFETY: inotify_init1 takes flags and returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        DirWatch {
            // SAFETY: a non-negative return is a descriptor we own.
            fd: (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }),
            watched: Default::default(),
            dirs: HashMap::new(),
        }
    }

    /// Watches `dir` (again, if it did not exist before).
    fn watch(&mut self, dir: &Path) {
        use std::os::fd::AsRawFd;
        let Some(fd) = &self.fd else { return };
        if self.watched.contains(dir) {
            return;
        }
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
            return;
        };
        let mask = libc::IN_MODIFY
            | libc::IN_CREATE
            | libc::IN_MOVED_TO
            | libc::IN_MOVED_FROM
            | libc::IN_DELETE
            | libc::IN_ATTRIB
            | libc::IN_CLOSE_WRITE;
        // SAFETY: a valid descriptor and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) };
        if wd >= 0 {
            self.watched.insert(dir.to_path_buf());
            self.dirs.insert(wd, dir.to_path_buf());
        }
    }

    /// Reads pending events away: the files they name (a lost event: anything).
    fn drain(&self) -> Changed {
        use std::os::fd::AsRawFd;
        let mut files = std::collections::HashSet::new();
        let Some(fd) = &self.fd else {
            return Changed::Files(files);
        };
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into a buffer we own, at most its length.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return Changed::Files(files);
            }
            // Room was left for another event of the longest name: there was none (no
            // second `read` to hear EAGAIN; a later event wakes the next poll).
            let all_read = (n as usize) + MAX_EVENT <= buf.len();
            let mut at = 0usize;
            let header = std::mem::size_of::<libc::inotify_event>();
            while at + header <= n as usize {
                // SAFETY: the kernel wrote whole events; read_unaligned copes with the
                // buffer's alignment.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let name_len = event.len as usize;
                if event.mask & libc::IN_Q_OVERFLOW != 0 {
                    return Changed::Anything;
                }
                let name = &buf[at + header..(at + header + name_len).min(n as usize)];
                let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
                if let Some(dir) = self.dirs.get(&event.wd) {
                    use std::os::unix::ffi::OsStrExt;
                    files.insert(dir.join(std::ffi::OsStr::from_bytes(name)));
                }
                at += header + name_len;
            }
            if all_read {
                return Changed::Files(files);
            }
        }
    }
}

/// The longest inotify event: its header and a name of `NAME_MAX` bytes with its NUL.
const MAX_EVENT: usize = std::mem::size_of::<libc::inotify_event>() + 255 + 1;

/// Sleeps up to `timeout` in one poll(2); returns the components whose process exited
/// and the files that changed in the watched directories (after a timeout: anything,
/// so everything is looked at).
fn wait(
    tracked: &HashMap<String, Tracked>,
    dirs: &DirWatch,
    wake: &std::os::unix::net::UnixStream,
    timeout: Duration,
) -> (Vec<String>, Changed) {
    use std::os::fd::AsRawFd;
    let watched: Vec<(&String, i32)> = tracked
        .iter()
        .filter_map(|(n, t)| t.pidfd.as_ref().map(|fd| (n, fd.as_raw_fd())))
        .collect();
    let mut fds: Vec<libc::pollfd> = watched
        .iter()
        .map(|(_, fd)| libc::pollfd {
            fd: *fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    if let Some(fd) = &dirs.fd {
        fds.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    fds.push(libc::pollfd {
        fd: wake.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: valid pollfds, exclusively borrowed for the call.
    let n = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            timeout.as_millis().clamp(1, i32::MAX as u128) as i32,
        )
    };
    if n <= 0 {
        return (Vec::new(), Changed::Anything);
    }
    if fds.last().is_some_and(|f| f.revents != 0) {
        use std::io::Read;
        let mut b = [0u8; 64];
        while matches!((&*wake).read(&mut b), Ok(n) if n > 0) {}
    }
    let exited = watched
        .iter()
        .zip(&fds)
        .filter(|(_, f)| f.revents != 0)
        .map(|((name, _), _)| (*name).clone())
        .collect();
    (exited, dirs.drain())
}

struct Log {
    component: String,
    follower: Follower,
    rules: RuleSet,
}

fn collect(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let proc_root = Path::new("/proc");
    let mut current: Option<DaemonConfig> = None;
    let mut logs: Vec<Log> = Vec::new();
    let mut tracked: HashMap<String, Tracked> = HashMap::new();
    let mut system_before: Option<(Instant, CpuTimes)> = None;
    let mut next_sample = Instant::now();
    let mut buf = Vec::new();
    let mut dirs = DirWatch::new();
    let mut generation = 0;
    while !stop.load(Ordering::SeqCst) {
        let mut out = Vec::new();
        // A new configuration: new followers (from the logs' ends), new watches.
        let latest = shared.generation.load(Ordering::SeqCst);
        if latest != generation {
            generation = latest;
            if let Some(config) = shared
                .config
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                logs = build_logs(&config, &shared, std::mem::take(&mut logs));
                tracked.retain(|name, _| config.components.iter().any(|c| &c.name == name));
                dirs = DirWatch::new();
                // Said once the logs are followed: from here on nothing they get is missed.
                out.push(event(
                    "daemon",
                    "configured",
                    &format!("{} component(s)", config.components.len()),
                ));
                current = Some(config);
            }
        }
        let Some(config) = &current else {
            let _ = wait(&tracked, &dirs, &shared.wake.1, LOG_POLL);
            continue;
        };
        // Every directory a log or a pid file is in (again, once it exists).
        for c in &config.components {
            for f in [&c.log, &c.pid_file].into_iter().flatten() {
                if let Some(dir) = Path::new(f).parent() {
                    dirs.watch(dir);
                }
            }
        }
        let first_pass = !out.is_empty();
        let (exited, changed) = if first_pass {
            (Vec::new(), Changed::Anything)
        } else {
            let timeout = next_sample
                .saturating_duration_since(Instant::now())
                .min(LOG_POLL);
            wait(&tracked, &dirs, &shared.wake.1, timeout)
        };
        let now = Instant::now();
        let sample = now >= next_sample;
        if sample {
            next_sample = now + Duration::from_millis(config.interval_ms.max(10));
        }
        if changed.any() || sample {
            for log in &mut logs {
                // Only a log whose file changed (or all of them, now and then).
                if !sample && !changed.has_log(log.follower.path()) {
                    continue;
                }
                buf.clear();
                if let Err(e) = log.follower.poll(&mut buf) {
                    out.push(event(&log.component, "log_error", &e.to_string()));
                    continue;
                }
                if !buf.is_empty() {
                    extract(&log.component, &log.rules, &buf, &mut out);
                }
            }
        }
        if config.collectors.iter().any(|c| c == "process") {
            for c in &config.components {
                let Some(pid_file) = &c.pid_file else {
                    continue;
                };
                let t = tracked.entry(c.name.clone()).or_default();
                // Looked at when its metrics are due, when its process exited, or when
                // its pid file changed (a start).
                let mut look = sample || !t.looked || exited.contains(&c.name);
                if changed.has(Path::new(pid_file)) {
                    let stamp = std::fs::metadata(pid_file)
                        .ok()
                        .and_then(|m| Some((m.modified().ok()?, m.len())));
                    look |= stamp != t.stamp;
                    t.stamp = stamp;
                }
                if look {
                    watch_process(
                        proc_root,
                        &c.name,
                        Path::new(pid_file),
                        c.stop_marker.as_deref().map(Path::new),
                        t,
                        sample,
                        &mut out,
                    );
                }
            }
        }
        if sample
            && config.collectors.iter().any(|c| c == "system")
            && let Ok(s) = procfs::read_system(proc_root)
        {
            let at_us = now_us();
            let metric = |name: &str, value: f64| Observation::Metric {
                at_us,
                source: "system".into(),
                name: name.into(),
                value,
            };
            match system_before {
                Some((then, _)) if now.duration_since(then) < CPU_WINDOW => {}
                Some((_, before)) => {
                    out.push(metric("cpu_percent", procfs::cpu_percent(before, s.cpu)));
                    system_before = Some((now, s.cpu));
                }
                None => system_before = Some((now, s.cpu)),
            }
            out.push(metric("memory_used_bytes", s.memory.used() as f64));
            out.push(metric("memory_available_bytes", s.memory.available as f64));
            out.push(metric("load1", s.load[0]));
        }
        deliver(&shared, out);
    }
}

/// New lines of `component`'s log (or a probe's output) through its rules.
pub(super) fn extract(component: &str, rules: &RuleSet, buf: &[u8], out: &mut Vec<Observation>) {
    let at_us = now_us();
    rules.scan(buf, |x| {
        let value = String::from_utf8_lossy(x.value).into_owned();
        match rules.rules()[x.rule].kind() {
            RuleKind::Event(name) => out.push(Observation::Event {
                at_us,
                source: component.to_string(),
                name: name.clone(),
                value,
            }),
            RuleKind::Metric(name) => match x.number {
                Some(v) => out.push(Observation::Metric {
                    at_us,
                    source: component.to_string(),
                    name: name.clone(),
                    value: v,
                }),
                None => out.push(event(
                    component,
                    "unparsable_metric",
                    &format!("{name}: {value}"),
                )),
            },
        }
    });
}

/// Puts `out` in the outbox and sends what the connection takes now.
pub(super) fn deliver(shared: &Shared, out: Vec<Observation>) {
    if out.is_empty() {
        return;
    }
    let mut outbox = shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
    for o in out {
        outbox.push(o);
    }
    // Sent from here, at once; while disconnected they wait in the outbox for the next
    // connection. The connection is read under the outbox's lock, which a connection
    // holds while it comes and goes: never an old one after a reconnect restarted the
    // outbox.
    let wire = shared
        .wire
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(wire) = wire {
        super::wire::send_collected(&mut outbox, &wire);
    }
}

/// The rules of a configuration, compiled; a rule that does not compile is reported
/// (checked where the environment is loaded, but a router of another build may send one).
pub(super) fn compile(
    component: &str,
    specs: &[crate::net::codec::RuleConfig],
    out: &mut Vec<Observation>,
) -> RuleSet {
    let mut rules = Vec::new();
    for r in specs {
        let kind = match (&r.event, &r.metric) {
            (Some(e), _) => RuleKind::Event(e.clone()),
            (None, Some(m)) => RuleKind::Metric(m.clone()),
            (None, None) => continue,
        };
        match Rule::new(&r.pattern, kind) {
            Ok(rule) => rules.push(rule),
            Err(e) => out.push(event(
                component,
                "config_error",
                &format!("rule `{}`: {e}", r.pattern),
            )),
        }
    }
    RuleSet::new(rules)
}

pub(super) fn event(source: &str, name: &str, value: &str) -> Observation {
    Observation::Event {
        at_us: now_us(),
        source: source.into(),
        name: name.into(),
        value: value.into(),
    }
}

/// The logs a configuration follows. A log followed before (same component, same file)
/// keeps its follower, so a new configuration — every run sends one — loses no line
/// written meanwhile; a new one starts at the file's end.
fn build_logs(config: &DaemonConfig, shared: &Shared, mut before: Vec<Log>) -> Vec<Log> {
    let mut logs = Vec::new();
    if !config.collectors.iter().any(|c| c == "log") {
        return logs;
    }
    for c in &config.components {
        let Some(path) = &c.log else { continue };
        let mut errors = Vec::new();
        let rules = compile(&c.name, &c.rules, &mut errors);
        {
            let mut outbox = shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
            for e in errors {
                outbox.push(e);
            }
        }
        let kept = before
            .iter()
            .position(|l| l.component == c.name && l.follower.path() == Path::new(path))
            .map(|i| before.swap_remove(i).follower);
        logs.push(Log {
            component: c.name.clone(),
            // A daemon attaching to a live log reports what comes, not its history.
            follower: kept.unwrap_or_else(|| Follower::new(path, true)),
            rules,
        });
    }
    logs
}

/// Reads a pid file as `execute::components` writes it: `PID START_TICKS`.
pub fn read_pid_file(path: &Path) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[allow(clippy::too_many_arguments)]
fn watch_process(
    proc_root: &Path,
    name: &str,
    pid_file: &Path,
    stop_marker: Option<&Path>,
    t: &mut Tracked,
    sample: bool,
    out: &mut Vec<Observation>,
) {
    // The process the pid file names, and whether it is that process and alive (a zombie
    // is not).
    let recorded = read_pid_file(pid_file);
    let live = recorded.and_then(|(pid, start)| {
        let s = procfs::read_process(proc_root, pid).ok().flatten()?;
        (s.stat.start_ticks == start && s.stat.state != b'Z').then_some((pid, start, s))
    });
    let first = !t.looked;
    t.looked = true;
    let ended = |t: &mut Tracked, out: &mut Vec<Observation>, identity: (u32, u64)| {
        // Whoever stops a component on purpose (`execute::components`, here or in a
        // run) says so with the marker first.
        let stopped = stop_marker.is_some_and(Path::exists);
        out.push(event(
            name,
            "process",
            if stopped { "STOPPED" } else { "CRASHED" },
        ));
        t.identity = None;
        t.pidfd = None;
        t.last = None;
        t.ended = Some(identity);
    };
    match (t.identity, &live) {
        (None, Some((pid, start, _))) => {
            if !first {
                out.push(event(name, "process", "STARTED"));
            }
            t.identity = Some((*pid, *start));
            t.pidfd = pidfd_open(*pid);
            t.last = None;
        }
        (Some(old), Some((pid, start, _))) if old != (*pid, *start) => {
            out.push(event(name, "process", "RESTARTED"));
            t.identity = Some((*pid, *start));
            t.pidfd = pidfd_open(*pid);
            t.last = None;
        }
        (Some(old), None) => ended(t, out, old),
        (None, None) => {
            // A process that started and ended between two looks: it still happened.
            if let Some(id) = recorded
                && t.ended != Some(id)
            {
                if first {
                    t.ended = Some(id);
                } else {
                    out.push(event(name, "process", "STARTED"));
                    ended(t, out, id);
                }
            }
        }
        _ => {}
    }
    if !sample {
        return;
    }
    let Some((_, _, s)) = live else { return };
    let now = Instant::now();
    let at_us = now_us();
    let metric = |metric: &str, value: f64| Observation::Metric {
        at_us,
        source: name.into(),
        name: metric.into(),
        value,
    };
    out.push(metric("rss_bytes", s.rss_bytes as f64));
    out.push(metric("threads", s.stat.threads as f64));
    out.push(metric("open_files", s.open_files as f64));
    match &t.last {
        // Ticks are 10 ms: over a window shorter than CPU_WINDOW the percentage would
        // come in steps of 10 % or worse; a fast interval samples memory often and CPU
        // as often as it can be measured.
        Some((then, _)) if now.duration_since(*then) < CPU_WINDOW => {}
        Some((then, before)) => {
            let wall = now.duration_since(*then).as_secs_f64();
            out.push(metric(
                "cpu_percent",
                procfs::process_cpu_percent(before, &s.stat, wall),
            ));
            t.last = Some((now, s.stat));
        }
        None => t.last = Some((now, s.stat)),
    }
}
