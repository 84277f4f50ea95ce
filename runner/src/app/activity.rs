//! What a server is doing and what waits: written by the server's loop, read by `lowtouch
//! status` run inside it; and the nudge by which a command run inside it (`resume`,
//! `unlock`) tells the loop that held work may go. A value the server hands to its
//! [`super::App`], not a global.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// A view of the server's work; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    inner: Arc<Mutex<Now>>,
    freed: Arc<Notify>,
    deliveries: Arc<Mutex<VecDeque<Delivered>>>,
}

/// How many webhook deliveries `status --deliveries` keeps, newest last.
const DELIVERIES_KEPT: usize = 50;

/// One webhook delivery as it came and what became of it. Refused ones too: their
/// header values are whatever the sender wrote, so they are cut short here and escaped
/// where they are shown.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Delivered {
    pub at: String,
    pub id: String,
    pub event: String,
    /// `owner/name`, when the payload was taken.
    pub repository: String,
    pub git_ref: String,
    /// The HTTP status and what it said: `202 accepted`, `401 X-Hub-Signature-256 …`.
    pub outcome: String,
}

impl Delivered {
    pub fn new(id: &str, event: &str, repository: &str, git_ref: &str, outcome: &str) -> Self {
        let cut = |s: &str| s.chars().take(120).collect::<String>();
        Delivered {
            at: crate::clock::now(),
            id: cut(id),
            event: cut(event),
            repository: cut(repository),
            git_ref: cut(git_ref),
            outcome: cut(outcome),
        }
    }
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

    /// Keeps a webhook delivery for `status --deliveries` (the last 50).
    pub fn delivered(&self, d: Delivered) {
        let mut all = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() == DELIVERIES_KEPT {
            all.pop_front();
        }
        all.push_back(d);
    }

    /// The deliveries kept, oldest first.
    pub fn deliveries(&self) -> Vec<Delivered> {
        let all = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().cloned().collect()
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
