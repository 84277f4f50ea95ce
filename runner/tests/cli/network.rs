//! The monitoring network over real TCP on loopback: a router, daemons that dial in and
//! authenticate, a log line turned into an event on the router's side, a process killed
//! through a daemon and seen to crash, and everything a daemon must refuse.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use lowtouch::daemon::{self, Options};
use lowtouch::net::Observation;
use lowtouch::net::codec::{
    Command, CommandSpec, ComponentWatch, ControlSpec, DaemonConfig, RuleConfig,
};
use lowtouch::net::router::{Delivered, Router, RouterConfig, RouterError};

const SECRET: &[u8] = b"a-test-secret-of-32-bytes-length";

fn options(server: &str, name: &str, secret: &[u8]) -> Options {
    Options {
        server: server.to_string(),
        name: name.into(),
        environment: "local".into(),
        secret: secret.to_vec(),
        outbox_capacity: 10_000,
        dead_after: Duration::from_secs(3),
        max_backoff: Duration::from_millis(500),
    }
}

/// Waits for a delivered observation that `want` accepts.
async fn expect(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Delivered>,
    what: &str,
    want: impl Fn(&Delivered) -> bool,
) -> Delivered {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(d)) if want(&d) => return d,
            Ok(Some(_)) => continue,
            _ => panic!("no {what} within 10s"),
        }
    }
}

fn is_event(d: &Delivered, source: &str, name: &str, value: &str) -> bool {
    matches!(&d.observation, Observation::Event { source: s, name: n, value: v, .. }
        if s == source && n == name && v == value)
}

