//! The domain records: a run, its scenarios and steps, their statuses and conditions.
//! Execution produces them, the store keeps them, comparison and reports read them —
//! each of those depends on this module, none on another for these types.
//!
//! The store writes them versioned: every record carries `v`, the schema version it was
//! written with, so a later lowtouch can read or migrate it.

use serde::{Deserialize, Serialize};

/// The schema version this build writes. Bump it when a record changes incompatibly
/// and teach [`crate::store::Store::open`] to migrate.
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Passed,
    Failed,
    /// Stopped by Ctrl-C or SIGTERM; what ran is stored.
    Interrupted,
    /// The process died (SIGKILL, power loss) while running; found on the next open.
    Crashed,
    /// Not run, because something before it failed (a setup hook) or the run was interrupted.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
            Status::Crashed => "crashed",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub pipelines: Vec<String>,
    pub environments: Vec<String>,
    /// `<sha>`, `<sha>-dirty`, or `unversioned-<hash of the inputs>`.
    pub revision: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: Status,
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    /// Scenarios stopped by Ctrl-C or SIGTERM.
    #[serde(default)]
    pub interrupted: u32,
    /// Scenarios that failed and then passed on a retry.
    #[serde(default)]
    pub flaky: u32,
    pub duration_ms: u64,
    /// The process that ran it, so a stale `running` record can be told from a live one.
    pub pid: u32,
    pub hostname: String,
    /// The `--set` overrides it ran with.
    #[serde(default)]
    pub overrides: Vec<(String, String)>,
    /// Environment name to the config-history commit it ran against.
    #[serde(default)]
    pub config_commits: std::collections::BTreeMap<String, String>,
    /// Environment name to that commit's tree: the rendered content, whatever commit
    /// holds it (a knob turned and turned back is a new commit of the same tree).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub config_trees: std::collections::BTreeMap<String, String>,
    /// Why a run did not run (a candidate superseded by a newer one), or other remarks.
    #[serde(default)]
    pub note: Option<String>,
    /// The candidate under test: repository name to commit (pipelines with repositories).
    #[serde(default)]
    pub candidate: std::collections::BTreeMap<String, String>,
    /// What it ran under, as data: history compares like with like by these.
    #[serde(default)]
    pub conditions: RunConditions,
    /// Why the store lacks some of this run's records (a write failed: a full disk). Such
    /// a run's verdict stands, but it is no release and no baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    /// The judge's verdict in short (the whole one is stored with the run's detail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<Judgement>,
}

/// What the judge made of a run, against comparable history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Some feature regressed, improved or changed.
    Different,
    Same,
    /// Leaning, not decided: the candidate runs again and its runs are judged together.
    Inconclusive,
    /// Too few comparable runs to judge.
    NotEnoughHistory,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Different => "DIFFERENT",
            Outcome::Same => "SAME",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::NotEnoughHistory => "NOT ENOUGH HISTORY",
        }
    }
}

/// A run's verdict in short, kept on its record: what baselines and history read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    pub outcome: Outcome,
    /// The policy failed the run for it.
    pub fails: bool,
    /// Features that regressed (not report-only): such a run is no one's baseline.
    pub regressed: u32,
    /// Earlier runs of the same candidate judged together with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pooled: Vec<String>,
    /// The verdict's headline.
    pub headline: String,
}

impl RunRecord {
    /// A run that starts now in this process: nothing counted, nothing noted yet.
    pub fn begun(
        id: &str,
        pipelines: Vec<String>,
        environments: Vec<String>,
        revision: &str,
    ) -> RunRecord {
        RunRecord {
            id: id.to_string(),
            pipelines,
            environments,
            revision: revision.to_string(),
            started_at: crate::clock::now(),
            finished_at: None,
            status: Status::Running,
            passed: 0,
            failed: 0,
            skipped: 0,
            interrupted: 0,
            flaky: 0,
            duration_ms: 0,
            pid: std::process::id(),
            hostname: String::new(),
            overrides: Vec::new(),
            config_commits: Default::default(),
            config_trees: Default::default(),
            note: None,
            incomplete: None,
            judgement: None,
            conditions: Default::default(),
            candidate: Default::default(),
        }
    }

    /// Whether the run ran under every wanted condition (`KEY=VALUE`, as `history
    /// --condition` takes them): a commit or hash matches by a prefix of 7 or more.
    pub fn holds(&self, wanted: &[(String, String)]) -> bool {
        if wanted.is_empty() {
            return true;
        }
        let have = self.condition_pairs();
        wanted.iter().all(|(k, v)| {
            have.get(k).is_some_and(|h| {
                h == v
                    || (v.len() >= 7
                        && h.len() >= 40
                        && h.chars().all(|c| c.is_ascii_hexdigit())
                        && h.starts_with(v.as_str()))
            })
        })
    }

