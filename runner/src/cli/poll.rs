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
    /// The GitHub repository and commit to post the verdict on.
    github: Option<(crate::watch::repository::GithubRepo, String)>,
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
        if let Some((repo, sha)) = &d.github {
            post_status(cli, &project, &d.pipeline, repo, sha);
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
        let fetched = Mirror::open_or_create(&repo.url, &Mirror::dir_for(&mirrors, &repo.url))
            .and_then(|m| m.fetch().map(|tips| (m, tips)));
        let (mirror, tips) = match fetched {
            Ok(x) => x,
            Err(e) => {
                crate::errln!("{key}: {e} (its stored tips are kept; the next poll retries)");
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
                github: repo.github.clone().map(|g| (g, new.to_string())),
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

/// Posts the newest run's verdict on the commit it tested, when `GITHUB_TOKEN` is set and
/// the verdict is new for that commit and context (GitHub keeps at most 1,000 statuses
/// per commit and context, and a 24/7 loop would reach that). Failures are reported; they
/// never fail the run.
fn post_status(
    cli: &Cli,
    project: &Path,
    pipeline: &str,
    repo: &crate::watch::repository::GithubRepo,
    sha: &str,
) {
    use crate::github::{GitHub, StatusPost, Verdict};
    use crate::store::Status;
    let Some(github) = GitHub::from_env() else {
        return;
    };
    let outcome = (|| -> Result<String, String> {
        let github = github.map_err(|e| e.to_string())?;
        let store = Store::open(&cli.db_path(project)).map_err(|e| e.to_string())?;
        let Some(run) = store.runs(1).map_err(|e| e.to_string())?.into_iter().next() else {
            return Ok("no run to report".into());
        };
        let env = run.environments.first().cloned().unwrap_or_default();
        let context = format!("lowtouch/{pipeline}/{env}");
        let verdict = match run.status {
            Status::Passed => Verdict::Success,
            Status::Failed => Verdict::Failure,
            _ => Verdict::Error,
        };
        if store
            .posted_status(sha, &context)
            .map_err(|e| e.to_string())?
            .as_deref()
            == Some(verdict.as_str())
        {
            return Ok(format!(
                "{context} still {} on {}: not posted again",
                verdict.as_str(),
                &sha[..sha.len().min(12)]
            ));
        }
        let post = StatusPost {
            owner: repo.owner.clone(),
            repo: repo.name.clone(),
            sha: sha.to_string(),
            context: context.clone(),
            verdict,
            description: format!(
                "{} passed, {} failed, {} skipped (run {})",
                run.passed, run.failed, run.skipped, run.id
            ),
        };
        github.post(&post).map_err(|e| e.to_string())?;
        store
            .record_posted_status(sha, &context, verdict.as_str())
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "posted {} to {}/{} {} ({context})",
            verdict.as_str(),
            repo.owner,
            repo.name,
            &sha[..sha.len().min(12)]
        ))
    })();
    match outcome {
        Ok(note) => crate::errln!("github: {note}"),
        Err(e) => crate::errln!("github: {e} (the run is stored; the status was not posted)"),
    }
}

/// A candidate a newer one replaced: stored as a run that was skipped, so history shows it.
fn record_skipped(
    store: &Store,
    p: &Pipeline,
    skipped: &Due,
    winner: &str,
) -> Result<(), CliError> {
    use crate::store::{RunRecord, SCHEMA_VERSION, Status};
    let now = crate::clock::now();
    let revision = skipped.because.rsplit(' ').next().unwrap_or("").to_string();
    let run = RunRecord {
        v: SCHEMA_VERSION,
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
        duration_ms: 0,
        pid: std::process::id(),
        hostname: String::new(),
        overrides: Vec::new(),
        config_commits: Default::default(),
        note: Some(format!("{}: superseded by {winner}", skipped.because)),
        candidate: [(skipped.chosen.0.clone(), skipped.chosen.2.clone())].into(),
    };
    store.begin_run(&run)?;
    store.finish_run(&run)?;
    Ok(())
}
