//! History per commit: releases (named, or tagged in the project's git), `lowtouch diff`
//! and the comparison with the previous release inside every JUnit file.

use crate::harness::Project;
use crate::junit_schema::validate;

/// The demo's environment, with a pipeline that needs no engines: one scenario that
/// always passes, one that fails once the latency knob is turned.
fn knob_project() -> Project {
    let p = Project::demo();
    p.write(
        "pipelines/knob.yaml",
        "environment: local\nscenarios: [knob/steady.scn, knob/knob.scn]\n\
         masks:\n  - { pattern: 'order-\\d+', replace: 'order-<n>' }\n",
    );
    p.write(
        "pipelines/knob/steady.scn",
        "echo steady at 2026-11-25T10:00:00Z in 12ms, order-#{run_id}\n",
    );
    p.write(
        "pipelines/knob/knob.scn",
        "echo latency #{latency_us}\nassert #{latency_us} == 0 \"the latency knob is off\"\n",
    );
    p
}

#[test]
fn a_new_failure_against_the_previous_release_shows_in_diff_and_junit() {
    let p = knob_project();
    p.lowtouch(&["run", "knob"]).output().expect_code(0);
    // Before any release: everything is new, compared with nothing.
    let junit = p.read("reports/junit.xml");
    validate(&junit).unwrap_or_else(|e| panic!("{e:?}\n{junit}"));
    assert!(
        junit.contains(r#"<property name="lowtouch.compared_with" value="none"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="lowtouch.change.knob" value="new"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="lowtouch.count.new" value="2"/>"#),
        "{junit}"
    );

    let named = p.lowtouch(&["release", "v1.0.0"]).output().expect_code(0);
    assert!(
        named.stdout.contains("release v1.0.0: run "),
        "{}",
        named.stdout
    );
    // A name is given once.
    let again = p.lowtouch(&["release", "v1.0.0"]).output().expect_code(2);
    assert!(again.stderr.contains("names run"), "{}", again.stderr);

    // The knob turned: `knob` fails now; `steady` only differs in masked parts.
    p.lowtouch(&["run", "knob", "--set", "latency_us=5"])
        .output()
        .expect_code(1);
    // Each run records what it ran under: test data, load profile, host.
    let runs = crate::harness::history(&p);
    let conditions = &runs[0]["conditions"];
    assert_eq!(
        conditions["load"]["local"]["load_rate"], "200",
        "{conditions:#}"
    );
    assert_eq!(
        conditions["test_data"]["local"].as_str().map(str::len),
        Some(64),
        "{conditions:#}"
    );
    assert!(
        conditions["host"]["cores"].as_u64().unwrap() >= 1,
        "{conditions:#}"
    );
    // The conditions are queryable.
    let under = |cond: &[&str]| -> usize {
        let mut args = vec!["history", "--runs", "--json"];
        for c in cond {
            args.extend(["--condition", c]);
        }
        let out = p.lowtouch(&args).output().expect_code(0).stdout;
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .unwrap()
            .len()
    };
    let config = runs[0]["config_commits"]["local"].as_str().unwrap();
    assert_eq!(
        under(&[
            "load.local.load_rate=200",
            &format!("host.cores={}", conditions["host"]["cores"]),
        ]),
        runs.len()
    );
    // The knob is in the rendered config: the newest run has a config commit of its own.
    assert_eq!(under(&[&format!("config.local={}", &config[..10])]), 1);
    assert_eq!(under(&["load.local.load_rate=999"]), 0);
    let none = p
        .lowtouch(&[
            "history",
            "--runs",
            "--condition",
            "load.local.load_rate=999",
        ])
        .output()
        .expect_code(0);
    assert!(
        none.stderr
            .contains("the newest run's conditions are: config.local,"),
        "{}",
        none.stderr
    );
    let bad = p
        .lowtouch(&["history", "--condition", "load_rate"])
        .output()
        .expect_code(2);
    assert!(bad.stderr.contains("expected KEY=VALUE"), "{}", bad.stderr);
    // And the hosts of the system under test, as their daemons told the router.
    let matching = &conditions["hosts"]["local/matching"];
    assert!(
        matching["cores"].as_u64().unwrap() >= 1
            && matching["memory_bytes"].as_u64().unwrap() > 0
            && !matching["kernel"].as_str().unwrap().is_empty(),
        "{conditions:#}"
    );
    let diff = p.lowtouch(&["diff", "--previous"]).output().expect_code(1);
    // The same, naming the run.
    let named = p
        .lowtouch(&["diff", "--previous", "last"])
        .output()
        .expect_code(1);
    assert_eq!(named.stdout, diff.stdout);
    assert!(
        diff.stdout.contains("against release v1.0.0"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("1 new-failure, 1 unchanged"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout
            .contains("new-failure    knob.local knob  passed -> failed"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("-latency 0") && diff.stdout.contains("+latency 5"),
        "{}",
        diff.stdout
    );
    assert!(
        !diff.stdout.contains("steady at"),
        "masked output differed:\n{}",
        diff.stdout
    );

    // The same as data, and by names: a release and `last`.
    let json = p
        .lowtouch(&["diff", "v1.0.0", "last", "--json"])
        .output()
        .expect_code(1)
        .stdout;
    let c: serde_json::Value = serde_json::from_str(&json).unwrap();
    let knob = c["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "knob")
        .unwrap();
    assert_eq!(knob["change"], "new-failure");
    assert_eq!(knob["before"], "passed");

    // The JUnit file of the second run carries the comparison, valid against the schema.
    let junit = p.read("reports/junit.xml");
    validate(&junit).unwrap_or_else(|e| panic!("{e:?}\n{junit}"));
    assert!(
        junit.contains(r#"name="lowtouch.compared_with" value="v1.0.0 ("#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="lowtouch.change.knob" value="new-failure"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="lowtouch.change.steady" value="unchanged"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="lowtouch.count.new-failure" value="1"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains("lowtouch: new-failure against v1.0.0"),
        "{junit}"
    );

    // History by pipeline and environment, releases named.
    let listed = p
        .lowtouch(&["history", "--runs", "--pipeline", "knob", "--env", "local"])
        .output()
        .expect_code(0)
        .stdout;
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed.lines().nth(2).unwrap().ends_with("v1.0.0"),
        "{listed}"
    );
    let none = p
        .lowtouch(&["history", "--pipeline", "demo"])
        .output()
        .expect_code(0);
    assert!(
        none.stdout.is_empty() && none.stderr.contains("no runs"),
        "{}",
        none.stderr
    );

    // The HTML report: one file, nothing fetched, the change highlighted.
    p.lowtouch(&[
        "report",
        "--html",
        "reports/run.html",
        "--junit",
        "reports/again.xml",
    ])
    .output()
    .expect_code(0);
    let html = p.read("reports/run.html");
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "it must open without a network"
    );
    assert!(html.contains("<tr class=\"new-failure\">"), "{html}");
    assert!(
        html.contains("Compared with the previous release <b>v1.0.0 ("),
        "{html}"
    );
    assert!(html.contains("the latency knob is off"), "{html}");
    assert_eq!(
        p.read("reports/again.xml"),
        junit,
        "report --junit writes what the run wrote"
    );
    let nothing = p.lowtouch(&["report"]).output().expect_code(2);
    assert!(
        nothing.stderr.contains("--junit PATH, --html PATH"),
        "{}",
        nothing.stderr
    );

    // A name that names nothing: bad input, with what it could have meant.
    let wrong = p
        .lowtouch(&["diff", "v1.0.1", "last"])
        .output()
        .expect_code(2);
    assert!(
        wrong.stderr.contains("`v1.0.1` names no stored run"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("did you mean v1.0.0"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn a_tagged_commit_is_a_release_and_the_newest_one_before_is_the_previous() {
    let p = knob_project();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(p.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    p.write(".gitignore", ".lowtouch/\nreports/\n");
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "one"]);
    git(&["tag", "v0.1.0"]);
    p.lowtouch(&["run", "knob"]).output().expect_code(0);
    // A second run of the tagged commit: its previous release is the first run.
    p.lowtouch(&["run", "knob"]).output().expect_code(0);
    let junit = p.read("reports/junit.xml");
    assert!(
        junit.contains(r#"name="lowtouch.compared_with" value="v0.1.0 ("#),
        "{junit}"
    );
    // A tag names its commit's newest run too.
    let out = p
        .lowtouch(&["diff", "v0.1.0", "last"])
        .output()
        .expect_code(0);
    assert!(out.stdout.contains("2 unchanged"), "{}", out.stdout);
    // A tag that does not match the release pattern is no release.
    git(&["tag", "nightly"]);
    p.write("pipelines/knob/extra.scn", "echo more\n");
    p.write(
        "pipelines/knob.yaml",
        "environment: local\nscenarios: [knob/steady.scn, knob/knob.scn, knob/extra.scn]\n",
    );
    git(&["add", "."]);
    git(&["commit", "-qm", "two"]);
    p.lowtouch(&["run", "knob"]).output().expect_code(0);
    let junit = p.read("reports/junit.xml");
    assert!(
        junit.contains(r#"name="lowtouch.compared_with" value="v0.1.0 ("#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="lowtouch.change.extra" value="new"/>"#),
        "{junit}"
    );
}

#[test]
fn gc_keeps_every_release_and_the_newest_runs_and_compacts() {
    let p = knob_project();
    for _ in 0..4 {
        p.lowtouch(&["run", "knob"]).output().expect_code(0);
    }
    let all = crate::harness::history(&p);
    let oldest = all[3]["id"].as_str().unwrap().to_string();
    let pruned_id = all[2]["id"].as_str().unwrap().to_string();
    p.lowtouch(&["release", "v1", "--run", &oldest])
        .output()
        .expect_code(0);
    let out = p.lowtouch(&["gc", "--keep", "2"]).output().expect_code(0);
    // Two scenarios, each after the demo environment's steady state (a hook record).
    assert!(
        out.stdout.contains("pruned 1 run, 4 scenario records"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("compacted .lowtouch/db:"),
        "{}",
        out.stdout
    );
    let kept: Vec<String> = crate::harness::history(&p)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(kept.contains(&oldest), "the release stays");
    assert!(!kept.contains(&pruned_id));
    let gone = p
        .lowtouch(&["history", "--run", &pruned_id, "--steps"])
        .output()
        .expect_code(2);
    assert!(gone.stderr.contains("no run"), "{}", gone.stderr);
    // What stays is whole: the newest run compares with the release, step by step.
    let diff = p.lowtouch(&["diff", "--previous"]).output().expect_code(0);
    assert!(
        diff.stdout.contains("against release v1"),
        "{}",
        diff.stdout
    );
    assert!(diff.stdout.contains("2 unchanged"), "{}", diff.stdout);
    // And the store takes new runs after the swap.
    p.lowtouch(&["run", "knob"]).output().expect_code(0);
    assert_eq!(crate::harness::history(&p).len(), 4);
}

#[test]
fn a_retried_scenario_that_passes_is_flaky_and_says_so_in_junit() {
    let p = knob_project();
    let env = p.read("environments/local.yaml").replace(
        "\naliases:\n",
        "\naliases:\n  count:\n    shell: 'f=\"$LOWTOUCH_PROJECT_DIR/count-$1\"; n=$(($(cat \"$f\" 2>/dev/null || echo 0) + 1)); echo $n > \"$f\"; echo $n'\n",
    );
    p.write("environments/local.yaml", &env);
    p.write(
        "pipelines/retry.yaml",
        "environment: local\nscenarios:\n  - { path: retry/lucky.scn, retries: 2 }\n  - { path: retry/doomed.scn, retries: 1 }\n",
    );
    p.write(
        "pipelines/retry/lucky.scn",
        "set n count lucky\nassert #{n} == 2 \"second time lucky\"\n",
    );
    p.write(
        "pipelines/retry/doomed.scn",
        "set n count doomed\nassert #{n} == 0 \"never\"\n",
    );
    let out = p.lowtouch(&["run", "retry"]).output().expect_code(1);
    assert!(
        out.stderr
            .contains("retry: lucky failed on attempt 1: running it again"),
        "{}",
        out.stderr
    );
    // lucky: two attempts; doomed: two attempts (retries: 1), then no more.
    assert_eq!(p.read("count-lucky").trim(), "2");
    assert_eq!(p.read("count-doomed").trim(), "2");
    let run = &crate::harness::history(&p)[0];
    assert_eq!(run["passed"], 1, "{run:#}");
    assert_eq!(run["failed"], 1, "{run:#}");
    assert_eq!(run["flaky"], 1, "{run:#}");
    let junit = p.read("reports/junit.xml");
    assert!(junit.contains("<flakyFailure"), "{junit}");
    assert!(junit.contains("<rerunFailure"), "{junit}");
    assert_eq!(junit.matches("<testcase ").count(), 2, "{junit}");
    validate(&junit).unwrap_or_else(|e| panic!("{e:?}\n{junit}"));
    assert!(
        junit.contains(r#"<property name="lowtouch.count.new" value="2"/>"#),
        "{junit}"
    );
    // `history --flaky` names it: it passed only on a retry.
    let listed = p
        .lowtouch(&["history", "--flaky"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("lucky") && l.contains("retry.local")),
        "{listed}"
    );
    assert!(
        !listed.contains("doomed"),
        "failing every time is not flaky:\n{listed}"
    );
    // The failed attempts' detail is where Surefire's schema puts it.
    assert!(junit.contains("<stackTrace>"), "{junit}");
    // Retrying one scenario of a parallel group is not something lowtouch does.
    p.write(
        "pipelines/retry.yaml",
        "environment: local\nscenarios:\n  - parallel:\n      - { path: retry/lucky.scn, retries: 2 }\n",
    );
    let bad = p.lowtouch(&["check"]).output().expect_code(1);
    assert!(
        bad.stderr
            .contains("`retries` applies to a scenario on its own, not inside `parallel`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_secret_in_a_rendered_config_never_reaches_the_artifacts() {
    let p = Project::empty();
    p.write(
        "templates/app.conf.j2",
        "port = 1\ntoken = {{ secrets.token }}\n",
    );
    p.write(
        "environments/sec.yaml",
        "hosts:\n  localhost: { address: 127.0.0.1 }\n\
         secrets:\n  token: { from_env: KNOB_TOKEN }\n\
         templates:\n  - { src: app.conf.j2, dest: app.conf }\n",
    );
    p.write(
        "pipelines/sec.yaml",
        "environment: sec\nscenarios: [ok.scn]\n",
    );
    p.write("pipelines/ok.scn", "echo fine\n");
    p.lowtouch(&["run", "sec"])
        .env("KNOB_TOKEN", "s3cr3t-value-4711")
        .output()
        .expect_code(0);
    let config = p
        .lowtouch(&["report", "--artifact", "config/sec/app.conf"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(config.contains("token = <secret:token>"), "{config}");
    assert!(!config.contains("s3cr3t-value-4711"));
    // The runtime copy the run used had the real value.
    assert!(
        p.read(".lowtouch/envs/sec/app.conf")
            .contains("s3cr3t-value-4711")
    );
}

#[test]
fn every_step_records_the_phase_the_aliases_put_the_system_in() {
    let p = Project::empty();
    p.write(
        "environments/local.yaml",
        "variables: {}\naliases:\n  \
         ramp: { shell: 'true', phase: ramp_up }\n  \
         load_on: { shell: 'true', phase: load }\n  \
         broken_off: { shell: 'exit 3', phase: idle }\n  \
         load_off: { shell: 'true', phase: idle }\n",
    );
    p.write(
        "s.scn",
        "echo cold\nramp\nload_on\nset ignored broken_off\necho hot\nload_off\necho cold again\n",
    );
    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    let steps: Vec<serde_json::Value> = crate::harness::last_steps(&p);
    let phases: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| {
            (
                s["command"].as_str().unwrap(),
                s["phase"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    // A step runs in the phase the steps before it left; one that failed changed nothing.
    assert_eq!(
        phases,
        vec![
            ("echo", "idle"),
            ("ramp", "idle"),
            ("load_on", "ramp_up"),
            ("broken_off", "load"),
            ("echo", "load"),
            ("load_off", "load"),
            ("echo", "idle"),
        ]
    );
    let text = p
        .lowtouch(&["history", "--run", "last", "--steps"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(text.contains("s #5 [load] echo hot: ok"), "{text}");

    // The phase is the environment's across the run: a second pipeline on it starts in
    // the phase the first left.
    p.write("on.yaml", "environment: local\nscenarios: [on.scn]\n");
    p.write("on.scn", "load_on\n");
    p.write("after.yaml", "environment: local\nscenarios: [after.scn]\n");
    p.write("after.scn", "echo still loaded\n");
    p.lowtouch(&["run", "on.yaml", "after.yaml"])
        .output()
        .expect_code(0);
    let steps = crate::harness::last_steps(&p);
    let echo = steps.iter().find(|s| s["command"] == "echo").unwrap();
    assert_eq!(echo["phase"], "load", "{steps:#?}");

    // An environment that declares no phases records none.
    p.write("environments/local.yaml", "variables: {}\n");
    p.write("s.scn", "echo plain\n");
    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    let steps = p
        .lowtouch(&["history", "--run", "last", "--steps", "--json"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(!steps.contains("\"phase\""), "{steps}");

    // A phase is one word, and a bad one is pointed at.
    p.write(
        "environments/local.yaml",
        "variables: {}\naliases:\n  on: { shell: 'true', phase: under load }\n",
    );
    let bad = p.lowtouch(&["check"]).output().expect_code(1);
    assert!(
        bad.stderr.contains("`under load` cannot be a phase name")
            && bad.stderr.contains("environments/local.yaml:3:"),
        "{}",
        bad.stderr
    );
}
