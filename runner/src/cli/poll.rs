//! `lowtouch poll`: one round of what `lowtouch serve` will do continuously — fetch the
//! repositories the pipelines declare, detect new commits, tags and force pushes since
//! the tips last seen (kept in the store), classify each change by the repository's role
//! and the paths it touches, and run every pipeline that has something to redo, once,
//! with its newest candidate (older ones in the same round are reported as skipped).
//!
//! The first time a repository is seen its tips are recorded and nothing runs: old
//! commits are not new. An unreachable repository is reported and the others go on.

use std::path::Path;

use clap::Args;

use super::error::exit;
use super::run::{RunArgs, run};
use super::{Cli, CliError};
use crate::pipeline::Pipeline;
use crate::store::Store;
use crate::watch::change::detect;
use crate::watch::classify::{Action, classify};
use crate::watch::mirror::Mirror;

#[derive(Debug, Clone, Args)]
pub struct PollArgs {
    /// Pipelines to poll for [default: every pipeline that declares repositories].
    pub pipelines: Vec<String>,
    /// Report what changed and what would run; run nothing and keep the stored tips.
    #[arg(long)]
    pub dry_run: bool,
}

/// What one pipeline has to redo after a round of fetching.
struct Due {
    pipeline: String,
    action: Action,
    /// `repository ref commit` of the change that decided it.
    because: String,
    /// The change's repository, ref and commit.
    chosen: (String, String, String),
    /// The revisions to test: the change's commit, the other repositories' tips.
    candidate: Option<crate::watch::Candidate>,
}

pub fn poll(cli: &Cli, args: &PollArgs) -> Result<i32, CliError> {
    let project = cli.project()?;
    let watched = Pipeline::discover(&project)
        .iter()
        .filter_map(|path| Pipeline::load(path).ok())
        .any(|p| !p.repositories.is_empty());
    if !watched {
        return Err(CliError::input(
            "no pipeline declares `repositories:` to poll; add some (see README, Watching repositories)",
        ));
    }
    round(cli, &project, &args.pipelines, args.dry_run).map(|r| r.code)
}

/// What a round did.
pub struct Round {
    /// The worst exit code of the runs it started (0 when none).
    pub code: i32,
    /// How many runs it started.
    pub ran: usize,
}

/// One round: fetch, detect, classify, run. `lowtouch serve` calls this on its schedule
/// and whenever a webhook says something was pushed.
pub fn round(cli: &Cli, project: &Path, only: &[String], dry_run: bool) -> Result<Round, CliError> {
    let project = project.to_path_buf();
    let args = PollArgs {
        pipelines: only.to_vec(),
        dry_run,
    };
    let mut pipelines = Vec::new();
    for path in Pipeline::discover(&project) {
        let p = Pipeline::load(&path).map_err(CliError::Findings)?;
        let named = args.pipelines.is_empty() || args.pipelines.contains(&p.name);
        if named && !p.repositories.is_empty() {
            pipelines.push(p);
        }
    }
    let due = {
        let store = Store::open(&cli.db_path(&project))?;
        let mut due = Vec::new();
        for p in &pipelines {
            if let Some(d) = poll_pipeline(&project, &store, p, args.dry_run)? {
                due.push(d);
            }
        }
        due
        // The store closes here: the runs below open it themselves.
    };
    if args.dry_run || due.is_empty() {
        // The console never panics on a closed stdout: `serve` may run with none.
        if due.is_empty() {
            crate::outln!("nothing new to run");
        }
        for d in &due {
            crate::outln!(
                "would run {} ({}): {}",
                d.pipeline,
                d.action.as_str(),
                d.because
            );
        }
        return Ok(Round {
            code: exit::OK,
            ran: 0,
        });
    }
    let mut worst = exit::OK;
    let ran = due.len();
    for d in due {
        crate::errln!(
            "running {} ({}): {}",
            d.pipeline,
            d.action.as_str(),
            d.because
        );
        let mut args = RunArgs::pipelines(vec![d.pipeline.clone()]);
        args.candidate = d.candidate.clone();
        args.action = Some(d.action);
        let code = run(cli, &args)?;
        worst = worst.max(code);
        if let Some(p) = pipelines.iter().find(|p| p.name == d.pipeline) {
            post_verdicts(cli, &project, p);
        }
    }
    Ok(Round { code: worst, ran })
}

