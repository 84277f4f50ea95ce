//! The YAML shape of `pipelines/*.yaml`, as serde reads it. Unknown keys are errors.

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// The pipeline's name (default: the file's stem): `lowtouch run NAME`.
    pub name: Option<String>,
    /// One line about it, shown by `check` and in reports.
    pub description: Option<String>,
    /// A bare `lowtouch run` runs the pipelines marked `default: true`.
    #[serde(default)]
    pub default: bool,
    /// The environment it runs on (`environments/NAME.yaml`).
    pub environment: String,
    /// Directories searched for `lowtouch-NAME` plugins, relative to this file.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The deploy stage: statements that bring the candidate onto the environment (build,
    /// install, restart), run once before `setup`. They see the candidate's revisions
    /// and worktrees as `#{product.revision}`, `#{product.path}`…
    #[serde(default)]
    pub deploy: Vec<String>,
    /// Overrides of the environment's variables for this pipeline's runs; they may use the
    /// candidate's variables (`exchange: "#{product.path}/bin/exchange"`).
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, crate::environment::model::Scalar>,
    /// Statements run once before the first scenario.
    #[serde(default)]
    pub setup: Vec<String>,
    /// Statements run once after the last scenario, always — after failures and Ctrl-C too.
    #[serde(default)]
    pub teardown: Vec<String>,
    /// Statements run before each scenario (or parallel group): a known state to start from.
    #[serde(default)]
    pub before_each: Vec<String>,
    /// Statements run after each scenario (or parallel group), always.
    #[serde(default)]
    pub after_each: Vec<String>,
    /// The scenarios, in order: `- failover.scn`, `- { path: soak.scn, timeout: 2h }`,
    /// `- parallel: [a.scn, b.scn]`. Paths are relative to the pipeline file.
    pub scenarios: Vec<EntrySpec>,
    /// The smoke stage: the scenarios a rollout runs on each environment it changes.
    #[serde(default)]
    pub smoke: Vec<EntrySpec>,
    /// The repositories whose changes start this pipeline, by name, with their roles.
    #[serde(default)]
    pub repositories: std::collections::BTreeMap<String, crate::watch::repository::RepositorySpec>,
    /// Cron patterns (5 fields, or 6 with seconds first) that start the pipeline from
    /// `lowtouch serve`, for example a nightly full regression: `"0 2 * * *"`.
    #[serde(default)]
    pub schedule: Vec<String>,
    /// Under `lowtouch serve`, run again and again while nothing new arrives, so the
    /// environment is never idle; a new candidate pre-empts it between scenarios.
    #[serde(default)]
    pub continuous: bool,
    /// Maintenance windows: nothing is started by the server while one is open.
    #[serde(default)]
    pub maintenance: Vec<WindowSpec>,
    /// Scenarios `lowtouch serve` starts on an event the daemons report while no run uses
    /// the environment ("event-driven scenario execution"): `{ match: REGEX, run: FILE }`.
    #[serde(default)]
    pub on_event: Vec<OnEventSpec>,
    /// What a component's crash that no step caused does to the run (default: fails it).
    #[serde(default)]
    pub unexpected_crash: CrashPolicy,
    /// What `lowtouch diff` and the JUnit comparison mask in step output besides the
    /// defaults (times, ids, durations, pids): `{ pattern: REGEX, replace: TEXT }`.
    #[serde(default)]
    pub masks: Vec<MaskSpec>,
    /// How the judge decides for this pipeline's runs (README, Judging a run).
    #[serde(default)]
    pub judge: Option<JudgeSpec>,
    /// Environments whose changed configs this pipeline rolls out (canary first) before
    /// its scenarios run.
    #[serde(default)]
    pub rollout: Vec<String>,
    /// The deploy stage's limit (default 30m: it may build).
    pub deploy_timeout: Option<String>,
    /// A step's limit unless it says otherwise (default 60s).
    pub step_timeout: Option<String>,
    /// A scenario's limit unless its entry says otherwise (default 10m).
    pub scenario_timeout: Option<String>,
    /// Statements a scenario may execute before it is stopped (default 100000).
    pub step_budget: Option<u64>,
    /// Bytes of output kept per step and stream (default 65536); the rest is counted.
    pub output_limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// A regular expression, e.g. `order-[0-9a-f]{8}`.
    pub pattern: String,
    /// What each match becomes (default `<masked>`).
    #[serde(default = "default_mask")]
    pub replace: String,
}

fn default_mask() -> String {
    "<masked>".into()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnEventSpec {
    /// Matched against `SOURCE NAME VALUE` of an event (`MatchingEnginePrimary process CRASHED`).
    #[serde(rename = "match")]
    pub pattern: String,
    /// The scenario to run, relative to the pipeline file.
    pub run: String,
}

/// An entry of `scenarios:` — a path, a path with options, or a parallel group.
#[derive(Debug)]
pub enum EntrySpec {
    Path(String),
    Detailed(DetailedEntry),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetailedEntry {
    /// The scenario file, relative to the pipeline file.
    pub path: Option<String>,
    /// Its limit (default: the pipeline's `scenario_timeout`), e.g. `2h`.
    pub timeout: Option<String>,
    /// Run a failed scenario again, up to this many times (with `before_each` and
    /// `after_each` around each attempt); one that fails and then passes is flaky.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Scenarios that run at the same time.
    pub parallel: Option<Vec<EntrySpec>>,
}

impl JsonSchema for EntrySpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Entry".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A scenario file (relative to the pipeline file), or a map with `path` and options, or a parallel group.",
            "anyOf": [
                { "type": "string" },
                generator.subschema_for::<DetailedEntry>(),
            ]
        })
    }
}

impl<'de> Deserialize<'de> for EntrySpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = EntrySpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a scenario path, or a map with `path` and `timeout`, or `parallel: [...]`",
                )
            }
            fn visit_str<E>(self, v: &str) -> Result<EntrySpec, E> {
                Ok(EntrySpec::Path(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<EntrySpec, A::Error> {
                DetailedEntry::deserialize(MapAccessDeserializer::new(map)).map(EntrySpec::Detailed)
            }
        }
        d.deserialize_any(V)
    }
}

/// A maintenance window: it opens when `start` (a cron pattern) fires and stays open for
/// `duration`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// A cron pattern: `"0 22 * * 5"` (Fridays at 22:00).
    pub start: String,
    /// How long it stays open: `2h`.
    pub duration: String,
}

/// `judge:` of a pipeline: what fails a run, how much history.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    /// What fails a run: `critical` (a declared-critical metric regressed; the default),
    /// `any` (any feature regressed or changed), `none` (the verdict only warns). A broken
    /// hard limit always fails.
    #[serde(default)]
    pub fail_on: Option<String>,
    /// Comparable runs a baseline holds at most (default 30).
    #[serde(default)]
    pub baseline_runs: Option<usize>,
    /// Comparable runs needed to judge at all (default 5).
    #[serde(default)]
    pub min_baseline: Option<usize>,
    /// Whether the hosts' own metrics (memory, CPU and load of the machine) can fail a
    /// run: on a machine of its own they describe the system; on a shared one (the
    /// default, false) they are listed, report-only.
    #[serde(default)]
    pub host_metrics_fail: Option<bool>,
    /// Earlier candidates drift is looked for across (default 60; 0: no drift).
    #[serde(default)]
    pub drift_candidates: Option<usize>,
}

/// What a crash no step caused does to a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CrashPolicy {
    /// The run fails: a component died and nothing in the scenario asked for it.
    #[default]
    Fail,
    /// Reported, and the pipeline's `on_event` diagnostics run; the run's result stands.
    Warn,
}
