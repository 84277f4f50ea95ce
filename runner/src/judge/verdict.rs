//! The verdict: every feature of a run judged against its baseline, corrected for judging
//! thousands at once, and summed up for the run — with the reasons kept.
//!
//! Per feature (the run's value, or the mean of the candidate's runs when its earlier runs
//! are pooled with it):
//! - the effect against the baseline's center, in the metric's unit, relative, and in
//!   noise units, with a 95 % interval;
//! - p from Student's t on the robust noise ([`super::noise`]) — one run's value is the
//!   unit, because runs differ from each other more than samples within a run do;
//! - the rank test as a gate: the candidate must sit beyond (nearly) every baseline value
//!   (one run) or differ by Mann-Whitney (several), so a tail the t test trusts too much
//!   cannot flag alone; Mann-Whitney and Kolmogorov-Smirnov of the in-run blocks are
//!   reported beside it, for the shape;
//! - a constant baseline is judged by how many runs agreed: one odd value among n is
//!   p = 1/(n+1), and each run of the candidate that repeats it multiplies that.
//!
//! Three outcomes, as Chromium's Pinpoint has them: DIFFERENT when p is small after the
//! correction and the effect is worth a flag; INCONCLUSIVE when it leans that way but is
//! not there yet (the candidate is run again and the runs pooled; a bounded number of
//! looks share the level, so looking again never inflates it); SAME otherwise.
//!
//! Correction, in two families, each selecting groups first (Simes' p per group) and then
//! features within the selected groups (Benjamini and Bogomolov's selective scheme), so a
//! clean run flags with probability at most the level however many features it has:
//! - critical: the features of declared-critical metrics, asked only "did it regress?"
//!   (one-sided where the better direction is declared), grouped by metric, Holm over the
//!   metrics at a strict level — a regression of many correlated statistics of one
//!   metric adds up instead of being divided by their number;
//! - the rest (a critical feature's improvements too): grouped by source,
//!   Benjamini-Hochberg over the sources and within each selected one.
//!
//! The looks at one candidate share each level, later looks spending more.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::declared::{Better, Declared, Effect, Unit};
use super::features::{FeatureId, Features, Name, Stat};
use super::noise::{self, Noise, Shape};
use super::stats;

/// How the judge decides: levels, sizes, and what fails a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Family-wise level for the critical features together.
    pub critical_level: f64,
    /// False-discovery level for every other feature.
    pub fdr: f64,
    /// An uncorrected p below this (with a worthwhile effect) is a lean: INCONCLUSIVE.
    pub lean: f64,
    /// Runs of the same candidate judged together at most (the first included).
    pub max_looks: usize,
    /// Baseline runs needed to judge at all.
    pub min_baseline: usize,
    /// Baseline runs used at most (the newest).
    pub baseline_runs: usize,
    /// A critical feature that regressed fails the run.
    pub fail_on_critical: bool,
    /// Any feature that regressed fails the run.
    pub fail_on_any: bool,
    /// Earlier candidates a feature's drift is looked for across (0: none).
    #[serde(default = "default_drift_candidates")]
    pub drift_candidates: usize,
    /// Whether a host's own metrics (the machine, which other work shares) can fail a
    /// run; by default they are judged and listed, report-only, and never drift.
    #[serde(default)]
    pub machine_fails: bool,
}

fn default_drift_candidates() -> usize {
    60
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            critical_level: 0.01,
            fdr: 0.01,
            lean: 0.01,
            max_looks: 4,
            min_baseline: noise::MIN_BASELINE,
            baseline_runs: 30,
            fail_on_critical: true,
            fail_on_any: false,
            drift_candidates: default_drift_candidates(),
            machine_fails: false,
        }
    }
}

impl Policy {
    /// The level look `look` may spend: the looks at one candidate share the level (so
    /// looking again as its runs accumulate never inflates it), later looks more — they
    /// see more runs, and a large shift is decided at the first look at any level.
    pub fn at_look(&self, level: f64, look: usize) -> f64 {
        let looks = self.max_looks.max(1);
        let look = look.clamp(1, looks);
        level * look as f64 / (looks * (looks + 1) / 2) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Different,
    Same,
    Inconclusive,
    /// Too few comparable runs had it.
    NotEnough,
    /// Most comparable runs had it; this one has not.
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Regressed,
    Improved,
    /// Different, and nothing says which way is better.
    Changed,
}

/// The in-run blocks' rank tests against the baseline's blocks (for the shape).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blocks {
    pub mann_whitney_p: f64,
    pub ks_d: f64,
    pub ks_p: f64,
}

/// One feature, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub feature: FeatureId,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    pub critical: bool,
    /// History flags it far more often than it should: listed, never failing a run.
    pub report_only: bool,
    pub shape: Option<Shape>,
    pub unit: Unit,
    /// The candidate's value (the mean of its runs).
    pub value: f64,
    pub center: f64,
    pub noise: f64,
    pub effect: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<f64>,
    /// 95 % interval of the effect.
    pub interval: (f64, f64),
    /// The effect in noise units.
    pub noise_units: f64,
    pub p: f64,
    /// p after the correction (critical: Holm; the rest: selective BH).
    pub q: f64,
    pub rank_p: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Blocks>,
    pub baseline_n: usize,
    pub candidate_n: usize,
    /// A declared limit the value broke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// Runs of this candidate that would likely decide an inconclusive feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_runs: Option<usize>,
    /// Other flagged features of the same scenario and source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved_with: Vec<String>,
    /// A soft condition that explains this feature's history (`host.kernel=6.1`): it was
    /// compared only with runs under the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyed_by: Option<String>,
    /// A slow drift across the earlier candidates that this one continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
}

/// A change point in a feature's series across candidates (one value each, oldest
/// first, this candidate last) whose later segment this candidate ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The run of the first candidate after the change point.
    pub since: String,
    /// Candidates in the later segment, this one included.
    pub candidates: usize,
    /// The segments' means: before the change point and since.
    pub before: f64,
    pub after: f64,
    /// The change point's p (Otava's t test of the two segments), and after the
    /// correction over every feature's drift.
    pub p: f64,
    pub q: f64,
}

pub use crate::record::Outcome;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub features: usize,
    pub regressed: usize,
    pub improved: usize,
    pub changed: usize,
    pub inconclusive: usize,
    pub same: usize,
    pub missing: usize,
    pub not_enough: usize,
    /// Flagged, but report-only.
    pub report_only: usize,
    pub limits: usize,
}

/// A run's verdict: stored with it, reproducible from the stored inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Whether the policy fails the run for it.
    pub fails: bool,
    pub counts: Counts,
    /// The baseline runs (ids), newest first.
    pub baseline: Vec<String>,
    /// Earlier runs of the same candidate judged together with this one.
    pub pooled: Vec<String>,
    /// One run per earlier candidate, oldest first: where drift was looked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<String>,
    /// Comparable runs needed to judge (when there were too few).
    pub needed: usize,
    /// Every feature that is not SAME, regressions first.
    pub findings: Vec<Judged>,
    /// Runs of this candidate that would likely decide it, when inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_runs: Option<usize>,
    pub policy: Policy,
    /// What the environment declared, as judged with.
    pub declared: BTreeMap<String, Declared>,
}

