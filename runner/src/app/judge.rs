//! Judging runs, the reading and writing around the pure [`crate::judge`]: a run's
//! features (extracted once from its records and observations, then kept), its baseline
//! from the store's history, the verdict stored with the run.
//!
//! A run is judged when it ends; `lowtouch judge --run ID` recomputes a stored verdict
//! from the same stored inputs (its baseline and pooled runs' features, the declarations
//! and policy it was judged with) and says whether it came out the same.

use std::collections::BTreeMap;

use super::{App, Error};
use crate::judge::baseline::{self, Choice};
use crate::judge::declared::Declared;
use crate::judge::features::{self, Names, Packed};
use crate::judge::{Case, Features, Policy, Verdict};
use crate::record::{Judgement, Outcome, RunRecord, Status};
use crate::watch::Action;

use super::{RunRequest, Trigger};

/// A verdict, with the choice of runs behind it.
pub struct Judged {
    pub verdict: Verdict,
    pub choice: Choice,
    /// The run's record as it stands now (with its judgement).
    pub record: RunRecord,
    /// For a recomputation: whether it matched the stored verdict.
    pub matches_stored: Option<bool>,
}

impl App {
    /// A run's features: kept ones, or extracted from its records and the observations
    /// of its time range (and kept).
    pub fn features(&self, run: &RunRecord) -> Result<Features, Error> {
        self.features_with(run, &mut Names::default())
    }

    /// [`App::features`] with the name parts of `names` (a verdict's runs share them).
    fn features_with(&self, run: &RunRecord, names: &mut Names) -> Result<Features, Error> {
        let store = self.store()?;
        if let Some(packed) = store
            .features::<Packed>(&run.id)?
            .filter(|p| p.extraction == features::EXTRACTION)
        {
            return Ok(packed.unpack_with(names));
        }
        let Some(stored) = crate::compare::history::load(&store, &run.id)? else {
            return Ok(Features::default());
        };
        let observations = crate::compare::history::observed(&store, run, false)?;
        let f = features::extract(&stored, &observations);
        // Only a finished run's features are final.
        if run.finished_at.is_some() && run.status != Status::Running {
            store.put_features(&run.id, &Packed::from(&f))?;
        }
        Ok(f.shared(names))
    }

    /// The runs `run` is judged against, and why the others are not.
    pub fn baseline(&self, run: &RunRecord, policy: &Policy) -> Result<Choice, Error> {
        let store = self.store()?;
        let history = store.runs(usize::MAX)?;
        let release = crate::compare::history::previous_release(
            &store,
            self.project().root(),
            run,
            crate::compare::history::RELEASE_PATTERN,
        )?;
        Ok(baseline::choose(
            run,
            &history,
            release
                .as_ref()
                .map(|(name, r)| (name.as_str(), r.id.as_str())),
            policy,
        ))
    }

    /// What the run's environments declare about their metrics (the first declaration
    /// of a name wins); an environment that no longer loads declares nothing.
    pub fn declared(&self, run: &RunRecord) -> BTreeMap<String, Declared> {
        let mut out = BTreeMap::new();
        for env in &run.environments {
            if let Ok(e) = super::environments::load(self.project(), env, &run.overrides) {
                for (name, d) in e.metrics {
                    out.entry(name).or_insert(d);
                }
            }
        }
        out
    }

    /// Judges `run` against its baseline now and stores the verdict with it. At the end
    /// of the run (`ending`), a verdict the policy fails fails the run too.
    pub fn judge(
        &self,
        run: &RunRecord,
        declared: &BTreeMap<String, Declared>,
        policy: &Policy,
        ending: bool,
    ) -> Result<Judged, Error> {
        let choice = self.baseline(run, policy)?;
        let baseline_ids: Vec<String> = choice.chosen.iter().map(|(id, _)| id.clone()).collect();
        let verdict = self.compute(
            run,
            &baseline_ids,
            &choice.pooled,
            &choice.lineage,
            declared,
            policy,
        )?;
        let mut record = run.clone();
        record.judgement = Some(Judgement {
            outcome: verdict.outcome,
            fails: verdict.fails,
            regressed: verdict.counts.regressed as u32,
            pooled: verdict.pooled.clone(),
            headline: verdict.headline(),
        });
        if ending && verdict.fails && record.status == Status::Passed {
            record.status = Status::Failed;
        }
        self.store()?.put_verdict(&record, &verdict)?;
        Ok(Judged {
            verdict,
            choice,
            record,
            matches_stored: None,
        })
    }

    /// Recomputes `run`'s stored verdict from its stored inputs; a run never judged is
    /// judged now (with the declarations and policy given).
    pub fn rejudge(
        &self,
        run: &RunRecord,
        declared: &BTreeMap<String, Declared>,
        policy: &Policy,
    ) -> Result<Judged, Error> {
        let Some(stored) = self.store()?.verdict::<Verdict>(&run.id)? else {
            return self.judge(run, declared, policy, false);
        };
        let verdict = self.compute(
            run,
            &stored.baseline,
            &stored.pooled,
            &stored.lineage,
            &stored.declared,
            &stored.policy,
        )?;
        let matches = verdict == stored;
        Ok(Judged {
            choice: Choice {
                chosen: stored
                    .baseline
                    .iter()
                    .map(|id| (id.clone(), baseline::Chosen::Recent))
                    .collect(),
                left: Vec::new(),
                pooled: stored.pooled.clone(),
                lineage: stored.lineage.clone(),
            },
            verdict,
            record: run.clone(),
            matches_stored: Some(matches),
        })
    }

