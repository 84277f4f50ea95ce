//! What a server is doing and what waits in its queue, as `lowtouch status` run through
//! its local API shows it. A value the server makes and hands to whoever reports on it
//! or changes it (its loop, the API's router); nothing process-wide.

use std::sync::{Arc, Mutex};

/// What the server says it does, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivitySnapshot {
    pub doing: String,
    /// Runs asked for through the local API, waiting for their turn, oldest first.
    pub queue: Vec<String>,
}

/// A server's activity, shared: clones see and change the same one.
#[derive(Debug, Clone, Default)]
pub struct Activity(Arc<Mutex<ActivitySnapshot>>);

impl Activity {
    /// An activity that says it is `doing` that, with nothing queued.
    pub fn new(doing: impl Into<String>) -> Activity {
        Activity(Arc::new(Mutex::new(ActivitySnapshot {
            doing: doing.into(),
            queue: Vec::new(),
        })))
    }

    pub fn update(&self, change: impl FnOnce(&mut ActivitySnapshot)) {
        // A panic while holding it leaves at worst a stale description: go on with it.
        change(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn snapshot(&self) -> ActivitySnapshot {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_activity() {
        let activity = Activity::new("starting");
        let loop_side = activity.clone();
        loop_side.update(|a| {
            a.doing = "idle".into();
            a.queue.push("run demo".into());
        });
        assert_eq!(
            activity.snapshot(),
            ActivitySnapshot {
                doing: "idle".into(),
                queue: vec!["run demo".into()],
            }
        );
        // Two servers in one process (tests) do not see each other's.
        assert_eq!(
            Activity::new("other").snapshot().queue,
            Vec::<String>::new()
        );
    }
}