/// Fetches one pipeline's repositories; returns what it must redo, if anything. Stores
/// the new tips unless `dry_run`.
fn poll_pipeline(
    project: &Path,
    store: &Store,
    p: &Pipeline,
    dry_run: bool,
) -> Result<Option<Due>, CliError> {
    if let Some(w) = p.in_maintenance(&chrono::Utc::now()) {
        crate::errln!(
            "{}: in its maintenance window ({} for {}); its changes wait",
            p.name,
            w.start.pattern,
            crate::scenario::duration::human(w.duration)
        );
        return Ok(None);
    }
    if let Some(hold) = store.control(&p.environment)?.hold() {
        // Its changes wait: the tips do not move, so they are found once it is free.
        crate::errln!(
            "{}: environment {} is {hold}; its changes wait",
            p.name,
            p.environment
        );
        return Ok(None);
    }
    let mirrors = project.join(".lowtouch").join("mirrors");
    let mut best: Option<Due> = None;
    let mut listed = std::collections::BTreeMap::new();
    for repo in &p.repositories {
        let key = format!("{}/{}", p.name, repo.name);
        let fetched = match backoff::wait_left(&repo.url) {
            Some(left) => Err(crate::watch::WatchError::Unreachable {
                url: repo.url.clone(),
                message: format!(
                    "backing off after failures; next try in {}",
                    crate::scenario::duration::human(left)
                ),
            }),
            None => {
                let fetched =
                    Mirror::open_or_create(&repo.url, &Mirror::dir_for(&mirrors, &repo.url))
                        .and_then(|m| m.fetch().map(|tips| (m, tips)));
                match &fetched {
                    Ok(_) => backoff::succeeded(&repo.url),
                    Err(crate::watch::WatchError::Unreachable { .. }) => backoff::failed(&repo.url),
                    Err(_) => {}
                }
                fetched
            }
        };
        let (mirror, tips) = match fetched {
            Ok(x) => x,
            Err(e) => {
                crate::errln!("{key}: {e} (its stored tips are kept; a later poll retries)");
                // A candidate from another repository tests this one as last fetched.
                if let Ok(local) =
                    Mirror::open_or_create(&repo.url, &Mirror::dir_for(&mirrors, &repo.url))
                        .and_then(|m| m.local_tips())
                {
                    listed.insert(repo.name.clone(), local);
                }
                continue;
            }
        };
        listed.insert(repo.name.clone(), tips.clone());
        let previous = store.tips(&key)?;
        let changes = detect(previous.as_ref(), &tips, &repo.follow, &mirror)
            .map_err(|e| CliError::infra(format!("{key}: {e}")))?;
        if previous.is_none() {
            let followed = crate::watch::change::followed_tips(&tips, &repo.follow);
            crate::errln!(
                "{key}: now watching {} ref{}",
                followed.len(),
                if followed.len() == 1 { "" } else { "s" }
            );
        }
        for change in &changes {
            let Some(new) = change.candidate() else {
                crate::errln!("{key}: {} {}", change.name, change.kind.as_str());
                continue;
            };
            let paths = mirror
                .changed_paths(change.old.as_deref(), new)
                .map_err(|e| CliError::infra(format!("{key}: {e}")))?;
            let action = classify(repo.role, &paths, &repo.paths);
            crate::errln!(
                "{key}: {} {} {} -> {} ({} path{})",
                change.name,
                change.kind.as_str(),
                &new[..new.len().min(12)],
                action.as_str(),
                paths.len(),
                if paths.len() == 1 { "" } else { "s" }
            );
            if action == Action::Nothing {
                continue;
            }
            let because = format!(
                "{} {} {}",
                repo.name,
                change.name,
                &new[..new.len().min(12)]
            );
            let due = Due {
                pipeline: p.name.clone(),
                action,
                because,
                chosen: (repo.name.clone(), change.name.clone(), new.to_string()),
                candidate: None,
            };
            // The strongest change wins; at equal strength the later one (the newer
            // candidate). The other is recorded as skipped.
            let skipped = match best.take() {
                Some(b) if b.action > due.action => {
                    best = Some(b);
                    due
                }
                Some(b) => {
                    best = Some(due);
                    b
                }
                None => {
                    best = Some(due);
                    continue;
                }
            };
            let winner = best.as_ref().map_or("", |b| b.because.as_str());
            crate::errln!("{key}: {} skipped, superseded by {winner}", skipped.because);
            if !dry_run {
                record_skipped(store, p, &skipped, winner)?;
            }
        }
        if !dry_run {
            let followed = crate::watch::change::followed_tips(&tips, &repo.follow);
            store.replace_tips(&key, &followed)?;
        }
    }
    if let Some(b) = &mut best {
        let (name, git_ref, commit) = &b.chosen;
        b.candidate = Some(crate::watch::Candidate::assemble(
            &p.repositories,
            &listed,
            Some((name, git_ref, commit)),
        ));
    }
    Ok(best)
}

