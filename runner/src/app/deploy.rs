//! Whether a pipeline's deploy stage must run again: a marker per pipeline records what
//! its last passed deploy put in place (the environment, the deploy steps, the
//! environment's definition, the product commits).

use super::Project;
use super::request::Trigger;
use crate::pipeline::Plan;
use crate::record::{ScenarioKind, Status, StoredRun};
use crate::watch::Action;

/// Whether a plan's deploy stage must run: always for a product change and a person's
/// run; for a tools or data change, or a run by the clock or the 24/7 loop, only when
/// what was last deployed differs ([`deploy_key`]).
pub fn needs_deploy(project: &Project, plan: &Plan, trigger: &Trigger) -> bool {
    if plan.pipeline.deploy.is_empty() {
        return true;
    }
    let may_skip = match trigger {
        Trigger::Change { action, .. } => *action != Action::RunPipeline,
        other => other.scheduled(),
    };
    if !may_skip {
        return true;
    }
    let deployed = std::fs::read_to_string(project.deployed_marker(&plan.pipeline.name)).ok();
    deployed.as_deref() != Some(deploy_key(plan).as_str())
}

/// What a deploy put in place: the environment, the deploy steps and the environment's
/// definition (its aliases build and install), and the product commits.
pub fn deploy_key(plan: &Plan) -> String {
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
pub fn forget_deployed(project: &Project, plans: &[Plan]) {
    for plan in plans {
        if plan.deploy && !plan.pipeline.deploy.is_empty() {
            let _ = std::fs::remove_file(project.deployed_marker(&plan.pipeline.name));
        }
    }
}

/// After the runs: remembers what each pipeline's passed deploy stage put in place.
pub fn record_deployed(project: &Project, stored: &StoredRun, plans: &[Plan]) {
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
                project.deployed_marker(&plan.pipeline.name),
                deploy_key(plan),
            );
        }
    }
}
