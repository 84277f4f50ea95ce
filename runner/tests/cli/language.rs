//! The scenario language end to end: plugins, aliases, quoting, limits, control flow.

use crate::harness::{Project, history};

/// A project whose `local` environment has the given aliases and no components.
fn project(env: &str) -> Project {
    let p = Project::empty();
    p.write("environments/local.yaml", env);
    p
}

#[test]
fn plugins_get_their_arguments_and_the_runs_context() {
    let p = project("variables: {}\n");
    p.write_executable(
        "tools/lowtouch-probe",
        "#!/bin/sh\nprintf '%s|' \"$#\" \"$@\"\necho \"$LOWTOUCH_ENV $LOWTOUCH_SCENARIO $LOWTOUCH_STEP ${LOWTOUCH_RUN_ID:+has-run-id}\"\n",
    );
    p.write(
        "s.scn",
        "set out probe a 'b c' \"#{env}\"\necho #{out}\nassert \"#{out}\" == \"3|a|b c|local|local s 1 has-run-id\"\n",
    );
    let out = p
        .lowtouch(&["run", "--scenario", "s.scn", "--tools", "tools"])
        .output()
        .expect_code(0);
    assert!(
        out.stderr.contains("3|a|b c|local|local s 1 has-run-id"),
        "{}",
        out.stderr
    );
}

#[test]
fn values_never_pass_through_a_shell() {
    let p = project(
        "aliases:\n  args:\n    run: [printf, '[%s]']\n  sh_args:\n    shell: 'printf \"[%s]\" \"$@\"'\n",
    );
    let marker = p.path().join("pwned");
    p.write(
        "s.scn",
        &format!(
            "set evil echo \"$(touch {m}); touch {m} `touch {m}`\"\nset a args #{{evil}}\nset b sh_args #{{evil}} x\n\
             assert \"#{{a}}\" == \"[#{{evil}}]\"\nassert \"#{{b}}\" == \"[#{{evil}}][x]\"\n",
            m = marker.display()
        ),
    );
    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    assert!(!marker.exists(), "a value was run by a shell");
}

