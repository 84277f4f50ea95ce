//! The short fuzz pass CI runs: every target replays its whole corpus (every input that
//! ever made it panic is there) and then runs a few thousand mutants, with a fixed seed so
//! the pass is the same on every machine. The long run is `lowtouch-fuzz` (see its doc).

use lowtouch_fuzz::driver::{self, Config};
use lowtouch_fuzz::targets::{self, TARGETS};

/// Mutants per target: the whole pass stays within seconds in a debug build.
const RUNS: u64 = 3_000;

fn short_pass(name: &str) {
    let target = targets::target(name).expect("a target of that name");
    let seeds = driver::read_seeds(&targets::corpus_dir(name)).expect("the corpus reads");
    assert!(!seeds.is_empty(), "`{name}` has no seeds");
    let config = Config {
        runs: RUNS,
        seed: 0x5eed,
        ..Config::default()
    };
    let report = driver::fuzz(target, &seeds, &config);
    assert_eq!(report.executions, seeds.len() as u64 + RUNS);
    let crashes: Vec<String> = report
        .crashes
        .iter()
        .map(|c| {
            format!(
                "{}\n  input: {:?}",
                c.message,
                String::from_utf8_lossy(&c.input)
            )
        })
        .collect();
    assert!(
        crashes.is_empty(),
        "`{name}` panicked:\n{}",
        crashes.join("\n")
    );
}

#[test]
fn every_target_is_in_this_pass() {
    let here = [
        "scenario",
        "pipeline",
        "environment",
        "testdata",
        "instruments",
        "order_flow",
        "webhook",
        "frame",
        "record",
    ];
    for t in TARGETS {
        assert!(here.contains(&t.name), "add a test for `{}` below", t.name);
    }
}

#[test]
fn scenario() {
    short_pass("scenario");
}

#[test]
fn pipeline() {
    short_pass("pipeline");
}

#[test]
fn environment() {
    short_pass("environment");
}

#[test]
fn testdata() {
    short_pass("testdata");
}

#[test]
fn instruments() {
    short_pass("instruments");
}

#[test]
fn order_flow() {
    short_pass("order_flow");
}

#[test]
fn webhook() {
    short_pass("webhook");
}

#[test]
fn frame() {
    short_pass("frame");
}

#[test]
fn record() {
    short_pass("record");
}
