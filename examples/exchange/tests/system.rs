//! System tests: the real `exchange` binary as separate processes on
//! loopback. Every wait polls with a deadline; every started process is
//! killed by a guard, even when an assertion fails.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_exchange");
const POLL: Duration = Duration::from_millis(20);

/// Kills (SIGKILL) and reaps its process on drop.
struct Proc {
    child: Child,
}

impl Proc {
    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on a pid this test started and has not yet
        // reaped, so it cannot name an unrelated process.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "process did not exit in time");
            thread::sleep(POLL);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.args(args);
    // The knobs must come from the flags in these tests, not from whatever
    // environment the test runner inherited.
    for var in [
        "EXCHANGE_LATENCY_US",
        "EXCHANGE_LEAK_KB_PER_ORDER",
        "EXCHANGE_FAILOVER_DELAY_MS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn spawn(args: &[&str]) -> Proc {
    let child = command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exchange");
    Proc { child }
}

/// Runs a client subcommand to completion: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command(args).output().expect("run exchange");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    drop(l);
    addr
}

fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Polls the log until a line contains `needle`; returns that line.
fn wait_for_line(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(line) = log_lines(path).into_iter().find(|l| l.contains(needle)) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {} within {timeout:?}; log:\n{}",
            path.display(),
            log_lines(path).join("\n")
        );
        thread::sleep(POLL);
    }
}

fn timestamp(line: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let ts = line.split(' ').next().expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339 timestamp")
}

fn latencies(path: &Path) -> Vec<u64> {
    log_lines(path)
        .iter()
        .filter_map(|l| l.split_once("INTERNAL LATENCY: "))
        .map(|(_, us)| us.trim().parse().expect("latency is an integer"))
        .collect()
}

fn median(mut v: Vec<u64>) -> u64 {
    assert!(!v.is_empty(), "no latency samples");
    v.sort_unstable();
    v[v.len() / 2]
}

/// A raw protocol session, to check the wire format itself.
struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    fn open(addr: &str) -> Session {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Session {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    fn ask(&mut self, line: &str) -> Vec<String> {
        writeln!(self.writer, "{line}").unwrap();
        let mut out = Vec::new();
        loop {
            let mut l = String::new();
            assert!(self.reader.read_line(&mut l).unwrap() > 0, "EOF");
            let l = l.trim_end().to_string();
            let terminal = !["TRADE ", "BID ", "ASK "].iter().any(|p| l.starts_with(p));
            out.push(l);
            if terminal {
                return out;
            }
        }
    }
}

struct Pair {
    dir: tempfile::TempDir,
    primary: Proc,
    backup: Proc,
    p_addr: String,
    b_addr: String,
}

impl Pair {
    fn engines(&self) -> String {
        format!("{},{}", self.p_addr, self.b_addr)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }
}

fn start_pair(backup_extra: &[&str]) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let (p_addr, repl_addr, b_addr) = (free_addr(), free_addr(), free_addr());
    let p_log = dir.path().join("p.log");
    let b_log = dir.path().join("b.log");
    let hb = ["--heartbeat-ms", "50", "--heartbeat-timeout-ms", "300"];
    let mut p_args = vec![
        "engine",
        "--name",
        "p",
        "--role",
        "primary",
        "--listen",
        &p_addr,
        "--replication",
        &repl_addr,
        "--log",
        p_log.to_str().unwrap(),
    ];
    p_args.extend(hb);
    let primary = spawn(&p_args);
    let mut b_args = vec![
        "engine",
        "--name",
        "b",
        "--role",
        "backup",
        "--listen",
        &b_addr,
        "--primary",
        &repl_addr,
        "--log",
        b_log.to_str().unwrap(),
    ];
    b_args.extend(hb);
    b_args.extend(backup_extra);
    let backup = spawn(&b_args);
    wait_for_line(&p_log, "STATE: READY", Duration::from_secs(5));
    wait_for_line(&b_log, "STATE: STANDBY", Duration::from_secs(5));
    Pair {
        dir,
        primary,
        backup,
        p_addr,
        b_addr,
    }
}

