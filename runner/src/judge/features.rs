//! A run reduced to features: one number per (scenario, phase, source, name, statistic) —
//! everything the daemons observed and everything the run timed, with no list of metric
//! names anywhere. Thousands per run is normal; [`Packed`] stores them with each name
//! written once.
//!
//! - Every metric series of every source (the host, each component, each log rule, any
//!   collector), per scenario and phase: count, mean, p50, p95, p99, max, slope per
//!   second, and the series cut into [`BLOCKS`] block means (the judge's in-run samples:
//!   per-second points follow each other too closely to count as independent).
//! - Events: how many per source and name, and per value where a name has few values.
//! - Timing: each step's duration, each scenario's, and the time from a step to each
//!   event that followed it in its window (`kill -9 Primary` → Primary `state=CRASHED` →
//!   Backup `state=ACTIVE`: the failover time is a feature of its own).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use super::name::{Name, Names};
use super::stats;
use crate::record::{ScenarioKind, StepRecord, StoredRun};
use crate::store::observations::ObservationRecord;

/// Blocks a series is cut into for the in-run rank tests.
pub const BLOCKS: usize = 8;
/// Event values counted one by one when a name has at most this many of them.
const EVENT_VALUES: usize = 16;
/// Longer event values are counted only under their name.
const EVENT_VALUE_LEN: usize = 40;

/// What a feature measures of its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    Count,
    Mean,
    P50,
    P95,
    P99,
    Max,
    /// Change per second over the phase: a leak climbs.
    Slope,
    /// Events of a name (or a name and value).
    Events,
    /// µs from a step's start to an event that followed it.
    After,
    /// µs a step or a scenario took.
    Duration,
}

impl Stat {
    pub const ALL: [Stat; 10] = [
        Stat::Count,
        Stat::Mean,
        Stat::P50,
        Stat::P95,
        Stat::P99,
        Stat::Max,
        Stat::Slope,
        Stat::Events,
        Stat::After,
        Stat::Duration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Mean => "mean",
            Stat::P50 => "p50",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::Max => "max",
            Stat::Slope => "slope",
            Stat::Events => "events",
            Stat::After => "after",
            Stat::Duration => "duration",
        }
    }

    /// Whether the statistic is in the unit of its series (what a declared unit,
    /// direction and limit apply to).
    pub fn in_series_unit(self) -> bool {
        matches!(
            self,
            Stat::Mean | Stat::P50 | Stat::P95 | Stat::P99 | Stat::Max
        )
    }

    /// Whether the statistic is a time lowtouch measured itself (µs).
    pub fn is_time(self) -> bool {
        matches!(self, Stat::After | Stat::Duration)
    }
}

/// Which series a feature is of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Series {
    /// The scenario or hook (prefixed `ENVIRONMENT/` in a run of several environments).
    pub scope: Name,
    /// The phase the system was in (`idle`, `load`…); empty where none is declared.
    pub phase: Name,
    /// A component, `DAEMON host` for a host's own metrics, `steps` or `scenario`.
    pub source: Name,
    /// The metric's or event's name as its source calls it, or a step's text.
    pub name: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeatureId {
    pub series: Series,
    pub stat: Stat,
}

impl std::fmt::Display for FeatureId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.series;
        write!(f, "{}", s.scope)?;
        if !s.phase.is_empty() {
            write!(f, " [{}]", s.phase)?;
        }
        write!(f, " {}", s.source)?;
        if !s.name.is_empty() {
            write!(f, " {}", s.name)?;
        }
        write!(f, " {}", self.stat.as_str())
    }
}

/// One run's features.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    /// Scenario scope → its content (`ScenarioRecord::content`): features of a scope are
    /// compared only with runs where it had the same text.
    pub scopes: BTreeMap<String, String>,
    pub values: BTreeMap<FeatureId, f64>,
    /// Series → its block means, in time order.
    pub blocks: BTreeMap<Series, Vec<f64>>,
    /// The run's soft conditions (host facts, time of day): not hard keys, but a feature
    /// whose history they explain is compared only with runs under the same.
    pub covariates: BTreeMap<String, String>,
    /// Sources that are a host's own metrics (the `system` collector's, `DAEMON host`):
    /// they describe the machine, which other work shares, not the system under test.
    pub machine: std::collections::BTreeSet<String>,
}

