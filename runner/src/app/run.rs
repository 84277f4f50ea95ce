//! One run, start to end: select the pipelines, plan them against their environments,
//! roll out and render configs, take the environments' leases, execute with the store and
//! the terminal listening, compare with the previous release, write JUnit — and return
//! what happened as a [`RunOutcome`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::request::{RunRequest, Selection, Trigger};
use super::{App, Error};
use crate::compare::Comparison;
use crate::event::Fanout;
use crate::execute::{self, RunSettings};
use crate::pipeline::{Pipeline, Plan, ScenarioFile};
use crate::process::control::RunControl;
use crate::record::{RunRecord, ScenarioRecord, Status, StepRecord, StoredRun};
use crate::report::terminal::{Detail, Progress};
use crate::scenario::diagnostic::did_you_mean;
use crate::source::Finding;
use crate::store::{Store, StoreSink};
use crate::{clock, report, revision};

/// What a finished run came to.
pub struct RunOutcome {
    /// The run as stored: its record, scenarios with steps, artifacts.
    pub stored: StoredRun,
    /// The previous release it was compared with (its label) and the comparison.
    pub compared: Option<(String, Comparison)>,
    /// The pipelines it ran, as planned (their repositories name where verdicts go).
    pub pipelines: Vec<Pipeline>,
    /// Where its JUnit XML was written.
    pub junit: PathBuf,
    /// Where the store is.
    pub store: PathBuf,
    /// The judge's verdict against comparable history (none for a run that did not end
    /// on its own, or that could not be judged).
    pub verdict: Option<crate::judge::Verdict>,
}

impl RunOutcome {
    pub fn id(&self) -> &str {
        &self.stored.run.id
    }

    pub fn run(&self) -> &RunRecord {
        &self.stored.run
    }

    /// What the run prints when it ends; `runs`: how many the store holds now.
    pub fn finished(&self, runs: usize) -> report::terminal::Finished<'_> {
        report::terminal::Finished {
            stored: &self.stored,
            verdict: self.verdict.as_ref(),
            junit: &self.junit,
            store: &self.store,
            runs,
        }
    }

    /// The process's exit code for this run.
    pub fn exit_code(&self) -> i32 {
        match self.stored.run.status {
            Status::Passed => super::exit::OK,
            Status::Interrupted => super::exit::INTERRUPTED,
            _ => super::exit::FAILED,
        }
    }
}

/// What [`App::run`] did.
pub enum Ran {
    /// It ran (whatever the verdict).
    Done(Box<RunOutcome>),
    /// The server left it alone: it is in its maintenance window.
    Skipped { pipeline: String, why: String },
    /// The server left it alone: its environment is paused or locked. It waits for it to
    /// be resumed or unlocked.
    Held {
        pipeline: String,
        environment: String,
        why: String,
    },
    /// A pipeline's rollout stage failed; its scenarios were not run.
    RolloutFailed { pipeline: String },
}

impl Ran {
    pub fn exit_code(&self) -> i32 {
        match self {
            Ran::Done(outcome) => outcome.exit_code(),
            Ran::Skipped { .. } | Ran::Held { .. } => super::exit::OK,
            Ran::RolloutFailed { .. } => super::exit::FAILED,
        }
    }

    pub fn outcome(&self) -> Option<&RunOutcome> {
        match self {
            Ran::Done(o) => Some(o),
            _ => None,
        }
    }
}

/// Environment name to a value: the config commits and trees a run rendered.
type PerEnvironment = BTreeMap<String, String>;

/// What one execution of plans needs, for a run and for the rollout's smoke stages.
pub struct Execution<'a> {
    pub plans: &'a [Plan],
    pub revision: String,
    pub detail: Detail,
    pub overrides: Vec<(String, String)>,
    pub config_commits: BTreeMap<String, String>,
    pub config_trees: BTreeMap<String, String>,
    /// Whether a new candidate may stop it at a scenario boundary (continuous runs).
    pub preemptible: bool,
    pub junit: PathBuf,
}

impl App {
    /// Runs `request` under a new control of its own.
    pub fn run(&self, request: &RunRequest) -> Result<Ran, Error> {
        self.run_with(request, &self.new_control())
    }

