//! The judge on the demo exchange (issue 14 §6):
//! `cargo bench -p lowtouch --bench demo_judge [-- --clean N --trials K --seed S]`.
//!
//! A copy of the project's demo (pipelines, environments, templates, test data) in a
//! temporary git repository, run by the real `lowtouch` binary again and again, under the
//! same conditions:
//! - A/A runs: the same build, nothing turned. Every one the judge flags is a false alarm.
//! - Fault trials, interleaved with them in a shuffled order: one fault knob of the demo
//!   exchange at one strength (`--set latency_us=20`, …), run up to three times in a row —
//!   the 24/7 loop's looks at an undecided candidate — until the judge says it regressed.
//!
//! It reports false alarms per clean run, precision (flagged runs that carried a fault),
//! recall per knob and strength, the runs needed to detect, the judge's time against the
//! run's, and each fault's size in noise units: for every feature, the median of the
//! fault's first runs against the median of the clean runs, in the clean runs' robust
//! noise (Qn); the largest is named. Nothing here knows a metric's name: the sizes come
//! from whatever features the runs have.
//!
//! About 4 s a run; the defaults (10 warm-up + 100 clean runs, 5 trials of each of eight
//! faults) take about 15 minutes. Run it on a quiet machine: the noise it measures is the
//! machine's too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lowtouch::app::App;
use lowtouch::app::project::Project;
use lowtouch::judge::noise;
use lowtouch::judge::stats;

/// The demo exchange's fault knobs, each at two strengths.
const FAULTS: [(&str, [u64; 2]); 4] = [
    ("latency_us", [20, 100]),
    ("leak_kb_per_order", [4, 16]),
    ("failover_delay_ms", [50, 200]),
    ("cpu_us_per_order", [200, 1000]),
];
const LOOKS: usize = 3;
const WARMUP: usize = 10;

struct Options {
    clean: usize,
    trials: usize,
    seed: u64,
    /// Where to leave the project and its store, to look into afterwards.
    keep: Option<PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        clean: 100,
        trials: 5,
        seed: 7,
        keep: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match args[i].as_str() {
            "--clean" => o.clean = value().unwrap_or(o.clean as u64) as usize,
            "--trials" => o.trials = value().unwrap_or(o.trials as u64) as usize,
            "--seed" => o.seed = value().unwrap_or(o.seed),
            "--keep" => o.keep = args.get(i + 1).map(PathBuf::from),
            // `cargo bench` passes `--bench`.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// One run as the bench saw it.
struct Ran {
    id: String,
    wall: Duration,
    judge_wall: Duration,
    outcome: String,
    /// `lowtouch judge` exited 1: a feature that is not report-only regressed.
    regressed: bool,
    /// What it flagged (regressed, changed, missing, over a limit).
    flagged: Vec<String>,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the project copy");
    for entry in std::fs::read_dir(from).expect("read the demo's files") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a demo file");
        }
    }
}

fn git(root: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// The demo, alone in a git repository of its own (under `keep`, or a temporary one).
fn project(keep: Option<&Path>) -> (Option<tempfile::TempDir>, PathBuf) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (dir, root) = match keep {
        Some(keep) => {
            assert!(
                !keep.exists(),
                "--keep {}: it exists already",
                keep.display()
            );
            (None, keep.to_path_buf())
        }
        None => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let root = dir.path().join("demo");
            (Some(dir), root)
        }
    };
    for part in ["pipelines", "environments", "templates", "testdata"] {
        copy_dir(&source.join(part), &root.join(part));
    }
    std::fs::write(root.join(".gitignore"), ".lowtouch/\nreports/\n").expect("gitignore");
    git(&root, &["init", "-q"]);
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "demo"]);
    (dir, root)
}

