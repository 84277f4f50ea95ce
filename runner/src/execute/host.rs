//! The interpreter's [`Host`] for a real run: dispatches each step to a builtin, a
//! component control, an alias or a plugin, applies the step's limits, and emits the
//! step's events with its record.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::route::{Control, ControlError, Routed};
use crate::clock;
use crate::environment::environment::{Condition, When};
use crate::environment::{AliasKind, Resolved, Resolver};
use crate::event::{Fanout, RunEvent};
use crate::pipeline::Plan;
use crate::process::control::{self as run_control, RunControl};
use crate::process::{self, Captured};
use crate::record::{Around, Held, Sample, Seen, StepRecord};
use crate::scenario::builtin::{Awaited, Builtin, BuiltinError, Signal, WaitFor};
use crate::scenario::duration::human;
use crate::scenario::interpreter::{Host, Interpreter, StepRequest, StepResult, Verdict};

/// What every step of a run shares.
pub struct RunContext<'a> {
    pub run_id: &'a str,
    pub plan: &'a Plan,
    /// Component control, here or routed to the daemons (the script manager).
    pub control: &'a Control<'a>,
    /// What stops the run: signals, a cancellation, a pre-emption.
    pub stop: &'a RunControl,
    pub events: &'a Fanout<'a>,
    pub project: &'a Path,
    /// The environment's variables and the run's context, before any `set`.
    pub vars: BTreeMap<String, String>,
    /// What every child starts from: lowtouch's environment without the secrets'
    /// variables (built once per run).
    pub child_env: process::ChildEnv,
    /// Secret values and their placeholders: masked in every step's output.
    pub masks: Vec<(String, String)>,
    /// When the run began on this environment (µs since the epoch): pre-conditions look
    /// back to it.
    pub started_us: i64,
    /// Crashes a step caused (it acted on that component), as (component, µs): every
    /// other crash of the run is unexpected, and the run starts the pipeline's `on_event`
    /// scenario for it after the scenario in progress.
    pub caused: std::sync::Mutex<Vec<(String, i64)>>,
    /// Crashes diagnosed already.
    pub diagnosed: std::sync::Mutex<Vec<(String, i64)>>,
    /// What the monitoring network observed (`wait_for`, `metric`); `None` without one.
    pub observed: Option<&'a dyn super::observe::Observations>,
    /// The phase the system is in (`idle`, `load`…): set by aliases that declare one,
    /// recorded with every step. Run-wide per environment: load a scenario (or an
    /// earlier pipeline of the run) left running is still on.
    pub phase: &'a std::sync::Mutex<Option<String>>,
}

impl RunContext<'_> {
    /// The text with every secret value replaced by its placeholder.
    pub fn mask(&self, text: String) -> String {
        if self.masks.iter().all(|(v, _)| !text.contains(v.as_str())) {
            return text;
        }
        let mut out = text;
        for (value, placeholder) in &self.masks {
            out = out.replace(value.as_str(), placeholder);
        }
        out
    }
}

pub struct StepHost<'a> {
    pub ctx: &'a RunContext<'a>,
    pub scenario: &'a str,
    pub scenario_index: u32,
    /// The scenario's time limit, as an instant.
    pub deadline: Instant,
    pub scenario_timeout: Duration,
    /// Step numbers of this host start after this (hooks run several one-line scenarios
    /// into one record).
    pub seq_base: u64,
    /// The last step number the interpreter handed us.
    pub last_seq: u64,
    /// The source line of the scenario's first line: hooks are written inside YAML.
    pub line_base: u32,
    /// False for cleanup (`after_each`, `teardown`): the first Ctrl-C must not stop it.
    pub interruptible: bool,
    /// How deep `steps:` aliases are nested right now.
    pub depth: std::cell::Cell<u32>,
    /// When the scenario started, µs since the epoch: `wait_for` looks back to it.
    pub started_us: i64,
    /// When the current step started.
    pub previous_step_us: std::cell::Cell<i64>,
    /// When the step before the current one started (`wait_for event` looks from there).
    pub since_us: std::cell::Cell<i64>,
    /// The components the current step acted on (through nested aliases too): their
    /// crashes are its doing.
    pub targeted: std::cell::RefCell<Vec<String>>,
}

