//! What a server is doing and what waits: written by the server's loop, read by `lowtouch
//! status` run inside it; and the nudge by which a command run inside it (`resume`,
//! `unlock`) tells the loop that held work may go. A value the server hands to its
//! [`super::App`], not a global.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// A view of the server's work; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    inner: Arc<Mutex<Now>>,
    freed: Arc<Notify>,
}

/// The server's work at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Now {
    /// What runs, or what it waits for.
    pub doing: String,
    /// Runs asked for and not started yet, in order.
    pub queue: Vec<String>,
}

impl Activity {
    pub fn set(&self, now: Now) {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn get(&self) -> Now {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// An environment was resumed or unlocked: what waited for it may run now.
    pub fn freed(&self) {
        self.freed.notify_one();
    }

    /// Resolves at the next [`Activity::freed`] (or at once for one that came first).
    pub async fn was_freed(&self) {
        self.freed.notified().await;
    }
}
