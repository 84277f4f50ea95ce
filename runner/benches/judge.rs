//! The judge's own cost (issue 14 §6): `cargo bench -p lowtouch --bench judge`.
//!
//! 1. 10,000 features of one run judged against 30 baseline runs (the pure verdict, as
//!    `App::judge` calls it once the features are read): target < 1 s.
//! 2. The same with 3 earlier runs of the candidate pooled (a later look).
//! 3. Packing and unpacking those features (what the store keeps per run), with the size.
//!
//! 4. Drift: candidates one after another, each one run, 200 features with 1 % noise of
//!    which 20 creep by a fixed percentage per candidate; a run the judge flags is left out
//!    of later baselines (as the store does). Reports the total drift when the judge first
//!    flags a creeping feature, and the clean features it flagged on the way (target: 5 %
//!    total drift caught however slowly it builds).
//!
//! Synthetic features: 10 sources × 1,000 features, each with its own center and 2 %
//! run-to-run noise (a deterministic sum of uniforms), a few hundred shifted by 10 noise
//! units so the correction has work to do. Also prints what was flagged, as a sanity check.
//! The demo's A/A and fault-knob campaign is `--bench demo_judge`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lowtouch::judge::declared::{Better, Declared, Unit};
use lowtouch::judge::features::{Names, Packed};
use lowtouch::judge::{Case, FeatureId, Features, Policy, Series, Stat};

#[path = "support/noisy.rs"]
mod noisy;
use noisy::Noisy;

const SOURCES: usize = 10;
const PER_SOURCE: usize = 1000;
const STATS: [Stat; 5] = [Stat::Mean, Stat::P50, Stat::P95, Stat::P99, Stat::Max];

fn run(rng: &mut Noisy, shifted: bool) -> Features {
    let mut f = Features::default();
    for s in 0..SOURCES {
        for i in 0..PER_SOURCE {
            let center = 100.0 * (i + 1) as f64;
            let mut v = center + 0.02 * center * rng.next();
            if shifted && i % 37 == 0 {
                v += 10.0 * 0.02 * center;
            }
            f.values.insert(
                FeatureId {
                    series: Series {
                        scope: format!("scenario{}", i % 7).into(),
                        phase: if i % 2 == 0 { "load" } else { "idle" }.into(),
                        source: format!("Component{s}").into(),
                        name: format!("metric{}_us", i / STATS.len()).into(),
                    },
                    stat: STATS[i % STATS.len()],
                },
                v,
            );
        }
    }
    f
}

/// One candidate's run for the drift campaign: `creep` of 20 of its 200 features.
fn creeping(rng: &mut Noisy, creep: f64) -> Features {
    let mut f = Features::default();
    for i in 0..200 {
        let center = 1000.0 + 10.0 * i as f64;
        let mut v = center * (1.0 + 0.01 * rng.next());
        let name = if i < 20 {
            v += center * creep;
            format!("creep{i}_us")
        } else {
            format!("steady{i}_us")
        };
        f.values.insert(
            FeatureId {
                series: Series {
                    scope: "s".into(),
                    phase: "load".into(),
                    source: format!("C{}", i % 4).into(),
                    name: name.into(),
                },
                stat: Stat::Mean,
            },
            v,
        );
    }
    f
}

