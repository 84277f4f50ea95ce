//! Ctrl-C and SIGTERM: the first one asks the run to stop (the running step's process
//! group is stopped, teardown runs, what was done is stored as interrupted); a second one
//! ends the process at once with 130.
//!
//! Waiting code polls [`fd`] next to its own descriptors: the signal handler writes one
//! byte to a socket that nobody reads, so it stays readable for every waiter.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

struct State {
    flag: Arc<AtomicBool>,
    read: UnixStream,
    _write: UnixStream,
}

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
        Some(State {
            flag,
            read,
            _write: write,
        })
    });
}

pub fn requested() -> bool {
    matches!(STATE.get(), Some(Some(s)) if s.flag.load(Ordering::SeqCst))
}

/// A descriptor that becomes readable when an interrupt arrives (and stays so).
pub fn fd() -> Option<RawFd> {
    match STATE.get() {
        Some(Some(s)) => Some(s.read.as_raw_fd()),
        _ => None,
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
    match fd() {
        Some(fd) => {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let deadline = std::time::Instant::now() + d;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return true;
                }
                let ms = left.as_millis().min(i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd for the duration of the call.
                let n = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
                if n > 0 || requested() {
                    return false;
                }
            }
        }
        None => {
            std::thread::sleep(d);
            true
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
