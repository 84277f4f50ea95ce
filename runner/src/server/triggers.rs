//! What starts a run besides a change: the pipelines a server looks after, their
//! `schedule:` patterns and their `on_event` listeners. Pure but for [`served`], which
//! reads the pipelines (again every round: the repository may change them).

use std::collections::BTreeMap;
use std::path::Path;

use crate::net::Observation;
use crate::net::router::Delivered;
use crate::pipeline::Pipeline;

/// The pipelines this server looks after: named ones, or every one with repositories, a
/// schedule, continuous mode or an event listener.
pub fn served(project: &Path, only: &[String]) -> Vec<Pipeline> {
    Pipeline::discover(project)
        .iter()
        .filter_map(|path| match Pipeline::load(path) {
            Ok(p) => Some(p),
            Err(findings) => {
                for f in findings {
                    crate::errln!("{f}");
                }
                None
            }
        })
        .filter(|p| {
            if only.is_empty() {
                !p.repositories.is_empty()
                    || !p.schedule.is_empty()
                    || p.continuous
                    || !p.on_event.is_empty()
            } else {
                only.contains(&p.name)
            }
        })
        .collect()
}

/// The earliest cron fire among the pipelines after `now`: when, which pipeline, which
/// pattern.
pub fn next_schedule(
    pipelines: &[Pipeline],
    now: &chrono::DateTime<chrono::Utc>,
) -> Option<(chrono::DateTime<chrono::Utc>, String, String)> {
    pipelines
        .iter()
        .flat_map(|p| {
            p.schedule.iter().filter_map(|s| {
                s.next_after(now)
                    .map(|at| (at, p.name.clone(), s.pattern.clone()))
            })
        })
        .min_by_key(|(at, _, _)| *at)
}

/// An event-driven run an event asks for: the pipeline, its `on_event` entry, the
/// event's variables.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRun {
    pub pipeline: String,
    pub environment: String,
    pub entry: usize,
    pub vars: BTreeMap<String, String>,
}

impl EventRun {
    /// How it reads in the log: `event: ENV SOURCE VALUE on PIPELINE`.
    pub fn reason(&self) -> String {
        format!(
            "event: {} {} {} on {}",
            self.environment,
            self.vars.get("event.source").map_or("", String::as_str),
            self.vars.get("event.value").map_or("", String::as_str),
            self.pipeline
        )
    }
}

/// The event-driven scenario an event starts, if any: a served pipeline of the event's
/// environment whose `on_event` pattern matches `SOURCE NAME VALUE`, the event newer
/// than `quiet_since` (the end of the environment's last run: one a run caused is not
/// "outside" it). Whether the environment is free is the caller's to say.
pub fn event_run(served: &[Pipeline], d: &Delivered, quiet_since: i64) -> Option<EventRun> {
    let Observation::Event {
        source,
        name,
        value,
        ..
    } = &d.observation
    else {
        return None;
    };
    if d.at_us < quiet_since {
        return None;
    }
    let line = format!("{source} {name} {value}");
    let (p, entry) = served.iter().find_map(|p| {
        (p.environment == d.environment)
            .then(|| p.on_event.iter().position(|e| e.pattern.is_match(&line)))
            .flatten()
            .map(|i| (p, i))
    })?;
    let vars = [
        ("event.source", source.as_str()),
        ("event.name", name.as_str()),
        ("event.value", value.as_str()),
        ("event.daemon", d.daemon.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Some(EventRun {
        pipeline: p.name.clone(),
        environment: p.environment.clone(),
        entry,
        vars,
    })
}
