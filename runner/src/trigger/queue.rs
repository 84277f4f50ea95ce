//! The run queue: candidates waiting for an environment. It never holds two pending runs
//! of the same pipeline for the same environment — the newest candidate replaces the
//! older one, which is handed back so it can be recorded as skipped.

use std::collections::VecDeque;

/// A set of revisions to test with one pipeline on one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub pipeline: String,
    pub environment: String,
    /// Role (`product`, `tools`, `data`) to revision.
    pub revisions: Vec<(String, String)>,
    /// Why it was queued: a push, a tag, a schedule, a person.
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct RunQueue {
    pending: VecDeque<Candidate>,
}

impl RunQueue {
    /// Queues `c`. Returns the pending candidate it replaced, if any: that one is skipped.
    /// The replacement keeps the replaced one's place, so a burst does not starve others.
    pub fn push(&mut self, c: Candidate) -> Option<Candidate> {
        match self
            .pending
            .iter_mut()
            .find(|p| p.pipeline == c.pipeline && p.environment == c.environment)
        {
            Some(slot) => Some(std::mem::replace(slot, c)),
            None => {
                self.pending.push_back(c);
                None
            }
        }
    }

    /// The next candidate for an environment that is free (`free(env)`).
    pub fn pop_for(&mut self, free: impl Fn(&str) -> bool) -> Option<Candidate> {
        let i = self.pending.iter().position(|c| free(&c.environment))?;
        self.pending.remove(i)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Candidate> {
        self.pending.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pipeline: &str, env: &str, rev: &str) -> Candidate {
        Candidate {
            pipeline: pipeline.into(),
            environment: env.into(),
            revisions: vec![("product".into(), rev.into())],
            reason: "push".into(),
        }
    }

    #[test]
    fn a_burst_coalesces_and_the_newest_wins() {
        let mut q = RunQueue::default();
        assert_eq!(q.push(c("demo", "local", "a")), None);
        assert_eq!(q.push(c("nightly", "local", "a")), None);
        assert_eq!(
            q.push(c("demo", "local", "b")),
            Some(c("demo", "local", "a"))
        );
        assert_eq!(
            q.push(c("demo", "local", "c")),
            Some(c("demo", "local", "b"))
        );
        assert_eq!(q.push(c("demo", "uat-1", "c")), None);
        assert_eq!(q.len(), 3);
        // The newest demo candidate kept the first one's place.
        assert_eq!(q.pop_for(|_| true), Some(c("demo", "local", "c")));
    }

    #[test]
    fn a_busy_environment_is_passed_over() {
        let mut q = RunQueue::default();
        q.push(c("demo", "local", "a"));
        q.push(c("demo", "uat-1", "a"));
        assert_eq!(
            q.pop_for(|env| env != "local"),
            Some(c("demo", "uat-1", "a"))
        );
        assert_eq!(q.pop_for(|env| env != "local"), None);
        assert_eq!(q.pop_for(|_| true), Some(c("demo", "local", "a")));
        assert!(q.is_empty());
    }
}
