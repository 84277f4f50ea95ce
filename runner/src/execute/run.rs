//! Runs planned pipelines: hooks around scenarios, parallel groups, interruption, the
//! safety net that stops whatever the run started, and the records of it all — emitted
//! as events, never written here directly.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::host::{RunContext, StepHost};
use super::route::Control;
use crate::clock;
use crate::event::{Fanout, RunEvent};
use crate::pipeline::{HookLine, Plan, ScenarioFile};
use crate::process::control::RunControl;
use crate::record::{RunRecord, ScenarioKind, ScenarioRecord, Status};
use crate::scenario::Scenario;
use crate::scenario::interpreter::{Interpreter, Verdict};

pub struct RunSettings<'a> {
    pub run_id: &'a str,
    pub project: &'a Path,
    /// The runtime directory root (`.lowtouch/`); environments get `envs/NAME/` below it.
    pub state_dir: &'a Path,
    pub revision: String,
    pub overrides: Vec<(String, String)>,
    /// The config-history commit each environment runs against, and its tree.
    pub config_commits: std::collections::BTreeMap<String, String>,
    pub config_trees: std::collections::BTreeMap<String, String>,
    /// Whether a new candidate may stop it at a scenario boundary (continuous runs).
    pub preemptible: bool,
    /// What stops it: signals, a cancellation, a pre-emption.
    pub control: &'a RunControl,
    /// The way to the monitoring daemons: component commands and host-bound aliases go
    /// through it (`execute::route`).
    pub network: Option<&'a crate::daemon::local::Network>,
    /// What the monitoring network observed, for `wait_for` and `metric`.
    pub observed: Option<&'a dyn super::observe::Observations>,
}

/// Runs the plans one after another and returns the finished run record.
pub fn execute(plans: &[Plan], settings: &RunSettings<'_>, events: &Fanout<'_>) -> RunRecord {
    let started = Instant::now();
    let started_us = crate::clock::now_us();
    let mut run = RunRecord {
        hostname: hostname(),
        overrides: masked(&settings.overrides, &secret_masks(plans)),
        config_commits: settings.config_commits.clone(),
        config_trees: settings.config_trees.clone(),
        conditions: conditions(plans, settings),
        candidate: plans
            .iter()
            .filter_map(|p| p.candidate.as_ref())
            .flat_map(|c| c.commits())
            .collect(),
        ..RunRecord::begun(
            settings.run_id,
            plans.iter().map(|p| p.pipeline.name.clone()).collect(),
            plans.iter().map(|p| p.env.name.clone()).collect(),
            &settings.revision,
        )
    };
    events.emit(&RunEvent::RunStarted(&run));
    let index = AtomicU32::new(0);
    // Each environment's phase, across the run's plans: load one pipeline left running
    // is still on for the next.
    let mut phases: std::collections::BTreeMap<&str, std::sync::Mutex<Option<String>>> =
        std::collections::BTreeMap::new();
    for plan in plans {
        phases
            .entry(plan.env.name.as_str())
            .or_insert_with(|| std::sync::Mutex::new(plan.env.initial_phase()));
    }
    let mut hooks_failed = false;
    for plan in plans {
        let phase = &phases[plan.env.name.as_str()];
        let results = run_plan(plan, settings, events, &index, phase);
        hooks_failed |= run.count(&results);
    }
    let preempted = settings.preemptible && settings.control.preempted() && run.skipped > 0;
    run.status = if settings.control.stop_requested() || preempted {
        Status::Interrupted
    } else if run.failed > 0 || hooks_failed {
        Status::Failed
    } else {
        Status::Passed
    };
    if settings.control.cancelled() {
        run.note = Some("cancelled (`lowtouch cancel`)".into());
    } else if preempted && !settings.control.stop_requested() {
        run.note = Some("pre-empted by a new candidate or a requested run".into());
    }
    // The hosts of the system under test, as their daemons told the router.
    if let Some(network) = settings.network {
        run.conditions.hosts = network
            .router
            .facts_since(started_us)
            .into_iter()
            .filter(|(env, _, _)| run.environments.contains(env))
            .map(|(env, daemon, facts)| (format!("{env}/{daemon}"), facts))
            .collect();
    }
    run.finished_at = Some(clock::now());
    run.duration_ms = started.elapsed().as_millis() as u64;
    events.emit(&RunEvent::RunFinished(&run));
    run
}

