//! A round: fetch the repositories the pipelines declare, detect new commits, tags and
//! force pushes since the tips last seen (kept in the store), classify each change by
//! the repository's role and the paths it touches, and say what each pipeline must redo
//! — once, with its newest candidate (older ones in the same round are recorded as
//! skipped). `lowtouch poll` runs the due pipelines one after another; `lowtouch serve`
//! hands them to its scheduler.
//!
//! The first time a repository is seen its tips are recorded and nothing runs: old
//! commits are not new. An unreachable repository is reported, backed off, and the
//! others go on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::request::{RunRequest, Trigger};
use super::{App, Error};
use crate::pipeline::Pipeline;
use crate::record::{RunRecord, Status};
use crate::store::Store;
use crate::watch::change::detect;
use crate::watch::classify::{Action, classify};
use crate::watch::mirror::Mirror;

/// What one pipeline has to redo after a round of fetching.
#[derive(Debug, Clone)]
pub struct Due {
    pub pipeline: String,
    /// The pipeline's environment: what the run will occupy.
    pub environment: String,
    pub action: Action,
    /// `repository ref commit` of the change that decided it.
    pub because: String,
    /// The change that decided it.
    pub chosen: Chosen,
    /// The revisions to test: the change's commit, the other repositories' tips.
    pub candidate: Option<crate::watch::Candidate>,
}

/// What a round found: the runs due, and the changes that wait for their environment
/// (paused or locked) with why — found without storing their tips, so the first round
/// after the environment is freed finds them again and runs them.
#[derive(Debug, Default)]
pub struct Round {
    pub due: Vec<Due>,
    pub waiting: Vec<(Due, String)>,
}

/// Which repositories a round fetches: every watched one, or those GitHub said were
/// pushed (`owner/name`, from webhooks) — a push to one repository must not fetch ten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    All,
    Pushed(std::collections::BTreeSet<String>),
}

impl Scope {
    pub fn pushed(repository: &str) -> Scope {
        Scope::Pushed([repository.to_ascii_lowercase()].into())
    }

    /// A round that covers both (rounds asked for meanwhile coalesce into one).
    pub fn with(self, other: Scope) -> Scope {
        match (self, other) {
            (Scope::Pushed(mut a), Scope::Pushed(b)) => {
                a.extend(b);
                Scope::Pushed(a)
            }
            _ => Scope::All,
        }
    }

    /// Whether `repo` is fetched: by its `github:` name, else by its URL's last two parts.
    pub fn covers(&self, repo: &crate::watch::repository::Repository) -> bool {
        let Scope::Pushed(names) = self else {
            return true;
        };
        let by_github = repo
            .github
            .as_ref()
            .map(|g| format!("{}/{}", g.owner, g.name).to_ascii_lowercase());
        let url = repo.url.trim_end_matches('/').to_ascii_lowercase();
        let url = url.strip_suffix(".git").unwrap_or(&url);
        names.iter().any(|n| match &by_github {
            Some(g) => g == n,
            None => url.ends_with(&format!("/{n}")) || url.ends_with(&format!(":{n}")),
        })
    }
}

/// One change of one repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    pub repository: String,
    pub git_ref: String,
    pub commit: String,
}

impl Due {
    /// The run this asks for.
    pub fn request(&self) -> RunRequest {
        RunRequest::pipelines(
            vec![self.pipeline.clone()],
            Trigger::Change {
                candidate: self.candidate.clone().unwrap_or_default(),
                action: self.action,
            },
        )
    }
}

/// Two changes for one pipeline in one round: the stronger wins; at equal strength the
/// later one (the newer candidate). Returns (winner, loser).
pub fn contend(earlier: Due, later: Due) -> (Due, Due) {
    if earlier.action > later.action {
        (earlier, later)
    } else {
        (later, earlier)
    }
}

/// Unreachable remotes are retried with backoff: after the n-th failure in a row a
/// remote is left alone for 5 s × 2ⁿ⁻¹, at most 5 minutes (the other repositories go on
/// meanwhile). An [`App`] keeps one for its life.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: HashMap<String, (u32, Instant)>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(5);
    const MOST: Duration = Duration::from_secs(300);

    /// How long `url` is still left alone at `now`, if it is.
    pub fn wait_left(&self, url: &str, now: Instant) -> Option<Duration> {
        let (_, until) = self.failures.get(url)?;
        let left = until.saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }

    pub fn failed(&mut self, url: &str, now: Instant) {
        let entry = self.failures.entry(url.to_string()).or_insert((0, now));
        entry.0 += 1;
        let wait = Self::FIRST
            .saturating_mul(1 << (entry.0 - 1).min(16))
            .min(Self::MOST);
        entry.1 = now + wait;
    }

    pub fn succeeded(&mut self, url: &str) {
        self.failures.remove(url);
    }
}

impl App {
    /// The pipelines a round looks after: `only` by name, or every one; those without
    /// repositories have nothing to poll.
    pub fn watched_pipelines(&self, only: &[String]) -> Result<Vec<Pipeline>, Error> {
        let mut pipelines = Vec::new();
        for path in Pipeline::discover(self.project().root()) {
            let p = Pipeline::load(&path)?;
            let named = only.is_empty() || only.contains(&p.name);
            if named && !p.repositories.is_empty() {
                pipelines.push(p);
            }
        }
        Ok(pipelines)
    }

