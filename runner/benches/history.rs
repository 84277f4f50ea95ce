//! History against its targets (issue 6 §7). `cargo bench -p lowtouch --bench history`
//! builds a store of 1,000 runs of a 500-scenario pipeline (2 steps each, the last run
//! with one scenario failing and other output), then measures, as the commands do them:
//!
//! 1. `lowtouch history --limit 50` (the process, from start to exit): < 50 ms.
//! 2. `lowtouch diff` of the two newest runs (the process): < 200 ms.
//! 3. The JUnit XML of one 100,000-testcase run (`report::junit::render_compared` with a
//!    comparison, in-process): < 1 s.
//! 4. Storing 1,000,000 metric samples through the data processor's path
//!    (`Store::put_observations` in batches of 4,096 plus a flush each): ≥ 200,000/s.
//!
//! `LOWTOUCH_BENCH_RUNS` shrinks the store for a quick look.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use lowtouch::record::StoredRun;
use lowtouch::record::{RunRecord, ScenarioKind, ScenarioRecord, Status, StepRecord};
use lowtouch::store::{ObservationRecord, Store};

const SCENARIOS: u32 = 500;

fn run_record(id: &str, i: usize) -> RunRecord {
    RunRecord {
        id: id.into(),
        pipelines: vec!["big".into()],
        environments: vec!["local".into()],
        revision: format!("{:040x}", i),
        started_at: format!(
            "2026-11-{:02}T{:02}:{:02}:00Z",
            1 + i / 1440,
            (i / 60) % 24,
            i % 60
        ),
        finished_at: Some(format!(
            "2026-11-{:02}T{:02}:{:02}:30Z",
            1 + i / 1440,
            (i / 60) % 24,
            i % 60
        )),
        status: Status::Passed,
        passed: SCENARIOS,
        failed: 0,
        skipped: 0,
        interrupted: 0,
        flaky: 0,
        duration_ms: 30_000,
        pid: 1,
        hostname: "bench".into(),
        overrides: vec![],
        config_commits: Default::default(),
        config_trees: Default::default(),
        note: None,
        candidate: Default::default(),
        conditions: Default::default(),
        incomplete: None,
        judgement: None,
    }
}

fn scenario(run: &str, index: u32, status: Status) -> ScenarioRecord {
    ScenarioRecord {
        run_id: run.into(),
        index,
        kind: ScenarioKind::Scenario,
        pipeline: "big".into(),
        environment: "local".into(),
        name: format!("scenario_{index:05}"),
        path: format!("big/scenario_{index:05}.scn"),
        status,
        reason: None,
        failed_line: None,
        started_at: "2026-11-25T00:00:00Z".into(),
        duration_ms: 40 + u64::from(index % 13),
        steps: 2,
        attempt: 0,
        retried: false,
        content: None,
    }
}

fn step(run: &str, index: u32, seq: u64, stdout: String) -> StepRecord {
    StepRecord {
        phase: None,
        held: Vec::new(),
        run_id: run.into(),
        scenario_index: index,
        seq,
        line: seq as u32,
        command: "exec_smoke".into(),
        args: vec![format!("order-{seq}")],
        resolved: "alias".into(),
        status: 0,
        stdout,
        stdout_dropped: 0,
        stderr: String::new(),
        stderr_dropped: 0,
        failure: None,
        started_at: "2026-11-25T00:00:00Z".into(),
        duration_us: 1200,
        around: None,
    }
}

fn build(db: &Path, runs: usize) -> (String, String) {
    let store = Store::open(db).unwrap();
    let mut ids = Vec::new();
    for i in 0..runs {
        let id = format!(
            "202611{:02}-{:06}.000-{:04x}",
            1 + i / 1440,
            i % 1_000_000,
            i % 65536
        );
        let run = run_record(&id, i);
        store.begin_run(&run).unwrap();
        let last = i + 1 == runs;
        for index in 0..SCENARIOS {
            let failing = last && index == 7;
            let status = if failing {
                Status::Failed
            } else {
                Status::Passed
            };
            store.put_scenario(&scenario(&id, index, status)).unwrap();
            for seq in 1..=2u64 {
                let price = if last && index % 50 == 0 { 102 } else { 101 };
                store
                    .put_step(&step(
                        &id,
                        index,
                        seq,
                        format!("2026-11-25T10:00:00Z FILL qty=10 px={price}.25 in 12ms\nPASS\n"),
                    ))
                    .unwrap();
            }
        }
        store.finish_run(&run).unwrap();
        ids.push(id);
    }
    store.flush().unwrap();
    let n = ids.len();
    (ids[n - 2].clone(), ids[n - 1].clone())
}