#[test]
fn failover_keeps_resting_order_and_backup_serves() {
    let pair = start_pair(&["--failover-delay-ms", "200"]);
    let engines = pair.engines();
    let b_log = pair.log("b");

    // A standby backup answers queries but refuses orders; malformed input
    // gets ERR and the connection stays usable.
    let mut s = Session::open(&pair.b_addr);
    assert_eq!(s.ask("STATUS"), ["STATUS b backup STANDBY"]);
    assert_eq!(s.ask("NEW x BUY DEMO 1 1"), ["REJ x NOT_ACTIVE"]);
    assert!(s.ask("NEW x BUY")[0].starts_with("ERR "));
    assert!(s.ask("bogus")[0].starts_with("ERR "));
    assert_eq!(s.ask("BOOK DEMO"), ["END"]);

    let (code, out, err) = run(&[
        "order",
        "--engines",
        &engines,
        "--id",
        "rest-1",
        "--side",
        "buy",
        "--symbol",
        "DEMO",
        "--qty",
        "5",
        "--price",
        "90",
    ]);
    assert_eq!((code, out.as_str()), (0, "rest-1\n"), "stderr: {err}");
    // Replicated before the ACK: the standby already has it.
    assert_eq!(s.ask("HAS rest-1"), ["HAS rest-1 YES"]);
    assert_eq!(s.ask("BOOK DEMO"), ["BID rest-1 5 90", "END"]);

    pair.primary.signal(libc::SIGKILL);
    let active = wait_for_line(&b_log, "STATE: ACTIVE", Duration::from_secs(5));
    let lost = wait_for_line(&b_log, "PRIMARY LOST: ", Duration::from_secs(1));
    let waited = timestamp(&active) - timestamp(&lost);
    assert!(
        waited >= chrono::Duration::milliseconds(200),
        "failover delay not honoured: {waited}"
    );
    assert_eq!(s.ask("STATUS"), ["STATUS b backup ACTIVE"]);

    let (code, out, err) = run(&["book", "--engines", &engines, "--has", "rest-1"]);
    assert_eq!((code, out.as_str()), (0, "PRESENT\n"), "stderr: {err}");
    let (code, out, _) = run(&["book", "--engines", &engines, "--has", "never-placed"]);
    assert_eq!((code, out.as_str()), (1, "MISSING\n"));

    let (code, out, err) = run(&["smoke", "--engines", &engines, "--timeout-ms", "3000"]);
    assert_eq!((code, out.as_str()), (0, "PASS\n"), "stderr: {err}");
    assert!(
        latencies(&b_log).len() >= 2,
        "the backup matched the smoke orders"
    );
    drop(pair.backup);
}

