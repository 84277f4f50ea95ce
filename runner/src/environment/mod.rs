//! Environments: the YAML model of hosts, components, aliases and variables, loading with
//! located errors, and name resolution for scenarios. Templates and test data join here
//! in a later issue. This module starts no process: `execute` does.

pub mod catalog;
#[expect(clippy::module_inception, reason = "the main type of the module")]
pub mod environment;
pub mod model;
pub mod template;

pub use catalog::{Resolved, Resolver, Tools};
pub use environment::{Alias, AliasKind, Component, Environment, Find};
