//! GitHub: commit statuses (a token) and check runs (a GitHub App) for the product
//! commit a run tested (octocrab).
//!
//! **Invariant:** the only module that talks to GitHub. A failing GitHub never fails or
//! loses a run: posts are retried with backoff and a failure is reported, not raised.

pub mod app;
pub mod status;

pub use app::{AppKey, CheckRun, post_check_run};
pub use status::{GitHub, GithubError, StatusPost, Verdict};