#[test]
fn backup_waits_for_primary_and_loads_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (p_addr, repl_addr, b_addr) = (free_addr(), free_addr(), free_addr());
    let b_log = dir.path().join("b.log");
    let p_log = dir.path().join("p.log");
    let _backup = spawn(&[
        "engine",
        "--name",
        "b",
        "--role",
        "backup",
        "--listen",
        &b_addr,
        "--primary",
        &repl_addr,
        "--log",
        b_log.to_str().unwrap(),
        "--heartbeat-ms",
        "50",
        "--heartbeat-timeout-ms",
        "200",
    ]);
    wait_for_line(&b_log, "PRIMARY UNREACHABLE", Duration::from_secs(5));
    // Longer than the heartbeat timeout: a backup never synchronised with a
    // primary must not take over.
    thread::sleep(Duration::from_millis(400));
    let mut s = Session::open(&b_addr);
    assert_eq!(s.ask("STATUS"), ["STATUS b backup STARTING"]);

    let _primary = spawn(&[
        "engine",
        "--name",
        "p",
        "--role",
        "primary",
        "--listen",
        &p_addr,
        "--replication",
        &repl_addr,
        "--log",
        p_log.to_str().unwrap(),
        "--heartbeat-ms",
        "50",
        "--heartbeat-timeout-ms",
        "200",
    ]);
    wait_for_line(&b_log, "STATE: STANDBY", Duration::from_secs(5));
    assert!(
        !log_lines(&b_log)
            .iter()
            .any(|l| l.contains("STATE: ACTIVE"))
    );

    let mut p = Session::open(&p_addr);
    assert_eq!(p.ask("NEW s1 SELL DEMO 10 101"), ["ACK s1"]);
    assert_eq!(p.ask("NEW s2 SELL DEMO 10 101"), ["ACK s2"]);
    assert_eq!(
        p.ask("NEW b1 BUY DEMO 12 102"),
        [
            "TRADE b1 s1 DEMO 10 101",
            "TRADE b1 s2 DEMO 2 101",
            "ACK b1"
        ]
    );
    assert_eq!(
        p.ask("NEW z NOPE"),
        ["ERR NEW takes 5 argument(s): NEW <id> <BUY|SELL> <SYMBOL> <qty> <price> (got 2)"]
    );
    assert_eq!(p.ask("NEW q BUY XXX 1 1"), ["REJ q UNKNOWN_SYMBOL"]);
    assert_eq!(s.ask("BOOK DEMO"), ["ASK s2 8 101", "END"]);
    assert_eq!(p.ask("CANCEL s2"), ["CANCELED s2"]);
    assert_eq!(s.ask("HAS s2"), ["HAS s2 NO"]);
    assert_eq!(p.ask("NEW r1 BUY ACME 3 50"), ["ACK r1"]);

    // A second backup connecting now gets the book as a snapshot.
    let b2_addr = free_addr();
    let b2_log = dir.path().join("b2.log");
    let _backup2 = spawn(&[
        "engine",
        "--name",
        "b2",
        "--role",
        "backup",
        "--listen",
        &b2_addr,
        "--primary",
        &repl_addr,
        "--log",
        b2_log.to_str().unwrap(),
    ]);
    wait_for_line(&b2_log, "STATE: STANDBY", Duration::from_secs(5));
    wait_for_line(&b2_log, "snapshot of 1 orders", Duration::from_secs(1));
    let mut s2 = Session::open(&b2_addr);
    assert_eq!(s2.ask("BOOK ACME"), ["BID r1 3 50", "END"]);
}

