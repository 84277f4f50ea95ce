//! `lowtouch daemon` against `lowtouch serve`'s router, as separate processes: the
//! daemon follows the demo engines' logs and processes during a run, and the run's
//! events — the talk's kill -9 and the backup taking over — are in its history.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use crate::harness::{Project, free_port, log_of, stop, wait_until};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn events(p: &Project) -> Vec<serde_json::Value> {
    let out = p
        .lowtouch(&["history", "--run", "last", "--events", "--json"])
        .output()
        .expect_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn has(events: &[serde_json::Value], source: &str, name: &str, text: &str) -> bool {
    events
        .iter()
        .any(|e| e["source"] == source && e["name"] == name && e["text"] == text)
}

#[test]
fn a_daemon_watches_a_run_and_its_events_are_stored() {
    let p = Project::demo();
    let mut serve = p
        .lowtouch(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--router",
            "127.0.0.1:0",
            "--poll-interval",
            "1h",
            "demo",
        ])
        .env("LOWTOUCH_DAEMON_SECRET", SECRET)
        .spawn();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let router = loop {
        let line = lines
            .next()
            .expect("serve said where its router is")
            .unwrap();
        if let Some(rest) = line.split("router on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let serve_log = log_of(&mut serve);

    // The script manager sends the engines' commands to the daemon of their host: while
    // it is not connected, the run starts nothing and says which daemon is missing.
    let without = p.lowtouch(&["run"]).output().expect_code(1);
    assert!(
        without
            .stderr
            .contains("daemon `matching` (host localhost) is not connected, so nothing was done"),
        "{}\n{}",
        without.stdout,
        without.stderr
    );

    let mut daemon = p
        .lowtouch(&[
            "daemon",
            "--server",
            &router,
            "--name",
            "matching",
            "--environment",
            "local",
        ])
        .env("LOWTOUCH_DAEMON_SECRET", SECRET)
        .spawn();
    let daemon_log = log_of(&mut daemon);
    assert!(
        wait_until(Duration::from_secs(20), || daemon_log
            .lock()
            .unwrap()
            .contains("configured")),
        "daemon:\n{}\nserve:\n{}",
        daemon_log.lock().unwrap(),
        serve_log.lock().unwrap()
    );
    assert!(
        serve_log
            .lock()
            .unwrap()
            .contains("router: daemon local/matching connected")
    );
    // `status` (through the server) lists it once it follows the logs.
    assert!(
        wait_until(Duration::from_secs(10), || p
            .lowtouch(&["status"])
            .output()
            .stdout
            .contains("daemon local/matching from 127.0.0.1:")
            && p.lowtouch(&["status"])
                .output()
                .stdout
                .contains("following its logs")),
        "{}",
        p.lowtouch(&["status"]).output().stdout
    );

    // The demo run, through the server: the daemon starts, kills and stops the engines
    // and reports what they did.
    let run = p.lowtouch(&["run", "-v"]).output().expect_code(0);
    assert!(
        run.stderr.contains("(daemon matching on localhost)"),
        "{}",
        run.stderr
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            let e = events(&p);
            has(&e, "MatchingEnginePrimary", "process", "CRASHED")
                && has(&e, "MatchingEngineBackup", "state", "ACTIVE")
                && has(&e, "MatchingEnginePrimary", "state", "READY")
        }),
        "{:#?}",
        events(&p)
    );
    // The kill -9 of the failover scenario: the backup took over, the primary crashed,
    // on one timeline, within a second of each other.
    let e = events(&p);
    let at = |source: &str, name: &str, text: &str| {
        e.iter()
            .filter(|x| x["source"] == source && x["name"] == name && x["text"] == text)
            .map(|x| x["at_us"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let crashed = at("MatchingEnginePrimary", "process", "CRASHED")[0];
    assert!(
        at("MatchingEngineBackup", "state", "ACTIVE")
            .iter()
            .any(|a| (a - crashed).abs() < 1_000_000),
        "{e:#?}"
    );
    let text = p
        .lowtouch(&["history", "--run", "last", "--events"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(text.contains("CRASHED"), "{text}");

    // A component crashes while no run uses the environment: the demo pipeline's
    // `on_event` starts its diagnostics scenario, by itself.
    let env_dir = p.path().join(".lowtouch/envs/local");
    let _ = std::fs::remove_file(env_dir.join("MatchingEnginePrimary.stopping"));
    let mut stray = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", stray.id())).unwrap();
    let start = lowtouch::monitor::procfs::parse_pid_stat(&stat)
        .unwrap()
        .start_ticks;
    std::fs::write(
        env_dir.join("MatchingEnginePrimary.pid"),
        format!("{} {start}\n", stray.id()),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = stray.kill();
    let _ = stray.wait();
    let diagnosed = || {
        let out = p.lowtouch(&["history", "--runs", "--json"]).output();
        serde_json::from_str::<Vec<serde_json::Value>>(&out.stdout)
            .unwrap_or_default()
            .first()
            .is_some_and(|r| r["passed"] == 1 && r["status"] == "passed")
    };
    assert!(
        wait_until(Duration::from_secs(20), diagnosed),
        "no diagnostics run:\n{}",
        serve_log.lock().unwrap()
    );
    assert!(
        serve_log
            .lock()
            .unwrap()
            .contains("event: local MatchingEnginePrimary CRASHED on demo"),
        "{}",
        serve_log.lock().unwrap()
    );

    // A daemon with the wrong secret gets nowhere, and it is said.
    let mut impostor = p
        .lowtouch(&[
            "daemon",
            "--server",
            &router,
            "--name",
            "monitoring",
            "--environment",
            "local",
        ])
        .env("LOWTOUCH_DAEMON_SECRET", "the-wrong-secret-of-32-bytes-len")
        .spawn();
    let impostor_log = log_of(&mut impostor);
    assert!(
        wait_until(Duration::from_secs(10), || serve_log
            .lock()
            .unwrap()
            .contains("does not hold this environment's secret")),
        "{}",
        serve_log.lock().unwrap()
    );
    assert!(
        wait_until(Duration::from_secs(5), || impostor_log
            .lock()
            .unwrap()
            .contains("does not hold environment `local`'s secret")),
        "the daemon must not trust a router that cannot prove the secret either:\n{}",
        impostor_log.lock().unwrap()
    );
    stop(impostor);
    stop(daemon);
    stop(serve);

    // Bad input to the daemon itself.
    let out = p
        .lowtouch(&["daemon", "--server", &router, "--name", "x"])
        .output()
        .expect_code(2);
    assert!(
        out.stderr.contains("LOWTOUCH_DAEMON_SECRET"),
        "{}",
        out.stderr
    );
    let out = p
        .lowtouch(&["daemon", "--server", &router, "--name", "x"])
        .env("LOWTOUCH_DAEMON_SECRET", "short")
        .output()
        .expect_code(2);
    assert!(out.stderr.contains("at least 16"), "{}", out.stderr);
}

#[test]
fn post_conditions_are_judged_by_what_the_daemons_saw() {
    let p = Project::demo();
    // A condition that cannot hold: after the kill, the backup never halts.
    let env = p.read("environments/local.yaml").replace(
        "\nconditions:\n",
        "\nconditions:\n  - after: kill -9 MatchingEnginePrimary\n    expect: MatchingEngineBackup HALTED timeout 500ms\n",
    );
    assert!(env.contains("HALTED"));
    p.write("environments/local.yaml", &env);
    p.write(
        "pipelines/post.yaml",
        "environment: local\n\
         before_each: [start MatchingEnginePrimary, start MatchingEngineBackup]\n\
         after_each: [stop_load, stop MatchingEngineBackup, stop MatchingEnginePrimary]\n\
         scenarios: [demo/failover_events.scn]\n",
    );
    let out = p.lowtouch(&["run", "post"]).output();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 1, "{text}");
    assert!(
        text.contains(
            "post-condition of `kill -9 MatchingEnginePrimary`: MatchingEngineBackup was ACTIVE at "
        ) && text.contains("; not HALTED within 500ms"),
        "{text}"
    );

    // A pre-condition that does not hold: the step does not run, and says why.
    let pre = env
        .replace(
            "expect: MatchingEngineBackup HALTED timeout 500ms",
            "expect: MatchingEngineBackup STANDBY",
        )
        .replace(
            "    expect: MatchingEngineBackup STANDBY\n",
            "    expect: MatchingEngineBackup ACTIVE timeout 300ms\n",
        );
    assert!(pre.contains("before: kill -9 MatchingEnginePrimary\n    expect: MatchingEngineBackup ACTIVE timeout 300ms"), "{pre}");
    p.write("environments/local.yaml", &pre);
    let out = p.lowtouch(&["run", "post"]).output();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 1, "{text}");
    assert!(
        text.contains("pre-condition of `kill -9 MatchingEnginePrimary` (`MatchingEngineBackup ACTIVE timeout 300ms`) does not hold, so the step did not run: MatchingEngineBackup was STANDBY at ")
            && text.contains("; not ACTIVE within 300ms"),
        "{text}"
    );
    // The primary was not killed: no crash in that run.
    let crashed = events(&p)
        .iter()
        .any(|e| e["source"] == "MatchingEnginePrimary" && e["text"] == "CRASHED");
    assert!(!crashed);

    // A condition that is neither before nor after a step is bad input.
    p.write(
        "environments/local.yaml",
        &env.replace(
            "  - after: kill -9",
            "  - before: stop_load\n    after: kill -9",
        ),
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    assert!(
        out.stderr
            .contains("a condition needs exactly one of `before` or `after`")
            || out
                .stdout
                .contains("a condition needs exactly one of `before` or `after`"),
        "{}{}",
        out.stdout,
        out.stderr
    );

    // A condition that names no component is bad input, with its place.
    let env = env.replace(
        "expect: MatchingEngineBackup HALTED timeout 500ms",
        "expect: MatchingEngineBakup ACTIVE timeout 5s",
    );
    p.write("environments/local.yaml", &env);
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("environments/local.yaml:"), "{text}");
    assert!(
        text.contains("`MatchingEngineBakup`, which is no component here"),
        "{text}"
    );
}

#[test]
fn a_crash_no_step_caused_fails_the_run_and_starts_the_pipelines_diagnostics() {
    let p = Project::empty();
    // `Flaky` dies by itself a moment after it starts; `Steady` is killed by a step.
    p.write(
        "environments/local.yaml",
        "hosts:\n  localhost: { address: 127.0.0.1 }\n\
         components:\n\
         \x20 Flaky:\n    start: [sh, -c, 'sleep 0.5; kill -9 $$']\n\
         \x20 Steady:\n    start: [sleep, '60']\n\
         daemons:\n  watcher:\n    host: localhost\n    collectors: [process]\n",
    );
    p.write(
        "pipelines/flaky.yaml",
        "environment: local\n\
         on_event:\n  - { match: 'process CRASHED', run: diag.scn }\n\
         scenarios: [main.scn]\n",
    );
    p.write(
        "pipelines/main.scn",
        "start Steady\nstart Flaky\nkill -9 Steady\nsleep 2s\n",
    );
    p.write(
        "pipelines/diag.scn",
        "echo diagnosing #{event.source} #{event.value} from #{event.daemon}\n",
    );
    // By default a crash no step caused fails the run, and says so.
    let out = p.lowtouch(&["run", "flaky", "-v"]).output().expect_code(1);
    assert!(
        out.stderr.contains("Flaky crashed at ")
            && out
                .stderr
                .contains("while no step acted on it; the run fails"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("[unexpected_crash]"), "{}", out.stdout);
    let junit = p.read("reports/junit.xml");
    assert!(junit.contains("while no step acted on it"), "{junit}");
    // `unexpected_crash: warn` only reports it.
    p.write(
        "pipelines/flaky.yaml",
        "environment: local\n\
         unexpected_crash: warn\n\
         on_event:\n  - { match: 'process CRASHED', run: diag.scn }\n\
         scenarios: [main.scn]\n",
    );
    let out = p.lowtouch(&["run", "flaky", "-v"]).output().expect_code(0);
    assert!(
        out.stderr
            .contains("`unexpected_crash: warn`: the run's result stands"),
        "{}",
        out.stderr
    );
    // What the diagnostics collected is in the summary and in JUnit, not only stored.
    assert!(
        out.stdout.contains("[on_event diag]")
            && out
                .stdout
                .contains("| diagnosing Flaky CRASHED from watcher"),
        "{}",
        out.stdout
    );
    let junit = p.read("reports/junit.xml");
    assert!(junit.contains("diagnosing Flaky CRASHED"), "{junit}");
    // Flaky's crash is diagnosed; Steady's, which the kill step caused, is not.
    assert!(
        out.stderr
            .contains("Flaky crashed during the run and no step did it"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Steady crashed"), "{}", out.stderr);
    let steps: Vec<serde_json::Value> = crate::harness::last_steps(&p);
    let diag: Vec<&serde_json::Value> = steps
        .iter()
        .filter(|s| s["scenario"] == "on_event diag")
        .collect();
    assert_eq!(diag.len(), 1, "{steps:#?}");
    assert_eq!(diag[0]["stdout"], "diagnosing Flaky CRASHED from watcher\n");
    p.assert_nothing_left_running();
}

/// `lowtouch serve` with its router on `router`; returns it and its stderr as it comes.
fn serve_on(
    p: &Project,
    router: &str,
    pipeline: &str,
) -> (
    std::process::Child,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    let mut serve = p
        .lowtouch(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--router",
            router,
            "--poll-interval",
            "1h",
            pipeline,
        ])
        .env("LOWTOUCH_DAEMON_SECRET", SECRET)
        .spawn();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("router on"))),
        "serve did not start its router"
    );
    std::thread::spawn(move || for _ in lines {});
    let log = log_of(&mut serve);
    (serve, log)
}

/// The demo's `matching` daemon dialling `router`, once `lowtouch status` lists it: the
/// daemon, its stderr, and a check that it is connected (again).
fn matching_daemon(
    p: &Project,
    router: &str,
) -> (
    std::process::Child,
    std::sync::Arc<std::sync::Mutex<String>>,
    impl Fn() -> bool,
) {
    let mut daemon = p
        .lowtouch(&["daemon", "--server", router, "--name", "matching"])
        .env("LOWTOUCH_DAEMON_SECRET", SECRET)
        .spawn();
    let log = log_of(&mut daemon);
    let dir = p.path().to_path_buf();
    let connected = move || {
        let out = std::process::Command::new(crate::harness::LOWTOUCH)
            .arg("-C")
            .arg(&dir)
            .arg("status")
            .output()
            .expect("lowtouch status");
        String::from_utf8_lossy(&out.stdout).contains("daemon local/matching from 127.0.0.1:")
    };
    assert!(
        wait_until(Duration::from_secs(20), &connected),
        "{}",
        log.lock().unwrap()
    );
    (daemon, log, connected)
}

#[test]
fn a_server_restarted_mid_run_stores_it_interrupted_and_loses_no_observation() {
    let p = Project::demo();
    p.write(
        "pipelines/long.yaml",
        "environment: local\nteardown: [stop MatchingEnginePrimary]\nscenarios: [long.scn]\n",
    );
    p.write(
        "pipelines/long.scn",
        "start MatchingEnginePrimary\nsleep 60s\n",
    );
    let router = format!("127.0.0.1:{}", free_port());
    let (serve, serve_log) = serve_on(&p, &router, "long");
    let (daemon, daemon_log, connected) = matching_daemon(&p, &router);

    let run = p.lowtouch(&["run", "long"]).spawn();
    let env_dir = p.path().join(".lowtouch/envs/local");
    assert!(
        wait_until(Duration::from_secs(20), || std::fs::read_to_string(
            env_dir.join("MatchingEnginePrimary.log")
        )
        .is_ok_and(|l| l.contains("STATE: READY"))),
        "the run did not start the engine:\n{}",
        serve_log.lock().unwrap()
    );
    // Lines the engine's log gets just before the server goes, and while it is away.
    let append = |lines: &str| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(env_dir.join("MatchingEnginePrimary.log"))
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
    };
    append("STATE: BEFORE1\nSTATE: BEFORE2\nSTATE: BEFORE3\n");
    stop(serve);
    let client = run.wait_with_output().unwrap();
    assert!(
        !client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    append("STATE: AWAY1\nSTATE: AWAY2\nSTATE: AWAY3\n");

    // A new server on the same address: the daemon comes back by itself.
    let (serve, serve_log) = serve_on(&p, &router, "long");
    assert!(
        wait_until(Duration::from_secs(20), connected),
        "the daemon did not reconnect:\n{}\n{}",
        daemon_log.lock().unwrap(),
        serve_log.lock().unwrap()
    );
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&p.lowtouch(&["history", "--runs", "--json"]).output().stdout)
            .unwrap();
    assert_eq!(runs[0]["status"], "interrupted", "{runs:#?}");
    // The interrupted run's teardown stopped the engine, through the daemon.
    p.assert_nothing_left_running();
    // Give the resent lines a moment to be stored, then read the store itself.
    std::thread::sleep(Duration::from_millis(1500));
    stop(serve);
    stop(daemon);
    let store = lowtouch::store::Store::open(&p.path().join(".lowtouch/db")).unwrap();
    let states: Vec<String> = store
        .observations("local", i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .filter(|o| o.source == "MatchingEnginePrimary" && o.name == "state")
        .filter_map(|o| o.text)
        .collect();
    for line in ["BEFORE1", "BEFORE2", "BEFORE3", "AWAY1", "AWAY2", "AWAY3"] {
        let n = states.iter().filter(|s| *s == line).count();
        assert_eq!(n, 1, "{line} stored {n} times: {states:?}");
    }
}

#[test]
fn a_daemon_killed_mid_command_fails_the_step_at_once() {
    let p = Project::demo();
    let env = p
        .read("environments/local.yaml")
        .replace(
            "    allow: [exec_smoke]\n",
            "    allow: [exec_smoke, slow]\n",
        )
        .replace(
            "\naliases:\n",
            "\naliases:\n  slow:\n    run: [sleep, '29.75']\n",
        );
    p.write("environments/local.yaml", &env);
    p.write(
        "pipelines/long.yaml",
        "environment: local\nscenarios: [slow.scn]\n",
    );
    p.write("pipelines/slow.scn", "slow\n");
    let router = format!("127.0.0.1:{}", free_port());
    let (serve, serve_log) = serve_on(&p, &router, "long");
    let (mut daemon, _daemon_log, _) = matching_daemon(&p, &router);
    let run = p.lowtouch(&["run", "long"]).spawn();
    // The alias runs on the daemon's host: find it there, then kill the daemon.
    let sleeper = || {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (cmdline == b"sleep\x0029.75\x00").then_some(pid)
        })
    };
    assert!(
        wait_until(Duration::from_secs(20), || sleeper().is_some()),
        "{}",
        serve_log.lock().unwrap()
    );
    let killed_at = std::time::Instant::now();
    // SAFETY: killing the daemon this test started.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGKILL);
    }
    let _ = daemon.wait();
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("daemon `local/matching` went away before it answered"),
        "{stderr}"
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(10),
        "the step waited for its timeout"
    );
    if let Some(pid) = sleeper() {
        // SAFETY: the orphan of the daemon this test killed.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
    }
    stop(serve);
}

