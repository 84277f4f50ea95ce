//! Two stored runs side by side: per scenario what changed (a new failure, a fix, still
//! failing, unchanged, new, removed), per step whose masked output differs a unified diff,
//! durations and metric summaries with their change in percent. Pure: the runs come in
//! as read from the store.

use std::collections::BTreeMap;

use serde::Serialize;

use super::mask::Masks;
use crate::record::{ScenarioKind, Status, StepRecord};
use crate::record::{ScenarioWithSteps, StoredRun};

/// What became of one scenario from the baseline to the current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    NewFailure,
    Fixed,
    StillFailing,
    Unchanged,
    New,
    Removed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::NewFailure => "new-failure",
            Change::Fixed => "fixed",
            Change::StillFailing => "still-failing",
            Change::Unchanged => "unchanged",
            Change::New => "new",
            Change::Removed => "removed",
        }
    }

    pub const ALL: [Change; 6] = [
        Change::NewFailure,
        Change::Fixed,
        Change::StillFailing,
        Change::Unchanged,
        Change::New,
        Change::Removed,
    ];
}

/// A step whose output differs (after masking).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDiff {
    pub seq: u64,
    pub line: u32,
    pub command: String,
    /// A unified diff, baseline (`---`) to current (`+++`), of the masked output.
    pub diff: String,
}

/// One scenario's comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioChange {
    pub pipeline: String,
    pub environment: String,
    pub name: String,
    pub change: Change,
    /// The statuses on each side (`None`: not in that run).
    pub before: Option<Status>,
    pub after: Option<Status>,
    pub before_ms: Option<u64>,
    pub after_ms: Option<u64>,
    /// Duration change in percent (`None` without both sides).
    pub duration_change_pct: Option<f64>,
    pub steps: Vec<StepDiff>,
}

/// A metric summary on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricChange {
    pub name: String,
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub change_pct: Option<f64>,
}

/// Two runs compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub current: String,
    pub scenarios: Vec<ScenarioChange>,
    pub metrics: Vec<MetricChange>,
}

impl Comparison {
    pub fn count(&self, change: Change) -> usize {
        self.scenarios.iter().filter(|s| s.change == change).count()
    }

    pub fn new_failures(&self) -> usize {
        self.count(Change::NewFailure)
    }

    /// The change of a scenario of the current run, by suite and name.
    pub fn change_of(
        &self,
        pipeline: &str,
        environment: &str,
        name: &str,
    ) -> Option<&ScenarioChange> {
        self.scenarios
            .iter()
            .find(|s| s.pipeline == pipeline && s.environment == environment && s.name == name)
    }
}

/// Not passing: failed, and also skipped (a broken setup must not read as unchanged).
fn failing(s: Status) -> bool {
    s != Status::Passed
}

fn pct(before: f64, after: f64) -> Option<f64> {
    (before != 0.0).then(|| (after - before) / before * 100.0)
}

/// Scenarios (not hooks) by (pipeline, environment, name).
fn scenarios(run: &StoredRun) -> BTreeMap<(String, String, String), &ScenarioWithSteps> {
    run.scenarios
        .iter()
        .filter(|(sc, _)| sc.kind == ScenarioKind::Scenario && !sc.retried)
        .map(|e| {
            (
                (
                    e.0.pipeline.clone(),
                    e.0.environment.clone(),
                    e.0.name.clone(),
                ),
                e,
            )
        })
        .collect()
}

