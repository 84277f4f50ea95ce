//! The judge from the outside: a run judged against comparable history when it ends, the
//! verdict in the summary and in JUnit, `lowtouch judge` recomputing it from the store,
//! `lowtouch baseline` saying which runs it used and why not the others.

use crate::harness::Project;
use crate::junit_schema::validate;

/// The demo's environment with a pipeline that starts nothing: one step whose time a
/// variable sets. Without the environment's steady state (it would start both engines
/// before every scenario: the runs are about one step's time alone).
fn paced() -> Project {
    let p = Project::demo();
    let env = p
        .read("environments/local.yaml")
        .replace("  latency_us: 0\n", "  latency_us: 0\n  pause_ms: 20\n")
        .replace(
            "steady_state:\n  components: [MatchingEnginePrimary, MatchingEngineBackup]\n  \
             conditions: [\"MatchingEngineBackup STANDBY\"]\n",
            "",
        );
    assert!(
        !env.contains("steady_state:"),
        "the demo's steady state moved"
    );
    p.write("environments/local.yaml", &env);
    p.write(
        "pipelines/paced.yaml",
        "environment: local\nscenarios: [paced/step.scn]\n",
    );
    p.write(
        "pipelines/paced/step.scn",
        "sleep #{pause_ms}ms\necho done\n",
    );
    p
}

