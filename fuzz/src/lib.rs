//! Fuzzing lowtouch's parsers and decoders on stable Rust.
//!
//! Layout:
//! - [`targets`]: what is fuzzed, one row per entry point that reads outside input.
//! - [`driver`]: seeds, then mutants; panics caught; inputs with new behaviour kept.
//! - [`mutate`]: the mutations (AFL-style havoc, line- and dictionary-aware).
//! - [`rng`]: the seeded random numbers that make a run reproducible.
//!
//! The seeds are in `fuzz/corpus/TARGET/`, one input per file; an input that once made a
//! target panic is added there, so every later run replays it.

pub mod driver;
pub mod mutate;
pub mod rng;
pub mod targets;
