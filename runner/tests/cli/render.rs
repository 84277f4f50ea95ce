//! Environments regenerated from version control: strict templates, the config history,
//! secrets kept out of it, deterministic test data, diffs, and the rollout's
//! stop-and-restore path.

use std::process::Command;

use crate::harness::{Project, history};

fn git_log(p: &Project, env: &str) -> Vec<String> {
    let out = Command::new("git")
        .args([
            "-C",
            ".lowtouch/config-history",
            "log",
            "--format=%H %s",
            &format!("env/{env}"),
        ])
        .current_dir(p.path())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn git_show(p: &Project, rev: &str) -> String {
    let out = Command::new("git")
        .args(["-C", ".lowtouch/config-history", "show", rev])
        .current_dir(p.path())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small project: one template, one secret, no components.
fn project(template: &str) -> Project {
    let p = Project::empty();
    p.write("templates/app.conf.j2", template);
    p.write(
        "environments/e1.yaml",
        "variables:\n  port: 9000\n  user: ops\ntemplates:\n  - { src: app.conf.j2, dest: app.conf }\n\
         secrets:\n  token: { from_env: LOWTOUCH_TEST_TOKEN }\n",
    );
    p
}

#[test]
fn strict_templates_name_the_file_line_and_variable() {
    let p = project("port = {{ port }}\nuser = {{ usr }}\n");
    let out = p
        .lowtouch(&["render", "--env", "e1"])
        .output()
        .expect_code(2);
    assert!(
        out.stderr
            .contains("variable `usr` is not defined by environment `e1`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("templates/app.conf.j2:2:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `user`?"),
        "{}",
        out.stderr
    );
    let out = p
        .lowtouch(&["check", "environments/e1.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("templates/app.conf.j2:2:"),
        "{}",
        out.stderr
    );
    assert!(
        !p.path().join(".lowtouch/config-history").exists(),
        "nothing was written"
    );
}

#[test]
fn history_commits_changes_only_and_keeps_secrets_out() {
    let p = project(
        "port = {{ port }}\ntoken = {{ secrets.token }}\n# product {{ revisions.product }}\n",
    );
    let secret = "s3cr3t-value-42";
    let out = p
        .lowtouch(&["render", "--env", "e1"])
        .env("LOWTOUCH_TEST_TOKEN", secret)
        .output()
        .expect_code(0);
    assert!(out.stdout.contains("new commit"), "{}", out.stdout);
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    // The runtime copy has the value, privately; the history only the placeholder.
    let runtime = p.read(".lowtouch/envs/e1/app.conf");
    assert!(runtime.contains(&format!("token = {secret}")), "{runtime}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p.path().join(".lowtouch/envs/e1/app.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "a file with a secret is readable by others"
    );
    let log = git_log(&p, "e1");
    assert_eq!(log.len(), 1);
    let shown = git_show(&p, "env/e1");
    assert!(shown.contains("token = <secret:token>"), "{shown}");
    assert!(!shown.contains(secret), "the secret reached the history");
    assert!(
        shown.contains("product: unversioned-"),
        "the message lists the revisions:\n{shown}"
    );

    // Nothing changed: no new commit.
    let out = p
        .lowtouch(&["render", "--env", "e1"])
        .env("LOWTOUCH_TEST_TOKEN", secret)
        .output()
        .expect_code(0);
    assert!(
        out.stdout.contains("unchanged, env/e1 stays at"),
        "{}",
        out.stdout
    );
    assert_eq!(git_log(&p, "e1").len(), 1);
    // A new secret value is not a config change either: history never sees it.
    p.lowtouch(&["render", "--env", "e1"])
        .env("LOWTOUCH_TEST_TOKEN", "other")
        .output()
        .expect_code(0);
    assert_eq!(git_log(&p, "e1").len(), 1);

    // A variable changes: --diff shows it and applies nothing; render commits it.
    let out = p
        .lowtouch(&["render", "--env", "e1", "--diff", "--set", "port=9100"])
        .output()
        .expect_code(0);
    assert!(
        out.stdout.contains("-port = 9000") && out.stdout.contains("+port = 9100"),
        "{}",
        out.stdout
    );
    assert_eq!(git_log(&p, "e1").len(), 1, "--diff applied something");
    p.lowtouch(&["render", "--env", "e1", "--set", "port=9100"])
        .env("LOWTOUCH_TEST_TOKEN", secret)
        .output()
        .expect_code(0);
    assert_eq!(git_log(&p, "e1").len(), 2);

    // Without the secret's value the runtime copy cannot be made: bad input, nothing written.
    let out = p
        .lowtouch(&["render", "--env", "e1", "--set", "port=9200"])
        .output()
        .expect_code(2);
    assert!(
        out.stderr.contains("secret `token` has no value"),
        "{}",
        out.stderr
    );
    assert_eq!(git_log(&p, "e1").len(), 2);
}

#[test]
fn a_run_records_its_config_commit() {
    let p = project("port = {{ port }}\n");
    p.write(
        "environments/e1.yaml",
        "variables:\n  port: 9000\ntemplates:\n  - { src: app.conf.j2, dest: app.conf }\n",
    );
    p.write("s.scn", "echo hi\n");
    let out = p
        .lowtouch(&["run", "--scenario", "s.scn", "--env", "e1"])
        .output()
        .expect_code(0);
    assert!(out.stderr.contains("rendered e1: config"), "{}", out.stderr);
    let commit = git_log(&p, "e1")[0].split(' ').next().unwrap().to_string();
    assert_eq!(history(&p)[0]["config_commits"]["e1"], commit.as_str());
    assert!(p.read("reports/junit.xml").contains(&format!(
        r#"name="lowtouch.config_commit" value="{commit}""#
    )));
}

#[test]
fn the_demo_data_is_deterministic_and_not_regenerated_when_unchanged() {
    let a = Project::demo();
    let b = Project::demo();
    a.lowtouch(&["render", "--env", "local"])
        .output()
        .expect_code(0);
    b.lowtouch(&["render", "--env", "local"])
        .output()
        .expect_code(0);
    for f in ["data/orders.csv", "data/instruments.txt"] {
        let (x, y) = (
            a.read(&format!(".lowtouch/envs/local/{f}")),
            b.read(&format!(".lowtouch/envs/local/{f}")),
        );
        assert!(!x.is_empty());
        assert_eq!(x, y, "{f} differs between two renders of the same inputs");
    }
    let again = a
        .lowtouch(&["render", "--env", "local"])
        .output()
        .expect_code(0);
    assert!(again.stdout.contains("not regenerated"), "{}", again.stdout);
    assert!(!again.stdout.contains("rows generated"), "{}", again.stdout);
    // The engines read the rendered config.
    let conf = a.read(".lowtouch/envs/local/primary.conf");
    assert!(
        conf.contains("max_order_qty = 1000") && conf.contains("instruments_file = "),
        "{conf}"
    );
}

#[test]
fn a_rollout_that_breaks_the_smoke_check_stops_and_restores() {
    let p = Project::demo();
    // Two environments of the demo on their own ports: a canary and a second group.
    for (name, group) in [("canary", 1), ("second", 2)] {
        let mut env = p
            .read("environments/local.yaml")
            .replace("rollout_group: 0", &format!("rollout_group: {group}"));
        for (from, _) in [
            ("primary_port: ", 0),
            ("backup_port: ", 1),
            ("replication_port: ", 2),
        ] {
            let line = env
                .lines()
                .find(|l| l.trim_start().starts_with(from))
                .unwrap()
                .to_string();
            env = env.replace(&line, &format!("  {from}{}", crate::harness::free_port()));
        }
        p.write(&format!("environments/{name}.yaml"), &env);
    }
    assert!(
        p.read("pipelines/demo.yaml").contains("smoke:"),
        "the demo has a smoke stage"
    );
    for env in ["canary", "second"] {
        p.lowtouch(&["render", "--env", env])
            .output()
            .expect_code(0);
    }
    let baseline_second = p.read(".lowtouch/envs/second/primary.conf");
    let baseline_tip = git_log(&p, "second")[0].clone();

    // The new config: the canary gets a harmless change, the second environment loses the
    // instrument the smoke check trades.
    let canary = p
        .read("environments/canary.yaml")
        .replace("max_order_qty: 1000", "max_order_qty: 900");
    p.write("environments/canary.yaml", &canary);
    let second = p.read("environments/second.yaml").replace(
        &p.read("environments/second.yaml")
            .lines()
            .find(|l| l.trim_start().starts_with("instruments:"))
            .unwrap()
            .to_string(),
        "  instruments: ACME",
    );
    p.write("environments/second.yaml", &second);

    let out = p
        .lowtouch(&["rollout", "--env", "canary", "--env", "second"])
        .output()
        .expect_code(1);
    assert!(
        out.stdout.contains("rollout failed on second"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("group 1: canary -> group 2: second"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("canary: restored config"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("second: restored config"),
        "{}",
        out.stderr
    );
    // The runtime copy and the history's state are the previous ones again.
    assert_eq!(
        p.read(".lowtouch/envs/second/primary.conf"),
        baseline_second
    );
    let log = git_log(&p, "second");
    assert_eq!(
        log.len(),
        3,
        "render, the failed change, the restore: {log:?}"
    );
    assert!(log[0].contains("restore"), "{log:?}");
    let baseline_id = baseline_tip.split(' ').next().unwrap();
    let diff = Command::new("git")
        .args([
            "-C",
            ".lowtouch/config-history",
            "diff",
            "--quiet",
            baseline_id,
            "env/second",
        ])
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(
        diff.success(),
        "the restored state differs from the one before the rollout"
    );
    assert!(
        !p.path().join(".lowtouch/rollout/second").exists(),
        "the kept copy is cleaned up"
    );
    // The canary passed its smoke stage before the second one failed: two runs stored.
    let runs = history(&p);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["status"], "passed");
    assert_eq!(runs[0]["status"], "failed");
    p.assert_nothing_left_running();
}

#[test]
fn check_knows_the_environment_templates_data_and_daemons() {
    let p = Project::empty();
    p.write(
        "templates/app.conf.j2",
        "port = {{ port }}\ntoken = {{ secrets.tokn }}\n{% if %}\n",
    );
    p.write("templates/ok.j2", "x = {{ missing_var }}\n");
    p.write(
        "environments/bad.yaml",
        "hosts:\n  h1: { address: 127.0.0.1 }\n  h3: { address: 127.0.0.3 }\nvariables:\n  port: 1\n\
         templates:\n  - { src: nope.j2, dest: a.conf }\n  - { src: ok.j2, dest: b.conf }\n\
         data:\n  - { generator: missing.yaml, dest: x.csv }\n\
         secrets:\n  token: { from_env: A, from_file: b }\n\
         daemons:\n  d:\n    host: h2\n    collectors: [system, disk]\n    allow: [sh1, nope]\n\
         \x20 e:\n    host: h1\n    allow: [r1]\n  f:\n    host: h3\n    allow: [r1]\n\
         aliases:\n  sh1: { shell: 'echo hi' }\n  r1: { run: [echo] }\n",
    );
    let out = p
        .lowtouch(&["check", "environments/bad.yaml"])
        .output()
        .expect_code(1);
    for expected in [
        "template `nope.j2` not found",
        "test-data generator `missing.yaml` not found",
        "secret `token` needs exactly one of `from_env` or `from_file`",
        "unknown host `h2`",
        "unknown collector `disk`",
        // A daemon runs programs, never a shell line; a host-bound alias has one host.
        "`sh1` is not a `run:` alias; a daemon runs only those",
        "`nope` is not an alias of this environment",
        "`r1` is allowed on daemon `e` already",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stderr
        );
    }
    // A log rule whose regular expression does not compile: a config error at load time,
    // at its place.
    p.write(
        "environments/badrule.yaml",
        "hosts:\n  h1: { address: 127.0.0.1 }\n\
         components:\n  C:\n    start: [sleep, '1']\n    log: c.log\n\
         daemons:\n  d:\n    host: h1\n    logs:\n      - component: C\n\
         \x20       rules:\n          - { pattern: 'STATE: (?P<s>\\w+', event: state }\n",
    );
    let bad_rule = p
        .lowtouch(&["check", "environments/badrule.yaml"])
        .output()
        .expect_code(1);
    assert!(
        bad_rule.stderr.contains("invalid regular expression")
            && bad_rule.stderr.contains("environments/badrule.yaml:13:"),
        "{}",
        bad_rule.stderr
    );
    // Every finding names its place.
    assert!(
        out.stderr.contains("environments/bad.yaml:7:"),
        "{}",
        out.stderr
    );

    p.write(
        "environments/tmpl.yaml",
        "variables:\n  port: 1\ntemplates:\n  - { src: ok.j2, dest: b.conf }\n",
    );
    let out = p
        .lowtouch(&["check", "environments/tmpl.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("variable `missing_var` is not defined"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("templates/ok.j2:1:8"), "{}", out.stderr);
}

#[test]
fn a_config_history_that_is_not_a_repository_is_refused_and_left_alone() {
    let p = project("port = {{ port }}\n");
    p.write(
        "environments/e1.yaml",
        "variables:\n  port: 9000\ntemplates:\n  - { src: app.conf.j2, dest: app.conf }\n",
    );
    p.write("not-a-repo/notes.txt", "mine\n");
    let out = p
        .lowtouch(&["--history", "not-a-repo", "render", "--env", "e1"])
        .output()
        .expect_code(2);
    assert!(
        out.stderr.contains("is not a git repository"),
        "{}",
        out.stderr
    );
    assert_eq!(p.read("not-a-repo/notes.txt"), "mine\n");
    assert_eq!(
        std::fs::read_dir(p.path().join("not-a-repo"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn secrets_never_reach_steps_output_or_reports() {
    let p = project("token = {{ secrets.token }}\n");
    p.write(
        "environments/e1.yaml",
        "variables:\n  port: 1\ntemplates:\n  - { src: app.conf.j2, dest: app.conf }\n\
         secrets:\n  token: { from_env: LOWTOUCH_TEST_TOKEN }\n\
         aliases:\n  leak_env:\n    shell: 'env; echo done'\n  leak_file:\n    shell: 'cat .lowtouch/envs/e1/app.conf'\n",
    );
    p.write("s.scn", "leak_env\nleak_file\n");
    let secret = "very-secret-9f8e7d";
    let out = p
        .lowtouch(&["run", "-v", "--scenario", "s.scn", "--env", "e1"])
        .env("LOWTOUCH_TEST_TOKEN", secret)
        .output()
        .expect_code(0);
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("token = <secret:token>"),
        "the file's value is masked: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("LOWTOUCH_TEST_TOKEN="),
        "a step inherited the secret's variable"
    );
    let junit = p.read("reports/junit.xml");
    assert!(!junit.contains(secret), "{junit}");
    let db = std::fs::read_dir(p.path().join(".lowtouch/db")).unwrap();
    for f in db.flatten().filter(|f| f.path().is_file()) {
        let bytes = std::fs::read(f.path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is in the store ({})",
            f.path().display()
        );
    }
}

#[test]
fn included_templates_are_checked_where_they_are() {
    let p = Project::empty();
    p.write(
        "templates/main.j2",
        "a = {{ port }}\n{% include \"part.j2\" %}\n",
    );
    p.write("templates/part.j2", "b = {{ nope }}\n");
    p.write(
        "environments/e1.yaml",
        "variables:\n  port: 1\ntemplates:\n  - { src: main.j2, dest: main.conf }\n  - { src: main.j2, dest: config-commit }\n",
    );
    let out = p
        .lowtouch(&["check", "environments/e1.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("is a name lowtouch keeps for itself"),
        "{}",
        out.stderr
    );
    p.write(
        "environments/e1.yaml",
        "variables:\n  port: 1\ntemplates:\n  - { src: main.j2, dest: main.conf }\n",
    );
    let out = p
        .lowtouch(&["check", "environments/e1.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("templates/part.j2:1:8"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("variable `nope` is not defined"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_lost_history_is_reported_not_rebuilt() {
    let p = project("port = {{ port }}\n");
    p.write(
        "environments/e1.yaml",
        "variables:\n  port: 9000\ntemplates:\n  - { src: app.conf.j2, dest: app.conf }\n",
    );
    p.lowtouch(&["render", "--env", "e1"])
        .output()
        .expect_code(0);
    std::fs::remove_dir_all(p.path().join(".lowtouch/config-history")).unwrap();
    let out = p
        .lowtouch(&["render", "--env", "e1", "--set", "port=1"])
        .output()
        .expect_code(3);
    assert!(
        out.stderr.contains("the config history of `e1` is missing"),
        "{}",
        out.stderr
    );
    assert_eq!(
        p.read(".lowtouch/envs/e1/app.conf"),
        "port = 9000\n",
        "the runtime copy was touched"
    );
}

#[test]
fn a_first_rollout_that_fails_leaves_no_accepted_config_behind() {
    let p = Project::demo();
    let mut env = p
        .read("environments/local.yaml")
        .replace("rollout_group: 0", "rollout_group: 1");
    for key in ["primary_port: ", "backup_port: ", "replication_port: "] {
        let line = env
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap()
            .to_string();
        env = env.replace(&line, &format!("  {key}{}", crate::harness::free_port()));
    }
    let line = env
        .lines()
        .find(|l| l.trim_start().starts_with("instruments:"))
        .unwrap()
        .to_string();
    p.write(
        "environments/fresh.yaml",
        &env.replace(&line, "  instruments: ACME"),
    );
    let out = p
        .lowtouch(&["rollout", "--env", "fresh"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("fresh: restored to no config"),
        "{}",
        out.stderr
    );
    assert!(
        git_log(&p, "fresh").is_empty(),
        "the failed config stayed the branch's state"
    );
    let kept = Command::new("git")
        .args([
            "-C",
            ".lowtouch/config-history",
            "for-each-ref",
            "refs/lowtouch/failed/",
        ])
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&kept.stdout).contains("fresh-"),
        "the failed commit is kept for a look"
    );
    assert!(!p.path().join(".lowtouch/envs/fresh/primary.conf").exists());
    // The next rollout still sees the change: it is not mistaken for the accepted state.
    let again = p
        .lowtouch(&["rollout", "--env", "fresh"])
        .output()
        .expect_code(1);
    assert!(
        !again.stderr.contains("fresh: no config change"),
        "{}",
        again.stderr
    );
    p.assert_nothing_left_running();
}
