//! Execution: runs planned pipelines against an environment — processes, components,
//! hooks, limits, interruption — and emits [`crate::event::RunEvent`]s. It writes no
//! record and prints nothing itself: listeners do.

pub mod components;
pub mod control;
pub mod host;
pub mod interrupt;
pub mod observe;
mod pid_record;
pub mod process;
pub mod route;
pub mod run;

pub use run::{RunSettings, execute};
