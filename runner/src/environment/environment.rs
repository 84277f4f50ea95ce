//! A loaded, checked environment: its variables, components and aliases, ready to use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use super::error::EnvironmentError;
use super::model::{AliasSpec, ComponentSpec, DaemonSpec, EnvironmentFile};
use super::template::Template;
use crate::scenario::builtin::{Awaited, WaitFor};
use crate::scenario::diagnostic::did_you_mean;
use crate::scenario::duration::parse_duration;
use crate::scenario::{self, Scenario};
use crate::source::{Finding, SourceFile, locate_key, locate_value};

/// A value for one of an environment's variables given from outside its file.
#[derive(Debug, Clone)]
pub struct Override {
    pub name: String,
    pub value: String,
    /// Where it is written: a pipeline's `variables:` key; `None` for `--set`.
    pub place: Option<OverridePlace>,
}

/// The file of an override and the span of its name there.
#[derive(Debug, Clone)]
pub struct OverridePlace {
    pub file: SourceFile,
    pub span: crate::scenario::span::Span,
}

/// Names for a help line: the first few, then how many in all, so a finding stays short
/// whatever the environment holds.
fn list_names<'a>(names: impl ExactSizeIterator<Item = &'a String>) -> String {
    const SHOWN: usize = 20;
    let total = names.len();
    let mut list: Vec<&str> = names.take(SHOWN).map(String::as_str).collect();
    let more = format!("… ({total} in all)");
    if total > SHOWN {
        list.push(&more);
    }
    list.join(", ")
}

/// Variables every environment string may use besides the environment's own.
/// lowtouch's own credentials: never handed to a step, a component or a plugin (a deploy
/// stage builds candidate code, whose build scripts run with the step's environment), and
/// masked if their values show up in output anyway.
pub const OWN_CREDENTIALS: &[&str] = &[
    "GITHUB_TOKEN",
    "LOWTOUCH_GIT_TOKEN",
    "LOWTOUCH_WEBHOOK_SECRET",
    "LOWTOUCH_GITHUB_APP_KEY",
    "LOWTOUCH_DAEMON_SECRET",
];

pub const BUILTIN_VARS: &[&str] = &["lowtouch", "project_dir", "env", "env_dir", "run_id"];
/// Variables scenarios may use besides the environment's own (the run's context).
pub const CONTEXT_VARS: &[&str] = &[
    "lowtouch",
    "project_dir",
    "env",
    "env_dir",
    "run_id",
    "scenario",
    "pipeline",
];

#[derive(Debug)]
pub struct Environment {
    pub name: String,
    pub file: SourceFile,
    /// The project the environment belongs to (the parent of `environments/`).
    pub project: PathBuf,
    pub description: Option<String>,
    pub variables: BTreeMap<String, String>,
    pub components: BTreeMap<String, Component>,
    pub aliases: BTreeMap<String, Alias>,
    pub templates: Vec<TemplateFile>,
    pub data: Vec<DataSet>,
    pub rollout_group: u32,
    pub secrets: BTreeMap<String, Secret>,
    pub daemons: BTreeMap<String, Daemon>,
    /// Post-conditions of steps (data, so conditions learned later join them).
    pub conditions: Vec<Condition>,
    /// What the environment declares about its metrics, by name (`metrics:`).
    pub metrics: BTreeMap<String, crate::judge::declared::Declared>,
    /// What every scenario starts from (`steady_state:`).
    pub steady_state: SteadyState,
}

/// What a scenario starts from: these components up (started if down, waited for until
/// ready), then these conditions holding.
#[derive(Debug, Default, Clone)]
pub struct SteadyState {
    pub components: Vec<String>,
    /// `wait_for` arguments, as written.
    pub conditions: Vec<String>,
    /// Where `steady_state:` is written (its steps' line numbers).
    pub line: u32,
}

impl SteadyState {
    pub fn is_empty(&self) -> bool {
        self.components.is_empty() && self.conditions.is_empty()
    }
}

/// Before or after a step whose words start with `step`, `expect` (`wait_for` arguments)
/// must hold.
#[derive(Debug, Clone)]
pub struct Condition {
    pub when: When,
    /// The first words of the steps it applies to.
    pub step: Vec<String>,
    /// What must hold, as written (for messages).
    pub expect: Vec<String>,
    /// What must hold, read once by `wait_for`'s parser when the environment loads.
    pub awaited: WaitFor,
}

/// Whether a condition must hold before a step runs or after it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Before,
    After,
}

/// A config file to render: `templates/<src>` to `<runtime dir>/<dest>`.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub src: String,
    pub path: PathBuf,
    pub dest: String,
    /// This file's own variables, over the environment's.
    pub vars: BTreeMap<String, String>,
}

pub use crate::testdata::DataSet;

#[derive(Debug, Clone)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

