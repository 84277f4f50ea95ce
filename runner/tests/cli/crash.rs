//! Crashes on purpose: lowtouch killed with SIGKILL at chosen and at random moments, and
//! what the next run must find — no stray component, the store whole, the killed run
//! marked crashed, the next run green.

use std::time::Duration;

use crate::harness::{Project, alive, wait_until};

/// The demo's smoke scenario alone, with the demo's start and stop of both engines.
fn smoke_project() -> Project {
    let p = Project::demo();
    p.write(
        "pipelines/one.yaml",
        "environment: local\n\
         before_each: [start MatchingEnginePrimary, start MatchingEngineBackup]\n\
         after_each: [stop MatchingEngineBackup, stop MatchingEnginePrimary]\n\
         scenarios: [demo/smoke.scn]\n",
    );
    p
}

fn sigkill(pid: u32) {
    // SAFETY: signalling a child this test spawned.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// A component a failed assertion leaves running goes with the test (it leads its group).
struct KillGroupOnDrop(i32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        // SAFETY: signalling a process group this test's lowtouch started.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

#[test]
fn a_kill_right_after_a_component_was_spawned_leaves_nothing_the_next_run_does_not_stop() {
    let p = smoke_project();
    let spawned = p.path().join("spawned.pid");
    let mut run = p
        .lowtouch(&["run", "one"])
        .env("LOWTOUCH_TEST_STALL_AFTER_SPAWN", spawned.to_str().unwrap())
        .spawn();
    let read_pid = || {
        std::fs::read_to_string(&spawned)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
    };
    assert!(
        wait_until(Duration::from_secs(30), || read_pid().is_some()),
        "lowtouch never reached the moment after spawn()"
    );
    let component = read_pid().unwrap();
    let _cleanup = KillGroupOnDrop(component);
    sigkill(run.id());
    run.wait().unwrap();
    assert!(
        alive(component),
        "the component outlives the kill of its parent (what this test is about)"
    );

    let next = p.lowtouch(&["run", "one"]).output();
    assert!(
        !alive(component),
        "the component the killed run started still runs after the next run"
    );
    let next = next.expect_code(0);
    assert!(
        next.stderr.contains("left running by an earlier run"),
        "{}",
        next.stderr
    );
    p.assert_nothing_left_running();
}
