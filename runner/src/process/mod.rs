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
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

pub mod components;
pub mod control;
pub mod interrupt;
mod pid_record;
mod spawn;

use control::RunControl;
pub use spawn::ChildEnv;

pub struct Spec<'a> {
    pub program: &'a OsStr,
    pub args: &'a [String],
    /// This command's own variables, on top of `inherit`.
    pub env: &'a [(String, String)],
    /// The environment it starts from: lowtouch's own without the secrets' variables,
    /// built once for many commands.
    pub inherit: &'a ChildEnv,
    pub cwd: Option<&'a Path>,
    pub timeout: Duration,
    /// Bytes kept per stream; the rest is counted.
    pub limit: usize,
    /// What stops it early: its run's control (`None` for cleanup, which must finish).
    pub stop: Option<&'a RunControl>,
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
    let child = spawn::spawn(&spawn::Launch {
        program: spec.program,
        args: spec.args,
        inherit: spec.inherit,
        set: spec.env,
        cwd: spec.cwd,
    })?;
    let pid = child.pid;
    let mut out = Pipe::new(child.stdout, spec.limit);
    let mut err = Pipe::new(child.stderr, spec.limit);
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
                None => has_exited(pid)?,
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
    let status = wait(pid)?;
    Ok(Outcome {
        status,
        stdout: out.captured,
        stderr: err.captured,
        timed_out,
        interrupted,
        duration: start.elapsed(),
    })
}

