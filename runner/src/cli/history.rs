//! `lowtouch history`: stored candidates (or runs, `--runs`), newest first; one run's
//! events, metrics and steps; flaky scenarios.

use std::time::Duration;

use clap::Args;

use std::collections::BTreeMap;

use crate::app::{App, Error};
use crate::compare::candidates::{self, Candidate, Stretch};
use crate::record::{RunRecord, Status};
use crate::report::terminal::Style;
use crate::scenario::duration::human;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// How many candidates (runs, with `--runs`) to show.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    /// One line per run instead of one per candidate (a candidate's consecutive runs on
    /// one pipeline and environment are one line).
    #[arg(long)]
    pub runs: bool,
    /// Only runs of this revision (a commit id, `<sha>-dirty`, `unversioned-…`).
    #[arg(long)]
    pub revision: Option<String>,
    /// Only runs of this pipeline.
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Only runs on this environment.
    #[arg(long = "env", value_name = "NAME")]
    pub environment: Option<String>,
    /// Only runs under this condition, `KEY=VALUE` (repeatable, all must hold): `load.ENV.VAR`,
    /// `test_data.ENV`, `config.ENV`, `host.cores`, `host.kernel`, `hosts.ENV/DAEMON.cores`…
    /// A commit or hash matches by a prefix of 7 or more characters.
    #[arg(long = "condition", value_name = "KEY=VALUE")]
    pub conditions: Vec<String>,
    /// Print the candidates (the runs, with `--runs`) as JSON.
    #[arg(long)]
    pub json: bool,
    /// One run (`last`: the newest), for `--events` and `--metrics`.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// The run's events, as the daemons saw them, on the server's timeline.
    #[arg(long, requires = "run")]
    pub events: bool,
    /// The run's samples of one metric (`internal_latency_us`, `rss_bytes`…).
    #[arg(long, value_name = "NAME", requires = "run")]
    pub metrics: Option<String>,
    /// The run's steps, each with what the daemons saw around it: events during it and
    /// the metrics that changed from just before to just after.
    #[arg(long, requires = "run", conflicts_with_all = ["events", "metrics"])]
    pub steps: bool,
    /// Scenarios whose outcome flips across the recent runs (`--limit`) of one candidate
    /// (revision, candidate commits, pipelines and environments), or that passed only on
    /// a retry.
    #[arg(long, conflicts_with_all = ["run", "json"])]
    pub flaky: bool,
}

pub fn history(app: &App, args: &HistoryArgs) -> Result<i32, Error> {
    let store = app.store()?;
    if let Some(id) = &args.run {
        return observations(&store, id, args);
    }
    let wanted = parse_conditions(&args.conditions)?;
    let matching = |r: &RunRecord| {
        args.pipeline
            .as_ref()
            .is_none_or(|p| r.pipelines.contains(p))
            && args
                .environment
                .as_ref()
                .is_none_or(|e| r.environments.contains(e))
            && holds(&wanted, r)
    };
    // Newest first, filtered, read as needed.
    let runs: Box<dyn Iterator<Item = Result<RunRecord, StoreError>>> = match &args.revision {
        Some(rev) => {
            let ids = store.runs_for_revision(rev)?;
            let store = store.share();
            Box::new(
                ids.into_iter()
                    .rev()
                    .filter_map(move |id| store.run(&id).transpose()),
            )
        }
        None => Box::new(store.runs_newest_first()),
    };
    let runs = runs.filter(|r| r.as_ref().map_or(true, &matching));
    if args.flaky {
        let runs: Vec<RunRecord> = runs.take(args.limit).collect::<Result<_, _>>()?;
        return flaky(&store, &runs);
    }
    let releases: BTreeMap<String, String> = store
        .releases()?
        .into_iter()
        .map(|r| (r.run_id, r.name))
        .collect();
    let style = Style::detect(crate::console::is_terminal(crate::console::Stream::Out));
    let shown = if args.runs {
        let runs: Vec<RunRecord> = runs.take(args.limit).collect::<Result<_, _>>()?;
        if args.json {
            print_json(&runs)?;
        } else if !runs.is_empty() {
            print_runs(&runs, &releases, &style);
        }
        runs.len()
    } else {
        let stretches = candidates::stretches(runs, args.limit)?;
        if args.json {
            let rows: Vec<CandidateRow> = stretches
                .iter()
                .map(|s| CandidateRow::of(s, &releases))
                .collect();
            print_json(&rows)?;
        } else if !stretches.is_empty() {
            print_candidates(&stretches, &releases, &style);
        }
        stretches.len()
    };
    if shown == 0 && !args.json {
        if !wanted.is_empty() {
            // Say which keys there are: the newest run's.
            let keys: Vec<String> = store
                .runs(1)?
                .first()
                .map(|r| r.condition_pairs().into_keys().collect())
                .unwrap_or_default();
            crate::errln!(
                "no runs match in {}; the newest run's conditions are: {}",
                store.path().display(),
                keys.join(", ")
            );
        } else if args.pipeline.is_some() || args.environment.is_some() || args.revision.is_some() {
            crate::errln!("no runs match in {}", store.path().display());
        } else {
            crate::errln!(
                "no runs stored in {} yet; start one with `lowtouch run`",
                store.path().display()
            );
        }
    }
    Ok(0)
}