    /// The conditions it ran under as flat `key = value` pairs, the form `history
    /// --condition` matches: `config.ENV` (config commit), `test_data.ENV`,
    /// `load.ENV.VAR`, `host.cores|memory_bytes|kernel`, `hosts.ENV/DAEMON.cores|…`.
    pub fn condition_pairs(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let c = &self.conditions;
        for (env, commit) in &self.config_commits {
            out.insert(format!("config.{env}"), commit.clone());
        }
        for (env, hash) in &c.test_data {
            out.insert(format!("test_data.{env}"), hash.clone());
        }
        for (env, vars) in &c.load {
            for (k, v) in vars {
                out.insert(format!("load.{env}.{k}"), v.clone());
            }
        }
        let mut facts = |prefix: &str, f: &HostFacts| {
            out.insert(format!("{prefix}.cores"), f.cores.to_string());
            out.insert(format!("{prefix}.memory_bytes"), f.memory_bytes.to_string());
            out.insert(format!("{prefix}.kernel"), f.kernel.clone());
        };
        facts("host", &c.host);
        for (host, f) in &c.hosts {
            facts(&format!("hosts.{host}"), f);
        }
        out
    }

    /// Adds what `scenarios` did to the run's counts: a retried attempt counts only as its
    /// final attempt; a scenario that did not pass, was not skipped and was not
    /// interrupted (failed, crashed, still running) counts as failed, and so does a hook
    /// that failed — the summary, GitHub and JUnit (where it is a testcase) count alike.
    /// Returns whether a hook failed.
    pub fn count<'a>(&mut self, scenarios: impl IntoIterator<Item = &'a ScenarioRecord>) -> bool {
        let mut hooks_failed = false;
        for sc in scenarios {
            if sc.retried {
                continue;
            }
            if sc.kind == ScenarioKind::Scenario && sc.status == Status::Passed && sc.attempt > 0 {
                self.flaky += 1;
            }
            match (sc.kind, sc.status) {
                (ScenarioKind::Scenario, Status::Passed) => self.passed += 1,
                (ScenarioKind::Scenario, Status::Skipped) => self.skipped += 1,
                (ScenarioKind::Scenario, Status::Interrupted) => self.interrupted += 1,
                (ScenarioKind::Scenario, _) => self.failed += 1,
                (ScenarioKind::Hook, Status::Passed) => {}
                (ScenarioKind::Hook, Status::Skipped | Status::Interrupted) => hooks_failed = true,
                (ScenarioKind::Hook, _) => {
                    hooks_failed = true;
                    self.failed += 1;
                }
            }
        }
        hooks_failed
    }

    /// What history shows as the run's status: `incomplete` where the store lost records.
    pub fn shown_status(&self) -> &'static str {
        match self.incomplete {
            Some(_) => "incomplete",
            None => self.status.as_str(),
        }
    }
}

#[cfg(test)]
impl RunRecord {
    /// A run of pipeline `demo` on `local` for unit tests, to change what a test is about.
    pub fn for_test(id: &str) -> RunRecord {
        RunRecord {
            started_at: "2026-11-25T00:00:00Z".into(),
            status: Status::Passed,
            pid: 1,
            hostname: "h".into(),
            ..RunRecord::begun(id, vec!["demo".into()], vec!["local".into()], "r")
        }
    }
}

/// The conditions a run ran under (besides its revision, candidate and config commits):
/// the test data, the load profile and the management host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConditions {
    /// Environment → SHA-256 of its test-data manifest (the generated sets' inputs).
    #[serde(default)]
    pub test_data: std::collections::BTreeMap<String, String>,
    /// Environment → its load profile: the variables named `load_*` (rate, mix,
    /// duration…), after `--set` overrides.
    #[serde(default)]
    pub load: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// The host lowtouch ran on.
    #[serde(default)]
    pub host: HostFacts,
    /// The hosts of the system under test, as their daemons told (`ENVIRONMENT/DAEMON`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub hosts: std::collections::BTreeMap<String, HostFacts>,
    /// The scenarios it set out to run (`ENVIRONMENT/NAME`) with their content
    /// ([`content_of`]): a run that shares none of them with another tells nothing about it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub scenarios: std::collections::BTreeMap<String, String>,
}

use crate::net::codec::HostFacts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    Scenario,
    /// `setup`, `teardown`, `before_each`, `after_each`.
    Hook,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioRecord {
    pub run_id: String,
    /// Position in the run, the key's second part.
    pub index: u32,
    pub kind: ScenarioKind,
    pub pipeline: String,
    pub environment: String,
    /// The scenario file's stem, or the hook's name.
    pub name: String,
    pub path: String,
    pub status: Status,
    /// Why it failed: the failing step and what it said.
    pub reason: Option<String>,
    pub failed_line: Option<u32>,
    pub started_at: String,
    pub duration_ms: u64,
    pub steps: u64,
    /// Which attempt this is (0: the first; `retries:` may run a failed one again).
    #[serde(default)]
    pub attempt: u32,
    /// A later attempt of the same scenario replaced this one: it counts as a rerun.
    #[serde(default)]
    pub retried: bool,
    /// What the scenario's file said (a SHA-256 prefix of its text): the judge compares a
    /// scenario's features only with runs of the same text. None for hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl ScenarioRecord {
    /// Whether it is one of a shown kind: a scenario, a hook that did not pass, or the
    /// diagnostics a crash started (`on_event`): what summaries, JUnit and HTML list.
    pub fn is_shown(&self) -> bool {
        self.kind == ScenarioKind::Scenario
            || self.status != Status::Passed
            || self.name.starts_with(DIAGNOSTICS_PREFIX)
    }
}

