//! `lowtouch run`: run pipelines (or one scenario file) once, store the results, write
//! JUnit, print a summary, exit with the verdict.

use std::path::{Path, PathBuf};

use clap::Args;

use super::error::exit;
use super::{Cli, CliError};
use crate::event::Fanout;
use crate::execute::{self, RunSettings, interrupt};
use crate::pipeline::{Pipeline, Plan};
use crate::record::Status;
use crate::record::StoredRun;
use crate::report::terminal::{Detail, Progress, Style, summary};
use crate::scenario::diagnostic::did_you_mean;
use crate::source::Finding;
use crate::store::{Store, StoreSink};
use crate::{clock, report, revision};

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Pipelines to run, by name or path [default: those marked `default: true`].
    pub pipelines: Vec<String>,
    /// Run one scenario file against an environment instead of pipelines.
    #[arg(long, value_name = "FILE", conflicts_with = "pipelines")]
    pub scenario: Option<PathBuf>,
    /// The environment for `--scenario`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "local",
        requires = "scenario"
    )]
    pub env: String,
    /// More directories to search for `lowtouch-NAME` plugins.
    #[arg(long = "tools", value_name = "DIR")]
    pub tools: Vec<PathBuf>,
    /// Override an environment variable for this run (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Where to write the JUnit XML.
    #[arg(long, value_name = "PATH", default_value = "reports/junit.xml")]
    pub junit: PathBuf,
    /// Print the result as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Show every step and its output as it runs.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Started by the server (schedule, webhook, continuous): a paused or locked
    /// environment is left alone. A person's `run` goes ahead with a note.
    #[arg(skip)]
    pub scheduled: bool,
    /// The candidate a poll chose (its change's commit, the other repositories' tips);
    /// `None`: each repository's current tip.
    #[arg(skip)]
    pub candidate: Option<crate::watch::Candidate>,
    /// What the change that started it asks for; `None`: everything (a person's run).
    #[arg(skip)]
    pub action: Option<crate::watch::Action>,
    /// A continuous iteration: a new candidate or a person's run stops it at the next
    /// scenario boundary.
    #[arg(skip)]
    pub preemptible: bool,
    /// An event-driven run: the pipeline's `on_event` entry to run, and the event.
    #[arg(skip)]
    pub event: Option<(usize, std::collections::BTreeMap<String, String>)>,
}

impl RunArgs {
    /// `lowtouch run PIPELINE…` with every other option at its default.
    pub fn pipelines(pipelines: Vec<String>) -> RunArgs {
        RunArgs {
            pipelines,
            scenario: None,
            env: "local".into(),
            tools: Vec::new(),
            set: Vec::new(),
            junit: "reports/junit.xml".into(),
            json: false,
            verbose: false,
            scheduled: true,
            candidate: None,
            action: None,
            preemptible: false,
            event: None,
        }
    }
}

