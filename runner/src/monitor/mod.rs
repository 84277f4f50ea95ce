//! The monitoring network's collectors (issue 5): what a daemon on a host of the system
//! under test watches. So far: [`rules`] (log lines into events and metric samples, pure)
//! and [`follow`] (a log file followed like `tail -F`, across rotation and truncation).
//! Still to come: system and process collectors, the daemon, the router and its wire
//! protocol, the script manager and the data processor.
//!
//! **Owns:** reading logs and turning them into events. **May not touch:** the store,
//! runs, the network (a daemon wires these to the router).

pub mod follow;
pub mod rules;

pub use follow::{Follower, Happened};
pub use rules::{Extraction, Rule, RuleKind, RuleSet};