/// The environment's conditions of one kind whose step starts the step's words.
fn conditions_of<'e>(
    env: &'e crate::environment::Environment,
    when: When,
    words: &[&str],
) -> Vec<&'e Condition> {
    env.conditions
        .iter()
        .filter(|c| c.when == when && applies(&c.step, words))
        .collect()
}

/// Whether a condition written for steps starting with `written` applies to a step of
/// `words`, compared as commands, not as text: a signal by its number (`kill -KILL X`,
/// `kill -SIGKILL X` and `kill -9 X` are one; a bare `kill X` is `kill -15 X`), and a
/// `kill` written without a signal applies to every signal.
fn applies(written: &[String], words: &[&str]) -> bool {
    let written: Vec<&str> = written.iter().map(String::as_str).collect();
    let (w, s) = (canonical(&written, false), canonical(words, true));
    let signal_free =
        w.first().is_some_and(|c| c == "kill") && w.get(1).is_none_or(|sig| !sig.starts_with('-'));
    let s: Vec<String> = if signal_free && s.first().is_some_and(|c| c == "kill") {
        s.into_iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, x)| x)
            .collect()
    } else {
        s
    };
    w.len() <= s.len() && w.iter().zip(&s).all(|(a, b)| a == b)
}

/// A command's words with a `kill` signal as its number; `bare_is_term` writes the
/// signal a bare `kill` sends.
fn canonical(words: &[&str], bare_is_term: bool) -> Vec<String> {
    use crate::scenario::builtin::Signal;
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    if words.first() == Some(&"kill") {
        match words.get(1).and_then(|w| Signal::parse(w)) {
            Some(sig) => out[1] = format!("-{}", sig.number()),
            None if bare_is_term && words.len() > 1 => {
                out.insert(1, format!("-{}", Signal::TERM.number()))
            }
            None => {}
        }
    }
    out
}

/// A step's builtin, read once from its words: `None` for an alias or a plugin.
type Parsed = Option<Result<Builtin, BuiltinError>>;

/// The component a step controls, whose metrics describe it: the parsed control's, or
/// — when its words did not parse — its last word, the component it was meant for.
fn controlled_component<'s>(parsed: &'s Parsed, args: &'s [String]) -> Option<&'s str> {
    match parsed {
        Some(Ok(builtin)) if builtin.command().controls_a_component() => {
            builtin.component().map(String::as_str)
        }
        Some(Err(e)) if e.command.controls_a_component() => args.last().map(String::as_str),
        _ => None,
    }
}

/// `steps:` aliases calling each other deeper than this are a cycle.
const MAX_ALIAS_DEPTH: u32 = 16;

/// What running one step produced, before it becomes a record.
struct Exec {
    resolved: &'static str,
    status: i32,
    stdout: Captured,
    stderr: Captured,
    failure: Option<String>,
    interrupted: bool,
}

impl Exec {
    fn ok(resolved: &'static str, text: String) -> Exec {
        Exec {
            resolved,
            status: 0,
            stdout: Captured { text, dropped: 0 },
            stderr: Captured::default(),
            failure: None,
            interrupted: false,
        }
    }

    fn interrupted(resolved: &'static str) -> Exec {
        Exec {
            interrupted: true,
            ..Exec::failed(resolved, 130, "interrupted".into())
        }
    }

    fn failed(resolved: &'static str, status: i32, why: String) -> Exec {
        Exec {
            resolved,
            status,
            stdout: Captured::default(),
            stderr: Captured {
                text: why.clone(),
                dropped: 0,
            },
            failure: Some(why),
            interrupted: false,
        }
    }

    /// What the interpreter needs to know of it.
    fn into_result(self) -> StepResult {
        StepResult {
            status: self.status,
            stdout: self.stdout.text,
            failure: self.failure,
            interrupted: self.interrupted,
        }
    }

    fn control(resolved: &'static str, result: Result<String, String>) -> Exec {
        match result {
            Ok(m) => Exec::ok(resolved, format!("{m}\n")),
            Err(e) => Exec::failed(resolved, 1, e),
        }
    }
}

