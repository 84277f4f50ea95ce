//! GitHub: commit statuses for the product commit a run tested (octocrab).
//!
//! **Invariant:** the only module that talks to GitHub. A failing GitHub never fails or
//! loses a run: posts are retried with backoff and a failure is reported, not raised.

pub mod status;

pub use status::{GitHub, StatusPost, Verdict};