/// Compares `current` with `baseline`; `summaries` are each side's metric summaries.
pub fn compare(
    baseline: &StoredRun,
    current: &StoredRun,
    masks: &Masks,
    summaries: (&BTreeMap<String, f64>, &BTreeMap<String, f64>),
) -> Comparison {
    let before = scenarios(baseline);
    let after = scenarios(current);
    let mut keys: Vec<&(String, String, String)> = after.keys().collect();
    keys.extend(before.keys().filter(|k| !after.contains_key(*k)));
    let mut out = Vec::new();
    for key in keys {
        let b = before.get(key);
        let a = after.get(key);
        let change = match (b.map(|e| e.0.status), a.map(|e| e.0.status)) {
            (None, Some(_)) => Change::New,
            (Some(_), None) => Change::Removed,
            (Some(x), Some(y)) => match (failing(x), failing(y)) {
                (false, true) => Change::NewFailure,
                (true, false) => Change::Fixed,
                (true, true) => Change::StillFailing,
                _ => Change::Unchanged,
            },
            (None, None) => continue,
        };
        let steps = match (b, a) {
            (Some(b), Some(a)) => step_diffs(&b.1, &a.1, masks),
            _ => Vec::new(),
        };
        let before_ms = b.map(|e| e.0.duration_ms);
        let after_ms = a.map(|e| e.0.duration_ms);
        out.push(ScenarioChange {
            pipeline: key.0.clone(),
            environment: key.1.clone(),
            name: key.2.clone(),
            change,
            before: b.map(|e| e.0.status),
            after: a.map(|e| e.0.status),
            before_ms,
            after_ms,
            duration_change_pct: before_ms
                .zip(after_ms)
                .and_then(|(x, y)| pct(x as f64, y as f64)),
            steps,
        });
    }
    let mut names: Vec<&String> = summaries.1.keys().collect();
    names.extend(summaries.0.keys().filter(|k| !summaries.1.contains_key(*k)));
    let metrics = names
        .into_iter()
        .map(|name| {
            let before = summaries.0.get(name).copied();
            let after = summaries.1.get(name).copied();
            MetricChange {
                name: name.clone(),
                before,
                after,
                change_pct: before.zip(after).and_then(|(x, y)| pct(x, y)),
            }
        })
        .collect();
    Comparison {
        baseline: baseline.run.id.clone(),
        current: current.run.id.clone(),
        scenarios: out,
        metrics,
    }
}