#[test]
fn latency_knob_raises_internal_latency() {
    let dir = tempfile::tempdir().unwrap();
    let mut engines = Vec::new();
    let mut logs = Vec::new();
    for (name, latency) in [("fast", "0"), ("slow", "2000")] {
        let addr = free_addr();
        let log = dir.path().join(format!("{name}.log"));
        engines.push(spawn(&[
            "engine",
            "--name",
            name,
            "--role",
            "primary",
            "--listen",
            &addr,
            "--log",
            log.to_str().unwrap(),
            "--latency-us",
            latency,
        ]));
        wait_for_line(&log, "STATE: READY", Duration::from_secs(5));
        logs.push((addr, log));
    }
    // Both load generators at once, to keep the suite short.
    let loadgens: Vec<_> = logs
        .iter()
        .map(|(addr, _)| {
            command(&[
                "loadgen",
                "--engines",
                addr,
                "--rate",
                "200",
                "--duration-ms",
                "600",
                "--seed",
                "7",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loadgen")
        })
        .collect();
    for lg in loadgens {
        let out = lg.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "loadgen failed: {err}");
        assert!(err.contains("sent=") && err.contains("errors=0"), "{err}");
    }
    let fast = latencies(&logs[0].1);
    let slow = latencies(&logs[1].1);
    assert!(
        fast.len() >= 50 && slow.len() >= 50,
        "{} {}",
        fast.len(),
        slow.len()
    );
    let (fast, slow) = (median(fast), median(slow));
    assert!(slow >= 2000, "slow median {slow} µs");
    assert!(
        slow >= fast + 1000,
        "fast median {fast} µs, slow median {slow} µs"
    );
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn leak_knob_from_env_grows_rss() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let log = dir.path().join("leak.log");
    let child = command(&[
        "engine",
        "--name",
        "leaky",
        "--role",
        "primary",
        "--listen",
        &addr,
        "--log",
        log.to_str().unwrap(),
    ])
    .env("EXCHANGE_LEAK_KB_PER_ORDER", "1024")
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let engine = Proc { child };
    wait_for_line(&log, "leak_kb_per_order=1024", Duration::from_secs(5));
    wait_for_line(&log, "STATE: READY", Duration::from_secs(5));
    let before = rss_kib(engine.pid());
    let mut s = Session::open(&addr);
    for i in 0..20 {
        assert_eq!(
            s.ask(&format!("NEW o{i} BUY DEMO 1 {}", 10 + i)),
            [format!("ACK o{i}")]
        );
    }
    let grown = rss_kib(engine.pid()).saturating_sub(before);
    assert!(grown >= 15 * 1024, "RSS grew by only {grown} KiB");
}

#[test]
fn sigterm_stops_engine_and_loadgen_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let log = dir.path().join("e.log");
    let mut engine = spawn(&[
        "engine",
        "--name",
        "e",
        "--role",
        "primary",
        "--listen",
        &addr,
        "--log",
        log.to_str().unwrap(),
    ]);
    wait_for_line(&log, "STATE: READY", Duration::from_secs(5));

    let child = command(&["loadgen", "--engines", &addr, "--rate", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut loadgen = Proc { child };
    wait_for_line(&log, "INTERNAL LATENCY: ", Duration::from_secs(5));
    loadgen.signal(libc::SIGTERM);
    let status = loadgen.wait_exit(Duration::from_secs(3));
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut loadgen.child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("loadgen: sent="), "{err}");

    engine.signal(libc::SIGTERM);
    let status = engine.wait_exit(Duration::from_secs(3));
    assert_eq!(status.code(), Some(0));
    let last = log_lines(&log).pop().unwrap_or_default();
    assert!(last.ends_with(" e STATE: STOPPED"), "last line: {last}");
}

#[test]
fn cli_usage_errors() {
    let (code, _, err) = run(&["engine", "--name", "x", "--bogus", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown flag --bogus"));
    let (code, out, _) = run(&["engine", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--failover-delay-ms"));
    let (code, out, _) = run(&["smoke", "--engines", &free_addr(), "--timeout-ms", "200"]);
    assert_eq!((code, out.as_str()), (1, "FAIL\n"));
}

#[test]
fn frozen_primary_is_detected_by_heartbeat_timeout() {
    let pair = start_pair(&[]);
    let b_log = pair.log("b");
    // Heartbeats flow while idle: the standby must not take over by itself.
    thread::sleep(Duration::from_millis(500));
    assert!(!log_lines(&b_log).iter().any(|l| l.contains("PRIMARY LOST")));

    // A stopped process keeps its sockets open: only the missing heartbeats
    // reveal it.
    pair.primary.signal(libc::SIGSTOP);
    let lost = wait_for_line(&b_log, "PRIMARY LOST: ", Duration::from_secs(5));
    assert!(lost.contains("no heartbeat"), "{lost}");
    wait_for_line(&b_log, "STATE: ACTIVE", Duration::from_secs(5));
    let (code, out, err) = run(&["smoke", "--engines", &pair.b_addr, "--timeout-ms", "3000"]);
    assert_eq!((code, out.as_str()), (0, "PASS\n"), "stderr: {err}");
    pair.primary.signal(libc::SIGCONT);
}

#[test]
fn engine_runs_from_config_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let log = dir.path().join("c.log");
    let conf = dir.path().join("engine.conf");
    // Generated test data, found next to the config file.
    std::fs::write(
        dir.path().join("symbols.txt"),
        "# generated instruments\nDEMO\n\nZED   # trailing comment\n",
    )
    .unwrap();
    std::fs::write(
        &conf,
        format!(
            "# rendered for the test environment\n\n\
             listen = \"{addr}\"\n\
             instruments_file = symbols.txt   # one symbol per line\n\
             max_order_qty = 1\n\
             heartbeat_ms = 50\n"
        ),
    )
    .unwrap();
    let conf_s = conf.to_str().unwrap();
    let _engine = spawn(&[
        "engine",
        "--name",
        "c",
        "--role",
        "primary",
        "--config",
        conf_s,
        "--log",
        log.to_str().unwrap(),
    ]);
    wait_for_line(&log, "STATE: READY", Duration::from_secs(5));
    let config = wait_for_line(&log, "CONFIG: ", Duration::from_secs(1));
    for part in [
        format!("listen={addr}"),
        "instruments=DEMO,ZED".to_string(),
        "heartbeat_ms=50".to_string(),
        "max_order_qty=1".to_string(),
        format!("config={conf_s}"),
    ] {
        assert!(config.contains(&part), "no {part:?} in {config}");
    }

    let mut s = Session::open(&addr);
    assert_eq!(s.ask("NEW z1 BUY ZED 1 100"), ["ACK z1"]);
    assert_eq!(s.ask("NEW z2 SELL ZED 2 100"), ["REJ z2 LIMIT"]);
    assert_eq!(s.ask("BOOK ZED"), ["BID z1 1 100", "END"]);
    // ACME is a default instrument, but not in the instruments file.
    assert_eq!(s.ask("NEW a1 BUY ACME 1 100"), ["REJ a1 UNKNOWN_SYMBOL"]);
    wait_for_line(&log, "REJECT z2 LIMIT", Duration::from_secs(1));

    // Smoke trades quantity 1, so even the smallest limit lets it pass.
    let (code, out, err) = run(&["smoke", "--engines", &addr, "--timeout-ms", "3000"]);
    assert_eq!((code, out.as_str()), (0, "PASS\n"), "stderr: {err}");
}

#[test]
fn bad_config_file_is_a_usage_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("x.log");
    let conf = dir.path().join("bad.conf");
    let conf_s = conf.to_str().unwrap();
    let engine = |body: &str| {
        std::fs::write(&conf, body).unwrap();
        run(&[
            "engine",
            "--name",
            "x",
            "--role",
            "primary",
            "--config",
            conf_s,
            "--log",
            log.to_str().unwrap(),
        ])
    };
    let (code, _, err) = engine("listen = 127.0.0.1:1\n# fine\nlisten_port = 7001\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{conf_s}:3: ")), "{err}");
    assert!(err.contains("\"listen_port\""), "{err}");
    let (code, _, err) = engine("listen 127.0.0.1:1\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{conf_s}:1: ")), "{err}");
    let (code, _, err) = engine("listen = 127.0.0.1:1\nlatency_us = slow\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{conf_s}:2: ")), "{err}");
    // Nothing was started.
    assert!(!log.exists());
}

