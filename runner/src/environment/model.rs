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
    /// Monitoring daemons per host: their shape is settled by the monitoring issue;
    /// accepted and kept now so environments can already name them.
    #[serde(default)]
    pub daemons: BTreeMap<String, serde_yaml::Value>,
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
