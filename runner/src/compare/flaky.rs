//! Flaky scenarios: per scenario, its outcomes across runs of one candidate (revision
//! and candidate commits, pipeline, environment). A scenario is flaky when it both passed
//! and failed there, or passed only on a retry. Pure.

use std::collections::BTreeMap;

use crate::record::{RunRecord, ScenarioKind, ScenarioRecord, Status};

/// One flaky scenario of one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Flaky {
    pub candidate: String,
    pub pipeline: String,
    pub environment: String,
    pub scenario: String,
    pub passed: u32,
    pub failed: u32,
    /// Passed after a retry.
    pub retried: u32,
}

/// The flaky scenarios among `runs`, each with its scenarios' records.
pub fn flaky(runs: &[(RunRecord, Vec<ScenarioRecord>)]) -> Vec<Flaky> {
    /// (candidate, pipeline, environment, scenario) → (passed, failed, passed after a retry).
    type Key = (String, String, String, String);
    let mut seen: BTreeMap<Key, (u32, u32, u32)> = BTreeMap::new();
    for (run, scenarios) in runs {
        let candidate = format!(
            "{}{}",
            run.revision,
            run.candidate
                .iter()
                .map(|(r, c)| format!(" {r}@{}", &c[..c.len().min(12)]))
                .collect::<String>()
        );
        for sc in scenarios {
            if sc.kind != ScenarioKind::Scenario || sc.retried {
                continue;
            }
            let e = seen
                .entry((
                    candidate.clone(),
                    sc.pipeline.clone(),
                    sc.environment.clone(),
                    sc.name.clone(),
                ))
                .or_default();
            match sc.status {
                Status::Passed if sc.attempt > 0 => {
                    e.0 += 1;
                    e.2 += 1;
                }
                Status::Passed => e.0 += 1,
                Status::Skipped => {}
                _ => e.1 += 1,
            }
        }
    }
    seen.into_iter()
        .filter(|(_, (p, f, r))| (*p > 0 && *f > 0) || *r > 0)
        .map(
            |((candidate, pipeline, environment, scenario), (passed, failed, retried))| Flaky {
                candidate,
                pipeline,
                environment,
                scenario,
                passed,
                failed,
                retried,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(status: Status, attempt: u32) -> ScenarioRecord {
        let mut sc = ScenarioRecord::for_test("r", 0, "failover", status);
        sc.attempt = attempt;
        sc
    }

    #[test]
    fn a_scenario_that_passed_and_failed_on_one_candidate_or_passed_on_a_retry_is_flaky() {
        let run = |id: &str| RunRecord::for_test(id);
        let runs = vec![
            (run("1"), vec![scenario(Status::Passed, 0)]),
            (run("2"), vec![scenario(Status::Failed, 0)]),
            (run("3"), vec![scenario(Status::Passed, 0)]),
        ];
        let found = flaky(&runs);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].passed, found[0].failed, found[0].retried),
            (2, 1, 0)
        );
        assert!(flaky(&runs[..1]).is_empty(), "one outcome is not flaky");
        let retried = vec![(run("4"), vec![scenario(Status::Passed, 1)])];
        assert_eq!(flaky(&retried)[0].retried, 1);
    }
}