#[test]
fn a_daemon_of_a_name_the_environment_does_not_declare_is_refused_with_the_names_it_does() {
    let p = Project::demo();
    // A secret too short is refused before the server says it listens.
    let short = p
        .lowtouch(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--router",
            "127.0.0.1:0",
        ])
        .env("LOWTOUCH_DAEMON_SECRET", "short")
        .output()
        .expect_code(2);
    assert!(!short.stdout.contains("listening"), "{}", short.stdout);
    assert!(short.stderr.contains("use at least 16"), "{}", short.stderr);

    let router = free_port();
    let (serve, _) = serve_on(&p, &format!("127.0.0.1:{router}"), "demo");
    let mut daemon = p
        .lowtouch(&[
            "daemon",
            "--server",
            &format!("127.0.0.1:{router}"),
            "--name",
            "matchin",
            "--environment",
            "local",
        ])
        .env("LOWTOUCH_DAEMON_SECRET", SECRET)
        .spawn();
    let said = log_of(&mut daemon);
    let refused = wait_until(Duration::from_secs(10), || {
        said.lock().unwrap().contains(
            "refused: no daemon named `matchin` in environment `local`; it declares: matching",
        )
    });
    stop(daemon);
    stop(serve);
    assert!(refused, "{}", said.lock().unwrap());
}