    /// Runs `request`; `control` stops it (a server keeps it to cancel or pre-empt).
    pub fn run_with(&self, request: &RunRequest, control: &RunControl) -> Result<Ran, Error> {
        let project = self.project().root().to_path_buf();
        let pending_revision = revision::detect(&project);
        let tools: Vec<PathBuf> = request
            .tools
            .iter()
            .map(|t| self.project().resolve(t))
            .collect();
        let mut pipelines = self.select(&request.selection)?;
        if !request.filter.is_empty() {
            filter_scenarios(&mut pipelines, &request.filter)?;
        }
        if let Trigger::Event { entry, .. } = &request.trigger {
            pipelines = pipelines
                .into_iter()
                .filter_map(|p| p.event_stage(*entry))
                .collect();
        }
        // The server leaves a pipeline alone in its maintenance window or on a paused or
        // locked environment — decided before anything is fetched, written out or rendered.
        if request.trigger.scheduled() {
            let store = self.store()?;
            for p in &pipelines {
                if let Some(w) = p.in_maintenance(&chrono::Utc::now()) {
                    let why = format!("in its maintenance window ({})", w.start.pattern);
                    crate::errln!("skipped {}: {why}", p.name);
                    return Ok(Ran::Skipped {
                        pipeline: p.name.clone(),
                        why,
                    });
                }
                if let Some(hold) = store.control(&p.environment)?.hold() {
                    let why = format!("environment {} is {hold}", p.environment);
                    crate::errln!(
                        "held {}: {why}; it runs when the environment is free",
                        p.name
                    );
                    return Ok(Ran::Held {
                        pipeline: p.name.clone(),
                        environment: p.environment.clone(),
                        why,
                    });
                }
            }
        }
        let mut plans = Vec::new();
        let mut findings = Vec::new();
        for p in pipelines {
            let candidate = self.candidate_for(&p, &request.trigger)?;
            match Plan::for_candidate(p, &project, &tools, &request.overrides, candidate) {
                Ok(mut plan) => {
                    plan.deploy =
                        super::deploy::needs_deploy(self.project(), &plan, &request.trigger);
                    if let Trigger::Event { vars, .. } = &request.trigger {
                        plan.context = vars.clone();
                    }
                    plans.push(plan)
                }
                Err(mut f) => findings.append(&mut f),
            }
        }
        if !findings.is_empty() {
            return Err(Error::Findings(findings));
        }

        let store = self.store()?;
        if !request.trigger.scheduled() {
            for plan in &plans {
                if let Some(hold) = store.control(&plan.env.name)?.hold() {
                    crate::errln!(
                        "note: environment {} is {hold}; running because you asked",
                        plan.env.name
                    );
                }
            }
        }
        // The project's files, plus scenario files that live elsewhere (`--scenario`).
        let mut texts = revision::project_inputs(&project);
        texts.extend(
            plans
                .iter()
                .flat_map(|p| p.pipeline.scenarios().map(|s| s.file.text.to_string())),
        );
        let revision = pending_revision.resolve(texts.iter().map(String::as_str));

        // A pipeline with a rollout stage rolls its environments' config changes out first;
        // if that stops on a failure, its scenarios do not run.
        for plan in &plans {
            if plan.pipeline.rollout.is_empty() {
                continue;
            }
            let Some(file) = &plan.pipeline.file else {
                continue;
            };
            crate::errln!("pipeline {}: rollout stage", plan.pipeline.name);
            let code = self.rollout(
                &file.path,
                &plan.pipeline.rollout,
                &request.overrides,
                control,
            )?;
            if code != super::exit::OK {
                crate::errln!(
                    "pipeline {}: the rollout stage failed; its scenarios were not run",
                    plan.pipeline.name
                );
                return Ok(Ran::RolloutFailed {
                    pipeline: plan.pipeline.name.clone(),
                });
            }
        }
        let (config_commits, config_trees) = self.apply_configs(&plans, &revision)?;
        super::deploy::forget_deployed(self.project(), &plans);
        let detail = if request.verbose || matches!(request.selection, Selection::Scenario { .. }) {
            Detail::Steps
        } else {
            Detail::Scenarios
        };
        let Executed {
            stored,
            compared,
            verdict,
        } = self.execute(
            &Execution {
                plans: &plans,
                revision,
                detail,
                overrides: request.overrides.clone(),
                config_commits,
                config_trees,
                preemptible: request.trigger.preemptible(),
                junit: self.project().resolve(&request.junit),
            },
            control,
        )?;
        super::deploy::record_deployed(self.project(), &stored, &plans);
        Ok(Ran::Done(Box::new(RunOutcome {
            stored,
            compared,
            verdict,
            pipelines: plans.into_iter().map(|p| p.pipeline).collect(),
            junit: self.project().resolve(&request.junit),
            store: store.path().to_path_buf(),
        })))
    }

