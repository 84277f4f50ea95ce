//! Command collectors (`probes:`): a command run every interval — `INFO`, `SHOW STATUS`,
//! a health endpoint through `curl` — whose output goes through log-style rules, its
//! events and metrics attributed to a component. On a thread of their own, so a slow
//! command never holds up the logs. A program and its arguments, never a shell; stopped
//! with its process group at its timeout. A probe that fails says so as an event
//! (`probe_failed`), with its status and the start of what it wrote on stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Shared;
use super::collect::{compile, deliver, event, extract};
use crate::monitor::RuleSet;
use crate::net::codec::{DaemonConfig, Observation, ProbeConfig};

/// What a probe may print that is kept (the rest is counted and dropped).
const OUTPUT_LIMIT: usize = 256 * 1024;
/// How much of a failed probe's stderr its event carries.
const ERROR_EXCERPT: usize = 200;
/// The longest the thread sleeps without looking for a new configuration or its stop.
const TICK: Duration = Duration::from_millis(100);

/// Stops the probes' thread when dropped.
pub struct Prober {
    stop: Arc<AtomicBool>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts running the configuration's probes until the returned handle is dropped.
pub fn spawn(shared: Arc<Shared>) -> Prober {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("probe".into())
        .spawn(move || probe(shared, flag))
        .ok();
    Prober { stop }
}

struct Probe {
    spec: ProbeConfig,
    rules: RuleSet,
    next: Instant,
}

fn probes_of(config: &DaemonConfig, out: &mut Vec<Observation>) -> Vec<Probe> {
    let now = Instant::now();
    config
        .probes
        .iter()
        .map(|p| Probe {
            rules: compile(&p.component, &p.rules, out),
            spec: p.clone(),
            next: now,
        })
        .collect()
}

fn probe(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut generation = u64::MAX;
    let mut probes: Vec<Probe> = Vec::new();
    let mut place = shared.components.place();
    let mut inherit = crate::process::ChildEnv::inherit(&place.remove_env);
    while !stop.load(Ordering::SeqCst) {
        let mut out = Vec::new();
        let latest = shared.generation.load(Ordering::SeqCst);
        if latest != generation {
            generation = latest;
            let config = shared
                .config
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            probes = config.map_or_else(Vec::new, |c| probes_of(&c, &mut out));
            place = shared.components.place();
            inherit = crate::process::ChildEnv::inherit(&place.remove_env);
        }
        for p in probes.iter_mut().filter(|p| p.next <= Instant::now()) {
            let every = Duration::from_millis(p.spec.every_ms.max(10));
            p.next = Instant::now() + every;
            run_one(p, &place.cwd, &inherit, &shared.stop, &mut out);
        }
        deliver(&shared, out);
        let next = probes.iter().map(|p| p.next).min();
        let nap = next.map_or(TICK, |n| {
            n.saturating_duration_since(Instant::now()).min(TICK)
        });
        std::thread::sleep(nap);
    }
}

fn run_one(
    p: &Probe,
    cwd: &std::path::Path,
    inherit: &crate::process::ChildEnv,
    stop: &crate::process::control::RunControl,
    out: &mut Vec<Observation>,
) {
    let Some((program, args)) = p.spec.argv.split_first() else {
        return;
    };
    let timeout = Duration::from_millis(p.spec.timeout_ms.max(10));
    let outcome = crate::process::run(&crate::process::Spec {
        program: program.as_ref(),
        args,
        env: &[],
        inherit,
        cwd: Some(cwd),
        timeout,
        limit: OUTPUT_LIMIT,
        stop: Some(stop),
    });
    let failed = |why: String| event(&p.spec.component, "probe_failed", &why);
    match outcome {
        Ok(o) if o.interrupted => {}
        Ok(o) => {
            extract(&p.spec.component, &p.rules, o.stdout.text.as_bytes(), out);
            if o.timed_out {
                out.push(failed(format!(
                    "`{program}` did not end within {timeout:?}"
                )));
            } else if o.status != 0 {
                let excerpt: String = o.stderr.text.trim().chars().take(ERROR_EXCERPT).collect();
                out.push(failed(format!(
                    "`{program}` exited with {}: {excerpt}",
                    o.status
                )));
            }
        }
        Err(e) => out.push(failed(format!("cannot run `{program}`: {e}"))),
    }
}
