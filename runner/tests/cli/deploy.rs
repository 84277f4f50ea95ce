//! The deploy stage, for real: the demo exchange's sources in a git repository of their
//! own, a new commit built from its worktree with cargo, and the scenarios run against
//! that build — a regression committed to the product fails them, its fix passes again.

use std::path::Path;

use crate::harness::{Project, commit, git, history};

/// A product repository holding the demo exchange (its crate, a workspace around it and
/// the repository's lock file, so cargo needs nothing it has not downloaded already).
fn exchange_repository() -> tempfile::TempDir {
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let product = tempfile::tempdir().unwrap();
    let dest = product.path().join("examples/exchange");
    copy_tree(&repo_root.join("examples/exchange"), &dest);
    std::fs::copy(
        repo_root.join("Cargo.lock"),
        product.path().join("Cargo.lock"),
    )
    .unwrap();
    let workspace = std::fs::read_to_string(repo_root.join("Cargo.toml")).unwrap();
    // The workspace's shared settings, with the exchange as its only member.
    let workspace: String = workspace
        .lines()
        .map(|line| {
            if line.starts_with("members = ") {
                r#"members = ["examples/exchange"]"#
            } else if line.starts_with("default-members = ") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(product.path().join("Cargo.toml"), workspace).unwrap();
    git(product.path(), &["init", "-q"]);
    git(product.path(), &["add", "."]);
    git(product.path(), &["commit", "-q", "-m", "the exchange"]);
    product
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

fn head(dir: &Path) -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_new_product_commit_is_built_from_its_worktree_and_tested() {
    let product = exchange_repository();
    let p = Project::demo();
    let pipeline = p.read("pipelines/exchange.yaml").replace(
        "url: ..                       # this repository (relative to this file)",
        &format!("url: {}", product.path().display()),
    );
    p.write("pipelines/exchange.yaml", &pipeline);

    // A person's run tests the current tip of main: built, deployed, passed.
    let v1 = head(product.path());
    let out = p
        .lowtouch(&["run", "exchange", "-v"])
        .output()
        .expect_code(0);
    assert!(out.stderr.contains("PASS hook deploy"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("deploying exchange {} (main)", &v1[..12])),
        "{}",
        out.stderr
    );
    let built = p.path().join(".lowtouch/build/exchange/release/exchange");
    assert!(built.is_file(), "the deploy built nothing");
    let worktree = p.path().join(".lowtouch/worktrees/exchange/exchange");
    assert!(worktree.join("examples/exchange/src/cli.rs").is_file());
    assert!(!worktree.join(".git").exists(), "a worktree is files only");
    // The engines ran the built binary, not the one inside lowtouch.
    let log = p.read(".lowtouch/envs/local/MatchingEnginePrimary.log");
    assert!(log.contains("STATE: READY"), "{log}");
    let runs = history(&p);
    assert_eq!(runs[0]["candidate"]["exchange"], v1.as_str());

    // First sight of the repository for the poller: nothing runs.
    p.lowtouch(&["poll", "exchange"]).output().expect_code(0);

    // A regression lands: the smoke check of this build always fails. The poll builds
    // that commit and the scenarios fail against it.
    let cli = product.path().join("examples/exchange/src/cli.rs");
    let source = std::fs::read_to_string(&cli).unwrap();
    let broken = source.replacen(
        "            println!(\"PASS\");\n            Ok(0)",
        "            println!(\"FAIL\");\n            Ok(1)",
        1,
    );
    assert_ne!(broken, source, "the smoke command moved; update this test");
    commit(product.path(), "examples/exchange/src/cli.rs", &broken);
    let v2 = head(product.path());
    let out = p.lowtouch(&["poll", "exchange"]).output().expect_code(1);
    assert!(out.stderr.contains("worktree: exchange"), "{}", out.stderr);
    let runs = history(&p);
    assert_eq!(runs[0]["candidate"]["exchange"], v2.as_str());
    assert_eq!(runs[0]["status"], "failed");
    let junit = p.read("reports/junit.xml");
    assert!(
        junit.contains(&format!(
            r#"<property name="lowtouch.candidate.exchange" value="{v2}"/>"#
        )),
        "{junit}"
    );
    assert!(
        std::fs::read_to_string(worktree.with_extension("commit"))
            .unwrap()
            .contains(&v2)
    );

    // The fix lands: built again, passes again.
    commit(product.path(), "examples/exchange/src/cli.rs", &source);
    let v3 = head(product.path());
    p.lowtouch(&["poll", "exchange"]).output().expect_code(0);
    let runs = history(&p);
    assert_eq!(runs[0]["candidate"]["exchange"], v3.as_str());
    assert_eq!(runs[0]["status"], "passed");
    p.assert_nothing_left_running();
}

#[test]
fn a_deploy_stage_is_checked_like_any_hook() {
    let p = Project::demo();
    p.write(
        "pipelines/bad.yaml",
        "environment: local\nscenarios: [demo/smoke.scn]\nrepositories:\n  exchange: { role: product, url: /nowhere, follow: [main] }\ndeploy:\n  - build_exchnage \"#{product.path}\"\n",
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("bad.yaml:6:5"), "{text}");
    assert!(text.contains("did you mean `build_exchange`"), "{text}");

    // A pipeline variable may use the candidate's variables, spelled right.
    p.write(
        "pipelines/bad.yaml",
        "environment: local\nscenarios: [demo/smoke.scn]\nrepositories:\n  exchange: { role: product, url: /nowhere, follow: [main] }\nvariables:\n  exchange: \"#{prodcut.path}/bin\"\n",
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("bad.yaml:6:14"), "{text}");
    assert!(text.contains("`#{prodcut.path}`"), "{text}");
    assert!(text.contains("did you mean `product.path`"), "{text}");

    // A deploy stage with nothing to deploy is an error too.
    p.write(
        "pipelines/bad.yaml",
        "environment: local\nscenarios: [demo/smoke.scn]\ndeploy: [\"echo hi\"]\n",
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("a deploy stage needs a candidate"), "{text}");
}

#[test]
fn lowtouchs_own_credentials_never_reach_a_step() {
    let p = Project::empty();
    p.write(
        "environments/local.yaml",
        "aliases:\n  show:\n    run: [sh, -c, 'echo \"token=${GITHUB_TOKEN:-none} git=${LOWTOUCH_GIT_TOKEN:-none}\"']\n  leak:\n    run: [echo]\n",
    );
    p.write("pipelines/s.scn", "show\nleak ghp_0123456789abcdef\n");
    let out = p
        .lowtouch(&["run", "--scenario", "pipelines/s.scn"])
        .env("GITHUB_TOKEN", "ghp_0123456789abcdef")
        .env("LOWTOUCH_GIT_TOKEN", "glpat-abcdefgh")
        .output()
        .expect_code(0);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("token=none git=none"), "{text}");
    // A value that shows up anyway (here: typed into the scenario) is masked.
    assert!(!text.contains("ghp_0123456789abcdef"), "{text}");
    assert!(text.contains("<GITHUB_TOKEN>"), "{text}");
}