    /// Runs the plans with the store and the terminal listening, then writes JUnit from
    /// the stored records, compared with the previous release.
    pub(super) fn execute(
        &self,
        x: &Execution<'_>,
        control: &RunControl,
    ) -> Result<Executed, Error> {
        let store = self.store()?;
        let project = self.project().root();
        // Where its scenarios and steps go: a full disk or a damaged file stops the run
        // before it starts anything.
        store.ready_for_run()?;
        // `#{lowtouch}` names this executable: removed under a running server, no component
        // it names could start, and that is the machine's fault, not the system under test's.
        if let Err(e @ crate::environment::executable::ExecutableError::Removed { .. }) =
            crate::environment::executable::own_executable()
        {
            return Err(Error::infra(e.to_string()));
        }
        let run_id = clock::new_run_id();
        let _running = self.runs().begin(&run_id, control, x.preemptible);
        let total = x
            .plans
            .iter()
            .map(|p| p.pipeline.groups.iter().flatten().count())
            .sum();
        let progress = Progress::new(x.detail, total);
        let sink = StoreSink::new(&store);
        let stop = StopWhenTheStoreFails {
            sink: &sink,
            control,
            stopped: std::sync::atomic::AtomicBool::new(false),
        };
        let events = Fanout {
            listeners: vec![&sink, &stop, &progress],
        };
        let recovered = self.take_recovered();
        if !recovered.is_empty() {
            events.emit(&crate::event::RunEvent::Notice(&format!(
                "marked {} unfinished run{} as crashed: {}",
                recovered.len(),
                if recovered.len() == 1 { "" } else { "s" },
                recovered.join(", ")
            )));
        }
        let state_dir = self.project().state_dir();
        // The monitoring network: the server's router, or one of our own on loopback.
        let local = match self.network() {
            Some(_) => None,
            None => {
                let mut envs: Vec<&crate::environment::Environment> = Vec::new();
                for p in x.plans {
                    if !envs.iter().any(|e| e.name == p.env.name) {
                        envs.push(&p.env);
                    }
                }
                crate::daemon::local::LocalNetwork::start(&envs, &state_dir, &store, control)
                    .map_err(Error::infra)?
            }
        };
        let network = match &local {
            Some(n) => Some(n.network()),
            None => self.network(),
        };
        let settings = RunSettings {
            run_id: &run_id,
            project,
            state_dir: &state_dir,
            revision: x.revision.clone(),
            overrides: x.overrides.clone(),
            config_commits: x.config_commits.clone(),
            config_trees: x.config_trees.clone(),
            preemptible: x.preemptible,
            control,
            network,
            observed: network
                .is_some()
                .then_some(&store as &dyn crate::execute::observe::Observations),
        };
        let taken = take_leases(&store, x.plans, &run_id)?;
        let run = execute::execute(x.plans, &settings, &events);
        drop(local);
        // A lease left behind (a full disk) is released by the next open: its pid is gone.
        let released = taken
            .iter()
            .try_for_each(|env| store.release_lease(env, &run_id));
        if let Some(e) = sink.take_error() {
            // The JUnit of this run, not the previous one's: the store holds part of it, the
            // sink kept the rest.
            let cut = cut_short(&store, &sink, run);
            if let Err(why) = write_junit(&cut, None, None, &x.junit) {
                crate::errln!("{why}");
            }
            return Err(Error::Store(e));
        }
        released?;
        let mut scenarios = Vec::new();
        for sc in store.scenarios(&run.id)? {
            let steps = store.steps(&run.id, sc.index)?;
            scenarios.push((sc, steps));
        }
        let artifacts = store.artifacts(&run.id)?;
        let mut stored = StoredRun {
            run,
            scenarios,
            artifacts,
        };
        // The judge, against comparable history, before anything reports the run. A run
        // stopped short, or one the store lacks part of, is not judged.
        let verdict = match stored.run.status {
            Status::Passed | Status::Failed if stored.run.incomplete.is_none() => {
                let mut declared = std::collections::BTreeMap::new();
                for p in x.plans {
                    for (name, d) in &p.env.metrics {
                        declared.entry(name.clone()).or_insert_with(|| d.clone());
                    }
                }
                // The first pipeline's policy (a run of several shares one verdict).
                let policy = x
                    .plans
                    .first()
                    .map(|p| p.pipeline.judge.clone())
                    .unwrap_or_default();
                match self.judge(&stored.run, &declared, &policy, true) {
                    Ok(judged) => {
                        stored.run = judged.record;
                        Some(judged.verdict)
                    }
                    Err(e) => {
                        crate::errln!("warning: the run was not judged: {e}");
                        None
                    }
                }
            }
            _ => None,
        };
        // The comparison with the previous release, in the JUnit file.
        let previous = crate::compare::history::previous_release(
            &store,
            project,
            &stored.run,
            crate::compare::history::RELEASE_PATTERN,
        )?;
        let compared = match previous {
            // The plans hold the pipelines' masks already: no pipeline is read again.
            Some((name, baseline)) => {
                let masks = crate::compare::Masks::with(
                    x.plans
                        .iter()
                        .flat_map(|p| p.pipeline.masks.iter().cloned()),
                );
                let c =
                    crate::compare::history::comparison(&store, &masks, &baseline, &stored.run)?;
                Some((format!("{name} ({})", baseline.id), c))
            }
            None => None,
        };
        write_junit(
            &stored,
            compared.as_ref().map(|(l, c)| (l.as_str(), c)),
            verdict.as_ref(),
            &x.junit,
        )?;
        Ok(Executed {
            stored,
            compared,
            verdict,
        })
    }

