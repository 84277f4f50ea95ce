//! Which runs a run is judged against, and why the others are not — a pure choice over
//! run records, so `lowtouch baseline --run ID` shows exactly what the judge used.
//!
//! Comparable means the same hard keys: the pipelines, the environments, the load profile
//! and the topology (the hosts that reported), and at least one scenario in common with
//! the same text. The scenario's text is a hard key per scenario too: the judge compares a
//! scenario's features only with runs where its file said the same
//! ([`super::features::Features::scopes`]).
//!
//! The baseline is the newest comparable runs that were accepted (passed, complete, not
//! judged regressed — a regression never poisons its own baseline), up to the policy's
//! number, plus the previous release always, so a slow drift is not absorbed by the
//! rolling window. The runs of the same candidate right before this one (the 24/7 loop
//! runs a candidate again and again) are pooled with it instead, up to the policy's number
//! of looks and back to the last that was decided DIFFERENT: together they decide.

use serde::{Deserialize, Serialize};

use super::verdict::Policy;
use crate::record::{Outcome, RunRecord, Status};

/// Why a run is in the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chosen {
    /// One of the newest comparable accepted runs.
    Recent,
    /// The previous release (its name), always in.
    Release(String),
}

/// Why an earlier run is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Left {
    OtherPipelines,
    OtherEnvironments,
    OtherLoad,
    OtherTopology,
    /// None of its scenarios is one of this run's with the same text.
    OtherScenarios,
    /// It did not pass (its status).
    NotPassed(String),
    /// The store lacks part of it.
    Incomplete,
    /// It was judged regressed.
    Regressed,
    /// Pooled with this run as the same candidate.
    Pooled,
    /// Older than the newest comparable runs the policy keeps.
    Beyond,
}

impl Left {
    pub fn describe(&self) -> String {
        match self {
            Left::OtherPipelines => "ran other pipelines".into(),
            Left::OtherEnvironments => "ran on other environments".into(),
            Left::OtherLoad => "ran under another load profile".into(),
            Left::OtherTopology => "ran on other hosts".into(),
            Left::OtherScenarios => "ran none of its scenarios as they are now".into(),
            Left::NotPassed(s) => format!("did not pass ({s})"),
            Left::Incomplete => "the store lacks part of it".into(),
            Left::Regressed => "judged regressed".into(),
            Left::Pooled => "the same candidate, judged together with it".into(),
            Left::Beyond => "older than the newest comparable runs kept".into(),
        }
    }
}

/// The choice for one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Newest first.
    pub chosen: Vec<(String, Chosen)>,
    /// Earlier runs left out, newest first.
    pub left: Vec<(String, Left)>,
    /// Earlier runs of the same candidate judged with it, newest first.
    pub pooled: Vec<String>,
    /// The earlier candidates' newest accepted comparable runs, one each, back to the
    /// previous release (included) or the policy's number, oldest first: the series a
    /// slow drift shows in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<String>,
}

/// Why `other` cannot be compared with `run`, if it cannot.
fn incomparable(run: &RunRecord, other: &RunRecord) -> Option<Left> {
    fn set(v: &[String]) -> std::collections::BTreeSet<&String> {
        v.iter().collect()
    }
    if set(&run.pipelines) != set(&other.pipelines) {
        return Some(Left::OtherPipelines);
    }
    if set(&run.environments) != set(&other.environments) {
        return Some(Left::OtherEnvironments);
    }
    if run.conditions.load != other.conditions.load {
        return Some(Left::OtherLoad);
    }
    let hosts = |r: &RunRecord| r.conditions.hosts.keys().cloned().collect::<Vec<_>>();
    if hosts(run) != hosts(other) {
        return Some(Left::OtherTopology);
    }
    // Runs from before scenarios were recorded here share them as far as is known.
    let (mine, theirs) = (&run.conditions.scenarios, &other.conditions.scenarios);
    if !mine.is_empty() && !theirs.is_empty() && !mine.iter().any(|(k, v)| theirs.get(k) == Some(v))
    {
        return Some(Left::OtherScenarios);
    }
    None
}

