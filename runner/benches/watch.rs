//! Watching against its speed targets (issue 4 §6), through the library, the way a
//! server's poll runs it: open the mirror, fetch, compare with the stored tips (one
//! merge-base when a ref moved), diff the paths, classify.
//!
//! `cargo bench -p lowtouch --bench watch` prints one table:
//!
//! 1. A new commit, in a repository of 10 commits and in one of 100,000: median of 21
//!    polls each, after one new commit upstream per poll (made with `git fast-import`,
//!    not timed). Target: the big one costs no more than the small one (ratio ≤ 1.5,
//!    which leaves room for noise; a history walk would make it hundreds of times more).
//! 2. No change: one poll of each of 100 local repositories (10 commits each) that have
//!    nothing new; median total of 11 rounds < 300 ms.
//!
//! Histories are written with `git fast-import` (100,000 commits in a few seconds).
//! Every result is checked (the change was seen, nothing was seen), so a poll that
//! failed is never timed as a fast one.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lowtouch::store::Store;
use lowtouch::watch::{
    Action, ChangeKind, Mirror, PathFilter, RefPattern, Role, classify, detect, followed_tips,
};

const NEW_COMMIT_RUNS: usize = 21;
const SMALL: usize = 10;
const BIG: usize = 100_000;
const RATIO_MAX: f64 = 1.5;
const REPOS: usize = 100;
const NO_CHANGE_ROUNDS: usize = 11;
const NO_CHANGE_MAX_MS: f64 = 300.0;

/// A bare upstream repository whose `main` grows by `fast-import`.
struct Upstream {
    path: PathBuf,
    commits: usize,
}

impl Upstream {
    fn new(path: PathBuf, commits: usize) -> Upstream {
        git(&path, &["init", "-q", "--bare", path.to_str().unwrap()]);
        let mut up = Upstream { path, commits: 0 };
        up.add(commits);
        up
    }

