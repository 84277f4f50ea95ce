//! Pipelines: the YAML model (what runs, where, with which limits), loading with located
//! errors, and planning — joining a pipeline with its environment and checking every name
//! before anything runs.

pub mod model;
#[expect(clippy::module_inception, reason = "the main type of the module")]
pub mod pipeline;
pub mod plan;

pub use pipeline::{HookLine, Pipeline, ScenarioFile};
pub use plan::Plan;
