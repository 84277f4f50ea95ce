//! Rolling changed configs out gradually. Environments whose rendered state differs from
//! their last one are taken group by group (`rollout_group`, lowest — the canary —
//! first); each gets its new config and the pipeline's smoke stage. The first failure
//! stops the rollout and restores the previous config commit on every environment
//! already changed.

use std::collections::BTreeMap;
use std::path::Path;

use super::run::Execution;
use super::{App, Error, exit};
use crate::environment::Environment;
use crate::environment::apply;
use crate::environment::history::History;
use crate::environment::render::Revisions;
use crate::pipeline::{Pipeline, Plan};
use crate::process::control::RunControl;
use crate::record::Status;
use crate::report::terminal::Detail;
use crate::revision;

/// Why a rollout stopped.
enum Stop {
    Failed(String),
    Interrupted,
    Error(Error),
}

/// One environment's part in a rollout, and what it rolls out with.
struct Step<'a> {
    env: &'a Environment,
    plan: &'a Plan,
    group: u32,
}

/// What every step of one rollout shares.
struct Rollout<'a> {
    app: &'a App,
    history: History,
    revisions: Revisions,
    rev: String,
    set: &'a [(String, String)],
    control: &'a RunControl,
}

impl App {
    /// Rolls out the configs of the environments `names`, judged by the smoke stage of
    /// the pipeline at `pipeline_path`. Returns 0 when every change went out, 1 when it
    /// stopped on a failure (and restored), 130 when it was interrupted (and restored).
    pub fn rollout(
        &self,
        pipeline_path: &Path,
        names: &[String],
        set: &[(String, String)],
        control: &RunControl,
    ) -> Result<i32, Error> {
        let project = self.project();
        let rev = revision::detect(project.root()).resolve(
            revision::project_inputs(project.root())
                .iter()
                .map(String::as_str),
        );
        let history = History::open(project.config_history())
            .map_err(|e| Error::from(apply::ApplyError::from(e)))?;
        let state_dir = project.state_dir();

        // Everything that can be checked is checked before the first environment changes:
        // the environments, their previews (divergence, templates, data, secrets) and the
        // smoke stage planned against each of them.
        let revisions = Revisions::same(&rev);
        let mut groups: BTreeMap<u32, Vec<(Environment, Plan)>> = BTreeMap::new();
        for name in names {
            let env = super::environments::load(project, name, set)?;
            if !apply::renders(&env) {
                continue;
            }
            let runtime = env.runtime_dir(&state_dir);
            let preview = apply::preview(&env, &runtime, &history, &revisions)?;
            if preview.is_empty() {
                crate::errln!("{name}: no config change");
                continue;
            }
            // The real rendering needs every secret: find out now, not half-way.
            crate::environment::render::render(&env, &revisions, &runtime, true)?;
            let pipeline = Pipeline::load(pipeline_path)?.smoke_stage(&env.name);
            if pipeline.groups.is_empty() {
                return Err(Error::input(format!(
                    "pipeline {} has no smoke stage; list the scenarios that judge a new config under `smoke:`",
                    crate::source::display_path(pipeline_path)
                )));
            }
            let plan = Plan::new(pipeline, project.root(), &[], set)?;
            groups
                .entry(env.rollout_group)
                .or_default()
                .push((env, plan));
        }
        if groups.is_empty() {
            crate::outln!("rollout: nothing to roll out");
            return Ok(exit::OK);
        }
        let order: Vec<String> = groups
            .iter()
            .map(|(g, changes)| {
                let names: Vec<&str> = changes.iter().map(|(e, _)| e.name.as_str()).collect();
                format!("group {g}: {}", names.join(", "))
            })
            .collect();
        crate::errln!("rollout: {}", order.join(" -> "));

        let rollout = Rollout {
            app: self,
            history,
            revisions,
            rev,
            set,
            control,
        };
        let mut done: Vec<(&Environment, apply::Snapshot)> = Vec::new();
        for (group, changes) in &groups {
            for (env, plan) in changes {
                let step = Step {
                    env,
                    plan,
                    group: *group,
                };
                let verdict = if control.stop_requested() {
                    Err(Stop::Interrupted)
                } else {
                    let runtime = env.runtime_dir(&state_dir);
                    let scratch = project.rollout_scratch(&env.name);
                    match apply::snapshot(env, &runtime, &rollout.history, &scratch) {
                        Ok(snap) => {
                            done.push((env, snap));
                            rollout.smoke(&step)
                        }
                        Err(e) => Err(Stop::Error(e.into())),
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
                rollout.restore_all(&done, &reason);
                return match stop {
                    Stop::Failed(why) => {
                        crate::outln!("rollout failed on {}: {why}", env.name);
                        Ok(exit::FAILED)
                    }
                    Stop::Interrupted => {
                        crate::outln!(
                            "rollout interrupted; every environment it changed was restored"
                        );
                        Ok(exit::INTERRUPTED)
                    }
                    Stop::Error(e) => Err(e),
                };
            }
        }
        for (_, snap) in &done {
            snap.discard();
        }
        let names: Vec<&str> = done.iter().map(|(e, _)| e.name.as_str()).collect();
        crate::outln!("rollout complete: {}", names.join(", "));
        Ok(exit::OK)
    }
}

impl Rollout<'_> {
    /// Applies the new config to one environment and runs the smoke stage there.
    fn smoke(&self, step: &Step<'_>) -> Result<(), Stop> {
        let project = self.app.project();
        let env = step.env;
        let applied = apply::apply(
            env,
            &env.runtime_dir(&project.state_dir()),
            &self.history,
            &self.revisions,
            true,
        )
        .map_err(|e| Stop::Error(e.into()))?;
        let Some(state) = applied.state else {
            return Err(Stop::Error(Error::infra(
                "the new config was not committed",
            )));
        };
        crate::errln!(
            "{}: applied config {} (group {}); smoke stage:",
            env.name,
            &state.commit[..12],
            step.group
        );
        let commits = BTreeMap::from([(env.name.clone(), state.commit.clone())]);
        let junit = project
            .root()
            .join("reports")
            .join(format!("rollout-{}.xml", env.name));
        let super::run::Executed { stored, .. } = self
            .app
            .execute(
                &Execution {
                    plans: std::slice::from_ref(step.plan),
                    revision: self.rev.clone(),
                    detail: Detail::Scenarios,
                    overrides: self.set.to_vec(),
                    config_commits: commits,
                    config_trees: Default::default(),
                    preemptible: false,
                    junit,
                },
                self.control,
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

    /// Puts every changed environment back, newest first. A restore that fails is
    /// reported and the others still go back.
    fn restore_all(&self, done: &[(&Environment, apply::Snapshot)], reason: &str) {
        let state_dir = self.app.project().state_dir();
        for (env, snap) in done.iter().rev() {
            let runtime = env.runtime_dir(&state_dir);
            match apply::restore(
                env,
                &runtime,
                &self.history,
                snap,
                &format!("rollout stopped, {reason}"),
                &self.revisions,
            ) {
                Ok(Some(state)) => crate::errln!(
                    "{}: restored config {} (as commit {})",
                    env.name,
                    snap.base.as_deref().map_or("?", |b| &b[..12]),
                    &state.commit[..12]
                ),
                Ok(None) => crate::errln!(
                    "{}: restored to no config (it had none before); the failed one is kept under refs/lowtouch/failed/",
                    env.name
                ),
                Err(e) => crate::errln!("{}: could not restore: {e}", env.name),
            }
        }
    }
}

/// The pipeline whose smoke stage judges a rollout: `name` (a name or a path), or the
/// default pipeline.
pub fn pick_pipeline(
    project: &super::Project,
    name: Option<&str>,
) -> Result<std::path::PathBuf, Error> {
    let files = Pipeline::discover(project.root());
    match name {
        Some(n) => {
            let as_path = project.root().join(n);
            if as_path.is_file() {
                return Ok(as_path);
            }
            files
                .into_iter()
                .find(|f| f.file_stem().and_then(|s| s.to_str()) == Some(n))
                .ok_or_else(|| Error::input(format!("no pipeline named `{n}`")))
        }
        None => {
            for f in files {
                if let Ok(p) = Pipeline::load(&f)
                    && p.default
                {
                    return Ok(f);
                }
            }
            Err(Error::input(
                "no default pipeline; name one with --pipeline",
            ))
        }
    }
}