/// Steps paired by their masked command lines, aligned as a diff aligns lines (an inserted
/// or removed step does not shift every step after it); a step on one side only counts as
/// differing, and so does a pair whose output differs.
fn step_diffs(before: &[StepRecord], after: &[StepRecord], masks: &Masks) -> Vec<StepDiff> {
    let text = |s: &StepRecord| {
        let mut t = masks.apply(&s.stdout);
        if s.status != 0 || s.failure.is_some() {
            t.push_str(&masks.apply(&s.stderr));
            if let Some(f) = &s.failure {
                t.push_str(&format!("[failure] {}\n", masks.apply(f)));
            }
        }
        t
    };
    // Commands compared masked: an argument may carry a run id.
    let commands = |steps: &[StepRecord]| -> Vec<String> {
        steps
            .iter()
            .map(|s| masks.apply(&s.command_line()))
            .collect()
    };
    let (old_commands, new_commands) = (commands(before), commands(after));
    let mut pairs: Vec<(Option<&StepRecord>, Option<&StepRecord>)> = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old_commands, &new_commands)
    {
        let (_, old, new) = op.as_tag_tuple();
        // Equal ranges pair one to one; a replaced range pairs by position, the longer
        // side's rest alone.
        for i in 0..old.len().max(new.len()) {
            let b = (i < old.len()).then(|| &before[old.start + i]);
            let a = (i < new.len()).then(|| &after[new.start + i]);
            pairs.push((b, a));
        }
    }
    let mut out = Vec::new();
    for (b, a) in pairs {
        let (old, new) = (
            b.map(text).unwrap_or_default(),
            a.map(text).unwrap_or_default(),
        );
        let same_command =
            b.map(|s| masks.apply(&s.command_line())) == a.map(|s| masks.apply(&s.command_line()));
        if same_command && old == new {
            continue;
        }
        let shown = a.or(b).expect("one side has the step");
        let label = |s: Option<&StepRecord>| {
            s.map(StepRecord::command_line)
                .unwrap_or_else(|| "(no step)".into())
        };
        let diff = similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("before: {}", label(b)),
                &format!("after: {}", label(a)),
            )
            .to_string();
        out.push(StepDiff {
            seq: shown.seq,
            line: shown.line,
            command: shown.command_line(),
            diff,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RunRecord, ScenarioRecord};

    /// A scenario for a test: name, status, steps as (command, stdout).
    type Scn<'a> = (&'a str, Status, Vec<(&'a str, &'a str)>);

    fn run(id: &str, scenarios: Vec<Scn<'_>>) -> StoredRun {
        StoredRun {
            artifacts: Vec::new(),
            run: RunRecord::for_test(id),
            scenarios: scenarios
                .into_iter()
                .enumerate()
                .map(|(i, (name, status, steps))| {
                    (
                        ScenarioRecord {
                            duration_ms: 100 * (i as u64 + 1),
                            steps: steps.len() as u64,
                            ..ScenarioRecord::for_test(id, i as u32, name, status)
                        },
                        steps
                            .into_iter()
                            .enumerate()
                            .map(|(j, (cmd, stdout))| {
                                StepRecord::for_test(id, i as u32, j as u64 + 1, cmd, stdout)
                            })
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn every_status_change_has_its_name() {
        let before = run(
            "a",
            vec![
                ("breaks", Status::Passed, vec![]),
                ("heals", Status::Failed, vec![]),
                ("stays_red", Status::Failed, vec![]),
                ("stays_green", Status::Passed, vec![]),
                ("gone", Status::Passed, vec![]),
                ("setup_broke", Status::Passed, vec![]),
            ],
        );
        let after = run(
            "b",
            vec![
                ("breaks", Status::Failed, vec![]),
                ("heals", Status::Passed, vec![]),
                ("stays_red", Status::Crashed, vec![]),
                ("stays_green", Status::Passed, vec![]),
                ("fresh", Status::Passed, vec![]),
                // Skipped because a hook failed: no longer passing.
                ("setup_broke", Status::Skipped, vec![]),
            ],
        );
        let empty = BTreeMap::new();
        let c = compare(&before, &after, &Masks::default(), (&empty, &empty));
        let got: Vec<(&str, Change)> = c
            .scenarios
            .iter()
            .map(|s| (s.name.as_str(), s.change))
            .collect();
        assert_eq!(
            got,
            vec![
                ("breaks", Change::NewFailure),
                ("fresh", Change::New),
                ("heals", Change::Fixed),
                ("setup_broke", Change::NewFailure),
                ("stays_green", Change::Unchanged),
                ("stays_red", Change::StillFailing),
                ("gone", Change::Removed),
            ]
        );
        assert_eq!(c.new_failures(), 2);
    }

    #[test]
    fn only_real_output_changes_are_diffed() {
        let before = run(
            "a",
            vec![(
                "s",
                Status::Passed,
                vec![
                    ("start_x", "started X (pid 4711), ready in 150ms\n"),
                    ("quote", "bid 101.25 at 2026-11-25T10:00:00Z\n"),
                ],
            )],
        );
        let after = run(
            "b",
            vec![(
                "s",
                Status::Passed,
                vec![
                    ("start_x", "started X (pid 5123), ready in 97ms\n"),
                    ("quote", "bid 101.50 at 2026-11-25T11:11:11Z\n"),
                ],
            )],
        );
        let empty = BTreeMap::new();
        let c = compare(&before, &after, &Masks::default(), (&empty, &empty));
        let steps = &c.scenarios[0].steps;
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert_eq!(steps[0].command, "quote");
        assert!(
            steps[0].diff.contains("-bid 101.25 at <time>"),
            "{}",
            steps[0].diff
        );
        assert!(
            steps[0].diff.contains("+bid 101.50 at <time>"),
            "{}",
            steps[0].diff
        );
        assert_eq!(c.scenarios[0].change, Change::Unchanged);
    }

    #[test]
    fn an_inserted_step_does_not_shift_the_steps_after_it() {
        let steps = |extra: bool| {
            let mut v = vec![("start_x", "ok\n"), ("quote", "bid 101\n")];
            if extra {
                v.insert(1, ("warm_up", "warming\n"));
            }
            v.extend([("trade", "filled 5\n"), ("stop_x", "stopped\n")]);
            v
        };
        let before = run("a", vec![("s", Status::Passed, steps(false))]);
        let mut with_extra = steps(true);
        with_extra[3] = ("trade", "filled 7\n");
        let after = run("b", vec![("s", Status::Passed, with_extra)]);
        let empty = BTreeMap::new();
        let c = compare(&before, &after, &Masks::default(), (&empty, &empty));
        let shown: Vec<(&str, bool)> = c.scenarios[0]
            .steps
            .iter()
            .map(|d| (d.command.as_str(), d.diff.contains("before: (no step)")))
            .collect();
        // The new step, and the one whose output changed: not every step after the new one.
        assert_eq!(
            shown,
            vec![("warm_up", true), ("trade", false)],
            "{:#?}",
            c.scenarios[0].steps
        );
        assert!(c.scenarios[0].steps[1].diff.contains("-filled 5"));
        assert!(c.scenarios[0].steps[1].diff.contains("+filled 7"));
    }

    #[test]
    fn metric_summaries_change_in_percent() {
        let r = run("a", vec![]);
        let before = BTreeMap::from([("p99 internal_latency_us".to_string(), 200.0)]);
        let after = BTreeMap::from([
            ("p99 internal_latency_us".to_string(), 2300.0),
            ("peak rss_bytes".to_string(), 1.0),
        ]);
        let c = compare(&r, &r, &Masks::default(), (&before, &after));
        assert_eq!(c.metrics[0].name, "p99 internal_latency_us");
        assert_eq!(c.metrics[0].change_pct, Some(1050.0));
        assert_eq!(c.metrics[1].before, None);
    }
}
