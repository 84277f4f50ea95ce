//! lowtouch against its overhead targets, as processes, the way a user runs it.
//!
//! `cargo bench -p lowtouch --bench overhead` prints one table:
//!
//! 1. Per step, three ways interleaved in one run (floor, bash, lowtouch, floor, …;
//!    medians of 21 each): 1,000 alias steps running `true`; a bash script making
//!    1,000 `/bin/true` calls; and the floor, 1,000 `posix_spawn` + `waitpid` of
//!    `/bin/true` made by this bench process itself. Target: lowtouch ≤ 1.1× the floor
//!    (so faster than bash, which measures about 1.2×). Also printed: the CPU time
//!    (user + system, children included) of each, which other work on a shared
//!    machine does not inflate the way it inflates wall time.
//! 2. Start-up: `lowtouch run --scenario one.scn` (`echo hi`), store opened and closed,
//!    JUnit written; median wall of 21 runs < 20 ms, peak RSS (per run, from `wait4`)
//!    < 10 MiB.
//! 3. Parsing: `lowtouch check` of a generated 100,000-line scenario, median of 11 runs
//!    < 100 ms (process start-up included).
//!
//! `LOWTOUCH_BENCH_BIN=path` measures another build instead of Cargo's;
//! `LOWTOUCH_BENCH_BEFORE=path` measures an older build beside it in the same rounds
//! (sections 1 and 2), so before and after are compared under one load.
//!
//! Every run uses one temporary project (environments/bench.yaml) and its one store,
//! `.lowtouch/db`, which grows with every run as it does in real use. lowtouch's output
//! goes to /dev/null; every exit status is checked and a failure panics, so a failing
//! run is never timed as a fast one.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary measured: Cargo's, or `LOWTOUCH_BENCH_BIN` (an older build kept aside,
/// so that before and after can be measured by the same bench in one sitting).
fn lowtouch_bin() -> String {
    std::env::var("LOWTOUCH_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lowtouch").into())
}
const ENV: &str = "bench";

const STEPS: usize = 1_000;
const STEP_RUNS: usize = 21;
const STARTUP_RUNS: usize = 21;
const PARSE_LINES: usize = 100_000;
const PARSE_RUNS: usize = 11;

const STEP_RATIO_MAX: f64 = 1.1;
const STARTUP_MAX_MS: f64 = 20.0;
const STARTUP_RSS_MAX_KIB: i64 = 10 * 1024;
const PARSE_MAX_MS: f64 = 100.0;

/// One finished child process: wall time from spawn to reaped, and its peak RSS.
struct Sample {
    wall: Duration,
    max_rss_kib: i64,
    /// User + system CPU of the process and the children it reaped: unlike wall time,
    /// it does not grow when other work on the machine takes the CPUs.
    cpu: Duration,
}

fn cpu_of(usage: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU used so far by this process and by its reaped children.
fn cpu_so_far() -> Duration {
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: a zeroed rusage is a valid value; getrusage fills it in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: usage is valid for writes.
        unsafe { libc::getrusage(who, &mut usage) };
        total += cpu_of(&usage);
    }
    total
}

/// Spawns `program args…` with all of stdin/stdout/stderr on /dev/null, reaps it with
/// `wait4` to get its own rusage, and panics unless it exited 0.
fn measure(project: &Path, program: &str, args: &[&str]) -> Sample {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(project)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: pid is our own unreaped child; status and usage are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = start.elapsed();
    // The child is reaped: dropping the handle does not wait and does not kill.
    drop(child);
    assert_eq!(
        reaped,
        pid,
        "wait4({pid}) failed: {}",
        std::io::Error::last_os_error()
    );
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        // Run it again with the output kept, so the panic says why.
        let out = Command::new(program)
            .args(args)
            .current_dir(project)
            .stdin(Stdio::null())
            .output()
            .ok();
        let (stdout, stderr) = out
            .map(|o| {
                (
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            })
            .unwrap_or_default();
        panic!(
            "`{program} {}` failed (wait status {status:#x}); a benchmark must not time \
             failures.\n--- stdout (rerun) ---\n{stdout}\n--- stderr (rerun) ---\n{stderr}",
            args.join(" ")
        );
    }
    Sample {
        wall,
        max_rss_kib: usage.ru_maxrss,
        cpu: cpu_of(&usage),
    }
}