fn run(root: &Path, set: Option<(&str, u64)>) -> Ran {
    let binary = env!("CARGO_BIN_EXE_lowtouch");
    let mut command = Command::new(binary);
    command.current_dir(root).arg("run");
    if let Some((knob, value)) = set {
        command.arg("--set").arg(format!("{knob}={value}"));
    }
    let started = Instant::now();
    let out = command.output().expect("run lowtouch");
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
        .unwrap_or_else(|| {
            panic!(
                "no run id in lowtouch's output:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_string();
    let started = Instant::now();
    let judged = Command::new(binary)
        .current_dir(root)
        .args(["judge", "--run", &id, "--json"])
        .output()
        .expect("run lowtouch judge");
    let judge_wall = started.elapsed();
    let value: serde_json::Value = serde_json::from_slice(&judged.stdout).unwrap_or_else(|e| {
        panic!(
            "lowtouch judge --json: {e}\n{}",
            String::from_utf8_lossy(&judged.stderr)
        )
    });
    let verdict = &value["verdict"];
    let flagged = verdict["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["limit"].is_number()
                || (f["report_only"] == false
                    && (f["decision"] == "missing"
                        || (f["decision"] == "different" && f["direction"] != "improved")))
        })
        .map(|f| {
            format!(
                "{} {}/{}/{} {} {} {} ({:+.1} noise units)",
                f["feature"]["series"]["scope"].as_str().unwrap_or("?"),
                f["feature"]["series"]["phase"].as_str().unwrap_or("?"),
                f["feature"]["series"]["source"].as_str().unwrap_or("?"),
                f["feature"]["series"]["name"].as_str().unwrap_or("?"),
                f["feature"]["stat"].as_str().unwrap_or("?"),
                f["decision"].as_str().unwrap_or("?"),
                f["direction"].as_str().unwrap_or(""),
                f["noise_units"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    Ran {
        id,
        wall,
        judge_wall,
        outcome: verdict["outcome"].as_str().unwrap_or("?").to_string(),
        regressed: judged.status.code() == Some(1),
        flagged,
    }
}

/// A deterministic shuffle (the order is the seed's, so a run of the bench repeats).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((seed >> 33) as usize) % (i + 1);
        items.swap(i, j);
    }
}

#[derive(Clone, Copy)]
enum Event {
    Clean,
    Fault(usize, usize),
}

#[derive(Default)]
struct Trials {
    /// Per trial: the look that detected it (1-based), if any.
    detected: Vec<Option<usize>>,
    /// The first run of each trial (for the fault's size).
    first_runs: Vec<String>,
    flagged: BTreeMap<String, usize>,
}

fn main() {
    let o = options();
    let (_dir, root) = project(o.keep.as_deref());
    eprintln!(
        "demo_judge: {} warm-up + {} clean runs, {} trials of each of {} faults, in {}",
        WARMUP,
        o.clean,
        o.trials,
        FAULTS.len() * 2,
        root.display()
    );
    let mut events: Vec<Event> = std::iter::repeat_n(Event::Clean, o.clean).collect();
    for (k, _) in FAULTS.iter().enumerate() {
        for s in 0..2 {
            events.extend(std::iter::repeat_n(Event::Fault(k, s), o.trials));
        }
    }
    shuffle(&mut events, o.seed);

    let started = Instant::now();
    let mut clean: Vec<Ran> = Vec::new();
    let mut warmup: Vec<Ran> = Vec::new();
    let mut runs_total = 0usize;
    for n in 0..WARMUP {
        let r = run(&root, None);
        eprintln!("warm-up {}/{WARMUP}: {} {}", n + 1, r.id, r.outcome);
        runs_total += 1;
        warmup.push(r);
    }
    let mut trials: BTreeMap<(usize, usize), Trials> = BTreeMap::new();
    let mut fault_runs: Vec<Ran> = Vec::new();
    for (n, event) in events.iter().enumerate() {
        match *event {
            Event::Clean => {
                let r = run(&root, None);
                runs_total += 1;
                eprintln!(
                    "[{}/{}] clean: {} {}{}",
                    n + 1,
                    events.len(),
                    r.id,
                    r.outcome,
                    if r.regressed {
                        format!(" FALSE ALARM: {}", r.flagged.join("; "))
                    } else {
                        String::new()
                    }
                );
                clean.push(r);
            }
            Event::Fault(k, s) => {
                let (knob, strengths) = FAULTS[k];
                let value = strengths[s];
                let t = trials.entry((k, s)).or_default();
                let mut detected = None;
                for look in 1..=LOOKS {
                    let r = run(&root, Some((knob, value)));
                    runs_total += 1;
                    eprintln!(
                        "[{}/{}] {knob}={value} look {look}: {} {}{}",
                        n + 1,
                        events.len(),
                        r.id,
                        r.outcome,
                        if r.regressed {
                            format!(" flagged: {}", r.flagged.join("; "))
                        } else {
                            String::new()
                        }
                    );
                    if look == 1 {
                        t.first_runs.push(r.id.clone());
                    }
                    let regressed = r.regressed;
                    for f in &r.flagged {
                        *t.flagged.entry(f.clone()).or_default() += 1;
                    }
                    fault_runs.push(r);
                    if regressed {
                        detected = Some(look);
                        break;
                    }
                }
                t.detected.push(detected);
            }
        }
    }
    let elapsed = started.elapsed();

    // The faults' sizes in noise units, from the stored features.
    let app = App::new(Project::new(root.clone(), None, None));
    let store = app.store().expect("open the store");
    let records: BTreeMap<String, _> = store
        .runs(usize::MAX)
        .expect("read the runs")
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    drop(store);
    let features = |id: &str| {
        records
            .get(id)
            .map(|r| app.features(r).expect("a run's features"))
            .unwrap_or_default()
    };
    // The noise of every feature, from every run without a fault.
    let clean_features: Vec<_> = warmup
        .iter()
        .chain(&clean)
        .map(|r| features(&r.id))
        .collect();
    let mut per_feature: BTreeMap<_, Vec<f64>> = BTreeMap::new();
    for f in &clean_features {
        for (id, v) in &f.values {
            per_feature.entry(id.clone()).or_default().push(*v);
        }
    }

    println!();
    println!(
        "demo_judge: {runs_total} runs in {:.0} s ({} warm-up, {} clean, {} with a fault)",
        elapsed.as_secs_f64(),
        WARMUP,
        clean.len(),
        fault_runs.len()
    );
    let judged_clean: Vec<&Ran> = clean
        .iter()
        .filter(|r| r.outcome != "not_enough_history")
        .collect();
    let false_alarms = judged_clean.iter().filter(|r| r.regressed).count();
    println!(
        "clean runs: {} judged, {} flagged (false alarms: {:.1} per 100 clean runs; target <= 1)",
        judged_clean.len(),
        false_alarms,
        100.0 * false_alarms as f64 / judged_clean.len().max(1) as f64
    );
    for r in judged_clean.iter().filter(|r| r.regressed) {
        println!("  false alarm {}: {}", r.id, r.flagged.join("; "));
    }
    let true_alarms = fault_runs.iter().filter(|r| r.regressed).count();
    println!(
        "precision: {true_alarms} of {} flagged runs carried a fault = {:.1} % (target >= 95 %)",
        true_alarms + false_alarms,
        100.0 * true_alarms as f64 / (true_alarms + false_alarms).max(1) as f64
    );
    println!();
    println!(
        "{:<24} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8}  largest shift (first runs vs clean)",
        "fault", "trials", "look1", "look2", "look3", "recall", "runs"
    );
    let mut big = (0usize, 0usize);
    for ((k, s), t) in &trials {
        let (knob, strengths) = FAULTS[*k];
        let by = |look: usize| t.detected.iter().filter(|d| **d == Some(look)).count();
        let found: Vec<usize> = t.detected.iter().flatten().copied().collect();
        let recall = found.len() as f64 / t.detected.len().max(1) as f64;
        let runs = if found.is_empty() {
            f64::NAN
        } else {
            found.iter().sum::<usize>() as f64 / found.len() as f64
        };
        // Every feature's shift: the fault's first runs against the clean runs.
        let fault_features: Vec<_> = t.first_runs.iter().map(|id| features(id)).collect();
        let mut largest: Option<(String, f64)> = None;
        for (id, base) in &per_feature {
            if base.len() < noise::MIN_BASELINE {
                continue;
            }
            let values: Vec<f64> = fault_features
                .iter()
                .filter_map(|f| f.values.get(id).copied())
                .collect();
            if values.len() < t.first_runs.len() {
                continue;
            }
            let spread = noise::qn(base);
            if spread.is_nan() || spread <= 0.0 {
                continue;
            }
            let units = (stats::median(&values) - stats::median(base)) / spread;
            if largest.as_ref().is_none_or(|(_, u)| units.abs() > u.abs()) {
                largest = Some((id.to_string(), units));
            }
        }
        let (name, units) = largest.unwrap_or(("-".into(), f64::NAN));
        if units.abs() >= 3.0 {
            big.0 += t.detected.len();
            big.1 += found.len();
        }
        println!(
            "{:<24} {:>6} {:>6} {:>6} {:>6} {:>7.0}% {:>8.2}  {:+.1} units: {}",
            format!("{knob}={}", strengths[*s]),
            t.detected.len(),
            by(1),
            by(2),
            by(3),
            100.0 * recall,
            runs,
            units,
            name
        );
        let mut flagged: Vec<_> = t.flagged.iter().collect();
        flagged.sort_by(|a, b| b.1.cmp(a.1));
        for (f, n) in flagged.iter().take(3) {
            println!("{:<24}   flagged {n}x: {f}", "");
        }
    }
    println!(
        "recall for faults of 3 noise units or more, within {LOOKS} runs: {} of {} = {:.1} % (target >= 95 %)",
        big.1,
        big.0,
        100.0 * big.1 as f64 / big.0.max(1) as f64
    );
    let mut judge: Vec<f64> = clean
        .iter()
        .chain(&fault_runs)
        .map(|r| r.judge_wall.as_secs_f64() * 1e3)
        .collect();
    judge.sort_by(f64::total_cmp);
    let run_ms: Vec<f64> = clean
        .iter()
        .chain(&fault_runs)
        .map(|r| r.wall.as_secs_f64() * 1e3)
        .collect();
    let run_p50 = stats::median(&run_ms);
    let judge_p50 = stats::quantile(&judge, 0.5);
    println!(
        "judging a run (`lowtouch judge --run ID`, a process of its own: start, store, features, verdict): \
         p50 {:.0} ms, max {:.0} ms; a run takes p50 {:.0} ms: the judge is {:.2} % of a run",
        judge_p50,
        judge.last().copied().unwrap_or(f64::NAN),
        run_p50,
        100.0 * judge_p50 / run_p50
    );
}
