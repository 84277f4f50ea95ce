//! `lowtouch poll`: real repositories, real pushes, runs only for what matters.

use crate::harness::{Project, commit, git, history, watched_project};

#[test]
fn polling_runs_the_pipeline_for_relevant_changes_only() {
    let product = tempfile::tempdir().unwrap();
    git(product.path(), &["init", "-q"]);
    commit(product.path(), "src/engine.txt", "v1\n");
    commit(product.path(), "docs/readme.md", "hello\n");

    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    p.write("pipelines/s.scn", "echo ran\n");
    p.write(
        "pipelines/watched.yaml",
        &format!(
            "environment: local\nscenarios: [s.scn]\nrepositories:\n  exchange:\n    role: product\n    url: {}\n    follow: [main]\n    paths: [src]\n",
            product.path().display()
        ),
    );

    // First sight: the tips are recorded, nothing runs.
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(
        out.stderr.contains("watched/exchange: now watching 1 ref"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("nothing new to run"), "{}", out.stdout);
    assert!(history(&p).is_empty());

    // A change outside the path filters does nothing.
    commit(product.path(), "docs/readme.md", "hello again\n");
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(out.stderr.contains("-> nothing"), "{}", out.stderr);
    assert!(history(&p).is_empty());

    // A product change runs the pipeline; polling again finds nothing new.
    commit(product.path(), "src/engine.txt", "v2\n");
    let out = p.lowtouch(&["poll", "--dry-run"]).output().expect_code(0);
    assert!(
        out.stdout.contains("would run watched (run-pipeline)"),
        "{}",
        out.stdout
    );
    assert!(history(&p).is_empty(), "--dry-run ran something");
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(
        out.stderr.contains("refs/heads/main advanced"),
        "{}",
        out.stderr
    );
    assert_eq!(history(&p).len(), 1);
    p.lowtouch(&["poll"]).output().expect_code(0);
    assert_eq!(history(&p).len(), 1, "an old commit ran again");

    // A force push is detected as such and runs.
    git(product.path(), &["reset", "-q", "--hard", "HEAD~1"]);
    commit(product.path(), "src/engine.txt", "v2-rewritten\n");
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(out.stderr.contains("force-pushed"), "{}", out.stderr);
    assert_eq!(history(&p).len(), 2);

    // An unreachable repository is reported, not fatal.
    std::fs::rename(product.path(), product.path().with_extension("moved")).unwrap();
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(out.stderr.contains("watched/exchange:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("a later poll retries"),
        "{}",
        out.stderr
    );
    std::fs::rename(product.path().with_extension("moved"), product.path()).unwrap();
}

#[test]
fn a_locked_environment_is_left_alone_until_unlocked() {
    let (product, p) = watched_project("");
    p.lowtouch(&["poll"]).output().expect_code(0);
    p.lowtouch(&[
        "lock",
        "local",
        "--reason",
        "manual failover drill",
        "--by",
        "anna",
    ])
    .output()
    .expect_code(0);
    let status = p.lowtouch(&["status"]).output().expect_code(0);
    assert!(
        status.stdout.contains("locked by anna"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("manual failover drill"),
        "{}",
        status.stdout
    );
    let again = p
        .lowtouch(&["lock", "local", "--reason", "x"])
        .output()
        .expect_code(2);
    assert!(
        again.stderr.contains("already locked by anna"),
        "{}",
        again.stderr
    );

    commit(product.path(), "src/engine.txt", "v2\n");
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(
        out.stderr.contains("environment local is locked by anna"),
        "{}",
        out.stderr
    );
    assert!(
        history(&p).is_empty(),
        "the server ran on a locked environment"
    );
    // A person may still run it, with a note.
    let manual = p.lowtouch(&["run", "watched"]).output().expect_code(0);
    assert!(
        manual.stderr.contains("running because you asked"),
        "{}",
        manual.stderr
    );

    p.lowtouch(&["unlock", "local"]).output().expect_code(0);
    p.lowtouch(&["poll"]).output().expect_code(0);
    assert_eq!(
        history(&p).len(),
        2,
        "the change that waited was not run once unlocked"
    );
    let status = p.lowtouch(&["status", "--json"]).output().expect_code(0);
    assert!(
        status.stdout.contains(r#""state": "idle""#),
        "{}",
        status.stdout
    );

    p.lowtouch(&["pause", "local"]).output().expect_code(0);
    commit(product.path(), "src/engine.txt", "v3\n");
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(out.stderr.contains("is paused since"), "{}", out.stderr);
    p.lowtouch(&["resume", "local"]).output().expect_code(0);
    let bad = p.lowtouch(&["pause", "locl"]).output().expect_code(2);
    assert!(
        bad.stderr.contains("did you mean `local`?"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_burst_runs_the_newest_candidate_and_records_the_others_as_skipped() {
    let (product, p) = watched_project("");
    let pipeline = p
        .read("pipelines/watched.yaml")
        .replace("follow: [main]", "follow: [main, 'v*']");
    p.write("pipelines/watched.yaml", &pipeline);
    p.lowtouch(&["poll"]).output().expect_code(0);
    commit(product.path(), "src/engine.txt", "v2\n");
    git(product.path(), &["tag", "v2.0"]);
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(
        out.stderr.contains("skipped, superseded by"),
        "{}",
        out.stderr
    );
    let runs = history(&p);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let skipped: Vec<_> = runs.iter().filter(|r| r["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{runs:?}");
    assert!(
        skipped[0]["note"]
            .as_str()
            .unwrap()
            .contains("superseded by"),
        "{runs:?}"
    );
    assert_eq!(runs.iter().filter(|r| r["status"] == "passed").count(), 1);
}

#[test]
fn changes_wait_while_a_maintenance_window_is_open() {
    let (product, p) = watched_project("");
    p.lowtouch(&["poll"]).output().expect_code(0);
    let open = p.read("pipelines/watched.yaml")
        + "maintenance:\n  - { start: '* * * * *', duration: 2m }\n";
    p.write("pipelines/watched.yaml", &open);
    commit(product.path(), "src/engine.txt", "v2\n");
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(
        out.stderr.contains("in its maintenance window"),
        "{}",
        out.stderr
    );
    assert!(history(&p).is_empty());
    // The window closed (removed): the change that waited runs.
    let closed = open.replace(
        "maintenance:\n  - { start: '* * * * *', duration: 2m }\n",
        "",
    );
    p.write("pipelines/watched.yaml", &closed);
    p.lowtouch(&["poll"]).output().expect_code(0);
    assert_eq!(history(&p).len(), 1);
    // A bad window is bad input, with its place.
    p.write(
        "pipelines/watched.yaml",
        &(closed + "maintenance:\n  - { start: '0 22 * * 6', duration: long }\n"),
    );
    let out = p
        .lowtouch(&["check", "pipelines/watched.yaml"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("`long` is not a duration"),
        "{}",
        out.stderr
    );
}
