//! Processes, below execution and the daemons alike: running one command (here: no
//! shell, its own process group, bounded output capture, a timeout that kills the whole
//! group, an early stop when its run must stop), the environment's long-running
//! [`components`], and what stops a run ([`control`], fed by the [`interrupt`] signal
//! bridge).
//!
//! One thread waits on everything at once with poll(2): the two output pipes, a pidfd
//! for the child's exit, and the interrupt descriptor. That keeps a step's overhead close
//! to the spawn itself.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub mod components;
pub mod control;
pub mod interrupt;
mod pid_record;

use control::RunControl;

pub struct Spec<'a> {
    pub program: &'a OsStr,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
    pub timeout: Duration,
    /// Bytes kept per stream; the rest is counted.
    pub limit: usize,
    /// What stops it early: its run's control (`None` for cleanup, which must finish).
    pub stop: Option<&'a RunControl>,
    /// Variables of lowtouch's own environment the child must not inherit (secrets).
    pub remove_env: &'a [String],
}

#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub text: String,
    /// Bytes beyond the limit: counted, not kept.
    pub dropped: u64,
}

#[derive(Debug)]
pub struct Outcome {
    /// The exit code, or 128 + the signal that ended it (as shells report it).
    pub status: i32,
    pub stdout: Captured,
    pub stderr: Captured,
    pub timed_out: bool,
    pub interrupted: bool,
    pub duration: Duration,
}

/// How long a process group gets between SIGTERM and SIGKILL after an interrupt.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

pub fn run(spec: &Spec<'_>) -> io::Result<Outcome> {
    let start = Instant::now();
    let mut cmd = Command::new(spec.program);
    for var in spec.remove_env {
        cmd.env_remove(var);
    }
    cmd.args(spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cwd) = spec.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    let mut out = Pipe::new(child.stdout.take().map(Stream::Out), spec.limit);
    let mut err = Pipe::new(child.stderr.take().map(Stream::Err), spec.limit);
    let pidfd = PidFd::open(pid);

    // One read buffer for both pipes, allocated once and never zeroed.
    let mut scratch: Vec<u8> = Vec::with_capacity(16 * 1024);
    // Readable when the run must stop: looked up once, polled with the pipes.
    let stop_fds = spec.stop.map(RunControl::fds).unwrap_or_default();
    let mut deadline = start + spec.timeout;
    let mut timed_out = false;
    let mut interrupted = false;
    let mut exited = false;
    let mut killed = false;
    loop {
        if !exited {
            exited = match &pidfd {
                Some(_) => false,
                None => child.try_wait()?.is_some(),
            };
        }
        if exited && !out.open() && !err.open() {
            break;
        }
        let now = Instant::now();
        if now >= deadline && !exited {
            if interrupted {
                kill_group(pid, libc::SIGKILL);
            } else if !killed {
                timed_out = true;
                kill_group(pid, libc::SIGKILL);
                killed = true;
            }
            deadline = now + Duration::from_secs(5);
        }
        let mut fds = Vec::with_capacity(4);
        out.push_fd(&mut fds);
        err.push_fd(&mut fds);
        let pid_slot = match (&pidfd, exited) {
            (Some(p), false) => {
                fds.push(pollfd(p.0));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let int_slots = if interrupted {
            0..0
        } else {
            let first = fds.len();
            fds.extend(stop_fds.iter().map(|&fd| pollfd(fd)));
            first..fds.len()
        };
        let wait = if exited {
            // The child is gone; what is left in the pipes is already there.
            0
        } else if pidfd.is_none() {
            10
        } else {
            deadline
                .saturating_duration_since(now)
                .as_millis()
                .clamp(1, i32::MAX as u128) as i32
        };
        // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut idx = 0;
        let mut progressed = false;
        for pipe in [&mut out, &mut err] {
            if pipe.open() {
                if fds[idx].revents != 0 {
                    pipe.read_available(&mut scratch);
                    progressed = true;
                }
                idx += 1;
            }
        }
        if let Some(slot) = pid_slot
            && fds[slot].revents != 0
        {
            exited = true;
        }
        if int_slots.clone().any(|slot| fds[slot].revents != 0) && !interrupted {
            interrupted = true;
            kill_group(pid, libc::SIGTERM);
            deadline = Instant::now() + INTERRUPT_GRACE;
        }
        if exited && !progressed {
            // Drained: stop even if a grandchild still holds the pipes open.
            out.close();
            err.close();
        }
    }
    out.close();
    err.close();
    // The leader has exited but is not reaped yet, so its pid (and group id) cannot be
    // reused: whatever it left behind in its group goes now. Long-lived processes are
    // components, started with `start`.
    kill_group(pid, libc::SIGKILL);
    let status = child.wait()?;
    let status = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Outcome {
        status,
        stdout: out.captured,
        stderr: err.captured,
        timed_out,
        interrupted,
        duration: start.elapsed(),
    })
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Signals a whole process group (the child leads its own).
pub fn kill_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// A pidfd becomes readable when the process exits (Linux 5.3+). Without one we fall
/// back to polling `try_wait`.
struct PidFd(RawFd);

impl PidFd {
    fn open(pid: i32) -> Option<PidFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        (fd >= 0).then_some(PidFd(fd as RawFd))
    }
}

impl Drop for PidFd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe {
            libc::close(self.0);
        }
    }
}