pub fn parse_set(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

pub fn run(cli: &Cli, args: &RunArgs) -> Result<i32, CliError> {
    interrupt::install();
    let project = cli.project()?;
    let pending_revision = revision::detect(&project);
    let tools: Vec<PathBuf> = args.tools.iter().map(|t| absolute(&project, t)).collect();
    let mut pipelines = select(&project, args)?;
    if let Some((index, _)) = &args.event {
        pipelines = pipelines
            .into_iter()
            .filter_map(|p| p.event_stage(*index))
            .collect();
    }
    // The server leaves a pipeline alone in its maintenance window or on a paused or
    // locked environment — decided before anything is fetched, written out or rendered.
    let early_store = if args.scheduled {
        let store = Store::open(&cli.db_path(&project))?;
        for p in &pipelines {
            if let Some(w) = p.in_maintenance(&chrono::Utc::now()) {
                crate::errln!(
                    "skipped {}: in its maintenance window ({})",
                    p.name,
                    w.start.pattern
                );
                return Ok(exit::OK);
            }
            if let Some(hold) = store.control(&p.environment)?.hold() {
                crate::errln!(
                    "skipped {}: environment {} is {hold}",
                    p.name,
                    p.environment
                );
                return Ok(exit::OK);
            }
        }
        Some(store)
    } else {
        None
    };
    let mut plans = Vec::new();
    let mut findings = Vec::new();
    for p in pipelines {
        let candidate = candidate_for(&project, &p, args)?;
        match Plan::for_candidate(p, &project, &tools, &args.set, candidate) {
            Ok(mut plan) => {
                plan.deploy = needs_deploy(&project, &plan, args);
                if let Some((_, vars)) = &args.event {
                    plan.context = vars.clone();
                }
                plans.push(plan)
            }
            Err(mut f) => findings.append(&mut f),
        }
    }
    if !findings.is_empty() {
        return Err(CliError::Findings(findings));
    }

    let store = match early_store {
        Some(s) => s,
        None => Store::open(&cli.db_path(&project))?,
    };
    for plan in &plans {
        if let Some(hold) = store.control(&plan.env.name)?.hold() {
            crate::errln!(
                "note: environment {} is {hold}; running because you asked",
                plan.env.name
            );
        }
    }
    // The project's files, plus scenario files that live elsewhere (`--scenario`).
    let mut texts = revision::project_inputs(&project);
    texts.extend(
        plans
            .iter()
            .flat_map(|p| p.pipeline.scenarios().map(|s| s.file.text.to_string())),
    );
    let inputs = texts.iter().map(String::as_str);
    let revision = pending_revision.resolve(inputs);

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
        let code = super::rollout::run_rollout(
            cli,
            &project,
            &store,
            &file.path,
            &plan.pipeline.rollout,
            &args.set,
        )?;
        if code != exit::OK {
            crate::errln!(
                "pipeline {}: the rollout stage failed; its scenarios were not run",
                plan.pipeline.name
            );
            return Ok(exit::FAILED);
        }
    }
    let config_commits = apply_configs(cli, &project, &plans, &revision)?;
    forget_deployed(&project, &plans);
    let detail = if args.verbose || args.scenario.is_some() {
        Detail::Steps
    } else {
        Detail::Scenarios
    };
    let junit_path = absolute(&project, &args.junit);
    let stored = execute_plans(
        &Execution {
            project: &project,
            store: &store,
            plans: &plans,
            revision,
            detail,
            overrides: args.set.clone(),
            config_commits,
            preemptible: args.preemptible,
        },
        &junit_path,
    )?;

    record_deployed(&project, &stored, &plans);
    let records: Vec<_> = stored.scenarios.iter().map(|(sc, _)| sc.clone()).collect();
    if args.json {
        let value = serde_json::json!({
            "run": stored.run,
            "scenarios": records,
            "junit": junit_path.display().to_string(),
            "store": store.path().display().to_string(),
        });
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        let style = Style::detect(crate::console::is_terminal(crate::console::Stream::Out));
        crate::out!("{}", summary(&stored.run, &records, style));
        crate::outln!(
            "junit: {}  store: {} ({} runs)",
            crate::execute::run::display_path(&junit_path),
            crate::execute::run::display_path(store.path()),
            store.run_count()
        );
    }
    Ok(match stored.run.status {
        Status::Passed => exit::OK,
        Status::Interrupted => exit::INTERRUPTED,
        _ => exit::FAILED,
    })
}