#[test]
fn a_failing_command_fails_the_scenario_except_under_set() {
    let p = project("aliases:\n  fail:\n    shell: 'echo oops >&2; exit 3'\n");
    p.write("ok.scn", "set r fail\nassert #{r.status} == 3\n");
    p.lowtouch(&["run", "--scenario", "ok.scn"])
        .output()
        .expect_code(0);
    p.write("bad.scn", "echo before\nfail\necho never\n");
    let out = p
        .lowtouch(&["run", "--scenario", "bad.scn"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr
            .contains("bad.scn:2: `fail` exited with status 3"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("oops"), "{}", out.stderr);
    assert!(!out.stderr.contains("never"), "{}", out.stderr);
}

#[test]
fn a_missing_program_fails_its_step_and_says_which() {
    let p = project("aliases:\n  gone:\n    run: [lowtouch-test-no-such-program]\n");
    p.write("s.scn", "gone\n");
    let out = p
        .lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains(
            "could not start `lowtouch-test-no-such-program`: No such file or directory (os error 2)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_step_runs_in_the_project_directory() {
    let p = project("aliases:\n  here:\n    shell: 'pwd -P'\n");
    p.write("s.scn", "set r here\necho \"in #{r}\"\n");
    let out = p
        .lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    let dir = p.path().canonicalize().unwrap();
    assert!(
        out.stderr.contains(&format!("in {}", dir.display())),
        "{}",
        out.stderr
    );
}

#[test]
fn a_hanging_step_is_killed_with_its_process_group() {
    let p = project("aliases:\n  hang:\n    shell: 'sleep 60 & echo $! > child.pid; wait'\n");
    p.write("s.scn", "timeout 300ms hang\n");
    let out = p
        .lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("timed out after 300ms"),
        "{}",
        out.stderr
    );
    let child: i32 = p.read("child.pid").trim().parse().unwrap();
    assert!(
        crate::harness::wait_until(
            std::time::Duration::from_secs(5),
            || !crate::harness::alive(child)
        ),
        "the step's background child survived"
    );
}

#[test]
fn output_capture_is_bounded_and_the_rest_counted() {
    let p = project("aliases:\n  flood:\n    shell: 'head -c 200000 /dev/zero | tr \"\\\\0\" x'\n");
    p.write("s.scn", "flood\n");
    p.write(
        "pipelines/flood.yaml",
        "environment: local\noutput_limit: 1000\nscenarios: [../s.scn]\n",
    );
    p.lowtouch(&["run", "flood"]).output().expect_code(0);
    assert_eq!(history(&p)[0]["status"], "passed");
    // The stored step keeps 1000 bytes and counts the other 199000.
    let junit = p.read("reports/junit.xml");
    assert!(junit.contains("[199000 more bytes not kept]"), "{junit}");
    let xml_x = junit.matches('x').count();
    assert!(
        (1000..1100).contains(&xml_x),
        "the report carried {xml_x} bytes of output"
    );
}

#[test]
fn a_runaway_goto_loop_hits_the_step_budget() {
    let p = project("variables: {}\n");
    p.write("loop.scn", "top:\necho again\ngoto top\n");
    p.write(
        "pipelines/loop.yaml",
        "environment: local\nstep_budget: 300\nscenarios: [../loop.scn]\n",
    );
    let out = p.lowtouch(&["run", "loop"]).output().expect_code(1);
    assert!(
        out.stderr
            .contains("step budget of 300 statements exhausted"),
        "{}",
        out.stderr
    );
}

#[test]
fn comparisons_labels_and_exit_codes() {
    let p = project("variables:\n  limit: 10\n");
    p.write(
        "s.scn",
        "set n echo 9\nif #{n} < #{limit} then goto small\nexit 3\nsmall:\nassert #{n} =~ ^[0-9]+$\nassert abc < abd\nif 10 == 10.0 then exit\nexit 4\n",
    );
    p.lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(0);
    p.write("e.scn", "exit 7\n");
    let out = p
        .lowtouch(&["run", "--scenario", "e.scn"])
        .output()
        .expect_code(1);
    assert!(out.stderr.contains("exited with code 7"), "{}", out.stderr);
}

#[test]
fn parallel_scenarios_run_at_the_same_time() {
    // Each scenario waits for the other's marker: they only both pass when they overlap.
    let p = project(
        "aliases:\n  mark:\n    shell: 'touch \"$1\"'\n  await:\n    shell: 'for i in $(seq 1 500); do [ -e \"$1\" ] && exit 0; sleep 0.01; done; exit 1'\n",
    );
    p.write("a.scn", "mark a.marker\nawait b.marker\n");
    p.write("b.scn", "mark b.marker\nawait a.marker\n");
    p.write(
        "pipelines/par.yaml",
        "environment: local\nscenarios:\n  - parallel: [../a.scn, ../b.scn]\n",
    );
    let out = p.lowtouch(&["run", "par"]).output().expect_code(0);
    assert!(out.stdout.contains("2 passed"), "{}", out.stdout);
}

#[test]
fn teardown_runs_after_a_failing_scenario_and_a_failing_setup_skips() {
    let p = project("aliases:\n  note:\n    shell: 'echo \"$1\" >> hooks.log'\n");
    p.write("fail.scn", "note scenario\nexit 2\n");
    p.write(
        "pipelines/hooks.yaml",
        "environment: local\nsetup: [note setup]\nbefore_each: [note before]\nafter_each: [note after]\nteardown: [note teardown]\nscenarios: [../fail.scn]\n",
    );
    p.lowtouch(&["run", "hooks"]).output().expect_code(1);
    assert_eq!(
        p.read("hooks.log"),
        "setup\nbefore\nscenario\nafter\nteardown\n"
    );

    p.write(
        "pipelines/badsetup.yaml",
        "environment: local\nsetup: [note setup2, exit 1]\nteardown: [note teardown2]\nscenarios: [../fail.scn]\n",
    );
    let out = p.lowtouch(&["run", "badsetup"]).output().expect_code(1);
    assert!(out.stdout.contains("SKIP"), "{}", out.stdout);
    assert!(p.read("hooks.log").ends_with("setup2\nteardown2\n"));
}

#[test]
fn timeout_applies_to_builtins_and_alias_steps() {
    let p = project("aliases:\n  nap:\n    steps: ['sleep 5s']\n");
    p.write("s.scn", "timeout 200ms sleep 5s\n");
    let out = p
        .lowtouch(&["run", "--scenario", "s.scn"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr.contains("timed out after 200ms"),
        "{}",
        out.stderr
    );
    p.write("a.scn", "timeout 200ms nap\n");
    let out = p
        .lowtouch(&["run", "--scenario", "a.scn"])
        .output()
        .expect_code(1);
    assert!(
        out.stderr
            .contains("in alias `nap`: `sleep` timed out after 200ms"),
        "{}",
        out.stderr
    );
}

#[test]
fn environments_refuse_what_cannot_work() {
    let p = project(
        "components:\n  X:\n    start: ['true']\n    stop: []\n\
         aliases:\n  a:\n    steps: [b]\n  b:\n    steps: [a]\n  s:\n    shell: 'echo #{port}'\n",
    );
    p.write("s.scn", "a\n");
    let out = p.lowtouch(&["check", "s.scn"]).output().expect_code(1);
    assert!(out.stderr.contains("`stop` is empty"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`#{…}` is not filled in inside a `shell:` script"),
        "{}",
        out.stderr
    );
    p.write(
        "environments/local.yaml",
        "aliases:\n  a:\n    steps: [b]\n  b:\n    steps: [a]\n",
    );
    let out = p.lowtouch(&["check", "s.scn"]).output().expect_code(1);
    assert!(
        out.stderr
            .contains("aliases call each other in a cycle: a -> b -> a"),
        "{}",
        out.stderr
    );
}

#[test]
fn builtin_words_made_of_variables_are_read_when_the_step_runs() {
    let p = project("variables: {}\n");
    // Each word passes `check` (only the run knows it) and is wrong once filled in: the
    // step fails as bad input, status 2, before anything is waited for or controlled.
    p.write(
        "statuses.scn",
        "set d echo soon\nset r sleep #{d}\nassert #{r.status} == 2\n\
         set s echo -NOPE\nset k kill #{s} #{d}\nassert #{k.status} == 2\n\
         set p echo '('\nset w wait_for event #{p}\nassert #{w.status} == 2\n",
    );
    p.lowtouch(&["run", "--scenario", "statuses.scn"])
        .output()
        .expect_code(0);
    for (name, scenario, says) in [
        (
            "sleep",
            "set d echo soon\nsleep #{d}\n",
            "sleep.scn:2: `sleep` `soon` is not a duration",
        ),
        (
            "kill",
            "set s echo -NOPE\nkill #{s} #{s}\n",
            "kill.scn:2: `kill` `-NOPE` is not a signal",
        ),
        (
            "pattern",
            "set p echo '('\nwait_for event #{p} timeout 1s\n",
            "pattern.scn:2: `wait_for` bad pattern: regex parse error:",
        ),
        (
            "timeout",
            "set t echo soon\nwait_for event x timeout #{t}\n",
            "timeout.scn:2: `wait_for` `soon` is not a duration",
        ),
    ] {
        let file = format!("{name}.scn");
        p.write(&file, scenario);
        let out = p
            .lowtouch(&["run", "--scenario", &file])
            .output()
            .expect_code(1);
        assert!(out.stderr.contains(says), "{name}: {}", out.stderr);
    }
}

#[test]
fn environment_conditions_are_read_as_wait_for_reads_them() {
    let p = project(
        "components:\n  X:\n    start: ['true']\nconditions:\n\
         \x20 - after: kill X\n    expect: X\n\
         \x20 - after: kill X\n    expect: X UP within 5s\n\
         \x20 - after: kill X\n    expect: X UP timeout soon\n\
         \x20 - before: start X\n    expect: event (\n\
         \x20 - after: stop X\n    expect: Y UP\n\
         \x20 - after: stop X\n    expect: X STOPPED timeout 1s\n",
    );
    p.write("s.scn", "echo hi\n");
    let out = p.lowtouch(&["check", "s.scn"]).output().expect_code(1);
    let usage = "`wait_for` takes `COMPONENT STATE [timeout D]` or `event 'REGEX' [timeout D]`";
    let mut from = 0;
    for (message, place) in [
        (format!("`expect`: {usage}"), "local.yaml:5:17"),
        (format!("`expect`: {usage}"), "local.yaml:8:13"),
        (
            "`expect`: `soon` is not a duration".into(),
            "local.yaml:10:13",
        ),
        (
            "`expect`: bad pattern: regex parse error:".into(),
            "local.yaml:12:13",
        ),
        (
            "condition on `Y`, which is no component here".into(),
            "local.yaml:14:13",
        ),
    ] {
        // In file order: each after the one before.
        let at = from
            + out.stderr[from..]
                .find(&format!("error: {message}"))
                .unwrap_or_else(|| panic!("no `{message}`:\n{}", out.stderr));
        let next = out.stderr[at..].lines().nth(1).unwrap_or_default();
        assert!(next.ends_with(place), "`{message}` at {next}, not {place}");
        from = at + 1;
    }
    assert!(out.stderr.contains("5 problems"), "{}", out.stderr);
}