    /// The candidate a pipeline with repositories runs against: the one a change chose,
    /// or each repository's current tip; its worktrees written out when the pipeline
    /// deploys or its variables may use them.
    fn candidate_for(
        &self,
        pipeline: &Pipeline,
        trigger: &Trigger,
    ) -> Result<Option<crate::watch::Candidate>, Error> {
        if pipeline.repositories.is_empty() {
            return Ok(None);
        }
        let mirrors = self.project().mirrors();
        let mut candidate = match trigger {
            Trigger::Change { candidate, .. } => candidate.clone(),
            _ => {
                let mut notes = Vec::new();
                let c =
                    crate::watch::Candidate::current(&mirrors, &pipeline.repositories, &mut notes)
                        .map_err(|e| Error::infra(format!("pipeline {}: {e}", pipeline.name)))?;
                for n in notes {
                    crate::errln!("note: {n}");
                }
                c
            }
        };
        if let Some(missing) = pipeline
            .repositories
            .iter()
            .find(|r| !candidate.repos.iter().any(|c| c.name == r.name))
        {
            let follow: Vec<&str> = missing.follow.iter().map(|f| f.as_str()).collect();
            return Err(Error::input(format!(
                "pipeline {}: repository `{}` ({}) has no branch or tag matching follow: [{}]; \
                 nothing of it to test (push one, or fix `follow:`)",
                pipeline.name,
                missing.name,
                missing.url,
                follow.join(", ")
            )));
        }
        if !pipeline.deploy.is_empty() || !pipeline.variables.is_empty() {
            let root = self.project().worktree(&pipeline.name);
            let wrote = candidate
                .materialize(&mirrors, &pipeline.repositories, &root)
                .map_err(|e| Error::infra(format!("pipeline {}: {e}", pipeline.name)))?;
            for w in wrote {
                crate::errln!("worktree: {w}");
            }
        }
        Ok(Some(candidate))
    }

    /// Renders every planned environment that has templates or data (once each), so the
    /// run uses configs and data regenerated from version control. Returns each
    /// environment's config commit and its tree.
    pub(super) fn apply_configs(
        &self,
        plans: &[Plan],
        revision: &str,
    ) -> Result<(PerEnvironment, PerEnvironment), Error> {
        use crate::environment::apply;
        use crate::environment::history::History;
        let mut commits = BTreeMap::new();
        let mut trees = BTreeMap::new();
        let state_dir = self.project().state_dir();
        let mut history = None;
        for plan in plans {
            let env = &plan.env;
            if !apply::renders(env) || commits.contains_key(&env.name) {
                continue;
            }
            if history.is_none() {
                history = Some(
                    History::open(self.project().config_history())
                        .map_err(|e| Error::from(apply::ApplyError::from(e)))?,
                );
            }
            let Some(history) = history.as_ref() else {
                continue;
            };
            let applied = apply::apply(
                env,
                &env.runtime_dir(&state_dir),
                history,
                &revisions_of(plan, revision),
                true,
            )?;
            let Some(state) = &applied.state else {
                continue;
            };
            let regenerated = applied.data.iter().filter(|d| d.generated).count();
            crate::errln!(
                "rendered {}: config {} {}, {} of {} data set{} regenerated",
                env.name,
                &state.commit[..12],
                if state.new { "(new)" } else { "(unchanged)" },
                regenerated,
                applied.data.len(),
                if applied.data.len() == 1 { "" } else { "s" }
            );
            commits.insert(env.name.clone(), state.commit.clone());
            trees.insert(env.name.clone(), state.tree.clone());
        }
        Ok((commits, trees))
    }

