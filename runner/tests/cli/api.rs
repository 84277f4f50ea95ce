//! The server's local API: while `lowtouch serve` holds the store, `status`, `pause`,
//! `lock`, `run`, `history` and `cancel` from other processes go through its socket and
//! behave as they do without a server.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Child;
use std::time::Duration;

use crate::harness::{Project, stop, wait_until};

/// Starts `lowtouch serve demo` and waits until its local API answers.
fn serve(p: &Project) -> Child {
    serve_pipelines(p, &["demo"])
}

/// Starts `lowtouch serve PIPELINES…` and waits until its local API answers.
fn serve_pipelines(p: &Project, pipelines: &[&str]) -> Child {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--poll-interval", "1h"];
    args.extend_from_slice(pipelines);
    let mut child = p.lowtouch(&args).spawn();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("listening on"), "{first}");
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains("local API on"), "{second}");
    // Keep reading, so the server never writes into a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    assert!(
        wait_until(Duration::from_secs(30), || p
            .lowtouch(&["status"])
            .output()
            .stdout
            .contains("server: idle")),
        "the server never became idle"
    );
    child
}

fn status_json(p: &Project) -> Vec<serde_json::Value> {
    let out = p.lowtouch(&["status", "--json"]).output().expect_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

/// The run that holds `local`, once one does.
fn running_on_local(p: &Project) -> String {
    let mut id = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let rows = status_json(p);
            match rows[0]["lease"]["run_id"].as_str() {
                Some(run) => {
                    id = run.to_string();
                    true
                }
                None => false,
            }
        }),
        "no run took `local`"
    );
    id
}

#[test]
fn commands_go_through_a_running_server() {
    let p = Project::demo();
    p.write(
        "pipelines/long.scn",
        "echo started\nsleep 60s\necho never\n",
    );
    p.write("pipelines/quick.scn", "echo quick\n");
    let server = serve(&p);
    let socket = p.path().join(".lowtouch/serve.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is for its owner only");

    // Control commands work on the server's store.
    p.lowtouch(&["pause", "local"]).output().expect_code(0);
    assert_eq!(status_json(&p)[0]["paused"], true);
    p.lowtouch(&["resume", "local"]).output().expect_code(0);
    let out = p
        .lowtouch(&["lock", "local", "--reason", "manual check", "--by", "ann"])
        .output()
        .expect_code(0);
    assert!(out.stdout.contains("local locked by ann"), "{}", out.stdout);
    let out = p
        .lowtouch(&["lock", "local", "--reason", "again"])
        .output()
        .expect_code(2);
    assert!(
        out.stderr.contains("already locked by ann"),
        "{}",
        out.stderr
    );
    p.lowtouch(&["unlock", "local"]).output().expect_code(0);
    // Bad input is reported as the command would report it, with its exit code.
    let out = p.lowtouch(&["pause", "lcoal"]).output().expect_code(2);
    assert!(
        out.stderr.contains("did you mean `local`?"),
        "{}",
        out.stderr
    );

    // A run through the server: its output and its exit code come back.
    let out = p.lowtouch(&["run"]).output().expect_code(0);
    assert!(out.stdout.contains("passed: 6 passed"), "{}", out.stdout);
    assert!(out.stderr.contains("PASS failover"), "{}", out.stderr);
    let out = p
        .lowtouch(&["history", "--runs", "--json"])
        .output()
        .expect_code(0);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(runs.len(), 1);

    // A long run, a second one queued behind it; status shows both; cancel stops the first.
    let long = p
        .lowtouch(&["run", "--scenario", "pipelines/long.scn"])
        .spawn();
    let run_id = running_on_local(&p);
    let queued = p
        .lowtouch(&["run", "--scenario", "pipelines/quick.scn"])
        .spawn();
    assert!(
        wait_until(Duration::from_secs(10), || p
            .lowtouch(&["status"])
            .output()
            .stdout
            .contains("queue: 1 waiting")),
        "{}",
        p.lowtouch(&["status"]).output().stdout
    );
    let out = p.lowtouch(&["cancel", &run_id]).output().expect_code(0);
    assert!(out.stdout.contains("cancelling run"), "{}", out.stdout);
    let long = long.wait_with_output().unwrap();
    assert_eq!(long.status.code(), Some(130));
    let queued = queued.wait_with_output().unwrap();
    assert_eq!(queued.status.code(), Some(0), "the queued run ran next");
    let out = p
        .lowtouch(&["history", "--runs", "--json"])
        .output()
        .expect_code(0);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let cancelled = runs.iter().find(|r| r["id"] == run_id.as_str()).unwrap();
    assert_eq!(cancelled["status"], "interrupted");
    assert!(
        cancelled["note"]
            .as_str()
            .unwrap_or("")
            .contains("cancelled"),
        "{cancelled}"
    );
    let out = p.lowtouch(&["cancel", &run_id]).output().expect_code(1);
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
    p.lowtouch(&["cancel", "no-such-run"])
        .output()
        .expect_code(2);

    // A client that goes away (killed) cancels its run.
    let mut client = p
        .lowtouch(&["run", "--scenario", "pipelines/long.scn"])
        .spawn();
    let run_id = running_on_local(&p);
    // SAFETY: signalling the child we spawned.
    unsafe {
        libc::kill(client.id() as i32, libc::SIGKILL);
    }
    client.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || status_json(&p)[0]["lease"]
            .is_null()),
        "the run of a client that went away goes on"
    );
    let out = p
        .lowtouch(&["history", "--runs", "--json"])
        .output()
        .expect_code(0);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let gone = runs.iter().find(|r| r["id"] == run_id.as_str()).unwrap();
    assert_eq!(gone["status"], "interrupted");

    // A second server on the same store is refused; the first goes on.
    let second = p
        .lowtouch(&["serve", "--listen", "127.0.0.1:0", "demo"])
        .output()
        .expect_code(3);
    assert!(
        second.stderr.contains("held") || second.stderr.contains("answers on"),
        "{}",
        second.stderr
    );
    assert!(p.lowtouch(&["status"]).output().stdout.contains("server:"));

    // Once the server stops, commands open the store themselves again.
    assert_eq!(stop(server), Some(130));
    assert!(!socket.exists(), "the socket outlived its server");
    let out = p.lowtouch(&["status"]).output().expect_code(0);
    assert!(
        out.stdout.contains("server: none running"),
        "{}",
        out.stdout
    );
    p.assert_nothing_left_running();
}

