//! A loaded pipeline: its scenario files parsed, its hooks parsed, its limits resolved.
//! Checking names against the environment happens in [`super::plan`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::{EntrySpec, PipelineFile};
use crate::scenario::duration::parse_duration;
use crate::scenario::{self, Diagnostic, Scenario};
use crate::source::{Finding, KeyPlace, SourceFile, locate_children, locate_key, locate_value};

#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    /// The pipeline file; `None` for an ad-hoc `run --scenario`.
    pub file: Option<SourceFile>,
    pub description: Option<String>,
    pub default: bool,
    pub environment: String,
    pub tool_dirs: Vec<PathBuf>,
    /// The deploy stage: brings the candidate onto the environment before `setup`.
    pub deploy: Vec<HookLine>,
    /// Overrides of the environment's variables, as written (candidate variables not yet
    /// filled in: see [`Pipeline::variable_overrides`]).
    pub variables: std::collections::BTreeMap<String, String>,
    /// Where each of `variables` is written (line, column of its key), for findings.
    pub variable_places: std::collections::HashMap<String, KeyPlace>,
    pub setup: Vec<HookLine>,
    pub teardown: Vec<HookLine>,
    pub before_each: Vec<HookLine>,
    pub after_each: Vec<HookLine>,
    /// Scenarios in order; the scenarios of one group run at the same time.
    pub groups: Vec<Vec<ScenarioFile>>,
    /// The smoke stage a rollout runs.
    pub smoke: Vec<ScenarioFile>,
    /// Environments rolled out before the scenarios run.
    pub rollout: Vec<String>,
    /// The repositories that start it (watched by `lowtouch serve`).
    pub repositories: Vec<crate::watch::repository::Repository>,
    /// When `lowtouch serve` starts it by the clock.
    pub schedule: Vec<Schedule>,
    /// Whether `lowtouch serve` keeps it running while nothing new arrives.
    pub continuous: bool,
    /// When the server starts nothing.
    pub maintenance: Vec<Window>,
    /// Scenarios the server runs on an event while the environment is idle.
    pub on_event: Vec<OnEvent>,
    /// What a crash no step caused does to the run (`unexpected_crash:`).
    pub unexpected_crash: super::model::CrashPolicy,
    /// Made by [`Pipeline::event_stage`]: `#{event.*}` is set.
    pub event_driven: bool,
    /// Masks for comparing runs (`lowtouch diff`, JUnit), besides the defaults.
    pub masks: Vec<crate::compare::Mask>,
    /// How the judge decides for its runs (`judge:`).
    pub judge: crate::judge::Policy,
    pub step_timeout: Duration,
    pub scenario_timeout: Duration,
    pub deploy_timeout: Duration,
    pub step_budget: u64,
    pub output_limit: usize,
}

/// Why a `schedule:` or `maintenance:` pattern is not a cron pattern. Always the person's
/// pipeline file: the caller places it at the pattern's `file:line:col`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ScheduleError(#[from] croner::errors::CronError);

impl ScheduleError {
    /// Always: a pattern is what a person wrote.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

/// A cron pattern, parsed.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub pattern: String,
    pub cron: croner::Cron,
}

impl Schedule {
    /// Five fields, or six with seconds first; `@daily` and friends.
    pub fn parse(pattern: &str) -> Result<Schedule, ScheduleError> {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        parser
            .parse(pattern)
            .map(|cron| Schedule {
                pattern: pattern.to_string(),
                cron,
            })
            .map_err(ScheduleError)
    }

