//! The YAML shape of `environments/*.yaml`, as serde reads it. Unknown keys are errors.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentFile {
    /// Defaults to the file's stem.
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub hosts: BTreeMap<String, HostSpec>,
    /// Values scenarios and commands can use as `#{name}`; `--set NAME=VALUE` overrides.
    #[serde(default)]
    pub variables: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub components: BTreeMap<String, ComponentSpec>,
    #[serde(default)]
    pub aliases: BTreeMap<String, AliasSpec>,
    /// Config files rendered for this environment (minijinja, strict).
    #[serde(default)]
    pub templates: Vec<TemplateSpec>,
    /// Data sets generated for this environment from `testdata/` definitions.
    #[serde(default)]
    pub data: Vec<DataSpec>,
    /// Rollout order: the lowest group (the canary) gets a config change first.
    #[serde(default)]
    pub rollout_group: u32,
    /// Secrets by reference only; their values never reach the config history.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSpec>,
    /// The monitoring daemons, one per host (used by the monitoring network).
    #[serde(default)]
    pub daemons: BTreeMap<String, DaemonSpec>,
    /// Conditions of steps, checked against what the daemons observe: before a step whose
    /// command line starts with `before`, or after one that starts with `after`, `expect`
    /// must hold (`wait_for` syntax).
    #[serde(default)]
    pub conditions: Vec<ConditionSpec>,
    /// What is known about metrics, by name (all optional: every metric is judged anyway).
    #[serde(default)]
    pub metrics: BTreeMap<String, crate::judge::declared::MetricSpec>,
    /// What a scenario starts from: components that must be up and conditions that must
    /// hold; brought about before each scenario.
    #[serde(default)]
    pub steady_state: SteadyStateSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteadyStateSpec {
    /// Started (and waited for until ready) before each scenario when not running.
    #[serde(default)]
    pub components: Vec<String>,
    /// Then each must hold (`wait_for` syntax: `COMPONENT STATE [timeout D]`).
    #[serde(default)]
    pub conditions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// A pre-condition: the start of a step's command line (`kill -9 MatchingEnginePrimary`).
    #[serde(default)]
    pub before: Option<String>,
    /// A post-condition: the start of a step's command line (`kill -9 MatchingEnginePrimary`).
    #[serde(default)]
    pub after: Option<String>,
    /// What must follow, as `wait_for` takes it: `MatchingEngineBackup ACTIVE timeout 5s`.
    pub expect: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// The template, relative to `templates/`.
    pub src: String,
    /// Where the rendered file goes, relative to the environment's runtime directory.
    pub dest: String,
    /// Variables for this file only, over the environment's.
    #[serde(default)]
    pub vars: BTreeMap<String, Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// The generator definition, relative to `testdata/`.
    pub generator: String,
    /// The generated file, relative to the runtime directory's `data/`.
    pub dest: String,
    /// Overrides of the generator's parameters; `#{var}` uses the environment's variables.
    #[serde(default)]
    pub params: BTreeMap<String, Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// The name of an environment variable holding the value.
    pub from_env: Option<String>,
    /// A file holding the value (a trailing newline is dropped).
    pub from_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSpec {
    /// The host it runs on (a key of `hosts`).
    pub host: String,
    /// `system`, `process`, `log` (default: all three).
    #[serde(default)]
    pub collectors: Vec<String>,
    /// How often it samples (default 1s).
    pub interval: Option<String>,
    /// Logs it follows, and the rules that turn lines into events and metrics.
    #[serde(default)]
    pub logs: Vec<LogSpec>,
    /// Commands (aliases) it may run besides component control.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Command collectors: a command run every interval whose output goes through
    /// log-style rules, its events and metrics attributed to a component.
    #[serde(default)]
    pub probes: Vec<ProbeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// The component its events and metrics are of.
    pub component: String,
    /// The program and its arguments (no shell; `#{var}` filled in).
    pub run: Vec<String>,
    /// How often (default: the daemon's interval).
    pub every: Option<String>,
    /// How long it may take before it is stopped (default: `every`).
    pub timeout: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// The component whose `log` it follows.
    pub component: String,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A regular expression with named captures.
    pub pattern: String,
    /// The event a match is (`state`, …), or
    pub event: Option<String>,
    /// the metric a match is a sample of.
    pub metric: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// The host it runs on (a key of `hosts`); defaults to the only host, if there is one.
    pub host: Option<String>,
    /// The command that starts it, as an argument vector (no shell).
    pub start: Vec<String>,
    /// The command that stops it; without one, SIGTERM to its process group.
    pub stop: Option<Vec<String>>,
    /// How its process is found; default: the pid lowtouch recorded when it started it.
    pub find: Option<FindSpec>,
    /// Its application log (the matching log of an engine), `#{log}` in `start`.
    pub log: Option<String>,
    /// When a start counts as done.
    pub ready: Option<ReadySpec>,
    /// How long a stop may take before SIGKILL (default 5s).
    pub stop_timeout: Option<String>,
    /// Extra environment variables for its process.
    #[serde(default)]
    pub env: BTreeMap<String, Scalar>,
    /// Files it rewrites itself (a failover coordinator's config): before each start,
    /// `from` (a rendered file) is copied to `to`, which it may change; the run keeps the
    /// copy as it was at the end. Paths under the runtime directory.
    #[serde(default)]
    pub writable: Vec<WritableSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritableSpec {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindSpec {
    /// A pid file the component writes itself.
    pub pidfile: Option<String>,
    /// A regular expression matched against `/proc/PID/cmdline` (arguments joined by spaces).
    pub cmdline: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    /// A regular expression a new line of the component's log must match.
    pub log: Option<String>,
    /// An address that must accept a TCP connection.
    pub tcp: Option<String>,
    /// How long to wait (default 10s).
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasSpec {
    pub description: Option<String>,
    /// Run this argument vector, with the step's arguments appended.
    pub run: Option<Vec<String>>,
    /// Run this script with `sh -c`; the step's arguments are `$1`, `$2`…
    pub shell: Option<String>,
    /// Run these scenario statements; the step's arguments are `#{1}`, `#{2}`…
    pub steps: Option<Vec<String>>,
    /// The step's default timeout.
    pub timeout: Option<String>,
    /// The phase the system is in after this alias ran (`load` for one that starts the
    /// load, `idle` for one that stops it): every step records the phase it ran in.
    pub phase: Option<String>,
}

/// A YAML scalar read as text: `port: 8080` and `port: "8080"` mean the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
