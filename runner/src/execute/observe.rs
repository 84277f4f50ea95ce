//! What the monitoring network observed, as steps may ask for it: `wait_for` (a
//! component's state, or any event) and `metric` (a metric's latest value). The
//! observations come from the store, where the data processor puts them; this module
//! only reads and judges. Pure apart from [`Observations`].

use regex::Regex;

use crate::record::Sample;
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

/// What `wait_for` waits for.
#[derive(Debug, Clone)]
pub enum Awaited {
    /// `wait_for COMPONENT STATE`: the component's state is STATE — already, or once it
    /// changes. Its state is its latest log `state` event, unless its process ended since
    /// (CRASHED, STOPPED). A process event (STARTED, RESTARTED, CRASHED, STOPPED) of the
    /// scenario also counts when that is what is awaited.
    State { component: String, state: String },
    /// `wait_for event 'REGEX'`: an event whose `SOURCE NAME VALUE` matches, since the
    /// step before this one began (so one that step caused is never missed).
    Event(Regex),
}

impl Awaited {
    /// Parses `wait_for`'s arguments; returns what to wait for and an explicit timeout.
    pub fn parse(args: &[String]) -> Result<(Awaited, Option<std::time::Duration>), String> {
        let (head, timeout) = match args {
            [a, b, t, d] if t == "timeout" => (
                [a.clone(), b.clone()],
                Some(
                    crate::scenario::duration::parse_duration(d)
                        .ok_or_else(|| format!("`{d}` is not a duration"))?,
                ),
            ),
            [a, b] => ([a.clone(), b.clone()], None),
            _ => {
                return Err(
                    "`wait_for` takes `COMPONENT STATE [timeout D]` or `event 'REGEX' [timeout D]`"
                        .into(),
                );
            }
        };
        let awaited = if head[0] == "event" {
            Awaited::Event(Regex::new(&head[1]).map_err(|e| format!("bad pattern: {e}"))?)
        } else {
            Awaited::State {
                component: head[0].clone(),
                state: head[1].clone(),
            }
        };
        Ok((awaited, timeout))
    }

    /// Whether it is met, looking at the scenario's observations (`all`, in time order)
    /// and at those since `since_us`.
    pub fn met(&self, all: &[ObservationRecord], since_us: i64) -> bool {
        match self {
            Awaited::State { component, state } => {
                current_state(all, component).is_some_and(|(s, _)| s == state)
                    || all.iter().any(|o| {
                        o.kind == "event"
                            && o.source == *component
                            && o.name == "process"
                            && o.text.as_deref() == Some(state.as_str())
                    })
            }
            Awaited::Event(re) => all
                .iter()
                .filter(|o| o.kind == "event" && o.at_us >= since_us)
                .any(|o| re.is_match(&event_line(o))),
        }
    }

    /// Why it was not met: what was seen instead, and when (relative to `origin_us`).
    pub fn why_not(
        &self,
        all: &[ObservationRecord],
        origin_us: i64,
        waited: std::time::Duration,
    ) -> String {
        let secs = |at: i64| (at - origin_us) as f64 / 1e6;
        match self {
            Awaited::State { component, state } => {
                let seen: Vec<String> = all
                    .iter()
                    .filter(|o| is_state_of(o, component))
                    .map(|o| {
                        format!(
                            "{} at +{:.3}s",
                            o.text.as_deref().unwrap_or(""),
                            secs(o.at_us)
                        )
                    })
                    .collect();
                match current_state(all, component) {
                    Some((s, _)) => format!(
                        "{component} did not become {state} within {}; its state is {s} (seen: {})",
                        crate::scenario::duration::human(waited),
                        seen.join(", ")
                    ),
                    None => format!(
                        "{component} did not become {state} within {}; no state of it was observed \
                         (is a daemon following its log?)",
                        crate::scenario::duration::human(waited)
                    ),
                }
            }
            Awaited::Event(re) => {
                let last: Vec<String> = all
                    .iter()
                    .filter(|o| o.kind == "event")
                    .rev()
                    .take(5)
                    .map(|o| format!("`{}` at +{:.3}s", event_line(o), secs(o.at_us)))
                    .collect();
                format!(
                    "no event matching `{}` within {}; the last events: {}",
                    re.as_str(),
                    crate::scenario::duration::human(waited),
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
pub fn latest_metric(samples: &[Sample], args: &[String]) -> Result<f64, String> {
    let (source, name) = match args {
        [name] => (None, name.as_str()),
        [source, name] => (Some(source.as_str()), name.as_str()),
        _ => return Err("`metric` takes `NAME` or `SOURCE NAME`".into()),
    };
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

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn a_state_reached_before_the_wait_counts() {
        let all = vec![
            ev(1, "Backup", "state", "STANDBY"),
            ev(2, "Primary", "process", "CRASHED"),
            ev(3, "Backup", "state", "ACTIVE"),
        ];
        let (a, t) = Awaited::parse(&args("Backup ACTIVE timeout 5s")).unwrap();
        assert_eq!(t, Some(std::time::Duration::from_secs(5)));
        assert!(a.met(&all, 10));
        let (b, _) = Awaited::parse(&args("Backup STANDBY")).unwrap();
        assert!(!b.met(&all, 0), "STANDBY is over");
        let why = b.why_not(&all, 0, std::time::Duration::from_secs(2));
        assert!(why.contains("its state is ACTIVE"), "{why}");
        let (c, _) = Awaited::parse(&args("Primary CRASHED")).unwrap();
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
        let (a, _) = Awaited::parse(&args("Backup ACTIVE")).unwrap();
        assert!(a.met(&all, 0));
        let (r, _) = Awaited::parse(&args("Backup RESTARTED")).unwrap();
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
        let (a, _) = Awaited::parse(&["event".into(), "Primary process CRASH".into()]).unwrap();
        assert!(a.met(&all, 5));
        assert!(!a.met(&all, 6));
        assert!(
            a.why_not(&all, 0, std::time::Duration::from_secs(1))
                .contains("Primary process CRASHED")
        );
        assert!(Awaited::parse(&args("event (")).is_err());
        assert!(Awaited::parse(&args("Backup")).is_err());
        assert!(Awaited::parse(&args("Backup ACTIVE timeout soon")).is_err());
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
        assert_eq!(latest_metric(&all, &args("internal_latency_us")), Ok(30.0));
        assert_eq!(
            latest_metric(&all, &args("Primary internal_latency_us")),
            Ok(12.0)
        );
        assert!(
            latest_metric(&all, &args("rss_bytes"))
                .unwrap_err()
                .contains("no sample")
        );
    }
}
