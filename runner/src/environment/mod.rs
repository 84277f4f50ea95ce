//! Environments: the YAML model of hosts, components, aliases, variables, templates, test
//! data, secrets and daemons; loading with located errors; name resolution for scenarios;
//! rendering configs (minijinja) into a runtime directory and the config history (git2);
//! generating test data. This module starts no process: `execute` does.

pub mod apply;
pub mod catalog;
#[expect(clippy::module_inception, reason = "the main type of the module")]
pub mod environment;
pub mod error;
pub mod executable;
pub mod history;
pub mod model;
pub mod render;
pub mod template;

pub use catalog::{Resolved, Resolver, Tools};
pub use environment::{Alias, AliasKind, Component, Environment, Find, Override, OverridePlace};
pub use error::EnvironmentError;