/// The floor a step runner cannot go below: `STEPS` times `posix_spawn` of `/bin/true`
/// and `waitpid` for it, by this process, one after the other; the wall time of all of
/// them. libc's `posix_spawn` directly, not `std::process::Command`: no file actions, no
/// attributes, no pipes, the environment as it is — the fewest system calls that start a
/// program and wait for it (glibc does it with one `clone(CLONE_VM|CLONE_VFORK)`, the
/// `execve`, and the `wait4`), so everything a runner adds on top (capturing output,
/// a process group, records) is counted as its overhead. `true` inherits this process's
/// stdio and writes nothing.
fn spawn_floor() -> (Duration, Duration) {
    let path = c"/bin/true";
    let argv: [*mut libc::c_char; 2] = [path.as_ptr().cast_mut(), std::ptr::null_mut()];
    unsafe extern "C" {
        static environ: *const *mut libc::c_char;
    }
    let cpu_before = cpu_so_far();
    let start = Instant::now();
    for _ in 0..STEPS {
        let mut pid: libc::pid_t = 0;
        // SAFETY: path and argv are NUL-terminated and outlive the call; null file
        // actions and attributes mean "none"; environ is the process's environment.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr(),
                environ.cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "posix_spawn(/bin/true): {}",
            std::io::Error::from_raw_os_error(rc)
        );
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: pid is our own unreaped child; status is valid for writes.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r == pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::Interrupted,
                "waitpid({pid}): {e}"
            );
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "/bin/true failed (wait status {status:#x})"
        );
    }
    (start.elapsed(), cpu_so_far() - cpu_before)
}

fn lowtouch(project: &Path, args: &[&str]) -> Sample {
    lowtouch_of(&lowtouch_bin(), project, args)
}

fn lowtouch_of(bin: &str, project: &Path, args: &[&str]) -> Sample {
    let dir = project.to_str().expect("UTF-8 temp path");
    let mut full = vec!["-C", dir];
    full.extend_from_slice(args);
    measure(project, bin, &full)
}

/// An older build to measure beside this one in the same rounds
/// (`LOWTOUCH_BENCH_BEFORE=path`): before and after under the same load.
fn before_bin() -> Option<String> {
    std::env::var("LOWTOUCH_BENCH_BEFORE")
        .ok()
        .filter(|s| !s.is_empty())
}

