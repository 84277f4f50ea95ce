//! The store's side of comparing: a run read back whole, names (`last`, run ids, release
//! names, commits and tags of the project) resolved to runs, the previous release of a
//! run, and a run's metric summaries.
//!
//! A release is a run named with `lowtouch release NAME`, or a run of a commit that a tag
//! matching the release pattern (`v*`) points at in the project's repository. The
//! previous release of a run is the newest release that started before it, on one of its
//! pipelines and one of its environments.

use std::collections::BTreeMap;
use std::path::Path;

use crate::record::{RunRecord, StoredRun};
use crate::store::{Store, StoreError};

/// Why a name names no run.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("`{name}` names no stored run{}", hint(.candidates))]
    NotFound {
        name: String,
        candidates: Vec<String>,
    },
    /// A run named by a listing or a release was pruned meanwhile.
    #[error("run {id} is gone")]
    Gone { id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hint(candidates: &[String]) -> String {
    if candidates.is_empty() {
        "; `lowtouch history` lists the runs, `lowtouch release NAME` names one".into()
    } else {
        format!("; did you mean {}?", candidates.join(", "))
    }
}

/// The release tags' pattern when a pipeline names none.
pub const RELEASE_PATTERN: &str = "v*";

/// A run with its scenarios and their steps.
pub fn load(store: &Store, run_id: &str) -> Result<Option<StoredRun>, StoreError> {
    let Some(run) = store.run(run_id)? else {
        return Ok(None);
    };
    let mut scenarios = Vec::new();
    for sc in store.scenarios(&run.id)? {
        let steps = store.steps(&run.id, sc.index)?;
        scenarios.push((sc, steps));
    }
    let artifacts = store.artifacts(&run.id)?;
    Ok(Some(StoredRun {
        run,
        scenarios,
        artifacts,
    }))
}

/// The project's commits that tags matching `pattern` point at: tag → commit.
fn tagged(project: &Path, pattern: &str) -> Vec<(String, String)> {
    let Ok(repo) = git2::Repository::discover(project) else {
        return Vec::new();
    };
    let Ok(names) = repo.tag_names(Some(pattern)) else {
        return Vec::new();
    };
    names
        .iter()
        .flatten()
        .flatten()
        .filter_map(|tag| {
            let commit = repo
                .revparse_single(&format!("refs/tags/{tag}"))
                .ok()?
                .peel_to_commit()
                .ok()?;
            Some((tag.to_string(), commit.id().to_string()))
        })
        .collect()
}

/// Whether `run` tested `commit` (its project revision, or one of its candidate's).
fn tested(run: &RunRecord, commit: &str) -> bool {
    let rev = run.revision.strip_suffix("-dirty").unwrap_or(&run.revision);
    (commit.len() >= 7 && rev.starts_with(commit))
        || run
            .candidate
            .values()
            .any(|c| commit.len() >= 7 && c.starts_with(commit))
}

/// Every run, newest first.
fn all_runs(store: &Store) -> Result<Vec<RunRecord>, StoreError> {
    store.runs(usize::MAX)
}

/// The run `name` names: `last`; a run id (or a unique beginning of one); a release's
/// name; a commit or tag of the project (its newest run).
pub fn resolve(store: &Store, project: &Path, name: &str) -> Result<RunRecord, ResolveError> {
    // The common names are one read each; the rest need every run.
    if name == "last" {
        return store
            .runs(1)?
            .into_iter()
            .next()
            .ok_or_else(|| ResolveError::NotFound {
                name: name.into(),
                candidates: Vec::new(),
            });
    }
    if let Some(run) = store.run(name)? {
        return Ok(run);
    }
    if let Some(release) = store.release(name)?
        && let Some(run) = store.run(&release.run_id)?
    {
        return Ok(run);
    }
    let runs = all_runs(store)?;
    let prefixed: Vec<&RunRecord> = runs.iter().filter(|r| r.id.starts_with(name)).collect();
    if prefixed.len() == 1 {
        return Ok(prefixed[0].clone());
    }
    if let Ok(repo) = git2::Repository::discover(project)
        && let Ok(object) = repo.revparse_single(name)
        && let Ok(commit) = object.peel_to_commit()
    {
        let sha = commit.id().to_string();
        if let Some(run) = runs.iter().find(|r| tested(r, &sha)) {
            return Ok(run.clone());
        }
    }
    if name.len() >= 7
        && name.chars().all(|c| c.is_ascii_hexdigit())
        && let Some(run) = runs.iter().find(|r| tested(r, name))
    {
        return Ok(run.clone());
    }
    // What it could have meant: names that look alike.
    let mut known: Vec<String> = store.releases()?.into_iter().map(|r| r.name).collect();
    known.extend(tagged(project, "*").into_iter().map(|(t, _)| t));
    known.extend(runs.iter().take(20).map(|r| r.id.clone()));
    known.push("last".into());
    let mut candidates: Vec<(f64, String)> = known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(name, &k), k))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    candidates.dedup_by(|a, b| a.1 == b.1);
    Err(ResolveError::NotFound {
        name: name.into(),
        candidates: prefixed
            .iter()
            .map(|r| r.id.clone())
            .chain(candidates.into_iter().map(|(_, k)| k))
            .take(5)
            .collect(),
    })
}

/// Every run that is a release: named, or of a commit a tag matching `pattern` points at.
pub fn release_runs(
    store: &Store,
    project: &Path,
    pattern: &str,
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    let mut out: std::collections::BTreeSet<String> =
        store.releases()?.into_iter().map(|r| r.run_id).collect();
    let tags = tagged(project, pattern);
    if !tags.is_empty() {
        for r in all_runs(store)? {
            if tags.iter().any(|(_, commit)| tested(&r, commit)) {
                out.insert(r.id);
            }
        }
    }
    Ok(out)
}

