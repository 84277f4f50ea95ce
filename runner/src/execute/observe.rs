//! What the monitoring network observed, as steps may ask for it: `wait_for` (a
//! component's state, or any event) and `metric` (a metric's latest value). The
//! observations come from the store, where the data processor puts them; this module
//! only reads and judges. Pure apart from [`Observations`].

use crate::record::Sample;
use crate::scenario::builtin::Awaited;
use crate::store::ObservationRecord;

/// Where a run reads observations from (the store).
pub trait Observations: Sync {
    /// One environment's events between two instants (µs since the epoch): an index
    /// apart from the metric samples, so a wait reads only events however busy the logs.
    fn events(&self, environment: &str, from_us: i64, to_us: i64) -> Vec<ObservationRecord>;
    /// The newest sample of each of the environment's metrics.
    fn latest(&self, environment: &str) -> Vec<Sample>;
}

impl Observations for crate::store::Store {
    fn events(&self, environment: &str, from_us: i64, to_us: i64) -> Vec<ObservationRecord> {
        crate::store::Store::events(self, environment, from_us, to_us).unwrap_or_default()
    }

    fn latest(&self, environment: &str) -> Vec<Sample> {
        self.latest_metrics(environment)
    }
}

/// Judging what `wait_for` (or a condition) awaits, parsed by the scenario's builtin
/// parser, against what was observed: that needs the store's records, which the pure
/// scenario language knows nothing of.
impl Awaited {
    /// Whether it is met, looking at the scenario's observations (`all`, in time order)
    /// and at those since `since_us`.
    pub fn met(&self, all: &[ObservationRecord], since_us: i64) -> bool {
        self.met_at(all, since_us).is_some()
    }

    /// When it was met: the time of the observation that met it (µs).
    pub fn met_at(&self, all: &[ObservationRecord], since_us: i64) -> Option<i64> {
        match self {
            Awaited::State { component, state } => current_state(all, component)
                .filter(|(s, _)| s == state)
                .map(|(_, at)| at)
                .or_else(|| {
                    all.iter()
                        .find(|o| {
                            o.kind == "event"
                                && o.source == *component
                                && o.name == "process"
                                && o.text.as_deref() == Some(state.as_str())
                        })
                        .map(|o| o.at_us)
                }),
            Awaited::Event(re) => all
                .iter()
                .filter(|o| o.kind == "event" && o.at_us >= since_us)
                .find(|o| re.is_match(&event_line(o)))
                .map(|o| o.at_us),
        }
    }

    /// Why it was not met: what was last seen of it and when (clock time), from `all`
    /// (the environment's events since its run began: a state reported before this
    /// scenario is still its state).
    pub fn why_not(&self, all: &[ObservationRecord], waited: std::time::Duration) -> String {
        let within = crate::scenario::duration::human(waited);
        match self {
            Awaited::State { component, state } => {
                let states: Vec<String> = all
                    .iter()
                    .filter(|o| is_state_of(o, component))
                    .map(|o| format!("{} at {}", o.text.as_deref().unwrap_or(""), clock(o.at_us)))
                    .collect();
                let earlier = match states.len() {
                    0 | 1 => String::new(),
                    n => format!(
                        " (its states in this run: {})",
                        states[n.saturating_sub(5)..].join(", ")
                    ),
                };
                match current_state(all, component) {
                    Some((s, at)) => format!(
                        "{component} was {s} at {}; not {state} within {within}{earlier}",
                        clock(at)
                    ),
                    None => match all.iter().rev().find(|o| {
                        o.kind == "event" && o.source == *component && o.name == "process"
                    }) {
                        Some(o) => format!(
                            "{component} is running ({} at {}) but its log said no state; \
                             not {state} within {within} (a log rule with `event: state` \
                             reads its state)",
                            o.text.as_deref().unwrap_or(""),
                            clock(o.at_us)
                        ),
                        None => format!(
                            "nothing of {component} was observed in this run; not {state} \
                             within {within} (is it started, and does a daemon follow its \
                             log with an `event: state` rule?)"
                        ),
                    },
                }
            }
            Awaited::Event(re) => {
                let last: Vec<String> = all
                    .iter()
                    .filter(|o| o.kind == "event")
                    .rev()
                    .take(5)
                    .map(|o| format!("`{}` at {}", event_line(o), clock(o.at_us)))
                    .collect();
                format!(
                    "no event matching `{}` within {within}; the last events: {}",
                    re.as_str(),
                    if last.is_empty() {
                        "none".into()
                    } else {
                        last.join(", ")
                    }
                )
            }
        }
    }
}

/// A moment as the clock on the wall said it (UTC, milliseconds).
fn clock(at_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(at_us)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| at_us.to_string())
}

/// A state of the component: a log `state` event, or its process's end. A new process
/// (STARTED, RESTARTED) is no state: its log says what it is in.
fn is_state_of(o: &ObservationRecord, component: &str) -> bool {
    o.kind == "event"
        && o.source == component
        && (o.name == "state"
            || (o.name == "process"
                && matches!(o.text.as_deref(), Some("CRASHED") | Some("STOPPED"))))
}