impl Verdict {
    /// The run's judgement in one line: `DIFFERENT: 2 regressed (…), 1 improved`.
    pub fn headline(&self) -> String {
        let c = &self.counts;
        match self.outcome {
            Outcome::NotEnoughHistory => format!(
                "{}: {} of the {} comparable runs needed{}",
                self.outcome.as_str(),
                self.baseline.len(),
                self.needed,
                if c.limits > 0 {
                    format!("; {} over a declared limit", c.limits)
                } else {
                    String::new()
                }
            ),
            _ => {
                let mut parts = Vec::new();
                for (n, what) in [
                    (c.limits, "over a declared limit"),
                    (c.regressed, "regressed"),
                    (c.changed, "changed"),
                    (c.missing, "missing"),
                    (c.improved, "improved"),
                    (c.inconclusive, "inconclusive"),
                    (c.report_only, "report-only flagged"),
                ] {
                    if n > 0 {
                        parts.push(format!("{n} {what}"));
                    }
                }
                let worst = self
                    .findings
                    .iter()
                    .find(|j| !j.report_only && j.decision == Decision::Different)
                    .map(|j| format!("; worst: {}", j.summary()))
                    .unwrap_or_default();
                let more = match (self.outcome, self.more_runs) {
                    (Outcome::Inconclusive, Some(n)) => {
                        format!("; about {n} more run{} would decide", plural(n))
                    }
                    _ => String::new(),
                };
                format!(
                    "{}: {} features against {} runs{}{}{worst}{more}",
                    self.outcome.as_str(),
                    c.features,
                    self.baseline.len(),
                    if parts.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", parts.join(", "))
                    },
                    if self.pooled.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (pooled with {} earlier run{})",
                            self.pooled.len(),
                            plural(self.pooled.len())
                        )
                    },
                )
            }
        }
    }

    /// Whether `lowtouch judge` exits 1: a feature that is not report-only regressed,
    /// changed where nothing says which way is better, went missing, or broke a limit.
    pub fn regressed(&self) -> bool {
        self.findings.iter().any(|j| {
            j.limit.is_some()
                || (!j.report_only
                    && (j.decision == Decision::Missing
                        || (j.decision == Decision::Different
                            && j.direction != Some(Direction::Improved))))
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Judged {
    /// `failover [load] Backup internal_latency_us p99 +158 % (1.2 ms → 3.1 ms)`.
    pub fn summary(&self) -> String {
        let rel = match self.relative {
            Some(r) => format!("{:+.0} %", r * 100.0),
            None => format!("{:+}", self.unit.show(self.effect)),
        };
        match self.decision {
            Decision::Missing => format!("{} no longer observed", self.feature),
            _ if self.limit.is_some() => format!(
                "{} {} over the limit {}",
                self.feature,
                self.unit.show(self.value),
                self.unit.show(self.limit.unwrap_or_default())
            ),
            _ => format!(
                "{} {rel} ({} → {})",
                self.feature,
                self.unit.show(self.center),
                self.unit.show(self.value)
            ),
        }
    }

    /// Why, in numbers: the statistic, p and q, the effect with its interval, the
    /// baseline and its noise, what moved with it.
    pub fn explanation(&self) -> String {
        let mut text = format!(
            "effect {} ({:+.1} noise units), 95 % interval {} .. {}; p={}, q={}, rank p={}; \
             baseline {} runs, center {}, noise {}",
            self.unit.show(self.effect),
            self.noise_units,
            self.unit.show(self.interval.0),
            self.unit.show(self.interval.1),
            super::declared::sig(self.p),
            super::declared::sig(self.q),
            super::declared::sig(self.rank_p),
            self.baseline_n,
            self.unit.show(self.center),
            self.unit.show(self.noise),
        );
        if let Some(shape) = self.shape.filter(|s| *s != Shape::Spread) {
            text.push_str(&format!(" ({shape:?} history)").to_lowercase());
        }
        if self.candidate_n > 1 {
            text.push_str(&format!("; {} runs of the candidate", self.candidate_n));
        }
        if let Some(b) = &self.blocks {
            text.push_str(&format!(
                "; in-run blocks: Mann-Whitney p={}, KS D={:.2}",
                super::declared::sig(b.mann_whitney_p),
                b.ks_d
            ));
        }
        if !self.moved_with.is_empty() {
            text.push_str(&format!("; moved with: {}", self.moved_with.join(", ")));
        }
        if let Some(d) = &self.drift {
            text.push_str(&format!(
                "; drifted {} → {} over the last {} candidates (since run {}; change point p={}, q={})",
                self.unit.show(d.before),
                self.unit.show(d.after),
                d.candidates,
                d.since,
                super::declared::sig(d.p),
                super::declared::sig(d.q),
            ));
        }
        if let Some(key) = &self.keyed_by {
            text.push_str(&format!(
                "; compared only with runs where {key} (history shows it matters)"
            ));
        }
        text
    }
}

/// What the judge needs: the run's features, the candidate's earlier runs pooled with it,
/// the baseline's, the environment's declarations and the policy.
pub struct Case<'a> {
    pub run: &'a Features,
    pub pooled: &'a [&'a Features],
    /// Baseline runs: id and features, newest first.
    pub baseline: &'a [(&'a str, &'a Features)],
    /// One run per earlier candidate, oldest first (`baseline::Choice::lineage`).
    pub lineage: &'a [(&'a str, &'a Features)],
    pub declared: &'a BTreeMap<String, Declared>,
    pub policy: &'a Policy,
}

/// What is known of a feature's metric: declared for its name, or lowtouch's own.
fn declared_for(f: &FeatureId, declared: &BTreeMap<String, Declared>) -> Declared {
    if f.stat.is_time() {
        return Declared {
            unit: Unit::Us,
            better: Some(Better::Lower),
            ..Declared::default()
        };
    }
    let d = declared
        .get(f.series.name.as_str())
        .cloned()
        .or_else(|| super::declared::own(&f.series.name))
        .unwrap_or_default();
    match f.stat {
        s if s.in_series_unit() => d,
        // A leak or a creep climbs: the slope is better the way the values are.
        Stat::Slope => Declared {
            better: d.better,
            ..Declared::default()
        },
        _ => Declared::default(),
    }
}

/// The smallest change of a time (a step's duration, a step to an event) worth a flag, in
/// µs: below a millisecond a step's time on a shared machine is its scheduling (an `echo`
/// of 7 µs takes 190 µs now and then), not the system's behaviour; a busy machine delays
/// a step by a few milliseconds (the demo's clean runs: 1.4 to 6 ms, a compile beside
/// them), so that is the floor.
pub const TIME_RESOLUTION_US: f64 = 5000.0;

/// The degrees of freedom a single run's t test is held to: Student's t with 3 has tails
/// like the hiccups of a shared machine (a 20-noise-unit spike is p = 3e-4 there, not
/// 1e-15), so one odd run leans instead of failing; a real shift shows again in the
/// candidate's next run and is decided then.
pub const SINGLE_RUN_DF: f64 = 3.0;

/// How many levels `sorted` takes when values within `tolerance` of a level's first are
/// one, and the smallest step between two levels (none with one level).
fn levels(sorted: &[f64], tolerance: f64) -> (usize, Option<f64>) {
    let mut starts: Vec<f64> = Vec::new();
    for &v in sorted {
        if starts.last().is_none_or(|s| v - s > tolerance) {
            starts.push(v);
        }
    }
    let quantum = starts
        .windows(2)
        .map(|w| w[1] - w[0])
        .min_by(|a, b| a.total_cmp(b));
    (starts.len(), quantum)
}

/// For a feature whose history takes few levels, when every candidate run has a value
/// history has had (within `tolerance`, inside its central 80 %): the rank p of the candidate's runs among the
/// history's (`sorted`; one run: its rank; several: Mann-Whitney). `None` otherwise.
fn seen_before(cand: &[f64], sorted: &[f64], tolerance: f64) -> Option<f64> {
    // Seen, and not only at the edge: a value the history had once in a hiccup is not
    // vouched for by it (a latency's p99 of 25 µs where it is 5 µs but for one run).
    let (low, high) = (
        stats::quantile(sorted, 0.1) - tolerance,
        stats::quantile(sorted, 0.9) + tolerance,
    );
    let seen = cand.iter().all(|c| {
        (low..=high).contains(c)
            && sorted
                .iter()
                .any(|r| (c - r).abs() <= tolerance.max(1e-9 * c.abs().max(r.abs())))
    });
    if !seen {
        return None;
    }
    Some(match cand {
        [one] => stats::rank_p(*one, sorted),
        _ => stats::mann_whitney(cand, sorted).p,
    })
}

/// Candidates a feature's drift needs at least before it is looked for.
pub const DRIFT_MIN_CANDIDATES: usize = 10;

/// Candidates on each side of a drift's change point at least.
pub const DRIFT_MIN_SIDE: usize = 5;

/// A change point across the candidates (`series`: the lineage's values, oldest first,
/// this candidate's last; `ids` the lineage's runs) whose later segment ends with this
/// candidate and is worse than the segment before by an effect worth a flag — or, where
/// nothing says which way is better, different by one.
fn drift(series: &[f64], ids: &[&str], judged: &Judged, d: &Declared) -> Option<Drift> {
    if judged.decision == Decision::NotEnough || series.len() < DRIFT_MIN_CANDIDATES {
        return None;
    }
    let cp = super::changepoint::newest_shift(series, &super::changepoint::Config::default())?;
    let step = cp.mean_after - cp.mean_before;
    let worse = match d.better {
        Some(Better::Lower) => step > 0.0,
        Some(Better::Higher) => step < 0.0,
        None => step != 0.0,
    };
    let min_effect = match d.min_effect {
        Some(Effect::Relative(r)) => r * cp.mean_before.abs(),
        Some(Effect::Absolute(a)) => a,
        // As for the comparison with the baseline: 1.5 noise units (a split chosen as the
        // best of n - 1 in flat noise differs by less), at least half a percent.
        None => (1.5 * judged.noise).max(0.005 * cp.mean_before.abs()),
    };
    // Each side a few candidates long: a split off the ends of flat noise (three odd
    // values at the start) is how a best split of many finds chance.
    let sides = cp.index.min(series.len().saturating_sub(cp.index));
    if !worse || step.abs() < min_effect || sides < DRIFT_MIN_SIDE {
        return None;
    }
    // The split was the best of the series' n - 1: its p is corrected for the search.
    let p = (cp.p * (series.len() - 1) as f64).min(1.0);
    Some(Drift {
        since: ids.get(cp.index).copied().unwrap_or("this run").to_string(),
        candidates: series.len() - cp.index,
        before: cp.mean_before,
        after: cp.mean_after,
        p,
        q: p,
    })
}

/// Benjamini-Hochberg over every feature's drift p; a drift whose q is under the false
/// discovery level makes its feature DIFFERENT (when the comparison with the baseline had
/// not already), explained by the drift.
fn correct_drift(tested: &mut [Tested], policy: &Policy) {
    let at: Vec<usize> = (0..tested.len())
        .filter(|i| tested[*i].drift.is_some() && !tested[*i].judged.report_only)
        .collect();
    let p: Vec<f64> = at
        .iter()
        .filter_map(|i| tested[*i].drift.as_ref().map(|d| d.p))
        .collect();
    let q = stats::benjamini_hochberg(&p);
    for (i, q) in at.into_iter().zip(q) {
        let t = &mut tested[i];
        let Some(mut d) = t.drift.take() else {
            continue;
        };
        if q > policy.fdr {
            continue;
        }
        d.q = q;
        t.judged.drift = Some(d);
    }
}

/// One feature's numbers before the correction.
struct Tested {
    judged: Judged,
    /// Whether the effect is worth a flag and the rank gate passed.
    worth: bool,
    gate: bool,
    /// A constant baseline departed from: whether every candidate run departs the same way.
    departed: Option<bool>,
    /// Judged in the critical family: a declared-critical feature, tested one-sided for a
    /// regression where its better direction is declared (its improvement is judged with
    /// the rest).
    in_critical: bool,
    /// Comparable runs had it, this one has not: `p` is how rare that is in history.
    absent: bool,
    /// A change point across the candidates, before its correction.
    drift: Option<Drift>,
}

/// One run's features read in ascending order of id, as a merge: thousands of features
/// against 30 runs would otherwise be a tree search per feature and run.
struct Cursor<'a> {
    values: std::iter::Peekable<std::collections::btree_map::Iter<'a, FeatureId, f64>>,
    /// Scenarios the run has features of: an event count it lacks there is 0.
    scopes: std::collections::HashSet<&'a str>,
}

