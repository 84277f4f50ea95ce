//! `lowtouch history` as a person reads it: candidates and runs as tables, one run's
//! observations and steps, flaky scenarios. Pure: records in, text out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::terminal::Style;
use crate::compare::candidates::{Stretch, Tested};
use crate::compare::flaky::Flaky;
use crate::record::{RunRecord, Sample, Status, StepRecord};
use crate::scenario::duration::human;
use crate::store::ObservationRecord;

/// One candidate's stretch, as `history --json` gives it.
#[derive(serde::Serialize)]
pub struct CandidateRow<'a> {
    #[serde(flatten)]
    candidate: &'a Tested,
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
    pub fn of(s: &'a Stretch, releases: &'a BTreeMap<String, String>) -> CandidateRow<'a> {
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
fn revisions(c: &Tested) -> String {
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

/// The candidates as a table, newest first.
pub fn candidates_table(
    stretches: &[Stretch],
    releases: &BTreeMap<String, String>,
    style: &Style,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:<11} {:>7} {:>6} {:>6} {:>6} {:>8}  {:<18} REVISIONS",
        "NEWEST RUN", "VERDICT", "RUNS OK", "PASS", "FAIL", "SKIP", "TIME", "PIPELINES"
    );
    for s in stretches {
        let row = CandidateRow::of(s, releases);
        let newest = s.newest();
        let runs = format!("{}/{}", row.runs_passed, s.runs.len());
        let released = match row.releases.as_slice() {
            [] => String::new(),
            names => format!("  release {}", names.join(", ")),
        };
        let _ = writeln!(
            out,
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
    out
}

/// The runs as a table, newest first.
pub fn runs_table(
    runs: &[RunRecord],
    releases: &BTreeMap<String, String>,
    style: &Style,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:<11} {:<20} {:<18} {:>6} {:>6} {:>6} {:>8}  {:<25} RELEASE",
        "RUN", "STATUS", "REVISION", "PIPELINES", "PASS", "FAIL", "SKIP", "TIME", "STARTED"
    );
    for run in runs {
        let _ = writeln!(
            out,
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
    out
}

/// What the daemons observed while a run ran, from `from` (µs since the epoch) on.
pub fn observations_table(rows: &[ObservationRecord], from: i64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<27} {:>9} {:<12} {:<24} {:<22} VALUE",
        "TIME", "+S", "DAEMON", "SOURCE", "NAME"
    );
    for o in rows {
        let time = chrono::DateTime::from_timestamp_micros(o.at_us)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            .unwrap_or_default();
        let since = (o.at_us - from) as f64 / 1e6;
        let value = match (&o.text, o.number) {
            (Some(t), _) => t.clone(),
            (None, Some(n)) => format!("{n}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{time:<27} {since:>9.3} {:<12} {:<24} {:<22} {value}",
            o.daemon, o.source, o.name
        );
    }
    out
}

/// Every step of a run (with its scenario's name), each with the system around it.
pub fn steps_text(steps: &[(String, StepRecord)]) -> String {
    let mut out = String::new();
    for (scenario, step) in steps {
        let line = std::iter::once(step.command.as_str())
            .chain(step.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let phase = step
            .phase
            .as_deref()
            .map_or(String::new(), |p| format!(" [{p}]"));
        let _ = writeln!(
            out,
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
            let _ = writeln!(
                out,
                "    event  {} {} {} ({})",
                e.source, e.name, e.text, e.daemon
            );
        }
        for (before, after) in changed(&around.before, &around.after) {
            let _ = writeln!(
                out,
                "    metric {} {}: {} -> {}",
                after.source,
                after.name,
                before.map_or("-".to_string(), |b| format!("{}", b.value)),
                after.value
            );
        }
    }
    out
}

/// The metrics whose value differs from before to after (or that appeared).
pub fn changed<'a>(
    before: &'a [Sample],
    after: &'a [Sample],
) -> Vec<(Option<&'a Sample>, &'a Sample)> {
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

/// Flaky scenarios as a table.
pub fn flaky_table(flaky: &[Flaky]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<24} {:>6} {:>6} {:>8}  CANDIDATE",
        "SCENARIO", "WHERE", "PASS", "FAIL", "RETRIED"
    );
    for f in flaky {
        let _ = writeln!(
            out,
            "{:<28} {:<24} {:>6} {:>6} {:>8}  {}",
            f.scenario,
            format!("{}.{}", f.pipeline, f.environment),
            f.passed,
            f.failed,
            f.retried,
            f.candidate
        );
    }
    out
}

/// `history --run ID --steps --json`: each step as stored, with its scenario's name.
pub fn steps_json(steps: &[(String, crate::record::StepRecord)]) -> Vec<serde_json::Value> {
    steps
        .iter()
        .map(|(scenario, step)| {
            let mut v = serde_json::to_value(step).unwrap_or_default();
            v["scenario"] = serde_json::Value::String(scenario.clone());
            v
        })
        .collect()
}