    /// The next time it fires after `after`.
    pub fn next_after(
        &self,
        after: &chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

/// A maintenance window: open from each firing of `start` for `duration`.
#[derive(Debug, Clone)]
pub struct Window {
    pub start: Schedule,
    pub duration: Duration,
}

impl Window {
    /// Whether the window is open at `now`: its latest start is less than `duration` ago.
    pub fn is_open(&self, now: &chrono::DateTime<chrono::Utc>) -> bool {
        let Ok(started) = self.start.cron.find_previous_occurrence(now, true) else {
            return false;
        };
        let Ok(length) = chrono::Duration::from_std(self.duration) else {
            return true;
        };
        *now < started + length
    }
}

/// An event-driven scenario: when an event matching `pattern` (over `SOURCE NAME VALUE`)
/// arrives while no run uses the environment, `lowtouch serve` runs `scenario`, with the
/// event in `#{event.source}`, `#{event.name}`, `#{event.value}`.
#[derive(Debug)]
pub struct OnEvent {
    pub pattern: regex::Regex,
    pub scenario: ScenarioFile,
}

/// One statement of a hook (`setup`, `before_each`…), parsed on its own.
#[derive(Debug)]
pub struct HookLine {
    pub text: String,
    pub ast: Scenario,
    /// Where it is written, for findings.
    pub line: u32,
    pub col: u32,
}

#[derive(Debug)]
pub struct ScenarioFile {
    /// The file's stem: the JUnit testcase name.
    pub name: String,
    pub file: SourceFile,
    pub ast: Scenario,
    /// What the parser found wrong; the statements it could parse are in `ast`, so a
    /// plan reports these together with what checking the rest finds.
    pub parse_errors: Vec<scenario::Diagnostic>,
    pub timeout: Duration,
    /// Attempts after a failed one (`retries:`).
    pub retries: u32,
}

/// Checks a pipeline's `variables:`: interpolations parse, and every candidate variable
/// (`#{NAME.field}`) names a repository or role the pipeline declares.
fn check_variables(
    file: &SourceFile,
    variables: &std::collections::BTreeMap<String, String>,
    places: &std::collections::HashMap<String, KeyPlace>,
    repositories: &[crate::watch::Repository],
) -> Vec<Finding> {
    let names = crate::watch::candidate::variable_names(repositories);
    let mut findings = Vec::new();
    for (name, value) in variables {
        let span = value_span(file, places, name, value);
        match crate::environment::template::Template::parse(value) {
            Err(e) => findings.push(Finding::new(
                file,
                Diagnostic::new(span, format!("variable `{name}`: bad interpolation: {e:?}")),
            )),
            Ok(t) => {
                for v in t.vars().filter(|v| v.contains('.')) {
                    if !names.iter().any(|n| n == v) {
                        let hint = match crate::scenario::diagnostic::did_you_mean(
                            v,
                            names.iter().map(String::as_str),
                        ) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None if names.is_empty() => {
                                "declare the repository under `repositories:`".to_string()
                            }
                            None => format!("the candidate defines: {}", names.join(", ")),
                        };
                        findings.push(
                            Finding::new(
                                file,
                                Diagnostic::new(span, format!("variable `{name}` uses `#{{{v}}}`, which no repository of this pipeline defines")),
                            )
                            .help(hint),
                        );
                    }
                }
            }
        }
    }
    findings
}

/// Where the value of variable `name` is written: on its key's line when it is found
/// there, else its key (looking no further, and placing by span rather than by line and
/// column, so that placing every variable stays linear).
fn value_span(
    file: &SourceFile,
    places: &std::collections::HashMap<String, KeyPlace>,
    name: &str,
    value: &str,
) -> crate::scenario::span::Span {
    let Some(place) = places.get(name) else {
        return file.span_at(1, 1, value.len());
    };
    let line = place.line_text(&file.text);
    match line.find(value) {
        Some(at) if !value.is_empty() => crate::scenario::span::Span {
            offset: place.line_start + at,
            len: value.len(),
            line: place.line,
            col: line[..at].chars().count() as u32 + 1,
        },
        _ => place.key_span(name.len()),
    }
}

pub const DEFAULT_DEPLOY_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;

impl Pipeline {
    /// Every pipeline file under `<project>/pipelines`, sorted by path.
    pub fn discover(project: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(project.join("pipelines"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        files
    }

    pub fn load(path: &Path) -> Result<Pipeline, Vec<Finding>> {
        let file = SourceFile::read(path).map_err(|f| vec![f])?;
        Pipeline::parse(file)
    }

    /// Parses and checks a pipeline whose text is already read (the fuzzer's entry point).
    /// `file.path` still places it: the scenarios and tools it names are read relative to
    /// its folder, and its name defaults to the file's stem.
    pub fn parse(file: SourceFile) -> Result<Pipeline, Vec<Finding>> {
        let path_buf = file.path.clone();
        let path = path_buf.as_path();
        let spec: PipelineFile =
            serde_yaml::from_str(&file.text).map_err(|e| vec![Finding::yaml(&file, &e)])?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut findings = Vec::new();
        let at = |key: &[&str], msg: String| {
            let (line, col) = locate_key(&file.text, key).unwrap_or((1, 1));
            Finding::at(&file, line, col, key.last().map_or(1, |k| k.len()), msg)
        };
        let mut duration = |key: &str,
                            value: Option<&str>,
                            default: Duration,
                            findings: &mut Vec<Finding>| match value {
            None => default,
            Some(v) => parse_duration(v).unwrap_or_else(|| {
                findings.push(
                    at(&[key], format!("`{v}` is not a duration"))
                        .help("write it as 500ms, 5s or 2m; a bare number is seconds"),
                );
                default
            }),
        };
        let step_timeout = duration(
            "step_timeout",
            spec.step_timeout.as_deref(),
            DEFAULT_STEP_TIMEOUT,
            &mut findings,
        );
        let scenario_timeout = duration(
            "scenario_timeout",
            spec.scenario_timeout.as_deref(),
            DEFAULT_SCENARIO_TIMEOUT,
            &mut findings,
        );
        let deploy_timeout = duration(
            "deploy_timeout",
            spec.deploy_timeout.as_deref(),
            DEFAULT_DEPLOY_TIMEOUT,
            &mut findings,
        );

        let hook = |key: &str, lines: &[String], findings: &mut Vec<Finding>| -> Vec<HookLine> {
            let mut out = Vec::new();
            for text in lines {
                let (line, col) = locate_value(&file.text, &[key], text).unwrap_or((1, 1));
                let (ast, diags) = scenario::parse(text);
                if let Some(d) = diags.first() {
                    let mut f = Finding::at(
                        &file,
                        line,
                        col + d.span.col - 1,
                        d.span.len,
                        d.message.clone(),
                    );
                    f.diagnostic.help = d.help.clone();
                    findings.push(f);
                    continue;
                }
                out.push(HookLine {
                    text: text.clone(),
                    ast,
                    line,
                    col,
                });
            }
            out
        };
        let deploy = hook("deploy", &spec.deploy, &mut findings);
        let setup = hook("setup", &spec.setup, &mut findings);
        let teardown = hook("teardown", &spec.teardown, &mut findings);
        let before_each = hook("before_each", &spec.before_each, &mut findings);
        let after_each = hook("after_each", &spec.after_each, &mut findings);

        let mut groups = Vec::new();
        let list_cursor = |key: &str| {
            let line = locate_key(&file.text, &[key]).map_or(1, |(line, _)| line);
            crate::source::Cursor::at_line(&file.text, line)
        };
        let mut entries = list_cursor("scenarios");
        for entry in &spec.scenarios {
            let mut group = Vec::new();
            collect(
                entry,
                &dir,
                &file,
                &mut entries,
                scenario_timeout,
                &mut group,
                &mut findings,
                &mut duration,
                false,
            );
            if !group.is_empty() {
                groups.push(group);
            }
        }
        let mut smoke = Vec::new();
        let mut entries = list_cursor("smoke");
        for entry in &spec.smoke {
            collect(
                entry,
                &dir,
                &file,
                &mut entries,
                scenario_timeout,
                &mut smoke,
                &mut findings,
                &mut duration,
                true,
            );
        }
        if !spec.rollout.is_empty() && smoke.is_empty() {
            findings.push(
                at(
                    &["rollout"],
                    "a pipeline that rolls out needs a smoke stage".into(),
                )
                .help("list the scenarios that judge a new config under `smoke:`"),
            );
        }
        let mut schedule = Vec::new();
        for pattern in &spec.schedule {
            match Schedule::parse(pattern) {
                Ok(s) => schedule.push(s),
                Err(e) => {
                    let (line, col) =
                        locate_value(&file.text, &["schedule"], pattern).unwrap_or((1, 1));
                    findings.push(
                        Finding::at(&file, line, col, pattern.len(), format!("`{pattern}` is not a cron pattern: {e}"))
                            .help("five fields (minute hour day month weekday), e.g. \"0 2 * * *\" for 02:00 every night"),
                    );
                }
            }
        }
        let mut maintenance = Vec::new();
        for w in &spec.maintenance {
            let start = Schedule::parse(&w.start);
            let duration = parse_duration(&w.duration);
            match (start, duration) {
                (Ok(start), Some(duration)) => maintenance.push(Window { start, duration }),
                (Err(e), _) => {
                    let (line, col) =
                        locate_value(&file.text, &["maintenance"], &w.start).unwrap_or((1, 1));
                    findings.push(Finding::at(
                        &file,
                        line,
                        col,
                        w.start.len(),
                        format!("`{}` is not a cron pattern: {e}", w.start),
                    ));
                }
                (_, None) => {
                    let (line, col) =
                        locate_value(&file.text, &["maintenance"], &w.duration).unwrap_or((1, 1));
                    findings.push(
                        Finding::at(
                            &file,
                            line,
                            col,
                            w.duration.len(),
                            format!("`{}` is not a duration", w.duration),
                        )
                        .help("write it as 30m, 8h; a bare number is seconds"),
                    );
                }
            }
        }
        let mut masks = Vec::new();
        for m in &spec.masks {
            match regex::Regex::new(&m.pattern) {
                Ok(pattern) => masks.push(crate::compare::Mask {
                    pattern,
                    replace: m.replace.clone(),
                }),
                Err(err) => {
                    let (line, col) =
                        locate_value(&file.text, &["masks"], &m.pattern).unwrap_or((1, 1));
                    findings.push(Finding::at(
                        &file,
                        line,
                        col,
                        m.pattern.len(),
                        format!("`masks`: bad pattern: {err}"),
                    ));
                }
            }
        }
        let mut judge = crate::judge::Policy::default();
        if let Some(j) = &spec.judge {
            match j.fail_on.as_deref() {
                None | Some("critical") => {}
                Some("any") => judge.fail_on_any = true,
                Some("none") => judge.fail_on_critical = false,
                Some(other) => findings.push(at(
                    &["judge", "fail_on"],
                    format!("`judge.fail_on` is `critical`, `any` or `none`, not `{other}`"),
                )),
            }
            if let Some(n) = j.baseline_runs {
                judge.baseline_runs = n;
            }
            if let Some(n) = j.min_baseline {
                judge.min_baseline = n;
            }
            if let Some(fails) = j.host_metrics_fail {
                judge.machine_fails = fails;
            }
            if let Some(n) = j.drift_candidates {
                judge.drift_candidates = n;
            }
            if judge.min_baseline == 0 || judge.baseline_runs < judge.min_baseline {
                findings.push(at(
                    &["judge"],
                    format!(
                        "`judge`: min_baseline must be at least 1 and at most baseline_runs ({} and {})",
                        judge.min_baseline, judge.baseline_runs
                    ),
                ));
            }
        }
        let mut on_event = Vec::new();
        for e in &spec.on_event {
            let (line, col) = locate_value(&file.text, &["on_event"], &e.pattern).unwrap_or((1, 1));
            let pattern = match regex::Regex::new(&e.pattern) {
                Ok(r) => r,
                Err(err) => {
                    findings.push(Finding::at(
                        &file,
                        line,
                        col,
                        e.pattern.len(),
                        format!("`match`: bad pattern: {err}"),
                    ));
                    continue;
                }
            };
            let path = dir.join(&e.run);
            if !path.is_file() {
                let (line, col) = locate_value(&file.text, &["on_event"], &e.run).unwrap_or((1, 1));
                findings.push(
                    Finding::at(
                        &file,
                        line,
                        col,
                        e.run.len(),
                        format!("scenario `{}` not found", e.run),
                    )
                    .help("`run` is relative to the pipeline file"),
                );
                continue;
            }
            match load_scenario(&path, scenario_timeout) {
                Ok(scenario) => on_event.push(OnEvent { pattern, scenario }),
                Err(mut f) => findings.append(&mut f),
            }
        }
        let (repositories, mut repo_findings) =
            crate::watch::repository::check(&file, &dir, &spec.repositories);
        findings.append(&mut repo_findings);
        let variables: std::collections::BTreeMap<String, String> =
            spec.variables.into_iter().map(|(k, v)| (k, v.0)).collect();
        let variable_places = locate_children(&file.text, &["variables"]);
        findings.extend(check_variables(
            &file,
            &variables,
            &variable_places,
            &repositories,
        ));
        if !deploy.is_empty() && repositories.is_empty() {
            findings.push(
                at(
                    &["deploy"],
                    "a deploy stage needs a candidate to deploy".into(),
                )
                .help("declare the repositories it builds from under `repositories:`"),
            );
        }
        if spec.scenarios.is_empty() {
            findings.push(at(&["scenarios"], "the pipeline has no scenarios".into()));
        }
        let name = spec.name.unwrap_or_else(|| {
            path.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("pipeline")
                .to_string()
        });
        if !findings.is_empty() {
            return Err(findings);
        }
        Ok(Pipeline {
            name,
            description: spec.description,
            default: spec.default,
            environment: spec.environment,
            tool_dirs: spec.tools.iter().map(|t| dir.join(t)).collect(),
            deploy,
            variables,
            variable_places,
            setup,
            teardown,
            before_each,
            after_each,
            groups,
            smoke,
            rollout: spec.rollout,
            repositories,
            schedule,
            continuous: spec.continuous,
            maintenance,
            on_event,
            unexpected_crash: spec.unexpected_crash,
            event_driven: false,
            masks,
            judge,
            step_timeout,
            scenario_timeout,
            deploy_timeout,
            step_budget: spec
                .step_budget
                .unwrap_or(scenario::interpreter::DEFAULT_STEP_BUDGET),
            output_limit: spec.output_limit.unwrap_or(DEFAULT_OUTPUT_LIMIT),
            file: Some(file),
        })
    }

    /// A one-scenario pipeline for `lowtouch run --scenario FILE --env NAME`.
    pub fn adhoc(scenario_path: &Path, environment: &str) -> Result<Pipeline, Vec<Finding>> {
        let scenario = load_scenario(scenario_path, DEFAULT_SCENARIO_TIMEOUT)?;
        Ok(Pipeline {
            name: "scenario".into(),
            file: None,
            description: None,
            default: false,
            environment: environment.to_string(),
            tool_dirs: Vec::new(),
            deploy: Vec::new(),
            variables: Default::default(),
            variable_places: Default::default(),
            setup: Vec::new(),
            teardown: Vec::new(),
            before_each: Vec::new(),
            after_each: Vec::new(),
            groups: vec![vec![scenario]],
            smoke: Vec::new(),
            rollout: Vec::new(),
            repositories: Vec::new(),
            schedule: Vec::new(),
            continuous: false,
            maintenance: Vec::new(),
            on_event: Vec::new(),
            unexpected_crash: super::model::CrashPolicy::default(),
            event_driven: false,
            masks: Vec::new(),
            judge: crate::judge::Policy::default(),
            step_timeout: DEFAULT_STEP_TIMEOUT,
            scenario_timeout: DEFAULT_SCENARIO_TIMEOUT,
            deploy_timeout: DEFAULT_DEPLOY_TIMEOUT,
            step_budget: scenario::interpreter::DEFAULT_STEP_BUDGET,
            output_limit: DEFAULT_OUTPUT_LIMIT,
        })
    }

    /// The pipeline's `variables:` as `--set`-style overrides, the candidate's variables
    /// filled in. Without a candidate (`lowtouch check`), a candidate variable stands as
    /// `<NAME.field>`, so the names can still be checked against the environment.
    pub fn variable_overrides(
        &self,
        candidate: Option<&crate::watch::Candidate>,
    ) -> Vec<crate::environment::Override> {
        let known = candidate.map(|c| c.vars()).unwrap_or_default();
        self.variables
            .iter()
            .map(|(name, value)| {
                let filled = match crate::environment::template::Template::parse(value) {
                    Ok(t) => t.fill(|v| {
                        v.contains('.')
                            .then(|| known.get(v).cloned().unwrap_or_else(|| format!("<{v}>")))
                    }),
                    Err(_) => value.clone(),
                };
                let place =
                    self.file
                        .as_ref()
                        .zip(self.variable_places.get(name))
                        .map(|(file, p)| crate::environment::OverridePlace {
                            file: file.clone(),
                            span: p.key_span(name.len()),
                        });
                crate::environment::Override {
                    name: name.clone(),
                    value: filled,
                    place,
                }
            })
            .collect()
    }

    /// Every scenario the pipeline names: its groups, its smoke stage, its event-driven ones.
    pub fn scenarios(&self) -> impl Iterator<Item = &ScenarioFile> {
        self.groups
            .iter()
            .flatten()
            .chain(self.smoke.iter())
            .chain(self.on_event.iter().map(|e| &e.scenario))
    }

    /// The pipeline as its `index`-th event-driven scenario alone: no hooks, no deploy
    /// (it looks at the environment as it is; it starts nothing).
    pub fn event_stage(mut self, index: usize) -> Option<Pipeline> {
        if index >= self.on_event.len() {
            return None;
        }
        let chosen = self.on_event.remove(index);
        self.groups = vec![vec![chosen.scenario]];
        self.on_event.clear();
        self.smoke.clear();
        self.rollout.clear();
        self.deploy.clear();
        self.setup.clear();
        self.teardown.clear();
        self.before_each.clear();
        self.after_each.clear();
        // Its scenarios may still use the event's variables when checked.
        self.event_driven = true;
        Some(self)
    }

    /// The maintenance window open at `now`, if one is.
    pub fn in_maintenance(&self, now: &chrono::DateTime<chrono::Utc>) -> Option<&Window> {
        self.maintenance.iter().find(|w| w.is_open(now))
    }

    /// This pipeline's smoke stage, as a pipeline of its own against `environment`.
    pub fn smoke_stage(mut self, environment: &str) -> Pipeline {
        self.environment = environment.to_string();
        self.groups = std::mem::take(&mut self.smoke)
            .into_iter()
            .map(|s| vec![s])
            .collect();
        self.rollout.clear();
        self
    }
}

/// Parses a duration field, recording a finding (and using the default) when it is bad.
type DurationParser<'a> =
    dyn FnMut(&str, Option<&str>, Duration, &mut Vec<Finding>) -> Duration + 'a;

#[expect(
    clippy::too_many_arguments,
    reason = "a recursive walk sharing the loader's state"
)]
fn collect(
    entry: &EntrySpec,
    dir: &Path,
    file: &SourceFile,
    entries: &mut crate::source::Cursor<'_>,
    default_timeout: Duration,
    group: &mut Vec<ScenarioFile>,
    findings: &mut Vec<Finding>,
    duration: &mut DurationParser<'_>,
    nested: bool,
) {
    let (path, timeout, parallel, retries) = match entry {
        EntrySpec::Path(p) => (Some(p.as_str()), None, None, 0),
        EntrySpec::Detailed(d) => (
            d.path.as_deref(),
            d.timeout.as_deref(),
            d.parallel.as_ref(),
            d.retries.unwrap_or(0),
        ),
    };
    let timeout = duration("scenarios", timeout, default_timeout, findings);
    if nested && retries > 0 {
        let (line, col) = locate_key(&file.text, &["scenarios"]).unwrap_or((1, 1));
        findings.push(
            Finding::at(
                file,
                line,
                col,
                9,
                "`retries` applies to a scenario on its own, not inside `parallel`",
            )
            .help("give the scenario its own entry to retry it"),
        );
    }
    match (path, parallel) {
        (Some(p), None) => {
            let full = dir.join(p);
            if !full.is_file() {
                // The file itself is missing: point at the entry in the pipeline, found
                // after the entries before it.
                let span = entries.find(p).unwrap_or_else(|| {
                    let (line, col) = locate_value(&file.text, &["scenarios"], p).unwrap_or((1, 1));
                    file.span_at(line, col, p.len())
                });
                findings.push(
                    Finding::new(
                        file,
                        Diagnostic::new(span, format!("scenario file `{p}` not found")),
                    )
                    .help(format!("paths are relative to {}", dir.display())),
                );
                return;
            }
            // Anything else wrong with it (unreadable, not UTF-8, too large) is said as is.
            match load_scenario(&full, timeout) {
                Ok(s) => group.push(ScenarioFile { retries, ..s }),
                Err(mut fs) => findings.append(&mut fs),
            }
        }
        (None, Some(items)) if !nested => {
            for item in items {
                collect(
                    item, dir, file, entries, timeout, group, findings, duration, true,
                );
            }
        }
        _ => {
            let (line, col) = locate_key(&file.text, &["scenarios"]).unwrap_or((1, 1));
            findings.push(Finding::at(
                file,
                line,
                col,
                9,
                "each scenario entry needs `path`, or (at the top level) `parallel`",
            ));
        }
    }
}

fn load_scenario(path: &Path, timeout: Duration) -> Result<ScenarioFile, Vec<Finding>> {
    let file = SourceFile::read(path).map_err(|f| vec![f])?;
    let (ast, parse_errors) = scenario::parse(&file.text);
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    Ok(ScenarioFile {
        name,
        file,
        ast,
        parse_errors,
        timeout,
        retries: 0,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_maintenance_window_is_open_from_its_start_for_its_duration() {
        let w = Window {
            start: Schedule::parse("0 22 * * 6").unwrap(),
            duration: Duration::from_secs(8 * 3600),
        };
        // 2026-11-28 is a Saturday.
        let at = |d, h, m| chrono::Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        assert!(!w.is_open(&at(28, 21, 59)));
        assert!(w.is_open(&at(28, 22, 0)));
        assert!(w.is_open(&at(29, 5, 59)));
        assert!(!w.is_open(&at(29, 6, 1)));
        assert!(!w.is_open(&at(27, 23, 0)));
    }

    #[test]
    fn schedules_take_five_or_six_fields() {
        assert!(Schedule::parse("0 2 * * *").is_ok());
        assert!(Schedule::parse("*/5 * * * * *").is_ok());
        let bad = Schedule::parse("every night").unwrap_err();
        assert!(bad.is_bad_input());
    }
}