fn run_plan(
    plan: &Plan,
    settings: &RunSettings<'_>,
    events: &Fanout<'_>,
    index: &AtomicU32,
    phase: &std::sync::Mutex<Option<String>>,
) -> Vec<ScenarioRecord> {
    let env_dir = settings.state_dir.join("envs").join(&plan.env.name);
    let mut extra: Vec<(String, String)> = vec![("pipeline".into(), plan.pipeline.name.clone())];
    if let Some(c) = &plan.candidate {
        extra.extend(c.vars());
    }
    extra.extend(plan.context.clone());
    let vars = plan.env.runtime_variables(&env_dir, settings.run_id, extra);
    let control = Control::new(
        &plan.env,
        &env_dir,
        settings.project,
        &vars,
        settings.network,
    );
    for note in control.stop_leftovers() {
        events.emit(&RunEvent::Notice(&note));
    }
    let ctx = RunContext {
        run_id: settings.run_id,
        plan,
        control: &control,
        stop: settings.control,
        events,
        project: settings.project,
        vars,
        child_env: crate::process::ChildEnv::inherit(&plan.env.secret_vars()),
        masks: plan.env.secret_masks(),
        observed: settings.observed,
        caused: std::sync::Mutex::new(Vec::new()),
        diagnosed: std::sync::Mutex::new(Vec::new()),
        started_us: crate::clock::now_us(),
        phase,
    };
    let runner = &PlanRunner { ctx: &ctx, index };
    let mut results = Vec::new();

    // The deploy stage brings the candidate onto the environment; nothing is tested on
    // an environment it failed to deploy to.
    let deploy = if plan.deploy {
        runner.hook("deploy", &plan.pipeline.deploy, false)
    } else {
        if !plan.pipeline.deploy.is_empty() {
            events.emit(&RunEvent::Notice(
                "deploy: this candidate's product is deployed already; not deployed again",
            ));
        }
        None
    };
    let deploy_failed = deploy.as_ref().is_some_and(|r| r.status != Status::Passed);
    results.extend(deploy);
    let setup = if deploy_failed {
        None
    } else {
        runner.hook("setup", &plan.pipeline.setup, false)
    };
    let setup_failed = deploy_failed || setup.as_ref().is_some_and(|r| r.status != Status::Passed);
    results.extend(setup);
    for group in &plan.pipeline.groups {
        let preempted = settings.preemptible && settings.control.preempted();
        if setup_failed || settings.control.stop_requested() || preempted {
            let why = if deploy_failed {
                "deploy failed"
            } else if setup_failed {
                "setup failed"
            } else if settings.control.stop_requested() {
                "the run was interrupted"
            } else {
                "pre-empted by a new candidate"
            };
            for sc in group {
                results.push(runner.skipped(sc, why));
            }
            continue;
        }
        let (prepared, unprepared) = runner.prepare();
        results.extend(prepared);
        if let Some(why) = unprepared {
            for sc in group {
                results.push(runner.skipped(sc, why));
            }
        } else if group.len() == 1 {
            let sc = &group[0];
            let mut rec = runner.scenario(sc);
            // `retries:` — a failed attempt stays on record, marked replaced, and the
            // scenario runs again between the group's hooks.
            while rec.status == Status::Failed
                && rec.attempt < sc.retries
                && !settings.control.stop_requested()
            {
                rec.retried = true;
                events.emit(&RunEvent::ScenarioRetried(&rec));
                let attempt = rec.attempt + 1;
                results.push(rec);
                results.extend(runner.diagnose());
                results.extend(runner.hook("after_each", &plan.pipeline.after_each, true));
                let (prepared, unprepared) = runner.prepare();
                results.extend(prepared);
                rec = if let Some(why) = unprepared {
                    let mut skipped = runner.skipped(sc, why);
                    skipped.attempt = attempt;
                    skipped
                } else {
                    runner.scenario_again(sc, attempt)
                };
            }
            results.push(rec);
        } else {
            let indices: Vec<u32> = group.iter().map(|_| runner.next_index()).collect();
            let done: Vec<ScenarioRecord> = std::thread::scope(|s| {
                let handles: Vec<_> = group
                    .iter()
                    .zip(&indices)
                    .map(|(sc, &i)| s.spawn(move || runner.scenario_at(sc, i)))
                    .collect();
                handles
                    .into_iter()
                    .zip(group.iter().zip(&indices))
                    .map(|(h, (sc, &i))| {
                        // A panic is a bug; the scenario still gets a record saying so.
                        h.join().unwrap_or_else(|_| runner.failed_by_bug(sc, i))
                    })
                    .collect()
            });
            results.extend(done);
        }
        // A crash no step caused: its diagnostics while the host is as the crash left it.
        results.extend(runner.diagnose());
        results.extend(runner.hook("after_each", &plan.pipeline.after_each, true));
    }
    results.extend(runner.diagnose());
    results.extend(runner.hook("teardown", &plan.pipeline.teardown, true));
    for note in control.stop_all_started() {
        events.emit(&RunEvent::Notice(&note));
    }
    for (name, content) in artifacts_of(plan, &env_dir, &ctx.vars) {
        events.emit(&RunEvent::Artifact {
            run_id: settings.run_id,
            name: &name,
            content: &content,
        });
    }
    results
}