/// The newest release that started before `run` on one of its pipelines and
/// environments: its name and run.
pub fn previous_release(
    store: &Store,
    project: &Path,
    run: &RunRecord,
    pattern: &str,
) -> Result<Option<(String, RunRecord)>, StoreError> {
    let shares = |r: &RunRecord| {
        r.pipelines.iter().any(|p| run.pipelines.contains(p))
            && r.environments.iter().any(|e| run.environments.contains(e))
    };
    let before = |r: &RunRecord| r.started_at < run.started_at && r.id != run.id;
    let mut releases: Vec<(String, RunRecord)> = Vec::new();
    for release in store.releases()? {
        if let Some(r) = store.run(&release.run_id)?
            && before(&r)
            && shares(&r)
        {
            releases.push((release.name, r));
        }
    }
    let tags = tagged(project, pattern);
    if !tags.is_empty() {
        // A run of a tagged commit that ran its scenarios to the end (not one skipped
        // as superseded, nor one that crashed).
        let complete = |r: &RunRecord| {
            r.passed + r.failed > 0
                && r.incomplete.is_none()
                && matches!(
                    r.status,
                    crate::record::Status::Passed | crate::record::Status::Failed
                )
        };
        for r in all_runs(store)?
            .into_iter()
            .filter(|r| before(r) && shares(r) && complete(r))
        {
            if let Some((tag, _)) = tags.iter().find(|(_, commit)| tested(&r, commit)) {
                releases.push((tag.clone(), r));
            }
        }
    }
    releases.sort_by(|a, b| b.1.started_at.cmp(&a.1.started_at));
    Ok(releases.into_iter().next())
}

/// A run's time range on the server's timeline (µs): from its start to its end, or on
/// while it runs.
pub fn window(run: &RunRecord) -> (i64, i64) {
    let micros = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.timestamp_micros())
            .ok()
    };
    let from = micros(&run.started_at).unwrap_or(i64::MIN);
    let to = run
        .finished_at
        .as_deref()
        .and_then(micros)
        .unwrap_or(i64::MAX);
    (from, to)
}

/// What the daemons observed on a run's environments in its time range, in time order:
/// every observation, or only the events.
pub fn observed(
    store: &Store,
    run: &RunRecord,
    events_only: bool,
) -> Result<Vec<crate::store::ObservationRecord>, StoreError> {
    let (from, to) = window(run);
    let mut rows = Vec::new();
    for env in &run.environments {
        if events_only {
            rows.extend(store.events(env, from, to)?);
        } else {
            rows.extend(store.observations(env, from, to)?);
        }
    }
    rows.sort_by_key(|o| o.at_us);
    Ok(rows)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The run's key metric summaries from what the daemons observed during it: p50 and p99
/// of every latency (`*_us`, `*_ms`), the peak of `rss_bytes`, the mean `cpu_percent`,
/// all sources of the run's environments together.
pub fn summaries(store: &Store, run: &RunRecord) -> Result<BTreeMap<String, f64>, StoreError> {
    if chrono::DateTime::parse_from_rfc3339(&run.started_at).is_err() {
        return Ok(BTreeMap::new());
    }
    let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for o in observed(store, run, false)? {
        if let Some(v) = o.number {
            series.entry(o.name).or_default().push(v);
        }
    }
    let mut out = BTreeMap::new();
    for (name, mut values) in series {
        values.sort_by(|a, b| a.total_cmp(b));
        if name.ends_with("_us") || name.ends_with("_ms") {
            out.insert(format!("p50 {name}"), percentile(&values, 0.5));
            out.insert(format!("p99 {name}"), percentile(&values, 0.99));
        } else if name == "rss_bytes" {
            out.insert(format!("peak {name}"), *values.last().unwrap_or(&0.0));
        } else if name == "cpu_percent" {
            out.insert(
                format!("mean {name}"),
                values.iter().sum::<f64>() / values.len() as f64,
            );
        }
    }
    Ok(out)
}

/// The comparison of `current` with `baseline`, both read from the store; `masks` are
/// the current run's pipelines' (the plans' own when a run just ended).
pub fn comparison(
    store: &Store,
    masks: &super::Masks,
    baseline: &RunRecord,
    current: &RunRecord,
) -> Result<super::Comparison, ResolveError> {
    let gone = |id: &str| ResolveError::Gone { id: id.to_string() };
    let a = load(store, &baseline.id)?.ok_or_else(|| gone(&baseline.id))?;
    let b = load(store, &current.id)?.ok_or_else(|| gone(&current.id))?;
    let before = summaries(store, baseline)?;
    let after = summaries(store, current)?;
    Ok(super::compare(&a, &b, masks, (&before, &after)))
}

/// The metrics a report plots, per source: latencies, memory, CPU.
fn plotted(name: &str) -> bool {
    name.ends_with("_us") || name.ends_with("_ms") || name == "rss_bytes" || name == "cpu_percent"
}

/// Each plotted metric of `run` over time: (source name) → points (seconds since start).
pub fn series(
    store: &Store,
    run: &RunRecord,
) -> Result<std::collections::BTreeMap<String, Vec<(f64, f64)>>, StoreError> {
    let mut out = std::collections::BTreeMap::new();
    if chrono::DateTime::parse_from_rfc3339(&run.started_at).is_err() {
        return Ok(out);
    }
    let (from, _) = window(run);
    for o in observed(store, run, false)? {
        if let Some(v) = o.number.filter(|_| plotted(&o.name)) {
            out.entry(format!("{} {}", o.source, o.name))
                .or_insert_with(Vec::new)
                .push(((o.at_us - from) as f64 / 1e6, v));
        }
    }
    Ok(out)
}