/// `--condition KEY=VALUE` arguments, checked.
fn parse_conditions(given: &[String]) -> Result<Vec<(String, String)>, Error> {
    given
        .iter()
        .map(|c| match c.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Error::input(format!(
                "--condition `{c}`: expected KEY=VALUE, for example --condition load.local.load_rate=200"
            ))),
        })
        .collect()
}

/// Whether the run ran under every wanted condition.
fn holds(wanted: &[(String, String)], run: &RunRecord) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let have = run.condition_pairs();
    wanted.iter().all(|(k, v)| {
        have.get(k).is_some_and(|h| {
            h == v
                || (v.len() >= 7
                    && h.len() >= 40
                    && h.chars().all(|c| c.is_ascii_hexdigit())
                    && h.starts_with(v.as_str()))
        })
    })
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::infra(e.to_string()))?;
    crate::outln!("{text}");
    Ok(())
}

/// One candidate's stretch, as `history --json` gives it.
#[derive(serde::Serialize)]
struct CandidateRow<'a> {
    #[serde(flatten)]
    candidate: &'a Candidate,
    pipelines: &'a [String],
    environments: &'a [String],
    /// The newest run's status.
    verdict: Status,
    /// Why the store lacks some of the newest run's records, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete: Option<&'a str>,
    /// The stretch's runs, newest first.
    runs: Vec<&'a str>,
    /// How many of them passed and failed (crashed and interrupted count as failed).
    runs_passed: usize,
    runs_failed: usize,
    first_started_at: &'a str,
    last_started_at: &'a str,
    /// The newest run's scenario counts and duration.
    passed: u32,
    failed: u32,
    skipped: u32,
    flaky: u32,
    duration_ms: u64,
    /// The release names of its runs.
    releases: Vec<&'a str>,
}

impl<'a> CandidateRow<'a> {
    fn of(s: &'a Stretch, releases: &'a BTreeMap<String, String>) -> CandidateRow<'a> {
        let newest = s.newest();
        let oldest = s.runs.last().unwrap_or(newest);
        let finished = |st: Status| s.runs.iter().filter(|r| r.status == st).count();
        CandidateRow {
            candidate: &s.candidate,
            pipelines: &newest.pipelines,
            environments: &newest.environments,
            verdict: newest.status,
            incomplete: newest.incomplete.as_deref(),
            runs: s.runs.iter().map(|r| r.id.as_str()).collect(),
            runs_passed: finished(Status::Passed),
            runs_failed: s
                .runs
                .iter()
                .filter(|r| {
                    matches!(
                        r.status,
                        Status::Failed | Status::Crashed | Status::Interrupted
                    )
                })
                .count(),
            first_started_at: &oldest.started_at,
            last_started_at: &newest.started_at,
            passed: newest.passed,
            failed: newest.failed,
            skipped: newest.skipped,
            flaky: newest.flaky,
            duration_ms: newest.duration_ms,
            releases: s
                .runs
                .iter()
                .filter_map(|r| releases.get(&r.id).map(String::as_str))
                .collect(),
        }
    }
}

fn colored_status(style: &Style, run: &RunRecord) -> String {
    let s = run.shown_status();
    match run.status {
        _ if run.incomplete.is_some() => style.yellow(&format!("{s:<11}")),
        Status::Passed => style.green(&format!("{s:<11}")),
        Status::Failed | Status::Crashed => style.red(&format!("{s:<11}")),
        _ => style.yellow(&format!("{s:<11}")),
    }
}

/// A revision short enough for a table: 12 hex digits, `-dirty` kept.
fn short_revision(revision: &str) -> String {
    if let Some(hash) = revision.strip_prefix("unversioned-") {
        format!("unversioned-{}", &hash[..hash.len().min(8)])
    } else if revision.len() > 20 {
        let dirty = if revision.ends_with("-dirty") {
            "-dirty"
        } else {
            ""
        };
        format!("{}{dirty}", &revision[..12])
    } else {
        revision.to_string()
    }
}