/// The candidate a pipeline with repositories runs against: the one a poll chose, or
/// each repository's current tip; its worktrees written out when the pipeline deploys or
/// its variables may use them.
fn candidate_for(
    project: &Path,
    pipeline: &Pipeline,
    args: &RunArgs,
) -> Result<Option<crate::watch::Candidate>, CliError> {
    if pipeline.repositories.is_empty() {
        return Ok(None);
    }
    let mirrors = execute::run::state_dir(project).join("mirrors");
    let mut candidate = match &args.candidate {
        Some(c) => c.clone(),
        None => {
            let mut notes = Vec::new();
            let c = crate::watch::Candidate::current(&mirrors, &pipeline.repositories, &mut notes)
                .map_err(|e| CliError::infra(format!("pipeline {}: {e}", pipeline.name)))?;
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
        return Err(CliError::input(format!(
            "pipeline {}: repository `{}` ({}) has no branch or tag matching follow: [{}]; \
             nothing of it to test (push one, or fix `follow:`)",
            pipeline.name,
            missing.name,
            missing.url,
            follow.join(", ")
        )));
    }
    if !pipeline.deploy.is_empty() || !pipeline.variables.is_empty() {
        let root = execute::run::state_dir(project)
            .join("worktrees")
            .join(&pipeline.name);
        let wrote = candidate
            .materialize(&mirrors, &pipeline.repositories, &root)
            .map_err(|e| CliError::infra(format!("pipeline {}: {e}", pipeline.name)))?;
        for w in wrote {
            crate::errln!("worktree: {w}");
        }
    }
    Ok(Some(candidate))
}

/// Whether a plan's deploy stage must run: always for a product change and a person's
/// run; for a tools or data change, or a run by the clock or the 24/7 loop, only when
/// what was last deployed differs ([`deploy_key`]).
fn needs_deploy(project: &Path, plan: &Plan, args: &RunArgs) -> bool {
    use crate::watch::Action;
    if plan.pipeline.deploy.is_empty() {
        return true;
    }
    let may_skip = match args.action {
        Some(Action::RunPipeline) => false,
        Some(Action::RerunScenarios | Action::RegenerateData | Action::Nothing) => true,
        None => args.scheduled,
    };
    if !may_skip {
        return true;
    }
    let deployed = std::fs::read_to_string(deployed_marker(project, &plan.pipeline.name)).ok();
    deployed.as_deref() != Some(deploy_key(plan).as_str())
}

fn deployed_marker(project: &Path, pipeline: &str) -> PathBuf {
    execute::run::state_dir(project)
        .join("worktrees")
        .join(format!("{pipeline}.deployed"))
}

/// What a deploy put in place: the environment, the deploy steps and the environment's
/// definition (its aliases build and install), and the product commits.
fn deploy_key(plan: &Plan) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for line in &plan.pipeline.deploy {
        hash.update(line.text.as_bytes());
        hash.update(b"\n");
    }
    hash.update(plan.env.file.text.as_bytes());
    let mut key = format!(
        "environment {}\ndeploy {}\n",
        plan.env.name,
        hex::encode(hash.finalize())
    );
    if let Some(c) = &plan.candidate {
        for r in c
            .repos
            .iter()
            .filter(|r| r.role == crate::watch::Role::Product)
        {
            key.push_str(&format!("{} {}\n", r.name, r.commit));
        }
    }
    key
}

/// Before the runs: a deploy about to run invalidates the record of the last one (a
/// crash half-way leaves nothing claiming the old deploy is intact).
fn forget_deployed(project: &Path, plans: &[Plan]) {
    for plan in plans {
        if plan.deploy && !plan.pipeline.deploy.is_empty() {
            let _ = std::fs::remove_file(deployed_marker(project, &plan.pipeline.name));
        }
    }
}

/// After the runs: remembers what each pipeline's passed deploy stage put in place.
fn record_deployed(project: &Path, stored: &StoredRun, plans: &[Plan]) {
    use crate::record::ScenarioKind;
    for plan in plans {
        if plan.pipeline.deploy.is_empty() || !plan.deploy {
            continue;
        }
        let deployed = stored.scenarios.iter().any(|(sc, _)| {
            sc.kind == ScenarioKind::Hook
                && sc.name == "deploy"
                && sc.pipeline == plan.pipeline.name
                && sc.status == Status::Passed
        });
        if deployed {
            let _ = std::fs::write(
                deployed_marker(project, &plan.pipeline.name),
                deploy_key(plan),
            );
        }
    }
}

/// What one execution of plans needs, for `run` and for the rollout's smoke stages.
pub struct Execution<'a> {
    pub project: &'a Path,
    pub store: &'a Store,
    pub plans: &'a [Plan],
    pub revision: String,
    pub detail: Detail,
    pub overrides: Vec<(String, String)>,
    pub config_commits: std::collections::BTreeMap<String, String>,
    /// Whether a new candidate may stop it at a scenario boundary (continuous runs).
    pub preemptible: bool,
}