/// Whether the child has exited, leaving it unreaped (its pid, and so its group's id,
/// stays taken until [`wait`]).
fn has_exited(pid: libc::pid_t) -> io::Result<bool> {
    // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our unreaped child; `info` is valid for writes.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            // SAFETY: waitid filled `info` in; si_pid is 0 when nothing has exited.
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Reaps the child: its exit code, or 128 + the signal that ended it.
fn wait(pid: libc::pid_t) -> io::Result<i32> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `pid` is our unreaped child; `status` is valid for writes.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
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

struct Pipe {
    stream: Option<OwnedFd>,
    limit: usize,
    bytes: Vec<u8>,
    captured: Captured,
}

impl Pipe {
    fn new(stream: OwnedFd, limit: usize) -> Pipe {
        set_nonblocking(stream.as_raw_fd());
        Pipe {
            stream: Some(stream),
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
            fds.push(pollfd(s.as_raw_fd()));
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
            let n = unsafe {
                libc::read(
                    stream.as_raw_fd(),
                    scratch.as_mut_ptr().cast(),
                    scratch.capacity(),
                )
            };
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

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own; only flags change. A new pipe's read end has
    // no status flags but O_RDONLY (which F_SETFL ignores), so none is lost.
    unsafe {
        libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
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
            inherit: &ChildEnv::inherit(&[]),
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

    /// `program args` with the environment `inherit` plus `set`, in `cwd`.
    fn run_with(
        program: &str,
        args: &[&str],
        inherit: &ChildEnv,
        set: &[(String, String)],
        cwd: Option<&Path>,
    ) -> io::Result<Outcome> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        run(&Spec {
            program: OsStr::new(program),
            args: &args,
            env: set,
            inherit,
            cwd,
            timeout: Duration::from_secs(10),
            limit: 1 << 20,
            stop: None,
        })
    }

    /// A variable of this process's environment (not PATH), with a value: what the tests of
    /// inheritance and removal use, whatever environment they run in.
    fn some_inherited_variable() -> (String, String) {
        std::env::vars()
            .find(|(k, v)| {
                k != "PATH"
                    && !v.is_empty()
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
            .expect("the test process has an environment variable besides PATH")
    }

    #[test]
    fn a_removed_variable_is_not_inherited_and_the_others_are() {
        let (key, value) = some_inherited_variable();
        let script = format!("echo \"${{{key}-unset}}\"");
        let kept = run_with("sh", &["-c", &script], &ChildEnv::inherit(&[]), &[], None).unwrap();
        assert_eq!(kept.stdout.text, format!("{value}\n"));
        let removed = run_with(
            "sh",
            &["-c", &script],
            &ChildEnv::inherit(std::slice::from_ref(&key)),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(removed.stdout.text, "unset\n");
    }

    #[test]
    fn a_variable_set_for_the_command_replaces_the_inherited_one() {
        let (key, _) = some_inherited_variable();
        let set = [(key.clone(), "from the step".to_string())];
        let o = run_with("env", &[], &ChildEnv::inherit(&[]), &set, None).unwrap();
        let lines: Vec<&str> = o
            .stdout
            .text
            .lines()
            .filter(|l| l.starts_with(&format!("{key}=")))
            .collect();
        assert_eq!(lines, [format!("{key}=from the step")]);
    }

    #[test]
    fn runs_in_the_working_directory_given() {
        let dir = tempfile::tempdir().unwrap();
        let o = run_with(
            "pwd",
            &["-P"],
            &ChildEnv::inherit(&[]),
            &[],
            Some(dir.path()),
        )
        .unwrap();
        assert_eq!(
            o.stdout.text.trim_end(),
            dir.path().canonicalize().unwrap().to_str().unwrap()
        );
    }

    #[test]
    fn stdin_is_dev_null() {
        let o = run_with(
            "readlink",
            &["/proc/self/fd/0"],
            &ChildEnv::inherit(&[]),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(o.stdout.text, "/dev/null\n");
    }

    #[test]
    fn the_child_leads_its_own_process_group() {
        let o = run_with(
            "cat",
            &["/proc/self/stat"],
            &ChildEnv::inherit(&[]),
            &[],
            None,
        )
        .unwrap();
        // pid (comm) state ppid pgrp …
        let fields: Vec<&str> = o.stdout.text.split_whitespace().collect();
        assert_eq!(fields[1], "(cat)");
        assert_eq!(
            fields[0], fields[4],
            "pid and process group differ: {}",
            o.stdout.text
        );
    }

    #[test]
    fn sigpipe_is_back_to_its_default_in_the_child() {
        // This test process ignores SIGPIPE (Rust's runtime does), and an ignored signal
        // stays ignored across exec unless the spawn resets it.
        let o = run_with(
            "cat",
            &["/proc/self/status"],
            &ChildEnv::inherit(&[]),
            &[],
            None,
        )
        .unwrap();
        let ignored = o
            .stdout
            .text
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(
            ignored & (1 << (libc::SIGPIPE - 1)),
            0,
            "SigIgn {ignored:#x}"
        );
    }

    #[test]
    fn a_signal_ends_it_with_128_plus_the_signal() {
        let o = sh("kill -TERM $$", Duration::from_secs(5), 1024);
        assert_eq!(o.status, 128 + libc::SIGTERM);
        assert!(!o.timed_out);
    }

    #[test]
    fn a_path_set_for_the_command_is_searched_for_its_program() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("lowtouch-test-only-here");
        std::fs::write(&program, "#!/bin/sh\necho found\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/bin:/usr/bin", dir.path().display());
        let o = run_with(
            "lowtouch-test-only-here",
            &[],
            &ChildEnv::inherit(&[]),
            &[("PATH".to_string(), path)],
            None,
        )
        .unwrap();
        assert_eq!(o.stdout.text, "found\n");
        let without = run_with(
            "lowtouch-test-only-here",
            &[],
            &ChildEnv::inherit(&[]),
            &[],
            None,
        );
        assert_eq!(without.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_missing_program_on_the_path_says_so() {
        let e = run_with(
            "lowtouch-no-such-program",
            &[],
            &ChildEnv::inherit(&[]),
            &[],
            None,
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "No such file or directory (os error 2)");
    }

    #[test]
    fn a_missing_working_directory_is_an_error() {
        let e = run_with(
            "true",
            &[],
            &ChildEnv::inherit(&[]),
            &[],
            Some(Path::new("/nonexistent/lowtouch-test")),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
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
            inherit: &ChildEnv::inherit(&[]),
        });
        let e = r.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "No such file or directory (os error 2)");
    }
}
