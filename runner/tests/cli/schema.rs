//! The YAML contract and the command line's own documents: the committed JSON Schemas and
//! key reference are what the binary generates, unknown keys get a suggestion, `init`
//! points editors at the schemas, completions and the man page come out whole.

use std::path::Path;

use crate::harness::Project;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
}

#[test]
fn the_committed_schemas_and_reference_are_what_lowtouch_generates() {
    let p = Project::empty();
    for kind in ["environment", "pipeline"] {
        let out = p.lowtouch(&["schema", kind]).output().expect_code(0);
        let path = repo().join(format!("schema/{kind}.schema.json"));
        let committed = std::fs::read_to_string(&path).expect("committed schema");
        assert!(
            out.stdout == committed,
            "{} is stale: run `cargo run -q -- schema {kind} > schema/{kind}.schema.json`",
            path.display()
        );
        let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(
            schema["additionalProperties"], false,
            "unknown keys are errors"
        );
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    }
    let out = p
        .lowtouch(&["schema", "--reference"])
        .output()
        .expect_code(0);
    let doc = std::fs::read_to_string(repo().join("docs/reference.md")).expect("reference");
    let marker = "do not edit below this line -->\n\n";
    let generated = &doc[doc.find(marker).expect("the generated part's marker") + marker.len()..];
    assert!(
        generated == out.stdout,
        "docs/reference.md is stale: regenerate the part below its marker with `cargo run -q -- schema --reference`"
    );
    // Every key the files take is in it, nested ones by their path.
    for key in [
        "| `steady_state` |",
        "### `daemons.<name>.probes[]`",
        "| `writable` |",
        "### `components.<name>.writable[]`",
        "| `unexpected_crash` | `fail` \\| `warn` |",
        "### `scenarios[]`",
    ] {
        assert!(out.stdout.contains(key), "{key} missing from the reference");
    }
    // Without a kind, it says which there are.
    let out = p.lowtouch(&["schema"]).output().expect_code(2);
    assert!(
        out.stderr.contains("lowtouch schema environment"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_key_is_shown_with_the_key_it_was_probably_meant_to_be() {
    let p = Project::empty();
    p.write(
        "environments/local.yaml",
        "description: d\naliasses:\n  t:\n    run: ['true']\n",
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    assert!(
        out.stderr.contains("unknown field `aliasses`")
            && out.stderr.contains("environments/local.yaml:2:1")
            && out.stderr.contains("^^^^^^^^ did you mean `aliases`?"),
        "{}",
        out.stderr
    );
    p.write(
        "environments/local.yaml",
        "components:\n  a:\n    strat: [sleep, '9']\n",
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    assert!(
        out.stderr.contains("did you mean `start`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn init_points_editors_at_schemas_it_writes() {
    let p = Project::empty();
    p.lowtouch(&["init"]).output().expect_code(0);
    for (file, kind) in [
        ("environments/local.yaml", "environment"),
        ("pipelines/main.yaml", "pipeline"),
    ] {
        let text = p.read(file);
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{file} starts with {first:?}"));
        let schema = p.path().join(file).parent().unwrap().join(target);
        let written = std::fs::read_to_string(&schema)
            .unwrap_or_else(|e| panic!("{} ({e})", schema.display()));
        let generated = p.lowtouch(&["schema", kind]).output().expect_code(0);
        assert_eq!(written, generated.stdout);
    }
    // The schemas live in the git-ignored state directory.
    assert!(p.read(".gitignore").contains(".lowtouch/"));
}

#[test]
fn completions_and_the_man_page_cover_every_subcommand() {
    let p = Project::empty();
    for shell in ["bash", "zsh", "fish"] {
        let out = p.lowtouch(&["completions", shell]).output().expect_code(0);
        for sub in ["run", "check", "history", "judge", "serve", "schema"] {
            assert!(out.stdout.contains(sub), "{shell}: no `{sub}`");
        }
    }
    let out = p.lowtouch(&["completions", "tcsh"]).output().expect_code(2);
    assert!(out.stderr.contains("bash"), "{}", out.stderr);
    let man = p.lowtouch(&["man"]).output().expect_code(0);
    assert!(man.stdout.contains(".TH lowtouch 1"), "{}", man.stdout);
    for sub in ["lowtouch\\-run", "lowtouch\\-check", "lowtouch\\-judge"] {
        assert!(man.stdout.contains(sub), "man page without {sub}");
    }
    // The hidden demo binary's entry is not documented.
    assert!(!man.stdout.contains("lowtouch\\-demo"));
}

#[test]
fn color_and_quiet_are_the_persons_choice() {
    let p = Project::empty();
    p.lowtouch(&["init"]).output().expect_code(0);
    p.write("one.scn", "echo hello\n");
    let run = |flags: &[&str]| {
        let mut args = vec!["run", "--scenario", "one.scn", "--env", "local"];
        args.extend_from_slice(flags);
        p.lowtouch(&args).output().expect_code(0)
    };
    // Piped: no colours by default; progress (every step, for --scenario) on stderr.
    let plain = run(&[]);
    assert!(!plain.stdout.contains('\x1b') && !plain.stderr.contains('\x1b'));
    assert!(plain.stderr.contains("echo hello"), "{}", plain.stderr);
    // Asked for, colours come through a pipe and over NO_COLOR.
    let args = [
        "run",
        "--scenario",
        "one.scn",
        "--env",
        "local",
        "--color",
        "always",
    ];
    let colored = p
        .lowtouch(&args)
        .env("NO_COLOR", "1")
        .output()
        .expect_code(0);
    assert!(colored.stdout.contains("\x1b[32m"), "{:?}", colored.stdout);
    assert!(colored.stderr.contains('\x1b'), "{:?}", colored.stderr);
    let never = run(&["--color", "never"]);
    assert!(!never.stdout.contains('\x1b') && !never.stderr.contains('\x1b'));
    // Quiet: no progress, the summary still says what came of it.
    let quiet = run(&["-q"]);
    assert!(!quiet.stderr.contains("echo hello"), "{}", quiet.stderr);
    assert!(quiet.stdout.contains("1 passed"), "{}", quiet.stdout);
    let bad = p
        .lowtouch(&["--color", "sometimes", "status"])
        .output()
        .expect_code(2);
    assert!(bad.stderr.contains("always"), "{}", bad.stderr);
}