    /// The pipelines a selection names: `--scenario`, the named ones, or the defaults.
    pub fn select(&self, selection: &Selection) -> Result<Vec<Pipeline>, Error> {
        let project = self.project().root();
        let names = match selection {
            Selection::Scenario { file, environment } => {
                let path = self.project().resolve(file);
                if !path.is_file() {
                    return Err(Error::input(format!(
                        "--scenario {}: no such file",
                        file.display()
                    )));
                }
                return Ok(vec![Pipeline::adhoc(&path, environment)?]);
            }
            Selection::Defaults => return defaults(project),
            Selection::Pipelines(names) => names,
        };
        let files = Pipeline::discover(project);
        let mut loaded = Vec::new();
        let mut findings: Vec<Finding> = Vec::new();
        for name in names {
            if Path::new(name).extension().is_some_and(|e| e == "scn") {
                return Err(Error::input(format!(
                    "`{name}` is a scenario file, not a pipeline; run it with `lowtouch run --scenario {name} --env ENVIRONMENT`, or a pipeline's scenarios with `lowtouch run PIPELINE --filter NAME`"
                )));
            }
            let as_path = self.project().resolve(Path::new(name));
            let file = if as_path.is_file() {
                Some(as_path)
            } else {
                files
                    .iter()
                    .find(|f| f.file_stem().and_then(|s| s.to_str()) == Some(name.as_str()))
                    .cloned()
            };
            match file {
                Some(f) => match Pipeline::load(&f) {
                    Ok(p) => loaded.push(p),
                    Err(mut fs) => findings.append(&mut fs),
                },
                None => {
                    let names: Vec<String> = files
                        .iter()
                        .filter_map(|f| f.file_stem()?.to_str().map(str::to_string))
                        .collect();
                    let hint = match did_you_mean(name, names.iter().map(String::as_str)) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("pipelines: {}", names.join(", ")),
                    };
                    return Err(Error::input(format!("no pipeline named `{name}`; {hint}")));
                }
            }
        }
        if !findings.is_empty() {
            return Err(Error::Findings(findings));
        }
        Ok(loaded)
    }
}

/// Keeps the scenarios `filters` name (`--filter`): a filter with `*`, `?` or `[` is a glob
/// of a scenario's name or path, any other a substring of its name. A filter that names
/// none of a pipeline's scenarios is bad input (a typo would otherwise run nothing).
pub fn filter_scenarios(pipelines: &mut [Pipeline], filters: &[String]) -> Result<(), Error> {
    let mut matchers = Vec::new();
    for f in filters {
        let glob = f.contains(['*', '?', '[']);
        let pattern = if glob {
            Some(glob::Pattern::new(f).map_err(|e| {
                Error::input(format!(
                    "--filter {f}: not a glob: {} at column {}",
                    e.msg,
                    e.pos + 1
                ))
            })?)
        } else {
            None
        };
        matchers.push((f, pattern));
    }
    let matches = |sc: &ScenarioFile, (f, pattern): &(&String, Option<glob::Pattern>)| match pattern
    {
        Some(p) => {
            p.matches(&sc.name) || p.matches_path(&sc.file.path) || {
                let shown = crate::source::display_path(&sc.file.path);
                p.matches(&shown)
            }
        }
        None => sc.name.contains(f.as_str()),
    };
    for p in pipelines.iter_mut() {
        let all: Vec<&str> = p.groups.iter().flatten().map(|s| s.name.as_str()).collect();
        for m in &matchers {
            if !p.groups.iter().flatten().any(|sc| matches(sc, m)) {
                return Err(Error::input(format!(
                    "--filter {}: no scenario of pipeline `{}` matches; its scenarios: {}",
                    m.0,
                    p.name,
                    all.join(", ")
                )));
            }
        }
        for group in &mut p.groups {
            group.retain(|sc| matchers.iter().any(|m| matches(sc, m)));
        }
        p.groups.retain(|g| !g.is_empty());
    }
    Ok(())
}

/// The pipelines marked `default: true`.
fn defaults(project: &Path) -> Result<Vec<Pipeline>, Error> {
    let mut loaded = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    for f in &Pipeline::discover(project) {
        match Pipeline::load(f) {
            Ok(p) if p.default => loaded.push(p),
            Ok(_) => {}
            Err(mut fs) => findings.append(&mut fs),
        }
    }
    if !findings.is_empty() {
        return Err(Error::Findings(findings));
    }
    if loaded.is_empty() {
        return Err(Error::input(format!(
            "no pipeline in {} is marked `default: true`; name one: `lowtouch run PIPELINE`",
            project.join("pipelines").display()
        )));
    }
    Ok(loaded)
}

/// One environment never runs two pipelines at once: the run takes a lease on each of
/// its environments, or none (and says who holds the one it could not take).
fn take_leases<'p>(store: &Store, plans: &'p [Plan], run_id: &str) -> Result<Vec<&'p str>, Error> {
    let envs: std::collections::BTreeSet<&str> =
        plans.iter().map(|p| p.env.name.as_str()).collect();
    let pipelines: Vec<String> = plans.iter().map(|p| p.pipeline.name.clone()).collect();
    let mut taken: Vec<&str> = Vec::new();
    for env in envs {
        let lease = crate::store::control::Lease {
            environment: env.to_string(),
            run_id: run_id.to_string(),
            pipelines: pipelines.clone(),
            pid: std::process::id(),
            since: clock::now(),
        };
        if let Some(holder) = store.take_lease(&lease)? {
            for e in &taken {
                store.release_lease(e, run_id)?;
            }
            return Err(Error::infra(format!(
                "environment {env} is in use by run {} ({}, pid {}) since {}",
                holder.run_id,
                holder.pipelines.join(", "),
                holder.pid,
                holder.since
            )));
        }
        taken.push(env);
    }
    Ok(taken)
}