/// Posts the verdict of the pipeline's newest run on each commit of its candidate whose
/// repository names a GitHub repository. Used after every run the server starts — a
/// change's, a schedule's, a continuous iteration's: posts happen only when a verdict is
/// new for its commit, so the 24/7 loop does not post on every iteration.
pub fn post_verdicts(cli: &Cli, project: &Path, p: &Pipeline) {
    let targets: Vec<_> = p
        .repositories
        .iter()
        .filter(|r| r.github.is_some())
        .collect();
    if targets.is_empty() {
        return;
    }
    let Ok(store) = Store::open(&cli.db_path(project)) else {
        return;
    };
    let Ok(Some(run)) = store.runs(1).map(|r| r.into_iter().next()) else {
        return;
    };
    drop(store);
    // An interrupted run (Ctrl-C, cancelled, pre-empted) has no verdict to report.
    if !run.pipelines.contains(&p.name) || run.status == crate::record::Status::Interrupted {
        return;
    }
    for repo in targets {
        if let (Some(github), Some(sha)) = (&repo.github, run.candidate.get(&repo.name)) {
            post_status(cli, project, &p.name, github, sha);
        }
    }
}

/// Posts the newest run's verdict on the commit it tested: a commit status when
/// `GITHUB_TOKEN` is set, a check run with a summary when a GitHub App is configured —
/// each only when the verdict is new for that commit and context (GitHub keeps at most
/// 1,000 statuses per commit and context, and a 24/7 loop would reach that). Failures are
/// reported; they never fail the run.
fn post_status(
    cli: &Cli,
    project: &Path,
    pipeline: &str,
    repo: &crate::watch::repository::GithubRepo,
    sha: &str,
) {
    use crate::github::{AppKey, GitHub};
    let token = GitHub::from_env();
    let app = AppKey::from_env();
    if token.is_none() && app.is_none() {
        return;
    }
    let short = &sha[..sha.len().min(12)];
    let store = match Store::open(&cli.db_path(project)) {
        Ok(s) => s,
        Err(e) => {
            crate::errln!("github: {e} (nothing was posted)");
            return;
        }
    };
    let Ok(Some(run)) = store.runs(1).map(|r| r.into_iter().next()) else {
        return;
    };
    let env = run.environments.first().cloned().unwrap_or_default();
    let context = format!("lowtouch/{pipeline}/{env}");
    let verdict = verdict_of(run.status);
    // What was posted last for this commit and context, per kind; posts only a change.
    let unchanged = |key: &str, value: &str| {
        store.posted_status(sha, key).ok().flatten().as_deref() == Some(value)
    };
    if let Some(github) = token {
        let outcome = (|| -> Result<String, String> {
            let github = github.map_err(|e| e.to_string())?;
            if unchanged(&context, verdict.as_str()) {
                return Ok(format!(
                    "{context} still {} on {short}: not posted again",
                    verdict.as_str()
                ));
            }
            github
                .post(&crate::github::StatusPost {
                    owner: repo.owner.clone(),
                    repo: repo.name.clone(),
                    sha: sha.to_string(),
                    context: context.clone(),
                    verdict,
                    description: format!(
                        "{} passed, {} failed, {} skipped (run {})",
                        run.passed, run.failed, run.skipped, run.id
                    ),
                })
                .map_err(|e| e.to_string())?;
            store
                .record_posted_status(sha, &context, verdict.as_str())
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "posted {} to {}/{} {short} ({context})",
                verdict.as_str(),
                repo.owner,
                repo.name
            ))
        })();
        match outcome {
            Ok(note) => crate::errln!("github: {note}"),
            Err(e) => crate::errln!("github: {e} (the run is stored; the status was not posted)"),
        }
    }
    if let Some(app) = app {
        let check_key = format!("check-run {context}");
        let check = check_run(&store, &run, repo, sha, &context);
        let outcome = (|| -> Result<String, String> {
            let app = app.map_err(|e| e.to_string())?;
            if unchanged(&check_key, check.conclusion) {
                return Ok(format!(
                    "check run {context} still {} on {short}: not posted again",
                    check.conclusion
                ));
            }
            let id = crate::github::post_check_run(&app, &check).map_err(|e| e.to_string())?;
            store
                .record_posted_status(sha, &check_key, check.conclusion)
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "check run {id} {} on {}/{} {short} ({context})",
                check.conclusion, repo.owner, repo.name
            ))
        })();
        match outcome {
            Ok(note) => crate::errln!("github: {note}"),
            Err(e) => {
                crate::errln!("github: {e} (the run is stored; the check run was not posted)")
            }
        }
    }
}

