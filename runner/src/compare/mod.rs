//! History: a run against an earlier one — releases, the previous release of a run, names
//! that resolve to runs, metric summaries, and the comparison `lowtouch diff` prints and
//! every JUnit file carries.
//!
//! - [`candidates`]: runs grouped by the candidate they tested, for `history`. Pure.
//! - [`mask`]: volatile parts of output (times, ids, durations) masked away. Pure.
//! - [`changes`]: two stored runs compared, scenario by scenario and step by step. Pure.
//! - [`history`]: the store's side: names to runs, the previous release, summaries.

pub mod candidates;
pub mod changes;
pub mod flaky;
pub mod history;
pub mod mask;

pub use changes::{Change, Comparison, compare};
pub use mask::{Mask, Masks};