fn write_junit(
    stored: &StoredRun,
    compared: Option<(&str, &Comparison)>,
    verdict: Option<&crate::judge::Verdict>,
    junit_path: &Path,
) -> Result<(), Error> {
    let xml = report::junit::render_compared(
        stored,
        &report::junit::Compared {
            with: compared.map(|(label, _)| label),
            comparison: compared.map(|(_, c)| c),
            verdict,
        },
    )
    .map_err(|e| Error::infra(format!("cannot render JUnit: {e}")))?;
    super::report::write_file(junit_path, &xml)
}

/// Stops the run at the first write the store refuses (its disk's reserve reached): a
/// run that goes on records failures that are the store's (conditions judged on
/// observations it could not keep) and its results would be lost anyway.
struct StopWhenTheStoreFails<'a> {
    sink: &'a StoreSink<'a>,
    control: &'a RunControl,
    stopped: std::sync::atomic::AtomicBool,
}

impl crate::event::Listener for StopWhenTheStoreFails<'_> {
    fn on_event(&self, _: &crate::event::RunEvent<'_>) {
        use std::sync::atomic::Ordering;
        if self.sink.failed() && !self.stopped.swap(true, Ordering::SeqCst) {
            crate::errln!("error: the store refused a write: the run stops here");
            self.control.cancel();
        }
    }
}

/// A run the store failed during, whole: what the store kept, and what the sink kept
/// since (a newer record of a scenario replaces the stored one).
fn cut_short(store: &Store, sink: &StoreSink<'_>, mut run: RunRecord) -> StoredRun {
    let unwritten = sink.take_unwritten();
    let mut scenarios: Vec<(ScenarioRecord, Vec<StepRecord>)> = store
        .scenarios(&run.id)
        .unwrap_or_default()
        .into_iter()
        .map(|sc| {
            let steps = store.steps(&run.id, sc.index).unwrap_or_default();
            (sc, steps)
        })
        .collect();
    for sc in unwritten.scenarios {
        match scenarios.iter_mut().find(|(s, _)| s.index == sc.index) {
            Some(slot) => slot.0 = sc,
            None => scenarios.push((sc, Vec::new())),
        }
    }
    for step in unwritten.steps {
        if let Some((_, steps)) = scenarios
            .iter_mut()
            .find(|(s, _)| s.index == step.scenario_index)
            && !steps.iter().any(|s| s.seq == step.seq)
        {
            steps.push(step);
        }
    }
    for (_, steps) in &mut scenarios {
        steps.sort_by_key(|s| s.seq);
    }
    scenarios.sort_by_key(|(s, _)| s.index);
    run.note = Some(crate::store::sink::STOPPED.into());
    StoredRun {
        artifacts: store.artifacts(&run.id).unwrap_or_default(),
        run,
        scenarios,
    }
}

/// The revisions a rendered config records: the candidate's, where it has a repository
/// of the role; the project's own revision for the rest.
fn revisions_of(plan: &Plan, revision: &str) -> crate::environment::render::Revisions {
    use crate::watch::Role;
    let of = |role: Role| {
        plan.candidate
            .as_ref()
            .and_then(|c| c.repos.iter().find(|r| r.role == role))
            .map_or_else(|| revision.to_string(), |r| r.commit.clone())
    };
    crate::environment::render::Revisions {
        product: of(Role::Product),
        tools: of(Role::Tools),
        data: of(Role::Data),
    }
}

