//! The judge: each run against comparable history, on every feature, so a tester does
//! not have to say which of thousands of metrics matter under which conditions.
//!
//! All of it is pure — records and features in, a [`Verdict`] out — so it is tested
//! without a store, and `lowtouch judge --run ID` recomputes a stored verdict from the
//! stored inputs. `app::judge` does the reading and writing.
//!
//! - [`features`]: a run reduced to numbers per scenario, phase, source, name, statistic.
//! - [`declared`]: what an environment says about its metrics (unit, direction,
//!   critical, smallest effect, hard limit), and units printed humanly.
//! - [`baseline`]: which runs a run is compared with, and why the others are not.
//! - [`noise`]: a feature's noise and shape, learned from its baseline.
//! - [`verdict`]: the tests, the correction for judging thousands at once, the outcome.
//! - [`changepoint`]: change points in a feature's series across candidates (Otava's
//!   E-divisive means), so a slow drift is caught once it adds up.
//! - [`stats`]: the statistics underneath.
//! - [`name`]: a feature's name parts, shared between the runs a verdict reads.

pub mod baseline;
pub mod changepoint;
pub mod declared;
pub mod features;
pub mod name;
pub mod noise;
pub mod stats;
pub mod verdict;

pub use features::{FeatureId, Features, Series, Stat};
pub use verdict::{Case, Decision, Direction, Judged, Outcome, Policy, Verdict};