/// The candidate's revisions on one line: the project's, each repository's, each config
/// commit.
fn revisions(c: &Candidate) -> String {
    let short = |c: &str| c[..c.len().min(12)].to_string();
    let mut out = short_revision(&c.revision);
    for (repo, commit) in &c.candidate {
        out.push_str(&format!(" {repo}@{}", short(commit)));
    }
    for (env, commit) in &c.config_commits {
        out.push_str(&format!(" config:{env}@{}", &commit[..commit.len().min(8)]));
    }
    out
}

fn print_candidates(stretches: &[Stretch], releases: &BTreeMap<String, String>, style: &Style) {
    crate::outln!(
        "{:<26} {:<11} {:>7} {:>6} {:>6} {:>6} {:>8}  {:<18} REVISIONS",
        "NEWEST RUN",
        "VERDICT",
        "RUNS OK",
        "PASS",
        "FAIL",
        "SKIP",
        "TIME",
        "PIPELINES"
    );
    for s in stretches {
        let row = CandidateRow::of(s, releases);
        let newest = s.newest();
        let runs = format!("{}/{}", row.runs_passed, s.runs.len());
        let released = match row.releases.as_slice() {
            [] => String::new(),
            names => format!("  release {}", names.join(", ")),
        };
        crate::outln!(
            "{:<26} {} {runs:>7} {:>6} {:>6} {:>6} {:>8}  {:<18} {}{released}",
            newest.id,
            colored_status(style, newest),
            newest.passed,
            newest.failed,
            newest.skipped,
            human(Duration::from_millis(newest.duration_ms)),
            format!(
                "{}@{}",
                newest.pipelines.join(","),
                newest.environments.join(",")
            ),
            revisions(&s.candidate),
        );
    }
}

fn print_runs(runs: &[RunRecord], releases: &BTreeMap<String, String>, style: &Style) {
    crate::outln!(
        "{:<26} {:<11} {:<20} {:<18} {:>6} {:>6} {:>6} {:>8}  {:<25} RELEASE",
        "RUN",
        "STATUS",
        "REVISION",
        "PIPELINES",
        "PASS",
        "FAIL",
        "SKIP",
        "TIME",
        "STARTED"
    );
    for run in runs {
        crate::outln!(
            "{:<26} {} {:<20} {:<18} {:>6} {:>6} {:>6} {:>8}  {:<25} {}",
            run.id,
            colored_status(style, run),
            short_revision(&run.revision),
            run.pipelines.join(","),
            run.passed,
            run.failed,
            run.skipped,
            human(Duration::from_millis(run.duration_ms)),
            run.started_at,
            releases.get(&run.id).map_or("", String::as_str)
        );
    }
}

/// `history --run ID --events` / `--metrics NAME`: what the daemons observed while the
/// run ran, on its environments.
fn observations(store: &Store, id: &str, args: &HistoryArgs) -> Result<i32, Error> {
    let run = if id == "last" {
        store.runs(1)?.into_iter().next()
    } else {
        store.run(id)?
    };
    let Some(run) = run else {
        return Err(Error::input(format!(
            "no run `{id}`; `lowtouch history` lists them"
        )));
    };
    if args.steps {
        return steps(store, &run, args.json);
    }
    let at = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.timestamp_micros())
            .ok()
    };
    let from = at(&run.started_at).unwrap_or(i64::MIN);
    let to = run.finished_at.as_deref().and_then(at).unwrap_or(i64::MAX);
    let mut rows = Vec::new();
    for env in &run.environments {
        if args.metrics.is_none() && args.events {
            rows.extend(store.events(env, from, to)?);
        } else {
            rows.extend(store.observations(env, from, to)?);
        }
    }
    rows.sort_by_key(|o| o.at_us);
    rows.retain(|o| match &args.metrics {
        Some(name) => o.kind == "metric" && &o.name == name,
        None => !args.events || o.kind == "event",
    });
    if args.json {
        let text = serde_json::to_string_pretty(&rows).map_err(|e| Error::infra(e.to_string()))?;
        crate::outln!("{text}");
        return Ok(0);
    }
    if rows.is_empty() {
        crate::errln!(
            "run {} has no {} stored (daemons report them through `lowtouch serve`'s router)",
            run.id,
            match &args.metrics {
                Some(m) => format!("samples of `{m}`"),
                None => "events".to_string(),
            }
        );
        return Ok(0);
    }
    crate::outln!(
        "{:<27} {:>9} {:<12} {:<24} {:<22} VALUE",
        "TIME",
        "+S",
        "DAEMON",
        "SOURCE",
        "NAME"
    );
    for o in &rows {
        let time = chrono::DateTime::from_timestamp_micros(o.at_us)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            .unwrap_or_default();
        let since = (o.at_us - from) as f64 / 1e6;
        let value = match (&o.text, o.number) {
            (Some(t), _) => t.clone(),
            (None, Some(n)) => format!("{n}"),
            _ => String::new(),
        };
        crate::outln!(
            "{time:<27} {since:>9.3} {:<12} {:<24} {:<22} {value}",
            o.daemon,
            o.source,
            o.name
        );
    }
    Ok(0)
}