impl Features {
    /// The same features with the name parts of `names`.
    pub fn shared(self, names: &mut Names) -> Features {
        let mut series = |s: Series| Series {
            scope: names.share(&s.scope),
            phase: names.share(&s.phase),
            source: names.share(&s.source),
            name: names.share(&s.name),
        };
        Features {
            values: self
                .values
                .into_iter()
                .map(|(k, v)| {
                    let stat = k.stat;
                    (
                        FeatureId {
                            series: series(k.series),
                            stat,
                        },
                        v,
                    )
                })
                .collect(),
            blocks: self
                .blocks
                .into_iter()
                .map(|(k, v)| (series(k), v))
                .collect(),
            ..self
        }
    }
}

/// A run's soft conditions: the facts of the host lowtouch ran on and of each host a
/// daemon watched, and the time of day in 6-hour blocks (UTC).
pub fn covariates(run: &crate::record::RunRecord) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = run
        .condition_pairs()
        .into_iter()
        .filter(|(k, _)| k.starts_with("host.") || k.starts_with("hosts."))
        .collect();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&run.started_at) {
        use chrono::Timelike as _;
        let from = t.with_timezone(&chrono::Utc).hour() / 6 * 6;
        out.insert("time_of_day".into(), format!("{from:02}-{:02}h", from + 6));
    }
    out
}

fn micros(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_micros())
        .ok()
}

/// A scenario's time on its environment, with its steps' starts and phases.
struct Window<'a> {
    scope: String,
    environment: &'a str,
    from: i64,
    to: i64,
    /// (start µs, phase) of each step, in time order.
    steps: Vec<(i64, &'a str)>,
}

impl Window<'_> {
    fn phase_at(&self, at: i64) -> &str {
        let i = self.steps.partition_point(|(t, _)| *t <= at);
        if i == 0 { "" } else { self.steps[i - 1].1 }
    }
}

/// A step in a feature's name: its line and command (`L7 kill`) — not its arguments, which
/// carry variables: a step is the same step whatever value a knob gave it.
fn step_name(step: &StepRecord) -> String {
    format!("L{} {}", step.line, step.command)
}

/// The source a series is attributed to: the component, or the daemon's host.
fn source_of<'a>(daemon: &str, source: &'a str) -> std::borrow::Cow<'a, str> {
    if source == "system" {
        format!("{daemon} host").into()
    } else {
        source.into()
    }
}