/// What a run keeps of its environment: the end of each component's log (its last 200
/// lines) and each rendered config file, as they are once the run is over.
fn artifacts_of(
    plan: &Plan,
    env_dir: &Path,
    vars: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, Vec<u8>)> {
    const LOG_LINES: usize = 200;
    let env = &plan.env;
    let mut out = Vec::new();
    for (name, c) in &env.components {
        let Some(log) = crate::process::components::control_spec(c, env_dir, vars)
            .ok()
            .and_then(|s| s.log)
        else {
            continue;
        };
        let max = crate::store::artifacts::MAX_ARTIFACT as u64;
        let Ok(tail) = crate::monitor::tail::last_lines(Path::new(&log), LOG_LINES, max) else {
            continue;
        };
        out.push((format!("logs/{}/{name}.log", env.name), tail));
    }
    // What each component wrote itself: its stdout and stderr, its rewritten copies.
    let max = crate::store::artifacts::MAX_ARTIFACT as u64;
    for (name, c) in &env.components {
        let output = env_dir.join(format!("{name}.out"));
        if let Ok(tail) = crate::monitor::tail::last_lines(&output, LOG_LINES, max)
            && !tail.is_empty()
        {
            out.push((format!("output/{}/{name}.out", env.name), tail));
        }
        let copies = crate::process::components::control_spec(c, env_dir, vars)
            .map(|s| s.writable)
            .unwrap_or_default();
        for (_, to) in copies {
            if let Ok(bytes) = std::fs::read(&to) {
                let file = Path::new(&to)
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy();
                out.push((format!("config/{}/{name}/{file}", env.name), bytes));
            }
        }
    }
    for t in &env.templates {
        if let Ok(bytes) = std::fs::read(env_dir.join(&t.dest)) {
            out.push((format!("config/{}/{}", env.name, t.dest), bytes));
        }
    }
    // The runtime copies hold the secrets' real values: never stored, never reported.
    // Longest first: a secret that starts another must not leave the other's end.
    let mut masks = env.secret_masks();
    masks.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    for (_, content) in &mut out {
        for (value, placeholder) in &masks {
            if !value.is_empty() && content.windows(value.len()).any(|w| w == value.as_bytes()) {
                *content = String::from_utf8_lossy(content)
                    .replace(value.as_str(), placeholder)
                    .into_bytes();
            }
        }
    }
    out
}

struct PlanRunner<'a> {
    ctx: &'a RunContext<'a>,
    index: &'a AtomicU32,
}

