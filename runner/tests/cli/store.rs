//! The store under stress: a second process, Ctrl-C, and SIGKILL in the middle of
//! heavy writes — nothing acknowledged is lost, nothing is corrupted.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lowtouch::record::Status;
use lowtouch::store::Store;

use crate::harness::{Project, history, wait_until};

fn sigint(pid: u32) {
    // SAFETY: signalling a child we spawned.
    unsafe {
        libc::kill(pid as i32, libc::SIGINT);
    }
}

#[test]
fn ctrl_c_stops_the_step_runs_teardown_and_stores_the_run_as_interrupted() {
    let p = Project::demo();
    p.write("pipelines/long.yaml", "environment: local\nbefore_each: [start MatchingEnginePrimary]\nafter_each: [stop MatchingEnginePrimary]\nscenarios: [long/wait.scn, demo/smoke.scn]\n");
    p.write("pipelines/long/wait.scn", "exec_smoke\nsleep 60s\n");
    let mut child = p.lowtouch(&["run", "long"]).spawn();
    let pidfile = p
        .path()
        .join(".lowtouch/envs/local/MatchingEnginePrimary.pid");
    assert!(
        wait_until(Duration::from_secs(20), || pidfile.exists()),
        "the engine never started"
    );
    // While it runs, the store is held: a second process says by whom and exits 3.
    let held = p.lowtouch(&["history"]).output().expect_code(3);
    assert!(
        held.stderr.contains("held by another process: pid"),
        "{}",
        held.stderr
    );
    assert!(
        held.stderr.contains(&child.id().to_string()),
        "{}",
        held.stderr
    );

    std::thread::sleep(Duration::from_millis(200));
    sigint(child.id());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let runs = history(&p);
    assert_eq!(runs[0]["status"], "interrupted");
    assert_eq!(
        runs[0]["skipped"], 1,
        "the scenario after the interrupted one was not run"
    );
    p.assert_nothing_left_running();
    assert!(
        p.read("reports/junit.xml").contains("<error"),
        "interrupted scenario is an error in JUnit"
    );
}

#[test]
fn sigkill_during_heavy_writes_loses_nothing_flushed_and_corrupts_nothing() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    let steps = 40;
    let scenario: String = (0..steps)
        .map(|i| format!("echo step {i} of a scenario with some output to store\n"))
        .collect();
    let mut entries = String::new();
    for i in 0..300 {
        p.write(&format!("pipelines/heavy/s{i:03}.scn"), &scenario);
        entries.push_str(&format!("  - heavy/s{i:03}.scn\n"));
    }
    p.write(
        "pipelines/heavy.yaml",
        &format!("environment: local\nscenarios:\n{entries}"),
    );
    let db = p.path().join(".lowtouch/db");

    for round in 0..8u64 {
        let mut child = p.lowtouch(&["run", "heavy"]).spawn();
        let stderr = child.stderr.take().unwrap();
        let finished = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let finished = finished.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("PASS ") {
                        let name = rest.split_whitespace().next().unwrap_or("").to_string();
                        finished.lock().unwrap().push(name);
                    }
                }
            })
        };
        // Kill at a different moment each round, once some scenarios are done.
        let target = 3 + (round as usize * 7) % 25;
        assert!(
            wait_until(Duration::from_secs(30), || finished.lock().unwrap().len()
                >= target),
            "round {round}: the run made no progress"
        );
        std::thread::sleep(Duration::from_millis(round * 13 % 50));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let acknowledged = finished.lock().unwrap().clone();

        let store = Store::open(&db).expect("the store reopens after SIGKILL");
        assert_eq!(
            store.recovered.len(),
            1,
            "round {round}: the killed run is found unfinished"
        );
        let run = store.run(&store.recovered[0]).unwrap().unwrap();
        assert_eq!(run.status, Status::Crashed);
        let scenarios = store.scenarios(&run.id).expect("scenario records decode");
        // `history` shows what it did, counted from the scenarios it stored.
        assert!(
            run.passed as usize >= acknowledged.len(),
            "round {round}: {} passed shown, {} acknowledged",
            run.passed,
            acknowledged.len()
        );
        assert_eq!(
            (run.passed + run.failed + run.skipped) as usize,
            scenarios.len(),
            "round {round}: every stored scenario counted"
        );
        for name in &acknowledged {
            let sc = scenarios
                .iter()
                .find(|s| &s.name == name)
                .unwrap_or_else(|| {
                    panic!("round {round}: scenario {name} was reported done but is not stored")
                });
            assert_eq!(sc.status, Status::Passed, "round {round}: {name}");
            let recorded = store.steps(&run.id, sc.index).expect("step records decode");
            let seqs: Vec<u64> = recorded.iter().map(|s| s.seq).collect();
            assert_eq!(
                seqs,
                (1..=steps as u64).collect::<Vec<_>>(),
                "round {round}: steps of {name}"
            );
            assert!(
                recorded.iter().all(|s| s.stdout.starts_with("step ")),
                "round {round}: step output intact"
            );
        }
        // Every record of every run, crashed or not, still decodes.
        for r in store.runs(1000).unwrap() {
            for sc in store.scenarios(&r.id).unwrap() {
                store.steps(&r.id, sc.index).unwrap();
            }
        }
        assert_eq!(
            store.runs(1000).unwrap().len(),
            round as usize + 1,
            "round {round}: earlier runs are kept"
        );
    }
}