/// The features of `run`, from its records and the observations of its time range.
pub fn extract(run: &StoredRun, observations: &[ObservationRecord]) -> Features {
    let several = run.run.environments.len() > 1;
    // Each name part once: observations repeat the same few names thousands of times.
    let mut names = Names::default();
    let mut out = Features {
        covariates: covariates(&run.run),
        ..Features::default()
    };
    let mut windows: Vec<Window<'_>> = Vec::new();
    for (sc, steps) in &run.scenarios {
        if sc.retried || sc.status == crate::record::Status::Skipped {
            continue;
        }
        let Some(from) = micros(&sc.started_at) else {
            continue;
        };
        let scope = if several {
            format!("{}/{}", sc.environment, sc.name)
        } else {
            sc.name.clone()
        };
        if sc.kind == ScenarioKind::Scenario
            && let Some(content) = &sc.content
        {
            out.scopes.insert(scope.clone(), content.clone());
        }
        out.values.insert(
            FeatureId {
                series: Series {
                    scope: names.get(&scope),
                    phase: names.get(""),
                    source: names.get("scenario"),
                    name: names.get(""),
                },
                stat: Stat::Duration,
            },
            sc.duration_ms as f64 * 1000.0,
        );
        let mut starts: Vec<(i64, &str)> = Vec::new();
        let mut durations: BTreeMap<Series, Vec<f64>> = BTreeMap::new();
        for step in steps {
            let Some(at) = micros(&step.started_at) else {
                continue;
            };
            let phase = step.phase.as_deref().unwrap_or("");
            starts.push((at, phase));
            let name = step_name(step);
            durations
                .entry(Series {
                    scope: names.get(&scope),
                    phase: names.get(phase),
                    source: names.get("steps"),
                    name: names.get(&name),
                })
                .or_default()
                .push(step.duration_us as f64);
            // The first time each event followed the step, within its window.
            if let Some(around) = &step.around {
                let mut seen = BTreeSet::new();
                for e in around.events.iter().filter(|e| e.at_us >= at) {
                    let what = format!("{}={}", e.name, e.text);
                    let source = source_of(&e.daemon, &e.source);
                    if e.source == "system" {
                        out.machine.insert(source.to_string());
                    }
                    if e.text.len() > EVENT_VALUE_LEN
                        || !seen.insert((source.clone(), what.clone()))
                    {
                        continue;
                    }
                    out.values.insert(
                        FeatureId {
                            series: Series {
                                scope: names.get(&scope),
                                phase: names.get(phase),
                                source: names.get(&source),
                                name: format!("{name} → {what}").into(),
                            },
                            stat: Stat::After,
                        },
                        (e.at_us - at) as f64,
                    );
                }
            }
        }
        // A line run more than once (a loop) is one feature: its median.
        for (series, d) in durations {
            out.values.insert(
                FeatureId {
                    series,
                    stat: Stat::Duration,
                },
                stats::median(&d),
            );
        }
        starts.sort_by_key(|s| s.0);
        windows.push(Window {
            scope,
            environment: &sc.environment,
            from,
            to: from + sc.duration_ms as i64 * 1000,
            steps: starts,
        });
    }
    windows.sort_by_key(|w| w.from);

    let mut series: BTreeMap<Series, Vec<(i64, f64)>> = BTreeMap::new();
    let mut events: BTreeMap<Series, BTreeMap<&str, u32>> = BTreeMap::new();
    for o in observations {
        let Some(w) = windows
            .iter()
            .rev()
            .find(|w| w.environment == o.environment && w.from <= o.at_us && o.at_us <= w.to)
        else {
            continue;
        };
        let key = Series {
            scope: names.get(&w.scope),
            phase: names.get(w.phase_at(o.at_us)),
            source: names.get(&source_of(&o.daemon, &o.source)),
            name: names.get(&o.name),
        };
        if o.source == "system" {
            out.machine.insert(key.source.to_string());
        }
        match (o.number, &o.text) {
            (Some(v), _) if v.is_finite() => series.entry(key).or_default().push((o.at_us, v)),
            (None, Some(text)) if o.kind == "event" => {
                *events.entry(key).or_default().entry(text).or_default() += 1;
            }
            _ => {}
        }
    }
    for (key, points) in series {
        summarise(&mut out, key, points);
    }
    for (key, values) in events {
        let total: u32 = values.values().sum();
        if values.len() <= EVENT_VALUES {
            for (text, n) in &values {
                if text.len() <= EVENT_VALUE_LEN {
                    let mut each = key.clone();
                    each.name = format!("{}={text}", key.name).into();
                    out.values.insert(
                        FeatureId {
                            series: each,
                            stat: Stat::Events,
                        },
                        *n as f64,
                    );
                }
            }
        }
        out.values.insert(
            FeatureId {
                series: key,
                stat: Stat::Events,
            },
            total as f64,
        );
    }
    out
}

