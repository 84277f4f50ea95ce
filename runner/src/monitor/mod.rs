//! The monitoring network's collectors: what a daemon on a host of the system under test
//! watches. [`rules`] (log lines into events and metric samples, pure), [`follow`] (a log
//! file followed like `tail -F`, across rotation and truncation), [`procfs`] (system and
//! process metrics from `/proc`, computed as psutil does; the host's facts) and [`tail`]
//! (the end of a log, read from its end). `daemon` runs them; `net` carries what they see.
//!
//! **Owns:** reading logs and turning them into events. **May not touch:** the store,
//! runs, the network (a daemon wires these to the router).

pub mod follow;
pub mod procfs;
pub mod rules;
pub mod tail;

pub use follow::{Follower, Happened};
pub use rules::{Extraction, Rule, RuleKind, RuleSet};