/// Why `other` is not a run to compare with, if it is not.
fn unaccepted(other: &RunRecord) -> Option<Left> {
    if other.status != Status::Passed {
        return Some(Left::NotPassed(other.shown_status().into()));
    }
    if other.incomplete.is_some() {
        return Some(Left::Incomplete);
    }
    if other.judgement.as_ref().is_some_and(|j| j.regressed > 0) {
        return Some(Left::Regressed);
    }
    None
}

/// The same thing under test: the same project revision and candidate commits, config
/// and `--set` overrides (a knob turned is another system). Configs compare by content
/// where both runs recorded it: a knob turned and turned back renders a new commit of
/// the same tree, and the system under it is the same.
fn same_candidate(a: &RunRecord, b: &RunRecord) -> bool {
    let same_config = if !a.config_trees.is_empty() && !b.config_trees.is_empty() {
        a.config_trees == b.config_trees
    } else {
        a.config_commits == b.config_commits
    };
    a.revision == b.revision
        && a.candidate == b.candidate
        && same_config
        && a.overrides == b.overrides
}

/// Chooses `run`'s baseline from `history` (any runs, newest first; those that did not
/// start before `run` are ignored), with the previous release's run id if there is one.
pub fn choose(
    run: &RunRecord,
    history: &[RunRecord],
    release: Option<(&str, &str)>,
    policy: &Policy,
) -> Choice {
    let mut choice = Choice::default();
    let mut pooling = true;
    // The lineage: one run per earlier candidate, newest first while collected.
    let mut candidates: Vec<&RunRecord> = Vec::new();
    let mut lineage_open = policy.drift_candidates > 0;
    for other in history
        .iter()
        .filter(|o| o.id != run.id && o.started_at < run.started_at)
    {
        let is_release = release.is_some_and(|(_, id)| id == other.id);
        if let Some(why) = incomparable(run, other) {
            choice.left.push((other.id.clone(), why));
            continue;
        }
        // The candidate's own runs right before this one, until one was decided.
        if pooling
            && same_candidate(run, other)
            && unaccepted(other).is_none()
            && other
                .judgement
                .as_ref()
                .is_none_or(|j| j.outcome != Outcome::Different)
            && choice.pooled.len() + 1 < policy.max_looks
        {
            choice.pooled.push(other.id.clone());
            choice.left.push((other.id.clone(), Left::Pooled));
            continue;
        }
        pooling = false;
        if let Some(why) = unaccepted(other) {
            choice.left.push((other.id.clone(), why));
            continue;
        }
        if lineage_open && !same_candidate(run, other) {
            if !candidates.iter().any(|c| same_candidate(c, other)) {
                candidates.push(other);
                choice.lineage.push(other.id.clone());
            }
            // A release accepted what came before it; the lineage starts there.
            lineage_open = !is_release && choice.lineage.len() < policy.drift_candidates;
        }
        if is_release {
            let name = release.map(|(n, _)| n.to_string()).unwrap_or_default();
            choice
                .chosen
                .push((other.id.clone(), Chosen::Release(name)));
        } else if choice
            .chosen
            .iter()
            .filter(|(_, c)| *c == Chosen::Recent)
            .count()
            < policy.baseline_runs
        {
            choice.chosen.push((other.id.clone(), Chosen::Recent));
        } else {
            choice.left.push((other.id.clone(), Left::Beyond));
        }
    }
    choice.lineage.reverse();
    choice
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Judgement;

    /// Run `id` of a revision of its own.
    fn run(id: &str) -> RunRecord {
        RunRecord {
            started_at: format!("2026-12-01T00:00:{id}Z"),
            revision: format!("rev{id}"),
            ..RunRecord::for_test(id)
        }
    }

    fn judged(mut r: RunRecord, outcome: Outcome, regressed: u32) -> RunRecord {
        r.judgement = Some(Judgement {
            outcome,
            fails: false,
            regressed,
            pooled: vec![],
            headline: String::new(),
        });
        r
    }

    /// Runs 40..=49 of `me`'s revision, newest first, each judged the same.
    fn same_revision_runs(me: &RunRecord) -> Vec<RunRecord> {
        (40..50)
            .rev()
            .map(|i| RunRecord {
                revision: me.revision.clone(),
                ..judged(run(&i.to_string()), Outcome::Same, 0)
            })
            .collect()
    }

    fn ids(v: &[(String, Chosen)]) -> Vec<&str> {
        v.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn the_newest_comparable_accepted_runs_and_the_previous_release_are_chosen() {
        let me = run("50");
        let mut history: Vec<RunRecord> = (10..50).rev().map(|i| run(&i.to_string())).collect();
        history[2].pipelines = vec!["other".into()];
        history[3].status = Status::Failed;
        history[4] = judged(history[4].clone(), Outcome::Different, 2);
        history[5]
            .conditions
            .load
            .insert("local".into(), [("load_rate".into(), "9".into())].into());
        let policy = Policy {
            baseline_runs: 5,
            ..Policy::default()
        };
        let c = choose(&me, &history, Some(("v1", "11")), &policy);
        assert_eq!(ids(&c.chosen), ["49", "48", "43", "42", "41", "11"]);
        assert_eq!(c.chosen.last().unwrap().1, Chosen::Release("v1".into()));
        let why = |id: &str| c.left.iter().find(|(i, _)| i == id).unwrap().1.clone();
        assert_eq!(why("47"), Left::OtherPipelines);
        assert_eq!(why("46"), Left::NotPassed("failed".into()));
        assert_eq!(why("45"), Left::Regressed);
        assert_eq!(why("44"), Left::OtherLoad);
        assert_eq!(why("40"), Left::Beyond);
        assert!(c.pooled.is_empty());
    }

    #[test]
    fn the_lineage_is_one_run_per_earlier_candidate_back_to_the_previous_release() {
        let me = run("50");
        // Runs 40..49, two per revision (a, b, c, d, e), newest first; 45 judged regressed.
        let mut history: Vec<RunRecord> = (40..50)
            .rev()
            .map(|i| RunRecord {
                revision: format!("rev{}", (i - 40) / 2),
                ..run(&i.to_string())
            })
            .collect();
        history[4] = judged(history[4].clone(), Outcome::Different, 1);
        let c = choose(&me, &history, Some(("v1", "42")), &Policy::default());
        // The newest accepted run of each revision, oldest first, from the release's
        // revision on (43 is its newest run).
        assert_eq!(c.lineage, ["43", "44", "47", "49"]);
        let c = choose(&me, &history, None, &Policy::default());
        assert_eq!(c.lineage, ["41", "43", "44", "47", "49"]);
        let few = Policy {
            drift_candidates: 2,
            ..Policy::default()
        };
        assert_eq!(choose(&me, &history, None, &few).lineage, ["47", "49"]);
    }

    #[test]
    fn later_runs_and_the_run_itself_are_never_its_history() {
        let me = run("20");
        let history = vec![run("30"), run("20"), run("10")];
        let c = choose(&me, &history, None, &Policy::default());
        assert_eq!(ids(&c.chosen), ["10"]);
        assert!(c.left.is_empty());
    }

    #[test]
    fn the_candidate_s_runs_right_before_are_pooled_not_baseline() {
        let mut me = run("50");
        me.revision = "new".into();
        let mut a = judged(run("49"), Outcome::Inconclusive, 0);
        a.revision = "new".into();
        let mut b = judged(run("48"), Outcome::Same, 0);
        b.revision = "new".into();
        // A run of another candidate ends the pooling.
        let c_other = judged(run("47"), Outcome::Inconclusive, 0);
        let mut d = judged(run("46"), Outcome::Inconclusive, 0);
        d.revision = "new".into();
        let history = vec![a, b, c_other, d, run("45")];
        let c = choose(&me, &history, None, &Policy::default());
        assert_eq!(c.pooled, ["49", "48"]);
        assert_eq!(ids(&c.chosen), ["47", "46", "45"]);
    }

    #[test]
    fn pooling_stops_at_the_policy_s_number_of_looks() {
        let me = run("50");
        let history = same_revision_runs(&me);
        let policy = Policy {
            max_looks: 3,
            ..Policy::default()
        };
        let c = choose(&me, &history, None, &policy);
        assert_eq!(c.pooled, ["49", "48"]);
        assert_eq!(c.chosen.len(), 8);
    }

    #[test]
    fn a_turned_knob_is_another_candidate_judged_against_the_runs_without_it() {
        let mut me = run("50");
        let history = same_revision_runs(&me);
        me.overrides = vec![("latency_us".into(), "3000".into())];
        let c = choose(&me, &history, None, &Policy::default());
        assert!(c.pooled.is_empty());
        assert_eq!(c.chosen.len(), 10);
    }

    #[test]
    fn a_run_sharing_no_scenario_text_is_left_out_and_one_sharing_any_is_kept() {
        let scenarios = |r: RunRecord, s: &[(&str, &str)]| {
            let mut r = r;
            r.conditions.scenarios = s
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            r
        };
        let me = scenarios(run("50"), &[("local/one", "a1"), ("local/two", "b1")]);
        let history = vec![
            scenarios(run("49"), &[("local/steps", "c1")]),
            scenarios(run("48"), &[("local/one", "a2")]),
            scenarios(run("47"), &[("local/two", "b1"), ("local/three", "d1")]),
            // Recorded before scenarios were: as far as is known, comparable.
            run("46"),
        ];
        let c = choose(&me, &history, None, &Policy::default());
        assert_eq!(ids(&c.chosen), ["47", "46"]);
        assert_eq!(
            c.left,
            [
                ("49".to_string(), Left::OtherScenarios),
                ("48".to_string(), Left::OtherScenarios)
            ]
        );
    }

    #[test]
    fn a_config_rendered_again_with_the_same_content_is_the_same_candidate() {
        let config = |r: RunRecord, commit: &str, tree: &str| RunRecord {
            config_commits: [("local".to_string(), commit.to_string())].into(),
            config_trees: [("local".to_string(), tree.to_string())].into(),
            ..r
        };
        let me = config(run("50"), "c3", "t1");
        let same = |r: RunRecord| RunRecord {
            revision: me.revision.clone(),
            ..r
        };
        // 49: the same tree under another commit (a knob turned and back); 48: another tree.
        let history = vec![
            same(config(judged(run("49"), Outcome::Same, 0), "c2", "t1")),
            same(config(judged(run("48"), Outcome::Same, 0), "c1", "t2")),
        ];
        let c = choose(&me, &history, None, &Policy::default());
        assert_eq!(c.pooled, ["49"]);
        assert_eq!(ids(&c.chosen), ["48"]);
    }

    #[test]
    fn pooling_stops_at_a_run_that_was_decided() {
        let me = run("50");
        let same = |r: RunRecord| RunRecord {
            revision: me.revision.clone(),
            ..r
        };
        let history = vec![
            same(judged(run("49"), Outcome::Same, 0)),
            same(judged(run("48"), Outcome::Different, 0)),
            same(judged(run("47"), Outcome::Same, 0)),
        ];
        let c = choose(&me, &history, None, &Policy::default());
        assert_eq!(c.pooled, ["49"]);
        assert_eq!(ids(&c.chosen), ["48", "47"]);
    }
}
