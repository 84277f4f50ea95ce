//! The signal bridge: Ctrl-C and SIGTERM. The first one asks every run in progress to stop
//! (its running step's process group is stopped, teardown runs, what was done is stored
//! as interrupted); a second one ends the process at once with 130.
//!
//! Signals are the process's, so this is the one process-wide state lowtouch keeps: the
//! handlers set a flag and write one byte to a socket that nobody reads, so it stays
//! readable for every waiter. Everything else about stopping a run — a cancellation, a
//! pre-emption — belongs to that run's [`super::control::RunControl`].

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

struct Bridge {
    flag: Arc<AtomicBool>,
    read: UnixStream,
    _write: UnixStream,
}

static BRIDGE: OnceLock<Option<Bridge>> = OnceLock::new();

/// What the signal handlers tell: whether the process must stop, and a descriptor that
/// becomes readable when it must. [`Signals::ignored`] tells nothing (tests, a library
/// user that handles signals itself).
#[derive(Clone, Copy)]
pub struct Signals {
    bridge: Option<&'static Bridge>,
}

/// Installs the handlers (once per process; harmless to call again) and returns what
/// they tell.
pub fn install() -> Signals {
    let bridge = BRIDGE.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let (read, write) = UnixStream::pair().ok()?;
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Second signal: exit at once. Registered first, so it sees the flag unset
            // on the first signal.
            signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone()).ok()?;
            signal_hook::flag::register(sig, flag.clone()).ok()?;
            signal_hook::low_level::pipe::register(sig, write.try_clone().ok()?).ok()?;
        }
        Some(Bridge {
            flag,
            read,
            _write: write,
        })
    });
    Signals {
        bridge: bridge.as_ref(),
    }
}

impl Signals {
    /// Signals that never arrive.
    pub fn ignored() -> Signals {
        Signals { bridge: None }
    }

    /// Whether Ctrl-C or SIGTERM arrived: the process must stop.
    pub fn received(&self) -> bool {
        self.bridge.is_some_and(|b| b.flag.load(Ordering::SeqCst))
    }

    /// A descriptor that becomes readable (and stays so) when a signal arrived.
    pub fn fd(&self) -> Option<RawFd> {
        self.bridge.map(|b| b.read.as_raw_fd())
    }
}