/// One server runs pipelines on different environments at the same time; cancelling one
/// run cancels that run only.
#[test]
fn runs_on_two_environments_overlap_and_a_cancel_stops_only_its_own() {
    let p = Project::empty();
    let env = "aliases:\n  mark:\n    shell: 'touch \"$1\"'\n  await:\n    shell: 'while [ ! -e \"$1\" ]; do sleep 0.05; done'\n";
    p.write("environments/a.yaml", env);
    p.write("environments/b.yaml", env);
    p.write("pipelines/a.scn", "mark started-a\nawait go-a\n");
    p.write("pipelines/b.scn", "mark started-b\nawait go-b\n");
    let server = serve_pipelines(&p, &[]);

    let a = p
        .lowtouch(&["run", "--scenario", "pipelines/a.scn", "--env", "a"])
        .spawn();
    let b = p
        .lowtouch(&["run", "--scenario", "pipelines/b.scn", "--env", "b"])
        .spawn();
    // Both started, and neither can end before the test lets it: they overlap.
    assert!(
        wait_until(Duration::from_secs(30), || p
            .path()
            .join("started-a")
            .exists()
            && p.path().join("started-b").exists()),
        "{}",
        p.lowtouch(&["status"]).output().stdout
    );
    let rows = status_json(&p);
    let lease = |env: &str| {
        rows.iter()
            .find(|r| r["environment"] == env)
            .and_then(|r| r["lease"]["run_id"].as_str())
            .map(str::to_string)
    };
    let (run_a, run_b) = (lease("a").expect("a runs"), lease("b").expect("b runs"));
    assert_ne!(run_a, run_b);

    let out = p.lowtouch(&["cancel", &run_a]).output().expect_code(0);
    assert!(out.stdout.contains("cancelling run"), "{}", out.stdout);
    let a = a.wait_with_output().unwrap();
    assert_eq!(a.status.code(), Some(130));
    // b goes on after a was cancelled, and passes once let go.
    assert!(!p.path().join("go-b").exists());
    std::fs::write(p.path().join("go-b"), "").unwrap();
    let b = b.wait_with_output().unwrap();
    assert_eq!(
        b.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let out = p
        .lowtouch(&["history", "--runs", "--json"])
        .output()
        .expect_code(0);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let status_of = |id: &str| {
        runs.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(status_of(&run_a).as_deref(), Some("interrupted"));
    assert_eq!(status_of(&run_b).as_deref(), Some("passed"));
    assert_eq!(stop(server), Some(130));
}