/// `history --run ID --steps`: every step of the run with the system around it.
fn steps(store: &Store, run: &crate::record::RunRecord, json: bool) -> Result<i32, Error> {
    let mut all = Vec::new();
    for sc in store.scenarios(&run.id)? {
        for step in store.steps(&run.id, sc.index)? {
            all.push((sc.name.clone(), step));
        }
    }
    if json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|(scenario, step)| {
                let mut v = serde_json::to_value(step).unwrap_or_default();
                v["scenario"] = serde_json::Value::String(scenario.clone());
                v
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).map_err(|e| Error::infra(e.to_string()))?;
        crate::outln!("{text}");
        return Ok(0);
    }
    for (scenario, step) in &all {
        let line = std::iter::once(step.command.as_str())
            .chain(step.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let phase = step
            .phase
            .as_deref()
            .map_or(String::new(), |p| format!(" [{p}]"));
        crate::outln!(
            "{scenario} #{}{phase} {line}: {} in {}",
            step.seq,
            if step.status == 0 {
                "ok".to_string()
            } else {
                format!("status {}", step.status)
            },
            human(Duration::from_micros(step.duration_us))
        );
        let Some(around) = &step.around else { continue };
        for e in &around.events {
            crate::outln!(
                "    event  {} {} {} ({})",
                e.source,
                e.name,
                e.text,
                e.daemon
            );
        }
        for (before, after) in changed(&around.before, &around.after) {
            crate::outln!(
                "    metric {} {}: {} -> {}",
                after.source,
                after.name,
                before.map_or("-".to_string(), |b| format!("{}", b.value)),
                after.value
            );
        }
    }
    Ok(0)
}

/// The metrics whose value differs from before to after (or that appeared).
fn changed<'a>(
    before: &'a [crate::record::Sample],
    after: &'a [crate::record::Sample],
) -> Vec<(Option<&'a crate::record::Sample>, &'a crate::record::Sample)> {
    after
        .iter()
        .filter_map(|a| {
            let b = before
                .iter()
                .find(|b| b.daemon == a.daemon && b.source == a.source && b.name == a.name);
            match b {
                Some(b) if b.value == a.value => None,
                b => Some((b, a)),
            }
        })
        .collect()
}

/// `history --flaky`: per scenario, its outcomes across runs of the same candidate.
fn flaky(store: &Store, runs: &[crate::record::RunRecord]) -> Result<i32, Error> {
    use crate::record::{ScenarioKind, Status};
    use std::collections::BTreeMap;
    /// (candidate, pipeline, environment, scenario).
    type Key = (String, String, String, String);
    // → (passed, failed, passed after a retry)
    let mut seen: BTreeMap<Key, (u32, u32, u32)> = BTreeMap::new();
    for run in runs {
        let candidate = format!(
            "{}{}",
            run.revision,
            run.candidate
                .iter()
                .map(|(r, c)| format!(" {r}@{}", &c[..c.len().min(12)]))
                .collect::<String>()
        );
        for sc in store.scenarios(&run.id)? {
            if sc.kind != ScenarioKind::Scenario || sc.retried {
                continue;
            }
            let e = seen
                .entry((
                    candidate.clone(),
                    sc.pipeline.clone(),
                    sc.environment.clone(),
                    sc.name.clone(),
                ))
                .or_default();
            match sc.status {
                Status::Passed if sc.attempt > 0 => {
                    e.0 += 1;
                    e.2 += 1;
                }
                Status::Passed => e.0 += 1,
                Status::Skipped => {}
                _ => e.1 += 1,
            }
        }
    }
    let flaky: Vec<_> = seen
        .into_iter()
        .filter(|(_, (p, f, r))| (*p > 0 && *f > 0) || *r > 0)
        .collect();
    if flaky.is_empty() {
        crate::errln!("no flaky scenario in the last {} runs", runs.len());
        return Ok(0);
    }
    crate::outln!(
        "{:<28} {:<24} {:>6} {:>6} {:>8}  CANDIDATE",
        "SCENARIO",
        "WHERE",
        "PASS",
        "FAIL",
        "RETRIED"
    );
    for ((candidate, pipeline, env, name), (p, f, r)) in flaky {
        crate::outln!(
            "{name:<28} {:<24} {p:>6} {f:>6} {r:>8}  {candidate}",
            format!("{pipeline}.{env}")
        );
    }
    Ok(0)
}
