//! `check`: pipelines, environments and scenarios validated against each other — every
//! finding with its place; nothing runs.

use std::path::PathBuf;

use super::{App, Error};
use crate::environment::Environment;
use crate::pipeline::{Pipeline, Plan};
use crate::source::Finding;

/// What a check looked at and found.
#[derive(Debug, Default)]
pub struct Checked {
    pub pipelines: usize,
    pub environments: usize,
    pub scenarios: usize,
    /// Each once, in the order found.
    pub findings: Vec<Finding>,
}

impl Checked {
    /// Findings as JSON, for CI annotations and editors: the file (as given, or under
    /// the project), 1-based line and column, the length it points at, the message, the
    /// label and the help; with the counts.
    pub fn json(&self, root: &std::path::Path) -> String {
        let findings: Vec<serde_json::Value> = self
            .findings
            .iter()
            .map(|f| {
                let d = &f.diagnostic;
                serde_json::json!({
                    "file": f.path.strip_prefix(root).unwrap_or(&f.path).display().to_string(),
                    "line": d.span.line,
                    "column": d.span.col,
                    "length": d.span.len,
                    "message": d.message,
                    "label": d.label,
                    "help": d.help,
                })
            })
            .collect();
        serde_json::json!({
            "ok": self.findings.is_empty(),
            "pipelines": self.pipelines,
            "environments": self.environments,
            "scenarios": self.scenarios,
            "findings": findings,
        })
        .to_string()
    }

    /// The closing line: what was checked, and whether anything was found in it.
    pub fn summary(&self) -> String {
        let n = |count: usize, what: &str| {
            format!("{count} {what}{}", if count == 1 { "" } else { "s" })
        };
        let what = [
            n(self.pipelines, "pipeline"),
            n(self.environments, "environment"),
            n(self.scenarios, "scenario"),
        ]
        .join(", ");
        match self.findings.len() {
            0 => format!("ok: checked {what}"),
            found => format!("{} in {what}", n(found, "problem")),
        }
    }
}

impl App {
    /// Checks `paths` (every pipeline and environment of the project when empty);
    /// scenario files given alone are checked against `environment`.
    pub fn check(
        &self,
        paths: &[PathBuf],
        environment: &str,
        tools: &[PathBuf],
    ) -> Result<Checked, Error> {
        let project = self.project().root();
        let tools: Vec<PathBuf> = tools.iter().map(|t| self.project().resolve(t)).collect();
        let mut paths: Vec<PathBuf> = paths.iter().map(|p| self.project().resolve(p)).collect();
        if paths.is_empty() {
            paths.extend(Pipeline::discover(project));
            for name in Environment::names(project) {
                paths.extend(Environment::path_for(project, &name));
            }
            // Nothing checked is not "ok".
            if paths.is_empty() {
                return Err(Error::input(format!(
                    "nothing to check in {}: no pipelines/*.yaml and no environments/*.yaml \
                     (`lowtouch init` writes a starting project)",
                    project.display()
                )));
            }
        }
        let mut tally = Checked::default();
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
                "scn" => {
                    tally.scenarios += 1;
                    let planned = Pipeline::adhoc(path, environment)
                        .and_then(|p| Plan::new(p, project, &tools, &[]));
                    keep(planned, &mut tally.findings);
                }
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
                    let planned = Pipeline::load(path).and_then(|p| {
                        tally.scenarios += p.scenarios().count();
                        Plan::new(p, project, &tools, &[])
                    });
                    keep(planned, &mut tally.findings);
                }
                _ => {
                    return Err(Error::input(format!(
                        "{}: not a pipeline, environment (.yaml) or scenario (.scn)",
                        path.display()
                    )));
                }
            }
        }
        // The same finding can come from two pipelines sharing a scenario: keep it once.
        // Compared by place and words, not rendered: a rendered finding is many times larger.
        let mut seen = std::collections::HashSet::new();
        tally
            .findings
            .retain(|f| seen.insert((f.path.clone(), f.diagnostic.clone())));
        Ok(tally)
    }
}

/// A checked plan is not dropped: `check` exits right after, and freeing a large
/// scenario's tree node by node costs more than the operating system takes to reclaim it
/// (a third of the time on a 100k-line file).
fn keep(planned: Result<Plan, Vec<Finding>>, findings: &mut Vec<Finding>) {
    match planned {
        Ok(plan) => std::mem::forget(plan),
        Err(mut f) => findings.append(&mut f),
    }
}