impl PlanRunner<'_> {
    fn next_index(&self) -> u32 {
        self.index.fetch_add(1, Ordering::SeqCst)
    }

    fn record(&self, index: u32, kind: ScenarioKind, name: &str, path: &str) -> ScenarioRecord {
        ScenarioRecord {
            run_id: self.ctx.run_id.to_string(),
            index,
            kind,
            pipeline: self.ctx.plan.pipeline.name.clone(),
            environment: self.ctx.plan.env.name.clone(),
            name: name.to_string(),
            path: path.to_string(),
            status: Status::Running,
            reason: None,
            failed_line: None,
            started_at: clock::now(),
            duration_ms: 0,
            steps: 0,
            attempt: 0,
            retried: false,
            content: None,
        }
    }

    /// A scenario file's record: its content known, so history compares like with like.
    fn scenario_record(&self, index: u32, sc: &ScenarioFile) -> ScenarioRecord {
        let mut rec = self.record(
            index,
            ScenarioKind::Scenario,
            &sc.name,
            &display_path(&sc.file.path),
        );
        rec.content = Some(crate::record::content_of(&sc.file.text));
        rec
    }

    fn skipped(&self, sc: &ScenarioFile, why: &str) -> ScenarioRecord {
        let mut rec = self.scenario_record(self.next_index(), sc);
        rec.status = Status::Skipped;
        rec.reason = Some(format!("not run: {why}"));
        self.ctx.events.emit(&RunEvent::ScenarioFinished(&rec));
        rec
    }

    fn failed_by_bug(&self, sc: &ScenarioFile, index: u32) -> ScenarioRecord {
        let mut rec = self.scenario_record(index, sc);
        rec.status = Status::Failed;
        rec.reason =
            Some("lowtouch panicked while running this scenario: a bug, please report it".into());
        self.ctx.events.emit(&RunEvent::ScenarioFinished(&rec));
        rec
    }

    fn scenario(&self, sc: &ScenarioFile) -> ScenarioRecord {
        let i = self.next_index();
        self.scenario_at(sc, i)
    }

    /// Attempt `attempt` of a scenario that failed before (`retries:`).
    fn scenario_again(&self, sc: &ScenarioFile, attempt: u32) -> ScenarioRecord {
        let mut rec = self.scenario_record(self.next_index(), sc);
        rec.attempt = attempt;
        self.interpret(rec, &sc.ast, sc.timeout)
    }

    fn scenario_at(&self, sc: &ScenarioFile, index: u32) -> ScenarioRecord {
        let rec = self.scenario_record(index, sc);
        self.interpret(rec, &sc.ast, sc.timeout)
    }

    /// Runs a hook's lines. Hooks that must always run (`after_each`, `teardown`) go on
    /// after a failing line, so one failure does not leave the rest of the cleanup undone.
    /// Before a scenario: the pipeline's `before_each`, then the environment's steady
    /// state. The records they made, and why the scenario cannot run, if it cannot.
    fn prepare(&self) -> (Vec<ScenarioRecord>, Option<&'static str>) {
        let failed =
            |r: &Option<ScenarioRecord>| r.as_ref().is_some_and(|r| r.status != Status::Passed);
        let before = self.hook("before_each", &self.ctx.plan.pipeline.before_each, false);
        if failed(&before) {
            return (before.into_iter().collect(), Some("before_each failed"));
        }
        let steady = self.steady_state();
        let why = failed(&steady).then_some("the environment's steady state was not reached");
        (before.into_iter().chain(steady).collect(), why)
    }

    /// Brings the environment to its steady state: starts each of its components that is
    /// not running (a scenario before may have killed it), then waits for its conditions.
    /// Recorded as the hook `steady_state` when there was anything to do or check.
    fn steady_state(&self) -> Option<ScenarioRecord> {
        let steady = &self.ctx.plan.env.steady_state;
        let mut lines: Vec<String> = Vec::new();
        for name in &steady.components {
            // Where it cannot be found out (a daemon away), `start` says why.
            if self.ctx.control.running(name, Some(self.ctx.stop)) != Ok(true) {
                lines.push(format!("start {name}"));
            }
        }
        lines.extend(steady.conditions.iter().map(|c| format!("wait_for {c}")));
        if lines.is_empty() {
            return None;
        }
        // One piece, so a condition sees the states reported while its components started.
        let text = lines.join("\n");
        let whole = HookLine {
            ast: crate::scenario::parse(&text).0,
            text,
            line: steady.line,
            col: 1,
        };
        // The environment's, and its conditions are about the environment's current
        // state, whenever it was reported in this run (a `before_each` started it).
        let origin = HookOrigin {
            file: Some(&self.ctx.plan.env.file),
            observed_from: Some(self.ctx.started_us),
        };
        self.hook_from("steady_state", std::slice::from_ref(&whole), false, origin)
    }

    /// One of the pipeline's hooks.
    fn hook(&self, name: &str, lines: &[HookLine], keep_going: bool) -> Option<ScenarioRecord> {
        let origin = HookOrigin {
            file: self.ctx.plan.pipeline.file.as_ref(),
            observed_from: None,
        };
        self.hook_from(name, lines, keep_going, origin)
    }

    fn hook_from(
        &self,
        name: &str,
        lines: &[HookLine],
        keep_going: bool,
        origin: HookOrigin<'_>,
    ) -> Option<ScenarioRecord> {
        if lines.is_empty() {
            return None;
        }
        let path = origin
            .file
            .map(|f| display_path(&f.path))
            .unwrap_or_default();
        let mut rec = self.record(self.next_index(), ScenarioKind::Hook, name, &path);
        self.ctx.events.emit(&RunEvent::ScenarioStarted(&rec));
        let started = Instant::now();
        // One time limit and one set of variables for the whole hook: its lines are
        // parsed one by one, but run as one piece.
        let timeout = if name == "deploy" {
            self.ctx.plan.pipeline.deploy_timeout
        } else {
            self.ctx.plan.pipeline.scenario_timeout
        };
        let deadline = deadline_after(timeout);
        let mut vars = self.initial_vars(&rec);
        let mut status = Status::Passed;
        for line in lines {
            if self.ctx.stop.stop_requested() && !keep_going {
                status = Status::Interrupted;
                break;
            }
            let part = Part {
                deadline,
                timeout,
                seq_base: rec.steps,
                line_base: line.line,
                // Cleanup finishes even after the first Ctrl-C.
                interruptible: !keep_going,
                vars,
                observed_from: origin.observed_from,
            };
            let (verdict, steps, after) = self.run_ast(&rec, &line.ast, part);
            vars = after;
            rec.steps += steps;
            match verdict {
                Verdict::Passed => {}
                Verdict::Failed { reason, .. } => {
                    status = Status::Failed;
                    rec.failed_line.get_or_insert(line.line);
                    rec.reason
                        .get_or_insert(format!("`{}`: {reason}", line.text));
                    if !keep_going {
                        break;
                    }
                }
                Verdict::Interrupted => {
                    status = Status::Interrupted;
                    if !keep_going {
                        break;
                    }
                }
            }
        }
        rec.status = status;
        rec.duration_ms = started.elapsed().as_millis() as u64;
        self.ctx.events.emit(&RunEvent::ScenarioFinished(&rec));
        Some(rec)
    }

    fn interpret(
        &self,
        mut rec: ScenarioRecord,
        ast: &Scenario,
        timeout: Duration,
    ) -> ScenarioRecord {
        self.ctx.events.emit(&RunEvent::ScenarioStarted(&rec));
        let started = Instant::now();
        let part = Part {
            deadline: deadline_after(timeout),
            timeout,
            seq_base: 0,
            line_base: 1,
            interruptible: true,
            vars: self.initial_vars(&rec),
            observed_from: None,
        };
        let (verdict, steps, _) = self.run_ast(&rec, ast, part);
        rec.steps = steps;
        match verdict {
            Verdict::Passed => rec.status = Status::Passed,
            Verdict::Failed { line, reason } => {
                rec.status = Status::Failed;
                rec.failed_line = Some(line);
                rec.reason = Some(reason);
            }
            Verdict::Interrupted => {
                rec.status = Status::Interrupted;
                rec.reason = Some("interrupted".into());
            }
        }
        rec.duration_ms = started.elapsed().as_millis() as u64;
        self.ctx.events.emit(&RunEvent::ScenarioFinished(&rec));
        rec
    }

    /// For each crash reported during this run that no step caused, the pipeline's first
    /// `on_event` scenario whose pattern matches `SOURCE process CRASHED`, with the
    /// event's variables (`#{event.source}`…). Recorded as a hook (`on_event NAME`): it
    /// says what happened, it is not one of the pipeline's scenarios.
    ///
    /// Every crash of the run so far is looked at (the events index, from the run's
    /// start), so one reported a little after the step it happened in is not missed.
    fn diagnose(&self) -> Vec<ScenarioRecord> {
        let ctx = self.ctx;
        let Some(observed) = ctx.observed else {
            return Vec::new();
        };
        let crashes: Vec<_> = {
            let caused = ctx.caused.lock().unwrap_or_else(|e| e.into_inner());
            let mut diagnosed = ctx.diagnosed.lock().unwrap_or_else(|e| e.into_inner());
            observed
                .events(&ctx.plan.env.name, ctx.started_us, crate::clock::now_us())
                .into_iter()
                .filter(|e| e.name == "process" && e.text.as_deref() == Some("CRASHED"))
                .filter(|e| {
                    let id = (e.source.clone(), e.at_us);
                    let new = !caused.contains(&id) && !diagnosed.contains(&id);
                    if new {
                        diagnosed.push(id);
                    }
                    new
                })
                .map(|e| crate::record::Seen {
                    at_us: e.at_us,
                    daemon: e.daemon,
                    source: e.source,
                    name: e.name,
                    text: e.text.unwrap_or_default(),
                })
                .collect()
        };
        let mut out = Vec::new();
        for crash in crashes {
            out.extend(self.unexpected_crash(&crash));
            let line = format!("{} {} {}", crash.source, crash.name, crash.text);
            let Some(on) = self
                .ctx
                .plan
                .pipeline
                .on_event
                .iter()
                .find(|o| o.pattern.is_match(&line))
            else {
                continue;
            };
            self.ctx.events.emit(&RunEvent::Notice(&format!(
                "{} crashed during the run and no step did it: running {}",
                crash.source,
                display_path(&on.scenario.file.path)
            )));
            let mut rec = self.record(
                self.next_index(),
                ScenarioKind::Hook,
                &format!("{}{}", crate::record::DIAGNOSTICS_PREFIX, on.scenario.name),
                &display_path(&on.scenario.file.path),
            );
            self.ctx.events.emit(&RunEvent::ScenarioStarted(&rec));
            let started = Instant::now();
            let mut vars = self.initial_vars(&rec);
            vars.extend(
                [
                    ("event.source", &crash.source),
                    ("event.name", &crash.name),
                    ("event.value", &crash.text),
                    ("event.daemon", &crash.daemon),
                ]
                .map(|(k, v)| (k.to_string(), v.clone())),
            );
            let part = Part {
                deadline: deadline_after(on.scenario.timeout),
                timeout: on.scenario.timeout,
                seq_base: 0,
                line_base: 1,
                interruptible: true,
                vars,
                observed_from: None,
            };
            let (verdict, steps, _) = self.run_ast(&rec, &on.scenario.ast, part);
            rec.steps = steps;
            (rec.status, rec.failed_line, rec.reason) = match verdict {
                Verdict::Passed => (Status::Passed, None, None),
                Verdict::Failed { line, reason } => (Status::Failed, Some(line), Some(reason)),
                Verdict::Interrupted => (Status::Interrupted, None, Some("interrupted".into())),
            };
            rec.duration_ms = started.elapsed().as_millis() as u64;
            self.ctx.events.emit(&RunEvent::ScenarioFinished(&rec));
            out.push(rec);
        }
        out
    }

    /// A crash no step caused, as the pipeline's `unexpected_crash` says: a failed record
    /// of its own (the run fails), or a notice (`warn`).
    fn unexpected_crash(&self, crash: &crate::record::Seen) -> Option<ScenarioRecord> {
        let at = chrono::DateTime::from_timestamp_micros(crash.at_us)
            .map(|t| t.format("%H:%M:%S%.3f UTC").to_string())
            .unwrap_or_default();
        let what = format!("{} crashed at {at} while no step acted on it", crash.source);
        if self.ctx.plan.pipeline.unexpected_crash == crate::pipeline::CrashPolicy::Warn {
            self.ctx.events.emit(&RunEvent::Notice(&format!(
                "{what} (`unexpected_crash: warn`: the run's result stands)"
            )));
            return None;
        }
        let file = self.ctx.plan.pipeline.file.as_ref();
        let path = file.map(|f| display_path(&f.path)).unwrap_or_default();
        let mut rec = self.record(
            self.next_index(),
            ScenarioKind::Hook,
            "unexpected_crash",
            &path,
        );
        self.ctx.events.emit(&RunEvent::ScenarioStarted(&rec));
        rec.status = Status::Failed;
        rec.reason = Some(format!(
            "{what}; the run fails (`unexpected_crash: warn` in the pipeline only reports it)"
        ));
        self.ctx.events.emit(&RunEvent::ScenarioFinished(&rec));
        Some(rec)
    }

    /// Interprets `ast` as part of `rec`; step numbers continue from `seq_base`.
    /// The run's variables plus this scenario's name: what a scenario starts with.
    fn initial_vars(&self, rec: &ScenarioRecord) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = self
            .ctx
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.insert("scenario".into(), rec.name.clone());
        vars
    }

    /// Interprets `ast` as (part of) `rec`. Returns the verdict, the last step number and
    /// the variables as the statements left them.
    fn run_ast(
        &self,
        rec: &ScenarioRecord,
        ast: &Scenario,
        part: Part,
    ) -> (Verdict, u64, HashMap<String, String>) {
        let mut host = StepHost {
            ctx: self.ctx,
            scenario: &rec.name,
            scenario_index: rec.index,
            deadline: part.deadline,
            scenario_timeout: part.timeout,
            seq_base: part.seq_base,
            last_seq: 0,
            line_base: part.line_base,
            interruptible: part.interruptible,
            depth: std::cell::Cell::new(0),
            started_us: part.observed_from.unwrap_or_else(crate::clock::now_us),
            previous_step_us: std::cell::Cell::new(crate::clock::now_us()),
            since_us: std::cell::Cell::new(crate::clock::now_us()),
            targeted: std::cell::RefCell::new(Vec::new()),
        };
        let mut interpreter =
            Interpreter::new(ast, part.vars).with_budget(self.ctx.plan.pipeline.step_budget);
        let outcome = interpreter.run(&mut host);
        (outcome.verdict, host.steps_run(), interpreter.into_vars())
    }
}

