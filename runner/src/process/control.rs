//! What may stop one run: the process's signals, a cancellation (`lowtouch cancel RUN`,
//! a client that hung up) and a pre-emption (a new candidate or a person's run stops a
//! continuous run at its next scenario boundary). A value passed to the run — two runs of
//! one server on two environments each have their own, and cancelling one leaves the
//! other alone.
//!
//! Waiting code polls [`RunControl::fds`] next to its own descriptors, or sleeps through
//! [`RunControl::sleep`].

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::interrupt::Signals;

/// One run's stop buttons; clones share them.
#[derive(Clone)]
pub struct RunControl {
    inner: Arc<Inner>,
}

struct Inner {
    signals: Signals,
    cancelled: AtomicBool,
    preempted: AtomicBool,
    /// Written once on a cancellation; never read, so it stays readable for every waiter.
    wake: Option<(UnixStream, UnixStream)>,
}

impl RunControl {
    /// A run stopped by the process's `signals` or by [`RunControl::cancel`].
    pub fn new(signals: Signals) -> RunControl {
        let wake = UnixStream::pair().ok().inspect(|(read, _)| {
            let _ = read.set_nonblocking(true);
        });
        RunControl {
            inner: Arc::new(Inner {
                signals,
                cancelled: AtomicBool::new(false),
                preempted: AtomicBool::new(false),
                wake,
            }),
        }
    }

    /// A run nothing but [`RunControl::cancel`] stops: no signals (tests).
    pub fn detached() -> RunControl {
        RunControl::new(Signals::ignored())
    }

    /// Whether the run must stop: Ctrl-C, SIGTERM or a cancellation.
    pub fn stop_requested(&self) -> bool {
        self.shutdown() || self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Whether the process must stop (Ctrl-C or SIGTERM), not just the run.
    pub fn shutdown(&self) -> bool {
        self.inner.signals.received()
    }

    /// Whether the run was cancelled (and the process goes on).
    pub fn cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst) && !self.shutdown()
    }

    /// Stops the run as Ctrl-C would, without stopping the process.
    pub fn cancel(&self) {
        if !self.inner.cancelled.swap(true, Ordering::SeqCst)
            && let Some((_, write)) = &self.inner.wake
        {
            let _ = (&*write).write(&[1]);
        }
    }

    /// Asks a pre-emptible run to stop at its next scenario boundary.
    pub fn preempt(&self) {
        self.inner.preempted.store(true, Ordering::SeqCst);
    }

    pub fn preempted(&self) -> bool {
        self.inner.preempted.load(Ordering::SeqCst)
    }

    /// Descriptors that become readable when the run must stop.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut fds: Vec<RawFd> = self.inner.signals.fd().into_iter().collect();
        if let Some((read, _)) = &self.inner.wake {
            fds.push(read.as_raw_fd());
        }
        fds
    }

    /// Sleeps for `d`, waking early when the run must stop. Returns false when it must.
    pub fn sleep(&self, d: Duration) -> bool {
        if self.stop_requested() {
            return false;
        }
        let mut pfds: Vec<libc::pollfd> = self
            .fds()
            .into_iter()
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: valid pollfds, exclusively borrowed for the duration of the call.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms.max(1)) };
            if n > 0 || self.stop_requested() {
                return false;
            }
        }
    }
}

/// Sleeps for `d`; with a control, wakes early when its run must stop (false then).
/// Without one (cleanup, which must finish) it just sleeps.
pub fn sleep(d: Duration, stop: Option<&RunControl>) -> bool {
    match stop {
        Some(control) => control.sleep(d),
        None => {
            std::thread::sleep(d);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelling_one_run_leaves_another_alone() {
        let a = RunControl::detached();
        let b = RunControl::detached();
        a.cancel();
        assert!(a.stop_requested() && a.cancelled());
        assert!(!b.stop_requested() && !b.cancelled());
        assert!(
            !a.sleep(Duration::from_secs(5)),
            "a cancelled run does not sleep"
        );
        assert!(b.sleep(Duration::from_millis(1)));
    }

    #[test]
    fn a_cancellation_wakes_a_sleeper_on_another_thread() {
        let control = RunControl::detached();
        let sleeper = {
            let control = control.clone();
            std::thread::spawn(move || control.sleep(Duration::from_secs(30)))
        };
        control.cancel();
        assert!(!sleeper.join().unwrap());
    }

    #[test]
    fn a_preemption_does_not_stop_a_step() {
        let control = RunControl::detached();
        control.preempt();
        assert!(control.preempted());
        assert!(!control.stop_requested());
    }
}
