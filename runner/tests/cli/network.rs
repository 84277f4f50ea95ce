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
        stop: lowtouch::process::control::RunControl::detached(),
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
        let before = lowtouch::clock::now_us();
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

/// A relay between a daemon and the real router (whoever receives the daemon's outgoing
/// connection: DNS, a route, ARP): it forwards every record both ways, keeps a copy of all
/// it saw, and when told, puts a record of its own in front of the daemon.
struct Relay {
    addr: String,
    /// Every byte that went through, both ways.
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Connections the daemon made through it.
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    inject: tokio::sync::mpsc::UnboundedSender<Injection>,
}

enum Injection {
    /// These bytes, as one record of their own.
    Record(Vec<u8>),
    /// The last record the router sent, once more.
    Replay,
    /// From now on the router's bytes are dropped, and the daemon gets the head of a long
    /// record and then one byte of it now and then: bytes, but never a record.
    Dribble,
}

async fn relay(router: String) -> Relay {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (inject, mut injections) = tokio::sync::mpsc::unbounded_channel::<Injection>();
    let (s, a) = (seen.clone(), accepted.clone());
    tokio::spawn(async move {
        // One connection at a time: the daemon's current one gets the injections.
        while let Ok((daemon, _)) = listener.accept().await {
            a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let upstream = tokio::net::TcpStream::connect(&router).await.unwrap();
            let (mut dr, mut dw) = daemon.into_split();
            let (mut ur, mut uw) = upstream.into_split();
            let s_up = s.clone();
            let up = tokio::spawn(async move {
                let mut buf = [0u8; 65536];
                while let Ok(n) = dr.read(&mut buf).await {
                    if n == 0 || uw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    s_up.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            // Router -> daemon, whole records at a time, so an injection lands between two.
            let mut records = lowtouch::net::channel::Records::default();
            let mut last: Vec<u8> = Vec::new();
            let mut buf = [0u8; 65536];
            let mut dribbling = false;
            let mut drip = tokio::time::interval(Duration::from_millis(300));
            loop {
                tokio::select! {
                    _ = drip.tick(), if dribbling => {
                        if dw.write_all(&[0]).await.is_err() { break; }
                    }
                    n = ur.read(&mut buf) => {
                        let Ok(n) = n else { break };
                        if n == 0 { break; }
                        if dribbling { continue; }
                        s.lock().unwrap().extend_from_slice(&buf[..n]);
                        records.feed(&buf[..n]);
                        let mut out = Vec::new();
                        while let Some(r) = records.next_record() {
                            last = r.to_vec();
                            out.extend_from_slice(&(r.len() as u16).to_be_bytes());
                            out.extend_from_slice(r);
                        }
                        if dw.write_all(&out).await.is_err() { break; }
                    }
                    Some(i) = injections.recv() => {
                        let record = match i {
                            Injection::Record(r) => r,
                            Injection::Replay => last.clone(),
                            Injection::Dribble => {
                                dribbling = true;
                                if dw.write_all(&[0xFF, 0xFF]).await.is_err() { break; }
                                continue;
                            }
                        };
                        let mut out = (record.len() as u16).to_be_bytes().to_vec();
                        out.extend_from_slice(&record);
                        if dw.write_all(&out).await.is_err() { break; }
                    }
                }
            }
            up.abort();
        }
    });
    Relay {
        addr,
        seen,
        accepted,
        inject,
    }
}

/// Issue 12: a relay that forwards a daemon's connection to the real router learns nothing
/// of what the two say, and no frame it puts in is obeyed — not a forged command, not a
/// replayed record. The daemon drops such a connection and dials again.
#[test]
fn a_relay_between_daemon_and_router_learns_nothing_and_injects_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("obeyed");
        const CONFIDENTIAL: &str = "a-component-password-9f8e7d6c5b4a";
        let config = DaemonConfig {
            interval_ms: 200,
            collectors: vec!["system".into()],
            components: vec![ComponentWatch {
                name: "Engine".into(),
                control: Some(ControlSpec {
                    start: vec!["sleep".into(), "60".into()],
                    env: vec![("ENGINE_PASSWORD".into(), CONFIDENTIAL.into())],
                    ..ControlSpec::default()
                }),
                ..ComponentWatch::default()
            }],
            commands: vec![CommandSpec {
                name: "mark".into(),
                argv: vec!["touch".into(), marker.display().to_string()],
            }],
            ..DaemonConfig::default()
        };
        let router_config = RouterConfig {
            secrets: HashMap::from([("local".to_string(), SECRET.to_vec())]),
            configs: HashMap::from([("local/relayed-daemon".to_string(), config)]),
            heartbeat: Duration::from_millis(100),
            ..RouterConfig::default()
        };
        let (router, addr, _rx) = Router::bind("127.0.0.1:0", router_config).await.unwrap();
        let relay = relay(addr.to_string()).await;
        let d = tokio::spawn(daemon::run(
            options(&relay.addr, "relayed-daemon", SECRET),
            std::future::pending(),
        ));
        wait_connected(&router, "relayed-daemon").await;

        // What the relay saw holds neither the configuration's secret nor who is talking.
        let seen = relay.seen.lock().unwrap().clone();
        assert!(
            seen.len() > 100,
            "the relay forwarded the handshake and the configuration"
        );
        let contains = |needle: &str| seen.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(
            !contains(CONFIDENTIAL),
            "the configuration crossed the relay in clear"
        );
        assert!(
            !contains("relayed-daemon"),
            "the daemon's name crossed the relay in clear"
        );
        assert!(
            !contains("configure"),
            "a message kind crossed the relay in clear"
        );

        let forged = lowtouch::net::codec::encode(&lowtouch::net::Message::Command {
            id: 99,
            command: Command::Run {
                name: "mark".into(),
                args: vec![],
                timeout_ms: None,
                env: vec![],
            },
        });
        for (i, injection) in [
            Injection::Record(forged.clone()),
            Injection::Record(forged[4..].to_vec()),
            Injection::Replay,
            // Bytes that never make a record do not keep the connection alive.
            Injection::Dribble,
        ]
        .into_iter()
        .enumerate()
        {
            let before = relay.accepted.load(std::sync::atomic::Ordering::SeqCst);
            relay.inject.send(injection).unwrap();
            // The daemon drops the connection it cannot trust and dials again.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while relay.accepted.load(std::sync::atomic::Ordering::SeqCst) == before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "injection {i}: the daemon kept the connection"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            wait_connected(&router, "relayed-daemon").await;
            assert!(
                !marker.exists(),
                "injection {i}: the daemon obeyed a frame the relay made"
            );
        }

        // The same command from the real router, through the same relay, is obeyed: the
        // marker is a real witness.
        let done = router
            .command(
                "relayed-daemon",
                Command::Run {
                    name: "mark".into(),
                    args: vec![],
                    timeout_ms: None,
                    env: vec![],
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(done.error, None, "{done:?}");
        assert!(marker.exists());
        d.abort();
    });
}

/// Issue 12: an unauthenticated peer gets not one byte from the router — not for garbage,
/// not for an old daemon's hello naming a served environment, not for a handshake record
/// sealed with a guessed secret.
#[test]
fn the_router_tells_an_unauthenticated_peer_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let router_config = RouterConfig {
            secrets: HashMap::from([("local".to_string(), SECRET.to_vec())]),
            auth_timeout: Duration::from_millis(500),
            ..RouterConfig::default()
        };
        let (_router, addr, _rx) = Router::bind("127.0.0.1:0", router_config).await.unwrap();
        let mut old_hello = vec![0, 0, 0, 0, 1];
        old_hello.extend_from_slice(
            br#"{"t":"hello","daemon":"d","environment":"local","boot":"b","nonce":"00"}"#,
        );
        let len = (old_hello.len() - 4) as u32;
        old_hello[..4].copy_from_slice(&len.to_be_bytes());
        let (_, guessed) = lowtouch::net::channel::Initiator::start(
            b"a guessed secret, 32 bytes long.",
            "local",
            b"hello",
        )
        .unwrap();
        let mut garbage = lowtouch::net::channel::PREFACE.to_vec();
        garbage.extend_from_slice(&[0, 40]);
        garbage.extend_from_slice(&[0xAB; 40]);
        for (what, bytes) in [
            ("an old hello", old_hello),
            ("a guessed secret", guessed),
            ("garbage", garbage),
        ] {
            let mut peer = tokio::net::TcpStream::connect(addr).await.unwrap();
            peer.write_all(&bytes).await.unwrap();
            let mut got = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(5), peer.read_to_end(&mut got)).await;
            // Closed (a reset, when the router left bytes unread), within the timeout.
            let closed = match read {
                Ok(Ok(_)) => true,
                Ok(Err(ref e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
                Err(_) => false,
            };
            assert!(closed, "{what}: {read:?}");
            assert!(
                got.is_empty(),
                "{what}: the router answered {} bytes",
                got.len()
            );
        }
    });
}