impl<'a> StepHost<'a> {
    /// What may stop this step: the run's control, unless this is cleanup (which must
    /// finish whatever happens).
    fn stop(&self) -> Option<&'a RunControl> {
        self.interruptible.then_some(self.ctx.stop)
    }

    /// The newest samples of the metrics that describe a step: for a component command,
    /// the component's and its host's system metrics; for anything else, all of the
    /// environment's. `None` when nothing observes the environment.
    fn metrics_around(&self, component: Option<&str>) -> Option<Vec<Sample>> {
        let observed = self.ctx.observed?;
        let mut samples = observed.latest(&self.ctx.plan.env.name);
        if let Some(component) = component {
            let daemon = self
                .ctx
                .control
                .routes
                .component(component)
                .map(|d| &d.name);
            samples.retain(|s| {
                s.source == component
                    || (s.source == "system" && daemon.is_none_or(|d| d == &s.daemon))
            });
        }
        Some(samples)
    }

    /// The environment's events from `since_us` until now.
    fn events_since(&self, since_us: i64) -> Vec<Seen> {
        let Some(observed) = self.ctx.observed else {
            return Vec::new();
        };
        observed
            .events(&self.ctx.plan.env.name, since_us, crate::clock::now_us())
            .into_iter()
            .filter(|o| o.kind == "event")
            .map(|o| Seen {
                at_us: o.at_us,
                daemon: o.daemon,
                source: o.source,
                name: o.name,
                text: o.text.unwrap_or_default(),
            })
            .collect()
    }

    /// `wait_for COMPONENT STATE [timeout D]` / `wait_for event 'REGEX' [timeout D]`.
    fn wait_for(&self, wait_for: &WaitFor, limit: Duration, own: bool, scope: Scope) -> Exec {
        let WaitFor { awaited, timeout } = wait_for;
        let timeout = *timeout;
        let Some(observed) = self.ctx.observed else {
            return Exec::failed(
                "builtin",
                2,
                format!(
                    "no monitoring daemon reports on environment {}: declare one under \
                     `daemons:` (it follows the components' logs)",
                    self.ctx.plan.env.name
                ),
            );
        };
        let env = &self.ctx.plan.env.name;
        let wait = timeout.map_or(limit, |t| t.min(limit));
        let started = Instant::now();
        let since = self.since_us.get();
        loop {
            let all = observed.events(env, self.started_us, crate::clock::now_us());
            if awaited.met(&all, since) {
                return Exec::ok("builtin", String::new());
            }
            if started.elapsed() >= wait {
                // What was last seen of it in the whole run, not only in this part.
                let run = observed.events(env, self.ctx.started_us, crate::clock::now_us());
                let why = awaited.why_not(&run, wait);
                // Its own timeout is the condition failing; the step's limit says so.
                return if timeout.is_some_and(|t| t <= limit) {
                    Exec::failed("builtin", 1, why)
                } else {
                    Exec::failed(
                        "builtin",
                        124,
                        format!("{why}; {}", self.limit_message(limit, own, scope)),
                    )
                };
            }
            if !run_control::sleep(Duration::from_millis(5), self.stop()) {
                return Exec::interrupted("builtin");
            }
        }
    }

    /// The pre-conditions of a step: the environment's `conditions` whose `before` starts
    /// its command line must hold now (or within their timeout; 1 s by default, what a
    /// report needs to arrive). Judged on what was observed since the run began, so a
    /// state reported before this scenario counts. `None` when all hold.
    fn pre_conditions(&self, name: &str, args: &[String]) -> Option<String> {
        let observed = self.ctx.observed?;
        let env = &self.ctx.plan.env;
        let words: Vec<&str> = std::iter::once(name)
            .chain(args.iter().map(String::as_str))
            .collect();
        for condition in conditions_of(env, When::Before, &words) {
            let WaitFor { awaited, timeout } = &condition.awaited;
            let wait = timeout.unwrap_or(Duration::from_secs(1));
            if let Err(why) = self.judge(observed, awaited, self.ctx.started_us, wait) {
                return Some(format!(
                    "pre-condition of `{}` (`{}`) does not hold, so the step did not run: {why}",
                    condition.step.join(" "),
                    condition.expect.join(" ")
                ));
            }
        }
        None
    }

    /// The post-conditions of a step that succeeded: the environment's `conditions` whose
    /// `after` starts its command line, and — built in — a component killed with a fatal
    /// signal must be seen CRASHED within 2 s. Judged on what was observed since the step
    /// began; `None` when all hold (or nothing observes this environment).
    fn post_conditions(
        &self,
        name: &str,
        args: &[String],
        builtin: Option<&Builtin>,
    ) -> Result<Vec<Held>, String> {
        let Some(observed) = self.ctx.observed else {
            return Ok(Vec::new());
        };
        let env = &self.ctx.plan.env;
        let words: Vec<&str> = std::iter::once(name)
            .chain(args.iter().map(String::as_str))
            .collect();
        let mut expected: Vec<(String, WaitFor)> = conditions_of(env, When::After, &words)
            .into_iter()
            .map(|c| (c.step.join(" "), c.awaited.clone()))
            .collect();
        let watched = env
            .daemons
            .values()
            .any(|d| d.collectors.iter().any(|c| c == "process"));
        if watched
            && let Some(Builtin::Control { action, component }) = builtin
            && action.signal().is_some_and(Signal::is_fatal)
        {
            expected.push((
                words.join(" "),
                WaitFor {
                    awaited: Awaited::State {
                        component: component.clone(),
                        state: "CRASHED".into(),
                    },
                    timeout: Some(Duration::from_secs(2)),
                },
            ));
        }
        // This step's start (µs).
        let since = self.previous_step_us.get();
        let mut held = Vec::new();
        for (after, WaitFor { awaited, timeout }) in &expected {
            let wait = timeout.unwrap_or(Duration::from_secs(5));
            match self.judge(observed, awaited, since, wait) {
                Ok(Some(at)) => held.push(Held {
                    condition: match awaited {
                        Awaited::State { component, state } => format!("{component} {state}"),
                        Awaited::Event(re) => format!("event '{}'", re.as_str()),
                    },
                    after_us: at - since,
                }),
                Ok(None) => {}
                Err(why) => return Err(format!("post-condition of `{after}`: {why}")),
            }
        }
        Ok(held)
    }

    /// Waits up to `wait` for `awaited`, judged on the environment's events since
    /// `since_us`: when it was met (µs), or why not (`Ok(None)` when interrupted: the
    /// interruption is the step's outcome then).
    fn judge(
        &self,
        observed: &dyn super::observe::Observations,
        awaited: &Awaited,
        since_us: i64,
        wait: Duration,
    ) -> Result<Option<i64>, String> {
        let env = &self.ctx.plan.env.name;
        let started = Instant::now();
        loop {
            let all = observed.events(env, since_us, crate::clock::now_us());
            if let Some(at) = awaited.met_at(&all, since_us) {
                return Ok(Some(at));
            }
            if started.elapsed() >= wait {
                return Err(awaited.why_not(&all, wait));
            }
            if !run_control::sleep(Duration::from_millis(5), self.stop()) {
                return Ok(None);
            }
        }
    }

    /// `metric NAME` / `metric SOURCE NAME`: prints the latest sample (for `set`).
    fn metric(&self, source: Option<&str>, name: &str) -> Exec {
        let Some(observed) = self.ctx.observed else {
            return Exec::failed(
                "builtin",
                2,
                format!(
                    "no monitoring daemon reports on environment {}",
                    self.ctx.plan.env.name
                ),
            );
        };
        let samples = observed.latest(&self.ctx.plan.env.name);
        match super::observe::latest_metric(&samples, source, name) {
            Ok(v) => Exec::ok("builtin", format!("{v}\n")),
            Err(e) => Exec::failed("builtin", 1, e),
        }
    }
}