enum Stream {
    Out(ChildStdout),
    Err(ChildStderr),
}

struct Pipe {
    stream: Option<Stream>,
    limit: usize,
    bytes: Vec<u8>,
    captured: Captured,
}

impl Pipe {
    fn new(stream: Option<Stream>, limit: usize) -> Pipe {
        if let Some(s) = &stream {
            set_nonblocking(s.fd());
        }
        Pipe {
            stream,
            limit,
            bytes: Vec::new(),
            captured: Captured::default(),
        }
    }

    fn open(&self) -> bool {
        self.stream.is_some()
    }

    fn push_fd(&self, fds: &mut Vec<libc::pollfd>) {
        if let Some(s) = &self.stream {
            fds.push(pollfd(s.fd()));
        }
    }

    /// Reads what the pipe holds now into `scratch` (a buffer of the caller's: no
    /// zeroing per read), keeping up to the limit and counting the rest.
    fn read_available(&mut self, scratch: &mut Vec<u8>) {
        loop {
            let Some(stream) = &self.stream else {
                return;
            };
            scratch.clear();
            // SAFETY: read(2) writes at most `capacity` bytes into the buffer `scratch` owns;
            // its length is set to exactly what was written.
            let n =
                unsafe { libc::read(stream.fd(), scratch.as_mut_ptr().cast(), scratch.capacity()) };
            match n {
                0 => {
                    self.close();
                    return;
                }
                n if n > 0 => {
                    // SAFETY: the kernel initialised the first `n` bytes.
                    unsafe { scratch.set_len(n as usize) };
                    let n = n as usize;
                    let room = self.limit.saturating_sub(self.bytes.len());
                    let keep = n.min(room);
                    self.bytes.extend_from_slice(&scratch[..keep]);
                    self.captured.dropped += (n - keep) as u64;
                }
                _ => match io::Error::last_os_error().kind() {
                    io::ErrorKind::WouldBlock => return,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        self.close();
                        return;
                    }
                },
            }
        }
    }

    fn close(&mut self) {
        self.stream = None;
        self.captured.text = String::from_utf8_lossy(&self.bytes).into_owned();
    }
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Out(s) => s.as_raw_fd(),
            Stream::Err(s) => s.as_raw_fd(),
        }
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own; only flags change.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Lets components keep their `Child` for reaping without a second wait implementation.
pub fn reap(child: &mut Child) -> bool {
    matches!(child.try_wait(), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration, limit: usize) -> Outcome {
        let args = vec!["-c".to_string(), script.to_string()];
        run(&Spec {
            program: OsStr::new("sh"),
            args: &args,
            env: &[],
            cwd: None,
            timeout,
            limit,
            stop: None,
            remove_env: &[],
        })
        .unwrap()
    }

    #[test]
    fn captures_output_and_status() {
        let o = sh(
            "echo out; echo err >&2; exit 3",
            Duration::from_secs(5),
            1024,
        );
        assert_eq!(o.status, 3);
        assert_eq!(o.stdout.text, "out\n");
        assert_eq!(o.stderr.text, "err\n");
        assert!(!o.timed_out);
    }

    #[test]
    fn output_is_bounded_and_the_rest_counted() {
        let o = sh("head -c 100000 /dev/zero", Duration::from_secs(5), 1000);
        assert_eq!(o.stdout.text.len(), 1000);
        assert_eq!(o.stdout.dropped, 99_000);
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-survived");
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let o = sh(&script, Duration::from_millis(200), 1024);
        assert!(o.timed_out);
        assert_eq!(o.status, 128 + libc::SIGKILL);
        std::thread::sleep(Duration::from_millis(1300));
        assert!(!marker.exists(), "the grandchild outlived the timeout");
    }

    #[test]
    fn a_background_grandchild_does_not_outlive_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg.pid");
        let script = format!("sleep 30 & echo $! > {}; echo done", pidfile.display());
        let o = sh(&script, Duration::from_secs(10), 1024);
        assert_eq!(o.stdout.text, "done\n");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            !components::alive(pid)
        });
        assert!(gone, "the step's background child survived it");
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let r = run(&Spec {
            program: OsStr::new("/nonexistent/lowtouch-test"),
            args: &[],
            env: &[],
            cwd: None,
            timeout: Duration::from_secs(1),
            limit: 10,
            stop: None,
            remove_env: &[],
        });
        assert!(r.is_err());
    }
}
