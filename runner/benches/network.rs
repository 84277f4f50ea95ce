//! The monitoring network against its targets (issue 5 §7). `cargo bench -p lowtouch
//! --bench network` prints one table:
//!
//! 0. What the encrypted channel costs (issue 12), in one run: a whole Noise handshake,
//!    and sealing + opening a frame against only encoding + decoding it, for a frame of
//!    one observation (a log line's event) and one of 512 (a batch).
//! 1. Command round trip on loopback (router → daemon → back) for a no-op command:
//!    p50 < 1 ms, p99 < 5 ms, over 2,000 commands (after 200 to warm up).
//! 2. Log event lag: a line appended to a followed log until the router hands the event
//!    on, p50/p99 over 500 lines (target for the whole path to `wait_for`: 20 ms).
//! 3. Daemon footprint: a real `lowtouch daemon` process collecting system metrics, 10
//!    component processes and one log at 1 s intervals for 60 s (`LOWTOUCH_BENCH_SECS`
//!    to shorten), the log written at 0, 10 and 100 lines/s
//!    (`LOWTOUCH_BENCH_RATES=0,10,100`): RSS < 8 MiB, CPU < 3 ms per interval.
//! 4. Following a busy log: 100,000 lines/s appended for 5 s (one line in five a latency
//!    sample, a STATE marker every 10 ms), through a daemon, the router and the data
//!    processor into a sled store. Per marker: write → event at the data processor
//!    (target p99 < 5 ms inside the daemon: this includes the router), and write → seen
//!    in the store by a `wait_for`-style poll (every 5 ms, the events index), target
//!    p99 < 20 ms.

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

