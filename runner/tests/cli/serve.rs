//! `lowtouch serve`: a signed webhook for a push starts a run; unsigned ones do nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lowtouch::trigger::webhook::sign;

use crate::harness::{Project, commit, log_of, stop, wait_until, watched_project};

pub(crate) const SECRET: &str = "webhook-secret-for-tests";

/// Posts a delivery and returns the HTTP status.
pub(crate) fn deliver(
    port: u16,
    event: &str,
    id: &str,
    body: &str,
    signature: Option<String>,
) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let sig = signature
        .map(|v| format!("X-Hub-Signature-256: {v}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /hooks/github HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: {event}\r\nX-GitHub-Delivery: {id}\r\n{sig}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
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

/// A signed push to `o/r` main, as GitHub sends it; returns the status.
pub(crate) fn signed_push(port: u16, id: &str) -> u16 {
    let push =
        r#"{"ref":"refs/heads/main","before":"0","after":"1","repository":{"full_name":"o/r"}}"#;
    deliver(
        port,
        "push",
        id,
        push,
        Some(sign(SECRET.as_bytes(), push.as_bytes())),
    )
}

/// `history --json`, retried while the server holds the store for a round.
fn runs(p: &Project) -> usize {
    for _ in 0..200 {
        let out = p.lowtouch(&["history", "--runs", "--json"]).output();
        if out.code == 0 {
            return serde_json::from_str::<Vec<serde_json::Value>>(&out.stdout)
                .unwrap()
                .len();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the store stayed held");
}

#[test]
fn a_signed_push_webhook_starts_a_run() {
    let (product, p) = watched_project("");
    let (child, port, log) = start(&p);
    assert!(
        wait_until(Duration::from_secs(30), || log
            .lock()
            .unwrap()
            .contains("now watching")),
        "the first round never finished:\n{}",
        log.lock().unwrap()
    );

    commit(product.path(), "src/engine.txt", "v2\n");
    let push = r#"{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":"1111111111111111111111111111111111111111","created":false,"deleted":false,"forced":false,"repository":{"full_name":"octo-org/exchange"},"commits":[]}"#;
    assert_eq!(deliver(port, "push", "a", push, None), 401, "unsigned");
    assert_eq!(
        deliver(
            port,
            "push",
            "b",
            push,
            Some(sign(b"wrong", push.as_bytes()))
        ),
        401
    );
    assert_eq!(runs(&p), 0, "an unsigned delivery started something");
    let ping = r#"{"zen":"Design for failure.","hook_id":1}"#;
    assert_eq!(
        deliver(
            port,
            "ping",
            "c",
            ping,
            Some(sign(SECRET.as_bytes(), ping.as_bytes()))
        ),
        200
    );
    assert_eq!(
        deliver(
            port,
            "push",
            "d",
            push,
            Some(sign(SECRET.as_bytes(), push.as_bytes()))
        ),
        202
    );
    assert!(
        wait_until(Duration::from_secs(30), || runs(&p) == 1),
        "no run:\n{}",
        log.lock().unwrap()
    );
    // The same delivery again is not acted on twice.
    assert_eq!(
        deliver(
            port,
            "push",
            "d",
            push,
            Some(sign(SECRET.as_bytes(), push.as_bytes()))
        ),
        200
    );

    assert_eq!(stop(child), Some(130), "{}", log.lock().unwrap());
    assert!(
        log.lock()
            .unwrap()
            .contains("webhook: push to octo-org/exchange refs/heads/main")
    );
}

/// Starts `lowtouch serve` on a free port; returns the child, its port and its stderr.
fn start(p: &Project) -> (std::process::Child, u16, Arc<Mutex<String>>) {
    start_with(p, &[])
}

/// [`start`] with more environment variables.
pub(crate) fn start_with(
    p: &Project,
    env: &[(&str, &str)],
) -> (std::process::Child, u16, Arc<Mutex<String>>) {
    let mut run = p
        .lowtouch(&["serve", "--listen", "127.0.0.1:0", "--poll-interval", "1h"])
        .env("LOWTOUCH_WEBHOOK_SECRET", SECRET);
    for (k, v) in env {
        run = run.env(k, v);
    }
    spawn_serve(run)
}

/// Spawns a `lowtouch serve` command; returns the child, the webhook port it printed and
/// its stderr.
pub(crate) fn spawn_serve(
    run: crate::harness::Run,
) -> (std::process::Child, u16, Arc<Mutex<String>>) {
    let mut child = run.spawn();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let log = log_of(&mut child);
    (child, port, log)
}

#[test]
fn a_continuous_pipeline_keeps_running_and_a_push_preempts_it() {
    let p = Project::empty();
    p.write(
        "environments/local.yaml",
        "aliases:\n  mark:\n    shell: 'echo \"$1\" >> marks.txt'\n",
    );
    p.write("pipelines/a.scn", "mark a\nsleep 1500ms\n");
    p.write("pipelines/b.scn", "mark b\n");
    p.write(
        "pipelines/soak.yaml",
        "environment: local\ncontinuous: true\nscenarios: [a.scn, b.scn]\n",
    );
    let (child, port, log) = start(&p);
    let marks = p.path().join("marks.txt");
    let count = |m: &str| {
        std::fs::read_to_string(&marks)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == m)
            .count()
    };
    // It runs again and again with nothing new arriving.
    assert!(
        wait_until(Duration::from_secs(30), || count("b") >= 2),
        "not continuous:\n{}",
        log.lock().unwrap()
    );
    // A push while `a` runs: `a` finishes, `b` is skipped, the round goes on.
    let a_before = count("a");
    assert!(wait_until(Duration::from_secs(30), || count("a") > a_before));
    let b_before = count("b");
    assert_eq!(signed_push(port, "pre"), 202);
    assert!(
        wait_until(Duration::from_secs(30), || log
            .lock()
            .unwrap()
            .contains("webhook: push to o/r")),
        "{}",
        log.lock().unwrap()
    );
    stop(child);
    assert_eq!(
        count("b"),
        b_before,
        "the scenario after the pre-emption ran"
    );
    let runs: Vec<serde_json::Value> = serde_json::from_str(
        &p.lowtouch(&["history", "--runs", "--json"])
            .output()
            .expect_code(0)
            .stdout,
    )
    .unwrap();
    assert!(
        runs.iter().any(|r| r["skipped"] == 1),
        "no pre-empted run: {runs:?}"
    );
}

#[test]
fn a_scheduled_pipeline_runs_by_the_clock() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    p.write("pipelines/s.scn", "echo tick\n");
    p.write(
        "pipelines/clock.yaml",
        "environment: local\nschedule: ['*/1 * * * * *']\nscenarios: [s.scn]\n",
    );
    let (child, _port, log) = start(&p);
    assert!(
        wait_until(Duration::from_secs(30), || log
            .lock()
            .unwrap()
            .matches("run clock (schedule: clock */1 * * * * *)")
            .count()
            >= 2),
        "{}",
        log.lock().unwrap()
    );
    stop(child);
    // A pattern that is not cron is refused with its place.
    p.write(
        "pipelines/clock.yaml",
        "environment: local\nschedule: ['every night']\nscenarios: [s.scn]\n",
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    assert!(
        out.stderr.contains("`every night` is not a cron pattern"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("pipelines/clock.yaml:2:"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_restarted_server_neither_reruns_old_commits_nor_misses_one_pushed_while_down() {
    let (product, p) = watched_project("");
    let (child, port, log) = start(&p);
    assert!(wait_until(Duration::from_secs(30), || log
        .lock()
        .unwrap()
        .contains("now watching")));
    commit(product.path(), "src/engine.txt", "v2\n");
    assert_eq!(signed_push(port, "1"), 202);
    assert!(
        wait_until(Duration::from_secs(30), || runs(&p) == 1),
        "{}",
        log.lock().unwrap()
    );
    stop(child);

    // Pushed while the server was down: found by the first round after the restart.
    commit(product.path(), "src/engine.txt", "v3\n");
    let (child, _port, log) = start(&p);
    assert!(
        wait_until(Duration::from_secs(30), || runs(&p) == 2),
        "the commit pushed while down was missed:\n{}",
        log.lock().unwrap()
    );
    stop(child);

    // Restarted again with nothing new: nothing runs again.
    let (child, _port, log) = start(&p);
    assert!(wait_until(Duration::from_secs(30), || log
        .lock()
        .unwrap()
        .contains("nothing new to run")
        || log.lock().unwrap().contains("poll (start)")));
    assert!(wait_until(Duration::from_secs(10), || !log
        .lock()
        .unwrap()
        .is_empty()));
    std::thread::sleep(Duration::from_millis(300));
    stop(child);
    assert_eq!(
        runs(&p),
        2,
        "an old commit ran again:\n{}",
        log.lock().unwrap()
    );
}

#[test]
fn an_unreachable_remote_is_retried_with_backoff_and_the_server_goes_on() {
    let (product, p) = watched_project("");
    let moved = product.path().with_extension("away");
    std::fs::rename(product.path(), &moved).unwrap();
    let mut child = p
        .lowtouch(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--poll-interval",
            "200ms",
        ])
        .spawn();
    let log = log_of(&mut child);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let text = log.lock().unwrap();
            text.contains("cannot reach")
                && text.contains("backing off after failures; next try in")
        }),
        "{}",
        log.lock().unwrap()
    );
    // Rounds go on (the server is alive), the remote is not hammered.
    let attempts = log
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains("cannot reach") && !l.contains("backing off"))
        .count();
    assert_eq!(attempts, 1, "{}", log.lock().unwrap());
    assert_eq!(child.try_wait().unwrap(), None, "the server died");
    stop(child);
    std::fs::rename(&moved, product.path()).unwrap();
}

/// An address the server cannot bind is the machine's problem, not bad input: exit 3.
#[test]
fn a_listen_address_in_use_is_infrastructure() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = p
        .lowtouch(&["serve", "--listen", &addr])
        .output()
        .expect_code(3);
    assert!(
        out.stderr.contains(&format!("cannot listen on {addr}")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_change_held_by_a_pause_is_listed_and_runs_the_moment_it_is_resumed() {
    let (product, p) = watched_project("");
    let (child, port, log) = start(&p);
    assert!(wait_until(Duration::from_secs(30), || log
        .lock()
        .unwrap()
        .contains("now watching")));
    p.lowtouch(&["pause", "local"]).output().expect_code(0);
    commit(product.path(), "src/engine.txt", "v2\n");
    assert_eq!(signed_push(port, "1"), 202);
    let held = || {
        let out = p.lowtouch(&["status"]).output();
        out.stdout.contains("held: environment local is paused")
    };
    assert!(
        wait_until(Duration::from_secs(30), held),
        "status never listed the held run:\n{}",
        log.lock().unwrap()
    );
    assert_eq!(runs(&p), 0, "it ran on a paused environment");
    // What came in, and what became of it; a refused delivery too.
    assert_eq!(
        deliver(port, "push", "2", "{}", Some("sha256=00".into())),
        401
    );
    let out = p
        .lowtouch(&["status", "--deliveries"])
        .output()
        .expect_code(0);
    assert!(
        out.stdout
            .contains(" 1 push o/r refs/heads/main: 202 accepted\n")
            && out
                .stdout
                .contains(" 2 push: 401 X-Hub-Signature-256 does not match the body\n"),
        "{}",
        out.stdout
    );
    // The poll interval is an hour: only the resume can start it now.
    p.lowtouch(&["resume", "local"]).output().expect_code(0);
    assert!(
        wait_until(Duration::from_secs(30), || runs(&p) == 1),
        "the held run did not start on resume:\n{}",
        log.lock().unwrap()
    );
    let status = p.lowtouch(&["status"]).output().expect_code(0);
    assert!(!status.stdout.contains("held:"), "{}", status.stdout);
    stop(child);
    let out = p
        .lowtouch(&["status", "--deliveries"])
        .output()
        .expect_code(2);
    assert!(out.stderr.contains("no server runs here"), "{}", out.stderr);
    // The server's own lines say when: `2026-12-04T20:32:05.123Z poll (start)`.
    let log = log.lock().unwrap().clone();
    let line = log.lines().find(|l| l.contains("poll (start)")).unwrap();
    let (time, rest) = line.split_once(' ').unwrap();
    assert_eq!(rest, "poll (start)", "{log}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z'),
        "{line}"
    );
}