/// A metric series' statistics and blocks.
fn summarise(out: &mut Features, key: Series, mut points: Vec<(i64, f64)>) {
    points.sort_by_key(|p| p.0);
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let sorted = stats::sorted(&values);
    let t0 = points[0].0;
    let timed: Vec<(f64, f64)> = points
        .iter()
        .map(|(t, v)| ((t - t0) as f64 / 1e6, *v))
        .collect();
    let mut put = |stat: Stat, v: f64| {
        out.values.insert(
            FeatureId {
                series: key.clone(),
                stat,
            },
            v,
        );
    };
    put(Stat::Count, values.len() as f64);
    put(Stat::Mean, stats::mean(&values));
    put(Stat::P50, stats::quantile(&sorted, 0.5));
    put(Stat::P95, stats::quantile(&sorted, 0.95));
    put(Stat::P99, stats::quantile(&sorted, 0.99));
    put(Stat::Max, *sorted.last().unwrap_or(&f64::NAN));
    // A trend needs points and time to show: over a few samples of a short phase a
    // slope is one allocation burst or one scheduling hiccup.
    let span = timed.last().map_or(0.0, |t| t.0);
    if values.len() >= SLOPE_MIN_POINTS && span >= SLOPE_MIN_SECONDS {
        put(Stat::Slope, stats::slope(&timed));
    }
    out.blocks.insert(key, block_means(&values));
}

/// The samples and the seconds a series needs for its slope to be a feature.
pub const SLOPE_MIN_POINTS: usize = 8;
pub const SLOPE_MIN_SECONDS: f64 = 1.0;

/// `values` cut into at most [`BLOCKS`] contiguous blocks of (nearly) equal length, each
/// reduced to its mean.
pub fn block_means(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let blocks = BLOCKS.min(n);
    (0..blocks)
        .map(|b| stats::mean(&values[b * n / blocks..(b + 1) * n / blocks]))
        .collect()
}

/// What [`extract`] computes and how it names it, as a number: features stored by an
/// earlier extraction are extracted again from the run's records, so a run's features
/// always compare with its baseline's.
pub const EXTRACTION: u32 = 4;

/// Features as stored: each distinct name once, rows of indices.
#[derive(Debug, Serialize, Deserialize)]
pub struct Packed {
    /// The [`EXTRACTION`] that made them (0: before extractions were numbered).
    #[serde(default)]
    pub extraction: u32,
    scopes: BTreeMap<String, String>,
    names: Vec<String>,
    /// scope, phase, source, name (indices into `names`), stat, value.
    rows: Vec<(u32, u32, u32, u32, Stat, f64)>,
    /// scope, phase, source, name, block means.
    blocks: Vec<(u32, u32, u32, u32, Vec<f64>)>,
    #[serde(default)]
    covariates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    machine: std::collections::BTreeSet<String>,
}

impl From<&Features> for Packed {
    fn from(f: &Features) -> Packed {
        let mut index: std::collections::HashMap<String, u32> = Default::default();
        let mut names: Vec<String> = Vec::new();
        let mut id = |s: &str| -> u32 {
            if let Some(i) = index.get(s) {
                return *i;
            }
            names.push(s.to_string());
            let i = names.len() as u32 - 1;
            index.insert(s.to_string(), i);
            i
        };
        let mut ids = |s: &Series| (id(&s.scope), id(&s.phase), id(&s.source), id(&s.name));
        let rows = f
            .values
            .iter()
            .map(|(k, v)| {
                let (a, b, c, d) = ids(&k.series);
                (a, b, c, d, k.stat, *v)
            })
            .collect();
        let blocks = f
            .blocks
            .iter()
            .map(|(s, v)| {
                let (a, b, c, d) = ids(s);
                (a, b, c, d, v.clone())
            })
            .collect();
        Packed {
            extraction: EXTRACTION,
            scopes: f.scopes.clone(),
            names,
            rows,
            blocks,
            covariates: f.covariates.clone(),
            machine: f.machine.clone(),
        }
    }
}

impl Packed {
    pub fn unpack(self) -> Features {
        self.unpack_with(&mut Names::default())
    }

