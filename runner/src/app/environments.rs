//! Environments by name, as commands take them: `--env NAME` resolves to
//! `environments/NAME.yaml`, loaded with every finding of its templates and data.

use super::{Error, Project};
use crate::environment::Environment;
use crate::scenario::diagnostic::did_you_mean;

/// The environment `name` with `set` applied, or every problem found in it.
pub fn load(project: &Project, name: &str, set: &[(String, String)]) -> Result<Environment, Error> {
    let Some(path) = Environment::path_for(project.root(), name) else {
        return Err(unknown(project, name));
    };
    let env = Environment::load(&path, set).map_err(Error::Findings)?;
    let mut findings = crate::environment::render::check(&env);
    findings.extend(crate::testdata::check(&env.data));
    if !findings.is_empty() {
        return Err(Error::Findings(findings));
    }
    Ok(env)
}

/// Whether the project has an environment `name`; if not, what it has.
pub fn known(project: &Project, name: &str) -> Result<(), Error> {
    if Environment::names(project.root()).iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(unknown(project, name))
    }
}

fn unknown(project: &Project, name: &str) -> Error {
    let names = Environment::names(project.root());
    let hint = match did_you_mean(name, names.iter().map(String::as_str)) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("environments: {}", names.join(", ")),
    };
    Error::input(format!("no environment named `{name}`; {hint}"))
}

impl super::App {
    /// Each environment of the project: idle, running what (its lease), paused or locked
    /// by whom, and its last run — what `lowtouch status` shows, as data.
    pub fn environment_status(&self) -> Result<Vec<serde_json::Value>, Error> {
        let store = self.store()?;
        let leases = store.leases()?;
        let runs = store.runs(200)?;
        let mut rows = Vec::new();
        for env in Environment::names(self.project().root()) {
            let control = store.control(&env)?;
            let lease = leases.iter().find(|l| l.environment == env);
            let state = match (lease, control.hold()) {
                (Some(l), _) => format!(
                    "running {} (run {}, pid {})",
                    l.pipelines.join(", "),
                    l.run_id,
                    l.pid
                ),
                (None, Some(hold)) => hold,
                (None, None) => "idle".to_string(),
            };
            let last = runs.iter().find(|r| r.environments.contains(&env));
            rows.push(serde_json::json!({
                "environment": env,
                "state": state,
                "paused": control.paused,
                "lock": control.lock,
                "lease": lease,
                "last_run": last.map(|r| serde_json::json!({
                    "id": r.id, "status": r.status, "passed": r.passed, "failed": r.failed,
                    "revision": r.revision, "started_at": r.started_at,
                    "judged": r.judgement.as_ref().map(|j| j.outcome.as_str()),
                })),
            }));
        }
        Ok(rows)
    }
}