#[test]
fn cleanup_hooks_finish_after_ctrl_c_and_stop_commands_are_not_cut_short() {
    let p = Project::empty();
    p.write(
        "environments/local.yaml",
        "components:\n  Sleeper:\n    start: [sleep, '300']\n    stop: [sh, -c, 'sleep 0.3; kill $(cut -d\" \" -f1 .lowtouch/envs/local/Sleeper.pid)']\n\
         aliases:\n  mark:\n    shell: 'echo \"$1\" >> marks.txt'\n",
    );
    p.write("wait.scn", "mark scenario\nsleep 60s\n");
    p.write(
        "pipelines/cleanup.yaml",
        "environment: local\nsetup: [mark setup, start Sleeper]\nafter_each: [mark after_each]\n\
         teardown: [mark teardown, stop Sleeper, mark stopped]\nscenarios: [../wait.scn]\n",
    );
    let mut child = p.lowtouch(&["run", "cleanup"]).spawn();
    let marks = p.path().join("marks.txt");
    assert!(wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&marks).is_ok_and(|m| m.contains("scenario"))
    }));
    let sleeper: i32 = p
        .read(".lowtouch/envs/local/Sleeper.pid")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    sigint(child.id());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(
        p.read("marks.txt"),
        "setup\nscenario\nafter_each\nteardown\nstopped\n"
    );
    assert!(
        !crate::harness::alive(sleeper),
        "the component outlived the interrupted run"
    );
}