/// What executing plans left: the stored run, its comparison with the previous release,
/// the judge's verdict.
pub(super) struct Executed {
    pub stored: StoredRun,
    pub compared: Option<(String, Comparison)>,
    pub verdict: Option<crate::judge::Verdict>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Project;
    use crate::process::interrupt::Signals;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, App) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let app = App::new(Project::new(dir.path().to_path_buf(), None, None))
            .with_signals(Signals::ignored());
        (dir, app)
    }

    fn scenario(file: &str) -> RunRequest {
        RunRequest {
            selection: Selection::Scenario {
                file: file.into(),
                environment: "local".into(),
            },
            trigger: Trigger::Person,
            tools: Vec::new(),
            overrides: Vec::new(),
            junit: "reports/junit.xml".into(),
            verbose: false,
            filter: Vec::new(),
        }
    }

    #[test]
    fn a_run_returns_what_it_stored_and_wrote() {
        let (dir, app) = project(&[
            (
                "environments/local.yaml",
                "aliases:\n  fail:\n    shell: 'exit 1'\n",
            ),
            ("pipelines/ok.scn", "echo hello\n"),
            ("pipelines/bad.scn", "fail\n"),
        ]);
        let Ran::Done(ok) = app.run(&scenario("pipelines/ok.scn")).unwrap() else {
            panic!("not run");
        };
        assert_eq!(ok.run().status, Status::Passed);
        assert_eq!(ok.exit_code(), 0);
        assert_eq!(ok.stored.scenarios.len(), 1);
        assert_eq!(ok.stored.scenarios[0].1[0].stdout, "hello\n");
        assert!(ok.compared.is_none(), "no release to compare with");
        let junit = std::fs::read_to_string(dir.path().join("reports/junit.xml")).unwrap();
        assert!(junit.contains(&ok.run().id), "{junit}");
        // The same app runs again on the one store it opened.
        let Ran::Done(bad) = app.run(&scenario("pipelines/bad.scn")).unwrap() else {
            panic!("not run");
        };
        assert_eq!(bad.exit_code(), 1);
        let stored = app.store().unwrap().runs(10).unwrap();
        let ids: Vec<&str> = stored.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, [bad.id(), ok.id()]);
        assert!(app.runs().ids().is_empty(), "finished runs are forgotten");
    }

    const SLEEPER_ENV: &str = "components:
  sleeper:
    start: [sleep, '31.7']
steady_state:
  components: [sleeper]
aliases:
  fail:
    shell: 'exit 1'