    /// Fetch, detect, classify: what each pipeline must redo. Stores the new tips (and
    /// the superseded candidates as skipped runs) unless `dry_run`.
    pub fn plan_round(
        &self,
        pipelines: &[Pipeline],
        dry_run: bool,
        scope: &Scope,
    ) -> Result<Round, Error> {
        let store = self.store()?;
        let mut round = Round::default();
        let covered = pipelines
            .iter()
            .any(|p| p.repositories.iter().any(|r| scope.covers(r)));
        let scope = if covered {
            scope
        } else {
            if let Scope::Pushed(names) = scope {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                crate::errln!(
                    "no watched repository is {} (by `github:` or URL): fetching every one",
                    names.join(", ")
                );
            }
            &Scope::All
        };
        for p in pipelines {
            let hold = store.control(&p.environment)?.hold();
            if let Some(hold) = &hold {
                crate::errln!(
                    "{}: environment {} is {hold}; its changes wait",
                    p.name,
                    p.environment
                );
            }
            // A held pipeline's changes are looked at, not taken: its tips stay as
            // they were, so they are found again once it is free.
            let found = self.poll_pipeline(&store, p, dry_run || hold.is_some(), scope)?;
            match (found, hold) {
                (Some(d), Some(hold)) => {
                    let why = format!("environment {} is {hold}", p.environment);
                    round.waiting.push((d, why));
                }
                (Some(d), None) => round.due.push(d),
                (None, _) => {}
            }
        }
        Ok(round)
    }

    /// Fetches one repository's mirror, through the backoff.
    fn fetch(
        &self,
        repo: &crate::watch::Repository,
    ) -> Result<(Mirror, Vec<crate::watch::change::RefTip>), crate::watch::WatchError> {
        let mirrors = self.project().mirrors();
        let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(left) = backoff.wait_left(&repo.url, Instant::now()) {
            return Err(crate::watch::WatchError::Unreachable {
                url: repo.url.clone(),
                message: format!(
                    "backing off after failures; next try in {}",
                    crate::scenario::duration::human(left)
                ),
            });
        }
        let fetched = Mirror::open_or_create(&repo.url, &Mirror::dir_for(&mirrors, &repo.url))
            .and_then(|m| m.fetch().map(|tips| (m, tips)));
        match &fetched {
            Ok(_) => backoff.succeeded(&repo.url),
            Err(crate::watch::WatchError::Unreachable { .. }) => {
                backoff.failed(&repo.url, Instant::now())
            }
            Err(_) => {}
        }
        fetched
    }

    /// Fetches one pipeline's repositories; returns what it must redo, if anything.
    fn poll_pipeline(
        &self,
        store: &Store,
        p: &Pipeline,
        dry_run: bool,
        scope: &Scope,
    ) -> Result<Option<Due>, Error> {
        if let Some(w) = p.in_maintenance(&chrono::Utc::now()) {
            crate::errln!(
                "{}: in its maintenance window ({} for {}); its changes wait",
                p.name,
                w.start.pattern,
                crate::scenario::duration::human(w.duration)
            );
            return Ok(None);
        }
        let mirrors = self.project().mirrors();
        let mut best: Option<Due> = None;
        let mut listed = std::collections::BTreeMap::new();
        for repo in &p.repositories {
            let key = format!("{}/{}", p.name, repo.name);
            if !scope.covers(repo) {
                // Not pushed: as last fetched, for a candidate of another repository.
                if let Ok(local) =
                    Mirror::open_or_create(&repo.url, &Mirror::dir_for(&mirrors, &repo.url))
                        .and_then(|m| m.local_tips())
                {
                    listed.insert(repo.name.clone(), local);
                }
                continue;
            }
            let (mirror, tips) = match self.fetch(repo) {
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
                .map_err(|e| Error::infra(format!("{key}: {e}")))?;
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
                    .map_err(|e| Error::infra(format!("{key}: {e}")))?;
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
                let due = Due {
                    pipeline: p.name.clone(),
                    environment: p.environment.clone(),
                    action,
                    because: format!(
                        "{} {} {}",
                        repo.name,
                        change.name,
                        &new[..new.len().min(12)]
                    ),
                    chosen: Chosen {
                        repository: repo.name.clone(),
                        git_ref: change.name.clone(),
                        commit: new.to_string(),
                    },
                    candidate: None,
                };
                let Some(earlier) = best.take() else {
                    best = Some(due);
                    continue;
                };
                let (winner, skipped) = contend(earlier, due);
                crate::errln!(
                    "{key}: {} skipped, superseded by {}",
                    skipped.because,
                    winner.because
                );
                if !dry_run {
                    record_skipped(store, p, &skipped, &winner.because)?;
                }
                best = Some(winner);
            }
            if !dry_run {
                let followed = crate::watch::change::followed_tips(&tips, &repo.follow);
                store.replace_tips(&key, &followed)?;
            }
        }
        if let Some(b) = &mut best {
            let c = &b.chosen;
            b.candidate = Some(crate::watch::Candidate::assemble(
                &p.repositories,
                &listed,
                Some((&c.repository, &c.git_ref, &c.commit)),
            ));
        }
        Ok(best)
    }
}

