//! A run's verdict on GitHub, from its [`RunOutcome`]: on each commit of its candidate
//! whose repository names a GitHub repository, a commit status when `GITHUB_TOKEN` is set
//! and a check run with a summary when a GitHub App is configured — each only when the
//! verdict is new for that commit and context (GitHub keeps at most 1,000 statuses per
//! commit and context, and a 24/7 loop would reach that). Failures are reported; they
//! never fail the run.

use super::{App, RunOutcome};
use crate::github::{AppKey, CheckRun, GitHub, StatusPost, Verdict};
use crate::record::{RunRecord, ScenarioKind, ScenarioWithSteps, Status};
use crate::store::Store;
use crate::watch::repository::GithubRepo;

impl App {
    /// Posts `outcome`'s verdict for each of its pipelines' GitHub repositories.
    pub fn publish(&self, outcome: &RunOutcome) {
        let run = outcome.run();
        // An interrupted run (Ctrl-C, cancelled, pre-empted) has no verdict to report.
        if run.status == Status::Interrupted {
            return;
        }
        let token = GitHub::from_env();
        let app = AppKey::from_env();
        if token.is_none() && app.is_none() {
            return;
        }
        let targets: Vec<(&str, &GithubRepo, &String)> = outcome
            .pipelines
            .iter()
            .flat_map(|p| {
                p.repositories.iter().filter_map(|r| {
                    Some((
                        p.name.as_str(),
                        r.github.as_ref()?,
                        run.candidate.get(&r.name)?,
                    ))
                })
            })
            .collect();
        if targets.is_empty() {
            return;
        }
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => {
                crate::errln!("github: {e} (nothing was posted)");
                return;
            }
        };
        let to = Target {
            store: &store,
            token: token.as_ref(),
            app: app.as_ref(),
        };
        for (pipeline, github, sha) in targets {
            to.post(
                pipeline,
                github,
                sha,
                run,
                &outcome.stored.scenarios,
                outcome.verdict.as_ref(),
            );
        }
    }
}

/// Where verdicts go and what was posted already.
struct Target<'a> {
    store: &'a Store,
    token: Option<&'a Result<GitHub, crate::github::GithubError>>,
    app: Option<&'a Result<AppKey, crate::github::GithubError>>,
}

impl Target<'_> {
    fn post(
        &self,
        pipeline: &str,
        repo: &GithubRepo,
        sha: &str,
        run: &RunRecord,
        scenarios: &[ScenarioWithSteps],
        judged: Option<&crate::judge::Verdict>,
    ) {
        let short = &sha[..sha.len().min(12)];
        let env = run.environments.first().cloned().unwrap_or_default();
        let context = format!("lowtouch/{pipeline}/{env}");
        let verdict = verdict_of(run.status);
        // What was posted last for this commit and context, per kind; posts only a change.
        let unchanged = |key: &str, value: &str| {
            self.store.posted_status(sha, key).ok().flatten().as_deref() == Some(value)
        };
        if let Some(github) = self.token {
            let outcome = (|| -> Result<String, String> {
                let github = github.as_ref().map_err(|e| e.to_string())?;
                if unchanged(&context, verdict.as_str()) {
                    return Ok(format!(
                        "{context} still {} on {short}: not posted again",
                        verdict.as_str()
                    ));
                }
                github
                    .post(&StatusPost {
                        owner: repo.owner.clone(),
                        repo: repo.name.clone(),
                        sha: sha.to_string(),
                        context: context.clone(),
                        verdict,
                        description: description(run),
                    })
                    .map_err(|e| e.to_string())?;
                self.store
                    .record_posted_status(sha, &context, verdict.as_str())
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "posted {} to {}/{} {short} ({context})",
                    verdict.as_str(),
                    repo.owner,
                    repo.name
                ))
            })();
            match outcome {
                Ok(note) => crate::errln!("github: {note}"),
                Err(e) => {
                    crate::errln!("github: {e} (the run is stored; the status was not posted)")
                }
            }
        }
        if let Some(app) = self.app {
            let check_key = format!("check-run {context}");
            let check = check_run(run, scenarios, judged, repo, sha, &context);
            let outcome = (|| -> Result<String, String> {
                let app = app.as_ref().map_err(|e| e.to_string())?;
                if unchanged(&check_key, check.conclusion) {
                    return Ok(format!(
                        "check run {context} still {} on {short}: not posted again",
                        check.conclusion
                    ));
                }
                let id = crate::github::post_check_run(app, &check).map_err(|e| e.to_string())?;
                self.store
                    .record_posted_status(sha, &check_key, check.conclusion)
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "check run {id} {} on {}/{} {short} ({context})",
                    check.conclusion, repo.owner, repo.name
                ))
            })();
            match outcome {
                Ok(note) => crate::errln!("github: {note}"),
                Err(e) => {
                    crate::errln!("github: {e} (the run is stored; the check run was not posted)")
                }
            }
        }
    }
}

