//! From a signed webhook arriving to the scenario's first step starting (issue 4 §6:
//! under 1 s). A real `lowtouch serve` on loopback, a real git repository, a real push;
//! the first step writes the wall clock in nanoseconds, the bench subtracts the moment it
//! sent the delivery. Median of 7. Run with `cargo bench -p lowtouch --bench webhook`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lowtouch::trigger::webhook::sign;

const SECRET: &str = "bench-secret";
const RUNS: usize = 7;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args([
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@lowtouch.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

fn commit(dir: &Path, text: &str) {
    std::fs::write(dir.join("engine.txt"), text).unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", text]);
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn deliver(port: u16, id: &str) -> u16 {
    let body = r#"{"ref":"refs/heads/main","before":"0","after":"1","repository":{"full_name":"bench/exchange"}}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /hooks/github HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: {id}\r\n\
         X-Hub-Signature-256: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sign(SECRET.as_bytes(), body.as_bytes()),
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let product = tempfile::tempdir().unwrap();
    git(product.path(), &["init", "-q"]);
    commit(product.path(), "v0");
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    std::fs::create_dir_all(p.join("environments")).unwrap();
    std::fs::create_dir_all(p.join("pipelines")).unwrap();
    std::fs::write(
        p.join("environments/local.yaml"),
        "aliases:\n  stamp:\n    run: [sh, -c, 'date +%s%N > started.tmp && mv started.tmp started']\n",
    )
    .unwrap();
    std::fs::write(p.join("pipelines/s.scn"), "stamp\n").unwrap();
    std::fs::write(
        p.join("pipelines/watched.yaml"),
        format!(
            "environment: local\nscenarios: [s.scn]\nrepositories:\n  exchange:\n    role: product\n    url: {}\n    follow: [main]\n",
            product.path().display()
        ),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_lowtouch"))
        .arg("-C")
        .arg(p)
        .args(["serve", "--listen", "127.0.0.1:0", "--poll-interval", "1h"])
        .env("LOWTOUCH_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lowtouch serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("address");
    let log = Arc::new(Mutex::new(String::new()));
    {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&(l + "\n"));
            }
        });
    }
    let until = |cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    until(&|| log.lock().unwrap().contains("now watching"));

    let stamp = p.join("started");
    let mut latencies = Vec::new();
    for i in 0..RUNS {
        let _ = std::fs::remove_file(&stamp);
        // Let the previous round end so this delivery finds the server idle.
        until(&|| log.lock().unwrap().matches("poll (").count() == i + 1 && runs_done(&log, i));
        commit(product.path(), &format!("v{}", i + 1));
        let sent = now_ns();
        assert_eq!(deliver(port, &format!("bench-{i}")), 202);
        until(&|| stamp.exists());
        let started: u128 = std::fs::read_to_string(&stamp)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        latencies.push(Duration::from_nanos((started - sent) as u64));
    }
    // SAFETY: signalling the server this bench started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    latencies.sort();
    let median = latencies[RUNS / 2];
    let verdict = if median < Duration::from_secs(1) {
        "PASS"
    } else {
        "FAIL"
    };
    println!(
        "webhook -> first step: median of {RUNS} {:.1} ms (min {:.1}, max {:.1}) -> {verdict} (target < 1 s)",
        median.as_secs_f64() * 1e3,
        latencies[0].as_secs_f64() * 1e3,
        latencies[RUNS - 1].as_secs_f64() * 1e3
    );
}

/// Whether the server logged the end of `n` runs' summaries (each run prints its result).
fn runs_done(log: &Arc<Mutex<String>>, n: usize) -> bool {
    log.lock().unwrap().matches("running watched").count() == n
        && (n == 0 || log.lock().unwrap().matches("PASS s").count() >= n)
}