/// A candidate a newer one replaced: stored as a run that was skipped, so history shows it.
fn record_skipped(store: &Store, p: &Pipeline, skipped: &Due, winner: &str) -> Result<(), Error> {
    let mut run = RunRecord::begun(
        &crate::clock::new_run_id(),
        vec![p.name.clone()],
        vec![p.environment.clone()],
        &skipped.chosen.commit[..skipped.chosen.commit.len().min(12)],
    );
    run.finished_at = Some(run.started_at.clone());
    run.status = Status::Skipped;
    run.note = Some(format!("{}: superseded by {winner}", skipped.because));
    run.candidate = [(
        skipped.chosen.repository.clone(),
        skipped.chosen.commit.clone(),
    )]
    .into();
    store.begin_run(&run)?;
    store.finish_run(&run)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(url: &str, github: Option<(&str, &str)>) -> crate::watch::repository::Repository {
        crate::watch::repository::Repository {
            name: "r".into(),
            role: crate::watch::repository::Role::Product,
            url: url.into(),
            follow: Vec::new(),
            paths: Vec::new(),
            github: github.map(|(owner, name)| crate::watch::repository::GithubRepo {
                owner: owner.into(),
                name: name.into(),
            }),
        }
    }

    #[test]
    fn a_push_fetches_the_repository_it_names_and_no_other() {
        let pushed = Scope::pushed("Octo-Org/Exchange");
        // By `github:`, whatever the URL.
        assert!(pushed.covers(&repo("/srv/mirror", Some(("octo-org", "exchange")))));
        assert!(!pushed.covers(&repo(
            "https://github.com/octo-org/exchange",
            Some(("o", "x"))
        )));
        // Else by the URL's last two parts, https or ssh, with or without `.git`.
        assert!(pushed.covers(&repo("https://github.com/octo-org/exchange.git", None)));
        assert!(pushed.covers(&repo("git@github.com:octo-org/exchange", None)));
        assert!(!pushed.covers(&repo("https://github.com/octo-org/exchange-tools", None)));
        assert!(!pushed.covers(&repo("/srv/exchange", None)));
        assert!(Scope::All.covers(&repo("/srv/anything", None)));
        // Coalesced rounds cover both; a full round absorbs any.
        let both = pushed.clone().with(Scope::pushed("o/tools"));
        assert!(both.covers(&repo("https://h/o/tools", None)));
        assert!(both.covers(&repo("https://h/octo-org/exchange", None)));
        assert_eq!(pushed.with(Scope::All), Scope::All);
    }

    fn due(action: Action, commit: &str) -> Due {
        Due {
            pipeline: "p".into(),
            environment: "e".into(),
            action,
            because: format!("r main {commit}"),
            chosen: Chosen {
                repository: "r".into(),
                git_ref: "main".into(),
                commit: commit.into(),
            },
            candidate: None,
        }
    }

    #[test]
    fn the_stronger_change_wins_and_at_equal_strength_the_newer() {
        let (w, l) = contend(
            due(Action::RunPipeline, "a"),
            due(Action::RerunScenarios, "b"),
        );
        assert_eq!(
            (w.chosen.commit.as_str(), l.chosen.commit.as_str()),
            ("a", "b")
        );
        let (w, l) = contend(
            due(Action::RerunScenarios, "a"),
            due(Action::RerunScenarios, "b"),
        );
        assert_eq!(
            (w.chosen.commit.as_str(), l.chosen.commit.as_str()),
            ("b", "a")
        );
        let (w, _) = contend(
            due(Action::RegenerateData, "a"),
            due(Action::RunPipeline, "b"),
        );
        assert_eq!(w.action, Action::RunPipeline);
    }

    #[test]
    fn failures_back_off_and_a_success_forgets_them() {
        let url = "https://backoff.test/r.git";
        let now = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.wait_left(url, now), None);
        b.failed(url, now);
        assert_eq!(b.wait_left(url, now), Some(Backoff::FIRST));
        b.failed(url, now);
        assert_eq!(b.wait_left(url, now), Some(Backoff::FIRST * 2));
        for _ in 0..20 {
            b.failed(url, now);
        }
        assert_eq!(b.wait_left(url, now), Some(Backoff::MOST));
        assert_eq!(b.wait_left(url, now + Backoff::MOST), None);
        b.succeeded(url);
        assert_eq!(b.wait_left(url, now), None);
    }

    #[test]
    fn a_due_change_asks_for_a_run_of_its_pipeline_with_its_candidate() {
        let r = due(Action::RegenerateData, "c").request();
        assert_eq!(
            r.selection,
            super::super::Selection::Pipelines(vec!["p".into()])
        );
        assert!(matches!(
            r.trigger,
            Trigger::Change {
                action: Action::RegenerateData,
                ..
            }
        ));
    }
}
