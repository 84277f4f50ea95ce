//! Faults of lowtouch's own machine, not of the system under test: they are reported as
//! infrastructure (exit code 3), never as a scenario failing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{LOWTOUCH, Project, log_of, stop, wait_until};

/// A child that goes with the test, whatever assertion fails first.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The scenario verdicts in a server's log (`PASS smoke 10ms`, `FAIL hook before_each …`),
/// without the time each of its lines starts with (`2026-12-04T20:32:05.123Z `).
fn verdicts(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            l.split_once("Z ")
                .filter(|(time, _)| time.len() == 23 && time.as_bytes()[10] == b'T')
                .map_or(l, |(_, rest)| rest)
        })
        .filter(|l| {
            ["PASS ", "FAIL ", "SKIP ", "CRSH "]
                .iter()
                .any(|s| l.starts_with(s))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn a_lowtouch_binary_replaced_under_serve_keeps_working_and_a_removed_one_is_infrastructure() {
    let p = Project::demo();
    p.write(
        "pipelines/soak.yaml",
        "environment: local\ncontinuous: true\n\
         before_each: [start MatchingEnginePrimary, start MatchingEngineBackup]\n\
         after_each: [stop MatchingEngineBackup, stop MatchingEnginePrimary]\n\
         scenarios: [demo/smoke.scn]\n",
    );
    // An installed lowtouch that an upgrade replaces: its own copy.
    let bin = tempfile::tempdir().unwrap();
    let exe = bin.path().join("lowtouch");
    std::fs::copy(LOWTOUCH, &exe).unwrap();
    let mut child = Command::new(&exe)
        .arg("-C")
        .arg(p.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--poll-interval", "1h"])
        .env("NO_COLOR", "1")
        .env("LOWTOUCH_WEBHOOK_SECRET", "faults")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = log_of(&mut child);
    let mut serve = KillOnDrop(Some(child));
    let text = || log.lock().unwrap().clone();
    assert!(
        wait_until(Duration::from_secs(60), || !verdicts(&text()).is_empty()),
        "no run finished:\n{}",
        text()
    );

    // An upgrade: the new file takes the old one's place (a new inode, as cp+mv or a
    // package manager does it).
    let staged = bin.path().join("lowtouch.new");
    std::fs::copy(LOWTOUCH, &staged).unwrap();
    std::fs::rename(&staged, &exe).unwrap();
    let before = verdicts(&text()).len();
    // The run in flight may have rendered its variables before the upgrade; the one
    // after it cannot have.
    assert!(
        wait_until(Duration::from_secs(60), || verdicts(&text()).len()
            >= before + 2),
        "no run after the upgrade:\n{}",
        text()
    );
    let after: Vec<String> = verdicts(&text())[before..].to_vec();
    assert!(
        after.iter().all(|v| v.starts_with("PASS smoke")),
        "runs after the upgrade: {after:?}\n{}",
        text()
    );

    // Removed for good: no run can start its components; that is the machine's fault.
    std::fs::remove_file(&exe).unwrap();
    let before = verdicts(&text()).len();
    let said_before = text().len();
    assert!(
        wait_until(Duration::from_secs(60), || text()[said_before..]
            .contains("was removed while it ran")),
        "the removal was not reported as infrastructure:\n{}",
        text()
    );
    let late: Vec<String> = verdicts(&text())[before..].to_vec();
    assert!(
        late.iter().all(|v| v.starts_with("PASS ")),
        "a removed binary was reported as scenarios failing: {late:?}\n{}",
        text()
    );
    assert_eq!(stop(serve.0.take().unwrap()), Some(130), "{}", text());
    p.assert_nothing_left_running();
}

#[test]
fn crossing_the_stores_disk_reserve_mid_run_stops_it_as_infrastructure_with_the_junit_of_what_it_did()
 {
    let disk = crate::store::SmallDisk::mount("32m");
    let db = disk.dir.path().join("db");
    let db = db.to_str().unwrap();
    let p = Project::empty();
    // Every `big` step stores about 200 kB of output; `mark` says a scenario ran.
    p.write(
        "environments/local.yaml",
        "variables: {}\naliases:\n  big: { shell: 'yes 0123456789abcdef | head -c 200000' }\n  \
         mark: { shell: 'echo \"$1\" >> marks.txt' }\n",
    );
    let mut list = String::new();
    for i in 1..=6 {
        p.write(
            &format!("pipelines/cut/s{i}.scn"),
            &format!("mark s{i}\nbig\nbig\n"),
        );
        list.push_str(&format!("  - cut/s{i}.scn\n"));
    }
    p.write(
        "pipelines/cut.yaml",
        &format!("environment: local\nscenarios:\n{list}"),
    );
    let run = || p.lowtouch(&["--db", db, "run", "cut"]).output();
    run().expect_code(0);
    let previous = p.read("reports/junit.xml");
    std::fs::remove_file(p.path().join("marks.txt")).unwrap();

    // Room for a few scenarios (400 kB each) beyond the reserve.
    disk.fill(lowtouch::store::space::RESERVE + 1_500_000);
    let cut = run();
    disk.empty();
    let cut = cut.expect_code(3);
    assert!(
        cut.stderr
            .contains("no space left on the disk that holds the store"),
        "{}",
        cut.stderr
    );
    // It stopped there: the scenarios after the one the store refused did not run.
    let marks = std::fs::read_to_string(p.path().join("marks.txt"))
        .unwrap_or_else(|_| panic!("no scenario ran:\n{}", cut.stderr));
    assert!(
        marks.lines().count() < 6,
        "the run went on past the full store: {marks}"
    );
    // Its own JUnit, not the previous run's: what ran, and why the rest did not.
    let junit = p.read("reports/junit.xml");
    assert_ne!(
        junit, previous,
        "the previous run's JUnit was left in place"
    );
    let runs: Vec<serde_json::Value> = serde_json::from_str(
        &p.lowtouch(&["--db", db, "history", "--runs", "--json"])
            .output()
            .expect_code(0)
            .stdout,
    )
    .unwrap();
    let cut_id = runs[0]["id"].as_str().unwrap();
    assert!(junit.contains(cut_id), "{junit}");
    assert_eq!(
        junit.matches("<testcase").count(),
        6,
        "every scenario is in the JUnit, run or not: {junit}"
    );
    assert!(junit.contains("s1"), "{junit}");
    assert!(
        junit.contains("<skipped") || junit.contains("<error"),
        "the scenarios the stop cut off say so: {junit}"
    );
}

#[test]
fn gc_frees_space_when_the_store_itself_filled_its_disk_to_the_reserve() {
    let disk = crate::store::SmallDisk::mount("32m");
    let db = disk.dir.path().join("db");
    let db = db.to_str().unwrap();
    let p = Project::empty();
    p.write(
        "environments/local.yaml",
        "variables: {}\naliases:\n  big: { shell: 'yes 0123456789abcdef | head -c 200000' }\n",
    );
    p.write("pipelines/fill/s.scn", &"big\n".repeat(5));
    p.write(
        "pipelines/fill.yaml",
        "environment: local\nscenarios: [fill/s.scn]\n",
    );
    let run = || p.lowtouch(&["--db", db, "run", "fill"]).output();
    // Runs of about 1 MB each until the store refuses for want of space: nothing else is
    // on the disk. (Another exit 3 — the previous run's process still letting go of the
    // store on a loaded machine — is not the refusal this waits for.)
    let filled = (0..60).any(|_| {
        let out = run();
        out.code == 3 && out.stderr.contains("no space left")
    });
    assert!(filled, "the store never reached its disk's reserve");
    let free = || lowtouch::store::space::available(disk.dir.path()).unwrap();
    assert!(free() < lowtouch::store::space::RESERVE);

    let gc = p.lowtouch(&["--db", db, "gc", "--keep", "1"]).output();
    let gc = gc.expect_code(0);
    assert!(gc.stdout.contains("compacted"), "{}", gc.stdout);
    assert!(
        free() > 3 * lowtouch::store::space::RESERVE,
        "gc gave back too little: {} bytes free\n{}",
        free(),
        gc.stdout
    );
    run().expect_code(0);
}