impl Host for StepHost<'_> {
    fn run_step(&mut self, step: &StepRequest<'_>) -> StepResult {
        if self.interrupted() {
            return StepResult {
                interrupted: true,
                status: 130,
                ..Default::default()
            };
        }
        let started_at = clock::now();
        let t0 = Instant::now();
        self.last_seq = step.seq;
        let seq = self.seq_base + step.seq;
        let line = self.line_base + step.line - 1;
        // What is shown and stored: a secret's value never, whatever wrote it there.
        let shown_args: Vec<String> = step.args.iter().map(|a| self.ctx.mask(a.clone())).collect();
        self.ctx.events.emit(&RunEvent::StepStarted {
            scenario: self.scenario,
            scenario_index: self.scenario_index,
            seq,
            line,
            command: step.name,
            args: &shown_args,
        });
        let ctx = self.ctx;
        let phase = ctx.phase.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let step_us = crate::clock::now_us();
        // `wait_for event` looks back to the start of the step before it.
        self.since_us.set(self.previous_step_us.replace(step_us));
        let parsed = Builtin::parse(step.name, &step.args);
        let component = controlled_component(&parsed, &step.args);
        let before = self.metrics_around(component);
        self.targeted.borrow_mut().clear();
        let exec = match self.pre_conditions(step.name, &step.args) {
            Some(why) => Exec::failed("condition", 1, why),
            // Interrupted while a pre-condition was awaited: the step does not run.
            None if self.interrupted() => Exec::interrupted("condition"),
            None => self.dispatch(
                step.name,
                parsed.as_ref(),
                &step.args,
                step.timeout,
                seq,
                &ctx.vars,
                Within {
                    deadline: self.deadline,
                    scope: Scope::Scenario,
                },
            ),
        };
        // The script manager's part: what must follow the step, judged by what the
        // daemons observed since it began.
        // The command's own time: what follows it is waited for, not part of it.
        let ran = t0.elapsed();
        let mut exec = exec;
        let mut held = Vec::new();
        if exec.status == 0 && !exec.interrupted {
            match self.post_conditions(
                step.name,
                &step.args,
                parsed.as_ref().and_then(|p| p.as_ref().ok()),
            ) {
                Ok(h) => held = h,
                Err(why) => {
                    exec.status = 1;
                    exec.stderr.text.push_str(&why);
                    exec.failure = Some(why);
                }
            }
        }
        let exec = Exec {
            stdout: Captured {
                text: ctx.mask(exec.stdout.text),
                dropped: exec.stdout.dropped,
            },
            stderr: Captured {
                text: ctx.mask(exec.stderr.text),
                dropped: exec.stderr.dropped,
            },
            failure: exec.failure.map(|f| ctx.mask(f)),
            ..exec
        };
        let around = before.map(|before| Around {
            before,
            after: self.metrics_around(component).unwrap_or_default(),
            events: self.events_since(step_us),
        });
        if let Some(around) = &around {
            let targeted = self.targeted.borrow();
            let caused = around.events.iter().filter(|e| {
                e.name == "process" && e.text == "CRASHED" && targeted.contains(&e.source)
            });
            ctx.caused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(caused.map(|e| (e.source.clone(), e.at_us)));
        }
        let record = StepRecord {
            phase,
            around,
            run_id: self.ctx.run_id.to_string(),
            scenario_index: self.scenario_index,
            seq,
            line,
            command: step.name.to_string(),
            args: shown_args,
            resolved: exec.resolved.to_string(),
            status: exec.status,
            stdout: exec.stdout.text.clone(),
            stdout_dropped: exec.stdout.dropped,
            stderr: exec.stderr.text.clone(),
            stderr_dropped: exec.stderr.dropped,
            failure: exec.failure.clone(),
            started_at,
            duration_us: ran.as_micros() as u64,
            held,
        };
        self.ctx.events.emit(&RunEvent::StepFinished(&record));
        exec.into_result()
    }

    fn interrupted(&self) -> bool {
        self.stop().is_some_and(RunControl::stop_requested)
    }
}