    /// Unpacked with the name parts of `names`: the runs of one verdict share them.
    pub fn unpack_with(self, names: &mut Names) -> Features {
        let names: Vec<Name> = self.names.iter().map(|n| names.get(n)).collect();
        let name = |i: u32| names.get(i as usize).cloned().unwrap_or_default();
        let series = |a, b, c, d| Series {
            scope: name(a),
            phase: name(b),
            source: name(c),
            name: name(d),
        };
        Features {
            values: self
                .rows
                .iter()
                .map(|&(a, b, c, d, stat, v)| {
                    (
                        FeatureId {
                            series: series(a, b, c, d),
                            stat,
                        },
                        v,
                    )
                })
                .collect(),
            blocks: self
                .blocks
                .iter()
                .map(|(a, b, c, d, v)| (series(*a, *b, *c, *d), v.clone()))
                .collect(),
            scopes: self.scopes,
            covariates: self.covariates,
            machine: self.machine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Around, RunRecord, ScenarioRecord, Seen, Status, StepRecord};

    const T0: i64 = 1_764_547_200_000_000; // 2025-12-01T00:00:00Z

    fn at(us: i64) -> String {
        chrono::DateTime::from_timestamp_micros(T0 + us)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    fn metric(us: i64, source: &str, name: &str, v: f64) -> ObservationRecord {
        ObservationRecord {
            at_us: T0 + us,
            environment: "local".into(),
            daemon: "matching".into(),
            source: source.into(),
            kind: "metric".into(),
            name: name.into(),
            text: None,
            number: Some(v),
        }
    }

    fn event(us: i64, source: &str, name: &str, text: &str) -> ObservationRecord {
        ObservationRecord {
            kind: "event".into(),
            text: Some(text.into()),
            number: None,
            ..metric(us, source, name, 0.0)
        }
    }

    /// A failover scenario: idle for a second, then `start_load` (load phase) and a kill
    /// at +2 s that the daemons saw followed by CRASHED (+2.1 s) and ACTIVE (+2.5 s).
    fn failover() -> StoredRun {
        let sc = ScenarioRecord {
            started_at: at(0),
            duration_ms: 4000,
            content: Some("abc".into()),
            ..ScenarioRecord::for_test("r", 0, "failover", Status::Passed)
        };
        let step = |seq: u64, line: u32, command: &str, start: i64, phase: &str| StepRecord {
            line,
            started_at: at(start),
            duration_us: 1000 * seq,
            phase: Some(phase.into()),
            ..StepRecord::for_test("r", 0, seq, command, "")
        };
        let mut kill = step(2, 7, "kill", 2_000_000, "load");
        kill.args = vec!["-9".into(), "Primary".into()];
        let seen = |us: i64, source: &str, text: &str| Seen {
            at_us: T0 + us,
            daemon: "matching".into(),
            source: source.into(),
            name: "state".into(),
            text: text.into(),
        };
        kill.around = Some(Around {
            before: vec![],
            after: vec![],
            events: vec![
                seen(1_900_000, "Primary", "READY"),
                seen(2_100_000, "Primary", "CRASHED"),
                seen(2_500_000, "Backup", "ACTIVE"),
                seen(2_600_000, "Backup", "ACTIVE"),
            ],
        });
        StoredRun {
            run: RunRecord::for_test("r"),
            scenarios: vec![(sc, vec![step(1, 3, "start_load", 1_000_000, "load"), kill])],
            artifacts: vec![],
        }
    }

    fn get(f: &Features, phase: &str, source: &str, name: &str, stat: Stat) -> Option<f64> {
        f.values
            .get(&FeatureId {
                series: Series {
                    scope: "failover".into(),
                    phase: phase.into(),
                    source: source.into(),
                    name: name.into(),
                },
                stat,
            })
            .copied()
    }

    #[test]
    fn every_series_is_summarised_per_phase_with_no_name_known_in_advance() {
        let mut obs = vec![metric(500_000, "Primary", "queue_depth", 5.0)];
        // Under load: 1..=10 at one a second, a climbing series.
        for i in 1..=10 {
            obs.push(metric(
                1_000_000 + i * 250_000,
                "Primary",
                "queue_depth",
                i as f64,
            ));
        }
        // A host metric, and something outside the scenario's time that belongs to none.
        obs.push(metric(1_500_000, "system", "cpu_percent", 40.0));
        obs.push(metric(9_000_000, "Primary", "queue_depth", 1e9));
        let f = extract(&failover(), &obs);
        assert_eq!(
            get(&f, "", "Primary", "queue_depth", Stat::Count),
            Some(1.0)
        );
        assert_eq!(
            get(&f, "load", "Primary", "queue_depth", Stat::Count),
            Some(10.0)
        );
        assert_eq!(
            get(&f, "load", "Primary", "queue_depth", Stat::Mean),
            Some(5.5)
        );
        assert_eq!(
            get(&f, "load", "Primary", "queue_depth", Stat::Max),
            Some(10.0)
        );
        assert_eq!(
            get(&f, "load", "Primary", "queue_depth", Stat::P50),
            Some(5.5)
        );
        // One per 0.25 s: 4 per second.
        let slope = get(&f, "load", "Primary", "queue_depth", Stat::Slope).unwrap();
        assert!((slope - 4.0).abs() < 1e-9, "{slope}");
        assert_eq!(
            get(&f, "load", "matching host", "cpu_percent", Stat::Mean),
            Some(40.0)
        );
        let blocks = &f.blocks[&Series {
            scope: "failover".into(),
            phase: "load".into(),
            source: "Primary".into(),
            name: "queue_depth".into(),
        }];
        assert_eq!(blocks.len(), BLOCKS);
        assert_eq!(f.scopes["failover"], "abc");
    }

    #[test]
    fn the_failover_time_is_a_feature_of_its_own() {
        let f = extract(&failover(), &[]);
        // From the kill's start to each event that followed it (the first of each only);
        // what happened before the step is not its doing.
        let after = |source: &str, what: &str| {
            get(
                &f,
                "load",
                source,
                &format!("L7 kill → state={what}"),
                Stat::After,
            )
        };
        assert_eq!(after("Primary", "CRASHED"), Some(100_000.0));
        assert_eq!(after("Backup", "ACTIVE"), Some(500_000.0));
        assert_eq!(after("Primary", "READY"), None);
        assert_eq!(
            get(&f, "load", "steps", "L7 kill", Stat::Duration),
            Some(2000.0)
        );
        assert_eq!(
            get(&f, "", "scenario", "", Stat::Duration),
            Some(4_000_000.0)
        );
    }

    #[test]
    fn events_are_counted_by_name_and_by_value() {
        let obs = vec![
            event(1_200_000, "Primary", "state", "READY"),
            event(2_100_000, "Primary", "state", "CRASHED"),
            event(2_200_000, "Primary", "state", "CRASHED"),
        ];
        let f = extract(&failover(), &obs);
        assert_eq!(get(&f, "load", "Primary", "state", Stat::Events), Some(3.0));
        assert_eq!(
            get(&f, "load", "Primary", "state=CRASHED", Stat::Events),
            Some(2.0)
        );
        assert_eq!(
            get(&f, "load", "Primary", "state=READY", Stat::Events),
            Some(1.0)
        );
    }

    #[test]
    fn features_survive_packing() {
        let mut obs = vec![event(2_100_000, "Primary", "state", "CRASHED")];
        obs.extend(
            (0..20).map(|i| metric(1_100_000 + i * 10_000, "Backup", "rss_bytes", i as f64)),
        );
        let f = extract(&failover(), &obs);
        let text = serde_json::to_string(&Packed::from(&f)).unwrap();
        let back: Packed = serde_json::from_str(&text).unwrap();
        assert_eq!(back.extraction, EXTRACTION);
        assert_eq!(back.unpack(), f);
        // Each name once: the packed form is smaller than the names written per row.
        assert!(text.matches("rss_bytes").count() == 1, "{text}");
    }
}