/// Waits until the daemon is connected and follows its logs.
async fn wait_connected(router: &Router, name: &str) {
    for _ in 0..400 {
        if router
            .connected()
            .iter()
            .any(|c| c.name == name && c.configured)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("daemon {name} never connected: {:?}", router.connected());
}

#[test]
fn daemons_authenticate_report_and_obey_only_what_they_may() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("engine.log");
        std::fs::write(&log, "old line STATE: BOOTING\n").unwrap();
        // A component process: a child of this test, its pid file as lowtouch writes it.
        let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let start = lowtouch::monitor::procfs::parse_pid_stat(&stat).unwrap().start_ticks;
        let pid_file = dir.path().join("Engine.pid");
        std::fs::write(&pid_file, format!("{} {start}\n", child.id())).unwrap();

        let config = DaemonConfig {
            interval_ms: 200,
            collectors: vec!["log".into(), "process".into(), "system".into()],
            components: vec![ComponentWatch {
                name: "Engine".into(),
                pid_file: Some(pid_file.display().to_string()),
                stop_marker: None,
                log: Some(log.display().to_string()),
                rules: vec![
                    RuleConfig {
                        pattern: r"STATE: (?P<state>\w+)".into(),
                        event: Some("state".into()),
                        metric: None,
                    },
                    RuleConfig {
                        pattern: r"LATENCY: (?P<us>\d+)".into(),
                        event: None,
                        metric: Some("latency_us".into()),
                    },
                ],
                // Found by the pid recorded in the runtime directory, as runs record it.
                control: Some(ControlSpec {
                    start: vec!["sleep".into(), "60".into()],
                    ready_timeout_ms: 1000,
                    stop_timeout_ms: 1000,
                    ..ControlSpec::default()
                }),
            }],
            commands: vec![CommandSpec {
                name: "say".into(),
                argv: vec!["echo".into(), "said:".into()],
            }],
            runtime_dir: Some(dir.path().display().to_string()),
            ..DaemonConfig::default()
        };
        let router_config = RouterConfig {
            secrets: HashMap::from([("local".to_string(), SECRET.to_vec())]),
            configs: HashMap::from([("local/matching".to_string(), config)]),
            auth_timeout: Duration::from_millis(500),
            ..RouterConfig::default()
        };
        let (router, addr, mut rx) = Router::bind("127.0.0.1:0", router_config).await.unwrap();
        let server = addr.to_string();
        let d = tokio::spawn(daemon::run(
            options(&server, "matching", SECRET),
            std::future::pending(),
        ));
        wait_connected(&router, "matching").await;
        let link = &router.connected()[0];
        assert_eq!(link.environment, "local");
        assert!(link.offset_us.is_some(), "the handshake measured the clock");

        // A line appended to the log is an event on the router's side; the line that was
        // there before the daemon came is not.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"t1 STATE: ACTIVE\nt2 LATENCY: 42 us\n")
            .unwrap();
        let before = lowtouch::net::router::now_us();
        let got = expect(&mut rx, "state ACTIVE", |d| is_event(d, "Engine", "state", "ACTIVE")).await;
        assert_eq!(got.daemon, "matching");
        assert!((got.at_us - before).abs() < 5_000_000, "on the router's timeline");
        expect(&mut rx, "latency metric", |d| {
            matches!(&d.observation, Observation::Metric { name, value, .. } if name == "latency_us" && *value == 42.0)
        })
        .await;
        expect(&mut rx, "a system metric", |d| {
            matches!(&d.observation, Observation::Metric { source, name, .. } if source == "system" && name == "memory_used_bytes")
        })
        .await;
        assert!(
            !std::iter::from_fn(|| rx.try_recv().ok()).any(|d| is_event(&d, "Engine", "state", "BOOTING")),
            "a line from before the daemon came was reported"
        );

        // Commands: an allowed one runs without a shell; anything else is refused.
        let said = router
            .command("matching", Command::Run { name: "say".into(), args: vec!["$(id) ; x".into()], timeout_ms: None, env: vec![] }, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(said.stdout, "said: $(id) ; x\n");
        let rm = router
            .command("matching", Command::Run { name: "rm".into(), args: vec!["-rf".into(), "/".into()], timeout_ms: None, env: vec![] }, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(rm.error.as_deref().unwrap_or("").contains("not a command this daemon may run"), "{rm:?}");
        // The router may set a step's LOWTOUCH_* variables, nothing else (LD_PRELOAD…).
        let preload = router
            .command(
                "matching",
                Command::Run { name: "say".into(), args: vec![], timeout_ms: None, env: vec![("LD_PRELOAD".into(), "/tmp/x.so".into())] },
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert!(preload.error.as_deref().unwrap_or("").contains("not a variable a router may set"), "{preload:?}");
        let other = router
            .command("matching", Command::Kill { component: "Database".into(), signal: 9 }, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(other.error.as_deref().unwrap_or("").contains("not one this daemon controls"), "{other:?}");
        assert_eq!(
            router
                .command("nobody", Command::Kill { component: "Engine".into(), signal: 9 }, Duration::from_secs(1))
                .await,
            Err(RouterError::NotConnected("nobody".into()))
        );

        // kill -9 through the daemon: the process crashes, and the daemon sees it.
        let killed = router
            .command("matching", Command::Kill { component: "Engine".into(), signal: 9 }, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(killed.error, None, "{killed:?}");
        expect(&mut rx, "CRASHED", |d| is_event(d, "Engine", "process", "CRASHED")).await;
        let _ = child.wait();

        // A second daemon with the same name is refused; a wrong secret gets nowhere.
        let twin = tokio::spawn(daemon::run(options(&server, "matching", SECRET), std::future::pending()));
        let impostor = tokio::spawn(daemon::run(
            options(&server, "monitoring", b"the-wrong-secret-of-32-bytes-len"),
            std::future::pending(),
        ));
        tokio::time::sleep(Duration::from_millis(800)).await;
        let names: Vec<String> = router.connected().into_iter().map(|c| c.name).collect();
        assert_eq!(names, vec!["matching".to_string()]);
        twin.abort();
        impostor.abort();

        // A peer that never authenticates is dropped after the timeout.
        let mut silent = tokio::net::TcpStream::connect(&server).await.unwrap();
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(3), tokio::io::AsyncReadExt::read(&mut silent, &mut byte)).await;
        assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
        d.abort();
    });
}

/// What one daemon process (`boot`) numbered `seqs` and sent.
fn numbered(boot: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<Delivered> {
    seqs.map(|seq| Delivered {
        daemon: "matching".into(),
        environment: "local".into(),
        boot: boot.into(),
        seq: Some(seq),
        at_us: 1_000_000 + seq as i64,
        observation: Observation::Event {
            at_us: seq as i64,
            source: "Engine".into(),
            name: "state".into(),
            value: format!("S{seq}"),
        },
    })
    .collect()
}

#[test]
fn a_restarted_server_stores_a_daemons_resent_observations_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // One server's data processor: stores 1..=5 of process `b1`, then goes away (with
    // its store: the process ends).
    let serve = |batches: Vec<Vec<Delivered>>| {
        let store = lowtouch::store::Store::open(&db).unwrap();
        rt.block_on(async {
            let (router, _, _) = Router::bind("127.0.0.1:0", RouterConfig::default())
                .await
                .unwrap();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let processor = tokio::spawn(lowtouch::daemon::processor::store_all(
                rx,
                store.share(),
                None,
                router,
            ));
            for batch in batches {
                for d in batch {
                    tx.send(d).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drop(tx);
            processor.await.unwrap();
        });
        store
    };
    drop(serve(vec![numbered("b1", 1..=5)]));
    // The daemon was not acknowledged past 3 when the server went: it sends 4..=8 to the
    // new server, which stores only 6..=8 — and a new process of it (`b2`) from 1 again.
    let store = serve(vec![numbered("b1", 4..=8), numbered("b2", 1..=2)]);
    let stored: Vec<String> = store
        .observations("local", i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|o| o.text.unwrap())
        .collect();
    let mut want: Vec<String> = (1..=8).map(|i| format!("S{i}")).collect();
    want.extend(["S1".to_string(), "S2".to_string()]);
    let mut got = stored.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "stored: {stored:?}");
    let marks = store.inbox_marks().unwrap();
    assert_eq!(
        marks.get(&("local".into(), "matching".into(), "b1".into())),
        Some(&9)
    );
}
