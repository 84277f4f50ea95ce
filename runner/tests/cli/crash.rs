//! Crashes on purpose: lowtouch killed with SIGKILL at chosen and at random moments, and
//! what the next run must find — no stray component, the store whole, the killed run
//! marked crashed, the next run green.

use std::time::Duration;

use lowtouch::record::Status;

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

/// What the campaign kills.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// `lowtouch run`: the demo pipeline, as a new user runs it.
    Run,
    /// `lowtouch serve` running a continuous pipeline of the demo's scenarios.
    Serve,
}

/// splitmix64: a seeded sequence, so a failing campaign can be replayed exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Processes of the demo's components (or anything else) that name the project's
/// directory: the engines' `--config` and the load generator's `--orders` live in it.
fn processes_naming(dir: &std::path::Path) -> Vec<(i32, String)> {
    let me = dir.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline.windows(me.len()).any(|w| w == me) && alive(pid) {
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// The demo's ports, as `Project::demo` chose them.
fn demo_ports(p: &Project) -> Vec<u16> {
    let env = p.read("environments/local.yaml");
    ["primary_port", "backup_port", "replication_port"]
        .iter()
        .map(|key| {
            env.lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key} in the demo environment"))
        })
        .collect()
}

/// What a killed process said before the kill: the runs it started and the scenarios it
/// reported finished, each with the run it belongs to.
#[derive(Default, Debug)]
struct Acknowledged {
    runs: Vec<String>,
    /// (run id, scenario name, PASS or FAIL)
    scenarios: Vec<(String, String, String)>,
}

fn acknowledged(lines: &[String]) -> Acknowledged {
    let mut ack = Acknowledged::default();
    for line in lines {
        // "lowtouch run ID of PIPELINES on ENVIRONMENTS …": printed once the run is stored.
        if let Some(rest) = line.strip_prefix("lowtouch run ")
            && let Some(id) = rest.split_whitespace().next()
        {
            ack.runs.push(id.to_string());
            continue;
        }
        // "PASS name 1.2s": printed once the scenario's record is flushed.
        let mut words = line.split_whitespace();
        if let (Some(status @ ("PASS" | "FAIL")), Some(name)) = (words.next(), words.next())
            && name != "hook"
            && let Some(run) = ack.runs.last()
        {
            ack.scenarios
                .push((run.clone(), name.to_string(), status.to_string()));
        }
    }
    ack
}

/// Kills `lowtouch run` and `lowtouch serve` of the demo at random moments and checks,
/// after each kill: the store opens; every run the killed process reported started is
/// stored, and the one it was in the middle of is marked crashed; every scenario it
/// reported finished is stored with its status and all its steps; the next run passes,
/// and once it is done no process of the demo's components runs and no demo port is held.
///
/// `LOWTOUCH_CRASH_SEED` replays a campaign (the seed is printed at the start and in every
/// failure); `LOWTOUCH_CRASH_ITERATIONS` changes how many kills (default 20).
#[test]
fn a_crash_campaign_of_random_kills_loses_nothing_acknowledged_and_leaves_nothing_running() {
    let seed: u64 = std::env::var("LOWTOUCH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let iterations: u64 = std::env::var("LOWTOUCH_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!("crash campaign: seed {seed} (replay with LOWTOUCH_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let p = smoke_project();
    p.write(
        "pipelines/soak.yaml",
        "environment: local\ncontinuous: true\n\
         before_each: [start MatchingEnginePrimary, start MatchingEngineBackup]\n\
         after_each: [stop_load, stop MatchingEngineBackup, stop MatchingEnginePrimary]\n\
         scenarios: [demo/smoke.scn, demo/failover.scn]\n",
    );
    let ports = demo_ports(&p);
    let db = p.path().join(".lowtouch/db");
    let campaign = std::time::Instant::now();

    for round in 0..iterations {
        let target = if rng.below(3) == 0 {
            Target::Serve
        } else {
            Target::Run
        };
        // Most kills land while the run starts and drives the engines; some later.
        let delay = Duration::from_millis(rng.below(3000));
        let at = format!("seed {seed}, round {round}: {target:?} killed after {delay:?}");
        let mut child = match target {
            Target::Run => p.lowtouch(&["run"]).spawn(),
            Target::Serve => p
                .lowtouch(&["serve", "--listen", "127.0.0.1:0", "--poll-interval", "1h"])
                .env("LOWTOUCH_WEBHOOK_SECRET", "crash-campaign")
                .spawn(),
        };
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // The random moment of the kill is the point of the campaign, not a wait for
        // something to happen.
        std::thread::sleep(delay);
        sigkill(child.id());
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let ack = acknowledged(&lines);
        let said = lines.join("\n");
        eprintln!(
            "{at}: {} run(s) and {} scenario(s) acknowledged",
            ack.runs.len(),
            ack.scenarios.len()
        );

        {
            let store = lowtouch::store::Store::open(&db)
                .unwrap_or_else(|e| panic!("{at}: the store does not open: {e}\n{said}"));
            for id in &store.recovered {
                let run = store.run(id).unwrap().unwrap();
                assert_eq!(run.status, Status::Crashed, "{at}: run {id}");
            }
            for id in &ack.runs {
                let run = store.run(id).unwrap().unwrap_or_else(|| {
                    panic!("{at}: run {id} was reported started but is not stored\n{said}")
                });
                // Either it finished before the kill (its final record is written last),
                // or the kill cut it short and the open marked it.
                assert!(
                    run.status == Status::Crashed
                        || (run.finished_at.is_some() && run.status == Status::Passed),
                    "{at}: run {id} is stored {:?}, neither finished nor marked crashed\n{said}",
                    run.status
                );
            }
            for (run, name, status) in &ack.scenarios {
                let stored = store
                    .scenarios(run)
                    .unwrap_or_else(|e| panic!("{at}: scenarios of {run} do not decode: {e}"));
                let sc = stored
                    .iter()
                    .rev()
                    .find(|s| &s.name == name)
                    .unwrap_or_else(|| {
                        panic!("{at}: scenario {name} of {run} was reported done but is not stored\n{said}")
                    });
                let want = if status == "PASS" {
                    Status::Passed
                } else {
                    Status::Failed
                };
                assert_eq!(sc.status, want, "{at}: {run} {name}");
                let steps = store
                    .steps(run, sc.index)
                    .unwrap_or_else(|e| panic!("{at}: steps of {run} {name} do not decode: {e}"));
                assert_eq!(
                    steps.len() as u64,
                    sc.steps,
                    "{at}: {run} {name}: steps reported done but not stored"
                );
            }
        }

        let next = p.lowtouch(&["run", "one"]).output();
        assert_eq!(
            next.code, 0,
            "{at}: the next run did not pass\n--- killed process said\n{said}\n--- next run\n{}\n{}",
            next.stdout, next.stderr
        );
        let left = processes_naming(p.path());
        assert!(
            left.is_empty(),
            "{at}: still running after the next run: {left:?}\n--- next run\n{}",
            next.stderr
        );
        for port in &ports {
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok(),
                "{at}: port {port} is still held after the next run"
            );
        }
    }
    eprintln!(
        "crash campaign: {iterations} kills in {:.1}s",
        campaign.elapsed().as_secs_f64()
    );
}