impl<'a> Cursor<'a> {
    fn new(features: &'a Features) -> Cursor<'a> {
        Cursor {
            values: features.values.iter().peekable(),
            // Keys come sorted by scenario first: one insert per scenario.
            scopes: {
                let mut scopes = std::collections::HashSet::new();
                let mut last: Option<&str> = None;
                for k in features.values.keys() {
                    if last != Some(k.series.scope.as_str()) {
                        last = Some(k.series.scope.as_str());
                        scopes.insert(k.series.scope.as_str());
                    }
                }
                scopes
            },
        }
    }

    /// The value of `f` (asked in ascending order of id), if finite.
    fn value(&mut self, f: &FeatureId) -> Option<f64> {
        while self.values.next_if(|(k, _)| *k < f).is_some() {}
        let v = match self.values.peek() {
            Some((k, v)) if *k == f => Some(**v),
            _ if f.stat == Stat::Events && self.scopes.contains(f.series.scope.as_str()) => {
                Some(0.0)
            }
            _ => None,
        };
        v.filter(|v| v.is_finite())
    }
}

/// The ids of every feature any of `runs` has, ascending: a k-way merge of their sorted
/// features (each step compares the heads, not a tree search per id and run).
fn union<'a>(runs: impl Iterator<Item = &'a Features>) -> Vec<&'a FeatureId> {
    let mut heads: Vec<_> = runs.map(|f| f.values.keys().peekable()).collect();
    let mut out = Vec::new();
    loop {
        let next = heads.iter_mut().filter_map(|h| h.peek().copied()).min();
        let Some(next) = next else {
            return out;
        };
        for h in &mut heads {
            h.next_if(|k| *k == next);
        }
        out.push(next);
    }
}