#[test]
fn loadgen_replays_an_order_file() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let log = dir.path().join("e.log");
    let _engine = spawn(&[
        "engine",
        "--name",
        "e",
        "--role",
        "primary",
        "--listen",
        &addr,
        "--log",
        log.to_str().unwrap(),
    ]);
    wait_for_line(&log, "STATE: READY", Duration::from_secs(5));

    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "id,side,symbol,qty,price\nr1,buy,DEMO,2,90\nr2,SELL,DEMO,1,110\nr3,Buy,ACME,1,95\n",
    )
    .unwrap();
    let (code, _, err) = run(&[
        "loadgen",
        "--engines",
        &addr,
        "--orders",
        orders.to_str().unwrap(),
        "--rate",
        "50",
        "--duration-ms",
        "400",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("errors=0") && err.contains("rejected=0"),
        "{err}"
    );

    let lines = log_lines(&log);
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.ends_with(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{}", lines.join("\n")))
    };
    // In file order, then again from the start with the next loop suffix.
    let sent = [
        position("ORDER r1-0 BUY DEMO 2 90"),
        position("ORDER r2-0 SELL DEMO 1 110"),
        position("ORDER r3-0 BUY ACME 1 95"),
        position("ORDER r1-1 BUY DEMO 2 90"),
    ];
    assert!(sent.is_sorted(), "out of order: {sent:?}");

    // A malformed file is refused at start, naming the line.
    std::fs::write(
        &orders,
        "id,side,symbol,qty,price\nr1,BUY,DEMO,1,1\nr2,HOLD,DEMO,1,1\n",
    )
    .unwrap();
    let orders_s = orders.to_str().unwrap();
    let (code, _, err) = run(&["loadgen", "--engines", &addr, "--orders", orders_s]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{orders_s}:3: ")), "{err}");
}
