//! Planning: a pipeline joined with its environment and tools, every name checked
//! against them before anything runs.

use std::path::{Path, PathBuf};

use super::pipeline::{HookLine, Pipeline};
use crate::environment::{AliasKind, Environment, Resolver, Tools};
use crate::scenario::check::check;
use crate::source::Finding;

/// What an event-driven scenario knows of the event that started it.
pub const EVENT_VARS: &[&str] = &["event.source", "event.name", "event.value", "event.daemon"];

/// A pipeline ready to run: nothing in it refers to something that does not exist.
#[derive(Debug)]
pub struct Plan {
    pub pipeline: Pipeline,
    pub env: Environment,
    pub tools: Tools,
    /// The revisions under test, for a pipeline with repositories (its variables in
    /// every step; its worktrees for the deploy stage).
    pub candidate: Option<crate::watch::Candidate>,
    /// Whether the deploy stage runs (a tools or data change of a candidate already
    /// deployed skips it).
    pub deploy: bool,
    /// More variables of the run's context (`event.source`… for an event-driven run).
    pub context: std::collections::BTreeMap<String, String>,
}

impl Plan {
    /// Loads the pipeline's environment and checks everything against it.
    /// `extra_tools` come from `--tools DIR`; `overrides` from `--set NAME=VALUE`.
    pub fn new(
        pipeline: Pipeline,
        project: &Path,
        extra_tools: &[PathBuf],
        overrides: &[(String, String)],
    ) -> Result<Plan, Vec<Finding>> {
        Plan::for_candidate(pipeline, project, extra_tools, overrides, None)
    }

    /// [`Plan::new`] for a candidate: the pipeline's `variables:` get its revisions and
    /// worktrees; `--set` still wins over them.
    pub fn for_candidate(
        pipeline: Pipeline,
        project: &Path,
        extra_tools: &[PathBuf],
        overrides: &[(String, String)],
        candidate: Option<crate::watch::Candidate>,
    ) -> Result<Plan, Vec<Finding>> {
        let Some(env_path) = Environment::path_for(project, &pipeline.environment) else {
            return Err(vec![missing_environment(&pipeline, project)]);
        };
        let mut all = pipeline.variable_overrides(candidate.as_ref());
        all.extend(
            overrides
                .iter()
                .map(|(name, value)| crate::environment::Override {
                    name: name.clone(),
                    value: value.clone(),
                    place: None,
                }),
        );
        let env = Environment::load_with(&env_path, &all)?;
        let mut dirs = pipeline.tool_dirs.clone();
        dirs.extend(extra_tools.iter().cloned());
        let tools = Tools::scan(dirs);
        let plan = Plan {
            pipeline,
            env,
            tools,
            candidate,
            deploy: true,
            context: Default::default(),
        };
        let findings = plan.check();
        if findings.is_empty() {
            Ok(plan)
        } else {
            Err(findings)
        }
    }

    /// Every finding of every scenario, hook and alias, in file order.
    pub fn check(&self) -> Vec<Finding> {
        let mut resolver = Resolver::new(&self.env, &self.tools);
        // Scenarios and hooks may use the candidate's variables (`#{product.revision}`).
        resolver.extra_vars = crate::watch::candidate::variable_names(&self.pipeline.repositories);
        if !self.pipeline.on_event.is_empty() || self.pipeline.event_driven {
            resolver
                .extra_vars
                .extend(EVENT_VARS.iter().map(|v| v.to_string()));
        }
        let mut findings = Vec::new();
        for scenario in self.pipeline.scenarios() {
            let mut diags = scenario.parse_errors.clone();
            diags.extend(check(&scenario.ast, &resolver));
            diags.sort_by_key(|d| d.span.offset);
            for d in diags {
                findings.push(Finding::new(&scenario.file, d));
            }
        }
        if let Some(file) = &self.pipeline.file {
            let hooks: [&[HookLine]; 5] = [
                &self.pipeline.deploy,
                &self.pipeline.setup,
                &self.pipeline.teardown,
                &self.pipeline.before_each,
                &self.pipeline.after_each,
            ];
            for hook in hooks.into_iter().flatten() {
                for d in check(&hook.ast, &resolver) {
                    let col = hook.col + d.span.col - 1;
                    let mut f = Finding::at(file, hook.line, col, d.span.len, d.message.clone());
                    f.diagnostic.label = d.label;
                    f.diagnostic.help = d.help;
                    findings.push(f);
                }
            }
        }
        let mut positional = Resolver::new(&self.env, &self.tools);
        positional.extra_vars = (1..=9).map(|i| i.to_string()).collect();
        for alias in self.env.aliases.values() {
            if let AliasKind::Steps(ast) = &alias.kind {
                for d in check(ast, &positional) {
                    findings.push(
                        self.at_alias(&alias.name, format!("in `steps`: {}", d.message))
                            .help(d.label.or(d.help).unwrap_or_default()),
                    );
                }
            }
        }
        findings.extend(self.alias_cycles());
        findings.extend(crate::environment::render::check(&self.env));
        findings.extend(crate::testdata::check(&self.env.data));
        if let Some(file) = &self.pipeline.file {
            let project = &self.env.project;
            for name in &self.pipeline.rollout {
                if Environment::path_for(project, name).is_none() {
                    let (line, col) = crate::source::locate_value(&file.text, &["rollout"], name)
                        .unwrap_or((1, 1));
                    findings.push(
                        Finding::at(
                            file,
                            line,
                            col,
                            name.len(),
                            format!("environment `{name}` not found"),
                        )
                        .help(format!(
                            "environments: {}",
                            Environment::names(project).join(", ")
                        )),
                    );
                }
            }
        }
        findings
    }

