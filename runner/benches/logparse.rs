//! Log rules against their speed target (issue 5 §7): on the 2,000,000-line matching log
//! that the peers' `3_logparse/gen_log.py` makes, extract every STATE and INTERNAL LATENCY
//! value with the demo environment's rules at ≥ 2,000,000 lines/s on one core, with exactly
//! the events the file holds (400,200 for the peers' file).
//!
//! `cargo bench -p lowtouch --bench logparse` prints one table. The log is made with
//! `python3 $LOWTOUCH_PEERS/3_logparse/gen_log.py` (default `../shared/bench/peers`), so
//! the figures compare with the peers' RESULTS.md; without it, a log of the same shape is
//! written here and its own counts are checked.
//!
//! Two measurements, medians of 5, the file in the page cache:
//! 1. rules alone: `RuleSet::scan` over the file in 16 MiB line-aligned buffers;
//! 2. as a daemon does it: a `Follower` reading the file from disk, then the rules.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lowtouch::monitor::{Follower, Rule, RuleKind, RuleSet};

const LINES: usize = 2_000_000;
const RUNS: usize = 5;
const TARGET_LINES_PER_S: f64 = 2_000_000.0;

fn rules() -> RuleSet {
    // The rules of environments/local.yaml's `matching` daemon.
    RuleSet::new(vec![
        Rule::new(r"STATE: (?P<state>\w+)", RuleKind::Event("state".into())).unwrap(),
        Rule::new(
            r"INTERNAL LATENCY: (?P<us>\d+)",
            RuleKind::Metric("internal_latency_us".into()),
        )
        .unwrap(),
    ])
}

/// The log and the number of events it holds.
fn make_log(dir: &Path) -> (PathBuf, u64, &'static str) {
    let path = dir.join("me.log");
    let peers = std::env::var("LOWTOUCH_PEERS").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/bench/peers")
            .display()
            .to_string()
    });
    let generator = Path::new(&peers).join("3_logparse/gen_log.py");
    if generator.is_file() {
        let status = std::process::Command::new("python3")
            .arg(&generator)
            .arg(&path)
            .arg(LINES.to_string())
            .stdout(std::process::Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            let expected: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(path.with_extension("log.expected.json")).unwrap(),
            )
            .unwrap();
            return (
                path,
                expected["total_events"].as_u64().unwrap(),
                "peers' gen_log.py",
            );
        }
    }
    // The same mix, written here: 20 % latency lines, one STATE line in 2,000.
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut events = 0;
    let mut x: u64 = 42;
    for i in 0..LINES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = (x % 1000) as f64 / 1000.0;
        let ts = format!(
            "2025-11-25T10:00:{:02}.{:06}Z",
            (i / 27_000) % 60,
            i % 1_000_000
        );
        if i % 2000 == 1999 {
            writeln!(
                out,
                "{ts} INFO  MatchingEnginePrimary STATE: READY prev=SYNCING epoch={i}"
            )
            .unwrap();
            events += 1;
        } else if r < 0.5 {
            writeln!(out, "{ts} INFO  MatchingEnginePrimary ORDER NEW ord_id=O{i:012} sym=AAPL side=B qty=100 px=123.45").unwrap();
        } else if r < 0.7 {
            writeln!(out, "{ts} INFO  MatchingEnginePrimary TRADE trd_id=T{i:010} buy=O{i:012} sell=O{i:012} qty=100").unwrap();
        } else if r < 0.9 {
            writeln!(out, "{ts} INFO  MatchingEnginePrimary INTERNAL LATENCY: {} us seq={i} path=gateway->book->ack", x % 90 + 3).unwrap();
            events += 1;
        } else {
            writeln!(
                out,
                "{ts} DEBUG MatchingEnginePrimary HEARTBEAT seq={i} sessions=42 queue_depth=7"
            )
            .unwrap();
        }
    }
    out.flush().unwrap();
    (path, events, "written by this bench")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Splits `data` into buffers of about `size` bytes that end at a newline.
fn buffers(data: &[u8], size: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let mut end = (start + size).min(data.len());
        if end < data.len() {
            end = memchr_back(&data[..end]).map_or(data.len(), |p| p + 1);
        }
        out.push(&data[start..end]);
        start = end;
    }
    out
}

fn memchr_back(data: &[u8]) -> Option<usize> {
    data.iter().rposition(|&b| b == b'\n')
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (path, expected, source) = make_log(dir.path());
    let data = std::fs::read(&path).unwrap();
    let lines = data.iter().filter(|&&b| b == b'\n').count();
    let rules = rules();

    let mut scan_secs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut events = 0u64;
        let mut sum = 0.0;
        for buf in buffers(&data, 16 << 20) {
            rules.scan(buf, |e| {
                events += 1;
                sum += e.number.unwrap_or(0.0);
            });
        }
        scan_secs.push(t.elapsed().as_secs_f64());
        assert_eq!(
            events, expected,
            "the rules found a different number of events"
        );
        std::hint::black_box(sum);
    }

    let mut follow_secs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut follower = Follower::new(&path, false);
        let mut buf = Vec::with_capacity(17 << 20);
        let mut events = 0u64;
        let mut seen = 0usize;
        while seen < data.len() {
            buf.clear();
            follower.poll(&mut buf).unwrap();
            seen += buf.len();
            rules.scan(&buf, |_| events += 1);
        }
        follow_secs.push(t.elapsed().as_secs_f64());
        assert_eq!(events, expected);
    }

    let scan = median(scan_secs);
    let follow = median(follow_secs);
    let mb = data.len() as f64 / 1e6;
    println!(
        "logparse (issue 5 §7): {lines} lines, {mb:.1} MB ({source}), {expected} events; medians of {RUNS}"
    );
    println!("| measurement | wall | lines/s | MB/s | target |");
    println!("| --- | --- | --- | --- | --- |");
    for (what, secs) in [
        ("rules over buffers (one core)", scan),
        ("follower + rules (file → events)", follow),
    ] {
        let rate = lines as f64 / secs;
        println!(
            "| {what} | {:.3} s | {:.2} M | {:.0} | ≥ 2.00 M: {} |",
            secs,
            rate / 1e6,
            mb / secs,
            if rate >= TARGET_LINES_PER_S {
                "ok"
            } else {
                "MISSED"
            }
        );
    }
}
