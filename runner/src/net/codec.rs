//! The wire format between the router and its daemons: length-prefixed, versioned frames
//! carrying one [`Message`] each. Pure (bytes in, messages out), so it is tested and
//! fuzzed without a socket.
//!
//! ```text
//! frame   = length:u32 BE | version:u8 | body
//! length  = 1 + len(body)            (the version byte and the body, at most MAX_FRAME)
//! body    = one Message, JSON
//! ```
//!
//! A frame that is too long, has another version, or whose body is not a message is an
//! error of that connection only: the decoder says why, the connection is closed, the
//! rest of the network goes on.

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u8 = 2;
/// The largest frame accepted (length field), 1 MiB: a batch of events fits many times.
pub const MAX_FRAME: usize = 1 << 20;

/// Everything router and daemon say to each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Message {
    /// Daemon → router, sealed inside the first handshake record: who it is. `boot` is new
    /// each time the daemon process starts: its sequence numbers start again at 1 then,
    /// and the router must not take them for repeats.
    Hello {
        daemon: String,
        environment: String,
        boot: String,
        /// The daemon's host: what runs are compared by (trusted once authenticated).
        #[serde(default)]
        facts: HostFacts,
    },
    /// Router → daemon, sealed inside the handshake's answer: the router's clock when it
    /// sent this (µs since the epoch).
    Greeting { server_time_us: i64 },
    /// Daemon → router, the first sealed frame (proof that it holds the session's keys):
    /// its clock when it received the greeting and when it answered (the first
    /// clock-offset sample).
    Auth { received_us: i64, sent_us: i64 },
    /// Router → daemon: accepted.
    Welcome { session: String },
    /// Router → daemon, after `Welcome` and whenever the environment changes: what to
    /// watch and what it may do — its part of the environment, rendered for its host.
    Configure(DaemonConfig),
    /// Router → daemon: refused, and why (then the connection closes).
    Refused { reason: String },
    /// Either side: are you there? With the sender's clock.
    Ping { seq: u64, sent_us: i64 },
    /// The answer, with the answerer's clock when it got the ping and when it answered.
    Pong {
        seq: u64,
        ping_sent_us: i64,
        received_us: i64,
        sent_us: i64,
    },
    /// Daemon → router: observations, numbered so a reconnect resends without doubles.
    Observations {
        first_seq: u64,
        items: Vec<Observation>,
    },
    /// Router → daemon: every observation up to `seq` is stored.
    Ack { seq: u64 },
    /// The daemon could not keep everything while disconnected: how much it dropped.
    Dropped { count: u64 },
    /// Router → daemon: run a command.
    Command { id: u64, command: Command },
    /// Daemon → router: what came of it.
    Outcome {
        id: u64,
        status: i32,
        stdout: String,
        stderr: String,
        /// Set when the daemon refused or could not run the command.
        error: Option<String>,
    },
}

impl Message {
    /// The message's kind, for logs: a message itself may carry secrets (a configuration
    /// holds components' environments), so it is never printed whole.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Greeting { .. } => "greeting",
            Message::Auth { .. } => "auth",
            Message::Welcome { .. } => "welcome",
            Message::Refused { .. } => "refused",
            Message::Ping { .. } => "ping",
            Message::Pong { .. } => "pong",
            Message::Observations { .. } => "observations",
            Message::Ack { .. } => "ack",
            Message::Dropped { .. } => "dropped",
            Message::Configure(_) => "configure",
            Message::Command { .. } => "command",
            Message::Outcome { .. } => "outcome",
        }
    }
}

/// A host's facts: runs on different hardware or kernels are not compared like for like.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub cores: u32,
    pub memory_bytes: u64,
    pub kernel: String,
}

/// One thing a daemon saw, on its own clock (the router moves it onto its timeline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Observation {
    /// An event: a state change from a log rule, a process that crashed…
    Event {
        at_us: i64,
        source: String,
        name: String,
        value: String,
    },
    /// A metric sample.
    Metric {
        at_us: i64,
        source: String,
        name: String,
        value: f64,
    },
}

