//! The monitoring network's collectors (issue 5): what a daemon on a host of the system
//! under test watches. So far: [`rules`] (log lines into events and metric samples, pure),
//! [`follow`] (a log file followed like `tail -F`, across rotation and truncation) and
//! [`procfs`] (system and process metrics from `/proc`, computed as psutil does). Still to
//! come: the daemon that runs them on a timer, the router, the script manager and the
//! data processor.
//!
//! **Owns:** reading logs and turning them into events. **May not touch:** the store,
//! runs, the network (a daemon wires these to the router).

pub mod follow;
pub mod procfs;
pub mod rules;

pub use follow::{Follower, Happened};
pub use rules::{Extraction, Rule, RuleKind, RuleSet};