/// Where a hook comes from: the file it is written in, and what its `wait_for`s look
/// back to (none: each line's own start).
struct HookOrigin<'a> {
    file: Option<&'a crate::source::SourceFile>,
    observed_from: Option<i64>,
}

/// How one piece of a scenario record is interpreted.
struct Part {
    deadline: Instant,
    timeout: Duration,
    seq_base: u64,
    line_base: u32,
    interruptible: bool,
    vars: HashMap<String, String>,
    /// What its `wait_for` looks back to (µs); none: its own start.
    observed_from: Option<i64>,
}

pub use crate::source::display_path;

/// Now plus `d`, saturating far in the future rather than overflowing.
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

/// The conditions a run runs under: each environment's test-data manifest hash and load
/// profile (`load_*` variables after overrides), and this host's facts.
fn conditions(plans: &[Plan], settings: &RunSettings<'_>) -> crate::record::RunConditions {
    use sha2::{Digest, Sha256};
    let mut c = crate::record::RunConditions::default();
    for plan in plans {
        let env = &plan.env;
        let manifest = env
            .runtime_dir(settings.state_dir)
            .join("data")
            .join(".lowtouch-data.json");
        if let Ok(bytes) = std::fs::read(&manifest) {
            c.test_data
                .insert(env.name.clone(), hex::encode(Sha256::digest(&bytes)));
        }
        let mut load: std::collections::BTreeMap<String, String> = env
            .variables
            .iter()
            .filter(|(k, _)| k.starts_with("load_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in masked(
            &settings.overrides,
            &secret_masks(std::slice::from_ref(plan)),
        ) {
            if k.starts_with("load_") {
                load.insert(k, v);
            }
        }
        if !load.is_empty() {
            c.load.insert(env.name.clone(), load);
        }
        for sc in plan.pipeline.groups.iter().flatten() {
            c.scenarios.insert(
                format!("{}/{}", env.name, sc.name),
                crate::record::content_of(&sc.file.text),
            );
        }
    }
    c.host = crate::monitor::procfs::host_facts(Path::new("/proc"));
    c
}

/// Every secret value of the run's environments with its placeholder, longest first (a
/// secret that starts another must not leave the other's end).
fn secret_masks(plans: &[Plan]) -> Vec<(String, String)> {
    let mut masks: Vec<(String, String)> =
        plans.iter().flat_map(|p| p.env.secret_masks()).collect();
    masks.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    masks.dedup();
    masks
}

/// `--set` pairs as they may be stored: every secret value in a value replaced by its
/// placeholder (a value passed on the command line may be a secret's).
fn masked(pairs: &[(String, String)], masks: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| {
            let value = masks
                .iter()
                .filter(|(secret, _)| !secret.is_empty())
                .fold(value.clone(), |v, (secret, placeholder)| {
                    v.replace(secret.as_str(), placeholder)
                });
            (name.clone(), value)
        })
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_value_holding_a_secret_is_stored_with_its_placeholder() {
        let masks = vec![
            ("hunter2-long".to_string(), "<secret:long>".to_string()),
            ("hunter2".to_string(), "<secret:short>".to_string()),
        ];
        let check = |value: &str, expected: &str| {
            let pairs = vec![("k".to_string(), value.to_string())];
            assert_eq!(masked(&pairs, &masks)[0].1, expected, "{value}");
        };
        check("hunter2", "<secret:short>");
        check("hunter2-long", "<secret:long>");
        check("user:hunter2@host", "user:<secret:short>@host");
        check("plain", "plain");
        check("", "");
    }
}

