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
use crate::report::terminal::Detail;
use crate::store::{Status, Store};
use crate::{execute, revision};

#[derive(Debug, Args)]
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
    previous: Option<String>,
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
/// every change went out, 1 when it stopped on a failure (and restored).
pub fn run_rollout(
    cli: &Cli,
    project: &Path,
    store: &Store,
    pipeline_path: &Path,
    names: &[String],
    set: &[(String, String)],
) -> Result<i32, CliError> {
    let rev = revision::detect(project).resolve([]);
    let revisions = Revisions::same(&rev);
    let history = History::open(&cli.history_path(project)).map_err(|e| apply_error(e.into()))?;
    let state_dir = execute::run::state_dir(project);

    // Which environments change, grouped canary first.
    let mut groups: BTreeMap<u32, Vec<Change>> = BTreeMap::new();
    for name in names {
        let env = load_env(project, name, set)?;
        if !apply::renders(&env) {
            continue;
        }
        let preview = apply::preview(&env, &env.runtime_dir(&state_dir), &history, &revisions)
            .map_err(apply_error)?;
        if preview.is_empty() {
            eprintln!("{name}: no config change");
            continue;
        }
        groups.entry(env.rollout_group).or_default().push(Change {
            previous: preview.tip,
            env,
        });
    }
    if groups.is_empty() {
        println!("rollout: nothing to roll out");
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
    eprintln!("rollout: {}", order.join(" -> "));

    let mut done: Vec<&Change> = Vec::new();
    for (group, changes) in &groups {
        for change in changes {
            let env = &change.env;
            let runtime = env.runtime_dir(&state_dir);
            let applied = apply::apply(env, &runtime, &history, &revisions).map_err(apply_error)?;
            done.push(change);
            eprintln!(
                "{}: applied config {} (group {group}); smoke stage:",
                env.name,
                &applied.state.commit[..12]
            );
            let pipeline = Pipeline::load(pipeline_path)
                .map_err(CliError::Findings)?
                .smoke_stage(&env.name);
            if pipeline.groups.is_empty() {
                return Err(CliError::input(format!(
                    "pipeline {} has no smoke stage; list the scenarios that judge a new config under `smoke:`",
                    pipeline_path.display()
                )));
            }
            let plan = Plan::new(pipeline, project, &[], set).map_err(CliError::Findings)?;
            let commits = BTreeMap::from([(env.name.clone(), applied.state.commit.clone())]);
            let junit = project
                .join("reports")
                .join(format!("rollout-{}.xml", env.name));
            let stored = execute_plans(
                &Execution {
                    project,
                    store,
                    plans: std::slice::from_ref(&plan),
                    revision: rev.clone(),
                    detail: Detail::Scenarios,
                    overrides: set.to_vec(),
                    config_commits: commits,
                },
                &junit,
            )?;
            if stored.run.status == Status::Passed {
                continue;
            }
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
            eprintln!(
                "rollout stopped: the smoke stage failed on {} (run {}): {why}",
                env.name, stored.run.id
            );
            for c in done.iter().rev() {
                match &c.previous {
                    Some(prev) => {
                        let reason = format!("rollout stopped, smoke failed on {}", env.name);
                        let state = apply::restore(
                            &c.env,
                            &c.env.runtime_dir(&state_dir),
                            &history,
                            prev,
                            &reason,
                            &revisions,
                        )
                        .map_err(apply_error)?;
                        eprintln!(
                            "{}: restored config {} (as commit {})",
                            c.env.name,
                            &prev[..12],
                            &state.commit[..12]
                        );
                    }
                    None => eprintln!(
                        "{}: had no config before this rollout; its new one stays (nothing to restore)",
                        c.env.name
                    ),
                }
            }
            println!("rollout failed on {}: {why}", env.name);
            return Ok(1);
        }
    }
    let names: Vec<&str> = done.iter().map(|c| c.env.name.as_str()).collect();
    println!("rollout complete: {}", names.join(", "));
    Ok(0)
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
