//! JUnit XML from a stored run (quick-junit): one testsuite per pipeline and environment,
//! one testcase per scenario. It stays within the Jenkins xunit schema (`junit-10.xsd`):
//! properties only on suites, and per testcase only `skipped`, `failure`, `error`,
//! `system-out` and `system-err`.
//!
//! A scenario run again (`retries:`) is one testcase: its failed attempts are
//! `flakyFailure` (it passed in the end) or `rerunFailure` (it never did) — the Maven
//! Surefire schema's elements, which Jenkins, GitLab and most JUnit readers take; they
//! appear only in a run that retried something.
//!
//! With a comparison (the previous release), every suite says what it was compared with,
//! how many scenarios changed how, each testcase's change, and the key metrics with their
//! change; each testcase's `system-out` opens with its change and the masked diff.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::record::{
    ScenarioKind, ScenarioRecord, ScenarioWithSteps, Status, StepRecord, StoredRun,
};

/// What a run is compared with in its report: the release's label (or `None`: no
/// previous release) and the comparison.
pub struct Compared<'a> {
    pub with: Option<&'a str>,
    pub comparison: Option<&'a crate::compare::Comparison>,
    /// The judge's verdict: suite properties `lowtouch.judge.*` and a suite of its own.
    pub verdict: Option<&'a crate::judge::Verdict>,
}

pub fn render(stored: &StoredRun) -> Result<String, quick_junit::SerializeError> {
    render_compared(
        stored,
        &Compared {
            with: None,
            comparison: None,
            verdict: None,
        },
    )
}

/// `lowtouch.metric.*` names: `p99 internal_latency_us` becomes `internal_latency_us.p99`.
fn metric_property(summary: &str) -> String {
    match summary.split_once(' ') {
        Some((stat, name)) => format!("lowtouch.metric.{name}.{stat}"),
        None => format!("lowtouch.metric.{summary}"),
    }
}

