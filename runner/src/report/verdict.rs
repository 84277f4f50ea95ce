//! The judge's verdict and baseline as a person reads them on a terminal: the headline,
//! then each finding with its numbers; the baseline's runs and why others were left out.

use std::fmt::Write as _;

use crate::judge::baseline::{Choice, Chosen};
use crate::judge::{Decision, Direction, Judged, Verdict};
use crate::record::RunRecord;

/// Findings shown unless all are asked for.
pub const SHOWN: usize = 10;

/// What a finding is, in a word or two: `regressed`, `over limit`, `leaning`…
pub fn label(j: &Judged) -> &'static str {
    match (j.limit.is_some(), j.report_only, j.decision, j.direction) {
        (true, ..) => "over limit",
        (_, true, ..) => "report-only",
        (_, _, Decision::Missing, _) => "missing",
        (_, _, Decision::Different, Some(Direction::Regressed)) => "regressed",
        (_, _, Decision::Different, Some(Direction::Improved)) => "improved",
        (_, _, Decision::Different, _) => "changed",
        (_, _, Decision::Inconclusive, _) => "leaning",
        _ => "same",
    }
}

/// The verdict's lines: the headline, then up to `limit` findings with their reasons.
pub fn text(v: &Verdict, limit: usize) -> String {
    let mut out = format!("judge: {}\n", v.headline());
    for j in v.findings.iter().take(limit) {
        let critical = if j.critical { " (critical)" } else { "" };
        let _ = writeln!(out, "  {:<11} {}{critical}", label(j), j.summary());
        if j.decision != Decision::Missing && j.limit.is_none() {
            let _ = writeln!(out, "              {}", j.explanation());
        }
        if let Some(n) = j.more_runs {
            let _ = writeln!(
                out,
                "              about {n} more run{} of this candidate would decide it",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    if v.findings.len() > limit {
        let _ = writeln!(
            out,
            "  … {} more (`lowtouch judge --all`)",
            v.findings.len() - limit
        );
    }
    out
}

/// What recomputing a stored verdict came to (`None`: there was none; judged now).
pub fn recomputed(matches_stored: Option<bool>) -> &'static str {
    match matches_stored {
        Some(true) => "recomputed from the stored inputs: the same verdict",
        Some(false) => {
            "recomputed from the stored inputs: DIFFERS from the stored verdict (a run it used was pruned, or lowtouch changed)"
        }
        None => "judged now (it had no stored verdict); stored",
    }
}

/// A run's baseline: the runs chosen (with their revision and verdict), then why each
/// earlier run was left out.
pub fn baseline(run: &RunRecord, choice: &Choice, runs: &[RunRecord]) -> String {
    let find = |id: &str| runs.iter().find(|r| r.id == id);
    let mut out = format!(
        "baseline of run {}: {} run{}",
        run.id,
        choice.chosen.len(),
        if choice.chosen.len() == 1 { "" } else { "s" }
    );
    if !choice.pooled.is_empty() {
        let _ = write!(
            out,
            "; pooled with {} earlier run{} of the same candidate: {}",
            choice.pooled.len(),
            if choice.pooled.len() == 1 { "" } else { "s" },
            choice.pooled.join(", ")
        );
    }
    out.push('\n');
    for (id, why) in &choice.chosen {
        let r = find(id);
        let why = match why {
            Chosen::Recent => "recent".to_string(),
            Chosen::Release(name) => format!("previous release {name}"),
        };
        let _ = writeln!(
            out,
            "  {id}  {:<14} {:<10} {}",
            why,
            r.map_or("", |r| short(&r.revision)),
            r.and_then(|r| r.judgement.as_ref())
                .map_or("not judged", |j| j.outcome.as_str())
        );
    }
    if !choice.left.is_empty() {
        out.push_str("left out:\n");
        for (id, why) in &choice.left {
            let _ = writeln!(out, "  {id}  {}", why.describe());
        }
    }
    out
}

fn short(revision: &str) -> &str {
    revision.get(..10).unwrap_or(revision)
}