fn verdict_of(status: crate::record::Status) -> crate::github::Verdict {
    use crate::github::Verdict;
    use crate::record::Status;
    match status {
        Status::Passed => Verdict::Success,
        Status::Failed => Verdict::Failure,
        _ => Verdict::Error,
    }
}

/// A run as a check run: its conclusion, the counts as the title, and a summary that
/// names each failed scenario with where and why it failed.
fn check_run(
    store: &Store,
    run: &crate::record::RunRecord,
    repo: &crate::watch::repository::GithubRepo,
    sha: &str,
    name: &str,
) -> crate::github::CheckRun {
    use crate::record::{ScenarioKind, Status};
    let conclusion = match run.status {
        Status::Passed => "success",
        Status::Interrupted => "cancelled",
        _ => "failure",
    };
    let mut summary = format!(
        "lowtouch run `{}` of {} on {}: **{} passed, {} failed, {} skipped**",
        run.id,
        run.pipelines.join(", "),
        run.environments.join(", "),
        run.passed,
        run.failed,
        run.skipped
    );
    if run.interrupted > 0 {
        summary.push_str(&format!(", {} interrupted", run.interrupted));
    }
    summary.push_str(&format!(" in {:.1}s.\n", run.duration_ms as f64 / 1000.0));
    let failed: Vec<_> = store
        .scenarios(&run.id)
        .unwrap_or_default()
        .into_iter()
        .filter(|sc| !matches!(sc.status, Status::Passed | Status::Skipped))
        .collect();
    if !failed.is_empty() {
        summary.push_str("\n| scenario | where | why |\n| --- | --- | --- |\n");
        for sc in &failed {
            let what = match sc.kind {
                ScenarioKind::Hook => format!("[{}]", sc.name),
                ScenarioKind::Scenario => sc.name.clone(),
            };
            let at = match sc.failed_line {
                Some(line) => format!("{}:{line}", sc.path),
                None => sc.path.clone(),
            };
            let why = sc
                .reason
                .as_deref()
                .unwrap_or(sc.status.as_str())
                .replace('|', "\\|")
                .replace('\n', " ");
            summary.push_str(&format!("| {what} | `{at}` | {why} |\n"));
        }
    }
    for (name, commit) in &run.candidate {
        summary.push_str(&format!("\ncandidate `{name}`: `{commit}`"));
    }
    for (env, commit) in &run.config_commits {
        summary.push_str(&format!("\nconfig of `{env}`: `{commit}`"));
    }
    crate::github::CheckRun {
        owner: repo.owner.clone(),
        repo: repo.name.clone(),
        sha: sha.to_string(),
        name: name.to_string(),
        conclusion,
        started_at: run.started_at.clone(),
        completed_at: run.finished_at.clone().unwrap_or_else(crate::clock::now),
        title: format!(
            "{} passed, {} failed, {} skipped",
            run.passed, run.failed, run.skipped
        ),
        summary,
    }
}