fn verdict_of(status: Status) -> Verdict {
    match status {
        Status::Passed => Verdict::Success,
        Status::Failed => Verdict::Failure,
        _ => Verdict::Error,
    }
}

/// A commit status's description: the counts, the judge's outcome, the run; within the
/// 140 characters GitHub takes.
fn description(run: &RunRecord) -> String {
    let mut text = format!(
        "{} passed, {} failed, {} skipped",
        run.passed, run.failed, run.skipped
    );
    if let Some(j) = &run.judgement {
        text.push_str(&format!("; judge {}", j.outcome.as_str()));
        if j.regressed > 0 {
            text.push_str(&format!(", {} regressed", j.regressed));
        }
    }
    text.push_str(&format!(" (run {})", run.id));
    text.chars().take(140).collect()
}

/// A run as a check run: its conclusion, the counts and the judge's outcome as the title,
/// and a summary that names each failed scenario with where and why it failed, and the
/// judge's findings with their numbers.
pub fn check_run(
    run: &RunRecord,
    scenarios: &[ScenarioWithSteps],
    judged: Option<&crate::judge::Verdict>,
    repo: &GithubRepo,
    sha: &str,
    name: &str,
) -> CheckRun {
    let conclusion = match run.status {
        Status::Passed => "success",
        Status::Interrupted => "cancelled",
        _ => "failure",
    };
    let mut summary = format!(
        "lowtouch run `{}` of {} on {}: **{} passed, {} failed, {} skipped**",
        run.id,
        run.pipelines.join(", "),
        run.environments.join(", "),
        run.passed,
        run.failed,
        run.skipped
    );
    if run.interrupted > 0 {
        summary.push_str(&format!(", {} interrupted", run.interrupted));
    }
    summary.push_str(&format!(" in {:.1}s.\n", run.duration_ms as f64 / 1000.0));
    let failed: Vec<_> = scenarios
        .iter()
        .map(|(sc, _)| sc)
        .filter(|sc| !matches!(sc.status, Status::Passed | Status::Skipped))
        .collect();
    if !failed.is_empty() {
        summary.push_str("\n| scenario | where | why |\n| --- | --- | --- |\n");
        for sc in &failed {
            let what = match sc.kind {
                ScenarioKind::Hook => format!("[{}]", sc.name),
                ScenarioKind::Scenario => sc.name.clone(),
            };
            let at = match sc.failed_line {
                Some(line) => format!("{}:{line}", sc.path),
                None => sc.path.clone(),
            };
            let why = sc
                .reason
                .as_deref()
                .unwrap_or(sc.status.as_str())
                .replace('|', "\\|")
                .replace('\n', " ");
            summary.push_str(&format!("| {what} | `{at}` | {why} |\n"));
        }
    }
    if let Some(v) = judged {
        summary.push_str(&format!(
            "\n**judge: {}**\n",
            v.headline().replace('|', "\\|")
        ));
        if !v.findings.is_empty() {
            summary.push_str(
                "\n| finding | feature | change | numbers |\n| --- | --- | --- | --- |\n",
            );
            for j in v.findings.iter().take(20) {
                let cell = |t: String| t.replace('|', "\\|").replace('\n', " ");
                summary.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    crate::report::verdict::label(j),
                    cell(j.feature.to_string()),
                    cell(
                        j.summary()
                            .trim_start_matches(&j.feature.to_string())
                            .trim()
                            .to_string()
                    ),
                    cell(j.explanation())
                ));
            }
        }
    }
    for (name, commit) in &run.candidate {
        summary.push_str(&format!("\ncandidate `{name}`: `{commit}`"));
    }
    for (env, commit) in &run.config_commits {
        summary.push_str(&format!("\nconfig of `{env}`: `{commit}`"));
    }
    CheckRun {
        owner: repo.owner.clone(),
        repo: repo.name.clone(),
        sha: sha.to_string(),
        name: name.to_string(),
        conclusion,
        started_at: run.started_at.clone(),
        completed_at: run.finished_at.clone().unwrap_or_else(crate::clock::now),
        title: match judged {
            Some(v) => format!(
                "{} passed, {} failed, {} skipped; judge {}",
                run.passed,
                run.failed,
                run.skipped,
                v.outcome.as_str()
            ),
            None => format!(
                "{} passed, {} failed, {} skipped",
                run.passed, run.failed, run.skipped
            ),
        },
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ScenarioRecord;

    #[test]
    fn a_check_run_names_each_failed_scenario_with_its_place_and_reason() {
        let mut run = RunRecord::for_test("r1");
        run.status = Status::Failed;
        run.passed = 1;
        run.failed = 1;
        let mut bad = ScenarioRecord::for_test("r1", 1, "failover", Status::Failed);
        bad.path = "pipelines/demo/failover.scn".into();
        bad.failed_line = Some(7);
        bad.reason = Some("backup | not ACTIVE".into());
        let good = ScenarioRecord::for_test("r1", 0, "smoke", Status::Passed);
        let repo = GithubRepo {
            owner: "o".into(),
            name: "n".into(),
        };
        let check = check_run(
            &run,
            &[(good, Vec::new()), (bad, Vec::new())],
            None,
            &repo,
            "abc",
            "lowtouch/p/e",
        );
        assert_eq!(check.conclusion, "failure");
        assert_eq!(check.title, "1 passed, 1 failed, 0 skipped");
        assert!(
            check
                .summary
                .contains("| failover | `pipelines/demo/failover.scn:7` | backup \\| not ACTIVE |"),
            "{}",
            check.summary
        );
        assert!(!check.summary.contains("| smoke |"));
    }

    /// A verdict of one regressed critical latency against 10 calm runs.
    fn regressed() -> crate::judge::Verdict {
        use crate::judge::declared::{Better, Declared, Unit};
        use crate::judge::{FeatureId, Features, Series, Stat};
        let id = FeatureId {
            series: Series {
                scope: "failover".into(),
                phase: "load".into(),
                source: "Backup".into(),
                name: "latency_us".into(),
            },
            stat: Stat::P99,
        };
        let run = |v: f64| {
            let mut f = Features::default();
            f.values.insert(id.clone(), v);
            f
        };
        let history: Vec<Features> = (0..10).map(|i| run(100.0 + (i % 3) as f64)).collect();
        let baseline: Vec<(&str, &Features)> = history.iter().map(|f| ("b", f)).collect();
        let declared = [(
            "latency_us".to_string(),
            Declared {
                unit: Unit::Us,
                better: Some(Better::Lower),
                critical: true,
                ..Declared::default()
            },
        )]
        .into();
        crate::judge::verdict::judge(&crate::judge::Case {
            run: &run(300.0),
            pooled: &[],
            baseline: &baseline,
            lineage: &[],
            declared: &declared,
            policy: &crate::judge::Policy::default(),
        })
    }

    #[test]
    fn statuses_and_check_runs_carry_the_judge_s_verdict() {
        let v = regressed();
        assert!(v.fails, "{}", v.headline());
        let mut run = RunRecord::for_test("r1");
        run.status = Status::Failed;
        run.passed = 6;
        run.judgement = Some(crate::record::Judgement {
            outcome: v.outcome,
            fails: v.fails,
            regressed: v.counts.regressed as u32,
            pooled: vec![],
            headline: v.headline(),
        });
        let text = description(&run);
        assert_eq!(
            text,
            "6 passed, 0 failed, 0 skipped; judge DIFFERENT, 1 regressed (run r1)"
        );
        run.id = "x".repeat(200);
        assert_eq!(description(&run).chars().count(), 140);
        let repo = GithubRepo {
            owner: "o".into(),
            name: "n".into(),
        };
        let check = check_run(&run, &[], Some(&v), &repo, "abc", "lowtouch/p/e");
        assert_eq!(check.conclusion, "failure");
        assert!(
            check.title.ends_with("; judge DIFFERENT"),
            "{}",
            check.title
        );
        assert!(
            check
                .summary
                .contains("| regressed | failover [load] Backup latency_us p99 |"),
            "{}",
            check.summary
        );
        assert!(check.summary.contains("noise units"), "{}", check.summary);
    }
}