/// Judges `case`.
pub fn judge(case: &Case<'_>) -> Verdict {
    let policy = case.policy;
    let look = case.pooled.len() + 1;
    let enough = case.baseline.len() >= policy.min_baseline;
    // Every feature of the run or of its baseline (one it lacks is missing, or a zero
    // count), in order: a merge of the runs' sorted features.
    let ids = union(std::iter::once(case.run).chain(case.baseline.iter().map(|(_, b)| *b)));
    let mut tested: Vec<Tested> = Vec::new();
    let mut counts = Counts::default();
    let mut quantiles = T975::default();
    let mut own_values = Cursor::new(case.run);
    let mut baseline: Vec<Cursor<'_>> = case.baseline.iter().map(|(_, b)| Cursor::new(b)).collect();
    let mut pooled: Vec<Cursor<'_>> = case.pooled.iter().map(|p| Cursor::new(p)).collect();
    let mut lineage: Vec<Cursor<'_>> = case.lineage.iter().map(|(_, l)| Cursor::new(l)).collect();
    // A host's own series (unless the policy lets them fail): listed, never failing.
    let machine = |f: &FeatureId| {
        !policy.machine_fails && case.run.machine.contains(f.series.source.as_str())
    };
    // Which baseline runs had the scenario's text as this run has it: features come
    // grouped by scenario, so this is worked out once per scenario.
    let mut scope: Option<&str> = None;
    let mut comparable: Vec<bool> = Vec::new();
    for f in ids {
        if scope != Some(f.series.scope.as_str()) {
            scope = Some(f.series.scope.as_str());
            let content = case.run.scopes.get(f.series.scope.as_str());
            comparable = case
                .baseline
                .iter()
                .map(
                    |(_, b)| match (content, b.scopes.get(f.series.scope.as_str())) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    },
                )
                .collect();
        }
        let mut keyed_by = None;
        let with_runs: Vec<(f64, &Features)> = baseline
            .iter_mut()
            .zip(&comparable)
            .zip(case.baseline)
            .filter_map(|((c, ok), (_, b))| c.value(f).filter(|_| *ok).map(|v| (v, *b)))
            .collect();
        let base: Vec<f64> = match explained_by(&with_runs, &case.run.covariates) {
            Some((key, level)) => {
                keyed_by = Some(key);
                level
            }
            None => with_runs.iter().map(|(v, _)| *v).collect(),
        };
        let Some(own) = own_values.value(f) else {
            // Had by most comparable runs, not by this one: as rare as history says a run
            // without it is, and rarer with each earlier run of the candidate that lacked
            // it too (a step's event that sometimes lands in the next step's window is
            // not a change).
            let had = comparable.iter().filter(|c| **c).count();
            if enough && !machine(f) && f.stat != Stat::Events && base.len() * 5 >= had * 4 {
                let lacking_looks = 1 + pooled
                    .iter_mut()
                    .map(|p| p.value(f))
                    .filter(Option::is_none)
                    .count();
                let rare = (had - base.len() + 1) as f64 / (had + 1) as f64;
                let mut judged = missing(f, &base, declared_for(f, case.declared));
                judged.p = stats::binomial_tail(lacking_looks, look, rare);
                judged.q = judged.p;
                judged.rank_p = judged.p;
                tested.push(Tested {
                    judged,
                    worth: true,
                    gate: true,
                    departed: None,
                    in_critical: false,
                    absent: true,
                    drift: None,
                });
            }
            continue;
        };
        counts.features += 1;
        let mut cand = vec![own];
        cand.extend(pooled.iter_mut().filter_map(|p| p.value(f)));
        let d = declared_for(f, case.declared);
        let mut t = test(f, &cand, &base, &d, policy, &mut quantiles);
        t.judged.keyed_by = keyed_by;
        if machine(f) {
            // The host's own metrics move with whatever else the machine runs: listed
            // when they move, never failing the run, no drift (the machine's memory
            // climbs over a day of runs).
            t.judged.report_only = true;
        } else if enough && case.lineage.len() >= DRIFT_MIN_CANDIDATES {
            let mut series: Vec<f64> = Vec::with_capacity(case.lineage.len() + 1);
            let mut ids: Vec<&str> = Vec::with_capacity(case.lineage.len());
            for (c, (id, _)) in lineage.iter_mut().zip(case.lineage) {
                if let Some(v) = c.value(f) {
                    series.push(v);
                    ids.push(id);
                }
            }
            series.push(t.judged.value);
            t.drift = drift(&series, &ids, &t.judged, &d);
        }
        if let Some(limit) = d.max.filter(|m| f.stat.in_series_unit() && own > *m) {
            t.judged.limit = Some(limit);
        }
        if let (Some(mine), true) = (case.run.blocks.get(&f.series), f.stat == Stat::Mean) {
            let theirs: Vec<f64> = case
                .baseline
                .iter()
                .zip(&comparable)
                .filter(|(_, ok)| **ok)
                .filter_map(|((_, b), _)| b.blocks.get(&f.series))
                .flatten()
                .copied()
                .collect();
            if !theirs.is_empty() {
                let (ks_d, ks_p) = stats::kolmogorov_smirnov(mine, &theirs);
                t.judged.blocks = Some(Blocks {
                    mann_whitney_p: stats::mann_whitney(mine, &theirs).p,
                    ks_d,
                    ks_p,
                });
            }
        }
        tested.push(t);
    }

    correct(&mut tested, policy, look);
    correct_drift(&mut tested, policy);

    // Decide each feature.
    let mut lean_after_correction = false;
    for t in &mut tested {
        let j = &mut t.judged;
        if j.decision == Decision::NotEnough {
            continue;
        }
        let level = if t.in_critical {
            policy.at_look(policy.critical_level, look)
        } else {
            policy.at_look(policy.fdr, look)
        };
        // A value no comparable run ever had is judged like any other (one such value
        // among n runs is p = 1/(n+1), each further run of the candidate that repeats it
        // multiplies that), and listed as leaning until then.
        let lean = j.p <= policy.lean || j.q <= 10.0 * level || t.departed == Some(true);
        j.decision = if j.drift.is_some() {
            Decision::Different
        } else if t.worth && t.gate && j.q <= level {
            if t.absent {
                Decision::Missing
            } else {
                Decision::Different
            }
        } else if t.worth && t.gate && lean {
            if t.in_critical || j.q <= 10.0 * level {
                lean_after_correction |= !j.report_only;
            }
            Decision::Inconclusive
        } else {
            Decision::Same
        };
        if j.decision == Decision::Different {
            let up = match &j.drift {
                Some(d) => d.after > d.before,
                None => j.effect > 0.0,
            };
            j.direction = Some(match declared_for(&j.feature, case.declared).better {
                Some(Better::Lower) if up => Direction::Regressed,
                Some(Better::Higher) if !up => Direction::Regressed,
                Some(_) => Direction::Improved,
                None => Direction::Changed,
            });
        }
        if j.decision == Decision::Inconclusive {
            j.more_runs = runs_to_decide(j, policy, look);
        }
    }

    // Count, and keep what is not SAME.
    let mut findings: Vec<Judged> = Vec::new();
    let mut fails = false;
    for t in tested {
        let j = t.judged;
        if j.limit.is_some() {
            counts.limits += 1;
            fails = true;
        }
        match (j.decision, j.report_only) {
            (Decision::Same, _) if j.limit.is_none() => {
                counts.same += 1;
                continue;
            }
            (Decision::NotEnough, _) if j.limit.is_none() => {
                counts.not_enough += 1;
                continue;
            }
            (Decision::Different, true) => counts.report_only += 1,
            (Decision::Different, false) => match j.direction {
                Some(Direction::Regressed) => {
                    counts.regressed += 1;
                    fails |= policy.fail_on_any || (j.critical && policy.fail_on_critical);
                }
                Some(Direction::Improved) => counts.improved += 1,
                _ => {
                    counts.changed += 1;
                    fails |= policy.fail_on_any;
                }
            },
            (Decision::Inconclusive, false) => counts.inconclusive += 1,
            (Decision::Missing, false) => counts.missing += 1,
            _ => {}
        }
        findings.push(j);
    }
    // What moved together: flagged features of the same scenario and source.
    let flagged: Vec<(Name, Name, String)> = findings
        .iter()
        .filter(|j| j.decision == Decision::Different)
        .map(|j| {
            (
                j.feature.series.scope.clone(),
                j.feature.series.source.clone(),
                format!("{} {}", j.feature.series.name, j.feature.stat.as_str()),
            )
        })
        .collect();
    for j in findings
        .iter_mut()
        .filter(|j| j.decision == Decision::Different)
    {
        let me = format!("{} {}", j.feature.series.name, j.feature.stat.as_str());
        j.moved_with = flagged
            .iter()
            .filter(|(scope, source, name)| {
                *scope == j.feature.series.scope
                    && *source == j.feature.series.source
                    && *name != me
            })
            .map(|(_, _, name)| name.clone())
            .take(5)
            .collect();
    }
    findings.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(b.noise_units.abs().total_cmp(&a.noise_units.abs()))
    });

    let outcome = if !enough {
        Outcome::NotEnoughHistory
    } else if counts.regressed + counts.improved + counts.changed + counts.missing > 0 {
        Outcome::Different
    } else if lean_after_correction && look < policy.max_looks {
        Outcome::Inconclusive
    } else {
        Outcome::Same
    };
    if !enough {
        // Not judged against history: only the declared limits stand.
        findings.retain(|j| j.limit.is_some());
    }
    let more_runs = (outcome == Outcome::Inconclusive)
        .then(|| {
            findings
                .iter()
                .filter(|j| j.decision == Decision::Inconclusive && !j.report_only)
                .filter_map(|j| j.more_runs)
                .min()
        })
        .flatten();
    Verdict {
        outcome,
        fails,
        counts,
        baseline: case.baseline.iter().map(|(id, _)| id.to_string()).collect(),
        pooled: Vec::new(),
        lineage: case.lineage.iter().map(|(id, _)| id.to_string()).collect(),
        needed: policy.min_baseline,
        findings,
        more_runs,
        policy: policy.clone(),
        declared: case.declared.clone(),
    }
}

