//! The monitoring network against its targets (issue 5 §7). `cargo bench -p lowtouch
//! --bench network` prints one table:
//!
//! 1. Command round trip on loopback (router → daemon → back) for a no-op command:
//!    p50 < 1 ms, p99 < 5 ms, over 2,000 commands (after 200 to warm up).
//! 2. Log event lag: a line appended to a followed log until the router hands the event
//!    on, p50/p99 over 500 lines (target for the whole path to `wait_for`: 20 ms).
//! 3. Daemon footprint: a real `lowtouch daemon` process collecting system metrics, 10
//!    component processes and one log at 1 s intervals for 60 s (`LOWTOUCH_BENCH_SECS`
//!    to shorten), the log written at 0, 10 and 100 lines/s
//!    (`LOWTOUCH_BENCH_RATES=0,10,100`): RSS < 8 MiB, CPU < 3 ms per interval.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use lowtouch::net::Observation;
use lowtouch::net::codec::{Command, ComponentWatch, DaemonConfig, RuleConfig};
use lowtouch::net::router::{Router, RouterConfig};

const SECRET: &str = "bench-secret-of-at-least-32-bytes!";

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn config(dir: &std::path::Path, components: usize) -> (DaemonConfig, Vec<std::process::Child>) {
    let mut children = Vec::new();
    let mut watches = Vec::new();
    for i in 0..components {
        let child = std::process::Command::new("sleep")
            .arg("900")
            .spawn()
            .unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let start = lowtouch::monitor::procfs::parse_pid_stat(&stat)
            .unwrap()
            .start_ticks;
        let pid_file = dir.join(format!("c{i}.pid"));
        std::fs::write(&pid_file, format!("{} {start}\n", child.id())).unwrap();
        watches.push(ComponentWatch {
            name: format!("C{i}"),
            pid_file: Some(pid_file.display().to_string()),
            stop_marker: None,
            log: (i == 0).then(|| dir.join("engine.log").display().to_string()),
            rules: if i == 0 {
                vec![
                    RuleConfig {
                        pattern: r"STATE: (?P<state>\w+)".into(),
                        event: Some("state".into()),
                        metric: None,
                    },
                    RuleConfig {
                        pattern: r"INTERNAL LATENCY: (?P<us>\d+)".into(),
                        event: None,
                        metric: Some("internal_latency_us".into()),
                    },
                ]
            } else {
                Vec::new()
            },
            control: None,
        });
        children.push(child);
    }
    std::fs::write(dir.join("engine.log"), "").unwrap();
    (
        DaemonConfig {
            interval_ms: 1000,
            collectors: vec!["system".into(), "process".into(), "log".into()],
            components: watches,
            commands: Vec::new(),
            ..DaemonConfig::default()
        },
        children,
    )
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon_config, mut children) = config(dir.path(), 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let router_config = RouterConfig {
        secrets: HashMap::from([("bench".to_string(), SECRET.as_bytes().to_vec())]),
        configs: HashMap::from([
            ("bench/inproc".to_string(), daemon_config.clone()),
            ("bench/proc".to_string(), daemon_config.clone()),
        ]),
        ..RouterConfig::default()
    };
    let (router, addr, mut rx) = rt
        .block_on(Router::bind("127.0.0.1:0", router_config))
        .unwrap();

    // 1 and 2: an in-process daemon (the same code as the process).
    let options = lowtouch::daemon::Options {
        server: addr.to_string(),
        name: "inproc".into(),
        environment: "bench".into(),
        secret: SECRET.as_bytes().to_vec(),
        outbox_capacity: 100_000,
        dead_after: Duration::from_secs(3),
        max_backoff: Duration::from_millis(200),
    };
    rt.spawn(lowtouch::daemon::run(options, std::future::pending()));
    rt.block_on(async {
        while !router
            .connected()
            .iter()
            .any(|c| c.name == "inproc" && c.configured)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut round_trips: Vec<f64> = rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..2200 {
            let t = Instant::now();
            let o = router
                .command("bench/inproc", Command::Noop, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(o.status, 0);
            if i >= 200 {
                out.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        out
    });
    let log = dir.path().join("engine.log");
    let mut lags: Vec<f64> = Vec::new();
    {
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for i in 0..500 {
            let t = Instant::now();
            writeln!(file, "t INFO X STATE: S{i}").unwrap();
            let want = format!("S{i}");
            rt.block_on(async {
                loop {
                    let d = rx.recv().await.unwrap();
                    if matches!(&d.observation, Observation::Event { value, .. } if *value == want)
                    {
                        break;
                    }
                }
            });
            lags.push(t.elapsed().as_secs_f64() * 1e3);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Keep draining what the in-process daemon sends.
    rt.spawn(async move { while rx.recv().await.is_some() {} });

    // 3: a real daemon process, for each log rate.
    let secs: u64 = std::env::var("LOWTOUCH_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let rates: Vec<u64> = std::env::var("LOWTOUCH_BENCH_RATES")
        .unwrap_or_else(|_| "0,10,100".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let mut footprints = Vec::new();
    for rate in rates {
        let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_lowtouch"))
            .args([
                "daemon",
                "--server",
                &addr.to_string(),
                "--name",
                "proc",
                "--environment",
                "bench",
            ])
            .env("LOWTOUCH_DAEMON_SECRET", SECRET)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        rt.block_on(async {
            while !router
                .connected()
                .iter()
                .any(|c| c.name == "proc" && c.configured)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let cpu_ticks = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            lowtouch::monitor::procfs::parse_pid_stat(&stat)
                .unwrap()
                .cpu_ticks
        };
        let status = |pid: u32, key: &str| -> f64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap()
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0.0)
        };
        let before = cpu_ticks(daemon.id());
        let started = Instant::now();
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let mut n = 0u64;
        while started.elapsed() < Duration::from_secs(secs) {
            if rate == 0 {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            writeln!(file, "t INFO X INTERNAL LATENCY: {} us", n % 97).unwrap();
            n += 1;
            std::thread::sleep(Duration::from_micros(1_000_000 / rate));
        }
        let elapsed = started.elapsed().as_secs_f64();
        let ticks = cpu_ticks(daemon.id()) - before;
        let cpu = ticks as f64 / lowtouch::monitor::procfs::ticks_per_second() * 1e3 / elapsed;
        let hwm = status(daemon.id(), "VmHWM:") / 1024.0;
        let _ = daemon.kill();
        let _ = daemon.wait();
        // The router lets the name go once it sees the connection close.
        rt.block_on(async {
            while router.connected().iter().any(|c| c.name == "proc") {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        footprints.push((rate, hwm, cpu));
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }

    let p50 = percentile(&mut round_trips, 0.5);
    let p99 = percentile(&mut round_trips, 0.99);
    let l50 = percentile(&mut lags, 0.5);
    let l99 = percentile(&mut lags, 0.99);
    let ok = |b: bool| if b { "ok" } else { "MISSED" };
    println!("network (issue 5 §7), loopback");
    println!("| measurement | result | target |");
    println!("| --- | --- | --- |");
    println!(
        "| no-op command round trip (2,000) | p50 {p50:.3} ms, p99 {p99:.3} ms | p50 < 1 ms, p99 < 5 ms: {} |",
        ok(p50 < 1.0 && p99 < 5.0)
    );
    println!(
        "| log line → event at the router (500) | p50 {l50:.2} ms, p99 {l99:.2} ms | through `wait_for` < 20 ms: {} |",
        ok(l99 < 20.0)
    );
    for (rate, hwm, cpu) in footprints {
        println!(
            "| daemon process, 10 components + system + 1 log at {rate} lines/s, {secs} s | peak RSS {hwm:.1} MiB, CPU {cpu:.2} ms per 1 s interval | < 8 MiB, < 3 ms: {} |",
            ok(hwm < 8.0 && cpu < 3.0)
        );
    }
}