    /// A finding at an alias's name in the environment file.
    fn at_alias(&self, name: &str, message: String) -> Finding {
        let (line, col) =
            crate::source::locate_key(&self.env.file.text, &["aliases", name]).unwrap_or((1, 1));
        Finding::at(&self.env.file, line, col, name.len(), message)
    }

    /// `steps:` aliases that call each other in a circle would recurse forever.
    fn alias_cycles(&self) -> Vec<Finding> {
        use std::collections::BTreeMap;
        let calls: BTreeMap<&str, Vec<&str>> = self
            .env
            .aliases
            .values()
            .filter_map(|a| match &a.kind {
                AliasKind::Steps(ast) => {
                    let mut names = Vec::new();
                    for stmt in &ast.stmts {
                        called(&stmt.kind, &mut names);
                    }
                    Some((a.name.as_str(), names))
                }
                _ => None,
            })
            .collect();
        let mut findings = Vec::new();
        let mut reported = std::collections::BTreeSet::new();
        for &start in calls.keys() {
            let mut path = vec![start];
            if let Some(cycle) = find_cycle(&calls, &mut path)
                && reported.insert(cycle.iter().min().copied().unwrap_or(start))
            {
                findings.push(
                    self.at_alias(
                        cycle[0],
                        format!("aliases call each other in a cycle: {}", cycle.join(" -> ")),
                    )
                    .help("one of them must do the work instead of calling the next"),
                );
            }
        }
        findings
    }
}

fn called<'a>(kind: &'a crate::scenario::ast::StmtKind, out: &mut Vec<&'a str>) {
    use crate::scenario::ast::StmtKind;
    match kind {
        StmtKind::Call(c) | StmtKind::Set { call: c, .. } => out.push(&c.name.text),
        StmtKind::If { then, .. } => called(&then.kind, out),
        _ => {}
    }
}

/// Depth-first from the last name of `path`; returns the cycle through its first name.
fn find_cycle<'a>(
    calls: &std::collections::BTreeMap<&'a str, Vec<&'a str>>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    let here = *path.last()?;
    for &next in calls.get(here).map(Vec::as_slice).unwrap_or(&[]) {
        if next == path[0] {
            let mut cycle = path.clone();
            cycle.push(next);
            return Some(cycle);
        }
        if path.contains(&next) || !calls.contains_key(next) {
            continue;
        }
        path.push(next);
        if let Some(c) = find_cycle(calls, path) {
            return Some(c);
        }
        path.pop();
    }
    None
}

fn missing_environment(pipeline: &Pipeline, project: &Path) -> Finding {
    let names = Environment::names(project);
    let message = format!("environment `{}` not found", pipeline.environment);
    let help = match crate::scenario::diagnostic::did_you_mean(
        &pipeline.environment,
        names.iter().map(String::as_str),
    ) {
        Some(close) => format!("did you mean `{close}`?"),
        None if names.is_empty() => format!(
            "there is no environment in {}",
            project.join("environments").display()
        ),
        None => format!("environments: {}", names.join(", ")),
    };
    match &pipeline.file {
        Some(file) => {
            let (line, col) =
                crate::source::locate_value(&file.text, &["environment"], &pipeline.environment)
                    .unwrap_or((1, 1));
            Finding::at(file, line, col, pipeline.environment.len(), message).help(help)
        }
        None => Finding::file(&project.join("environments"), message).help(help),
    }
}