";

    fn steps_of(outcome: &RunOutcome, scope: &str) -> Vec<Vec<String>> {
        outcome
            .stored
            .scenarios
            .iter()
            .filter(|(sc, _)| sc.name == scope)
            .map(|(_, steps)| {
                steps
                    .iter()
                    .map(|s| format!("{} {}", s.command, s.args.join(" ")))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_steady_state_starts_what_is_down_before_each_scenario_and_the_run_stops_it() {
        let (dir, app) = project(&[
            ("environments/local.yaml", SLEEPER_ENV),
            (
                "pipelines/p.yaml",
                "environment: local\nscenarios: [p/kills.scn, p/after.scn]\n",
            ),
            ("pipelines/p/kills.scn", "kill -9 sleeper\n"),
            ("pipelines/p/after.scn", "echo up again\n"),
        ]);
        let request = RunRequest::pipelines(vec!["p".into()], Trigger::Person);
        let Ran::Done(outcome) = app.run(&request).unwrap() else {
            panic!("not run");
        };
        assert_eq!(
            outcome.run().status,
            Status::Passed,
            "{:?}",
            outcome.stored.scenarios
        );
        // Started before the first scenario, and again after it killed the component.
        assert_eq!(
            steps_of(&outcome, "steady_state"),
            [
                vec!["start sleeper".to_string()],
                vec!["start sleeper".to_string()]
            ]
        );
        let order: Vec<&str> = outcome
            .stored
            .scenarios
            .iter()
            .map(|(sc, _)| sc.name.as_str())
            .collect();
        assert_eq!(order, ["steady_state", "kills", "steady_state", "after"]);
        // One scenario alone gets the steady state too; what the run started, it stops.
        std::fs::write(dir.path().join("pipelines/alone.scn"), "echo alone\n").unwrap();
        let Ran::Done(alone) = app.run(&scenario("pipelines/alone.scn")).unwrap() else {
            panic!("not run");
        };
        assert_eq!(
            steps_of(&alone, "steady_state"),
            [vec!["start sleeper".to_string()]]
        );
        let sleepers = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|c| c == b"sleep\x0031.7\x00")
            .count();
        assert_eq!(
            sleepers, 0,
            "the component outlived the run that started it"
        );
    }

    #[test]
    fn a_component_rewrites_its_own_copy_of_its_config_and_the_run_keeps_it() {
        let (_dir, app) = project(&[
            (
                "environments/local.yaml",
                "templates:\n  - { src: coord.conf.j2, dest: coord.conf }\n\
                 components:\n  coordinator:\n\
                 \x20   start: [sh, -c, 'echo \"epoch $$\" >> \"$0\"; exec sleep 31.9', '#{env_dir}/run/coord.conf']\n\
                 \x20   writable: [{ from: coord.conf, to: run/coord.conf }]\n",
            ),
            ("templates/coord.conf.j2", "leader 1\n"),
            (
                "pipelines/twice.scn",
                "start coordinator\nsleep 200ms\nrestart coordinator\nsleep 300ms\n",
            ),
        ]);
        let Ran::Done(outcome) = app.run(&scenario("pipelines/twice.scn")).unwrap() else {
            panic!("not run");
        };
        assert_eq!(
            outcome.run().status,
            Status::Passed,
            "{:?}",
            outcome.stored.scenarios
        );
        // Each start got a fresh copy of the rendered file: one epoch line, not two.
        let kept = app
            .store()
            .unwrap()
            .artifact(outcome.id(), "config/local/coordinator/coord.conf")
            .unwrap()
            .expect("the rewritten copy is kept");
        let text = String::from_utf8(kept).unwrap();
        assert!(text.starts_with("leader 1\nepoch "), "{text}");
        assert_eq!(text.matches("epoch").count(), 1, "{text}");
        // The rendered file itself is as rendered.
        let rendered =
            std::fs::read_to_string(_dir.path().join(".lowtouch/envs/local/coord.conf")).unwrap();
        assert_eq!(rendered, "leader 1\n");
    }

    #[test]
    fn filters_keep_the_scenarios_they_name_and_a_filter_naming_none_is_bad_input() {
        let (_dir, app) = project(&[
            ("environments/local.yaml", "variables: {}\n"),
            (
                "pipelines/p.yaml",
                "environment: local\nscenarios: [p/alpha.scn, p/beta.scn, {parallel: [p/gamma.scn, p/delta.scn]}]\n",
            ),
            ("pipelines/p/alpha.scn", "echo a\n"),
            ("pipelines/p/beta.scn", "echo b\n"),
            ("pipelines/p/gamma.scn", "echo g\n"),
            ("pipelines/p/delta.scn", "echo d\n"),
        ]);
        let mut request = RunRequest::pipelines(vec!["p".into()], Trigger::Person);
        request.filter = vec!["lph".into(), "*/gam*.scn".into()];
        let Ran::Done(outcome) = app.run(&request).unwrap() else {
            panic!("not run");
        };
        let ran: Vec<&str> = outcome
            .stored
            .scenarios
            .iter()
            .map(|(sc, _)| sc.name.as_str())
            .collect();
        assert_eq!(ran, ["alpha", "gamma"]);
        request.filter = vec!["alpha".into(), "zeta".into()];
        let Err(e) = app.run(&request) else {
            panic!("a filter that names nothing ran");
        };
        assert_eq!(e.exit_code(), crate::app::exit::BAD_INPUT);
        assert!(
            e.to_string().contains("--filter zeta")
                && e.to_string().contains("alpha, beta, gamma, delta"),
            "{e}"
        );
        let Err(e) = app.run(&RunRequest::pipelines(
            vec!["pipelines/p/alpha.scn".into()],
            Trigger::Person,
        )) else {
            panic!("a scenario file ran as a pipeline");
        };
        assert_eq!(e.exit_code(), crate::app::exit::BAD_INPUT);
        assert!(
            e.to_string().contains("--scenario pipelines/p/alpha.scn"),
            "{e}"
        );
    }

    #[test]
    fn a_run_stopped_by_its_control_is_stored_interrupted_and_cancelled() {
        let (_dir, app) = project(&[
            ("environments/local.yaml", "variables: {}\n"),
            ("pipelines/long.scn", "sleep 60s\n"),
        ]);
        let control = app.new_control();
        let canceller = {
            let control = control.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                control.cancel();
            })
        };
        let Ran::Done(outcome) = app
            .run_with(&scenario("pipelines/long.scn"), &control)
            .unwrap()
        else {
            panic!("not run");
        };
        canceller.join().unwrap();
        assert_eq!(outcome.run().status, Status::Interrupted);
        assert_eq!(outcome.exit_code(), 130);
        assert!(
            outcome
                .run()
                .note
                .as_deref()
                .unwrap_or("")
                .contains("cancelled"),
            "{:?}",
            outcome.run().note
        );
    }

    #[test]
    fn bad_input_is_an_error_of_kind_input_and_nothing_is_stored() {
        let (dir, app) = project(&[("environments/local.yaml", "variables: {}\n")]);
        let e = app.run(&scenario("pipelines/none.scn")).err().unwrap();
        assert_eq!(e.exit_code(), super::super::exit::BAD_INPUT);
        assert!(e.to_string().contains("no such file"), "{e}");
        let e = app
            .run(&RunRequest::pipelines(vec!["nope".into()], Trigger::Person))
            .err()
            .unwrap();
        assert_eq!(e.exit_code(), super::super::exit::BAD_INPUT);
        assert!(
            !dir.path().join(".lowtouch/db").exists(),
            "the store was not opened"
        );
    }
}
