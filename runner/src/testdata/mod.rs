//! Test data: generator definitions (`testdata/*.yaml`) over production snapshots,
//! deterministic generation, and content hashes so unchanged inputs are not regenerated.
//!
//! - [`definition`]: the definition format (kind, snapshots, params), checked.
//! - [`snapshot`]: the snapshots: instruments (CSV), a day's order flow (JSON).
//! - [`generate`]: pure generation: definition + snapshot texts + params → any `Write`.
//! - [`rng`]: SplitMix64 and Box–Muller from basic float operations only, so a seed
//!   gives the same bytes on every platform, forever.
//! - `files`: reading inputs, input/output hashes, the manifest, atomic writes:
//!   [`apply`], [`plan`], [`check`], [`manifest_text`].
//!
//! The format is documented for users in `testdata/README.md`.

pub mod definition;
mod files;
pub mod generate;
pub mod rng;
pub mod snapshot;

pub use definition::{Definition, Kind};
pub use files::{DataSet, Loaded, MANIFEST_FILE, Outcome, apply, check, load, manifest_text, plan};
pub use generate::{Generator, prepare};

/// Part of every input hash: bump it whenever the same inputs would generate different
/// bytes (the RNG, the draw order, number formatting, a header), so every data set made
/// by an older lowtouch is regenerated.
pub const GENERATOR_VERSION: &str = "1";