/// Order of the findings: limits and regressions first, then changes, improvements,
/// leans, report-only ones last.
fn rank(j: &Judged) -> u8 {
    match (j.limit.is_some(), j.report_only, j.decision, j.direction) {
        (true, ..) => 0,
        (_, true, ..) => 6,
        (_, _, Decision::Different, Some(Direction::Regressed)) => 1,
        (_, _, Decision::Different, Some(Direction::Changed)) | (_, _, Decision::Missing, _) => 2,
        (_, _, Decision::Different, _) => 3,
        (_, _, Decision::Inconclusive, _) => 4,
        _ => 5,
    }
}

/// A feature the run lacks, to be judged by how rare that is (`Same` until then).
fn missing(f: &FeatureId, base: &[f64], d: Declared) -> Judged {
    Judged {
        decision: Decision::Same,
        direction: Some(Direction::Changed),
        center: stats::median(base),
        candidate_n: 0,
        ..Judged::untested(f, &d, 0.0, base.len())
    }
}

impl Judged {
    /// `f` with its value and nothing tested yet: no effect, p = 1.
    fn untested(f: &FeatureId, d: &Declared, value: f64, baseline_n: usize) -> Judged {
        Judged {
            feature: f.clone(),
            decision: Decision::NotEnough,
            direction: None,
            critical: d.critical && f.stat.in_series_unit(),
            report_only: false,
            shape: None,
            unit: d.unit,
            value,
            center: value,
            noise: 0.0,
            effect: 0.0,
            relative: None,
            interval: (0.0, 0.0),
            noise_units: 0.0,
            p: 1.0,
            q: 1.0,
            rank_p: 1.0,
            blocks: None,
            baseline_n,
            candidate_n: 1,
            limit: None,
            more_runs: None,
            moved_with: Vec::new(),
            keyed_by: None,
            drift: None,
        }
    }
}

/// The soft condition that explains a feature's history, if one does, and the baseline
/// values under the run's own level of it: a condition whose levels (each held by 3 runs
/// or more) have medians further apart than 3 noise units of the whole baseline.
fn explained_by(
    base: &[(f64, &Features)],
    own: &BTreeMap<String, String>,
) -> Option<(String, Vec<f64>)> {
    if base.len() < 6 {
        return None;
    }
    let values: Vec<f64> = base.iter().map(|(v, _)| *v).collect();
    let noise = noise::qn(&values);
    if noise <= 0.0 {
        return None;
    }
    let mut best: Option<(f64, String, Vec<f64>)> = None;
    for (key, mine) in own {
        let mut levels: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (v, f) in base {
            if let Some(level) = f.covariates.get(key) {
                levels.entry(level.as_str()).or_default().push(*v);
            }
        }
        let held: Vec<f64> = levels
            .values()
            .filter(|v| v.len() >= 3)
            .map(|v| stats::median(v))
            .collect();
        if held.len() < 2 {
            continue;
        }
        let spread = held.iter().cloned().fold(f64::MIN, f64::max)
            - held.iter().cloned().fold(f64::MAX, f64::min);
        if spread > 3.0 * noise && best.as_ref().is_none_or(|b| spread > b.0) {
            let same = levels.get(mine.as_str()).cloned().unwrap_or_default();
            best = Some((spread, format!("{key}={mine}"), same));
        }
    }
    best.map(|(_, key, values)| (key, values))
}

/// 97.5 % t quantiles by degrees of freedom: statrs finds one by search, and a verdict
/// needs the same few (one per baseline size) thousands of times.
#[derive(Default)]
struct T975(std::collections::HashMap<u64, f64>);

impl T975 {
    fn get(&mut self, df: f64) -> f64 {
        *self
            .0
            .entry(df.to_bits())
            .or_insert_with(|| stats::t_quantile(0.975, df))
    }
}

/// One feature's statistics, before any correction.
fn test(
    f: &FeatureId,
    cand: &[f64],
    base: &[f64],
    d: &Declared,
    policy: &Policy,
    quantiles: &mut T975,
) -> Tested {
    // The mean of the candidate's few runs: its spread is what the t test assumes.
    let value = stats::mean(cand);
    let k = cand.len();
    let mut judged = Judged {
        candidate_n: k,
        ..Judged::untested(f, d, value, base.len())
    };
    if base.len() < policy.min_baseline {
        return Tested {
            judged,
            worth: false,
            gate: false,
            departed: None,
            in_critical: false,
            absent: false,
            drift: None,
        };
    }
    let mut noise: Noise = noise::learn(base, value);
    // The resolution worth a flag: values within half a percent of the center are one
    // level (a CPU percentage measured in 10 ms ticks jitters with its window's length).
    let sorted = stats::sorted(base);
    let tolerance = 0.005 * stats::quantile(&sorted, 0.5).abs();
    let (levels, quantum) = levels(&sorted, tolerance);
    let discrete = levels * 3 <= base.len();
    if discrete && let Some(q) = quantum {
        // A history of a few levels (counts, quantized samples) cannot vouch for a
        // noise finer than half a step between them.
        noise.scale = noise.scale.max(q / 2.0);
    }
    // One level, the candidate within a factor of two of it: like a constant history,
    // only repeats decide (a quantized value's next step is not a change). Twice or half
    // the level is a change by its size; the level's jitter is then floored at its width.
    let one_level = levels == 1 && noise.shape != Shape::Constant;
    let level = noise.center;
    let near = level != 0.0 && (0.5..=2.0).contains(&(value / level));
    if one_level && !near {
        noise.scale = noise.scale.max(tolerance / 2.0);
    }
    let n = noise.reference.len();
    let center = noise.center;
    let effect = value - center;
    judged.decision = Decision::Same;
    judged.shape = Some(noise.shape);
    judged.center = center;
    judged.noise = noise.scale;
    judged.effect = effect;
    judged.relative = (center != 0.0).then(|| effect / center.abs());
    // Ranked among the whole history, not the nearer cluster of a bimodal one: a value
    // between two modes (a quantized metric's third level) is not beyond every run.
    judged.rank_p = if k == 1 {
        stats::rank_p(value, base)
    } else {
        stats::mann_whitney(cand, base).p
    };
    let min_effect = match d.min_effect {
        Some(Effect::Relative(r)) => r * center.abs(),
        Some(Effect::Absolute(a)) => a,
        // Smaller than the 3 noise units the judge must catch, so it catches them;
        // and at least half a percent, so a feature with next to no noise does not flag
        // a change nobody would act on.
        None => (1.5 * noise.scale).max(0.005 * center.abs()),
    }
    .max(if f.stat.is_time() {
        TIME_RESOLUTION_US
    } else {
        0.0
    });
    let worth = effect.abs() >= min_effect && effect != 0.0;
    let mut departed = None;
    let (p, gate, se) = if noise.shape == Shape::Constant || (one_level && near) {
        // Every comparable run agreed on one value: each candidate run that differs the
        // same way is one chance in n+1 of being the odd one out by luck.
        let odd = cand
            .iter()
            .filter(|v| (**v - center) * effect > 0.0 && (**v - center).abs() > tolerance)
            .count() as i32;
        let p = if effect.abs() <= tolerance {
            1.0
        } else {
            (1.0 / (n as f64 + 1.0)).powi(odd.max(1))
        };
        departed = Some(odd as usize == k);
        (p, true, 0.0)
    } else if let Some(p) = discrete
        .then(|| seen_before(cand, &sorted, tolerance))
        .flatten()
    {
        // Mostly one value, or a few (counts, quantized samples), and the candidate's
        // values are ones history has had: as rare as history says they are (the
        // ranks), not as a spread fitted to the few odd runs would say. A value never
        // seen before is judged below.
        judged.rank_p = p;
        (p, true, 0.0)
    } else {
        // The candidate's mean against the baseline's median: both uncertain.
        let se = noise.scale * (1.0 / k as f64 + noise::MEDIAN_VARIANCE / n as f64).sqrt();
        let t = effect / se;
        let gate = if k == 1 {
            // Beyond all but at most one baseline value.
            judged.rank_p <= 4.0 / (base.len() as f64 + 1.0)
        } else {
            judged.rank_p <= 0.05
        };
        // One run alone may be a spike of a tail its baseline has not shown (30 runs
        // cannot show a 1-in-100 hiccup): it is judged as if the noise had heavy tails;
        // the candidate's further runs, which a spike does not repeat, are judged on the
        // baseline's own estimate.
        let df = if k == 1 {
            noise.df.min(SINGLE_RUN_DF)
        } else {
            noise.df
        };
        (stats::t_two_sided(t, df), gate, se)
    };
    // A critical feature with a better direction: its family asks only "did it regress?",
    // one-sided; a move the better way is judged with the rest, two-sided.
    let worse = match d.better {
        Some(Better::Lower) => effect > 0.0,
        Some(Better::Higher) => effect < 0.0,
        None => true,
    };
    let in_critical = judged.critical && worse;
    let p = if in_critical && d.better.is_some() && noise.shape != Shape::Constant {
        p / 2.0
    } else {
        p
    };
    judged.p = p;
    judged.q = p;
    // Whether history vouches for the feature matters only where it would flag or lean.
    judged.report_only = (p <= 0.05 || departed == Some(true)) && noise.wild();
    judged.noise_units = if noise.scale > 0.0 {
        effect / noise.scale
    } else if effect == 0.0 {
        0.0
    } else {
        effect.signum() * 99.0
    };
    let half = quantiles.get(noise.df) * se;
    judged.interval = (effect - half, effect + half);
    Tested {
        judged,
        worth,
        gate,
        departed,
        in_critical,
        absent: false,
        drift: None,
    }
}

