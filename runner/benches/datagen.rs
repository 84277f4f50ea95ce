//! Test-data generation against its target: 1,000,000 orders in under 2 s.
//!
//! `cargo bench -p lowtouch --bench datagen` generates 1,000,000 orders from the shipped
//! definition (`testdata/orders.yaml` over `testdata/snapshots/`), in-process, 7 times
//! each way, and prints the medians:
//!
//! 1. `apply`: what `lowtouch render` does — read and check the definition and
//!    snapshots, hash the inputs, generate into a temporary file while hashing it,
//!    rename it into place, write the manifest. The manifest is deleted before each run
//!    so every run regenerates. This is the figure the target is about.
//! 2. `generate`: the pure generator alone, into a file (no hashing, no rename).
//!
//! Every run's output hash must be the same (determinism), and the file must have
//! 1,000,001 lines; otherwise the bench panics rather than time a wrong result.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

use lowtouch::environment::environment::DataSet;
use lowtouch::testdata::{self, MANIFEST_FILE};

const ORDERS: u64 = 1_000_000;
const RUNS: usize = 7;
const TARGET: Duration = Duration::from_secs(2);

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn rate(d: Duration) -> String {
    let per_s = ORDERS as f64 / d.as_secs_f64();
    format!("{:.1} M rows/s", per_s / 1e6)
}

fn main() {
    let testdata_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let mut params = BTreeMap::new();
    params.insert("count".to_string(), ORDERS.to_string());
    let set = DataSet {
        generator: "orders.yaml".into(),
        path: testdata_dir.join("orders.yaml"),
        dest: "orders.csv".into(),
        params,
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("data");

    let mut apply_times = Vec::new();
    let mut hash: Option<String> = None;
    for _ in 0..RUNS {
        let _ = fs::remove_file(out.join(MANIFEST_FILE));
        let start = Instant::now();
        let outcomes = testdata::apply(std::slice::from_ref(&set), &out).unwrap_or_else(|f| {
            let text: String = f.iter().map(|f| f.to_string()).collect();
            panic!("apply failed:\n{text}")
        });
        apply_times.push(start.elapsed());
        let o = &outcomes[0];
        assert!(o.generated && o.rows == ORDERS, "{o:?}");
        match &hash {
            None => hash = Some(o.output_hash.clone()),
            Some(h) => assert_eq!(h, &o.output_hash, "not deterministic"),
        }
    }
    let lines = fs::read_to_string(out.join("orders.csv"))
        .expect("output")
        .lines()
        .count();
    assert_eq!(lines as u64, ORDERS + 1);
    let size = fs::metadata(out.join("orders.csv"))
        .map(|m| m.len())
        .unwrap_or(0);

    // Unchanged inputs: the skip path (input hash + hashing the existing file).
    let start = Instant::now();
    let skipped = testdata::apply(std::slice::from_ref(&set), &out).expect("apply");
    let skip_time = start.elapsed();
    assert!(!skipped[0].generated);

    let loaded = testdata::load(&set).expect("load");
    let mut gen_times = Vec::new();
    for _ in 0..RUNS {
        let path = tmp.path().join("plain.csv");
        let start = Instant::now();
        let rows = loaded
            .generator
            .write(File::create(&path).expect("create"))
            .expect("write");
        gen_times.push(start.elapsed());
        assert_eq!(rows, ORDERS);
    }

    let apply_median = median(apply_times);
    let gen_median = median(gen_times);
    println!("test-data generation: {ORDERS} orders from testdata/orders.yaml, median of {RUNS}");
    println!(
        "  apply (render)   {:>8.1} ms  {}  ({:.1} MB file)",
        apply_median.as_secs_f64() * 1e3,
        rate(apply_median),
        size as f64 / 1e6
    );
    println!(
        "  generate only    {:>8.1} ms  {}",
        gen_median.as_secs_f64() * 1e3,
        rate(gen_median)
    );
    println!(
        "  unchanged, skip  {:>8.1} ms  (one run)",
        skip_time.as_secs_f64() * 1e3
    );
    let verdict = if apply_median < TARGET {
        "PASS"
    } else {
        "FAIL"
    };
    println!(
        "  target: 1,000,000 orders < {} s  -> {verdict} ({:.2} s)",
        TARGET.as_secs(),
        apply_median.as_secs_f64()
    );
    if apply_median >= TARGET {
        std::process::exit(1);
    }
    check_speed();
}

/// `lowtouch check` of the repository's own pipelines, environments, templates, test-data
/// definitions and scenarios, as a process (start-up included): target under 200 ms.
fn check_speed() {
    const CHECK_RUNS: usize = 21;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root");
    let mut times = Vec::with_capacity(CHECK_RUNS);
    for _ in 0..CHECK_RUNS {
        let start = Instant::now();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_lowtouch"))
            .arg("-C")
            .arg(repo)
            .arg("check")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run lowtouch check");
        times.push(start.elapsed());
        assert!(
            status.success(),
            "lowtouch check of the repository found problems"
        );
    }
    let med = median(times);
    let verdict = if med < Duration::from_millis(200) {
        "PASS"
    } else {
        "FAIL"
    };
    println!(
        "check of the repository's own files: median of {CHECK_RUNS} {:.1} ms -> {verdict} (target < 200 ms)",
        med.as_secs_f64() * 1e3
    );
}