    /// Appends `n` commits to `main`, each changing `src/file.txt` (and every 100th a
    /// second file, so trees are not all alike).
    fn add(&mut self, n: usize) {
        // fast-import knows no existing branch: the first new commit names its parent.
        let mut parent = (self.commits > 0).then(|| self.head());
        let mut stream = Vec::with_capacity(n * 200);
        for _ in 0..n {
            self.commits += 1;
            let i = self.commits;
            let content = format!("version {i}\n");
            writeln!(stream, "commit refs/heads/main").unwrap();
            let when = 1_700_000_000 + i;
            writeln!(
                stream,
                "committer bench <bench@lowtouch.invalid> {when} +0000"
            )
            .unwrap();
            writeln!(stream, "data 0").unwrap();
            if let Some(parent) = parent.take() {
                writeln!(stream, "from {parent}").unwrap();
            }
            writeln!(stream, "M 100644 inline src/file.txt").unwrap();
            writeln!(stream, "data {}\n{content}", content.len()).unwrap();
            if i.is_multiple_of(100) {
                writeln!(stream, "M 100644 inline docs/n{}.txt", i / 100).unwrap();
                writeln!(stream, "data {}\n{content}", content.len()).unwrap();
            }
        }
        let mut child = Command::new("git")
            .args(["fast-import", "--quiet"])
            .current_dir(&self.path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::piped())
            .spawn()
            .expect("git fast-import");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&stream).expect("feed fast-import");
        drop(stdin);
        assert!(child.wait().expect("wait").success(), "fast-import failed");
    }

    fn head(&self) -> String {
        git(&self.path, &["rev-parse", "refs/heads/main"])
    }

    fn url(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(if dir.exists() { dir } else { Path::new("/") })
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One server poll of one repository; returns the actions its changes ask for and the
/// time spent fetching (open + fetch) and deciding (tips, detect, diff, classify, store).
fn poll(
    store: &Store,
    key: &str,
    url: &str,
    mirrors: &Path,
) -> (Vec<(ChangeKind, Action)>, Duration, Duration) {
    let follow = [RefPattern::parse("main").unwrap()];
    let filters = [PathFilter::parse("src/**").unwrap()];
    let start = Instant::now();
    let mirror = Mirror::open_or_create(url, &Mirror::dir_for(mirrors, url)).expect("mirror");
    let refs = mirror.fetch().expect("fetch");
    let fetched = start.elapsed();
    let previous = store.tips(key).expect("tips");
    let changes = detect(previous.as_ref(), &refs, &follow, &mirror).expect("detect");
    let mut out = Vec::new();
    for change in &changes {
        if let Some(new) = change.candidate() {
            let paths = mirror
                .changed_paths(change.old.as_deref(), new)
                .expect("paths");
            out.push((change.kind, classify(Role::Product, &paths, &filters)));
        }
    }
    store
        .replace_tips(key, &followed_tips(&refs, &follow))
        .expect("store tips");
    (out, fetched, start.elapsed() - fetched)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

/// Median milliseconds of polls that each find exactly one new commit: the whole poll,
/// its fetch, and the rest.
fn new_commit(root: &Path, store: &Store, commits: usize) -> (f64, f64, f64) {
    let mut up = Upstream::new(root.join(format!("up-{commits}")), commits);
    let mirrors = root.join("mirrors");
    let key = format!("bench/{commits}");
    assert!(
        poll(store, &key, up.url(), &mirrors).0.is_empty(),
        "first sight"
    );
    let (mut times, mut fetches, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..NEW_COMMIT_RUNS {
        up.add(1);
        let (actions, fetch, decide) = poll(store, &key, up.url(), &mirrors);
        times.push(fetch + decide);
        fetches.push(fetch);
        rest.push(decide);
        assert_eq!(actions, vec![(ChangeKind::Advanced, Action::RunPipeline)]);
        let tips = store.tips(&key).unwrap().unwrap_or_default();
        assert_eq!(tips.get("refs/heads/main"), Some(&up.head()));
    }
    (median(times), median(fetches), median(rest))
}

fn no_change(root: &Path, store: &Store) -> f64 {
    let mirrors = root.join("mirrors");
    let ups: Vec<Upstream> = (0..REPOS)
        .map(|i| Upstream::new(root.join(format!("many-{i}")), SMALL))
        .collect();
    for (i, up) in ups.iter().enumerate() {
        poll(store, &format!("many/{i}"), up.url(), &mirrors);
    }
    let mut times = Vec::new();
    for _ in 0..NO_CHANGE_ROUNDS {
        let start = Instant::now();
        for (i, up) in ups.iter().enumerate() {
            assert!(
                poll(store, &format!("many/{i}"), up.url(), &mirrors)
                    .0
                    .is_empty()
            );
        }
        times.push(start.elapsed());
    }
    median(times)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that is not ours skips this harness.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !args.is_empty() && !args.iter().any(|a| "watch".contains(a.as_str())) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("db")).expect("store");

    let start = Instant::now();
    let small = new_commit(dir.path(), &store, SMALL);
    let big = new_commit(dir.path(), &store, BIG);
    let setup_and_new = start.elapsed();
    let none = no_change(dir.path(), &store);

    let ((small, small_fetch, small_rest), (big, big_fetch, big_rest)) = (small, big);
    let ratio = big / small;
    println!(
        "watch (issue 4 §6), medians; setup of both histories included in {setup_and_new:.1?}"
    );
    println!("| measurement | result | target |");
    println!("| --- | --- | --- |");
    println!(
        "| new commit, {SMALL} commits | {small:.2} ms (fetch {small_fetch:.2}, detect+diff+store {small_rest:.2}) | — |"
    );
    println!(
        "| new commit, {BIG} commits | {big:.2} ms (fetch {big_fetch:.2}, detect+diff+store {big_rest:.2}) | ratio ≤ {RATIO_MAX} |"
    );
    println!(
        "| ratio | {ratio:.2} | {} |",
        if ratio <= RATIO_MAX { "ok" } else { "MISSED" }
    );
    println!(
        "| no change, {REPOS} repositories | {none:.1} ms | < {NO_CHANGE_MAX_MS} ms: {} |",
        if none < NO_CHANGE_MAX_MS {
            "ok"
        } else {
            "MISSED"
        }
    );
}