/// Candidates creeping by `rate` each: the total drift when a creeping feature is first
/// flagged (if within 200 candidates), clean features flagged, candidates judged.
fn drift_campaign(rate: f64, seed: u64) -> (Option<f64>, usize, usize) {
    let mut rng = Noisy(seed);
    let declared: BTreeMap<String, Declared> = (0..20)
        .map(|i| {
            (
                format!("creep{i}_us"),
                Declared {
                    unit: Unit::Us,
                    better: Some(Better::Lower),
                    ..Declared::default()
                },
            )
        })
        .collect();
    let policy = Policy::default();
    // 30 accepted runs before the creep starts.
    let mut accepted: Vec<(String, Features)> = (0..30)
        .map(|i| (format!("pre{i}"), creeping(&mut rng, 0.0)))
        .collect();
    let mut false_flags = 0;
    for k in 1..=200 {
        let creep = rate * k as f64;
        let me = creeping(&mut rng, creep);
        let baseline: Vec<(&str, &Features)> = accepted
            .iter()
            .rev()
            .take(policy.baseline_runs)
            .map(|(id, f)| (id.as_str(), f))
            .collect();
        let from = accepted.len().saturating_sub(policy.drift_candidates);
        let lineage: Vec<(&str, &Features)> = accepted[from..]
            .iter()
            .map(|(id, f)| (id.as_str(), f))
            .collect();
        let v = lowtouch::judge::verdict::judge(&Case {
            run: &me,
            pooled: &[],
            baseline: &baseline,
            lineage: &lineage,
            declared: &declared,
            policy: &policy,
        });
        let flagged = |creep: bool| {
            v.findings.iter().any(|j| {
                j.decision == lowtouch::judge::Decision::Different
                    && j.feature.series.name.starts_with("creep") == creep
            })
        };
        if flagged(false) {
            false_flags += 1;
        }
        if flagged(true) {
            return (Some(creep), false_flags, k);
        }
        if !v.regressed() {
            accepted.push((format!("c{k}"), me));
        }
    }
    (None, false_flags, 200)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut rng = Noisy(42);
    // Name parts shared between the runs, as `lowtouch` reads them from its store.
    let mut names = Names::default();
    let history: Vec<Features> = (0..30)
        .map(|_| run(&mut rng, false).shared(&mut names))
        .collect();
    let ids: Vec<String> = (0..30).map(|i| format!("run{i}")).collect();
    let baseline: Vec<(&str, &Features)> = ids.iter().map(String::as_str).zip(&history).collect();
    let me = run(&mut rng, true).shared(&mut names);
    let pooled: Vec<Features> = (0..3)
        .map(|_| run(&mut rng, true).shared(&mut names))
        .collect();
    let pooled: Vec<&Features> = pooled.iter().collect();
    let declared: BTreeMap<String, Declared> = [(
        "metric0_us".to_string(),
        Declared {
            unit: Unit::Us,
            better: Some(Better::Lower),
            critical: true,
            ..Declared::default()
        },
    )]
    .into();
    let policy = Policy::default();
    println!(
        "judge: {} features of one run against {} baseline runs",
        me.values.len(),
        baseline.len()
    );
    for (label, pool) in [("1 run", &[][..]), ("4 runs pooled", &pooled[..])] {
        let mut times = Vec::new();
        let mut verdict = None;
        for _ in 0..5 {
            let t = Instant::now();
            let v = lowtouch::judge::verdict::judge(&Case {
                run: &me,
                pooled: pool,
                baseline: &baseline,
                lineage: &[],
                declared: &declared,
                policy: &policy,
            });
            times.push(t.elapsed());
            verdict = Some(v);
        }
        let v = verdict.expect("judged");
        println!(
            "  {label}: median {:.0} ms of 5 (target < 1,000 ms); {}",
            median(times).as_secs_f64() * 1e3,
            v.headline()
        );
    }
    let t = Instant::now();
    let text = serde_json::to_string(&Packed::from(&me)).expect("packed");
    let packed = t.elapsed();
    let t = Instant::now();
    let back: Packed = serde_json::from_str(&text).expect("unpacked");
    let _ = back.unpack();
    println!(
        "  stored form: {} KiB for {} features ({:.0} bytes each); pack {:.1} ms, read back {:.1} ms",
        text.len() / 1024,
        me.values.len(),
        text.len() as f64 / me.values.len() as f64,
        packed.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    println!("drift: 20 of 200 features (1 % noise) creeping, one run per candidate");
    for rate in [0.01, 0.005, 0.002, 0.001] {
        let mut caught = Vec::new();
        let (mut false_flags, mut judged) = (0, 0);
        for seed in 0..5 {
            let (at, f, n) = drift_campaign(rate, 1000 + seed);
            caught.push(at);
            false_flags += f;
            judged += n;
        }
        let shown: Vec<String> = caught
            .iter()
            .map(|c| c.map_or("never".into(), |c| format!("{:.1} %", c * 100.0)))
            .collect();
        println!(
            "  {:.1} % per candidate: caught at a total of {} (5 campaigns; target <= 5 %); \
             {false_flags} of {judged} runs flagged a steady feature",
            rate * 100.0,
            shown.join(", ")
        );
    }
}
