//! Which waiting job may start now. Pure: the server tells it what was asked, what
//! started and what finished; it answers with the jobs to start.
//!
//! One environment runs one job at a time (its lease says so too); jobs on different
//! environments run side by side. Jobs start in the order they were asked, per
//! environment: a later job never overtakes an earlier one that wants the same
//! environment, but it does overtake one that waits for another.

use std::collections::{BTreeSet, VecDeque};

/// A job as the scheduler sees it.
pub trait Needs {
    /// The environments it runs on (empty: none known — it starts at once).
    fn environments(&self) -> &[String];
}

#[derive(Debug)]
pub struct Scheduler<J> {
    waiting: VecDeque<J>,
    busy: BTreeSet<String>,
}

impl<J> Default for Scheduler<J> {
    fn default() -> Self {
        Scheduler {
            waiting: VecDeque::new(),
            busy: BTreeSet::new(),
        }
    }
}

impl<J: Needs> Scheduler<J> {
    /// Queues a job.
    pub fn submit(&mut self, job: J) {
        self.waiting.push_back(job);
    }

    /// The jobs that may start now, in order; they count as running until
    /// [`Scheduler::finished`].
    pub fn start(&mut self) -> Vec<J> {
        let mut started = Vec::new();
        // Environments an earlier waiting job wants: a later one does not jump it.
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        let mut kept = VecDeque::new();
        while let Some(job) = self.waiting.pop_front() {
            let envs = job.environments();
            let free = envs
                .iter()
                .all(|e| !self.busy.contains(e) && !wanted.contains(e));
            if free {
                self.busy.extend(envs.iter().cloned());
                started.push(job);
            } else {
                wanted.extend(envs.iter().cloned());
                kept.push_back(job);
            }
        }
        self.waiting = kept;
        started
    }

    /// A job on `environments` is over: they are free again.
    pub fn finished(&mut self, environments: &[String]) {
        for e in environments {
            self.busy.remove(e);
        }
    }

    /// Whether `environment` has a job running, or one waiting for it.
    pub fn claimed(&self, environment: &str) -> bool {
        self.busy.contains(environment)
            || self
                .waiting
                .iter()
                .any(|j| j.environments().iter().any(|e| e == environment))
    }

    pub fn busy(&self, environment: &str) -> bool {
        self.busy.contains(environment)
    }

    /// The jobs waiting, in order.
    pub fn waiting(&self) -> impl Iterator<Item = &J> {
        self.waiting.iter()
    }

    /// Takes every waiting job (the server stops).
    pub fn drain(&mut self) -> Vec<J> {
        self.waiting.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Job(&'static str, Vec<String>);

    impl Needs for Job {
        fn environments(&self) -> &[String] {
            &self.1
        }
    }

    fn job(name: &'static str, envs: &[&str]) -> Job {
        Job(name, envs.iter().map(|e| e.to_string()).collect())
    }

    fn names(jobs: Vec<Job>) -> Vec<&'static str> {
        jobs.into_iter().map(|j| j.0).collect()
    }

    #[test]
    fn jobs_on_different_environments_start_together() {
        let mut s = Scheduler::default();
        s.submit(job("a", &["env-a"]));
        s.submit(job("b", &["env-b"]));
        assert_eq!(names(s.start()), ["a", "b"]);
        assert!(s.busy("env-a") && s.busy("env-b"));
    }

    #[test]
    fn a_job_waits_for_its_environment_and_starts_when_it_is_free() {
        let mut s = Scheduler::default();
        s.submit(job("first", &["local"]));
        assert_eq!(names(s.start()), ["first"]);
        s.submit(job("second", &["local"]));
        assert!(s.start().is_empty());
        assert!(s.claimed("local"));
        assert_eq!(s.waiting().count(), 1);
        s.finished(&["local".to_string()]);
        assert_eq!(names(s.start()), ["second"]);
        s.finished(&["local".to_string()]);
        assert!(!s.claimed("local"));
    }

    #[test]
    fn a_later_job_never_overtakes_an_earlier_one_on_its_environment() {
        let mut s = Scheduler::default();
        s.submit(job("running", &["x"]));
        s.start();
        s.submit(job("x-and-y", &["x", "y"]));
        s.submit(job("y-only", &["y"]));
        s.submit(job("z-only", &["z"]));
        // y-only waits behind x-and-y (which waits for x); z-only goes ahead.
        assert_eq!(names(s.start()), ["z-only"]);
        s.finished(&["x".to_string()]);
        assert_eq!(names(s.start()), ["x-and-y"]);
        s.finished(&["x".to_string(), "y".to_string()]);
        assert_eq!(names(s.start()), ["y-only"]);
    }

    #[test]
    fn a_job_without_known_environments_starts_at_once() {
        let mut s = Scheduler::default();
        s.submit(job("busy", &["x"]));
        s.start();
        s.submit(job("unknown", &[]));
        assert_eq!(names(s.start()), ["unknown"]);
    }
}
