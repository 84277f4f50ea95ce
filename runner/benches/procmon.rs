//! Process metrics against psutil (issue 5 §7): RSS within 1 %, CPU % within 2 points of
//! the peers' reference sampler (`4_procmon/procmon_ref.py`, psutil) sampling the same
//! process over the same intervals. `cargo bench -p lowtouch --bench procmon` (needs
//! `python3` with psutil: `python3 -m pip install psutil`; about 15 s).
//!
//! The target is the peers' own `burner.py` (200 MiB touched, half a core busy). The
//! reference prints a line per second; right after each line this bench takes its own
//! sample, so both measure (almost) the same one-second windows.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use lowtouch::monitor::procfs;

const SAMPLES: usize = 10;

fn main() {
    let peers = std::env::var("LOWTOUCH_PEERS").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/bench/peers")
            .display()
            .to_string()
    });
    let dir = Path::new(&peers).join("4_procmon");
    if !dir.join("procmon_ref.py").is_file() {
        println!("procmon: {} not found; set LOWTOUCH_PEERS", dir.display());
        return;
    }
    let mut burner = Command::new("python3")
        .arg(dir.join("burner.py"))
        .args(["200", "0.5", &(SAMPLES + 6).to_string()])
        .spawn()
        .expect("python3");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut reference = Command::new("python3")
        .arg(dir.join("procmon_ref.py"))
        .args([
            "burner.py",
            "--interval",
            "1",
            "--count",
            &(SAMPLES + 2).to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with psutil");
    let proc_root = Path::new("/proc");
    let pid = burner.id();
    let mut lines = BufReader::new(reference.stdout.take().unwrap()).lines();
    let mut previous: Option<(Instant, procfs::ProcStat)> = None;
    let mut rows = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        // The reference's sample was just taken: take ours now.
        let now = Instant::now();
        let Some(s) = procfs::read_process(proc_root, pid).unwrap() else {
            break;
        };
        let ours_cpu = previous.as_ref().map(|(t, before)| {
            procfs::process_cpu_percent(before, &s.stat, now.duration_since(*t).as_secs_f64())
        });
        previous = Some((now, s.stat));
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[1] != pid.to_string() {
            continue;
        }
        let ref_rss_kb: f64 = f[2].parse().unwrap_or(0.0);
        let ref_cpu: f64 = f[3].parse().unwrap_or(0.0);
        if let Some(cpu) = ours_cpu {
            rows.push((ref_rss_kb, s.rss_bytes as f64 / 1024.0, ref_cpu, cpu));
        }
    }
    let _ = reference.wait();
    let _ = burner.kill();
    let _ = burner.wait();
    println!(
        "procmon (issue 5 §7): lowtouch's /proc sampler vs psutil on burner.py, {} one-second windows",
        rows.len()
    );
    println!("| window | RSS psutil | RSS lowtouch | diff | CPU psutil | CPU lowtouch | diff |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut worst_rss: f64 = 0.0;
    let mut worst_cpu: f64 = 0.0;
    for (i, (rr, or, rc, oc)) in rows.iter().enumerate() {
        let rss_diff = (or - rr).abs() / rr.max(1.0) * 100.0;
        let cpu_diff = (oc - rc).abs();
        worst_rss = worst_rss.max(rss_diff);
        worst_cpu = worst_cpu.max(cpu_diff);
        println!(
            "| {} | {:.0} kB | {:.0} kB | {rss_diff:.2} % | {rc:.1} % | {oc:.1} % | {cpu_diff:.1} points |",
            i + 1,
            rr,
            or
        );
    }
    println!(
        "worst: RSS {worst_rss:.2} % (target < 1 %: {}), CPU {worst_cpu:.1} points (target < 2: {})",
        if worst_rss < 1.0 { "ok" } else { "MISSED" },
        if worst_cpu < 2.0 { "ok" } else { "MISSED" }
    );
}
