//! The bundled demo: `lowtouch run` against the demo exchange, as a new user runs it.

use crate::harness::{Project, history};
use crate::junit_schema::validate;

#[test]
fn the_demo_runs_green_and_a_second_run_finds_the_first() {
    let p = Project::demo();
    let first = p.lowtouch(&["run"]).output().expect_code(0);
    assert!(
        first.stdout.contains("6 passed, 0 failed"),
        "{}",
        first.stdout
    );
    for name in [
        "smoke",
        "failover",
        "failover_events",
        "failover_book",
        "latency",
        "backup_restart",
    ] {
        assert!(
            first.stdout.contains(name),
            "summary lacks {name}:\n{}",
            first.stdout
        );
    }
    // The run id is printed at the start (progress, stderr) and at the end (summary).
    let id = history(&p)[0]["id"].as_str().unwrap().to_string();
    assert!(first.stderr.contains(&id) && first.stdout.contains(&id));
    p.assert_nothing_left_running();

    // The talk's failover really happened: the backup took over.
    let backup_log = p.read(".lowtouch/envs/local/MatchingEngineBackup.log");
    assert!(backup_log.contains("STATE: ACTIVE"), "{backup_log}");
    assert!(backup_log.contains("PRIMARY LOST"), "{backup_log}");

    // Each step is stored with the system around it: the kill -9 of the failover
    // scenario with the crash it caused (the step waits for it: a post-condition), and
    // the metrics of the primary's host just before and after.
    let steps: Vec<serde_json::Value> = crate::harness::last_steps(&p);
    let kill = steps
        .iter()
        .find(|s| s["scenario"] == "failover" && s["command"] == "kill")
        .expect("the failover's kill step");
    // It ran under load: `start_load` declares the phase.
    assert_eq!(kill["phase"], "load", "{kill:#}");
    let events = kill["around"]["events"].as_array().unwrap();
    let saw = |source: &str, text: &str| {
        events
            .iter()
            .any(|e| e["source"] == source && e["text"] == text)
    };
    assert!(saw("MatchingEnginePrimary", "CRASHED"), "{kill:#}");
    for when in ["before", "after"] {
        let samples = kill["around"][when].as_array().unwrap();
        assert!(
            samples
                .iter()
                .any(|s| s["source"] == "system" && s["name"] == "memory_used_bytes"),
            "{when}: {kill:#}"
        );
        // Only the step's component and its host: not the backup's metrics.
        assert!(
            samples
                .iter()
                .all(|s| s["source"] == "system" || s["source"] == "MatchingEnginePrimary"),
            "{when}: {kill:#}"
        );
    }
    let text = p
        .lowtouch(&["history", "--run", "last", "--steps"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(
        text.contains("failover #2 [load] kill -9 MatchingEnginePrimary: ok")
            && text.contains("event  MatchingEnginePrimary process CRASHED"),
        "{text}"
    );

    // The run kept the engines' log tails and its rendered configs.
    let kept = p
        .lowtouch(&["report", "--run", "last", "--artifacts"])
        .output()
        .expect_code(0)
        .stdout;
    for name in [
        "logs/local/MatchingEngineBackup.log",
        "config/local/primary.conf",
    ] {
        assert!(kept.contains(name), "{kept}");
    }
    let tail = p
        .lowtouch(&[
            "report",
            "--artifact",
            "logs/local/MatchingEngineBackup.log",
        ])
        .output()
        .expect_code(0)
        .stdout;
    assert!(tail.contains("STATE: ACTIVE"), "{tail}");

    let junit = p.read("reports/junit.xml");
    validate(&junit).unwrap_or_else(|e| panic!("invalid JUnit: {e:?}\n{junit}"));
    assert!(junit.contains("lowtouch.artifacts"), "{junit}");
    assert!(
        junit.contains(r#"<testsuite name="demo.local" tests="6""#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<testcase name="failover" classname="demo.local""#),
        "{junit}"
    );
    assert!(junit.contains(&format!(
        r#"<property name="lowtouch.run_id" value="{id}"/>"#
    )));

    p.lowtouch(&["run"]).output().expect_code(0);
    let runs = history(&p);
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[1]["id"].as_str().unwrap(),
        id,
        "the second run sees the first"
    );
    assert!(
        runs.iter()
            .all(|r| r["status"] == "passed" && r["passed"] == 6)
    );
    p.assert_nothing_left_running();
}

#[test]
fn a_failover_that_does_not_happen_fails_the_run_with_the_step_output() {
    let p = Project::demo();
    // Both engines die: nobody can take over, the smoke check fails, the talk's
    // scenario takes its FAIL branch and exits 1. (Without the demo's pre-condition,
    // which would refuse to kill the primary with no backup standing by.)
    let env = p.read("environments/local.yaml").replace(
        "  - before: kill -9 MatchingEnginePrimary\n    expect: MatchingEngineBackup STANDBY\n",
        "",
    );
    assert!(!env.contains("before: kill"));
    p.write("environments/local.yaml", &env);
    p.write(
        "pipelines/broken.yaml",
        "environment: local\n\
         before_each: [start MatchingEnginePrimary, start MatchingEngineBackup]\n\
         after_each: [stop_load, stop MatchingEngineBackup, stop MatchingEnginePrimary]\n\
         scenarios: [broken/no_backup.scn]\n",
    );
    p.write(
        "pipelines/broken/no_backup.scn",
        "kill -9 MatchingEngineBackup\nkill -9 MatchingEnginePrimary\n\
         set smoke_status timeout 3s exec_smoke\n\
         if 'PASS' == #{smoke_status} then goto pass\necho FAIL\nexit 1\npass:\necho PASS\n",
    );
    let out = p.lowtouch(&["run", "broken"]).output().expect_code(1);
    assert!(out.stdout.contains("FAIL    no_backup"), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("no_backup.scn:6: the scenario exited with code 1"),
        "{}",
        out.stderr
    );
    let junit = p.read("reports/junit.xml");
    validate(&junit).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    assert!(
        junit.contains("no_backup.scn:6: the scenario exited with code 1"),
        "{junit}"
    );
    // The failing step and what it printed are in the report.
    assert!(junit.contains("echo FAIL"), "{junit}");
    p.assert_nothing_left_running();
}

#[test]
fn fault_knobs_reach_the_engines() {
    let p = Project::demo();
    p.write("pipelines/knob.yaml", "environment: local\nbefore_each: [start MatchingEnginePrimary]\nafter_each: [stop MatchingEnginePrimary]\nscenarios: [demo/smoke.scn]\n");
    p.lowtouch(&["run", "knob", "--set", "latency_us=3000"])
        .output()
        .expect_code(0);
    let log = p.read(".lowtouch/envs/local/MatchingEnginePrimary.log");
    let latencies: Vec<u64> = log
        .lines()
        .filter_map(|l| l.split("INTERNAL LATENCY: ").nth(1)?.trim().parse().ok())
        .collect();
    assert!(!latencies.is_empty(), "{log}");
    assert!(latencies.iter().all(|&us| us >= 3000), "{latencies:?}");
    // A --set for a variable the environment does not have is bad input.
    let out = p
        .lowtouch(&["run", "knob", "--set", "latency=1"])
        .output()
        .expect_code(2);
    assert!(
        out.stderr.contains("did you mean `latency_us`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn one_scenario_of_the_demo_runs_against_the_environment_s_steady_state() {
    let p = Project::demo();
    // The talk's scenario alone: no pipeline, no hooks; the environment's steady state
    // starts both engines and waits for the backup to stand by.
    let out = p
        .lowtouch(&["run", "--scenario", "pipelines/demo/failover.scn"])
        .output()
        .expect_code(0);
    assert!(out.stdout.contains("PASS    failover"), "{}", out.stdout);
    // The kill's post-condition is a time of its own, not part of the step's.
    let steps = crate::harness::last_steps(&p);
    let kill = steps
        .iter()
        .find(|s| s["command"] == "kill")
        .expect("the kill step");
    assert_eq!(
        kill["held"][0]["condition"], "MatchingEnginePrimary CRASHED",
        "{kill}"
    );
    assert!(kill["held"][0]["after_us"].as_i64().unwrap() >= 0, "{kill}");
    p.assert_nothing_left_running();
    // Some scenarios of a pipeline, with its hooks.
    let out = p
        .lowtouch(&[
            "run",
            "demo",
            "--filter",
            "smoke",
            "--filter",
            "failover_e*",
        ])
        .output()
        .expect_code(0);
    assert!(out.stdout.contains("2 passed, 0 failed"), "{}", out.stdout);
    assert!(
        out.stdout.contains("failover_events") && !out.stdout.contains("latency"),
        "{}",
        out.stdout
    );
    // A scenario file where a pipeline goes: what to type instead.
    let out = p
        .lowtouch(&["run", "pipelines/demo/failover.scn"])
        .output()
        .expect_code(2);
    assert!(
        out.stderr
            .contains("run it with `lowtouch run --scenario pipelines/demo/failover.scn"),
        "{}",
        out.stderr
    );
    p.assert_nothing_left_running();
}