fn time_process(project: &Path, args: &[&str], times: usize) -> Vec<Duration> {
    (0..times)
        .map(|_| {
            let t = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_lowtouch"))
                .arg("-C")
                .arg(project)
                .args(args)
                .output()
                .unwrap();
            let took = t.elapsed();
            assert!(
                out.status.code().is_some_and(|c| c <= 1),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            took
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("LOWTOUCH_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    std::fs::create_dir_all(project.join("pipelines")).unwrap();
    let db = project.join(".lowtouch/db");
    let t = Instant::now();
    let (a, b) = build(&db, runs);
    let built = t.elapsed();

    // 1 and 2: the commands as a person runs them (one warm-up each).
    let history = median(time_process(project, &["history", "--limit", "50"], 11));
    let diff = median(time_process(project, &["diff", &a, &b], 7));
    let diff_out = std::process::Command::new(env!("CARGO_BIN_EXE_lowtouch"))
        .arg("-C")
        .arg(project)
        .args(["diff", &a, &b])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&diff_out.stdout);
    assert_eq!(
        diff_out.status.code(),
        Some(1),
        "a new failure: exit 1\n{text}"
    );
    assert!(text.contains("1 new-failure, 499 unchanged"), "{text}");

    // 3: JUnit of a 100,000-testcase run, compared with another.
    let big = |id: &str, failing: bool| StoredRun {
        artifacts: Vec::new(),
        run: run_record(id, 1),
        scenarios: (0..100_000u32)
            .map(|i| {
                let status = if failing && i % 1000 == 0 {
                    Status::Failed
                } else {
                    Status::Passed
                };
                (
                    scenario(id, i, status),
                    vec![step(id, i, 1, format!("FILL px={}\n", 100 + i % 3))],
                )
            })
            .collect(),
    };
    let before = big("before", false);
    let after = big("after", true);
    let empty = BTreeMap::new();
    let comparison = lowtouch::compare::compare(
        &before,
        &after,
        &lowtouch::compare::Masks::default(),
        (&empty, &empty),
    );
    let mut junit_times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let xml = lowtouch::report::junit::render_compared(
            &after,
            &lowtouch::report::junit::Compared {
                with: Some("v1"),
                comparison: Some(&comparison),
                verdict: None,
            },
        )
        .unwrap();
        junit_times.push(t.elapsed());
        size = xml.len();
    }
    let junit = median(junit_times);

    // 4: 1,000,000 metric samples through the data processor's write path.
    let store = Store::open(&dir.path().join("samples-db")).unwrap();
    let samples = 1_000_000u32;
    let t = Instant::now();
    let mut n = 0u32;
    while n < samples {
        let batch: Vec<(ObservationRecord, u32)> = (n..(n + 4096).min(samples))
            .map(|i| {
                (
                    ObservationRecord {
                        at_us: 1_795_000_000_000_000 + i64::from(i) * 10,
                        environment: "local".into(),
                        daemon: "matching".into(),
                        source: "MatchingEnginePrimary".into(),
                        kind: "metric".into(),
                        name: "internal_latency_us".into(),
                        text: None,
                        number: Some(f64::from(i % 997)),
                    },
                    i,
                )
            })
            .collect();
        n += batch.len() as u32;
        let mark = [(
            (
                "local".to_string(),
                "matching".to_string(),
                "boot".to_string(),
            ),
            u64::from(n),
        )];
        store.put_observations(&batch, &mark).unwrap();
        store.flush().unwrap();
    }
    let stored = t.elapsed();
    let rate = f64::from(samples) / stored.as_secs_f64();
    assert_eq!(
        store
            .observations("local", i64::MIN, i64::MAX)
            .unwrap()
            .len(),
        samples as usize
    );

    // LOWTOUCH_BENCH_KEEP=1 keeps the project (its path is printed) for a closer look.
    if std::env::var_os("LOWTOUCH_BENCH_KEEP").is_some() {
        eprintln!("kept {}", dir.keep().display());
    }
    let ok = |b: bool| if b { "PASS" } else { "MISSED" };
    println!(
        "history (issue 6 §7): a store of {runs} runs × {SCENARIOS} scenarios × 2 steps, built in {:.1} s",
        built.as_secs_f64()
    );
    println!("| measurement | result | target |");
    println!("| --- | --- | --- |");
    println!(
        "| `lowtouch history --limit 50` (process, median of 11) | {:.1} ms | < 50 ms: {} |",
        history.as_secs_f64() * 1e3,
        ok(history < Duration::from_millis(50))
    );
    println!(
        "| `lowtouch diff` of two runs (process, median of 7) | {:.1} ms | < 200 ms: {} |",
        diff.as_secs_f64() * 1e3,
        ok(diff < Duration::from_millis(200))
    );
    println!(
        "| JUnit of a 100,000-testcase run with its comparison ({:.1} MB, median of 5) | {:.0} ms | < 1 s: {} |",
        size as f64 / 1e6,
        junit.as_secs_f64() * 1e3,
        ok(junit < Duration::from_secs(1))
    );
    println!(
        "| storing 1,000,000 metric samples (batches of 4,096, a flush each) | {:.0} samples/s ({:.2} s) | ≥ 200,000/s: {} |",
        rate,
        stored.as_secs_f64(),
        ok(rate >= 200_000.0)
    );
}