/// Issue 12: strangers cannot keep daemons out. A flood of connections that never finish a
/// handshake, from one address, takes at most its share of the handshake slots; a daemon
/// from another host connects while the flood holds them.
#[test]
fn a_flood_of_idle_connections_does_not_keep_a_daemon_out() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let router_config = RouterConfig {
            secrets: HashMap::from([("local".to_string(), SECRET.to_vec())]),
            configs: HashMap::from([("local/matching".to_string(), DaemonConfig::default())]),
            // Longer than the test waits for the daemon: the flood holds its slots throughout.
            auth_timeout: Duration::from_secs(30),
            ..RouterConfig::default()
        };
        let (router, addr, _rx) = Router::bind("127.0.0.1:0", router_config).await.unwrap();
        let mut flood = Vec::new();
        for _ in 0..400 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            if let Ok(stream) = socket.connect(addr).await {
                flood.push(stream);
            }
        }
        assert!(
            flood.len() > 256,
            "the flood opened {} connections",
            flood.len()
        );
        let started = tokio::time::Instant::now();
        let d = tokio::spawn(daemon::run(
            options(&addr.to_string(), "matching", SECRET),
            std::future::pending(),
        ));
        wait_connected(&router, "matching").await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon waited for the flood to time out"
        );
        d.abort();
        drop(flood);
    });
}