/// A daemon's part of an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonConfig {
    /// How often system and process metrics are sampled.
    pub interval_ms: u64,
    /// `system`, `process`, `log`.
    pub collectors: Vec<String>,
    /// Components on this host: where their pid and their log are.
    pub components: Vec<ComponentWatch>,
    /// Commands (aliases, plugins) this daemon may run, besides component control: each
    /// resolved to its program and fixed arguments; the step's arguments are appended.
    pub commands: Vec<CommandSpec>,
    /// Where components and commands run (the project directory, when it exists here).
    #[serde(default)]
    pub workdir: Option<String>,
    /// Where components' pid files and output go (the environment's runtime directory).
    #[serde(default)]
    pub runtime_dir: Option<String>,
    /// Environment variables no child of the daemon inherits (the environment's secrets'
    /// and lowtouch's own credentials).
    #[serde(default)]
    pub remove_env: Vec<String>,
    /// Command collectors (`probes:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeConfig>,
}

/// A command the daemon runs every `every_ms` (no shell; stopped with its process group
/// after `timeout_ms`), its output read by `rules` as the component's log would be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeConfig {
    pub component: String,
    pub argv: Vec<String>,
    pub every_ms: u64,
    pub timeout_ms: u64,
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    pub name: String,
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentWatch {
    pub name: String,
    /// The file holding its pid (written by whoever starts it).
    pub pid_file: Option<String>,
    /// A file present while it is being stopped on purpose: its end is STOPPED then.
    #[serde(default)]
    pub stop_marker: Option<String>,
    pub log: Option<String>,
    pub rules: Vec<RuleConfig>,
    /// How to start, stop and find it, rendered for the run; `None` when the daemon only
    /// watches it.
    #[serde(default)]
    pub control: Option<ControlSpec>,
}

/// How a component is controlled on its host: every template already rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlSpec {
    pub start: Vec<String>,
    pub stop: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub find: FindSpec,
    pub log: Option<String>,
    /// A regex a log line must match for it to be ready.
    pub ready_log: Option<String>,
    /// `HOST:PORT` that must accept a connection for it to be ready.
    pub ready_tcp: Option<String>,
    pub ready_timeout_ms: u64,
    pub stop_timeout_ms: u64,
    /// Files copied `from` → `to` before each start: its own copies to rewrite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<(String, String)>,
}

/// How a running component is found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum FindSpec {
    /// By the pid (and start time) recorded when it was started.
    #[default]
    Recorded,
    Pidfile {
        path: String,
    },
    Cmdline {
        pattern: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleConfig {
    pub pattern: String,
    pub event: Option<String>,
    pub metric: Option<String>,
}

/// What a router may ask a daemon to do. The daemon checks each against what its
/// configuration allows before doing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "c", rename_all = "snake_case")]
pub enum Command {
    Kill {
        component: String,
        signal: i32,
    },
    /// Start it and wait until it is ready, at most `limit_ms`.
    Start {
        component: String,
        #[serde(default)]
        limit_ms: Option<u64>,
    },
    Stop {
        component: String,
    },
    /// Whether it runs: status 0 and its pid, or status 1 (the steady state's check).
    Find {
        component: String,
    },
    Restart {
        component: String,
        #[serde(default)]
        limit_ms: Option<u64>,
    },
    /// Stop what an earlier run left running (`all: false`), or everything this daemon
    /// started that still runs (`all: true`): the ends of a run.
    Tidy {
        all: bool,
    },
    /// An alias or plugin assigned to this host, with its arguments (never a shell line),
    /// ended with its process group after `timeout_ms`. `env` may only name `LOWTOUCH_*`
    /// variables (the step's context).
    Run {
        name: String,
        args: Vec<String>,
        #[serde(default)]
        timeout_ms: Option<u64>,
        #[serde(default)]
        env: Vec<(String, String)>,
    },
    /// Does nothing: the network's own round trip (measured by the network bench).
    Noop,
}

/// Why a connection's bytes cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("a frame of {0} bytes is over the limit of {MAX_FRAME}")]
    TooLong(usize),
    #[error("an empty frame")]
    Empty,
    #[error("protocol version {0}; this build speaks {VERSION}")]
    Version(u8),
    #[error("not a message: {0}")]
    Malformed(String),
}

