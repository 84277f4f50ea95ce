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
use crate::judge::features::{self, Packed};
use crate::judge::{Case, Features, Policy, Verdict};
use crate::record::{Judgement, RunRecord, Status};

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
        let store = self.store()?;
        if let Some(packed) = store
            .features::<Packed>(&run.id)?
            .filter(|p| p.extraction == features::EXTRACTION)
        {
            return Ok(packed.unpack());
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
        Ok(f)
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
        let baseline_ids: Vec<&str> = choice.chosen.iter().map(|(id, _)| id.as_str()).collect();
        let pooled_ids: Vec<&str> = choice.pooled.iter().map(String::as_str).collect();
        let verdict = self.compute(run, &baseline_ids, &pooled_ids, declared, policy)?;
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
        let baseline_ids: Vec<&str> = stored.baseline.iter().map(String::as_str).collect();
        let pooled_ids: Vec<&str> = stored.pooled.iter().map(String::as_str).collect();
        let verdict = self.compute(
            run,
            &baseline_ids,
            &pooled_ids,
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
            },
            verdict,
            record: run.clone(),
            matches_stored: Some(matches),
        })
    }

    fn compute(
        &self,
        run: &RunRecord,
        baseline_ids: &[&str],
        pooled_ids: &[&str],
        declared: &BTreeMap<String, Declared>,
        policy: &Policy,
    ) -> Result<Verdict, Error> {
        let store = self.store()?;
        let features_of = |id: &str| -> Result<Option<Features>, Error> {
            match store.run(id)? {
                Some(r) => Ok(Some(self.features(&r)?)),
                None => Ok(None),
            }
        };
        let own = self.features(run)?;
        let mut baseline: Vec<(String, Features)> = Vec::new();
        for id in baseline_ids {
            // A run pruned meanwhile is no longer there to compare with.
            if let Some(f) = features_of(id)? {
                baseline.push((id.to_string(), f));
            }
        }
        let mut pooled: Vec<(String, Features)> = Vec::new();
        for id in pooled_ids {
            if let Some(f) = features_of(id)? {
                pooled.push((id.to_string(), f));
            }
        }
        let base: Vec<(&str, &Features)> = baseline.iter().map(|(i, f)| (i.as_str(), f)).collect();
        let pool: Vec<&Features> = pooled.iter().map(|(_, f)| f).collect();
        let mut verdict = crate::judge::verdict::judge(&Case {
            run: &own,
            pooled: &pool,
            baseline: &base,
            declared,
            policy,
        });
        verdict.pooled = pooled.into_iter().map(|(id, _)| id).collect();
        Ok(verdict)
    }
}
