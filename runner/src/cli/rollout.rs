//! `lowtouch rollout`: apply changed configs gradually. Environments whose rendered state
//! differs from their last one are taken group by group (`rollout_group`, lowest — the
//! canary — first); each gets its new config and the pipeline's smoke stage. The first
//! failure stops the rollout and restores the previous config commit on every
//! environment already changed. Exit 1 when it stopped on a failure.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Args;

use super::render::{apply_error, load_env};
use super::run::{Execution, execute_plans};
use super::{Cli, CliError};
use crate::environment::Environment;
use crate::environment::apply;
use crate::environment::history::History;
use crate::environment::render::Revisions;
use crate::execute::interrupt;
use crate::pipeline::{Pipeline, Plan};
use crate::record::Status;
use crate::report::terminal::Detail;
use crate::store::Store;
use crate::{execute, revision};

#[derive(Debug, Clone, Args)]
pub struct RolloutArgs {
    /// The pipeline whose smoke stage judges each environment [default: the default pipeline].
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Environments to consider (repeatable) [default: every environment that renders].
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
    /// Override an environment variable in every environment (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = super::run::parse_set)]
    pub set: Vec<(String, String)>,
}

/// One environment's part in a rollout.
struct Change {
    env: Environment,
}

pub fn rollout(cli: &Cli, args: &RolloutArgs) -> Result<i32, CliError> {
    interrupt::install();
    let project = cli.project()?;
    let pipeline_path = pick_pipeline(&project, args.pipeline.as_deref())?;
    let names = if args.envs.is_empty() {
        Environment::names(&project)
    } else {
        args.envs.clone()
    };
    let store = Store::open(&cli.db_path(&project))?;
    let code = run_rollout(cli, &project, &store, &pipeline_path, &names, &args.set)?;
    Ok(code)
}

