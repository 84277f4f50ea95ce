//! The YAML shape of `environments/*.yaml`, as serde reads it. Unknown keys are errors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentFile {
    /// The environment's name (default: the file's stem); pipelines name it in `environment:`.
    pub name: Option<String>,
    /// One line about it, shown by `lowtouch status` and `check`.
    pub description: Option<String>,
    /// The machines it spans, by name: `hosts: { local: { address: 127.0.0.1 } }`.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostSpec>,
    /// Values scenarios, commands and templates use as `#{name}` (`port: 7001`);
    /// `--set NAME=VALUE` and a pipeline's `variables` override them.
    #[serde(default)]
    pub variables: BTreeMap<String, Scalar>,
    /// The long-running processes of the system under test, by name (`MatchingEnginePrimary`):
    /// what `start`, `stop`, `kill` and `wait_for` act on.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentSpec>,
    /// Commands scenarios call by name (`place_order`, `smoke`): a program, a shell line
    /// or scenario steps.
    #[serde(default)]
    pub aliases: BTreeMap<String, AliasSpec>,
    /// Config files rendered for this environment (minijinja, strict).
    #[serde(default)]
    pub templates: Vec<TemplateSpec>,
    /// Data sets generated for this environment from `testdata/` definitions.
    #[serde(default)]
    pub data: Vec<DataSpec>,
    /// Rollout order: the lowest group (the canary) gets a config change first (default 0).
    #[serde(default)]
    pub rollout_group: u32,
    /// Secrets by reference only (`api_key: { from_env: API_KEY }`), usable as `#{secrets.NAME}`;
    /// their values never reach the config history, logs, reports or the store.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSpec>,
    /// The monitoring daemons, by name, one per host: `lowtouch daemon --name NAME` runs one;
    /// each collects host and process metrics, follows logs and obeys component commands.
    #[serde(default)]
    pub daemons: BTreeMap<String, DaemonSpec>,
    /// Conditions of steps, checked against what the daemons observe: before a step whose
    /// command is `before`, or after one that is `after` (matched as commands: `kill -KILL X`
    /// is `kill -9 X`), `expect` must hold (`wait_for` syntax).
    #[serde(default)]
    pub conditions: Vec<ConditionSpec>,
    /// What is known about metrics, by name (all optional: every metric is judged anyway):
    /// `order_latency_us: { unit: us, better: lower, critical: true, max: 2ms }`.
    #[serde(default)]
    pub metrics: BTreeMap<String, crate::judge::declared::MetricSpec>,
    /// What a scenario starts from: components that must be up and conditions that must
    /// hold; brought about before each scenario.
    #[serde(default)]
    pub steady_state: SteadyStateSpec,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SteadyStateSpec {
    /// Started (and waited for until ready) before each scenario when not running.
    #[serde(default)]
    pub components: Vec<String>,
    /// Then each must hold (`wait_for` syntax: `MatchingEngineBackup STANDBY timeout 10s`).
    #[serde(default)]
    pub conditions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// A pre-condition: the step's command (`kill -9 MatchingEnginePrimary`); a command
    /// with fewer words matches every step that starts with them (`kill`).
    #[serde(default)]
    pub before: Option<String>,
    /// A post-condition: the step's command, as `before` takes it. Its wait is not part
    /// of the step's time; the step records when it held.
    #[serde(default)]
    pub after: Option<String>,
    /// What must follow, as `wait_for` takes it: `MatchingEngineBackup ACTIVE timeout 5s`.
    pub expect: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
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

#[derive(Debug, Deserialize, JsonSchema)]
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// The name of an environment variable holding the value.
    pub from_env: Option<String>,
    /// A file holding the value (a trailing newline is dropped).
    pub from_file: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DaemonSpec {
    /// The host it runs on (a key of `hosts`).
    pub host: String,
    /// `system`, `process`, `log` (default: all three).
    #[serde(default)]
    pub collectors: Vec<String>,
    /// How often it samples (default `1s`).
    pub interval: Option<String>,
    /// Logs it follows, and the rules that turn lines into events and metrics.
    #[serde(default)]
    pub logs: Vec<LogSpec>,
    /// The `run:` aliases it may run on its host besides component control (never a `shell:`
    /// or `steps:` alias); each alias on one daemon only.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Command collectors: a command run every interval whose output goes through
    /// log-style rules, its events and metrics attributed to a component.
    #[serde(default)]
    pub probes: Vec<ProbeSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// The component its events and metrics are of.
    pub component: String,
    /// The program and its arguments (no shell; `#{var}` filled in).
    pub run: Vec<String>,
    /// How often (default: the daemon's interval), e.g. `5s`.
    pub every: Option<String>,
    /// How long it may take before it is stopped (default: `every`).
    pub timeout: Option<String>,
    /// What its output means: rules as a log's (each line of its output is matched).
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// The component whose `log` it follows.
    pub component: String,
    /// What its lines mean: each line is matched against every rule.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A regular expression (Rust `regex` syntax; `#{var}` is filled in as literal text).
    /// The value is its first named group, or the whole match when it has none:
    /// `STATE: (?P<state>\w+)`, `latency=(?P<us>\d+)`.
    pub pattern: String,
    /// The event a match is. `state` is the one `wait_for` and conditions read:
    /// `event: state` with `(?P<state>…)` reports the component's state.
    pub event: Option<String>,
    /// Or the metric a match is a sample of (the value must be a number).
    pub metric: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Where it is reached: `127.0.0.1`, `10.0.3.21`, `db1.test`.
    pub address: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
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
    /// How long a stop may take before SIGKILL (default `5s`).
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WritableSpec {
    /// The rendered file (a template's `dest`), e.g. `config/sentinel.conf`.
    pub from: String,
    /// The copy the component is given, e.g. `state/sentinel.conf`.
    pub to: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindSpec {
    /// A pid file the component writes itself.
    pub pidfile: Option<String>,
    /// A regular expression matched against `/proc/PID/cmdline` (arguments joined by spaces).
    pub cmdline: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    /// A regular expression a new line of the component's log must match.
    pub log: Option<String>,
    /// An address that must accept a TCP connection.
    pub tcp: Option<String>,
    /// How long to wait (default `10s`).
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasSpec {
    /// What it does, shown by `check` and in errors.
    pub description: Option<String>,
    /// Run this argument vector, with the step's arguments appended.
    pub run: Option<Vec<String>>,
    /// Run this script with `sh -c`; the step's arguments are `$1`, `$2`…
    pub shell: Option<String>,
    /// Run these scenario statements; the step's arguments are `#{1}`, `#{2}`…
    pub steps: Option<Vec<String>>,
    /// The step's default timeout (`30s`), unless the step says `timeout`.
    pub timeout: Option<String>,
    /// The phase the system is in after this alias ran (`load` for one that starts the
    /// load, `idle` for one that stops it): every step records the phase it ran in.
    pub phase: Option<String>,
}

/// A YAML scalar read as text: `port: 8080` and `port: "8080"` mean the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

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