/// One message as a frame.
pub fn encode(message: &Message) -> Vec<u8> {
    let body = serde_json::to_vec(message).unwrap_or_default();
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
    frame.push(VERSION);
    frame.extend_from_slice(&body);
    frame
}

/// Reads frames out of a byte stream as it arrives.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `Ok(None)` when more bytes are needed. After an error the
    /// connection is done: the decoder's state is not meant to be used again.
    pub fn next_message(&mut self) -> Result<Option<Message>, CodecError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(CodecError::TooLong(len));
        }
        if len == 0 {
            return Err(CodecError::Empty);
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let version = self.buf[4];
        if version != VERSION {
            return Err(CodecError::Version(version));
        }
        let parsed = serde_json::from_slice::<Message>(&self.buf[5..4 + len])
            .map_err(|e| CodecError::Malformed(e.to_string()));
        self.buf.drain(..4 + len);
        parsed.map(Some)
    }

    /// Hands every whole message received so far to `f`, in order; stops at the first
    /// bad frame (the connection is done then).
    pub fn for_each_message(&mut self, mut f: impl FnMut(Message)) -> Result<(), CodecError> {
        while let Some(m) = self.next_message()? {
            f(m);
        }
        Ok(())
    }

    /// Bytes received but not yet a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<Message> {
        vec![
            Message::Hello {
                daemon: "matching".into(),
                environment: "local".into(),
                boot: "b1".into(),
                facts: HostFacts {
                    cores: 2,
                    memory_bytes: 1 << 30,
                    kernel: "6.1.0".into(),
                },
            },
            Message::Observations {
                first_seq: 7,
                items: vec![
                    Observation::Event {
                        at_us: 1,
                        source: "MatchingEnginePrimary".into(),
                        name: "state".into(),
                        value: "READY".into(),
                    },
                    Observation::Metric {
                        at_us: 2,
                        source: "MatchingEnginePrimary".into(),
                        name: "internal_latency_us".into(),
                        value: 12.5,
                    },
                ],
            },
            Message::Command {
                id: 3,
                command: Command::Kill {
                    component: "MatchingEnginePrimary".into(),
                    signal: 9,
                },
            },
            Message::Ack { seq: u64::MAX },
        ]
    }

    #[test]
    fn messages_round_trip_through_frames_split_anywhere() {
        let wire: Vec<u8> = sample().iter().flat_map(encode).collect();
        for split in 0..wire.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            d.feed(&wire[..split]);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
            d.feed(&wire[split..]);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
            assert_eq!(got, sample(), "split at {split}");
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn bad_frames_say_why() {
        let mut d = Decoder::default();
        d.feed(&((MAX_FRAME + 1) as u32).to_be_bytes());
        assert_eq!(d.next_message(), Err(CodecError::TooLong(MAX_FRAME + 1)));

        let mut frame = encode(&Message::Ack { seq: 1 });
        frame[4] = 9;
        let mut d = Decoder::default();
        d.feed(&frame);
        assert_eq!(d.next_message(), Err(CodecError::Version(9)));

        let mut d = Decoder::default();
        d.feed(&[0, 0, 0, 3, VERSION, b'{', b'}']);
        assert!(matches!(d.next_message(), Err(CodecError::Malformed(_))));

        let mut d = Decoder::default();
        d.feed(&[0, 0, 0, 0]);
        assert_eq!(d.next_message(), Err(CodecError::Empty));
    }

    proptest! {
        /// Whatever arrives, the decoder answers without panicking, and never holds more
        /// than one frame's worth of bytes it has not judged.
        #[test]
        fn any_bytes_are_judged_without_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut d = Decoder::default();
            'outer: for c in &chunks {
                d.feed(c);
                loop {
                    match d.next_message() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
        }
    }
}
