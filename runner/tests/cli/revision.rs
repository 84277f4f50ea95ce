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

#[test]
fn history_gives_one_line_per_candidate_and_every_run_with_runs() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: { flip: no }\n");
    p.write("s.scn", "if \"#{flip}\" == 'fail' then exit 1\necho ok\n");
    p.write(".gitignore", "/.lowtouch\n/reports\n");
    git(&p, &["init", "-q"]);
    git(&p, &["add", "."]);
    git(&p, &["commit", "-q", "-m", "first"]);
    let first = head(&p);
    let run = |args: &[&str], code: i32| {
        let mut all = vec!["run", "--scenario", "s.scn"];
        all.extend_from_slice(args);
        p.lowtouch(&all).output().expect_code(code);
    };
    run(&[], 0);
    run(&["--set", "flip=fail"], 1);
    git(&p, &["commit", "-q", "--allow-empty", "-m", "second"]);
    let second = head(&p);
    run(&[], 0);

    let out = p.lowtouch(&["history"]).output().expect_code(0).stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two candidates:\n{out}");
    assert!(lines[0].contains("RUNS OK"), "{out}");
    assert!(
        lines[1].contains("passed")
            && lines[1].contains(" 1/1 ")
            && lines[1].contains(&second[..12]),
        "{out}"
    );
    // The first candidate's newest run failed; one of its two runs passed.
    assert!(
        lines[2].contains("failed")
            && lines[2].contains(" 1/2 ")
            && lines[2].contains(&first[..12]),
        "{out}"
    );

    let json: Vec<serde_json::Value> = serde_json::from_str(
        &p.lowtouch(&["history", "--json"])
            .output()
            .expect_code(0)
            .stdout,
    )
    .unwrap();
    assert_eq!(json.len(), 2);
    assert_eq!(json[1]["revision"], first.as_str());
    assert_eq!(json[1]["verdict"], "failed");
    assert_eq!(json[1]["runs"].as_array().unwrap().len(), 2);
    assert_eq!(json[1]["runs_passed"], 1);
    assert_eq!(json[1]["runs_failed"], 1);
    assert_eq!(history(&p)[2]["id"], json[1]["runs"][1]);

    // --limit counts candidates; --runs lists every run.
    let one = p
        .lowtouch(&["history", "--limit", "1"])
        .output()
        .expect_code(0)
        .stdout;
    assert_eq!(one.lines().count(), 2, "{one}");
    let runs = p
        .lowtouch(&["history", "--runs"])
        .output()
        .expect_code(0)
        .stdout;
    assert_eq!(runs.lines().count(), 4, "{runs}");
}