/// Section 4: (lines written, seconds, write→processor lags, write→`wait_for` lags), ms.
fn follow_busy_log(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
) -> (u64, f64, Vec<f64>, Vec<f64>) {
    use std::sync::{Arc, Mutex};
    let log = dir.join("busy.log");
    std::fs::write(&log, "").unwrap();
    let config = DaemonConfig {
        interval_ms: 1000,
        collectors: vec!["log".into()],
        components: vec![ComponentWatch {
            name: "Busy".into(),
            log: Some(log.display().to_string()),
            rules: vec![
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
            ],
            ..ComponentWatch::default()
        }],
        ..DaemonConfig::default()
    };
    let store = lowtouch::store::Store::open(&dir.join("db")).unwrap();
    let router_config = RouterConfig {
        secrets: HashMap::from([("busy".to_string(), SECRET.as_bytes().to_vec())]),
        configs: HashMap::from([("busy/follower".to_string(), config)]),
        ack_when_stored: true,
        ..RouterConfig::default()
    };
    let (router, addr, rx) = rt
        .block_on(Router::bind("127.0.0.1:0", router_config))
        .unwrap();
    let (forward, mut forwarded) = tokio::sync::mpsc::unbounded_channel();
    rt.spawn(lowtouch::daemon::processor::store_all(
        rx,
        store.share(),
        Some(forward),
        router.clone(),
    ));
    rt.spawn(lowtouch::daemon::run(
        lowtouch::daemon::Options {
            server: addr.to_string(),
            name: "follower".into(),
            environment: "busy".into(),
            secret: SECRET.as_bytes().to_vec(),
            outbox_capacity: 1_000_000,
            dead_after: Duration::from_secs(3),
            max_backoff: Duration::from_millis(200),
            stop: lowtouch::process::control::RunControl::detached(),
        },
        std::future::pending(),
    ));
    rt.block_on(async {
        while !router.connected().iter().any(|c| c.configured) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let written: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let arrived: Arc<Mutex<Vec<Option<Instant>>>> = Arc::default();
    let a = arrived.clone();
    rt.spawn(async move {
        while let Some(d) = forwarded.recv().await {
            if let Observation::Event { value, .. } = &d.observation
                && let Some(k) = value
                    .strip_prefix('M')
                    .and_then(|k| k.parse::<usize>().ok())
            {
                let mut a = a.lock().unwrap();
                if a.len() <= k {
                    a.resize(k + 1, None);
                }
                a[k] = Some(Instant::now());
            }
        }
    });
    // The `wait_for` side: a poll of the events index every 5 ms, marker after marker.
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (seen, done, store) = (seen.clone(), done.clone(), store.share());
        std::thread::spawn(move || {
            let mut since = lowtouch::clock::now_us();
            let mut stop_at = None;
            loop {
                let events = store
                    .events("busy", since, lowtouch::clock::now_us())
                    .unwrap();
                let now = Instant::now();
                let mut seen = seen.lock().unwrap();
                for e in &events {
                    if e.text.as_deref() == Some(format!("M{}", seen.len()).as_str()) {
                        seen.push(now);
                        since = e.at_us + 1;
                    }
                }
                let markers = MARKERS.load(std::sync::atomic::Ordering::SeqCst);
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    let stop = *stop_at.get_or_insert(now + Duration::from_secs(5));
                    if seen.len() >= markers || now >= stop {
                        break;
                    }
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // The writer: 100 lines every millisecond, the last of every tenth batch a marker.
    let secs = 5.0;
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let started = Instant::now();
    let mut lines = 0u64;
    let mut tick = 0u64;
    let mut batch = String::with_capacity(8192);
    while started.elapsed().as_secs_f64() < secs {
        batch.clear();
        for i in 0..100 {
            if i % 5 == 0 {
                batch.push_str("t1 INFO ME INTERNAL LATENCY: 37 us\n");
            } else {
                batch.push_str("t1 INFO ME ORDER NEW id=123456 px=101.25 qty=10 side=B\n");
            }
        }
        let marker = tick % 10 == 9;
        if marker {
            let k = written.lock().unwrap().len();
            batch.push_str(&format!("t1 INFO ME STATE: M{k}\n"));
        }
        file.write_all(batch.as_bytes()).unwrap();
        lines += 100 + marker as u64;
        if marker {
            written.lock().unwrap().push(Instant::now());
            MARKERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        tick += 1;
        let next = started + Duration::from_micros(tick * 1000);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = poller.join();
    std::thread::sleep(Duration::from_millis(200));
    let written = written.lock().unwrap().clone();
    let arrived = arrived.lock().unwrap().clone();
    let seen = seen.lock().unwrap().clone();
    let ms = |a: Instant, w: Instant| a.saturating_duration_since(w).as_secs_f64() * 1e3;
    let daemon: Vec<f64> = written
        .iter()
        .zip(&arrived)
        .map(|(w, a)| a.map_or(f64::INFINITY, |a| ms(a, *w)))
        .collect();
    let waited: Vec<f64> = written
        .iter()
        .enumerate()
        .map(|(k, w)| seen.get(k).map_or(f64::INFINITY, |s| ms(*s, *w)))
        .collect();
    (lines, elapsed, daemon, waited)
}

static MARKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Mean µs per call of `f` over `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn channel_cost() {
    use lowtouch::net::channel::{Initiator, Records, Responder, psk};
    use lowtouch::net::codec::{Decoder, Message, encode};
    let key = psk(SECRET.as_bytes(), "bench");
    let connect = || {
        let (initiator, first) = Initiator::start(SECRET.as_bytes(), "bench", b"hello").unwrap();
        let mut records = Records::default();
        records.feed(&first[4..]);
        let record = records.next_record().unwrap().to_vec();
        let (_, _, responder) = Responder::open([("bench", &key)], &record).unwrap();
        let (answer, rs, ro) = responder.answer(b"greeting").unwrap();
        let (_, ds, dop) = initiator.finish(&answer[2..]).unwrap();
        ((ds, dop), (rs, ro))
    };
    let handshake_us = per_call(2_000, || {
        std::hint::black_box(connect());
    });
    println!("channel: one whole handshake (both ends, X25519 twice each) {handshake_us:.1} µs");
    let observation = |i: usize| Observation::Event {
        at_us: 1_764_000_000_000_000 + i as i64,
        source: "MatchingEnginePrimary".into(),
        name: "state".into(),
        value: format!("ACTIVE{i}"),
    };
    for items in [1usize, 512] {
        let message = Message::Observations {
            first_seq: 1,
            items: (0..items).map(observation).collect(),
        };
        let n = if items == 1 { 200_000 } else { 2_000 };
        let plain_us = per_call(n, || {
            let frame = encode(&message);
            let mut d = Decoder::default();
            d.feed(&frame);
            std::hint::black_box(d.next_message().unwrap());
        });
        let ((mut sealer, _), (_, mut opener)) = connect();
        let mut opened = Vec::new();
        let sealed_us = per_call(n, || {
            let frame = encode(&message);
            let sealed = sealer.sealed(&frame).unwrap();
            opener.feed(&sealed);
            opened.clear();
            opener.open(&mut opened).unwrap();
            let mut d = Decoder::default();
            d.feed(&opened);
            std::hint::black_box(d.next_message().unwrap());
        });
        let bytes = encode(&message).len();
        println!(
            "channel: a frame of {items} observation(s), {bytes} bytes: encode+decode {plain_us:.2} µs, \
             with seal+open {sealed_us:.2} µs ({:.2}x; +{:.2} µs, {:.0} MB/s sealed and opened)",
            sealed_us / plain_us,
            sealed_us - plain_us,
            bytes as f64 / (sealed_us - plain_us).max(1e-9)
        );
    }
}

fn main() {
    channel_cost();
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
        stop: lowtouch::process::control::RunControl::detached(),
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
    // The lean binary at every rate; the whole `lowtouch daemon` at the first, to compare.
    let lean = env!("CARGO_BIN_EXE_lowtouch-daemon");
    let full = env!("CARGO_BIN_EXE_lowtouch");
    let runs: Vec<(&str, u64)> = rates
        .iter()
        .map(|r| (lean, *r))
        .chain(rates.first().map(|r| (full, *r)))
        .collect();
    for (binary, rate) in runs {
        let mut command = std::process::Command::new(binary);
        if binary == full {
            command.arg("daemon");
        }
        let mut daemon = command
            .args([
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
        // Nanoseconds on a CPU, summed over the daemon's threads (schedstat: exact, where
        // the tick counts of /proc/PID/stat are 10 ms apart).
        let cpu_ns = |pid: u32| -> u64 {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        };
        let status = |pid: u32, key: &str| -> f64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap()
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0.0)
        };
        let before = cpu_ns(daemon.id());
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
        let cpu = (cpu_ns(daemon.id()) - before) as f64 / 1e6 / elapsed;
        let hwm = status(daemon.id(), "VmHWM:") / 1024.0;
        let _ = daemon.kill();
        let _ = daemon.wait();
        // The router lets the name go once it sees the connection close.
        rt.block_on(async {
            while router.connected().iter().any(|c| c.name == "proc") {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let which = if binary == full {
            "`lowtouch daemon`"
        } else {
            "`lowtouch-daemon`"
        };
        footprints.push((which, rate, hwm, cpu));
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let (busy_lines, busy_secs, mut busy_daemon, mut busy_wait) = follow_busy_log(&rt, dir.path());

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
    let (b50, b99) = (
        percentile(&mut busy_daemon, 0.5),
        percentile(&mut busy_daemon, 0.99),
    );
    let (w50, w99) = (
        percentile(&mut busy_wait, 0.5),
        percentile(&mut busy_wait, 0.99),
    );
    println!(
        "| {:.0} lines/s for {busy_secs:.1} s ({} markers): write → event at the data processor | p50 {b50:.2} ms, p99 {b99:.2} ms | < 5 ms: {} |",
        busy_lines as f64 / busy_secs,
        busy_daemon.len(),
        ok(b99 < 5.0)
    );
    println!(
        "| the same: write → seen by a `wait_for` poll of the store (every 5 ms) | p50 {w50:.2} ms, p99 {w99:.2} ms | < 20 ms: {} |",
        ok(w99 < 20.0)
    );
    for (which, rate, hwm, cpu) in footprints {
        println!(
            "| {which}, 10 components + system + 1 log at {rate} lines/s, {secs} s | peak RSS {hwm:.1} MiB, CPU {cpu:.2} ms per 1 s interval | < 8 MiB, < 3 ms: {} |",
            ok(hwm < 8.0 && cpu < 3.0)
        );
    }
}