/// A component's latest state and when it was reported.
pub fn current_state<'a>(all: &'a [ObservationRecord], component: &str) -> Option<(&'a str, i64)> {
    all.iter()
        .rev()
        .find(|o| is_state_of(o, component))
        .and_then(|o| o.text.as_deref().map(|t| (t, o.at_us)))
}

/// An event as one line: `SOURCE NAME VALUE`, what `wait_for event` patterns match.
pub fn event_line(o: &ObservationRecord) -> String {
    format!(
        "{} {} {}",
        o.source,
        o.name,
        o.text.as_deref().unwrap_or("")
    )
}

/// `metric NAME` or `metric SOURCE NAME`: the newest sample's value, among the newest
/// sample of each series (`Observations::latest`).
pub fn latest_metric(samples: &[Sample], source: Option<&str>, name: &str) -> Result<f64, String> {
    samples
        .iter()
        .filter(|s| s.name == name && source.is_none_or(|src| s.source == src))
        .max_by_key(|s| s.at_us)
        .map(|s| s.value)
        .ok_or_else(|| {
            format!(
                "no sample of metric `{name}`{} was observed",
                source.map(|s| format!(" from {s}")).unwrap_or_default()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::builtin::WaitFor;

    fn ev(at_us: i64, source: &str, name: &str, text: &str) -> ObservationRecord {
        ObservationRecord {
            at_us,
            environment: "local".into(),
            daemon: "matching".into(),
            source: source.into(),
            kind: "event".into(),
            name: name.into(),
            text: Some(text.into()),
            number: None,
        }
    }

    /// What `wait_for`'s words (split at spaces) await, and their timeout.
    fn wait(words: &str) -> (Awaited, Option<std::time::Duration>) {
        let words: Vec<String> = words.split_whitespace().map(str::to_string).collect();
        let wait = WaitFor::parse(&words).unwrap();
        (wait.awaited, wait.timeout)
    }

    #[test]
    fn a_state_reached_before_the_wait_counts() {
        let all = vec![
            ev(1, "Backup", "state", "STANDBY"),
            ev(2, "Primary", "process", "CRASHED"),
            ev(3, "Backup", "state", "ACTIVE"),
        ];
        let (a, t) = wait("Backup ACTIVE timeout 5s");
        assert_eq!(t, Some(std::time::Duration::from_secs(5)));
        assert!(a.met(&all, 10));
        let (b, _) = wait("Backup STANDBY");
        assert!(!b.met(&all, 0), "STANDBY is over");
        let why = b.why_not(&all, std::time::Duration::from_secs(2));
        assert!(
            why.starts_with("Backup was ACTIVE at 00:00:00.000; not STANDBY within 2.0s"),
            "{why}"
        );
        assert!(why.contains("its states in this run: STANDBY at"), "{why}");
        let started = vec![ev(1, "Backup", "process", "STARTED")];
        let why = b.why_not(&started, std::time::Duration::from_secs(2));
        assert!(
            why.contains("Backup is running (STARTED at") && why.contains("said no state"),
            "{why}"
        );
        let why = b.why_not(&[], std::time::Duration::from_secs(2));
        assert!(
            why.starts_with("nothing of Backup was observed in this run"),
            "{why}"
        );
        let (c, _) = wait("Primary CRASHED");
        assert!(c.met(&all, 0));
    }

    #[test]
    fn a_new_process_is_no_state_but_can_be_awaited() {
        let all = vec![
            ev(1, "Backup", "state", "STANDBY"),
            ev(2, "Backup", "state", "ACTIVE"),
            // The process watcher polls: it may report the new process after its log did.
            ev(3, "Backup", "process", "RESTARTED"),
        ];
        let (a, _) = wait("Backup ACTIVE");
        assert!(a.met(&all, 0));
        let (r, _) = wait("Backup RESTARTED");
        assert!(r.met(&all, 0));
        let mut crashed = all.clone();
        crashed.push(ev(4, "Backup", "process", "CRASHED"));
        assert!(
            !a.met(&crashed, 0),
            "a crashed process is not ACTIVE any more"
        );
    }

    #[test]
    fn an_event_counts_from_the_previous_step_on() {
        let all = vec![ev(5, "Primary", "process", "CRASHED")];
        let a = WaitFor::parse(&["event".into(), "Primary process CRASH".into()])
            .unwrap()
            .awaited;
        assert!(a.met(&all, 5));
        assert!(!a.met(&all, 6));
        assert!(
            a.why_not(&all, std::time::Duration::from_secs(1))
                .contains("Primary process CRASHED")
        );
    }

    #[test]
    fn the_latest_metric() {
        let sample = |at_us, source: &str, value| Sample {
            daemon: "matching".into(),
            source: source.into(),
            name: "internal_latency_us".into(),
            value,
            at_us,
        };
        let all = vec![sample(1, "Primary", 12.0), sample(2, "Backup", 30.0)];
        assert_eq!(latest_metric(&all, None, "internal_latency_us"), Ok(30.0));
        assert_eq!(
            latest_metric(&all, Some("Primary"), "internal_latency_us"),
            Ok(12.0)
        );
        assert!(
            latest_metric(&all, None, "rss_bytes")
                .unwrap_err()
                .contains("no sample")
        );
    }
}