pub fn render_compared(
    stored: &StoredRun,
    compared: &Compared<'_>,
) -> Result<String, quick_junit::SerializeError> {
    let run = &stored.run;
    let mut report = Report::new("lowtouch");
    // No timestamp on <testsuites>: junit-10.xsd does not declare one there.
    report.set_time(Duration::from_millis(run.duration_ms));

    let mut suites: BTreeMap<(String, String), Vec<&ScenarioWithSteps>> = BTreeMap::new();
    for entry in &stored.scenarios {
        let sc = &entry.0;
        // A hook that passed is no test; one that failed is, so CI shows it, and so is
        // a crash's diagnostics with what it collected.
        if !sc.is_shown() {
            continue;
        }
        suites
            .entry((sc.pipeline.clone(), sc.environment.clone()))
            .or_default()
            .push(entry);
    }
    for ((pipeline, env), entries) in suites {
        let classname = format!("{pipeline}.{env}");
        let mut suite = TestSuite::new(classname.clone());
        suite.add_property(Property::new("lowtouch.run_id", run.id.as_str()));
        suite.add_property(Property::new("lowtouch.revision", run.revision.as_str()));
        suite.add_property(Property::new("lowtouch.pipeline", pipeline.as_str()));
        suite.add_property(Property::new("lowtouch.environment", env.as_str()));
        if let Some(commit) = run.config_commits.get(&env) {
            suite.add_property(Property::new("lowtouch.config_commit", commit.as_str()));
        }
        for (repo, commit) in &run.candidate {
            suite.add_property(Property::new(
                format!("lowtouch.candidate.{repo}"),
                commit.as_str(),
            ));
        }
        if !stored.artifacts.is_empty() {
            suite.add_property(Property::new(
                "lowtouch.artifacts",
                format!(
                    "{} (lowtouch report --run {} --artifacts)",
                    stored
                        .artifacts
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    run.id
                ),
            ));
        }
        suite.add_property(Property::new(
            "lowtouch.compared_with",
            compared.with.unwrap_or("none"),
        ));
        // This suite's changes by scenario name (a run may hold 100,000 of them).
        let changes: std::collections::HashMap<&str, &crate::compare::changes::ScenarioChange> =
            compared
                .comparison
                .map(|c| {
                    c.scenarios
                        .iter()
                        .filter(|s| s.pipeline == pipeline && s.environment == env)
                        .map(|s| (s.name.as_str(), s))
                        .collect()
                })
                .unwrap_or_default();
        let change_of = |name: &str| changes.get(name).copied();
        for change in crate::compare::Change::ALL {
            let n = match compared.comparison {
                Some(c) => c
                    .scenarios
                    .iter()
                    .filter(|s| s.pipeline == pipeline && s.environment == env)
                    .filter(|s| s.change == change)
                    .count(),
                // No release to compare with: every scenario is new.
                None if change == crate::compare::Change::New => entries
                    .iter()
                    .filter(|e| e.0.kind == ScenarioKind::Scenario && !e.0.retried)
                    .count(),
                None => 0,
            };
            suite.add_property(Property::new(
                format!("lowtouch.count.{}", change.as_str()),
                n.to_string(),
            ));
        }
        for (sc, _) in entries.iter().map(|e| (&e.0, &e.1)) {
            if sc.kind == ScenarioKind::Scenario && !sc.retried {
                let change = change_of(&sc.name).map_or("new", |c| c.change.as_str());
                suite.add_property(Property::new(
                    format!("lowtouch.change.{}", sc.name),
                    change,
                ));
            }
        }
        if let Some(c) = compared.comparison {
            for m in &c.metrics {
                let value = match (m.after, m.change_pct) {
                    (Some(a), Some(p)) => format!("{a:.1} ({p:+.1}%)"),
                    (Some(a), None) => format!("{a:.1}"),
                    (None, _) => "-".to_string(),
                };
                suite.add_property(Property::new(metric_property(&m.name), value));
            }
        }
        if let Some(first) = entries.first()
            && let Some(ts) = parse_time(&first.0.started_at)
        {
            suite.set_timestamp(ts);
        }
        let total: u64 = entries.iter().map(|e| e.0.duration_ms).sum();
        suite.set_time(Duration::from_millis(total));
        for standing in super::attempts::standing(entries.iter().copied()) {
            let (sc, steps) = (&standing.record.0, &standing.record.1);
            let mut case = test_case(sc, steps, &classname);
            if let Some(retry) = standing.skipped_retry {
                case.status.set_message(format!(
                    "{}; its retry was skipped{}",
                    message(sc),
                    retry
                        .reason
                        .as_deref()
                        .map_or(String::new(), |r| format!(": {r}"))
                ));
            }
            let reruns: Vec<quick_junit::TestRerun> = standing
                .reruns
                .iter()
                .map(|e| {
                    let mut r = quick_junit::TestRerun::new(NonSuccessKind::Failure);
                    r.set_message(message(&e.0));
                    r.set_type("scenario failure");
                    // Surefire's schema: the detail goes into `stackTrace`.
                    r.set_stack_trace(failing_step(&e.0, &e.1));
                    r
                })
                .collect();
            if !reruns.is_empty() {
                // Passed after failing: `flakyFailure`; failed every time: `rerunFailure`.
                case.status.add_reruns(reruns);
                case.status.set_rerun_kind(quick_junit::FlakyOrRerun::Rerun);
            }
            if sc.kind == ScenarioKind::Scenario {
                // The change first, then the masked diff, then the transcript.
                let head = match change_of(&sc.name) {
                    Some(c) => {
                        let mut head = format!(
                            "lowtouch: {} against {} (there: {})\n",
                            c.change.as_str(),
                            compared.with.unwrap_or("none"),
                            c.before.map_or("not run", |s| s.as_str())
                        );
                        for d in &c.steps {
                            let _ = writeln!(head, "--- line {}: {}", d.line, d.command);
                            head.push_str(&d.diff);
                        }
                        head
                    }
                    None => "lowtouch: new (no previous release to compare with)\n".to_string(),
                };
                case.set_system_out(format!("{head}\n{}", transcript(steps)));
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    if let Some(v) = compared.verdict {
        report.add_test_suite(judge_suite(run, v));
    }
    report.to_string().map(schema_valid)
}

/// quick-junit writes `skipped` on `<testsuites>` too, where `junit-10.xsd` does not
/// declare it (strict validators refuse the file); each `<testsuite>` keeps its own.
fn schema_valid(mut xml: String) -> String {
    let Some(open) = xml.find("<testsuites ") else {
        return xml;
    };
    let end = xml[open..].find('>').map_or(xml.len(), |e| open + e);
    if let Some(at) = xml[open..end].find(" skipped=\"").map(|a| open + a) {
        let value_end = xml[at + 10..end].find('"').map(|e| at + 10 + e + 1);
        if let Some(value_end) = value_end {
            xml.replace_range(at..value_end, "");
        }
    }
    xml
}

/// The judge's suite: its verdict as properties, and a testcase per feature that
/// regressed, changed, went missing or broke a limit — failed where the verdict fails the
/// run, passed with the warning in its output where the policy only warns.
fn judge_suite(run: &crate::record::RunRecord, v: &crate::judge::Verdict) -> TestSuite {
    use crate::judge::{Decision, Direction};
    let mut suite = TestSuite::new("lowtouch.judge");
    let c = &v.counts;
    for (name, value) in [
        ("lowtouch.judge.outcome", v.outcome.as_str().to_string()),
        ("lowtouch.judge.fails", v.fails.to_string()),
        ("lowtouch.judge.headline", v.headline()),
        ("lowtouch.judge.features", c.features.to_string()),
        ("lowtouch.judge.baseline_runs", v.baseline.len().to_string()),
        ("lowtouch.judge.pooled_runs", v.pooled.len().to_string()),
        ("lowtouch.judge.regressed", c.regressed.to_string()),
        ("lowtouch.judge.changed", c.changed.to_string()),
        ("lowtouch.judge.missing", c.missing.to_string()),
        ("lowtouch.judge.improved", c.improved.to_string()),
        ("lowtouch.judge.inconclusive", c.inconclusive.to_string()),
        ("lowtouch.judge.report_only", c.report_only.to_string()),
        ("lowtouch.judge.limits", c.limits.to_string()),
    ] {
        suite.add_property(Property::new(name, value));
    }
    suite.add_property(Property::new("lowtouch.run_id", run.id.as_str()));
    for j in &v.findings {
        let counted = j.limit.is_some()
            || (!j.report_only
                && (j.decision == Decision::Missing
                    || (j.decision == Decision::Different
                        && j.direction != Some(Direction::Improved))));
        if !counted {
            continue;
        }
        let fails_run = j.limit.is_some()
            || (v.fails && j.critical && j.direction == Some(Direction::Regressed))
            || (v.fails && v.policy.fail_on_any);
        let status = if fails_run {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("regression");
            s.set_message(j.summary());
            s.set_description(j.explanation());
            s
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(j.feature.to_string(), status);
        case.set_classname("lowtouch.judge");
        if !fails_run {
            case.set_system_out(format!(
                "lowtouch judge: warning: {}\n{}",
                j.summary(),
                j.explanation()
            ));
        }
        suite.add_test_case(case);
    }
    suite
}

fn test_case(sc: &ScenarioRecord, steps: &[StepRecord], classname: &str) -> TestCase {
    let status = match sc.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Skipped => {
            let mut s = TestCaseStatus::skipped();
            if let Some(r) = &sc.reason {
                s.set_message(r.as_str());
            }
            s
        }
        Status::Failed => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("scenario failure");
            s.set_message(message(sc));
            s.set_description(failing_step(sc, steps));
            s
        }
        Status::Interrupted | Status::Crashed | Status::Running => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_type(sc.status.as_str());
            s.set_message(message(sc));
            s.set_description(failing_step(sc, steps));
            s
        }
    };
    let name = match sc.kind {
        ScenarioKind::Scenario => sc.name.clone(),
        ScenarioKind::Hook => format!("[{}]", sc.name),
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(classname);
    case.set_time(Duration::from_millis(sc.duration_ms));
    case.set_system_out(transcript(steps));
    case
}

fn message(sc: &ScenarioRecord) -> String {
    let reason = sc
        .reason
        .clone()
        .unwrap_or_else(|| sc.status.as_str().to_string());
    match sc.failed_line {
        Some(line) => format!("{}:{line}: {reason}", sc.path),
        None => reason,
    }
}

/// The failing step: its command and what it printed.
fn failing_step(sc: &ScenarioRecord, steps: &[StepRecord]) -> String {
    let step = steps
        .iter()
        .rev()
        .find(|s| s.status != 0 || s.failure.is_some())
        .or_else(|| steps.iter().rev().find(|s| Some(s.line) == sc.failed_line));
    let mut out = String::new();
    if let Some(s) = step {
        let _ = writeln!(out, "{}:{}: {}", sc.path, s.line, s.command_line());
        let _ = writeln!(out, "status: {}", s.status);
        if let Some(f) = &s.failure {
            let _ = writeln!(out, "failure: {f}");
        }
        push_stream(&mut out, "stdout", &s.stdout, s.stdout_dropped);
        push_stream(&mut out, "stderr", &s.stderr, s.stderr_dropped);
    } else if let Some(r) = &sc.reason {
        out.push_str(r);
    }
    out
}

fn push_stream(out: &mut String, name: &str, text: &str, dropped: u64) {
    if text.is_empty() && dropped == 0 {
        return;
    }
    let _ = writeln!(out, "--- {name}");
    out.push_str(text);
    if !text.ends_with('\n') && !text.is_empty() {
        out.push('\n');
    }
    if dropped > 0 {
        let _ = writeln!(out, "[{dropped} more bytes not kept]");
    }
}

/// Every step with its status and output: the scenario's log as a person reads it.
pub fn transcript(steps: &[StepRecord]) -> String {
    let mut out = String::new();
    for s in steps {
        let mark = if s.status == 0 && s.failure.is_none() {
            "ok"
        } else {
            "FAILED"
        };
        let _ = writeln!(
            out,
            "[{:>4}] line {}: {} -> {mark} (status {}, {:.1} ms)",
            s.seq,
            s.line,
            s.command_line(),
            s.status,
            s.duration_us as f64 / 1000.0
        );
        for line in s.stdout.lines() {
            let _ = writeln!(out, "       | {line}");
        }
        if s.stdout_dropped > 0 {
            let _ = writeln!(out, "       | [{} more bytes not kept]", s.stdout_dropped);
        }
        if s.status != 0 || s.failure.is_some() {
            for line in s.stderr.lines() {
                let _ = writeln!(out, "       ! {line}");
            }
        }
    }
    out
}

fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(attempt: u32, status: Status, retried: bool, reason: &str) -> ScenarioWithSteps {
        let stdout = format!("attempt {attempt} saw price 100\n");
        let step = StepRecord {
            status: 1,
            ..StepRecord::for_test("r", attempt, 1, "quote", &stdout)
        };
        (
            ScenarioRecord {
                reason: Some(reason.into()),
                failed_line: Some(1),
                attempt,
                retried,
                ..ScenarioRecord::for_test("r", attempt, "lucky", status)
            },
            // A skipped attempt ran nothing.
            std::iter::once(step)
                .filter(|_| status != Status::Skipped)
                .collect(),
        )
    }

    #[test]
    fn testsuites_carries_no_skipped_attribute_and_each_testsuite_keeps_its_own() {
        let xml = "<?xml?>\n<testsuites name=\"l\" tests=\"1\" skipped=\"3\" failures=\"0\">\n<testsuite name=\"s\" skipped=\"3\">";
        assert_eq!(
            schema_valid(xml.to_string()),
            "<?xml?>\n<testsuites name=\"l\" tests=\"1\" failures=\"0\">\n<testsuite name=\"s\" skipped=\"3\">"
        );
        assert_eq!(schema_valid("<a/>".into()), "<a/>");
    }

    #[test]
    fn a_skipped_retry_keeps_the_failure_before_it() {
        let stored = StoredRun {
            run: crate::record::RunRecord::for_test("r"),
            scenarios: vec![
                attempt(0, Status::Failed, true, "first: price 100 != 101"),
                attempt(1, Status::Failed, true, "second: price 100 != 101"),
                attempt(2, Status::Skipped, false, "the run was interrupted"),
            ],
            artifacts: vec![],
        };
        let xml = render(&stored).unwrap();
        assert!(!xml.contains("<skipped"), "{xml}");
        assert!(
            xml.contains(
                "second: price 100 != 101; its retry was skipped: the run was interrupted"
            ),
            "{xml}"
        );
        // Its transcript is the failed attempt's, not the skipped one's (empty).
        assert!(xml.contains("attempt 1 saw price 100"), "{xml}");
        // The attempt before it is its rerun.
        assert_eq!(xml.matches("<rerunFailure").count(), 1, "{xml}");
        assert!(xml.contains("first: price 100 != 101"), "{xml}");
    }
}