/// Runs the plans with the store and the terminal listening, then writes JUnit from the
/// stored records.
pub fn execute_plans(x: &Execution<'_>, junit_path: &Path) -> Result<StoredRun, CliError> {
    let store = x.store;
    // Where its scenarios and steps go: a full disk or a damaged file stops the run
    // before it starts anything.
    store.ready_for_run()?;
    // `#{lowtouch}` names this executable: removed under a running server, no component
    // it names could start, and that is the machine's fault, not the system under test's.
    if let Err(e @ crate::environment::executable::ExecutableError::Removed { .. }) =
        crate::environment::executable::own_executable()
    {
        return Err(CliError::infra(e.to_string()));
    }
    let run_id = clock::new_run_id();
    let total = x
        .plans
        .iter()
        .map(|p| p.pipeline.groups.iter().flatten().count())
        .sum();
    let progress = Progress::new(x.detail, total);
    let sink = StoreSink::new(store);
    let stop = StopWhenTheStoreFails {
        sink: &sink,
        run_id: &run_id,
        stopped: std::sync::atomic::AtomicBool::new(false),
    };
    let events = Fanout {
        listeners: vec![&sink, &stop, &progress],
    };
    if !store.recovered.is_empty() {
        events.emit(&crate::event::RunEvent::Notice(&format!(
            "marked {} unfinished run{} as crashed: {}",
            store.recovered.len(),
            if store.recovered.len() == 1 { "" } else { "s" },
            store.recovered.join(", ")
        )));
    }
    let state_dir = execute::run::state_dir(x.project);
    // The monitoring network: the server's router, or one of our own on loopback.
    let network = if crate::daemon::local::LocalNetwork::server_router() {
        None
    } else {
        let mut envs: Vec<&crate::environment::Environment> = Vec::new();
        for p in x.plans {
            if !envs.iter().any(|e| e.name == p.env.name) {
                envs.push(&p.env);
            }
        }
        crate::daemon::local::LocalNetwork::start(&envs, &state_dir, store)
            .map_err(CliError::infra)?
    };
    let observing = network.is_some() || crate::daemon::local::LocalNetwork::server_router();
    let way = match &network {
        Some(n) => Some(n.network()),
        None => crate::daemon::local::SERVER.get(),
    };
    let settings = RunSettings {
        run_id: &run_id,
        project: x.project,
        state_dir: &state_dir,
        revision: x.revision.clone(),
        overrides: x.overrides.clone(),
        config_commits: x.config_commits.clone(),
        preemptible: x.preemptible,
        network: way,
        observed: observing.then_some(store as &dyn crate::execute::observe::Observations),
    };
    // One environment never runs two pipelines at once.
    let envs: std::collections::BTreeSet<&str> =
        x.plans.iter().map(|p| p.env.name.as_str()).collect();
    let pipelines: Vec<String> = x.plans.iter().map(|p| p.pipeline.name.clone()).collect();
    let mut taken: Vec<&str> = Vec::new();
    for env in envs {
        let lease = crate::store::control::Lease {
            environment: env.to_string(),
            run_id: run_id.clone(),
            pipelines: pipelines.clone(),
            pid: std::process::id(),
            since: clock::now(),
        };
        if let Some(holder) = store.take_lease(&lease)? {
            for e in &taken {
                store.release_lease(e, &run_id)?;
            }
            return Err(CliError::infra(format!(
                "environment {env} is in use by run {} ({}, pid {}) since {}",
                holder.run_id,
                holder.pipelines.join(", "),
                holder.pid,
                holder.since
            )));
        }
        taken.push(env);
    }
    let run = execute::execute(x.plans, &settings, &events);
    drop(network);
    // A lease left behind (a full disk) is released by the next open: its pid is gone.
    let released = taken
        .iter()
        .try_for_each(|env| store.release_lease(env, &run_id));
    if let Some(e) = sink.take_error() {
        // The JUnit of this run, not the previous one's: the store holds part of it, the
        // sink kept the rest.
        let cut = cut_short(store, &sink, run);
        if let Err(why) = write_junit(&cut, None, None, junit_path) {
            crate::errln!("{why}");
        }
        return Err(CliError::Store(e));
    }
    released?;
    let mut scenarios = Vec::new();
    for sc in store.scenarios(&run.id)? {
        let steps = store.steps(&run.id, sc.index)?;
        scenarios.push((sc, steps));
    }
    let artifacts = store.artifacts(&run.id)?;
    let stored = StoredRun {
        run,
        scenarios,
        artifacts,
    };
    // The comparison with the previous release, in the JUnit file.
    let previous = crate::compare::history::previous_release(
        store,
        x.project,
        &stored.run,
        crate::compare::history::RELEASE_PATTERN,
    )?;
    let comparison = match &previous {
        // The plans hold the pipelines' masks already: no pipeline is read again.
        Some((_, baseline)) => Some(super::diff::comparison(
            store,
            &crate::compare::Masks::with(
                x.plans
                    .iter()
                    .flat_map(|p| p.pipeline.masks.iter().cloned()),
            ),
            baseline,
            &stored.run,
        )?),
        None => None,
    };
    let label = previous
        .as_ref()
        .map(|(name, r)| format!("{name} ({})", r.id));
    write_junit(&stored, label.as_deref(), comparison.as_ref(), junit_path)?;
    Ok(stored)
}