    fn compute(
        &self,
        run: &RunRecord,
        baseline_ids: &[String],
        pooled_ids: &[String],
        lineage_ids: &[String],
        declared: &BTreeMap<String, Declared>,
        policy: &Policy,
    ) -> Result<Verdict, Error> {
        let store = self.store()?;
        let mut names = Names::default();
        let own = self.features_with(run, &mut names)?;
        // Every run the verdict needs, read once (a lineage run is often a baseline run
        // too); a run pruned meanwhile is no longer there to compare with.
        let mut read: BTreeMap<&str, Features> = BTreeMap::new();
        for id in baseline_ids.iter().chain(pooled_ids).chain(lineage_ids) {
            if read.contains_key(id.as_str()) {
                continue;
            }
            if let Some(r) = store.run(id)? {
                read.insert(id, self.features_with(&r, &mut names)?);
            }
        }
        let of = |ids: &[String]| -> Vec<(&str, &Features)> {
            ids.iter()
                .filter_map(|id| read.get_key_value(id.as_str()).map(|(k, f)| (*k, f)))
                .collect()
        };
        let (base, lin) = (of(baseline_ids), of(lineage_ids));
        let pooled = of(pooled_ids);
        let pool: Vec<&Features> = pooled.iter().map(|(_, f)| *f).collect();
        let mut verdict = crate::judge::verdict::judge(&Case {
            run: &own,
            pooled: &pool,
            baseline: &base,
            lineage: &lin,
            declared,
            policy,
        });
        verdict.pooled = pooled.into_iter().map(|(id, _)| id.to_string()).collect();
        Ok(verdict)
    }
}

/// What the server runs next for a run it started whose verdict could not decide: the
/// same candidate again, while the policy allows more looks, so its runs are judged
/// together until they decide (the levels are shared between the looks, so looking again
/// does not inflate the false alarms). A change is run again without a new deploy (only
/// its scenarios: the build under test stays the same, and so does the candidate);
/// a scheduled run is run again as it was. The 24/7 loop needs nothing: its next
/// iteration is the same candidate anyway. A person's run says how many more runs would
/// decide instead, and an event's diagnostics are not a candidate.
pub fn again(request: &RunRequest, verdict: Option<&Verdict>) -> Option<RunRequest> {
    let verdict = verdict?;
    let looks = verdict.pooled.len() + 1;
    if verdict.outcome != Outcome::Inconclusive || looks >= verdict.policy.max_looks {
        return None;
    }
    let trigger = match &request.trigger {
        Trigger::Change { candidate, .. } => Trigger::Change {
            candidate: candidate.clone(),
            action: Action::RerunScenarios,
        },
        Trigger::Schedule { pattern } => Trigger::Schedule {
            pattern: pattern.clone(),
        },
        Trigger::Person | Trigger::Continuous | Trigger::Event { .. } => return None,
    };
    Some(RunRequest {
        trigger,
        ..request.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::verdict::Counts;
    use crate::watch::Candidate;

    fn verdict(outcome: Outcome, pooled: usize) -> Verdict {
        Verdict {
            outcome,
            fails: false,
            counts: Counts::default(),
            baseline: vec!["b1".into(); 5],
            pooled: (0..pooled).map(|n| format!("p{n}")).collect(),
            lineage: Vec::new(),
            needed: 5,
            findings: Vec::new(),
            more_runs: Some(2),
            policy: Policy::default(),
            declared: BTreeMap::new(),
        }
    }

    fn change() -> RunRequest {
        RunRequest::pipelines(
            vec!["demo".into()],
            Trigger::Change {
                candidate: Candidate::default(),
                action: Action::RunPipeline,
            },
        )
    }

    #[test]
    fn an_inconclusive_change_runs_again_without_a_new_deploy() {
        let again = again(&change(), Some(&verdict(Outcome::Inconclusive, 0))).unwrap();
        assert_eq!(
            again.trigger,
            Trigger::Change {
                candidate: Candidate::default(),
                action: Action::RerunScenarios
            }
        );
        assert_eq!(again.selection, change().selection);
    }

    #[test]
    fn a_decided_or_unjudged_run_is_not_run_again() {
        for outcome in [Outcome::Same, Outcome::Different, Outcome::NotEnoughHistory] {
            assert!(
                again(&change(), Some(&verdict(outcome, 0))).is_none(),
                "{outcome:?}"
            );
        }
        assert!(again(&change(), None).is_none());
    }

    #[test]
    fn the_looks_the_policy_allows_bound_the_runs_again() {
        let max = Policy::default().max_looks;
        assert!(again(&change(), Some(&verdict(Outcome::Inconclusive, max - 2))).is_some());
        assert!(again(&change(), Some(&verdict(Outcome::Inconclusive, max - 1))).is_none());
    }

    #[test]
    fn only_runs_the_server_started_for_a_candidate_are_run_again() {
        let inconclusive = verdict(Outcome::Inconclusive, 0);
        let schedule = RunRequest::pipelines(
            vec!["demo".into()],
            Trigger::Schedule {
                pattern: "0 3 * * *".into(),
            },
        );
        assert_eq!(
            again(&schedule, Some(&inconclusive)).map(|r| r.trigger),
            Some(schedule.trigger.clone())
        );
        for trigger in [
            Trigger::Person,
            Trigger::Continuous,
            Trigger::Event {
                entry: 0,
                vars: BTreeMap::new(),
            },
        ] {
            let request = RunRequest::pipelines(vec!["demo".into()], trigger);
            assert!(again(&request, Some(&inconclusive)).is_none());
        }
    }
}