/// Replaces each tested feature's `q` with its corrected p: Holm for the critical ones;
/// selective Benjamini-Hochberg (sources, then features) for the rest. Report-only and
/// untested features are not in any family.
fn correct(tested: &mut [Tested], policy: &Policy, look: usize) {
    let in_family = |t: &Tested| !t.judged.report_only && t.judged.decision != Decision::NotEnough;
    // The critical family: per declared metric, Simes; Holm over the metrics; a feature's
    // q is its metric's adjusted p or its own BH q within the metric, whichever is larger.
    let mut by_metric: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in tested.iter().enumerate() {
        if in_family(t) && t.in_critical {
            by_metric
                .entry(t.judged.feature.series.name.as_str())
                .or_default()
                .push(i);
        }
    }
    let metrics: Vec<Vec<usize>> = by_metric.into_values().collect();
    let metric_p: Vec<f64> = metrics
        .iter()
        .map(|m| stats::simes(&m.iter().map(|i| tested[*i].judged.p).collect::<Vec<_>>()))
        .collect();
    let mut order: Vec<usize> = (0..metrics.len()).collect();
    order.sort_by(|a, b| metric_p[*a].total_cmp(&metric_p[*b]));
    let mut holm = vec![1.0; metrics.len()];
    let mut running = 0.0f64;
    for (rank, g) in order.iter().enumerate() {
        running = running.max(((metrics.len() - rank) as f64 * metric_p[*g]).min(1.0));
        holm[*g] = running;
    }
    for (members, adjusted) in metrics.iter().zip(holm) {
        let qs = stats::benjamini_hochberg(
            &members
                .iter()
                .map(|i| tested[*i].judged.p)
                .collect::<Vec<_>>(),
        );
        for (i, q) in members.iter().zip(qs) {
            tested[*i].judged.q = q.max(adjusted);
        }
    }
    // The rest: per source, Simes; BH over sources; BH within the selected ones.
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in tested.iter().enumerate() {
        if in_family(t) && !t.in_critical {
            by_source
                .entry(t.judged.feature.series.source.as_str())
                .or_default()
                .push(i);
        }
    }
    let groups: Vec<(String, Vec<usize>)> = by_source
        .into_iter()
        .map(|(s, v)| (s.to_string(), v))
        .collect();
    let group_p: Vec<f64> = groups
        .iter()
        .map(|(_, members)| {
            stats::simes(
                &members
                    .iter()
                    .map(|i| tested[*i].judged.p)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let group_q = stats::benjamini_hochberg(&group_p);
    let level = policy.at_look(policy.fdr, look);
    let selected = group_q.iter().filter(|q| **q <= level).count().max(1);
    let share = groups.len() as f64 / selected as f64;
    for ((_, members), gq) in groups.iter().zip(&group_q) {
        let ps: Vec<f64> = members.iter().map(|i| tested[*i].judged.p).collect();
        let qs = stats::benjamini_hochberg(&ps);
        for (i, q) in members.iter().zip(qs) {
            // A feature's q is at least its source's: a source not selected flags nothing.
            tested[*i].judged.q = (q * share).max(*gq).min(1.0);
        }
    }
}

/// Runs of the candidate (this one included) that would likely decide an inconclusive
/// feature if its effect held, within the looks left; None when more than that.
fn runs_to_decide(j: &Judged, policy: &Policy, look: usize) -> Option<usize> {
    if j.noise <= 0.0 || j.effect == 0.0 {
        return None;
    }
    let n = j.baseline_n as f64;
    // The share of its family the feature needs, as now: q / p.
    let inflation = if j.p > 0.0 { (j.q / j.p).max(1.0) } else { 1.0 };
    let base_level = if j.critical {
        policy.critical_level
    } else {
        policy.fdr
    };
    (look + 1..=policy.max_looks).find_map(|k| {
        let level = policy.at_look(base_level, k) / inflation;
        let t = j.effect.abs() / (j.noise * (1.0 / k as f64 + noise::MEDIAN_VARIANCE / n).sqrt());
        let df = noise::qn_df(j.baseline_n);
        (stats::t_two_sided(t, df) <= level).then_some(k - look)
    })
}

/// Deterministic, roughly normal noise for the tests: the benches' own (a sum of
/// uniforms from a fixed LCG), so a test and a bench mean the same series by one seed.
#[cfg(test)]
#[path = "../../benches/support/noisy.rs"]
mod noisy;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::features::Series;

    use super::noisy::Noisy;

    fn id(source: &str, name: &str, stat: Stat) -> FeatureId {
        FeatureId {
            series: Series {
                scope: "failover".into(),
                phase: "load".into(),
                source: source.into(),
                name: name.into(),
            },
            stat,
        }
    }

    const SOURCES: [&str; 4] = ["Primary", "Backup", "LoadGenerator", "matching host"];

    /// A run of `features` per source, each around its own center with 2 % noise; `shift`
    /// (in noise units) moves `Primary latency_us p99`.
    fn run(rng: &mut Noisy, features: usize, shift: f64) -> Features {
        let mut f = Features::default();
        for source in SOURCES {
            for i in 0..features {
                let center = 1000.0 * (i + 1) as f64;
                let mut v = center + 0.02 * center * rng.next();
                let name = format!("m{i}");
                if source == "Primary" && i == 0 {
                    v += shift * 0.02 * center;
                }
                f.values.insert(
                    id(source, if i == 0 { "latency_us" } else { &name }, Stat::P99),
                    v,
                );
            }
        }
        f
    }

    fn critical_latency() -> BTreeMap<String, Declared> {
        [(
            "latency_us".to_string(),
            Declared {
                unit: Unit::Us,
                better: Some(Better::Lower),
                critical: true,
                ..Declared::default()
            },
        )]
        .into()
    }

    fn verdict(
        me: &Features,
        pooled: &[&Features],
        history: &[Features],
        declared: &BTreeMap<String, Declared>,
    ) -> Verdict {
        let ids: Vec<String> = (0..history.len()).map(|i| format!("r{i}")).collect();
        let baseline: Vec<(&str, &Features)> =
            ids.iter().map(String::as_str).zip(history.iter()).collect();
        judge(&Case {
            run: me,
            pooled,
            baseline: &baseline,
            lineage: &[],
            declared,
            policy: &Policy::default(),
        })
    }

    #[test]
    fn clean_runs_are_rarely_flagged_however_many_features_they_have() {
        // A/A: 200 clean runs of 400 features each against 30 clean runs.
        let mut rng = Noisy(1);
        let history: Vec<Features> = (0..30).map(|_| run(&mut rng, 100, 0.0)).collect();
        let declared = critical_latency();
        let mut flagged = 0;
        let mut inconclusive = 0;
        for _ in 0..200 {
            let me = run(&mut rng, 100, 0.0);
            let v = verdict(&me, &[], &history, &declared);
            assert_eq!(v.counts.features, 400);
            flagged += usize::from(v.outcome == Outcome::Different);
            inconclusive += usize::from(v.outcome == Outcome::Inconclusive);
            assert!(!v.fails || v.outcome == Outcome::Different);
        }
        assert!(flagged <= 2, "{flagged} of 200 clean runs flagged");
        assert!(
            inconclusive <= 30,
            "{inconclusive} of 200 clean runs inconclusive"
        );
    }

    #[test]
    fn a_critical_shift_of_three_noise_units_is_decided_as_the_candidate_s_runs_accumulate() {
        let declared = critical_latency();
        let policy = Policy::default();
        // decided[k]: candidates decided by their k-th run.
        let mut decided = vec![0; policy.max_looks + 1];
        let mut wrong = 0;
        let mut rng = Noisy(2);
        let mut history: Vec<Features> = Vec::new();
        for candidate in 0..40 {
            // A history of its own for every fifth candidate: one history's chance
            // center and noise estimate would make the figure that history's.
            if candidate % 5 == 0 {
                history = (0..30).map(|_| run(&mut rng, 50, 0.0)).collect();
            }
            let mut runs: Vec<Features> = Vec::new();
            for look in 1..=policy.max_looks {
                let me = run(&mut rng, 50, 3.0);
                let pooled: Vec<&Features> = runs.iter().collect();
                let v = verdict(&me, &pooled, &history, &declared);
                let flagged: Vec<&Judged> = v
                    .findings
                    .iter()
                    .filter(|j| j.decision == Decision::Different)
                    .collect();
                wrong += usize::from(
                    flagged
                        .iter()
                        .any(|j| j.feature.series.name != "latency_us"),
                );
                if let Some(hit) = flagged
                    .iter()
                    .find(|j| j.feature.series.name == "latency_us")
                {
                    assert_eq!(hit.direction, Some(Direction::Regressed), "look {look}");
                    assert!(v.fails, "a critical regression fails the run");
                    for d in &mut decided[look..] {
                        *d += 1;
                    }
                    break;
                }
                // The loop runs the candidate again; its runs are judged together.
                runs.push(me);
            }
        }
        // What the statistics allow against 30 runs for one of 4 critical features (t on
        // Qn noise, the strict level shared by 4 looks): 33 of 40 by the third run, 38 by
        // the fourth when this was written. The issue asks 95 % by the third; the bench
        // measures it on the demo.
        assert!(decided[3] >= 30, "{decided:?} of 40 decided by run k");
        assert!(decided[4] >= 37, "{decided:?} of 40 decided by run k");
        // About 120 judgements of 199 clean features each (each candidate's runs pooled,
        // 5 candidates sharing a history, so one unlucky feature recurs).
        assert!(wrong <= 3, "{wrong} judgements flagged a clean feature");
    }

    /// Judges `me` with the last 30 of `accepted` as its baseline and all of them (oldest
    /// first) as its lineage.
    fn with_lineage(me: &Features, accepted: &[Features]) -> Verdict {
        let ids: Vec<String> = (0..accepted.len()).map(|i| format!("c{i}")).collect();
        let lineage: Vec<(&str, &Features)> = ids
            .iter()
            .map(String::as_str)
            .zip(accepted.iter())
            .collect();
        let baseline: Vec<(&str, &Features)> = lineage.iter().rev().take(30).copied().collect();
        judge(&Case {
            run: me,
            pooled: &[],
            baseline: &baseline,
            lineage: &lineage,
            declared: &critical_latency(),
            policy: &Policy::default(),
        })
    }

    #[test]
    fn a_creep_the_rolling_baseline_absorbs_is_caught_as_a_drift_across_candidates() {
        // 60 candidates: the critical latency creeps 0.1 noise unit (0.2 %) each, 12
        // noise units (24 %) in all; the newest 30 — the baseline — span half of it.
        let mut rng = Noisy(21);
        let accepted: Vec<Features> = (0..60).map(|k| run(&mut rng, 20, 0.1 * k as f64)).collect();
        let me = run(&mut rng, 20, 6.1);
        let v = with_lineage(&me, &accepted);
        let hit = v
            .findings
            .iter()
            .find(|j| j.feature.series.name == "latency_us")
            .unwrap_or_else(|| panic!("no finding: {}", v.headline()));
        let drift = hit.drift.as_ref().expect("a drift");
        assert_eq!(hit.direction, Some(Direction::Regressed));
        assert!(drift.after > drift.before, "{drift:?}");
        assert!(
            hit.explanation().contains("drifted"),
            "{}",
            hit.explanation()
        );
        // Nothing else drifted.
        assert!(
            v.findings
                .iter()
                .all(|j| j.drift.is_none() || j.feature.series.name == "latency_us"),
            "{}",
            v.headline()
        );
    }

    #[test]
    fn the_host_s_own_metrics_are_listed_but_never_fail_a_run() {
        let mut rng = Noisy(23);
        let history: Vec<Features> = (0..30)
            .map(|_| {
                let mut f = run(&mut rng, 10, 0.0);
                f.machine.insert("matching host".into());
                f
            })
            .collect();
        // The host's memory (and everything else of it) 20 noise units up, twice.
        let shifted = |rng: &mut Noisy| {
            let mut f = run(rng, 10, 0.0);
            for (k, v) in f.values.iter_mut() {
                if k.series.source == "matching host" {
                    *v *= 1.4;
                }
            }
            f.machine.insert("matching host".into());
            f
        };
        let first = shifted(&mut rng);
        let me = shifted(&mut rng);
        let v = verdict(&me, &[&first], &history, &BTreeMap::new());
        assert!(!v.regressed(), "{}", v.headline());
        assert!(v.counts.report_only >= 5, "{}", v.headline());
        assert!(
            v.findings
                .iter()
                .filter(|j| j.feature.series.source == "matching host")
                .all(|j| j.report_only)
        );
    }

    #[test]
    fn a_steady_lineage_shows_no_drift() {
        let mut rng = Noisy(22);
        let mut flagged = 0;
        let mut last = String::new();
        for _ in 0..10 {
            let accepted: Vec<Features> = (0..60).map(|_| run(&mut rng, 20, 0.0)).collect();
            let me = run(&mut rng, 20, 0.0);
            let v = with_lineage(&me, &accepted);
            flagged += v.findings.iter().filter(|j| j.drift.is_some()).count();
            if let Some(j) = v.findings.iter().find(|j| j.drift.is_some()) {
                last = format!("{} {} {:?}", j.summary(), j.explanation(), j.drift);
            }
        }
        // 10 runs of 80 features each.
        assert!(
            flagged <= 1,
            "{flagged} drifts in 800 steady features: {:?}",
            last
        );
    }

    #[test]
    fn a_large_shift_of_an_undeclared_feature_is_a_change_that_does_not_fail_the_run() {
        let mut rng = Noisy(3);
        let history: Vec<Features> = (0..30).map(|_| run(&mut rng, 50, 0.0)).collect();
        // 12 noise units in one run could be a hiccup of a tail the history has not shown:
        // it leans; the candidate's second run shifted the same way decides.
        let first = run(&mut rng, 50, 12.0);
        let v = verdict(&first, &[], &history, &BTreeMap::new());
        assert_ne!(v.outcome, Outcome::Different, "{}", v.headline());
        let me = run(&mut rng, 50, 12.0);
        let v = verdict(&me, &[&first], &history, &BTreeMap::new());
        assert_eq!(v.outcome, Outcome::Different, "{}", v.headline());
        assert_eq!(v.counts.changed, 1);
        assert_eq!(v.findings[0].direction, Some(Direction::Changed));
        assert!(!v.fails);
        assert!(
            v.regressed(),
            "`judge` exits 1 on a change nothing says is better"
        );
        let text = v.findings[0].explanation();
        assert!(
            text.contains("noise units") && text.contains("baseline 30 runs"),
            "{text}"
        );
    }

    fn one(value: f64, name: &str, stat: Stat) -> Features {
        let mut f = Features::default();
        f.values.insert(id("Primary", name, stat), value);
        f
    }

    #[test]
    fn a_value_no_comparable_run_had_leans_once_and_is_decided_when_the_candidate_repeats_it() {
        let history: Vec<Features> = (0..30).map(|_| one(0.0, "errors", Stat::Events)).collect();
        let first = one(3.0, "errors", Stat::Events);
        let v = verdict(&first, &[], &history, &BTreeMap::new());
        // One odd run in 31 could be luck: listed as leaning, the run not held up for it.
        assert_eq!(v.outcome, Outcome::Same, "{}", v.headline());
        assert_eq!(v.findings[0].decision, Decision::Inconclusive);
        assert!((v.findings[0].p - 1.0 / 31.0).abs() < 1e-12);
        let second = one(2.0, "errors", Stat::Events);
        let v = verdict(&second, &[&first], &history, &BTreeMap::new());
        assert_eq!(v.outcome, Outcome::Different, "{}", v.headline());
        // Back to normal on the second run: the same after all.
        let calm = one(0.0, "errors", Stat::Events);
        let v = verdict(&calm, &[&first], &history, &BTreeMap::new());
        assert_eq!(v.outcome, Outcome::Same, "{}", v.headline());
        assert!(v.findings.is_empty());
    }

    #[test]
    fn too_little_history_is_said_plainly_and_only_limits_stand() {
        let history: Vec<Features> = (0..3).map(|_| one(100.0, "rss_bytes", Stat::Max)).collect();
        let declared: BTreeMap<String, Declared> = [(
            "rss_bytes".to_string(),
            Declared {
                unit: Unit::Bytes,
                max: Some(150.0),
                ..Declared::default()
            },
        )]
        .into();
        let me = one(120.0, "rss_bytes", Stat::Max);
        let v = verdict(&me, &[], &history, &declared);
        assert_eq!(v.outcome, Outcome::NotEnoughHistory);
        assert!(!v.fails);
        assert_eq!(
            v.headline(),
            "NOT ENOUGH HISTORY: 3 of the 5 comparable runs needed"
        );
        let over = one(200.0, "rss_bytes", Stat::Max);
        let v = verdict(&over, &[], &history, &declared);
        assert!(v.fails, "a hard limit fails the run whatever the history");
        assert_eq!(v.counts.limits, 1);
        assert!(
            v.findings[0].summary().contains("over the limit 150 B"),
            "{}",
            v.findings[0].summary()
        );
    }

    #[test]
    fn a_feature_every_comparable_run_had_and_this_one_lacks_is_missing() {
        let mut rng = Noisy(5);
        let history: Vec<Features> = (0..30)
            .map(|_| {
                let mut f = one(100.0 + rng.next(), "m", Stat::Mean);
                f.values.insert(
                    id("Backup", "state=ACTIVE", Stat::After),
                    2e6 + rng.next() * 1e4,
                );
                f
            })
            .collect();
        // One run without it is one chance in 31 by luck (an event can land in the next
        // step's window): not yet a change.
        let first = one(100.0, "m", Stat::Mean);
        let v = verdict(&first, &[], &history, &BTreeMap::new());
        assert_eq!(v.counts.missing, 0, "{}", v.headline());
        // Three runs of the candidate without it are not luck.
        let second = one(100.0, "m", Stat::Mean);
        let me = one(100.0, "m", Stat::Mean);
        let v = verdict(&me, &[&first, &second], &history, &BTreeMap::new());
        assert_eq!(v.outcome, Outcome::Different, "{}", v.headline());
        assert_eq!(v.counts.missing, 1);
        assert_eq!(v.findings[0].decision, Decision::Missing);
        assert!(v.findings[0].summary().contains("no longer observed"));
    }

    #[test]
    fn a_scenario_whose_text_changed_is_not_compared_with_its_old_runs() {
        let mut rng = Noisy(6);
        let history: Vec<Features> = (0..10)
            .map(|_| {
                let mut f = one(100.0 + rng.next(), "m", Stat::Mean);
                f.scopes.insert("failover".into(), "old".into());
                f
            })
            .collect();
        let mut me = one(500.0, "m", Stat::Mean);
        me.scopes.insert("failover".into(), "new".into());
        let v = verdict(&me, &[], &history, &BTreeMap::new());
        assert_eq!(v.counts.not_enough, 1);
        assert_eq!(v.outcome, Outcome::Same, "{}", v.headline());
    }

    #[test]
    fn a_feature_history_shows_to_be_wild_is_report_only_and_fails_nothing() {
        let mut rng = Noisy(7);
        let history: Vec<Features> = (0..30)
            .map(|i| {
                let tail = if i % 4 == 0 {
                    20.0 + 5.0 * i as f64
                } else {
                    0.0
                };
                one(50.0 + 2.0 * rng.next() + tail, "latency_us", Stat::P99)
            })
            .collect();
        let me = one(400.0, "latency_us", Stat::P99);
        let v = verdict(&me, &[], &history, &critical_latency());
        assert!(v.findings[0].report_only, "{:?}", v.findings[0]);
        assert!(!v.fails);
        assert!(!v.regressed());
        assert_eq!(v.counts.report_only, 1);
    }

    #[test]
    fn a_host_fact_that_explains_a_feature_becomes_its_key() {
        // Half the history ran on a 6.1 kernel and is 20 % slower there; a run on 6.1 at
        // that level is the same as its own kind, not a regression against the rest.
        let mut rng = Noisy(9);
        let mut history: Vec<Features> = Vec::new();
        for i in 0..20 {
            let kernel = if i % 2 == 0 { "6.1" } else { "6.8" };
            let center = if kernel == "6.1" { 120.0 } else { 100.0 };
            let mut f = one(center + rng.next(), "latency_us", Stat::P50);
            f.covariates.insert("host.kernel".into(), kernel.into());
            history.push(f);
        }
        let mut me = one(121.0, "latency_us", Stat::P50);
        me.covariates.insert("host.kernel".into(), "6.1".into());
        let v = verdict(&me, &[], &history, &critical_latency());
        assert_eq!(v.outcome, Outcome::Same, "{}", v.headline());
        // On the other kernel the same value is a regression, and says what it was
        // compared with.
        me.covariates.insert("host.kernel".into(), "6.8".into());
        let v = verdict(&me, &[], &history, &critical_latency());
        assert_eq!(v.outcome, Outcome::Different, "{}", v.headline());
        assert_eq!(v.findings[0].keyed_by.as_deref(), Some("host.kernel=6.8"));
        assert_eq!(v.findings[0].baseline_n, 10);
        assert!(v.findings[0].explanation().contains("host.kernel=6.8"));
        // A fact that does not explain the history is no key.
        for f in &mut history {
            f.covariates.insert("host.cores".into(), "8".into());
        }
        history[0]
            .covariates
            .insert("host.cores".into(), "2".into());
        me.covariates.insert("host.cores".into(), "8".into());
        let v = verdict(&me, &[], &history, &critical_latency());
        assert_eq!(v.findings[0].keyed_by.as_deref(), Some("host.kernel=6.8"));
    }

    #[test]
    fn the_verdict_survives_a_round_trip_through_json() {
        let mut rng = Noisy(8);
        let history: Vec<Features> = (0..10).map(|_| run(&mut rng, 5, 0.0)).collect();
        let me = run(&mut rng, 5, 20.0);
        let v = verdict(&me, &[], &history, &critical_latency());
        let text = serde_json::to_string(&v).unwrap();
        let back: Verdict = serde_json::from_str(&text).unwrap();
        // serde_json reads floats to within an ulp: compare what it writes again.
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.findings.len(), v.findings.len());
    }
}
