//! Ctrl-C and SIGTERM: the first one asks the run to stop (the running step's process
//! group is stopped, teardown runs, what was done is stored as interrupted); a second one
//! ends the process at once with 130.
//!
//! Waiting code polls [`fds`] next to its own descriptors: the signal handler writes one
//! byte to a socket that nobody reads, so it stays readable for every waiter.
//!
//! A run can also be cancelled (`lowtouch cancel RUN`, through the server): the same stop
//! for the run in progress, but the process goes on — [`shutdown`] stays false, and the
//! server clears the cancellation before its next run.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

struct State {
    flag: Arc<AtomicBool>,
    read: UnixStream,
    _write: UnixStream,
    cancel_read: UnixStream,
    cancel_write: UnixStream,
}

static CANCEL: AtomicBool = AtomicBool::new(false);

static STATE: OnceLock<Option<State>> = OnceLock::new();

/// Installs the handlers; harmless to call more than once.
pub fn install() {
    STATE.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let (read, write) = UnixStream::pair().ok()?;
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Second signal: exit at once. Registered first, so it sees the flag unset
            // on the first signal.
            signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone()).ok()?;
            signal_hook::flag::register(sig, flag.clone()).ok()?;
            signal_hook::low_level::pipe::register(sig, write.try_clone().ok()?).ok()?;
        }
        let (cancel_read, cancel_write) = UnixStream::pair().ok()?;
        cancel_read.set_nonblocking(true).ok()?;
        Some(State {
            flag,
            read,
            _write: write,
            cancel_read,
            cancel_write,
        })
    });
}

/// Whether the run in progress must stop: Ctrl-C, SIGTERM or a cancellation.
pub fn requested() -> bool {
    shutdown() || CANCEL.load(Ordering::SeqCst)
}

/// Whether the process must stop (Ctrl-C or SIGTERM), not just the run.
pub fn shutdown() -> bool {
    matches!(STATE.get(), Some(Some(s)) if s.flag.load(Ordering::SeqCst))
}

/// Whether the run in progress was cancelled (and the process goes on).
pub fn cancelled() -> bool {
    CANCEL.load(Ordering::SeqCst) && !shutdown()
}

/// The run this process is executing, if any: what [`cancel`] may stop.
static CURRENT_RUN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// A run starts: a cancellation meant for an earlier one does not reach it.
pub fn begin_run(run_id: &str) {
    let mut current = CURRENT_RUN.lock().unwrap_or_else(|e| e.into_inner());
    *current = Some(run_id.to_string());
    clear_cancel();
}

/// The run is over: a cancellation that came too late is forgotten.
pub fn end_run() {
    let mut current = CURRENT_RUN.lock().unwrap_or_else(|e| e.into_inner());
    *current = None;
    clear_cancel();
}

/// Stops run `run_id` as Ctrl-C would, without stopping the process. False when this
/// process is not running it (any more).
pub fn cancel(run_id: &str) -> bool {
    install();
    // Under the lock: the run cannot end between the check and the flag.
    let current = CURRENT_RUN.lock().unwrap_or_else(|e| e.into_inner());
    if current.as_deref() != Some(run_id) {
        return false;
    }
    CANCEL.store(true, Ordering::SeqCst);
    if let Some(Some(s)) = STATE.get() {
        use std::io::Write;
        let _ = (&s.cancel_write).write(&[1]);
    }
    true
}

/// Forgets a cancellation once its run is over, so the next run starts clean.
pub fn clear_cancel() {
    CANCEL.store(false, Ordering::SeqCst);
    if let Some(Some(s)) = STATE.get() {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!((&s.cancel_read).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Descriptors that become readable when the run must stop (an interrupt, which stays
/// readable, or a cancellation, until [`clear_cancel`]).
pub fn fds() -> Vec<RawFd> {
    match STATE.get() {
        Some(Some(s)) => vec![s.read.as_raw_fd(), s.cancel_read.as_raw_fd()],
        _ => Vec::new(),
    }
}

/// Sleeps for `d`, waking early on an interrupt when `interruptible`. Returns false
/// when interrupted.
pub fn sleep(d: std::time::Duration, interruptible: bool) -> bool {
    if !interruptible {
        std::thread::sleep(d);
        return true;
    }
    if requested() {
        return false;
    }
    let fds = fds();
    if fds.is_empty() {
        std::thread::sleep(d);
        return true;
    }
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let deadline = std::time::Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: valid pollfds, exclusively borrowed for the duration of the call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms.max(1)) };
        if n > 0 || requested() {
            return false;
        }
    }
}

/// A new candidate arrived while a continuous run goes on: the run stops at the next
/// scenario boundary (the scenario in progress finishes) and the rest is skipped.
static PREEMPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn request_preemption() {
    PREEMPT.store(true, Ordering::SeqCst);
}

pub fn preempted() -> bool {
    PREEMPT.load(Ordering::SeqCst)
}

pub fn clear_preemption() {
    PREEMPT.store(false, Ordering::SeqCst);
}