/// The rollout itself, shared with pipelines that run it as a stage. Returns 0 when
/// every change went out, 1 when it stopped on a failure (and restored), 130 when it was
/// interrupted (and restored).
pub fn run_rollout(
    cli: &Cli,
    project: &Path,
    store: &Store,
    pipeline_path: &Path,
    names: &[String],
    set: &[(String, String)],
) -> Result<i32, CliError> {
    let rev = revision::detect(project)
        .resolve(revision::project_inputs(project).iter().map(String::as_str));
    let revisions = Revisions::same(&rev);
    let history = History::open(&cli.history_path(project)).map_err(|e| apply_error(e.into()))?;
    let state_dir = execute::run::state_dir(project);

    // Everything that can be checked is checked before the first environment changes:
    // the environments, their previews (divergence, templates, data, secrets) and the
    // smoke stage planned against each of them.
    let mut groups: BTreeMap<u32, Vec<Change>> = BTreeMap::new();
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    for name in names {
        let env = load_env(project, name, set)?;
        if !apply::renders(&env) {
            continue;
        }
        let runtime = env.runtime_dir(&state_dir);
        let preview = apply::preview(&env, &runtime, &history, &revisions).map_err(apply_error)?;
        if preview.is_empty() {
            crate::errln!("{name}: no config change");
            continue;
        }
        // The real rendering needs every secret: find out now, not half-way.
        crate::environment::render::render(&env, &revisions, &runtime, true)
            .map_err(CliError::Findings)?;
        let pipeline = Pipeline::load(pipeline_path)
            .map_err(CliError::Findings)?
            .smoke_stage(&env.name);
        if pipeline.groups.is_empty() {
            return Err(CliError::input(format!(
                "pipeline {} has no smoke stage; list the scenarios that judge a new config under `smoke:`",
                crate::source::display_path(pipeline_path)
            )));
        }
        plans.insert(
            env.name.clone(),
            Plan::new(pipeline, project, &[], set).map_err(CliError::Findings)?,
        );
        groups
            .entry(env.rollout_group)
            .or_default()
            .push(Change { env });
    }
    if groups.is_empty() {
        crate::outln!("rollout: nothing to roll out");
        return Ok(0);
    }
    let order: Vec<String> = groups
        .iter()
        .map(|(g, cs)| {
            format!(
                "group {g}: {}",
                cs.iter()
                    .map(|c| c.env.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    crate::errln!("rollout: {}", order.join(" -> "));

    let mut done: Vec<(&Change, apply::Snapshot)> = Vec::new();
    for (group, changes) in &groups {
        for change in changes {
            let env = &change.env;
            let verdict = if interrupt::requested() {
                Err(Stop::Interrupted)
            } else {
                let runtime = env.runtime_dir(&state_dir);
                let scratch = state_dir.join("rollout").join(&env.name);
                match apply::snapshot(env, &runtime, &history, &scratch) {
                    Ok(snap) => {
                        done.push((change, snap));
                        smoke(
                            project,
                            store,
                            env,
                            &plans[&env.name],
                            &history,
                            &revisions,
                            &rev,
                            set,
                            *group,
                        )
                    }
                    Err(e) => Err(Stop::Error(apply_error(e))),
                }
            };
            let stop = match verdict {
                Ok(()) => continue,
                Err(stop) => stop,
            };
            let reason = match &stop {
                Stop::Failed(why) => format!("smoke failed on {}: {why}", env.name),
                Stop::Interrupted => "interrupted".to_string(),
                Stop::Error(e) => format!("error on {}: {e}", env.name),
            };
            crate::errln!("rollout stopped: {reason}");
            restore_all(&done, &state_dir, &history, &reason, &revisions);
            return match stop {
                Stop::Failed(why) => {
                    crate::outln!("rollout failed on {}: {why}", env.name);
                    Ok(1)
                }
                Stop::Interrupted => {
                    crate::outln!("rollout interrupted; every environment it changed was restored");
                    Ok(130)
                }
                Stop::Error(e) => Err(e),
            };
        }
    }
    for (_, snap) in &done {
        snap.discard();
    }
    let names: Vec<&str> = done.iter().map(|(c, _)| c.env.name.as_str()).collect();
    crate::outln!("rollout complete: {}", names.join(", "));
    Ok(0)
}

/// Why a rollout stopped.
enum Stop {
    Failed(String),
    Interrupted,
    Error(CliError),
}

/// Applies the new config to one environment and runs the smoke stage there.
#[expect(
    clippy::too_many_arguments,
    reason = "one step of the rollout, sharing its state"
)]
fn smoke(
    project: &Path,
    store: &Store,
    env: &Environment,
    plan: &Plan,
    history: &History,
    revisions: &Revisions,
    rev: &str,
    set: &[(String, String)],
    group: u32,
) -> Result<(), Stop> {
    let state_dir = execute::run::state_dir(project);
    let applied = apply::apply(env, &env.runtime_dir(&state_dir), history, revisions, true)
        .map_err(|e| Stop::Error(apply_error(e)))?;
    let Some(state) = applied.state else {
        return Err(Stop::Error(CliError::infra(
            "the new config was not committed",
        )));
    };
    crate::errln!(
        "{}: applied config {} (group {group}); smoke stage:",
        env.name,
        &state.commit[..12]
    );
    let commits = BTreeMap::from([(env.name.clone(), state.commit.clone())]);
    let junit = project
        .join("reports")
        .join(format!("rollout-{}.xml", env.name));
    let stored = execute_plans(
        &Execution {
            project,
            store,
            plans: std::slice::from_ref(plan),
            revision: rev.to_string(),
            detail: Detail::Scenarios,
            overrides: set.to_vec(),
            config_commits: commits,
            preemptible: false,
        },
        &junit,
    )
    .map_err(Stop::Error)?;
    match stored.run.status {
        Status::Passed => Ok(()),
        Status::Interrupted => Err(Stop::Interrupted),
        _ => {
            let why = stored
                .scenarios
                .iter()
                .find(|(sc, _)| sc.status != Status::Passed)
                .map(|(sc, _)| {
                    format!(
                        "{}: {}",
                        sc.name,
                        sc.reason
                            .clone()
                            .unwrap_or_else(|| sc.status.as_str().into())
                    )
                })
                .unwrap_or_else(|| stored.run.status.as_str().to_string());
            Err(Stop::Failed(format!("{why} (run {})", stored.run.id)))
        }
    }
}

/// Puts every changed environment back, newest first. A restore that fails is reported
/// and the others still go back.
fn restore_all(
    done: &[(&Change, apply::Snapshot)],
    state_dir: &Path,
    history: &History,
    reason: &str,
    revisions: &Revisions,
) {
    for (c, snap) in done.iter().rev() {
        let runtime = c.env.runtime_dir(state_dir);
        match apply::restore(
            &c.env,
            &runtime,
            history,
            snap,
            &format!("rollout stopped, {reason}"),
            revisions,
        ) {
            Ok(Some(state)) => crate::errln!(
                "{}: restored config {} (as commit {})",
                c.env.name,
                snap.base.as_deref().map_or("?", |b| &b[..12]),
                &state.commit[..12]
            ),
            Ok(None) => crate::errln!(
                "{}: restored to no config (it had none before); the failed one is kept under refs/lowtouch/failed/",
                c.env.name
            ),
            Err(e) => crate::errln!("{}: could not restore: {e}", c.env.name),
        }
    }
}

fn pick_pipeline(project: &Path, name: Option<&str>) -> Result<std::path::PathBuf, CliError> {
    let files = Pipeline::discover(project);
    match name {
        Some(n) => {
            let as_path = project.join(n);
            if as_path.is_file() {
                return Ok(as_path);
            }
            files
                .into_iter()
                .find(|f| f.file_stem().and_then(|s| s.to_str()) == Some(n))
                .ok_or_else(|| CliError::input(format!("no pipeline named `{n}`")))
        }
        None => {
            for f in files {
                if let Ok(p) = Pipeline::load(&f)
                    && p.default
                {
                    return Ok(f);
                }
            }
            Err(CliError::input(
                "no default pipeline; name one with --pipeline",
            ))
        }
    }
}
