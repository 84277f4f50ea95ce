//! Execution: runs planned pipelines against an environment — processes, components,
//! hooks, limits, interruption — and emits [`crate::event::RunEvent`]s. It writes no
//! record and prints nothing itself: listeners do.

pub mod host;
pub mod observe;
pub mod route;
pub mod run;

pub use run::{RunSettings, execute};