/// `lowtouch run --json` once, untimed, to make sure the scenario really ran `steps`
/// steps and passed (exit 0 alone would not catch a scenario that ran nothing).
fn verify_steps(project: &Path, scenario: &str, steps: usize) {
    let out = Command::new(lowtouch_bin())
        .arg("-C")
        .arg(project)
        .args(["run", "--scenario", scenario, "--env", ENV, "--json"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("cannot start lowtouch");
    let text = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert!(
        out.status.success()
            && result["scenarios"][0]["steps"] == steps
            && result["run"]["status"] == "passed",
        "{scenario}: expected a passed run of {steps} steps, got {}:\n{text}",
        out.status
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// This process's own peak RSS (VmHWM). Not `getrusage(RUSAGE_SELF)`: that one also
/// carries cargo's peak from before cargo exec'd us. A spawned child starts out sharing
/// (posix_spawn) or copying (fork) this memory, and Linux folds that high-water mark into
/// the child's ru_maxrss at exec, so a child cannot read below this figure.
fn self_hwm_kib() -> i64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(-1)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// The project every run uses: one environment with the aliases the scenarios call.
fn write_project(dir: &Path) {
    fs::create_dir_all(dir.join("environments")).unwrap();
    fs::write(
        dir.join("environments").join(format!("{ENV}.yaml")),
        r#"description: lowtouch overhead benchmark
variables:
  host: 127.0.0.1
  port: 8080
aliases:
  t:
    description: run /bin/true, no shell
    run: ["true"]
  probe:
    description: a stand-in for a real probe; only checked, never run here
    run: ["true"]
"#,
    )
    .unwrap();
    let steps: String = "t\n".repeat(STEPS);
    fs::write(dir.join("steps.scn"), steps).unwrap();
    let mut sh = String::from("#!/bin/bash\n");
    sh.push_str(&"/bin/true\n".repeat(STEPS));
    fs::write(dir.join("steps.sh"), sh).unwrap();
    fs::write(dir.join("one.scn"), "echo hi\n").unwrap();
}

/// A 100,000-line scenario of 20-line blocks: comments, quoted arguments, `#{var}`
/// interpolation, `set`, `if … then goto`, labels, `assert` (one with a regex), `echo`,
/// `timeout`, `sleep`, blank lines. Valid against the bench environment. Streamed to
/// disk so the bench process stays small (its memory would otherwise show up in the
/// children's ru_maxrss: posix_spawn's child shares the parent's mm until exec).
fn write_parse_scenario(path: &Path) -> u64 {
    const BLOCK: usize = 20;
    assert_eq!(PARSE_LINES % BLOCK, 0);
    let mut out = BufWriter::new(fs::File::create(path).unwrap());
    let mut block = String::new();
    for i in 0..PARSE_LINES / BLOCK {
        let v = i % 50;
        block.clear();
        writeln!(
            block,
            "# --- block {i}: an order goes through and the book agrees ---"
        )
        .unwrap();
        writeln!(
            block,
            "set status_{v} probe --url \"http://#{{host}}:#{{port}}/orders/{i}\" --id 'ord-{i}'"
        )
        .unwrap();
        writeln!(block, "if #{{status_{v}}} == 'down' then goto recover_{i}").unwrap();
        writeln!(
            block,
            "assert #{{status_{v}}} != \"\" \"probe {i} answered on #{{host}}\""
        )
        .unwrap();
        writeln!(
            block,
            "echo \"block {i}: status #{{status_{v}}} on #{{host}}:#{{port}}\""
        )
        .unwrap();
        writeln!(
            block,
            "t --name \"order {i}\" #{{port}} plain-{i} x=#{{status_{v}}}"
        )
        .unwrap();
        writeln!(
            block,
            "timeout 5s probe --check #{{host}}:#{{port}}   # a trailing comment"
        )
        .unwrap();
        writeln!(
            block,
            "set code_{v} t \"payload=#{{status_{v}}}\" 'literal #{{not_a_var}}'"
        )
        .unwrap();
        writeln!(block, "assert #{{code_{v}.status}} == 0").unwrap();
        if i % 2 == 0 {
            writeln!(
                block,
                "assert #{{status_{v}}} =~ ^[a-z]*$ \"status {i} looks like a word\""
            )
            .unwrap();
        } else {
            writeln!(
                block,
                "assert #{{status_{v}}} != FAIL \"status {i} is not FAIL\""
            )
            .unwrap();
        }
        writeln!(block, "sleep 1ms").unwrap();
        writeln!(block, "goto done_{i}").unwrap();
        writeln!(block, "recover_{i}:").unwrap();
        writeln!(block, "echo \"recovering #{{host}} after #{{status_{v}}}\"").unwrap();
        writeln!(block, "probe --restart 'svc {i}' \"#{{host}}\"").unwrap();
        writeln!(block, "done_{i}:").unwrap();
        writeln!(block, "t").unwrap();
        writeln!(block, "# block {i} done").unwrap();
        writeln!(block).unwrap();
        writeln!(block, "echo done {i}").unwrap();
        debug_assert_eq!(block.lines().count(), BLOCK);
        out.write_all(block.as_bytes()).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    fs::metadata(path).unwrap().len()
}

/// Where `check`'s time goes, in this process, after every child has been measured (it
/// makes this process big, which would otherwise raise the children's RSS floor).
/// Diagnostic only: the target is the process figure above.
struct Breakdown {
    read_ms: f64,
    lex_ms: f64,
    tokens: usize,
    parse_ms: f64,
    drop_ms: f64,
    plan_ms: f64,
    hwm_kib: i64,
}

fn breakdown(project: &Path, scn: &Path) -> Breakdown {
    const REPS: usize = 3;
    let (mut read, mut lex, mut parse, mut drops, mut plan) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut tokens = 0;
    for _ in 0..REPS {
        let t = Instant::now();
        let text = fs::read_to_string(scn).unwrap();
        read.push(ms(t.elapsed()));

        let t = Instant::now();
        let toks = lowtouch::scenario::lexer::lex(&text);
        lex.push(ms(t.elapsed()));
        tokens = toks.len();
        drop(toks);

        let t = Instant::now();
        let parsed = lowtouch::scenario::parse(&text);
        parse.push(ms(t.elapsed()));
        assert!(
            parsed.1.is_empty(),
            "the generated scenario has parse errors"
        );
        let t = Instant::now();
        drop(parsed);
        drops.push(ms(t.elapsed()));

        // What `lowtouch check --env bench big.scn` does: read, parse, load the
        // environment, check; then drop it all.
        let t = Instant::now();
        let pipeline = lowtouch::pipeline::Pipeline::adhoc(scn, ENV).expect("adhoc pipeline");
        let planned = lowtouch::pipeline::Plan::new(pipeline, project, &[], &[]);
        assert!(planned.is_ok(), "the generated scenario has findings");
        drop(planned);
        plan.push(ms(t.elapsed()));
    }
    Breakdown {
        read_ms: median(&read),
        lex_ms: median(&lex),
        tokens,
        parse_ms: median(&parse),
        drop_ms: median(&drops),
        plan_ms: median(&plan),
        hwm_kib: self_hwm_kib(),
    }
}

fn main() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let project: PathBuf = tmp.path().to_path_buf();
    write_project(&project);
    let bash = "bash";

    println!("lowtouch overhead benchmark");
    println!("  binary:  {}", lowtouch_bin());
    println!("  project: {} (environment `{ENV}`)", project.display());

    // Untimed: the scenarios do what we think, and the page cache is warm.
    verify_steps(&project, "steps.scn", STEPS);
    verify_steps(&project, "one.scn", 1);
    measure(&project, bash, &["steps.sh"]);

    // 1. Per step, interleaved: floor, bash, lowtouch, floor, bash, lowtouch…
    let _ = spawn_floor(); // untimed: warms the same paths
    let mut floor_ms = Vec::with_capacity(STEP_RUNS);
    let mut bash_ms = Vec::with_capacity(STEP_RUNS);
    let mut lt_ms = Vec::with_capacity(STEP_RUNS);
    let mut lt_rss: i64 = 0;
    let (mut floor_cpu, mut bash_cpu, mut lt_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let before = before_bin();
    let (mut old_ms, mut old_cpu) = (Vec::new(), Vec::new());
    let steps_args = ["run", "--scenario", "steps.scn", "--env", ENV];
    for _ in 0..STEP_RUNS {
        let (wall, cpu) = spawn_floor();
        floor_ms.push(ms(wall));
        floor_cpu.push(ms(cpu));
        let s = measure(&project, bash, &["steps.sh"]);
        bash_ms.push(ms(s.wall));
        bash_cpu.push(ms(s.cpu));
        let s = lowtouch(&project, &steps_args);
        lt_ms.push(ms(s.wall));
        lt_cpu.push(ms(s.cpu));
        lt_rss = lt_rss.max(s.max_rss_kib);
        if let Some(old) = &before {
            let s = lowtouch_of(old, &project, &steps_args);
            old_ms.push(ms(s.wall));
            old_cpu.push(ms(s.cpu));
        }
    }
    let floor_med = median(&floor_ms);
    let bash_med = median(&bash_ms);
    let lt_med = median(&lt_ms);
    let ratio = lt_med / floor_med;
    let bash_ratio = bash_med / floor_med;
    // The same ratios taken round by round (each run against the floor measured just
    // before it): a check that the medians' ratio is not an accident of the noise.
    let pair_ratios: Vec<f64> = lt_ms.iter().zip(&floor_ms).map(|(l, f)| l / f).collect();
    let pair_ratio_med = median(&pair_ratios);
    let bash_pairs: Vec<f64> = bash_ms.iter().zip(&floor_ms).map(|(b, f)| b / f).collect();

    // 2. Start-up: a one-line scenario, the store (now holding the runs above) opened
    //    and closed, JUnit written.
    let mut st_ms = Vec::with_capacity(STARTUP_RUNS);
    let mut st_rss = Vec::with_capacity(STARTUP_RUNS);
    let mut old_st_rss = Vec::new();
    for _ in 0..STARTUP_RUNS {
        let s = lowtouch(&project, &["run", "--scenario", "one.scn", "--env", ENV]);
        st_ms.push(ms(s.wall));
        st_rss.push(s.max_rss_kib as f64);
        if let Some(old) = &before {
            let s = lowtouch_of(
                old,
                &project,
                &["run", "--scenario", "one.scn", "--env", ENV],
            );
            old_st_rss.push(s.max_rss_kib as f64);
        }
    }
    let st_med = median(&st_ms);
    let rss_max = max(&st_rss) as i64;
    let rss_med = median(&st_rss) as i64;
    let bench_rss = self_hwm_kib();
    let store_bytes = dir_size(&project.join(".lowtouch").join("db"));

    // 3. Parsing and checking 100,000 lines.
    let scn = project.join("big.scn");
    let scn_bytes = write_parse_scenario(&scn);
    lowtouch(&project, &["check", "--env", ENV, "big.scn"]); // untimed: warms the cache
    let mut parse_ms = Vec::with_capacity(PARSE_RUNS);
    let mut parse_rss = Vec::with_capacity(PARSE_RUNS);
    for _ in 0..PARSE_RUNS {
        let s = lowtouch(&project, &["check", "--env", ENV, "big.scn"]);
        parse_ms.push(ms(s.wall));
        parse_rss.push(s.max_rss_kib as f64);
    }
    let parse_med = median(&parse_ms);
    let lines_per_s = PARSE_LINES as f64 / (parse_med / 1e3);
    let bd = breakdown(&project, &scn);

    // Report.
    let per_step = lt_med / STEPS as f64;
    let per_step_net = (lt_med - st_med) / STEPS as f64;
    let bash_per_call = bash_med / STEPS as f64;
    println!();
    let floor_per_spawn = floor_med / STEPS as f64;
    println!(
        "1. per step: {STEP_RUNS} interleaved rounds of {STEPS}: the floor (posix_spawn + waitpid of /bin/true, in this process), bash calling /bin/true, lowtouch (alias `t` -> true, no shell)"
    );
    println!(
        "   floor     median {floor_med:8.1} ms  (min {:.1}, max {:.1})  {floor_per_spawn:.3} ms/spawn",
        min(&floor_ms),
        max(&floor_ms)
    );
    println!(
        "   bash      median {bash_med:8.1} ms  (min {:.1}, max {:.1})  {bash_per_call:.3} ms/call; {bash_ratio:.3}x the floor (per round {:.3}..{:.3})",
        min(&bash_ms),
        max(&bash_ms),
        min(&bash_pairs),
        max(&bash_pairs)
    );
    println!(
        "   lowtouch  median {lt_med:8.1} ms  (min {:.1}, max {:.1})  {per_step:.3} ms/step, {per_step_net:.3} ms/step net of start-up",
        min(&lt_ms),
        max(&lt_ms)
    );
    println!(
        "   lowtouch beyond the spawn: {:.3} ms/step ({:.3} net of start-up); lowtouch - bash: {:.3} ms/step; lowtouch peak RSS max {lt_rss} KiB",
        (lt_med - floor_med) / STEPS as f64,
        (lt_med - st_med - floor_med) / STEPS as f64,
        (lt_med - bash_med) / STEPS as f64
    );
    println!(
        "   lowtouch / floor: ratio of medians {ratio:.3}  (median of per-round ratios {pair_ratio_med:.3}, range {:.3}..{:.3}); lowtouch / bash {:.3}",
        min(&pair_ratios),
        max(&pair_ratios),
        lt_med / bash_med
    );
    let (floor_cpu_med, bash_cpu_med, lt_cpu_med) =
        (median(&floor_cpu), median(&bash_cpu), median(&lt_cpu));
    println!(
        "   CPU (user+sys, children included), medians: floor {floor_cpu_med:.0} ms, bash {bash_cpu_med:.0} ms ({:.3}x), lowtouch {lt_cpu_med:.0} ms ({:.3}x; {:.3} ms/step beyond the floor)",
        bash_cpu_med / floor_cpu_med,
        lt_cpu_med / floor_cpu_med,
        (lt_cpu_med - floor_cpu_med) / STEPS as f64
    );
    if let Some(old) = &before {
        let (old_med, old_cpu_med) = (median(&old_ms), median(&old_cpu));
        println!(
            "   before ({old}): median {old_med:.1} ms, {:.3}x the floor (lowtouch now {ratio:.3}x); CPU {old_cpu_med:.0} ms, {:.3}x the floor's, {:.3} ms/step beyond it",
            old_med / floor_med,
            old_cpu_med / floor_cpu_med,
            (old_cpu_med - floor_cpu_med) / STEPS as f64
        );
        println!(
            "   before, start-up peak RSS: median {} KiB, max {} KiB",
            median(&old_st_rss) as i64,
            max(&old_st_rss) as i64
        );
    }
    println!(
        "2. start-up: {STARTUP_RUNS} runs of one.scn (`echo hi`), store {:.1} MiB after {} runs",
        store_bytes as f64 / 1048576.0,
        2 + STEP_RUNS + STARTUP_RUNS
    );
    println!(
        "   wall median {st_med:.1} ms (min {:.1}, max {:.1}); peak RSS median {rss_med} KiB, max {rss_max} KiB",
        min(&st_ms),
        max(&st_ms)
    );
    println!(
        "   (this bench process's own peak, VmHWM, is {bench_rss} KiB: a child's ru_maxrss cannot read below it)"
    );
    println!(
        "3. parsing: `lowtouch check` of {PARSE_LINES} lines ({:.1} MiB), {PARSE_RUNS} runs, process start-up included",
        scn_bytes as f64 / 1048576.0
    );
    println!(
        "   wall median {parse_med:.1} ms (min {:.1}, max {:.1}); {:.2} M lines/s; peak RSS max {} KiB",
        min(&parse_ms),
        max(&parse_ms),
        lines_per_s / 1e6,
        max(&parse_rss) as i64
    );
    println!(
        "   in-process, for diagnosis: read {:.1} ms, lex {:.1} ms ({} tokens), parse (lex included) {:.1} ms, \
         drop of the AST {:.1} ms; adhoc pipeline + plan + check + drop {:.1} ms; peak {} KiB; \
         size_of Token {} B, Stmt {} B",
        bd.read_ms,
        bd.lex_ms,
        bd.tokens,
        bd.parse_ms,
        bd.drop_ms,
        bd.plan_ms,
        bd.hwm_kib,
        std::mem::size_of::<lowtouch::scenario::token::Token>(),
        std::mem::size_of::<lowtouch::scenario::ast::Stmt>()
    );

    let rows = [
        (
            "1. per step (1,000 x true)".to_string(),
            format!("<= {STEP_RATIO_MAX:.1}x spawn floor"),
            format!(
                "{ratio:.3}x ({lt_med:.0} vs {floor_med:.0} ms; {per_step:.3} ms/step; bash {bash_ratio:.3}x)"
            ),
            verdict(ratio <= STEP_RATIO_MAX),
        ),
        (
            "2a. start-up wall".to_string(),
            format!("< {STARTUP_MAX_MS:.0} ms"),
            format!("{st_med:.1} ms median"),
            verdict(st_med < STARTUP_MAX_MS),
        ),
        (
            "2b. start-up peak RSS".to_string(),
            format!("< {} MiB", STARTUP_RSS_MAX_KIB / 1024),
            format!("{:.1} MiB max ({rss_max} KiB)", rss_max as f64 / 1024.0),
            verdict(rss_max < STARTUP_RSS_MAX_KIB),
        ),
        (
            "3. parse+check 100k lines".to_string(),
            format!("< {PARSE_MAX_MS:.0} ms"),
            format!(
                "{parse_med:.1} ms median ({:.2} M lines/s)",
                lines_per_s / 1e6
            ),
            verdict(parse_med < PARSE_MAX_MS),
        ),
    ];
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap().max(6);
    let w1 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap()
        .max(6);
    let w2 = rows.iter().map(|r| r.2.len()).max().unwrap().max(8);
    println!();
    println!(
        "{:<w0$}  {:<w1$}  {:<w2$}  VERDICT",
        "TARGET", "GOAL", "MEASURED"
    );
    for (target, goal, measured, v) in &rows {
        let pad = w1 - goal.chars().count();
        println!("{target:<w0$}  {goal}{:pad$}  {measured:<w2$}  {v}", "");
    }
    println!();
    println!(
        "total bench time {:.1} s; store {:.1} MiB",
        started.elapsed().as_secs_f64(),
        dir_size(&project.join(".lowtouch").join("db")) as f64 / 1048576.0
    );
}
