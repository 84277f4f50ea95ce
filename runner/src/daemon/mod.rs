//! `lowtouch daemon`: the monitoring daemon of one host. It dials out to the router (so a
//! firewall in front of the host does not matter), and over a channel whose keys only
//! holders of its environment's secret can have (`net::channel`: it runs commands such as
//! `kill -9`, so it obeys no one else, and no frame a relay could inject opens), gets its
//! configuration, and then:
//!
//! - collects: the system (CPU, memory, load) and each configured component's process
//!   (RSS, CPU, threads, open files; STARTED, CRASHED, STOPPED and RESTARTED events) every
//!   interval, and the components' logs through the rules, as lines arrive; and runs
//!   the configured [`probe`]s (commands whose output goes through the same rules);
//! - sends what it collects through a bounded [`Outbox`], so a lost connection loses
//!   nothing it can hold: sent again after the reconnect, each exactly once;
//! - runs the commands it is sent — only those its configuration allows ([`commands`]).
//!
//! It reconnects by itself with backoff, and treats a router silent for three heartbeats
//! as gone.

pub mod collect;
pub mod commands;
pub mod config;
pub mod error;
pub mod host;
pub mod local;
pub mod probe;
pub mod processor;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use error::ConnectError;

use crate::clock::now_us;
use crate::net::auth;
use crate::net::channel::{Initiator, Records};
use crate::net::codec::{DaemonConfig, Decoder, Message, encode};
use crate::net::outbox::Outbox;

