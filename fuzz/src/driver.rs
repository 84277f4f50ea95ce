//! The driver: replays a target's seeds, then mutates inputs from its pool, runs each one,
//! catches panics, and keeps the inputs that behave in a way not seen yet.
//!
//! There is no coverage instrumentation (that needs a nightly compiler or a special build);
//! the guidance is the fingerprint each target returns of what came out, which rewards
//! inputs that reach a new finding, a new kind of frame or a new status. Runs are
//! deterministic for a seed, so any finding is reproduced by running again.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use std::collections::HashSet;

use crate::mutate::havoc;
use crate::rng::Rng;
use crate::targets::{Harness, Target};

/// How long a run is and where its randomness starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Mutated inputs to run after the seeds.
    pub runs: u64,
    pub seed: u64,
    /// Inputs are cut to this many bytes (parsers' limits are tested elsewhere).
    pub max_len: usize,
    /// Inputs kept for new behaviour, at most (then a random one is replaced).
    pub pool_limit: usize,
    /// Stop the target after this many distinct panics.
    pub max_crashes: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            runs: 10_000,
            seed: 1,
            max_len: 16 * 1024,
            pool_limit: 4096,
            max_crashes: 10,
        }
    }
}

/// A panic: the input that caused it and the panic's message.
#[derive(Debug, Clone)]
pub struct Crash {
    pub input: Vec<u8>,
    pub message: String,
}

/// What a run of one target did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    /// Inputs run: the seeds, then the mutants.
    pub executions: u64,
    pub seeds: usize,
    /// Distinct fingerprints seen.
    pub behaviours: usize,
    pub elapsed: Duration,
    /// The slowest input and how long it took (a pointer to quadratic work).
    pub slowest: (Duration, Vec<u8>),
    /// Distinct panics (by message), in the order found.
    pub crashes: Vec<Crash>,
}

/// Reads every file of `dir` as one seed, in name order.
pub fn read_seeds(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    paths
        .iter()
        .filter(|p| p.is_file())
        .map(std::fs::read)
        .collect()
}

/// Runs the seeds, then `config.runs` mutants; panics are caught and collected.
pub fn fuzz(target: &Target, seeds: &[Vec<u8>], config: &Config) -> Report {
    let started = Instant::now();
    let mut rng = Rng::new(config.seed);
    let mut harness = (target.harness)();
    let mut seen = HashSet::new();
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut report = Report {
        target: target.name,
        executions: 0,
        seeds: seeds.len(),
        behaviours: 0,
        elapsed: Duration::ZERO,
        slowest: (Duration::ZERO, Vec::new()),
        crashes: Vec::new(),
    };
    let mut input = Vec::new();
    for i in 0..seeds.len() as u64 + config.runs {
        input.clear();
        match seeds.get(i as usize) {
            Some(seed) => input.extend_from_slice(seed),
            None => {
                let base = if pool.is_empty() {
                    &[][..]
                } else {
                    &pool[rng.below(pool.len())][..]
                };
                let other = if pool.is_empty() {
                    &[][..]
                } else {
                    &pool[rng.below(pool.len())][..]
                };
                input.extend_from_slice(base);
                havoc(
                    &mut rng,
                    &mut input,
                    other,
                    target.dictionary,
                    config.max_len,
                );
            }
        }
        let began = Instant::now();
        let outcome = run_one(&mut harness, &input);
        let took = began.elapsed();
        report.executions += 1;
        if took > report.slowest.0 {
            report.slowest = (took, input.clone());
        }
        match outcome {
            Ok(fingerprint) => {
                let is_seed = (i as usize) < seeds.len();
                if seen.insert(fingerprint) || is_seed {
                    if pool.len() < config.pool_limit {
                        pool.push(input.clone());
                    } else {
                        let at = rng.below(pool.len());
                        pool[at] = input.clone();
                    }
                }
            }
            Err(message) => {
                if !report.crashes.iter().any(|c| c.message == message) {
                    report.crashes.push(Crash {
                        input: input.clone(),
                        message,
                    });
                }
                if report.crashes.len() >= config.max_crashes {
                    break;
                }
                // A panic may leave the harness's state half-changed: start afresh.
                harness = (target.harness)();
            }
        }
    }
    report.behaviours = seen.len();
    report.elapsed = started.elapsed();
    report
}

/// One input; a panic becomes its message.
fn run_one(harness: &mut Harness, input: &[u8]) -> Result<u64, String> {
    panic::catch_unwind(AssertUnwindSafe(|| harness(input))).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PANICS_ON_BANG: Target = Target {
        name: "test",
        about: "panics when the input holds `!`",
        dictionary: &["!"],
        harness: || {
            Box::new(|input| {
                assert!(!input.contains(&b'!'), "found a bang");
                input.len() as u64
            })
        },
    };

    #[test]
    fn a_panic_is_caught_and_reported_with_its_input() {
        let config = Config {
            runs: 2000,
            ..Config::default()
        };
        let report = fuzz(&PANICS_ON_BANG, &[b"abc".to_vec()], &config);
        assert_eq!(report.crashes.len(), 1, "{report:?}");
        assert!(report.crashes[0].input.contains(&b'!'));
        assert_eq!(report.crashes[0].message, "found a bang");
        assert_eq!(report.executions, 2001);
    }

    #[test]
    fn runs_are_reproducible_from_their_seed() {
        let config = Config {
            runs: 500,
            seed: 9,
            ..Config::default()
        };
        let a = fuzz(&PANICS_ON_BANG, &[b"abc".to_vec()], &config);
        let b = fuzz(&PANICS_ON_BANG, &[b"abc".to_vec()], &config);
        assert_eq!(a.crashes[0].input, b.crashes[0].input);
        assert_eq!(a.behaviours, b.behaviours);
    }
}
