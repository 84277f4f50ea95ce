//! Pipelines: the YAML model (what runs, where, with which limits), loading with located
//! errors, and planning — joining a pipeline with its environment and checking every name
//! before anything runs.

pub mod model;
#[expect(clippy::module_inception, reason = "the main type of the module")]
pub mod pipeline;
pub mod plan;

pub use model::CrashPolicy;
pub use pipeline::{HookLine, Pipeline, ScenarioFile};
pub use plan::Plan;

/// The masks of the pipelines a run ran: the defaults and each named pipeline's
/// `masks:` (read from the project as it is now).
/// The judge's policy of the first of `pipelines` that loads (the default otherwise).
pub fn policy_for(project: &std::path::Path, pipelines: &[String]) -> crate::judge::Policy {
    Pipeline::discover(project)
        .iter()
        .filter_map(|path| Pipeline::load(path).ok())
        .find(|p| pipelines.contains(&p.name))
        .map(|p| p.judge)
        .unwrap_or_default()
}

pub fn masks_for(project: &std::path::Path, pipelines: &[String]) -> crate::compare::Masks {
    let mut extra: Vec<crate::compare::Mask> = Vec::new();
    for path in Pipeline::discover(project) {
        if let Ok(p) = Pipeline::load(&path)
            && pipelines.contains(&p.name)
        {
            extra.extend(p.masks.iter().cloned());
        }
    }
    crate::compare::Masks::with(extra)
}