#[test]
fn a_step_that_became_slow_is_judged_against_its_history_and_explained() {
    let p = paced();
    // Five runs for the baseline, three more of the same candidate pooled with the next.
    for i in 0..9 {
        let done = p.lowtouch(&["run", "paced"]).output().expect_code(0);
        assert!(done.stdout.contains("judge: "), "run {i}: {}", done.stdout);
        if i == 0 {
            assert!(
                done.stdout
                    .contains("judge: NOT ENOUGH HISTORY: 0 of the 5 comparable runs needed"),
                "{}",
                done.stdout
            );
        }
    }
    // The knob turned: another candidate, judged against the nine.
    let slow = p
        .lowtouch(&["run", "paced", "--set", "pause_ms=400"])
        .output()
        .expect_code(0);
    assert!(slow.stdout.contains("judge: DIFFERENT"), "{}", slow.stdout);
    assert!(slow.stdout.contains("regressed"), "{}", slow.stdout);
    assert!(
        slow.stdout.contains("steps L1 sleep duration"),
        "{}",
        slow.stdout
    );
    assert!(slow.stdout.contains("noise units"), "{}", slow.stdout);

    // JUnit: the verdict as properties, the regression as a testcase of its own suite
    // (a warning: no critical metric regressed, so the run passed), valid for CI.
    let junit = p.read("reports/junit.xml");
    validate(&junit).unwrap_or_else(|e| panic!("{e:?}\n{junit}"));
    assert!(
        junit.contains(r#"<testsuite name="lowtouch.judge""#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="lowtouch.judge.outcome" value="DIFFERENT"/>"#),
        "{junit}"
    );
    assert!(junit.contains("lowtouch judge: warning:"), "{junit}");

    // The HTML report: the verdict, regressions first and highlighted, with the band.
    p.lowtouch(&["report", "--html", "reports/run.html"])
        .output()
        .expect_code(0);
    let html = p.read("reports/run.html");
    assert!(html.contains("<h2>Judged against history</h2>"), "{html}");
    assert!(
        html.contains("<tr class=\"regressed\"><td>regressed</td>"),
        "{html}"
    );
    assert!(html.contains("<svg width=\"160\""), "{html}");

    // Recomputed from the stored inputs: the same; a regression exits 1.
    let again = p.lowtouch(&["judge"]).output().expect_code(1);
    assert!(
        again
            .stdout
            .contains("recomputed from the stored inputs: the same verdict"),
        "{}",
        again.stdout
    );
    let json = p.lowtouch(&["judge", "--json"]).output().expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect(&json.stdout);
    assert_eq!(v["verdict"]["outcome"], "different");
    assert_eq!(v["matches_stored"], true);
    let worst = &v["verdict"]["findings"][0];
    assert_eq!(worst["direction"], "regressed", "{worst}");
    assert!(worst["value"].as_f64().unwrap() > 350_000.0, "{worst}");

    // The baseline: the nine runs (none pooled: a turned knob is another candidate).
    let base = p
        .lowtouch(&["baseline", "--run", "last", "--json"])
        .output()
        .expect_code(0);
    let choice: serde_json::Value = serde_json::from_str(&base.stdout).expect(&base.stdout);
    assert_eq!(choice["chosen"].as_array().unwrap().len(), 9, "{choice}");
    assert_eq!(choice["pooled"].as_array().unwrap().len(), 0, "{choice}");

    // The history's own runs pooled: the newest clean run is judged with its three
    // predecessors of the same candidate, and says so.
    let text = p
        .lowtouch(&["baseline", "--run", &history_id(&p, 1)])
        .output()
        .expect_code(0);
    assert!(
        text.stdout
            .contains("pooled with 3 earlier runs of the same candidate"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("the same candidate, judged together with it"),
        "{}",
        text.stdout
    );
    // A run judged regressed is never a baseline run.
    let clean = p.lowtouch(&["run", "paced"]).output().expect_code(0);
    assert!(clean.stdout.contains("judge: "), "{}", clean.stdout);
    let base = p
        .lowtouch(&["baseline", "--run", "last"])
        .output()
        .expect_code(0);
    assert!(base.stdout.contains("judged regressed"), "{}", base.stdout);
}

/// The id of the run `back` places before the newest.
fn history_id(p: &Project, back: usize) -> String {
    crate::harness::history(p)[back]["id"]
        .as_str()
        .expect("run id")
        .to_string()
}

#[test]
fn a_metric_declared_wrongly_is_bad_input_with_its_place() {
    let p = paced();
    let env = p.read("environments/local.yaml");
    let declared = "  internal_latency_us: { unit: us, better: lower }\n";
    assert!(env.contains(declared), "the demo declares its latency");
    p.write(
        "environments/local.yaml",
        &env.replace(
            declared,
            "  internal_latency_us: { unit: furlongs, better: lower }\n",
        ),
    );
    let done = p.lowtouch(&["run", "paced"]).output().expect_code(2);
    assert!(
        done.stderr.contains("environments/local.yaml:"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("unknown unit `furlongs`"),
        "{}",
        done.stderr
    );
    // Read right, it checks.
    p.write(
        "environments/local.yaml",
        &env.replace(
            declared,
            "  internal_latency_us: { unit: us, better: lower, critical: true }\n  rss_bytes: { unit: bytes, max: 2GiB }\n",
        ),
    );
    p.lowtouch(&["check"]).output().expect_code(0);
}

#[test]
fn a_pipeline_that_fails_on_any_regression_fails_the_run_and_its_junit() {
    let p = paced();
    p.write(
        "pipelines/paced.yaml",
        "environment: local\nscenarios: [paced/step.scn]\njudge: { fail_on: any, min_baseline: 3 }\n",
    );
    for _ in 0..7 {
        p.lowtouch(&["run", "paced"]).output().expect_code(0);
    }
    let slow = p
        .lowtouch(&["run", "paced", "--set", "pause_ms=400"])
        .output()
        .expect_code(1);
    assert!(slow.stdout.contains("judge: DIFFERENT"), "{}", slow.stdout);
    assert!(slow.stdout.contains("failed"), "{}", slow.stdout);
    let junit = p.read("reports/junit.xml");
    validate(&junit).unwrap_or_else(|e| panic!("{e:?}\n{junit}"));
    assert!(junit.contains(r#"type="regression""#), "{junit}");
    // A policy that says nothing sensible is bad input, with its place.
    p.write(
        "pipelines/paced.yaml",
        "environment: local\nscenarios: [paced/step.scn]\njudge: { fail_on: sometimes }\n",
    );
    let bad = p.lowtouch(&["run", "paced"]).output().expect_code(2);
    assert!(
        bad.stderr.contains("pipelines/paced.yaml:3:"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr
            .contains("`judge.fail_on` is `critical`, `any` or `none`"),
        "{}",
        bad.stderr
    );
}
