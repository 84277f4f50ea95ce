//! `lowtouch check` and bad input: every finding with file:line:col, a caret and a hint.
//!
//! Golden files: `runner/tests/scenarios/err/NAME.scn` is checked against the demo's
//! `local` environment and its findings must equal `NAME.stderr` beside it; files in
//! `ok/` must check clean. `UPDATE_EXPECT=1 cargo test` rewrites the `.stderr` files.

use std::path::Path;

use crate::harness::Project;

fn golden_dir(kind: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(kind)
}

fn scenarios(kind: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(golden_dir(kind))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "scn"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_diagnostics() {
    let p = Project::demo();
    let mut failures = Vec::new();
    for file in scenarios("err") {
        let name = file.file_name().unwrap().to_str().unwrap();
        std::fs::copy(&file, p.path().join(name)).unwrap();
        let out = p.lowtouch(&["check", name]).output();
        assert_eq!(
            out.code, 1,
            "{name}: check should find problems\n{}",
            out.stderr
        );
        let expected_path = file.with_extension("stderr");
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&expected_path, &out.stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if out.stderr != expected {
            failures.push(format!(
                "{name}:\n--- expected\n{expected}--- got\n{}",
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn good_scenarios_check_clean() {
    let p = Project::demo();
    for file in scenarios("ok") {
        let name = file.file_name().unwrap().to_str().unwrap();
        std::fs::copy(&file, p.path().join(name)).unwrap();
        let out = p.lowtouch(&["check", name]).output();
        assert_eq!(out.code, 0, "{name}:\n{}", out.stderr);
    }
    // The whole demo checks clean too.
    let out = p.lowtouch(&["check"]).output().expect_code(0);
    assert!(
        out.stderr
            .contains("ok: checked 2 pipelines, 3 environments, 11 scenarios"),
        "{}",
        out.stderr
    );
}

#[test]
fn run_refuses_bad_input_before_anything_runs() {
    let p = Project::demo();
    p.write("bad.scn", "start_load\nexec_smok\ngoto nowhere\n");
    let out = p
        .lowtouch(&["run", "--scenario", "bad.scn"])
        .output()
        .expect_code(2);
    assert!(out.stderr.contains("bad.scn:3:6"), "{}", out.stderr);
    assert!(out.stderr.contains("bad.scn:2:1"), "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean `exec_smoke`?"),
        "{}",
        out.stderr
    );
    // Nothing ran: no load generator was started, no store was made.
    assert!(
        !p.path()
            .join(".lowtouch/envs/local/LoadGenerator.pid")
            .exists()
    );
    assert!(!p.path().join(".lowtouch/db").exists());
}

#[test]
fn yaml_errors_name_their_place() {
    let p = Project::demo();
    p.write(
        "pipelines/typo.yaml",
        "environment: local\nscenarios: [demo/smoke.scn]\nstep_timout: 5s\n",
    );
    let out = p
        .lowtouch(&["check", "pipelines/typo.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("unknown field `step_timout`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("pipelines/typo.yaml:3:1"),
        "{}",
        out.stderr
    );

    p.write(
        "pipelines/noenv.yaml",
        "environment: locl\nscenarios: [demo/smoke.scn]\n",
    );
    let out = p.lowtouch(&["run", "noenv"]).output().expect_code(2);
    assert!(
        out.stderr.contains("environment `locl` not found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `local`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("pipelines/noenv.yaml:1:14"),
        "{}",
        out.stderr
    );

    p.write(
        "environments/broken.yaml",
        "components:\n  X:\n    start: [\"#{nope}\"]\n",
    );
    let out = p
        .lowtouch(&["check", "environments/broken.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("variable `nope` is not defined"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("environments/broken.yaml:3:14"),
        "{}",
        out.stderr
    );

    let out = p.lowtouch(&["run", "nosuch"]).output().expect_code(2);
    assert!(
        out.stderr.contains("no pipeline named `nosuch`"),
        "{}",
        out.stderr
    );
}

#[test]
fn pipeline_repositories_are_checked() {
    let p = Project::demo();
    p.write(
        "pipelines/watched.yaml",
        "environment: local\nscenarios: [demo/smoke.scn]\nrepositories:\n  exchange:\n    role: product\n    url: ssh://git.example/exchange.git\n    follow: [main, 'v*']\n",
    );
    let out = p
        .lowtouch(&["check", "pipelines/watched.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("ssh remotes are not supported"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("pipelines/watched.yaml:6:"),
        "{}",
        out.stderr
    );
    p.write(
        "pipelines/watched.yaml",
        "environment: local\nscenarios: [demo/smoke.scn]\nrepositories:\n  exchange:\n    role: prodcut\n    url: ../exchange\n",
    );
    let out = p
        .lowtouch(&["check", "pipelines/watched.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("unknown variant `prodcut`"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_invalid_utf8_scenario_is_placed_at_its_first_bad_byte() {
    let p = Project::demo();
    std::fs::write(
        p.path().join("bad.scn"),
        b"echo ok\necho caf\xc3\xa9 \xff\n",
    )
    .unwrap();
    let out = p.lowtouch(&["check", "bad.scn"]).output().expect_code(1);
    assert!(out.stderr.contains("not valid UTF-8"), "{}", out.stderr);
    assert!(out.stderr.contains("bad.scn:2:11"), "{}", out.stderr);
    let out = p
        .lowtouch(&["run", "--scenario", "bad.scn"])
        .output()
        .expect_code(2);
    assert!(out.stderr.contains("bad.scn:2:11"), "{}", out.stderr);
    // Named by a pipeline, it is still not "not found".
    p.write(
        "pipelines/bad.yaml",
        "environment: local\nscenarios: [../bad.scn]\n",
    );
    let out = p
        .lowtouch(&["check", "pipelines/bad.yaml"])
        .output()
        .expect_code(1);
    assert!(out.stderr.contains("bad.scn:2:11"), "{}", out.stderr);
    assert!(!out.stderr.contains("not found"), "{}", out.stderr);
}

#[test]
fn an_unknown_pipeline_variable_is_placed_at_its_key() {
    let p = Project::demo();
    p.write(
        "pipelines/vars.yaml",
        "environment: local\nscenarios: [demo/smoke.scn]\nvariables:\n  load_rate: 10\n  laod_rate: 20\n",
    );
    let out = p
        .lowtouch(&["check", "pipelines/vars.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("pipelines/vars.yaml:5:3"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("variable `laod_rate` names no variable of environment `local`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `load_rate`?"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("--set"), "{}", out.stderr);
    // A `--set` of an unknown name is still a `--set` problem.
    let out = p
        .lowtouch(&["run", "demo", "--set", "laod_rate=3"])
        .output()
        .expect_code(2);
    assert!(out.stderr.contains("`--set laod_rate=…`"), "{}", out.stderr);
}

#[test]
fn a_duplicate_key_at_the_end_of_a_file_is_placed_where_it_is() {
    let p = Project::demo();
    p.write(
        "pipelines/dup.yaml",
        "environment: local\nscenarios: [demo/smoke.scn]\nenvironment: local\n",
    );
    let out = p
        .lowtouch(&["check", "pipelines/dup.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("duplicate field `environment`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("pipelines/dup.yaml:3:1"),
        "{}",
        out.stderr
    );
}

/// Inputs made to be slow or large: each is answered (they used to take minutes or
/// gigabytes). No time is asserted; the test simply finishes.
#[test]
fn absurd_inputs_are_answered() {
    let p = Project::demo();
    let mut vars = String::from("environment: local\nscenarios: [demo/smoke.scn]\nvariables:\n");
    for i in 0..20_000 {
        vars.push_str(&format!("  unknown_{i}: value{i}\n"));
    }
    p.write("pipelines/vars.yaml", &vars);
    let out = p
        .lowtouch(&["check", "pipelines/vars.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("pipelines/vars.yaml:20003:3"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(2000)..]
    );

    let entries: String = (0..5_000)
        .map(|i| format!("  - missing/s{i}.scn\n"))
        .collect();
    p.write(
        "pipelines/missing.yaml",
        &format!("environment: local\nscenarios:\n{entries}"),
    );
    let out = p
        .lowtouch(&["check", "pipelines/missing.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("pipelines/missing.yaml:5002:5"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(2000)..]
    );

    p.write(
        "deep.scn",
        &format!("{}echo x\n", "if a == a then ".repeat(60_000)),
    );
    let out = p.lowtouch(&["check", "deep.scn"]).output().expect_code(1);
    assert!(out.stderr.contains("nested deeper than"), "{}", out.stderr);
    assert!(
        out.stderr.lines().all(|l| l.chars().count() < 200),
        "{}",
        out.stderr
    );

    p.write("wide.scn", &format!("echo{}\n", " #{nope}".repeat(400_000)));
    let out = p.lowtouch(&["check", "wide.scn"]).output().expect_code(1);
    assert!(out.stderr.contains("wide.scn:1:1"), "{}", out.stderr);

    p.write("huge.scn", &"echo a b c d\n".repeat(8 << 20 >> 3));
    let out = p.lowtouch(&["check", "huge.scn"]).output().expect_code(1);
    assert!(out.stderr.contains("the limit is"), "{}", out.stderr);
}

#[test]
fn outside_a_project_nothing_is_done_and_init_starts_one_that_runs_green() {
    let p = Project::empty();
    for args in [&["history"][..], &["run"], &["check"]] {
        let out = p.lowtouch(args).output().expect_code(2);
        assert!(
            out.stderr.contains("is not in a lowtouch project"),
            "{}",
            out.stderr
        );
    }
    assert!(
        !p.path().join(".lowtouch").exists(),
        "no store made outside a project"
    );
    let out = p.lowtouch(&["init"]).output().expect_code(0);
    assert!(
        out.stdout.contains("environments/local.yaml"),
        "{}",
        out.stdout
    );
    p.lowtouch(&["check"]).output().expect_code(0);
    let run = p.lowtouch(&["run"]).output().expect_code(0);
    assert!(run.stdout.contains("1 passed, 0 failed"), "{}", run.stdout);
    p.assert_nothing_left_running();
    // Nothing is overwritten.
    let again = p.lowtouch(&["init"]).output().expect_code(2);
    assert!(
        again.stderr.contains("nothing was written"),
        "{}",
        again.stderr
    );
    // A project with nothing in it to check is no "ok".
    let bare = Project::empty();
    bare.write("environments/.keep", "");
    let out = bare.lowtouch(&["check"]).output().expect_code(2);
    assert!(out.stderr.contains("nothing to check"), "{}", out.stderr);
}

#[test]
fn a_steady_state_of_unknown_components_or_unobservable_conditions_is_found_at_its_place() {
    let p = Project::empty();
    p.write(
        "environments/local.yaml",
        "components:\n  a:\n    start: [sleep, '9']\n\
         steady_state:\n  components: [a, b]\n  conditions: ['a READY']\n",
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    assert!(
        out.stderr.contains("`b` is no component here")
            && out.stderr.contains("environments/local.yaml:5:19"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("the steady state's conditions need a daemon to observe them"),
        "{}",
        out.stderr
    );
    // The same, for CI annotations and editors.
    let out = p.lowtouch(&["check", "--json"]).output().expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let first = &json["findings"][0];
    assert_eq!(first["file"], "environments/local.yaml", "{json}");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(5), Some(19))
    );
    assert_eq!(first["help"], "did you mean `a`?");
}
