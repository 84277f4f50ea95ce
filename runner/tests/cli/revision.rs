//! Runs are indexed by the revision under test.

use std::process::Command;

use crate::harness::{Project, history};

fn git(p: &Project, args: &[&str]) {
    crate::harness::git(p.path(), args);
}

fn head(p: &Project) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(p.path())
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_git_checkout_is_indexed_by_commit_and_dirtiness() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    p.write("s.scn", "echo hi\n");
    p.write(".gitignore", "/.lowtouch\n/reports\n");
    git(&p, &["init", "-q"]);
    git(&p, &["add", "."]);
    git(&p, &["commit", "-q", "-m", "first"]);
    let sha = head(&p);

    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    assert_eq!(
        history(&p)[0]["revision"],
        sha.as_str(),
        "runs do not dirty the tree"
    );

    p.write("s.scn", "echo changed\n");
    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    assert_eq!(history(&p)[0]["revision"], format!("{sha}-dirty").as_str());

    let out = p
        .lowtouch(&["history", "--revision", &sha])
        .output()
        .expect_code(0);
    assert_eq!(
        out.stdout.lines().count(),
        2,
        "header and one run:\n{}",
        out.stdout
    );
}

#[test]
fn outside_git_a_run_is_named_by_its_inputs() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    p.write("s.scn", "echo hi\n");
    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    p.write("s.scn", "echo other\n");
    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    let runs = history(&p);
    let revs: Vec<&str> = runs
        .iter()
        .map(|r| r["revision"].as_str().unwrap())
        .collect();
    assert!(
        revs.iter().all(|r| r.starts_with("unversioned-")),
        "{revs:?}"
    );
    assert_eq!(revs[1], revs[2], "same inputs, same revision");
    assert_ne!(revs[0], revs[1], "other inputs, other revision");
}