/// Puts a store an older lowtouch wrote, kept in `tests/cli/fixtures/NAME`, in place of the
/// project's store:
/// - `store-v1`: the lowtouch of 2026-11-25 19:36 (schema 1: one JSON record per metric
///   sample, no events index): one run of the failover and a 2-s load scenario, with what
///   its daemon saw;
/// - `store-v2`: the lowtouch of commit 21ecb06 (schema 2: one sled database): one demo run
///   with what its daemon saw, its artifacts, and release v1.0.0 naming it.
fn store_fixture(p: &Project, name: &str) {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli/fixtures")
        .join(name);
    let to = p.path().join(".lowtouch/db");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// How many records a `--json` listing prints.
fn listed(p: &Project, args: &[&str]) -> usize {
    let out = p.lowtouch(args).output().expect_code(0).stdout;
    serde_json::from_str::<Vec<serde_json::Value>>(&out)
        .unwrap()
        .len()
}

#[test]
fn a_store_of_an_older_schema_is_migrated_when_it_opens() {
    let p = Project::empty();
    store_fixture(&p, "store-v1");
    let first = p
        .lowtouch(&["history", "--runs", "--json"])
        .output()
        .expect_code(0);
    // 1 → 2 (metric samples into chunks) and 2 → 3 (the bulky trees into the detail
    // database).
    assert!(
        first
            .stderr
            .contains("migrated the store from schema 1 to 3: ")
            && first
                .stderr
                .contains("426 metric samples into chunks, 25 events indexed"),
        "{}",
        first.stderr
    );
    let moved = regex::Regex::new(r"(\d+) records moved into \S+/\.lowtouch/db/detail")
        .unwrap()
        .captures(&first.stderr)
        .unwrap_or_else(|| panic!("{}", first.stderr))[1]
        .parse::<usize>()
        .unwrap();
    assert!(moved > 426, "{}", first.stderr);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], "20261125-211156.174-efe2");
    assert_eq!(runs[0]["passed"], 2);
    // Once is enough.
    let again = p.lowtouch(&["history"]).output().expect_code(0);
    assert!(!again.stderr.contains("migrated"), "{}", again.stderr);
    // What the daemon saw reads as before: events through the new index, samples from
    // their chunks.
    let count = |args: &[&str]| listed(&p, args);
    assert_eq!(
        count(&["history", "--run", "last", "--events", "--json"]),
        24
    );
    assert_eq!(
        count(&[
            "history",
            "--run",
            "last",
            "--metrics",
            "internal_latency_us",
            "--json"
        ]),
        394
    );
    assert_eq!(
        count(&[
            "history",
            "--run",
            "last",
            "--metrics",
            "rss_bytes",
            "--json"
        ]),
        6
    );
    // Its scenarios and steps moved too.
    let steps = p
        .lowtouch(&["history", "--run", "last", "--steps", "--json"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(steps.contains("kill"), "{steps}");
    // The migrated store takes the runs of this build.
    p.write(
        "environments/e.yaml",
        "hosts:\n  h: { address: 127.0.0.1 }\n",
    );
    p.write("pipelines/p.yaml", "environment: e\nscenarios: [s.scn]\n");
    p.write("pipelines/s.scn", "echo hi\n");
    p.lowtouch(&["run", "p"]).output().expect_code(0);
    assert_eq!(crate::harness::history(&p).len(), 2);
}

#[test]
fn a_schema_2_store_moves_its_bulk_into_the_detail_and_reads_as_before() {
    let p = Project::demo();
    store_fixture(&p, "store-v2");
    let first = p
        .lowtouch(&["history", "--runs", "--json"])
        .output()
        .expect_code(0);
    assert!(
        first
            .stderr
            .contains("migrated the store from schema 2 to 3: ")
            && first.stderr.contains("records moved into")
            && !first.stderr.contains("into chunks"),
        "{}",
        first.stderr
    );
    let runs: Vec<serde_json::Value> = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], "20261125-234500.089-e561");
    assert_eq!(runs[0]["passed"], 6);
    // Steps, events, samples and artifacts read from the detail as they read before.
    let count = |args: &[&str]| listed(&p, args);
    assert_eq!(
        count(&["history", "--run", "last", "--steps", "--json"]),
        59
    );
    assert_eq!(
        count(&["history", "--run", "last", "--events", "--json"]),
        73
    );
    assert_eq!(
        count(&[
            "history",
            "--run",
            "last",
            "--metrics",
            "rss_bytes",
            "--json"
        ]),
        3
    );
    let artifacts = p
        .lowtouch(&["report", "--run", "last", "--artifacts"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(
        artifacts.contains("logs/local/MatchingEngineBackup.log"),
        "{artifacts}"
    );
    // The release still names it, and compares whole.
    let diff = p
        .lowtouch(&["diff", "v1.0.0", "last"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(diff.contains("6 unchanged"), "{diff}");
    // The catalog keeps no bulky tree; the store takes this build's runs.
    {
        let catalog = sled::open(p.path().join(".lowtouch/db")).unwrap();
        let names: Vec<String> = catalog
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        for moved in ["scenarios", "steps", "artifacts", "observations"] {
            assert!(!names.iter().any(|n| n == moved), "{names:?}");
        }
    }
    p.lowtouch(&["run"]).output().expect_code(0);
    let diff = p
        .lowtouch(&["diff", "--previous"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(diff.contains("against release v1.0.0"), "{diff}");
}

#[test]
fn a_store_of_a_newer_schema_is_refused_and_left_alone() {
    let p = Project::empty();
    store_fixture(&p, "store-v1");
    {
        let db = sled::open(p.path().join(".lowtouch/db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", "99")
            .unwrap();
        db.flush().unwrap();
    }
    let out = p.lowtouch(&["history"]).output();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("has schema version 99, newer than this lowtouch reads (3)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_damaged_store_gets_a_clear_error_and_what_to_do() {
    let p = Project::empty();
    store_fixture(&p, "store-v1");
    let db = p.path().join(".lowtouch/db/db");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in &mut bytes[3000..3256] {
        *b ^= 0xa5;
    }
    std::fs::write(&db, bytes).unwrap();
    let out = p.lowtouch(&["history"]).output();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("is damaged and cannot be read")
            && out.stderr.contains("move it aside to start a new one"),
        "{}",
        out.stderr
    );
    // Moved aside as told, a new store starts and the damaged one is still there.
    std::fs::rename(
        p.path().join(".lowtouch/db"),
        p.path().join(".lowtouch/db.damaged"),
    )
    .unwrap();
    p.lowtouch(&["history"]).output().expect_code(0);
    assert!(p.path().join(".lowtouch/db.damaged/db").exists());
}

/// A small disk: a tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
/// Mounting needs root, as the three-host test's namespaces do; CI runs as root.
pub(crate) struct SmallDisk {
    pub(crate) dir: tempfile::TempDir,
}

impl SmallDisk {
    pub(crate) fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "mounting a small tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    pub(crate) fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Fills it up but for `spare` bytes.
    pub(crate) fn fill(&self, spare: u64) {
        let avail = lowtouch::store::space::available(self.dir.path()).unwrap();
        std::fs::write(
            self.dir.path().join("filler"),
            vec![b'x'; avail.saturating_sub(spare) as usize],
        )
        .unwrap();
    }

    pub(crate) fn empty(&self) {
        std::fs::remove_file(self.dir.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_stops_with_a_clear_error_and_damages_nothing_stored() {
    let disk = SmallDisk::mount("32m");
    let db = disk.dir.path().join("db");
    let db = db.to_str().unwrap();
    let p = Project::empty();
    // Every `big` step stores about 200 kB of output.
    p.write(
        "environments/local.yaml",
        "variables: {}\naliases:\n  big: { shell: 'yes 0123456789abcdef | head -c 200000' }\n",
    );
    p.write("s.scn", &format!("echo hello\n{}", "big\n".repeat(8)));
    let run = |code: i32| {
        p.lowtouch(&["--db", db, "run", "--scenario", "s.scn"])
            .output()
            .expect_code(code)
    };
    let steps_of = |id: &str| {
        listed(
            &p,
            &["--db", db, "history", "--run", id, "--steps", "--json"],
        )
    };
    run(0);
    let first = history_at(&p, db)[0]["id"].as_str().unwrap().to_string();
    assert_eq!(steps_of(&first), 9);

    // A disk with no room at all: the run stops before it starts anything.
    disk.fill(0);
    let full = run(3);
    assert!(
        full.stderr.contains(&format!(
            "no space left on the disk that holds the store {db}"
        )) && full.stderr.contains("free some space"),
        "{}",
        full.stderr
    );
    assert!(!full.stdout.contains("hello"), "{}", full.stdout);
    // Reading goes on while the disk is full.
    let listed = p
        .lowtouch(&["--db", db, "history", "--runs"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(listed.contains(&first), "{listed}");
    assert_eq!(steps_of(&first), 9);

    // Room for part of a run: it runs out mid-way (the store keeps a reserve free: sled
    // cannot come back from a full disk), says so, and is stored as incomplete.
    disk.empty();
    disk.fill(lowtouch::store::space::RESERVE + 600_000);
    let mid = run(3);
    assert!(
        mid.stderr
            .contains("no space left on the disk that holds the store"),
        "{}",
        mid.stderr
    );

    // With room again: what was stored before is whole, the cut-short run says what it is,
    // and the store takes new runs.
    disk.empty();
    disk.resize("64m");
    let runs = history_at(&p, db);
    let before = runs.iter().find(|r| r["id"] == first.as_str()).unwrap();
    assert_eq!(before["status"], "passed");
    assert!(before.get("incomplete").is_none(), "{before:#}");
    assert_eq!(steps_of(&first), 9);
    assert_eq!(runs.len(), 2, "the run the full disk stopped left nothing");
    let cut = &runs[0];
    assert!(
        cut["incomplete"]
            .as_str()
            .is_some_and(|why| why.contains("no space left")),
        "{cut:#}"
    );
    let listed = p
        .lowtouch(&["--db", db, "history", "--runs"])
        .output()
        .expect_code(0)
        .stdout;
    assert!(
        listed.lines().nth(1).unwrap().contains("incomplete"),
        "{listed}"
    );
    // It is no release: a release is what later runs compare with.
    let refused = p
        .lowtouch(&[
            "--db",
            db,
            "release",
            "v1",
            "--run",
            cut["id"].as_str().unwrap(),
        ])
        .output()
        .expect_code(2);
    assert!(
        refused.stderr.contains("is incomplete"),
        "{}",
        refused.stderr
    );
    run(0);
    let newest = history_at(&p, db)[0]["id"].as_str().unwrap().to_string();
    assert_eq!(steps_of(&newest), 9);
    let diff = p
        .lowtouch(&["--db", db, "diff", &first, &newest])
        .output()
        .expect_code(0);
    assert!(diff.stdout.contains("1 unchanged"), "{}", diff.stdout);
}

fn history_at(p: &Project, db: &str) -> Vec<serde_json::Value> {
    let out = p
        .lowtouch(&["--db", db, "history", "--runs", "--json"])
        .output()
        .expect_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}