/// How a daemon finds and proves itself to its router.
#[derive(Clone)]
pub struct Options {
    /// `HOST:PORT` of the router.
    pub server: String,
    pub name: String,
    pub environment: String,
    pub secret: Vec<u8>,
    /// Observations kept while the router is away.
    pub outbox_capacity: usize,
    /// A router silent this long is gone.
    pub dead_after: Duration,
    /// The longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// What gives up a component start half-way: the daemon process's signals, or the
    /// run a local daemon serves.
    pub stop: crate::process::control::RunControl,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("server", &self.server)
            .field("name", &self.name)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

/// What the daemon shares between its connection and its collectors.
pub struct Shared {
    pub outbox: Mutex<Outbox>,
    pub config: Mutex<Option<DaemonConfig>>,
    /// Bumped with every new configuration (the collector looks at this, not the config).
    pub generation: std::sync::atomic::AtomicU64,
    /// Written to wake the collector at once (a new configuration); it polls the other end.
    pub wake: (
        std::os::unix::net::UnixStream,
        std::os::unix::net::UnixStream,
    ),
    /// The connection's sending end while connected: the collector sends through it.
    pub wire: Mutex<Option<Arc<wire::Wire>>>,
    /// The components of this host, controlled as the router asks.
    pub components: crate::process::components::Components,
    /// See [`Options::stop`].
    pub stop: crate::process::control::RunControl,
}

/// Runs the daemon until `stop` resolves.
pub async fn run(options: Options, stop: impl std::future::Future<Output = ()>) {
    let shared = Arc::new(Shared {
        outbox: Mutex::new(Outbox::new(options.outbox_capacity)),
        config: Mutex::new(None),
        generation: std::sync::atomic::AtomicU64::new(0),
        wake: std::os::unix::net::UnixStream::pair()
            .and_then(|(a, b)| {
                a.set_nonblocking(true)?;
                b.set_nonblocking(true)?;
                Ok((a, b))
            })
            .expect("a socket pair"),
        wire: Mutex::new(None),
        stop: options.stop.clone(),
        components: crate::process::components::Components::new(
            crate::process::components::Place {
                dir: std::env::current_dir().unwrap_or_default(),
                cwd: std::env::current_dir().unwrap_or_default(),
                remove_env: Vec::new(),
            },
        ),
    });
    let collector = collect::spawn(shared.clone());
    let probes = probe::spawn(shared.clone());
    let boot = auth::nonce()[..16].to_string();
    let connections = async {
        let mut backoff = Duration::from_millis(100);
        loop {
            match connect_once(&options, &boot, &shared).await {
                Ok(why) => {
                    crate::errln!("daemon {}: {why}; reconnecting", options.name);
                    backoff = Duration::from_millis(100);
                }
                Err(why) => crate::errln!(
                    "daemon {}: {why}; next try in {:.1}s",
                    options.name,
                    backoff.as_secs_f64()
                ),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(options.max_backoff);
        }
    };
    tokio::select! {
        _ = connections => {}
        _ = stop => {}
    }
    drop(collector);
    drop(probes);
}

/// One connection, from dialling to its end. `Ok`: it was up and ended; `Err`: it never
/// came up.
async fn connect_once(
    options: &Options,
    boot: &str,
    shared: &Arc<Shared>,
) -> Result<String, ConnectError> {
    let stream = TcpStream::connect(&options.server)
        .await
        .map_err(|source| ConnectError::Unreachable {
            server: options.server.clone(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let hello = encode(&Message::Hello {
        daemon: options.name.clone(),
        environment: options.environment.clone(),
        boot: boot.to_string(),
        facts: crate::monitor::procfs::host_facts(std::path::Path::new("/proc")),
    });
    let (initiator, first) = Initiator::start(&options.secret, &options.environment, &hello)?;
    write.write_all(&first).await?;
    let mut decoder = Decoder::default();
    let handshake = async {
        let mut records = Records::default();
        let router = format!("the router at {}", options.server);
        let answer = crate::net::next_record(&mut read, &mut records, &router)
            .await
            .map_err(|source| ConnectError::NoAnswer {
                environment: options.environment.clone(),
                source,
            })?;
        let (greeting, mut sealer, mut opener) =
            initiator
                .finish(&answer)
                .map_err(|_| ConnectError::Unproven {
                    server: options.server.clone(),
                    environment: options.environment.clone(),
                })?;
        let received = now_us();
        opener.feed(records.rest());
        let Message::Greeting { .. } = crate::net::payload_message(&greeting)? else {
            return Err(ConnectError::NotGreeting);
        };
        let auth = Message::Auth {
            received_us: received,
            sent_us: now_us(),
        };
        let sealed = sealer.sealed(&encode(&auth))?;
        write.write_all(&sealed).await?;
        match crate::net::next_sealed_message(&mut read, &mut opener, &mut decoder, "the router")
            .await?
        {
            Message::Welcome { .. } => Ok((sealer, opener)),
            Message::Refused { reason } => Err(ConnectError::Refused { reason }),
            other => Err(ConnectError::Unexpected { kind: other.kind() }),
        }
    };
    let (sealer, mut opener) = tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .map_err(|_| ConnectError::Timeout)??;
    crate::errln!("daemon {}: connected to {}", options.name, options.server);

    let wire = Arc::new(wire::Wire::new(write, sealer));
    let mut writer = {
        let wire = wire.clone();
        tokio::spawn(async move { wire.write_backlog().await })
    };
    {
        // Everything not acknowledged goes again, from here or from the collector: both
        // send under the outbox's lock, so in order.
        let mut outbox = shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
        outbox.reconnected();
        wire::send_collected(&mut outbox, &wire);
        *shared.wire.lock().unwrap_or_else(|e| e.into_inner()) = Some(wire.clone());
    }
    let mut last_heard = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut buf = vec![0u8; 64 * 1024];
    let mut plain = Vec::new();
    // Whatever came sealed right behind the welcome (a configuration) is read first.
    if let Err(e) = decoder.for_each_message(|m| on_message(options, shared, &wire, m)) {
        return Ok(format!("bad frame from the router: {e}"));
    }
    let why = 'conn: loop {
        tokio::select! {
            n = read.read(&mut buf) => {
                let n = match n {
                    Ok(0) => break 'conn "the router closed the connection".to_string(),
                    Ok(n) => n,
                    Err(e) => break 'conn format!("read failed: {e}"),
                };
                let received = crate::net::receive_sealed(
                    &buf[..n],
                    &mut opener,
                    &mut plain,
                    &mut decoder,
                    |m| on_message(options, shared, &wire, m),
                );
                match received {
                    Ok(true) => last_heard = tokio::time::Instant::now(),
                    // Bytes that are no whole record yet prove nothing: anyone can send them.
                    Ok(false) => {}
                    Err(e) => break 'conn format!("{e}; not obeying this connection"),
                }
            }
            sent = &mut writer => {
                break 'conn match sent {
                    Ok(e) => format!("write failed: {e}"),
                    Err(e) => format!("the writer stopped: {e}"),
                };
            }
            _ = tick.tick() => {
                if last_heard.elapsed() >= options.dead_after {
                    break 'conn format!(
                        "the router was silent for {:.1}s",
                        last_heard.elapsed().as_secs_f64()
                    );
                }
            }
        }
    };
    {
        let _outbox = shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
        *shared.wire.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    writer.abort();
    Ok(why)
}

fn on_message(options: &Options, shared: &Arc<Shared>, wire: &Arc<wire::Wire>, m: Message) {
    match m {
        Message::Configure(config) => {
            crate::errln!(
                "daemon {}: configured: {} component(s), collectors {}",
                options.name,
                config.components.len(),
                config.collectors.join(", ")
            );
            commands::configure(&shared.components, &config);
            *shared.config.lock().unwrap_or_else(|e| e.into_inner()) = Some(config);
            shared
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            use std::io::Write;
            let _ = (&shared.wake.0).write(&[1]);
        }
        Message::Ack { seq } => shared
            .outbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ack(seq),
        Message::Ping { seq, sent_us } => {
            let now = now_us();
            wire.send(&Message::Pong {
                seq,
                ping_sent_us: sent_us,
                received_us: now,
                sent_us: now_us(),
            });
        }
        Message::Command { id, command } => {
            let config = shared
                .config
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let (wire, shared) = (wire.clone(), shared.clone());
            tokio::task::spawn_blocking(move || {
                let outcome = commands::execute(config.as_ref(), &command, &shared);
                wire.send(&Message::Outcome {
                    id,
                    status: outcome.status,
                    stdout: outcome.stdout,
                    stderr: outcome.stderr,
                    error: outcome.error,
                });
            });
        }
        Message::Pong { .. } | Message::Welcome { .. } => {}
        other => crate::errln!(
            "daemon {}: the router sent a `{}` message, which a router does not send; ignored",
            options.name,
            other.kind()
        ),
    }
}