/// The name a crash's diagnostics scenario runs under: `on_event <its name>`.
pub const DIAGNOSTICS_PREFIX: &str = "on_event ";

/// The `content` of a scenario whose file holds `text`.
pub fn content_of(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

#[cfg(test)]
impl ScenarioRecord {
    /// Scenario `name` of pipeline `demo` on `local`, at `index` of run `run_id`, for unit
    /// tests, to change what a test is about.
    pub fn for_test(run_id: &str, index: u32, name: &str, status: Status) -> ScenarioRecord {
        ScenarioRecord {
            run_id: run_id.into(),
            index,
            kind: ScenarioKind::Scenario,
            pipeline: "demo".into(),
            environment: "local".into(),
            name: name.into(),
            path: format!("{name}.scn"),
            status,
            reason: None,
            failed_line: None,
            started_at: "2026-11-25T00:00:00Z".into(),
            duration_ms: 1,
            steps: 0,
            attempt: 0,
            retried: false,
            content: None,
        }
    }
}

#[cfg(test)]
impl StepRecord {
    /// Step `seq` (at line `seq`) of scenario `index` of run `run_id`: `command` printed
    /// `stdout` and exited 0. For unit tests.
    pub fn for_test(run_id: &str, index: u32, seq: u64, command: &str, stdout: &str) -> StepRecord {
        StepRecord {
            run_id: run_id.into(),
            scenario_index: index,
            seq,
            line: seq as u32,
            command: command.into(),
            args: vec![],
            resolved: "alias".into(),
            status: 0,
            stdout: stdout.into(),
            stdout_dropped: 0,
            stderr: String::new(),
            stderr_dropped: 0,
            failure: None,
            started_at: "2026-11-25T00:00:00Z".into(),
            duration_us: 5,
            around: None,
            phase: None,
            held: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub run_id: String,
    pub scenario_index: u32,
    pub seq: u64,
    pub line: u32,
    pub command: String,
    pub args: Vec<String>,
    /// How the command was resolved: builtin, component, alias, plugin.
    pub resolved: String,
    pub status: i32,
    pub stdout: String,
    /// Bytes of stdout beyond the capture limit: counted, not kept.
    pub stdout_dropped: u64,
    pub stderr: String,
    pub stderr_dropped: u64,
    pub failure: Option<String>,
    pub started_at: String,
    pub duration_us: u64,
    /// The state of the system around the step, as the daemons saw it (runs on an
    /// environment with daemons only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around: Option<Around>,
    /// The phase the system was in when the step began (`idle`, `load`…), as the
    /// environment's aliases declare it (`phase:`); none where it declares no phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Its post-conditions and when each held, from the step's start: the time the
    /// awaited state or event was reported (the failover time is a number of its own;
    /// `duration_us` is the command's, without this wait).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
}

/// A post-condition that held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// What held, as `wait_for` words (`MatchingEngineBackup ACTIVE`).
    pub condition: String,
    /// µs from the step's start to the observation that met it.
    pub after_us: i64,
}

/// What the monitoring network saw around one step: the newest sample of each metric of
/// the step's components and hosts when it began and when it ended (after its
/// post-conditions), and every event in between. A sample is as fresh as the daemons'
/// interval (1 s by default); events are there the moment they happen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Around {
    pub before: Vec<Sample>,
    pub after: Vec<Sample>,
    pub events: Vec<Seen>,
}

/// One metric's value at one instant (µs since the epoch, the server's timeline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub daemon: String,
    pub source: String,
    pub name: String,
    pub value: f64,
    pub at_us: i64,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub at_us: i64,
    pub daemon: String,
    pub source: String,
    pub name: String,
    pub text: String,
}

/// A run's scenarios with the steps of each, as read back from the store.
pub struct StoredRun {
    pub run: RunRecord,
    pub scenarios: Vec<ScenarioWithSteps>,
    /// Its artifacts: name and size (`lowtouch report --run ID --artifacts`).
    pub artifacts: Vec<(String, usize)>,
}

pub type ScenarioWithSteps = (ScenarioRecord, Vec<StepRecord>);

impl StepRecord {
    /// The step's command and arguments as a person would type them (arguments with
    /// spaces quoted).
    pub fn command_line(&self) -> String {
        use std::fmt::Write as _;
        let mut text = self.command.clone();
        for a in &self.args {
            text.push(' ');
            if a.is_empty() || a.contains(char::is_whitespace) {
                let _ = write!(text, "{a:?}");
            } else {
                text.push_str(a);
            }
        }
        text
    }
}