#[cfg(test)]
mod execution {
    use std::sync::Mutex;

    use super::*;
    use crate::event::Listener;
    use crate::pipeline::Pipeline;

    /// Writes down what happened, as a word per event.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Listener for Recorder {
        fn on_event(&self, event: &RunEvent<'_>) {
            let word = match event {
                RunEvent::RunStarted(_) => "run".to_string(),
                RunEvent::ScenarioStarted(sc) => format!("scenario {}", sc.name),
                RunEvent::StepStarted { command, .. } => format!("step {command}"),
                RunEvent::StepFinished(s) => format!("done {} {}", s.command, s.status),
                RunEvent::ScenarioFinished(sc) => format!("end {} {}", sc.name, sc.status.as_str()),
                RunEvent::RunFinished(r) => format!("finished {}", r.status.as_str()),
                _ => return,
            };
            self.0.lock().unwrap().push(word);
        }
    }

    fn plan(dir: &Path, scenario: &str) -> Plan {
        std::fs::create_dir_all(dir.join("environments")).unwrap();
        std::fs::write(dir.join("environments/local.yaml"), "variables: {}\n").unwrap();
        let file = dir.join("s.scn");
        std::fs::write(&file, scenario).unwrap();
        Plan::new(Pipeline::adhoc(&file, "local").unwrap(), dir, &[], &[]).unwrap()
    }

    /// Runs `scenario` in `dir` under `control`; returns the record and the events' words.
    fn run_recorded(dir: &Path, scenario: &str, control: &RunControl) -> (RunRecord, Vec<String>) {
        let plans = [plan(dir, scenario)];
        let settings = RunSettings {
            run_id: "r1",
            project: dir,
            state_dir: dir,
            revision: "rev".into(),
            overrides: Vec::new(),
            config_commits: Default::default(),
            config_trees: Default::default(),
            preemptible: false,
            control,
            network: None,
            observed: None,
        };
        let recorder = Recorder::default();
        let run = execute(
            &plans,
            &settings,
            &Fanout {
                listeners: vec![&recorder],
            },
        );
        (run, recorder.0.into_inner().unwrap())
    }

    #[test]
    fn a_run_emits_what_happened_in_order_and_returns_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let control = RunControl::detached();
        let (run, events) = run_recorded(dir.path(), "echo one\necho two\n", &control);
        assert_eq!(run.status, Status::Passed);
        assert_eq!((run.passed, run.failed), (1, 0));
        assert_eq!(
            events,
            [
                "run",
                "scenario s",
                "step echo",
                "done echo 0",
                "step echo",
                "done echo 0",
                "end s passed",
                "finished passed"
            ]
        );
    }

    #[test]
    fn a_cancelled_control_stops_the_run_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let control = RunControl::detached();
        let stopper = {
            let control = control.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                control.cancel();
            })
        };
        let (run, events) = run_recorded(dir.path(), "sleep 30s\necho never\n", &control);
        stopper.join().unwrap();
        assert_eq!(run.status, Status::Interrupted);
        assert_eq!(run.note.as_deref(), Some("cancelled (`lowtouch cancel`)"));
        assert!(!events.iter().any(|e| e == "step echo"), "{events:?}");
    }
}
