//! `lowtouch check`: validate pipelines, environments and scenarios against each other,
//! report every finding with its place, run nothing. Exit 1 when anything is found.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::app::{App, Error};
use crate::environment::Environment;
use crate::pipeline::{Pipeline, Plan};
use crate::source::Finding;

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Files to check: pipelines (`*.yaml`), environments (`environments/*.yaml`) or
    /// scenarios (`*.scn`) [default: every pipeline and environment of the project].
    pub paths: Vec<PathBuf>,
    /// The environment scenario files given alone are checked against.
    #[arg(long, value_name = "NAME", default_value = "local")]
    pub env: String,
    /// More directories to search for `lowtouch-NAME` plugins.
    #[arg(long = "tools", value_name = "DIR")]
    pub tools: Vec<PathBuf>,
}

#[derive(Default)]
struct Tally {
    pipelines: usize,
    environments: usize,
    scenarios: usize,
    findings: Vec<Finding>,
}

pub fn check(app: &App, args: &CheckArgs) -> Result<i32, Error> {
    let project = app.project().root();
    let tools: Vec<PathBuf> = args
        .tools
        .iter()
        .map(|t| {
            if t.is_absolute() {
                t.clone()
            } else {
                project.join(t)
            }
        })
        .collect();
    let mut tally = Tally::default();
    let mut paths: Vec<PathBuf> = args
        .paths
        .iter()
        .map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                project.join(p)
            }
        })
        .collect();
    if paths.is_empty() {
        paths.extend(Pipeline::discover(project));
        for name in Environment::names(project) {
            paths.extend(Environment::path_for(project, &name));
        }
    }
    for path in &paths {
        if !path.exists() {
            return Err(Error::input(format!("{}: no such file", path.display())));
        }
        let kind = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let in_envs = path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "environments");
        match kind {
            "scn" => check_scenario(project, path, args, &tools, &mut tally),
            "yaml" | "yml" if in_envs => {
                tally.environments += 1;
                match Environment::load(path, &[]) {
                    Ok(env) => {
                        tally
                            .findings
                            .extend(crate::environment::render::check(&env));
                        tally.findings.extend(crate::testdata::check(&env.data));
                    }
                    Err(mut f) => tally.findings.append(&mut f),
                }
            }
            "yaml" | "yml" => {
                tally.pipelines += 1;
                match Pipeline::load(path) {
                    Ok(p) => {
                        tally.scenarios += p.scenarios().count();
                        match Plan::new(p, project, &tools, &[]) {
                            Ok(plan) => leak(plan),
                            Err(mut f) => tally.findings.append(&mut f),
                        }
                    }
                    Err(mut f) => tally.findings.append(&mut f),
                }
            }
            _ => {
                return Err(Error::input(format!(
                    "{}: not a pipeline, environment (.yaml) or scenario (.scn)",
                    path.display()
                )));
            }
        }
    }
    // The same finding can come from two pipelines sharing a scenario: show it once.
    // Compared by place and words, not rendered: a rendered finding is many times larger.
    let mut seen = std::collections::HashSet::new();
    tally
        .findings
        .retain(|f| seen.insert((f.path.clone(), f.diagnostic.clone())));
    for f in &tally.findings {
        crate::errln!("{f}");
    }
    let checked = format!(
        "{} pipeline{}, {} environment{}, {} scenario{}",
        tally.pipelines,
        plural(tally.pipelines),
        tally.environments,
        plural(tally.environments),
        tally.scenarios,
        plural(tally.scenarios)
    );
    if tally.findings.is_empty() {
        crate::errln!("ok: checked {checked}");
        Ok(0)
    } else {
        crate::errln!(
            "{} problem{} in {checked}",
            tally.findings.len(),
            plural(tally.findings.len())
        );
        Ok(1)
    }
}

fn check_scenario(
    project: &Path,
    path: &Path,
    args: &CheckArgs,
    tools: &[PathBuf],
    tally: &mut Tally,
) {
    tally.scenarios += 1;
    match Pipeline::adhoc(path, &args.env) {
        Ok(p) => match Plan::new(p, project, tools, &[]) {
            Ok(plan) => leak(plan),
            Err(mut f) => tally.findings.append(&mut f),
        },
        Err(mut f) => tally.findings.append(&mut f),
    }
}

/// `check` exits right after: freeing a large scenario's tree node by node costs more
/// than the operating system takes to reclaim it (a third of the time on a 100k-line
/// file), so checked plans are not dropped.
fn leak(plan: Plan) {
    std::mem::forget(plan);
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