impl StepHost<'_> {
    /// Steps run by this host so far.
    pub fn steps_run(&self) -> u64 {
        self.last_seq
    }

    /// Why a step was stopped at `limit`: its own timeout, an enclosing alias step's,
    /// or the scenario's.
    fn limit_message(&self, limit: Duration, own: bool, scope: Scope) -> String {
        match (own, scope) {
            (true, _) => format!("timed out after {}", human(limit)),
            (false, Scope::Step(outer)) => format!("timed out after {}", human(outer)),
            (false, Scope::Scenario) => format!(
                "ran out of the scenario's time limit of {}",
                human(self.scenario_timeout)
            ),
        }
    }

    /// Runs one command within `deadline` (the scenario's, or an enclosing alias's):
    /// `builtin` is what its words read as when it names a builtin.
    #[expect(clippy::too_many_arguments, reason = "one step's request, taken apart")]
    fn dispatch(
        &self,
        name: &str,
        builtin: Option<&Result<Builtin, BuiltinError>>,
        args: &[String],
        timeout: Option<Duration>,
        seq: u64,
        vars: &BTreeMap<String, String>,
        within: Within,
    ) -> Exec {
        let Within { deadline, scope } = within;
        let ctx = self.ctx;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Exec::failed(
                "builtin",
                124,
                self.limit_message(Duration::ZERO, false, scope),
            );
        }
        // A builtin's name is never an alias's; a plugin cannot take it either.
        let resolved = match builtin {
            Some(_) => None,
            None => Resolver::new(&ctx.plan.env, &ctx.plan.tools).resolve(name),
        };
        let alias = match resolved {
            Some(Resolved::Alias(a)) => Some(a),
            _ => None,
        };
        let wanted = timeout
            .or(alias.and_then(|a| a.timeout))
            .unwrap_or(ctx.plan.pipeline.step_timeout);
        // The step's own limit, unless the scenario (or enclosing alias) ends sooner.
        let own = wanted <= remaining;
        let limit = wanted.min(remaining);
        match (builtin, resolved) {
            (Some(Ok(builtin)), _) => self.builtin(builtin, args, limit, own, scope),
            (Some(Err(e)), _) => {
                let resolved = if e.command.controls_a_component() {
                    "component"
                } else {
                    "builtin"
                };
                Exec::failed(resolved, 2, e.to_string())
            }
            (None, Some(Resolved::Plugin(path))) => {
                let why = self.limit_message(limit, own, scope);
                self.spawn("plugin", path.as_os_str(), args, limit, why, seq)
            }
            (None, Some(Resolved::Alias(alias))) => {
                let exec = self.alias(alias, name, args, vars, limit, own, scope, seq);
                if let Some(phase) = &alias.phase
                    && exec.status == 0
                    && !exec.interrupted
                {
                    *ctx.phase.lock().unwrap_or_else(|e| e.into_inner()) = Some(phase.clone());
                }
                exec
            }
            (None, None) => Exec::failed(
                "unknown",
                127,
                format!(
                    "unknown command `{name}` (neither an alias of the environment nor a plugin)"
                ),
            ),
        }
    }

    /// Runs a builtin: `args` are its words (what `echo` prints).
    fn builtin(
        &self,
        builtin: &Builtin,
        args: &[String],
        limit: Duration,
        own: bool,
        scope: Scope,
    ) -> Exec {
        match builtin {
            Builtin::Echo => Exec::ok("builtin", format!("{}\n", args.join(" "))),
            Builtin::WaitFor(wait_for) => self.wait_for(wait_for, limit, own, scope),
            Builtin::Metric { source, name } => self.metric(source.as_deref(), name),
            Builtin::Sleep(d) => {
                let slept = run_control::sleep((*d).min(limit), self.stop());
                if !slept {
                    Exec::interrupted("builtin")
                } else if *d > limit {
                    Exec::failed("builtin", 124, self.limit_message(limit, own, scope))
                } else {
                    Exec::ok("builtin", String::new())
                }
            }
            Builtin::Control { action, component } => {
                self.targeted.borrow_mut().push(component.clone());
                let result = self
                    .ctx
                    .control
                    .component(action, component, limit, self.stop());
                match result {
                    Err(ControlError::Interrupted) => Exec::interrupted("component"),
                    Err(ControlError::Failed(_)) if self.interrupted() => {
                        Exec::interrupted("component")
                    }
                    Err(ControlError::Failed(e)) => Exec::control("component", Err(e)),
                    Ok(m) => Exec::control("component", Ok(m)),
                }
            }
        }
    }

    /// Runs an alias of the environment: here, on its daemon, or step by step.
    #[expect(clippy::too_many_arguments, reason = "dispatch's state, passed on")]
    fn alias(
        &self,
        alias: &crate::environment::Alias,
        name: &str,
        args: &[String],
        vars: &BTreeMap<String, String>,
        limit: Duration,
        own: bool,
        scope: Scope,
        seq: u64,
    ) -> Exec {
        let ctx = self.ctx;
        match &alias.kind {
            AliasKind::Run(_) if ctx.control.routes.alias(name).is_some() => {
                self.routed_alias(name, args, limit, seq)
            }
            AliasKind::Run(argv) => {
                let mut full = Vec::with_capacity(argv.len() + args.len());
                for t in argv {
                    match t.render(vars) {
                        Ok(s) => full.push(s),
                        Err(e) => return Exec::failed("alias", 2, e.to_string()),
                    }
                }
                full.extend(args.iter().cloned());
                let program = full.remove(0);
                let why = self.limit_message(limit, own, scope);
                self.spawn("alias", OsStr::new(&program), &full, limit, why, seq)
            }
            AliasKind::Shell(script) => {
                let mut full = vec!["-c".to_string(), script.clone(), name.to_string()];
                full.extend(args.iter().cloned());
                let why = self.limit_message(limit, own, scope);
                self.spawn("alias", OsStr::new("sh"), &full, limit, why, seq)
            }
            AliasKind::Steps(ast) => {
                self.steps_alias(name, ast, args, vars, Instant::now() + limit, limit)
            }
        }
    }

    /// A host-bound alias, run by the daemon that is allowed to run it.
    fn routed_alias(&self, name: &str, args: &[String], limit: Duration, seq: u64) -> Exec {
        let ctx = self.ctx;
        let Some(daemon) = ctx.control.routes.alias(name) else {
            return Exec::failed("alias", 127, format!("`{name}` has no daemon"));
        };
        let command = crate::net::codec::Command::Run {
            name: name.to_string(),
            args: args.to_vec(),
            timeout_ms: Some(limit.as_millis() as u64),
            env: self.step_env(seq).to_vec(),
        };
        let line = std::iter::once(name)
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        match ctx.control.send(daemon, &line, command, limit, self.stop()) {
            Routed::Done(o) => Exec {
                resolved: "alias",
                status: o.status,
                stdout: Captured {
                    text: o.stdout,
                    dropped: 0,
                },
                stderr: Captured {
                    text: o.stderr,
                    dropped: 0,
                },
                failure: o
                    .error
                    .map(|e| format!("{e} (daemon {} on {})", daemon.name, daemon.host)),
                interrupted: false,
            },
            Routed::Failed(why) => Exec::failed("alias", 1, why),
            Routed::Interrupted => Exec::interrupted("alias"),
        }
    }

    /// The variables every child of a step gets: which run, scenario and step it is.
    fn step_env(&self, seq: u64) -> [(String, String); 6] {
        let ctx = self.ctx;
        [
            ("LOWTOUCH_RUN_ID".to_string(), ctx.run_id.to_string()),
            ("LOWTOUCH_ENV".to_string(), ctx.plan.env.name.clone()),
            (
                "LOWTOUCH_PIPELINE".to_string(),
                ctx.plan.pipeline.name.clone(),
            ),
            ("LOWTOUCH_SCENARIO".to_string(), self.scenario.to_string()),
            ("LOWTOUCH_STEP".to_string(), seq.to_string()),
            (
                "LOWTOUCH_PROJECT_DIR".to_string(),
                ctx.project.display().to_string(),
            ),
        ]
    }

    fn spawn(
        &self,
        resolved: &'static str,
        program: &OsStr,
        args: &[String],
        limit: Duration,
        limit_message: String,
        seq: u64,
    ) -> Exec {
        let ctx = self.ctx;
        let env = self.step_env(seq);
        let spec = process::Spec {
            program,
            args,
            env: &env,
            cwd: Some(ctx.project),
            timeout: limit,
            limit: ctx.plan.pipeline.output_limit,
            stop: self.stop(),
            inherit: &ctx.child_env,
        };
        match process::run(&spec) {
            Ok(o) => {
                let failure = if o.interrupted {
                    Some("interrupted".to_string())
                } else if o.timed_out {
                    Some(format!("{limit_message} (its process group was killed)"))
                } else {
                    None
                };
                Exec {
                    resolved,
                    status: o.status,
                    stdout: o.stdout,
                    stderr: o.stderr,
                    failure,
                    interrupted: o.interrupted,
                }
            }
            Err(e) => Exec::failed(
                resolved,
                127,
                format!("could not start `{}`: {e}", Path::new(program).display()),
            ),
        }
    }

    /// An alias made of scenario statements runs in a nested interpreter within the
    /// step's limit; its steps' output becomes this step's output, its verdict this
    /// step's status.
    fn steps_alias(
        &self,
        name: &str,
        ast: &crate::scenario::Scenario,
        args: &[String],
        vars: &BTreeMap<String, String>,
        deadline: Instant,
        limit: Duration,
    ) -> Exec {
        struct Nested<'h, 'a> {
            host: &'h StepHost<'a>,
            vars: BTreeMap<String, String>,
            deadline: Instant,
            limit: Duration,
            stdout: String,
            stderr: String,
        }
        impl Host for Nested<'_, '_> {
            fn run_step(&mut self, step: &StepRequest<'_>) -> StepResult {
                let parsed = Builtin::parse(step.name, &step.args);
                let exec = self.host.dispatch(
                    step.name,
                    parsed.as_ref(),
                    &step.args,
                    step.timeout,
                    step.seq,
                    &self.vars,
                    Within {
                        deadline: self.deadline,
                        scope: Scope::Step(self.limit),
                    },
                );
                self.stdout.push_str(&exec.stdout.text);
                self.stderr.push_str(&exec.stderr.text);
                exec.into_result()
            }
            fn interrupted(&self) -> bool {
                self.host.interrupted()
            }
        }
        let depth = self.depth.get();
        if depth >= MAX_ALIAS_DEPTH {
            return Exec::failed(
                "alias",
                1,
                format!(
                    "aliases nest deeper than {MAX_ALIAS_DEPTH} at `{name}`: do they call each other in a cycle?"
                ),
            );
        }
        self.depth.set(depth + 1);
        let mut nested_vars = vars.clone();
        for (i, a) in args.iter().enumerate() {
            nested_vars.insert((i + 1).to_string(), a.clone());
        }
        let initial: HashMap<String, String> = nested_vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut nested = Nested {
            host: self,
            vars: nested_vars,
            deadline,
            limit,
            stdout: String::new(),
            stderr: String::new(),
        };
        let outcome = Interpreter::new(ast, initial).run(&mut nested);
        self.depth.set(depth);
        let (status, failure, interrupted) = match outcome.verdict {
            Verdict::Passed => (0, None, false),
            Verdict::Failed { reason, .. } => (
                outcome.exit_code.max(1),
                Some(format!("in alias `{name}`: {reason}")),
                false,
            ),
            Verdict::Interrupted => (130, Some("interrupted".into()), true),
        };
        Exec {
            resolved: "alias",
            status,
            stdout: Captured {
                text: nested.stdout,
                dropped: 0,
            },
            stderr: Captured {
                text: nested.stderr,
                dropped: 0,
            },
            failure,
            interrupted,
        }
    }
}