impl Secret {
    /// The secret's value. Never log it, never write it into history or a report.
    pub fn resolve(&self) -> Result<String, EnvironmentError> {
        match self {
            Secret::Env(var) => {
                std::env::var(var).map_err(|_| EnvironmentError::SecretUnset { var: var.clone() })
            }
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.strip_suffix('\n').unwrap_or(&s).to_string())
                .map_err(|source| EnvironmentError::SecretUnreadable {
                    path: path.clone(),
                    source,
                }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Daemon {
    pub name: String,
    pub host: String,
    pub collectors: Vec<String>,
    pub interval: Duration,
    pub logs: Vec<LogFollow>,
    pub allow: Vec<String>,
    pub probes: Vec<Probe>,
}

impl LogRule {
    /// The pattern with `vars` filled in, each value escaped (matched as it is).
    pub fn rendered(&self, vars: &BTreeMap<String, String>) -> String {
        self.source.fill(|n| vars.get(n).map(|v| regex::escape(v)))
    }

    /// As the daemons get it.
    pub fn config(&self, vars: &BTreeMap<String, String>) -> crate::net::codec::RuleConfig {
        crate::net::codec::RuleConfig {
            pattern: self.rendered(vars),
            event: self.event.clone(),
            metric: self.metric.clone(),
        }
    }
}

/// A command collector: `run` every `every`, stopped after `timeout`, its output read by
/// `rules` as if it were the component's log.
#[derive(Debug, Clone)]
pub struct Probe {
    pub component: String,
    pub run: Vec<Template>,
    pub every: Duration,
    pub timeout: Duration,
    pub rules: Vec<LogRule>,
}

#[derive(Debug, Clone)]
pub struct LogFollow {
    pub component: String,
    pub rules: Vec<LogRule>,
}

#[derive(Debug, Clone)]
pub struct LogRule {
    /// As written: `#{var}` in it stands for the variable's value, matched literally.
    pub source: Template,
    /// Compiled with the environment's own values (what `check` checks).
    pub pattern: Regex,
    pub event: Option<String>,
    pub metric: Option<String>,
}

const COLLECTORS: &[&str] = &["system", "process", "log"];

#[derive(Debug)]
pub struct Component {
    pub name: String,
    pub host: Option<String>,
    pub start: Vec<Template>,
    pub stop: Option<Vec<Template>>,
    pub find: Find,
    pub log: Option<Template>,
    pub ready_log: Option<Regex>,
    pub ready_tcp: Option<Template>,
    pub ready_timeout: Duration,
    pub stop_timeout: Duration,
    pub env: Vec<(String, Template)>,
    /// Copied `from` → `to` before each start (`writable:`).
    pub writable: Vec<(Template, Template)>,
}

#[derive(Debug)]
pub enum Find {
    /// The pid lowtouch wrote when it started the component.
    Recorded,
    Pidfile(Template),
    Cmdline(Regex),
}

#[derive(Debug)]
pub struct Alias {
    pub name: String,
    pub kind: AliasKind,
    pub timeout: Option<Duration>,
    pub description: Option<String>,
    /// The phase the system is in once this alias succeeded.
    pub phase: Option<String>,
}

#[derive(Debug)]
pub enum AliasKind {
    Run(Vec<Template>),
    Shell(String),
    Steps(Scenario),
}

/// The phase every run starts in on an environment that declares phases.
pub const INITIAL_PHASE: &str = "idle";

impl Environment {
    /// The phase a run starts in: [`INITIAL_PHASE`] where an alias declares phases, else
    /// none (the environment says nothing about them).
    pub fn initial_phase(&self) -> Option<String> {
        self.aliases
            .values()
            .any(|a| a.phase.is_some())
            .then(|| INITIAL_PHASE.to_string())
    }

    /// Finds `environments/NAME.yaml` (or `.yml`) under the project root.
    pub fn path_for(project: &Path, name: &str) -> Option<PathBuf> {
        ["yaml", "yml"]
            .iter()
            .map(|ext| project.join("environments").join(format!("{name}.{ext}")))
            .find(|p| p.is_file())
    }

    /// Names of every environment of the project, for suggestions.
    pub fn names(project: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(project.join("environments"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                let ext = p.extension()?.to_str()?;
                matches!(ext, "yaml" | "yml")
                    .then(|| p.file_stem()?.to_str().map(str::to_string))?
            })
            .collect();
        names.sort();
        names
    }

    /// Loads and checks an environment file; `overrides` are `--set NAME=VALUE` pairs.
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Environment, Vec<Finding>> {
        let overrides: Vec<Override> = overrides
            .iter()
            .map(|(name, value)| Override {
                name: name.clone(),
                value: value.clone(),
                place: None,
            })
            .collect();
        Environment::load_with(path, &overrides)
    }

    /// Loads and checks an environment file with values given for its variables from
    /// elsewhere (a pipeline's `variables:`, `--set`); later ones win.
    pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Environment, Vec<Finding>> {
        let file = SourceFile::read(path).map_err(|f| vec![f])?;
        Environment::parse(file, overrides)
    }

    /// Parses and checks an environment whose text is already read (the fuzzer's entry
    /// point). `file.path` still places it: its project is the folder above its own, where
    /// the templates and test data it names are looked for.
    pub fn parse(file: SourceFile, overrides: &[Override]) -> Result<Environment, Vec<Finding>> {
        let path_buf = file.path.clone();
        let path = path_buf.as_path();
        let spec: EnvironmentFile =
            serde_yaml::from_str(&file.text).map_err(|e| vec![Finding::yaml(&file, &e)])?;
        let mut findings = Vec::new();
        let name = spec.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("env")
                .to_string()
        });

        let mut variables: BTreeMap<String, String> =
            spec.variables.into_iter().map(|(k, v)| (k, v.0)).collect();
        // What to say about an unknown name is the same for every one: made once.
        let mut known_list: Option<String> = None;
        for Override {
            name: key,
            value,
            place,
        } in overrides
        {
            if !variables.contains_key(key) {
                let mut f = match place {
                    None => Finding::file(
                        &file.path,
                        format!("`--set {key}=…` names no variable of environment `{name}`"),
                    ),
                    // Placed by its span, not by line and column: finding a line is a
                    // walk through the file, and a pipeline may hold thousands of these.
                    Some(p) => Finding::new(
                        &p.file,
                        crate::scenario::Diagnostic::new(
                            p.span,
                            format!("variable `{key}` names no variable of environment `{name}`"),
                        ),
                    )
                    .label("under `variables:`"),
                };
                f = match did_you_mean(key, variables.keys().map(String::as_str)) {
                    Some(close) => f.help(format!("did you mean `{close}`?")),
                    None => f.help(format!(
                        "its variables are: {}",
                        known_list.get_or_insert_with(|| list_names(variables.keys()))
                    )),
                };
                findings.push(f);
                continue;
            }
            variables.insert(key.clone(), value.clone());
        }

        let variables = match resolve_variables(variables) {
            Ok(v) => v,
            Err(e) => {
                findings.push(
                    Finding::file(&file.path, e.to_string())
                        .help("fix the variable's value under `variables:`"),
                );
                BTreeMap::new()
            }
        };
        let project = path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut env = Environment {
            name,
            file,
            project,
            description: spec.description,
            variables,
            components: BTreeMap::new(),
            aliases: BTreeMap::new(),
            templates: Vec::new(),
            data: Vec::new(),
            rollout_group: spec.rollout_group,
            secrets: BTreeMap::new(),
            daemons: BTreeMap::new(),
            conditions: Vec::new(),
            steady_state: SteadyState::default(),
            metrics: BTreeMap::new(),
        };
        let hosts: Vec<String> = spec.hosts.keys().cloned().collect();
        for (cname, cspec) in spec.components {
            match env.component(&cname, cspec, &hosts) {
                Ok(c) => {
                    env.components.insert(cname, c);
                }
                Err(mut f) => findings.append(&mut f),
            }
        }
        for (aname, aspec) in spec.aliases {
            match env.alias(&aname, aspec) {
                Ok(a) => {
                    env.aliases.insert(aname, a);
                }
                Err(mut f) => findings.append(&mut f),
            }
        }
        for (i, t) in spec.templates.iter().enumerate() {
            let at = |msg: String| env.value_at(&["templates"], &t.src, msg);
            let path = env.project.join("templates").join(&t.src);
            if !path.is_file() {
                findings.push(at(format!("template `{}` not found", t.src)).help(format!(
                    "templates are relative to {}",
                    env.project.join("templates").display()
                )));
                continue;
            }
            let in_data = Path::new(&t.dest).starts_with("data");
            if let Err(f) = relative_dest(&t.dest).and_then(|()| {
                if in_data {
                    Err(EnvironmentError::DestInData {
                        dest: t.dest.clone(),
                    })
                } else {
                    Ok(())
                }
            }) {
                findings.push(env.value_at(&["templates"], &t.dest, f.to_string()));
                continue;
            }
            if spec.templates[..i].iter().any(|o| o.dest == t.dest) {
                findings.push(env.value_at(
                    &["templates"],
                    &t.dest,
                    format!("two templates write `{}`", t.dest),
                ));
                continue;
            }
            env.templates.push(TemplateFile {
                src: t.src.clone(),
                path,
                dest: t.dest.clone(),
                vars: t
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect(),
            });
        }
        for d in &spec.data {
            let path = env.project.join("testdata").join(&d.generator);
            if !path.is_file() {
                findings.push(
                    env.value_at(
                        &["data"],
                        &d.generator,
                        format!("test-data generator `{}` not found", d.generator),
                    )
                    .help(format!(
                        "generators are relative to {}",
                        env.project.join("testdata").display()
                    )),
                );
                continue;
            }
            if let Err(f) = relative_dest(&d.dest) {
                findings.push(env.value_at(&["data"], &d.dest, f.to_string()));
                continue;
            }
            let mut params = BTreeMap::new();
            for (k, v) in &d.params {
                let rendered = env.template(&["data"], &v.0, &[]).and_then(|t| {
                    t.render(&env.variables)
                        .map_err(|e| env.value_at(&["data"], &v.0, e.to_string()))
                });
                match rendered {
                    Ok(value) => {
                        params.insert(k.clone(), value);
                    }
                    Err(f) => findings.push(f),
                }
            }
            env.data.push(DataSet {
                generator: d.generator.clone(),
                path,
                dest: d.dest.clone(),
                params,
            });
        }
        for (name, sec) in &spec.secrets {
            let secret = match (&sec.from_env, &sec.from_file) {
                (Some(var), None) => Secret::Env(var.clone()),
                (None, Some(file)) => Secret::File(env.project.join(file)),
                _ => {
                    findings.push(
                        env.at(
                            &["secrets", name],
                            format!(
                                "secret `{name}` needs exactly one of `from_env` or `from_file`"
                            ),
                        )
                        .help("secrets are never written inline: name where the value comes from"),
                    );
                    continue;
                }
            };
            env.secrets.insert(name.clone(), secret);
        }
        for (name, d) in spec.daemons {
            match env.daemon(&name, d, &hosts) {
                Ok(daemon) => {
                    env.daemons.insert(name, daemon);
                }
                Err(mut f) => findings.append(&mut f),
            }
        }
        for c in &spec.conditions {
            let (when, line) = match (&c.before, &c.after) {
                (Some(b), None) => (When::Before, b),
                (None, Some(a)) => (When::After, a),
                _ => {
                    findings.push(
                        env.value_at(
                            &["conditions"],
                            &c.expect,
                            "a condition needs exactly one of `before` or `after`",
                        )
                        .help("`before: STEP` must hold before the step runs, `after: STEP` once it succeeded"),
                    );
                    continue;
                }
            };
            let step: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            let expect: Vec<String> = c.expect.split_whitespace().map(str::to_string).collect();
            if step.is_empty() {
                findings.push(env.value_at(
                    &["conditions"],
                    line,
                    "the condition names no command".to_string(),
                ));
                continue;
            }
            match WaitFor::parse(&expect) {
                Ok(WaitFor {
                    awaited: Awaited::State { component, .. },
                    ..
                }) if !env.components.contains_key(&component) => {
                    findings.push(
                        env.value_at(
                            &["conditions"],
                            &c.expect,
                            format!("condition on `{component}`, which is no component here"),
                        )
                        .help(format!(
                            "components: {}",
                            env.components.keys().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    );
                }
                Ok(awaited) => env.conditions.push(Condition {
                    when,
                    step,
                    expect,
                    awaited,
                }),
                Err(e) => findings.push(
                    env.value_at(&["conditions"], &c.expect, format!("`expect`: {e}"))
                        .help("write it as `wait_for` takes it: `COMPONENT STATE [timeout D]` or `event 'REGEX' [timeout D]`"),
                ),
            }
        }
        env.steady_state(&spec.steady_state, &mut findings);
        for (name, m) in &spec.metrics {
            match m.read() {
                Ok(d) => {
                    env.metrics.insert(name.clone(), d);
                }
                Err(e) => findings.push(
                    env.at(&["metrics", name, e.field()], format!("metric `{name}`: {e}"))
                        .help("see README, Judging a run: `unit`, `better`, `critical`, `min_effect`, `max`"),
                ),
            }
        }
        if findings.is_empty() {
            Ok(env)
        } else {
            Err(findings)
        }
    }

    fn daemon(
        &self,
        name: &str,
        spec: DaemonSpec,
        hosts: &[String],
    ) -> Result<Daemon, Vec<Finding>> {
        let mut findings = Vec::new();
        let path = ["daemons", name];
        if !hosts.contains(&spec.host) {
            findings.push(
                self.value_at(&path, &spec.host, format!("unknown host `{}`", spec.host))
                    .help(format!("the environment's hosts are: {}", hosts.join(", "))),
            );
        }
        for c in &spec.collectors {
            if !COLLECTORS.contains(&c.as_str()) {
                findings.push(
                    self.value_at(&path, c, format!("unknown collector `{c}`"))
                        .help(format!("collectors are: {}", COLLECTORS.join(", "))),
                );
            }
        }
        let interval = ok(
            &mut findings,
            self.duration(
                &["daemons", name, "interval"],
                spec.interval.as_deref(),
                Duration::from_secs(1),
            ),
        );
        let mut logs = Vec::new();
        for l in &spec.logs {
            if !self.components.contains_key(&l.component) {
                findings.push(self.value_at(
                    &path,
                    &l.component,
                    format!("unknown component `{}`", l.component),
                ));
            }
            let rules = self.rules(&path, &l.rules, &mut findings);
            logs.push(LogFollow {
                component: l.component.clone(),
                rules,
            });
        }
        for a in &spec.allow {
            match self.aliases.get(a).map(|a| &a.kind) {
                None => findings.push(self.value_at(
                    &path,
                    a,
                    format!("`{a}` is not an alias of this environment"),
                )),
                Some(AliasKind::Run(_)) => {}
                Some(_) => findings.push(
                    self.value_at(
                        &path,
                        a,
                        format!("`{a}` is not a `run:` alias; a daemon runs only those"),
                    )
                    .help("a daemon runs a program with its arguments, never a shell line or scenario steps"),
                ),
            }
            if let Some(other) = self.daemons.values().find(|d| d.allow.contains(a)) {
                findings.push(
                    self.value_at(
                        &path,
                        a,
                        format!("`{a}` is allowed on daemon `{}` already", other.name),
                    )
                    .help("a host-bound alias runs on one host; make one alias per host"),
                );
            }
        }
        let every_default = interval.unwrap_or(Duration::from_secs(1));
        let mut probes = Vec::new();
        for (i, p) in spec.probes.iter().enumerate() {
            let at = i.to_string();
            let here = ["daemons", name, "probes", at.as_str()];
            if !self.components.contains_key(&p.component) {
                findings.push(
                    self.value_at(
                        &path,
                        &p.component,
                        format!("unknown component `{}`", p.component),
                    )
                    .help(format!(
                        "a probe's events and metrics are of a component: {}",
                        self.components
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
            if p.run.is_empty() {
                findings.push(self.at(&here, "a probe needs a program to `run`"));
            }
            let run: Vec<Template> = p
                .run
                .iter()
                .filter_map(|a| match self.template(&here, a, CONTEXT_VARS) {
                    Ok(t) => Some(t),
                    Err(f) => {
                        findings.push(f);
                        None
                    }
                })
                .collect();
            let every = ok(
                &mut findings,
                self.duration(
                    &[&here[..], &["every"]].concat(),
                    p.every.as_deref(),
                    every_default,
                ),
            );
            let every = every.unwrap_or(every_default);
            let timeout = ok(
                &mut findings,
                self.duration(
                    &[&here[..], &["timeout"]].concat(),
                    p.timeout.as_deref(),
                    every,
                ),
            );
            let rules = self.rules(&here, &p.rules, &mut findings);
            probes.push(Probe {
                component: p.component.clone(),
                run,
                every,
                timeout: timeout.unwrap_or(every),
                rules,
            });
        }
        if !findings.is_empty() {
            return Err(findings);
        }
        Ok(Daemon {
            name: name.to_string(),
            host: spec.host,
            collectors: if spec.collectors.is_empty() {
                COLLECTORS.iter().map(|c| c.to_string()).collect()
            } else {
                spec.collectors
            },
            interval: interval.unwrap_or(Duration::from_secs(1)),
            logs,
            allow: spec.allow,
            probes,
        })
    }

    /// The environment variables that hold this environment's secrets: no process
    /// lowtouch starts inherits them.
    pub fn secret_vars(&self) -> Vec<String> {
        self.secrets
            .values()
            .filter_map(|s| match s {
                Secret::Env(var) => Some(var.clone()),
                Secret::File(_) => None,
            })
            .chain(OWN_CREDENTIALS.iter().map(|v| v.to_string()))
            .collect()
    }

    /// Every secret's value that resolves, with its placeholder: output that contains a
    /// value is masked before it is shown or stored.
    pub fn secret_masks(&self) -> Vec<(String, String)> {
        self.secrets
            .iter()
            .filter_map(|(name, s)| {
                let value = s.resolve().ok()?;
                (!value.is_empty()).then(|| (value, super::render::placeholder(name)))
            })
            .chain(OWN_CREDENTIALS.iter().filter_map(|var| {
                let value = std::env::var(var).ok().filter(|v| v.len() >= 4)?;
                Some((value, format!("<{var}>")))
            }))
            .collect()
    }

    /// The variables a run sees: the environment's, the run's builtins (`lowtouch`,
    /// `project_dir`, `env`, `env_dir`, `run_id`) and `extra`, with every value that uses
    /// them (`#{env_dir}/data`) filled in. One place for runs and for the daemons' configs.
    pub fn runtime_variables(
        &self,
        env_dir: &Path,
        run_id: &str,
        extra: impl IntoIterator<Item = (String, String)>,
    ) -> BTreeMap<String, String> {
        let mut vars = self.variables.clone();
        // Removed, the path it was at: `execute_plans` refused to run before this.
        let exe = match super::executable::own_executable() {
            Ok(p) | Err(super::executable::ExecutableError::Removed { path: p }) => {
                p.display().to_string()
            }
            Err(super::executable::ExecutableError::Unknown { .. }) => "lowtouch".into(),
        };
        vars.insert("lowtouch".into(), exe);
        vars.insert("project_dir".into(), self.project.display().to_string());
        vars.insert("env".into(), self.name.clone());
        vars.insert("env_dir".into(), env_dir.display().to_string());
        vars.insert("run_id".into(), run_id.to_string());
        vars.extend(extra);
        let snapshot = vars.clone();
        for value in vars.values_mut() {
            if value.contains("#{")
                && let Ok(t) = Template::parse(value)
                && let Ok(r) = t.render(&snapshot)
            {
                *value = r;
            }
        }
        vars
    }

    /// The runtime directory under a state directory: `<state>/envs/<name>`.
    pub fn runtime_dir(&self, state_dir: &Path) -> PathBuf {
        state_dir.join("envs").join(&self.name)
    }

    fn at(&self, path: &[&str], message: impl Into<String>) -> Finding {
        let (line, col) = locate_key(&self.file.text, path).unwrap_or((1, 1));
        let len = path.last().map_or(1, |k| k.len());
        Finding::at(&self.file, line, col, len, message)
    }

    /// Log-style rules: one of `event` or `metric` each, a pattern that compiles once its
    /// `#{var}`s are filled in (escaped: a value is matched as it is).
    fn rules(
        &self,
        path: &[&str],
        specs: &[super::model::RuleSpec],
        findings: &mut Vec<Finding>,
    ) -> Vec<LogRule> {
        let mut rules = Vec::new();
        for r in specs {
            if r.event.is_some() == r.metric.is_some() {
                findings.push(self.value_at(
                    path,
                    &r.pattern,
                    "a rule needs exactly one of `event` or `metric`",
                ));
                continue;
            }
            let source = match self.template(path, &r.pattern, CONTEXT_VARS) {
                Ok(t) => t,
                Err(f) => {
                    findings.push(f);
                    continue;
                }
            };
            // A run's own variables are known only then; any literal stands in for them.
            let filled = source.fill(|n| {
                Some(regex::escape(
                    self.variables.get(n).map_or("x", String::as_str),
                ))
            });
            match Regex::new(&filled) {
                Ok(pattern) => rules.push(LogRule {
                    source,
                    pattern,
                    event: r.event.clone(),
                    metric: r.metric.clone(),
                }),
                Err(e) => findings.push(self.value_at(
                    path,
                    &r.pattern,
                    format!("invalid regular expression: {e}"),
                )),
            }
        }
        rules
    }

    /// Reads `steady_state:`: components it knows, conditions `wait_for` reads.
    fn steady_state(&mut self, spec: &super::model::SteadyStateSpec, findings: &mut Vec<Finding>) {
        let path = ["steady_state"];
        for name in &spec.components {
            if self.components.contains_key(name) {
                continue;
            }
            let known: Vec<&str> = self.components.keys().map(String::as_str).collect();
            let help = match crate::scenario::diagnostic::did_you_mean(name, known.iter().copied())
            {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("components: {}", known.join(", ")),
            };
            findings.push(
                self.value_at(&path, name, format!("`{name}` is no component here"))
                    .help(help),
            );
        }
        if !spec.conditions.is_empty() && self.daemons.is_empty() {
            findings.push(
                self.at(&path, "the steady state's conditions need a daemon to observe them")
                    .help("declare one under `daemons:` (it follows the components' logs), or keep only `components:`"),
            );
        }
        for c in &spec.conditions {
            let words: Vec<String> = c.split_whitespace().map(str::to_string).collect();
            match WaitFor::parse(&words) {
                Ok(WaitFor {
                    awaited: Awaited::State { component, .. },
                    ..
                }) if !self.components.contains_key(&component) => findings.push(
                    self.value_at(&path, c, format!("condition on `{component}`, which is no component here")),
                ),
                Ok(_) => {}
                Err(e) => findings.push(
                    self.value_at(&path, c, format!("condition: {e}"))
                        .help("write it as `wait_for` takes it: `COMPONENT STATE [timeout D]` or `event 'REGEX' [timeout D]`"),
                ),
            }
        }
        self.steady_state = SteadyState {
            components: spec.components.clone(),
            conditions: spec.conditions.clone(),
            line: locate_key(&self.file.text, &path).map_or(1, |(line, _)| line),
        };
    }

    fn value_at(&self, path: &[&str], needle: &str, message: impl Into<String>) -> Finding {
        match locate_value(&self.file.text, path, needle) {
            Some((line, col)) => Finding::at(&self.file, line, col, needle.len(), message),
            None => self.at(path, message),
        }
    }

    /// Parses a `#{…}` string and checks every variable it uses is defined.
    fn template(&self, path: &[&str], text: &str, extra: &[&str]) -> Result<Template, Finding> {
        let t = Template::parse(text)
            .map_err(|e| self.value_at(path, text, format!("bad interpolation: {e:?}")))?;
        for var in t.vars() {
            if self.variables.contains_key(var)
                || BUILTIN_VARS.contains(&var)
                || extra.contains(&var)
            {
                continue;
            }
            let candidates = self
                .variables
                .keys()
                .map(String::as_str)
                .chain(BUILTIN_VARS.iter().copied());
            let mut f = self.value_at(
                path,
                &format!("#{{{var}}}"),
                format!("variable `{var}` is not defined"),
            );
            f = match did_you_mean(var, candidates) {
                Some(close) => f.label(format!("did you mean `{close}`?")),
                None => f.help("define it under `variables:`"),
            };
            return Err(f);
        }
        Ok(t)
    }

    fn templates(
        &self,
        path: &[&str],
        items: &[String],
        extra: &[&str],
    ) -> Result<Vec<Template>, Finding> {
        items
            .iter()
            .map(|s| self.template(path, s, extra))
            .collect()
    }

    fn duration(
        &self,
        path: &[&str],
        text: Option<&str>,
        default: Duration,
    ) -> Result<Duration, Finding> {
        match text {
            None => Ok(default),
            Some(t) => parse_duration(t).ok_or_else(|| {
                self.at(path, format!("`{t}` is not a duration"))
                    .help("write it as 500ms, 5s or 2m; a bare number is seconds")
            }),
        }
    }

    fn component(
        &self,
        name: &str,
        spec: ComponentSpec,
        hosts: &[String],
    ) -> Result<Component, Vec<Finding>> {
        let p = |k: &'static str| -> Vec<&str> { vec!["components", name, k] };
        let mut findings = Vec::new();
        let comp_vars = ["log"];
        if spec.start.is_empty() {
            ok::<()>(
                &mut findings,
                Err(self
                    .at(&p("start"), "`start` is empty")
                    .help("give the command as a list: [program, arg, …]")),
            );
        }
        let start = ok(
            &mut findings,
            self.templates(&p("start"), &spec.start, &comp_vars),
        );
        if spec.stop.as_ref().is_some_and(Vec::is_empty) {
            ok::<()>(
                &mut findings,
                Err(self.at(&p("stop"), "`stop` is empty").help(
                    "give the command as a list, or leave `stop` out to stop it with SIGTERM",
                )),
            );
        }
        let stop = match &spec.stop {
            Some(s) => ok(&mut findings, self.templates(&p("stop"), s, &comp_vars)).map(Some),
            None => Some(None),
        };
        let log = match &spec.log {
            Some(l) => ok(&mut findings, self.template(&p("log"), l, &[])).map(Some),
            None => Some(None),
        };
        let find = match spec.find {
            None => Some(Find::Recorded),
            Some(f) => match (f.pidfile, f.cmdline) {
                (Some(pf), None) => {
                    ok(&mut findings, self.template(&p("find"), &pf, &[])).map(Find::Pidfile)
                }
                (None, Some(re)) => ok(
                    &mut findings,
                    Regex::new(&re).map_err(|e| {
                        self.value_at(&p("find"), &re, format!("invalid regular expression: {e}"))
                    }),
                )
                .map(Find::Cmdline),
                _ => ok(
                    &mut findings,
                    Err(self.at(
                        &p("find"),
                        "`find` takes exactly one of `pidfile` or `cmdline`",
                    )),
                ),
            },
        };
        let (mut ready_log, mut ready_tcp, mut ready_timeout) =
            (None, None, Some(Duration::from_secs(10)));
        if let Some(r) = &spec.ready {
            if let Some(re) = &r.log {
                ready_log = ok(
                    &mut findings,
                    Regex::new(re).map_err(|e| {
                        self.value_at(&p("ready"), re, format!("invalid regular expression: {e}"))
                    }),
                );
                if spec.log.is_none() {
                    ok::<()>(
                        &mut findings,
                        Err(self
                            .at(&p("ready"), "`ready.log` needs the component's `log`")
                            .help("add `log: PATH` to the component")),
                    );
                }
            }
            if let Some(addr) = &r.tcp {
                ready_tcp = ok(&mut findings, self.template(&p("ready"), addr, &[]));
            }
            ready_timeout = ok(
                &mut findings,
                self.duration(&p("ready"), r.timeout.as_deref(), Duration::from_secs(10)),
            );
        }
        let stop_timeout = ok(
            &mut findings,
            self.duration(
                &p("stop_timeout"),
                spec.stop_timeout.as_deref(),
                Duration::from_secs(5),
            ),
        );
        let env: Vec<_> = spec
            .env
            .iter()
            .filter_map(|(k, v)| {
                ok(&mut findings, self.template(&p("env"), &v.0, &[])).map(|t| (k.clone(), t))
            })
            .collect();
        let writable: Vec<(Template, Template)> = spec
            .writable
            .iter()
            .filter_map(|w| {
                let from = ok(
                    &mut findings,
                    self.template(&p("writable"), &w.from, CONTEXT_VARS),
                );
                let to = ok(
                    &mut findings,
                    self.template(&p("writable"), &w.to, CONTEXT_VARS),
                );
                Some((from?, to?))
            })
            .collect();
        if let Some(h) = &spec.host
            && !hosts.contains(h)
        {
            ok::<()>(
                &mut findings,
                Err(self
                    .value_at(&p("host"), h, format!("unknown host `{h}`"))
                    .help(format!("the environment's hosts are: {}", hosts.join(", ")))),
            );
        }
        let host = spec
            .host
            .or_else(|| (hosts.len() == 1).then(|| hosts[0].clone()));
        if !findings.is_empty() {
            return Err(findings);
        }
        Ok(Component {
            name: name.to_string(),
            host,
            start: start.unwrap_or_default(),
            stop: stop.flatten(),
            find: find.unwrap_or(Find::Recorded),
            log: log.flatten(),
            ready_log,
            ready_tcp,
            ready_timeout: ready_timeout.unwrap_or(Duration::from_secs(10)),
            stop_timeout: stop_timeout.unwrap_or(Duration::from_secs(5)),
            env,
            writable,
        })
    }

    fn alias(&self, name: &str, spec: AliasSpec) -> Result<Alias, Vec<Finding>> {
        let path = ["aliases", name];
        if !scenario::token::is_ident(name) || scenario::builtin::BUILTINS.contains(&name) {
            return Err(vec![self.at(&path, format!("`{name}` cannot be an alias name")).help(
                "alias names are letters, digits, `_` and `-`, and not a builtin (echo, sleep, kill, start, stop, restart)",
            )]);
        }
        let kind = match (spec.run, spec.shell, spec.steps) {
            (Some(run), None, None) if !run.is_empty() => {
                AliasKind::Run(self.templates(&path, &run, &[]).map_err(|f| vec![f])?)
            }
            (None, Some(script), None) => {
                if script.contains("#{") {
                    return Err(vec![
                        self.value_at(&path, "#{", "`#{…}` is not filled in inside a `shell:` script")
                            .help("values reach a script only as arguments: use `run:`, or pass the value as an argument (`$1`)"),
                    ]);
                }
                AliasKind::Shell(script)
            }
            (None, None, Some(lines)) => {
                let (ast, diags) = scenario::parse(&lines.join("\n"));
                if let Some(d) = diags.first() {
                    return Err(vec![self.at(&path, format!("in `steps`: {}", d.message))]);
                }
                AliasKind::Steps(ast)
            }
            _ => {
                return Err(vec![self.at(
                    &path,
                    format!("alias `{name}` needs exactly one of `run`, `shell` or `steps`"),
                )]);
            }
        };
        let timeout = match spec.timeout.as_deref() {
            None => None,
            Some(t) => Some(
                self.duration(&path, Some(t), Duration::ZERO)
                    .map_err(|f| vec![f])?,
            ),
        };
        if let Some(phase) = &spec.phase
            && !scenario::token::is_ident(phase)
        {
            return Err(vec![
                self.value_at(&path, phase, format!("`{phase}` cannot be a phase name"))
                    .help("a phase is one word: letters, digits, `_` and `-` (`idle`, `load`, `ramp_up`)"),
            ]);
        }
        Ok(Alias {
            name: name.to_string(),
            kind,
            timeout,
            description: spec.description,
            phase: spec.phase,
        })
    }
}

/// A destination inside the runtime directory: relative, no `..`, and none of the names
/// lowtouch keeps there itself.
fn relative_dest(dest: &str) -> Result<(), EnvironmentError> {
    let p = Path::new(dest);
    if dest.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(EnvironmentError::DestOutside { dest: dest.into() });
    }
    if ["config-commit", "data.lock"].contains(&dest) || dest.ends_with(".lowtouch-tmp") {
        return Err(EnvironmentError::DestReserved { dest: dest.into() });
    }
    Ok(())
}

/// Keeps going after an error: records the finding and returns `None`.
fn ok<T>(findings: &mut Vec<Finding>, result: Result<T, Finding>) -> Option<T> {
    result.map_err(|f| findings.push(f)).ok()
}

/// Variables may use each other (`engines: "127.0.0.1:#{port}"`): fill them in until
/// nothing changes. A cycle or an unknown name is an error.
fn resolve_variables(
    mut vars: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EnvironmentError> {
    for _ in 0..=vars.len() {
        let mut changed = false;
        let snapshot = vars.clone();
        for (name, value) in vars.iter_mut() {
            if !value.contains("#{") {
                continue;
            }
            let t = Template::parse(value).map_err(|error| EnvironmentError::BadInterpolation {
                name: name.clone(),
                error,
            })?;
            if let Some(unknown) = t
                .vars()
                .find(|v| !snapshot.contains_key(*v) && !BUILTIN_VARS.contains(v))
            {
                return Err(EnvironmentError::UnknownVariable {
                    name: name.clone(),
                    unknown: unknown.to_string(),
                });
            }
            // Builtins are filled in at run time; leave them in place.
            let rendered = t.render_with(|v| {
                if BUILTIN_VARS.contains(&v) && !snapshot.contains_key(v) {
                    None
                } else {
                    snapshot.get(v).map(String::as_str)
                }
            });
            if let Ok(r) = rendered
                && r != *value
            {
                *value = r;
                changed = true;
            }
        }
        if !changed {
            return Ok(vars);
        }
    }
    let names = vars
        .iter()
        .filter(|(_, v)| v.contains("#{"))
        .map(|(k, _)| k.clone())
        .collect();
    Err(EnvironmentError::Cycle { names })
}