/// A candidate a newer one replaced: stored as a run that was skipped, so history shows it.
fn record_skipped(
    store: &Store,
    p: &Pipeline,
    skipped: &Due,
    winner: &str,
) -> Result<(), CliError> {
    use crate::record::{RunRecord, Status};
    let now = crate::clock::now();
    let revision = skipped.because.rsplit(' ').next().unwrap_or("").to_string();
    let run = RunRecord {
        id: crate::clock::new_run_id(),
        pipelines: vec![p.name.clone()],
        environments: vec![p.environment.clone()],
        revision,
        started_at: now.clone(),
        finished_at: Some(now),
        status: Status::Skipped,
        passed: 0,
        failed: 0,
        skipped: 0,
        interrupted: 0,
        flaky: 0,
        duration_ms: 0,
        pid: std::process::id(),
        hostname: String::new(),
        overrides: Vec::new(),
        config_commits: Default::default(),
        note: Some(format!("{}: superseded by {winner}", skipped.because)),
        incomplete: None,
        conditions: Default::default(),
        candidate: [(skipped.chosen.0.clone(), skipped.chosen.2.clone())].into(),
    };
    store.begin_run(&run)?;
    store.finish_run(&run)?;
    Ok(())
}

/// Unreachable remotes are retried with backoff: after the n-th failure in a row a
/// remote is left alone for 5 s × 2ⁿ⁻¹, at most 5 minutes (the server's other
/// repositories go on meanwhile). Kept for the life of the process.
mod backoff {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    const FIRST: Duration = Duration::from_secs(5);
    const MOST: Duration = Duration::from_secs(300);

    static FAILURES: Mutex<Option<HashMap<String, (u32, Instant)>>> = Mutex::new(None);

    /// How long `url` is still left alone, if it is.
    pub fn wait_left(url: &str) -> Option<Duration> {
        let map = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
        let (_, until) = map.as_ref()?.get(url)?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    pub fn failed(url: &str) {
        let mut map = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .get_or_insert_with(HashMap::new)
            .entry(url.to_string())
            .or_insert((0, Instant::now()));
        entry.0 += 1;
        let wait = FIRST.saturating_mul(1 << (entry.0 - 1).min(16)).min(MOST);
        entry.1 = Instant::now() + wait;
    }

    pub fn succeeded(url: &str) {
        if let Some(map) = FAILURES.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            map.remove(url);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn failures_back_off_and_a_success_forgets_them() {
            let url = "https://backoff.test/r.git";
            assert_eq!(wait_left(url), None);
            failed(url);
            let first = wait_left(url).unwrap();
            assert!(first <= FIRST && first > FIRST / 2, "{first:?}");
            failed(url);
            assert!(wait_left(url).unwrap() > FIRST);
            for _ in 0..20 {
                failed(url);
            }
            assert!(wait_left(url).unwrap() <= MOST);
            succeeded(url);
            assert_eq!(wait_left(url), None);
        }
    }
}