/// The deadline a step runs against, and whose it is.
#[derive(Clone, Copy)]
struct Within {
    deadline: Instant,
    scope: Scope,
}

/// Whose deadline a step runs against.
#[derive(Clone, Copy)]
enum Scope {
    Scenario,
    /// An enclosing `steps:` alias step with this limit.
    Step(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_apply_to_commands_not_to_their_spelling() {
        let w = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let kill9 = w("kill -9 Primary");
        for step in [
            "kill -9 Primary",
            "kill -KILL Primary",
            "kill -sigkill Primary",
        ] {
            let words: Vec<&str> = step.split_whitespace().collect();
            assert!(applies(&kill9, &words), "{step}");
        }
        assert!(!applies(&kill9, &["kill", "-15", "Primary"]));
        assert!(
            !applies(&kill9, &["kill", "Primary"]),
            "a bare kill is TERM"
        );
        assert!(applies(&w("kill -TERM Primary"), &["kill", "Primary"]));
        // Written without a signal: every kill of it.
        assert!(applies(&w("kill Primary"), &["kill", "-9", "Primary"]));
        assert!(!applies(&w("kill Primary"), &["kill", "-9", "Backup"]));
        assert!(applies(&w("kill"), &["kill", "-9", "Backup"]));
        // Anything else by its words, an alias by its name.
        assert!(applies(&w("exec_smoke"), &["exec_smoke", "--fast"]));
        assert!(!applies(&w("exec_smoke --slow"), &["exec_smoke", "--fast"]));
    }
}