fn write_junit(
    stored: &StoredRun,
    with: Option<&str>,
    comparison: Option<&crate::compare::Comparison>,
    junit_path: &Path,
) -> Result<(), CliError> {
    let xml = report::junit::render_compared(stored, &report::junit::Compared { with, comparison })
        .map_err(|e| CliError::infra(format!("cannot render JUnit: {e}")))?;
    if let Some(dir) = junit_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::infra(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(junit_path, xml)
        .map_err(|e| CliError::infra(format!("cannot write {}: {e}", junit_path.display())))
}

/// Stops the run at the first write the store refuses (its disk's reserve reached): a
/// run that goes on records failures that are the store's (conditions judged on
/// observations it could not keep) and its results would be lost anyway.
struct StopWhenTheStoreFails<'a> {
    sink: &'a StoreSink<'a>,
    run_id: &'a str,
    stopped: std::sync::atomic::AtomicBool,
}

impl crate::event::Listener for StopWhenTheStoreFails<'_> {
    fn on_event(&self, _: &crate::event::RunEvent<'_>) {
        use std::sync::atomic::Ordering;
        if self.sink.failed() && !self.stopped.swap(true, Ordering::SeqCst) {
            crate::errln!("error: the store refused a write: the run stops here");
            interrupt::cancel(self.run_id);
        }
    }
}

/// A run the store failed during, whole: what the store kept, and what the sink kept
/// since (a newer record of a scenario replaces the stored one).
fn cut_short(store: &Store, sink: &StoreSink<'_>, mut run: crate::record::RunRecord) -> StoredRun {
    let unwritten = sink.take_unwritten();
    let mut scenarios: Vec<(
        crate::record::ScenarioRecord,
        Vec<crate::record::StepRecord>,
    )> = store
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

/// Renders every planned environment that has templates or data (once each), so the run
/// uses configs and data regenerated from version control. Returns each environment's
/// config commit.
pub fn apply_configs(
    cli: &Cli,
    project: &Path,
    plans: &[Plan],
    revision: &str,
) -> Result<std::collections::BTreeMap<String, String>, CliError> {
    use crate::environment::apply;
    use crate::environment::history::History;
    let mut commits = std::collections::BTreeMap::new();
    let state_dir = execute::run::state_dir(project);
    let mut history = None;
    for plan in plans {
        let env = &plan.env;
        if !apply::renders(env) || commits.contains_key(&env.name) {
            continue;
        }
        if history.is_none() {
            history = Some(
                History::open(&cli.history_path(project))
                    .map_err(|e| super::render::apply_error(e.into()))?,
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
        )
        .map_err(super::render::apply_error)?;
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
    }
    Ok(commits)
}

/// The revisions a rendered config records: the candidate's, where it has a repository of
/// the role; the project's own revision for the rest.
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

pub fn absolute(project: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        project.join(p)
    }
}

/// The pipelines to run: `--scenario`, the named ones, or the defaults.
fn select(project: &Path, args: &RunArgs) -> Result<Vec<Pipeline>, CliError> {
    if let Some(file) = &args.scenario {
        let path = absolute(project, file);
        if !path.is_file() {
            return Err(CliError::input(format!(
                "--scenario {}: no such file",
                file.display()
            )));
        }
        return Pipeline::adhoc(&path, &args.env)
            .map(|p| vec![p])
            .map_err(CliError::Findings);
    }
    let files = Pipeline::discover(project);
    let mut loaded = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let wanted: Vec<String> = args.pipelines.clone();
    if wanted.is_empty() {
        for f in &files {
            match Pipeline::load(f) {
                Ok(p) if p.default => loaded.push(p),
                Ok(_) => {}
                Err(mut fs) => findings.append(&mut fs),
            }
        }
        if !findings.is_empty() {
            return Err(CliError::Findings(findings));
        }
        if loaded.is_empty() {
            return Err(CliError::input(format!(
                "no pipeline in {} is marked `default: true`; name one: `lowtouch run PIPELINE`",
                project.join("pipelines").display()
            )));
        }
        return Ok(loaded);
    }
    for name in &wanted {
        let as_path = absolute(project, Path::new(name));
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
                return Err(CliError::input(format!(
                    "no pipeline named `{name}`; {hint}"
                )));
            }
        }
    }
    if !findings.is_empty() {
        return Err(CliError::Findings(findings));
    }
    Ok(loaded)
}
