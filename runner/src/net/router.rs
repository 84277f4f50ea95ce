//! The router: daemons dial in (so they work behind a client's firewall), prove they hold
//! their environment's secret (and get the router's proof in turn), are configured, send
//! their observations and run the commands they are sent.
//!
//! Per connection: the handshake must finish within [`RouterConfig::auth_timeout`]; a
//! second daemon with a connected daemon's name is refused; pings every
//! [`RouterConfig::heartbeat`] measure the daemon's clock and a peer silent for
//! [`RouterConfig::dead_after`] is dropped. Observations are moved onto the router's
//! timeline, deduplicated by sequence number (per daemon process), acknowledged, and
//! handed to whoever listens ([`Router::bind`]'s receiver: the data processor).

use crate::clock::now_us;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::auth;
use super::channel::{self, Opener, Records, Responder, Sealer};
use super::codec::{Command, DaemonConfig, Decoder, HostFacts, Message, Observation, encode};
use super::outbox::Inbox;
use super::timeline::{Clock, Sample};

/// A daemon's preface and first record must arrive within this of its connection.
const FIRST_RECORD_WITHIN: Duration = Duration::from_secs(2);

/// How often a connection looks whether to acknowledge what it stored.
const ACK_EVERY: Duration = Duration::from_millis(100);

/// A connection acknowledges at once when this many observations wait for it (the
/// daemon's outbox frees them), else at most every [`ACK_IDLE`]: an acknowledgement wakes
/// the daemon, and a daemon on a quiet log should not wake for each line twice.
const ACK_BATCH: u64 = 1024;
const ACK_IDLE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct RouterConfig {
    /// Environment name → its daemons' shared secret.
    pub secrets: HashMap<String, Vec<u8>>,
    /// `ENVIRONMENT/DAEMON` → its configuration, sent after the handshake.
    pub configs: HashMap<String, DaemonConfig>,
    pub auth_timeout: Duration,
    /// Connections allowed to be in their handshake at once: an unauthenticated peer holds
    /// at most one handshake record's buffer for at most `auth_timeout`, and past this
    /// many, new connections are closed at once (an authenticated daemon retries).
    pub max_handshakes: usize,
    /// Of those, at most this many from one address: one host cannot take every slot and
    /// keep the daemons of the others out.
    pub max_handshakes_per_peer: usize,
    pub heartbeat: Duration,
    pub dead_after: Duration,
    /// Acknowledge only what the data processor reports stored ([`Router::stored`]),
    /// instead of what was handed to it: exactly once across a restart of the server.
    pub ack_when_stored: bool,
    /// What an earlier server stored already: `(environment, daemon, boot)` → the next
    /// sequence number expected (`Store::inbox_marks`).
    pub inboxes: HashMap<(String, String, String), u64>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            secrets: HashMap::new(),
            configs: HashMap::new(),
            auth_timeout: Duration::from_secs(5),
            max_handshakes: 256,
            max_handshakes_per_peer: 16,
            heartbeat: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
            ack_when_stored: false,
            inboxes: HashMap::new(),
        }
    }
}

/// An observation as the router hands it on: whose, and when on the router's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub daemon: String,
    pub environment: String,
    /// The daemon process it came from, and its number there (`None`: the router's own).
    pub boot: String,
    pub seq: Option<u64>,
    /// Router time, µs since the epoch.
    pub at_us: i64,
    pub observation: Observation,
}

/// What came of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouterError {
    #[error("daemon `{0}` is not connected")]
    NotConnected(String),
    #[error("daemon `{daemon}` did not answer within {seconds:.1}s")]
    Timeout { daemon: String, seconds: f64 },
    #[error("daemon `{0}` went away before it answered")]
    Gone(String),
}

/// A connected daemon, as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub name: String,
    pub environment: String,
    pub peer: String,
    /// Router clock minus daemon clock, µs, and its uncertainty.
    pub offset_us: Option<(i64, i64)>,
    /// The daemon applied its configuration (it follows the logs from then on).
    pub configured: bool,
}

/// An authenticated daemon's connection, ready for its loop.
struct Handshaken {
    name: String,
    /// `ENVIRONMENT/DAEMON`.
    key: String,
    boot: String,
    link: Arc<DaemonLink>,
    rx: mpsc::UnboundedReceiver<Message>,
    sealer: Sealer,
    opener: Opener,
    /// Holds whatever the daemon sent right behind its `auth`.
    decoder: Decoder,
}

/// A connection's place among the handshakes in progress: given back when dropped.
struct Handshaking {
    _permit: tokio::sync::OwnedSemaphorePermit,
    peer: std::net::IpAddr,
    counts: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
}

impl Handshaking {
    /// A place for `peer`, unless it has its share of them already.
    fn enter(
        router: &Router,
        peer: SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Option<Handshaking> {
        let counts = router.inner.handshaking.clone();
        {
            let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(peer.ip()).or_default();
            if *n >= router.inner.config.max_handshakes_per_peer.max(1) {
                return None;
            }
            *n += 1;
        }
        Some(Handshaking {
            _permit: permit,
            peer: peer.ip(),
            counts,
        })
    }
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.peer);
            }
        }
    }
}

/// Why a handshake ended without a daemon.
enum Refusal {
    /// The peer is not authenticated: it is told nothing (not even which environments
    /// exist), only closed.
    Silent(String),
    /// The peer is authenticated but refused (a second daemon of one name): told why,
    /// sealed.
    Told { why: String, sealer: Sealer },
}

struct DaemonLink {
    environment: String,
    session: String,
    peer: String,
    tx: mpsc::UnboundedSender<Message>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    clock: Mutex<Clock>,
    configured: std::sync::atomic::AtomicBool,
}

/// A daemon's host facts, and when it connected and went away (µs; `None`: connected).
struct Seen {
    facts: HostFacts,
    until_us: Option<i64>,
}

struct Inner {
    config: RouterConfig,
    /// Each environment's pre-shared key (from its secret), tried on a first record.
    psks: Vec<(String, [u8; 32])>,
    /// Handshakes in progress may take one each.
    handshakes: Arc<tokio::sync::Semaphore>,
    /// Handshakes in progress per peer address.
    handshaking: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
    /// `ENVIRONMENT/DAEMON` → its configuration now (a run may replace it).
    configs: Mutex<HashMap<String, DaemonConfig>>,
    /// `ENVIRONMENT/DAEMON` → its connection: names are unique per environment.
    daemons: Mutex<HashMap<String, Arc<DaemonLink>>>,
    /// (daemon, boot) → what was stored already: survives reconnects.
    inboxes: Mutex<HashMap<(String, String), Inbox>>,
    /// `ENVIRONMENT/DAEMON` → its host's facts, from its last authenticated hello.
    facts: Mutex<HashMap<String, Seen>>,
    /// (`ENVIRONMENT/DAEMON`, boot) → the highest number the data processor stored.
    stored: Mutex<HashMap<(String, String), u64>>,
    delivered: mpsc::UnboundedSender<Delivered>,
    next_id: AtomicU64,
}

#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl Router {
    /// Listens on `addr`; returns the router, the address it bound and the stream of
    /// observations.
    pub async fn bind(
        addr: &str,
        config: RouterConfig,
    ) -> std::io::Result<(Router, SocketAddr, mpsc::UnboundedReceiver<Delivered>)> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut psks: Vec<(String, [u8; 32])> = config
            .secrets
            .iter()
            .map(|(env, secret)| (env.clone(), channel::psk(secret, env)))
            .collect();
        psks.sort();
        let handshakes = Arc::new(tokio::sync::Semaphore::new(config.max_handshakes.max(1)));
        let router = Router {
            inner: Arc::new(Inner {
                psks,
                handshakes,
                handshaking: Arc::new(Mutex::new(HashMap::new())),
                configs: Mutex::new(config.configs.clone()),
                // What an earlier server stored counts as stored: a resend of it alone is
                // acknowledged, not kept in the daemon's outbox.
                stored: Mutex::new(
                    config
                        .inboxes
                        .iter()
                        .map(|((env, daemon, boot), next)| {
                            (
                                (format!("{env}/{daemon}"), boot.clone()),
                                next.saturating_sub(1),
                            )
                        })
                        .collect(),
                ),
                config,
                daemons: Mutex::new(HashMap::new()),
                facts: Mutex::new(HashMap::new()),
                inboxes: Mutex::new(HashMap::new()),
                delivered: tx,
                next_id: AtomicU64::new(1),
            }),
        };
        let r = router.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        // Past the cap, unauthenticated peers wait for nobody: closed now.
                        let Ok(permit) = r.inner.handshakes.clone().try_acquire_owned() else {
                            drop(stream);
                            continue;
                        };
                        let Some(permit) = Handshaking::enter(&r, peer, permit) else {
                            drop(stream);
                            continue;
                        };
                        let r = r.clone();
                        tokio::spawn(async move { r.serve_connection(stream, peer, permit).await });
                    }
                    Err(e) => {
                        crate::errln!("router: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok((router, local, rx))
    }

    /// The daemons connected now.
    pub fn connected(&self) -> Vec<Connected> {
        let daemons = self.inner.daemons.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Connected> = daemons
            .iter()
            .map(|(key, link)| Connected {
                name: key
                    .split_once('/')
                    .map_or(key.clone(), |(_, n)| n.to_string()),
                environment: link.environment.clone(),
                peer: link.peer.clone(),
                offset_us: link
                    .clock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .offset(),
                configured: link.configured.load(Ordering::SeqCst),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The facts of the hosts whose daemons were connected at some time since `since_us`
    /// (a run's start): (environment, daemon, facts), in name order. A daemon gone before
    /// the run began took no part in it.
    pub fn facts_since(&self, since_us: i64) -> Vec<(String, String, HostFacts)> {
        let facts = self.inner.facts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, String, HostFacts)> = facts
            .iter()
            .filter(|(_, seen)| seen.until_us.is_none_or(|u| u >= since_us))
            .filter_map(|(key, seen)| {
                let (env, daemon) = key.split_once('/')?;
                Some((env.to_string(), daemon.to_string(), seen.facts.clone()))
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// The data processor stored everything of daemon `key`'s process `boot` up to `seq`
    /// (on disk): acknowledged with the next acknowledgement.
    pub fn stored(&self, key: &str, boot: &str, seq: u64) {
        let mut stored = self.inner.stored.lock().unwrap_or_else(|e| e.into_inner());
        let mark = stored
            .entry((key.to_string(), boot.to_string()))
            .or_default();
        *mark = (*mark).max(seq);
    }

    /// Replaces the configuration of daemon `key` (`ENVIRONMENT/NAME`): a run's, rendered
    /// with its variables. A connected daemon gets it at once — before any command sent
    /// after this call, as one connection keeps its order — and every reconnect gets it.
    pub fn configure(&self, key: &str, config: DaemonConfig) {
        self.inner
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), config.clone());
        let daemons = self.inner.daemons.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(link) = daemons.get(key) {
            let _ = link.tx.send(Message::Configure(config));
        }
    }

    /// Sends `command` to `daemon` (`ENVIRONMENT/NAME`, or a name only one connected
    /// daemon has) and waits for its outcome.
    pub async fn command(
        &self,
        daemon: &str,
        command: Command,
        timeout: Duration,
    ) -> Result<Outcome, RouterError> {
        let link = {
            let daemons = self.inner.daemons.lock().unwrap_or_else(|e| e.into_inner());
            let mut found: Vec<Arc<DaemonLink>> =
                daemons.get(daemon).cloned().into_iter().collect();
            if found.is_empty() {
                found = daemons
                    .iter()
                    .filter(|(k, _)| k.split_once('/').is_some_and(|(_, n)| n == daemon))
                    .map(|(_, l)| l.clone())
                    .collect();
            }
            if found.len() != 1 {
                return Err(RouterError::NotConnected(daemon.to_string()));
            }
            found.remove(0)
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        link.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        if link.tx.send(Message::Command { id, command }).is_err() {
            return Err(RouterError::Gone(daemon.to_string()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(RouterError::Gone(daemon.to_string())),
            Err(_) => {
                link.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                Err(RouterError::Timeout {
                    daemon: daemon.to_string(),
                    seconds: timeout.as_secs_f64(),
                })
            }
        }
    }

    async fn serve_connection(&self, stream: TcpStream, peer: SocketAddr, permit: Handshaking) {
        let _ = stream.set_nodelay(true);
        let (mut read, mut write) = stream.into_split();
        let handshake = tokio::time::timeout(
            self.inner.config.auth_timeout,
            self.handshake(&mut read, &mut write, peer),
        )
        .await;
        drop(permit);
        let Handshaken {
            name,
            key,
            boot,
            link,
            mut rx,
            mut sealer,
            mut opener,
            mut decoder,
        } = match handshake {
            Ok(Ok(done)) => done,
            // Not authenticated: nothing is said to a peer that may be anyone.
            Ok(Err(Refusal::Silent(why))) => {
                crate::errln!("router: {peer}: {why}; closed");
                return;
            }
            Ok(Err(Refusal::Told { why, mut sealer })) => {
                crate::errln!("router: {peer}: {why}");
                if let Ok(sealed) = sealer.sealed(&encode(&Message::Refused { reason: why })) {
                    let _ = write.write_all(&sealed).await;
                }
                return;
            }
            Err(_) => {
                crate::errln!(
                    "router: {peer}: no authentication within {}; dropped",
                    crate::scenario::duration::human(self.inner.config.auth_timeout)
                );
                return;
            }
        };
        crate::errln!("router: daemon {key} connected from {peer}");

        // The writer: everything queued for this daemon, sealed in order.
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                let Ok(sealed) = sealer.sealed(&encode(&m)) else {
                    break;
                };
                if write.write_all(&sealed).await.is_err() {
                    break;
                }
            }
        });
        let mut plain = Vec::new();
        let mut heartbeat = tokio::time::interval(self.inner.config.heartbeat);
        let mut last_heard = tokio::time::Instant::now();
        let mut ping_seq = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        // Acknowledgements go out at most every ACK_EVERY (one wake-up of the daemon per
        // batch, not per line); what they cover is stored already.
        let mut ack_tick = tokio::time::interval(ACK_EVERY);
        let mut unacked: Option<u64> = None;
        let mut acked: Option<u64> = None;
        let mut acked_at = tokio::time::Instant::now();
        let due = |seq: u64, acked: Option<u64>, at: tokio::time::Instant| {
            seq.saturating_sub(acked.unwrap_or(0)) >= ACK_BATCH || at.elapsed() >= ACK_IDLE
        };
        // Whatever the daemon sent right behind its `auth` is handled first.
        let leftover = decoder.for_each_message(|m| {
            if let Some(seq) = self.on_message(&name, &boot, &link, m) {
                unacked = Some(seq);
            }
        });
        let why = if let Err(e) = leftover {
            format!("bad frame: {e}")
        } else {
            'conn: loop {
                tokio::select! {
                    n = read.read(&mut buf) => {
                        let n = match n {
                            Ok(0) => break 'conn "closed the connection".to_string(),
                            Ok(n) => n,
                            Err(e) => break 'conn format!("read failed: {e}"),
                        };
                        let received = crate::net::receive_sealed(
                            &buf[..n],
                            &mut opener,
                            &mut plain,
                            &mut decoder,
                            |m| {
                                if let Some(seq) = self.on_message(&name, &boot, &link, m) {
                                    unacked = Some(seq);
                                }
                            },
                        );
                        match received {
                            Ok(true) => last_heard = tokio::time::Instant::now(),
                            Ok(false) => {}
                            Err(e) => break 'conn format!("{e}; closed"),
                        }
                    }
                    _ = ack_tick.tick() => {
                        if self.inner.config.ack_when_stored {
                            let stored = self
                                .inner
                                .stored
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get(&(key.clone(), boot.clone()))
                                .copied();
                            if let Some(seq) = stored.filter(|s| Some(*s) > acked && due(*s, acked, acked_at)) {
                                acked = Some(seq);
                                acked_at = tokio::time::Instant::now();
                                let _ = link.tx.send(Message::Ack { seq });
                            }
                        } else if let Some(seq) = unacked.filter(|s| due(*s, acked, acked_at)) {
                            unacked = None;
                            acked = Some(seq);
                            acked_at = tokio::time::Instant::now();
                            let _ = link.tx.send(Message::Ack { seq });
                        }
                    }
                    _ = heartbeat.tick() => {
                        if last_heard.elapsed() >= self.inner.config.dead_after {
                            break 'conn format!(
                                "silent for {:.1}s; presumed dead",
                                last_heard.elapsed().as_secs_f64()
                            );
                        }
                        ping_seq += 1;
                        let _ = link.tx.send(Message::Ping { seq: ping_seq, sent_us: now_us() });
                    }
                }
            }
        };
        crate::errln!("router: daemon {key}: {why}");
        writer.abort();
        // Commands it had not answered fail now (RouterError::Gone), not at their timeout.
        link.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut daemons = self.inner.daemons.lock().unwrap_or_else(|e| e.into_inner());
        if daemons.get(&key).is_some_and(|l| l.session == link.session) {
            daemons.remove(&key);
            if let Some(seen) = self
                .inner
                .facts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&key)
            {
                seen.until_us = Some(now_us());
            }
        }
        drop(daemons);
        // Commands waiting for this daemon learn it went away (their senders drop).
        link.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The Noise handshake (the first record opened with the key of the environment it
    /// names, the answer sealed back), then the daemon's first sealed frame; then the
    /// daemon is registered under its name.
    async fn handshake(
        &self,
        read: &mut tokio::net::tcp::OwnedReadHalf,
        write: &mut tokio::net::tcp::OwnedWriteHalf,
        peer: SocketAddr,
    ) -> Result<Handshaken, Refusal> {
        let silent = Refusal::Silent;
        // A daemon sends its preface and first record at once: a peer that dribbles them
        // gives its handshake slot back soon.
        let mut records = Records::default();
        let first = tokio::time::timeout(FIRST_RECORD_WITHIN, async {
            let mut preface = [0u8; channel::PREFACE.len()];
            read.read_exact(&mut preface)
                .await
                .map_err(|e| format!("no preface ({e})"))?;
            if preface != channel::PREFACE {
                return Err(channel::ChannelError::Preface.to_string());
            }
            crate::net::next_record(read, &mut records, "the peer")
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| {
            silent(format!(
                "no first record within {}",
                crate::scenario::duration::human(FIRST_RECORD_WITHIN)
            ))
        })?
        .map_err(silent)?;
        let candidates = self.inner.psks.iter().map(|(env, key)| (env.as_str(), key));
        let (environment, hello, responder) = Responder::open(candidates, &first)
            .map_err(|e| silent(format!("{e} (an unknown environment or a wrong secret)")))?;
        let Message::Hello {
            daemon,
            environment: claimed,
            boot,
            facts,
        } = crate::net::payload_message(&hello).map_err(|e| silent(e.to_string()))?
        else {
            return Err(silent("the first message was not a hello".into()));
        };
        if claimed != environment {
            return Err(silent(format!(
                "daemon {daemon} names environment `{claimed}` but holds `{environment}`'s key"
            )));
        }
        let environment = environment.to_string();
        let challenge_sent = now_us();
        let greeting = encode(&Message::Greeting {
            server_time_us: challenge_sent,
        });
        let (answer, sealer, mut opener) = responder
            .answer(&greeting)
            .map_err(|e| silent(e.to_string()))?;
        write
            .write_all(&answer)
            .await
            .map_err(|e| silent(e.to_string()))?;
        opener.feed(records.rest());
        let mut decoder = Decoder::default();
        let told = |why: String, sealer: Sealer| Refusal::Told { why, sealer };
        let auth = crate::net::next_sealed_message(read, &mut opener, &mut decoder, "the daemon")
            .await
            .map_err(|e| {
                silent(format!(
                    "daemon {daemon} ({environment}) left after the handshake: {e}"
                ))
            })?;
        let Message::Auth {
            received_us,
            sent_us,
        } = auth
        else {
            return Err(told(
                format!("daemon {daemon}: its first sealed message was not `auth`"),
                sealer,
            ));
        };
        let auth_received = now_us();
        let (tx, rx) = mpsc::unbounded_channel();
        let session = auth::nonce()[..16].to_string();
        let mut clock = Clock::default();
        clock.add(Sample::router_initiated(
            challenge_sent,
            received_us,
            sent_us,
            auth_received,
        ));
        let link = Arc::new(DaemonLink {
            environment: environment.clone(),
            session: session.clone(),
            peer: peer.to_string(),
            tx,
            pending: Mutex::new(HashMap::new()),
            clock: Mutex::new(clock),
            configured: std::sync::atomic::AtomicBool::new(false),
        });
        let key = format!("{environment}/{daemon}");
        // A name the environment does not declare would be configured with nothing and
        // watch nothing, silently: refused, with the names it does declare. (A router a
        // run starts gets its configurations only when the run begins: none yet, no check.)
        {
            let configs = self.inner.configs.lock().unwrap_or_else(|e| e.into_inner());
            let prefix = format!("{environment}/");
            let mut declared: Vec<&str> = configs
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .collect();
            if !declared.is_empty() && !configs.contains_key(&key) {
                declared.sort_unstable();
                return Err(told(
                    format!(
                        "no daemon named `{daemon}` in environment `{environment}`; it declares: {}",
                        declared.join(", ")
                    ),
                    sealer,
                ));
            }
        }
        // Welcome goes first on the link: a `configure` for this daemon may be queued the
        // moment it is listed.
        let _ = link.tx.send(Message::Welcome { session });
        {
            let mut daemons = self.inner.daemons.lock().unwrap_or_else(|e| e.into_inner());
            if daemons.contains_key(&key) {
                return Err(told(
                    format!(
                        "a daemon named `{daemon}` is connected for environment `{environment}` already; refused the second"
                    ),
                    sealer,
                ));
            }
            daemons.insert(key.clone(), link.clone());
        }
        self.inner
            .facts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key.clone(),
                Seen {
                    facts,
                    until_us: None,
                },
            );
        let config = self
            .inner
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(config) = config {
            let _ = link.tx.send(Message::Configure(config));
        }
        Ok(Handshaken {
            name: daemon,
            key,
            boot,
            link,
            rx,
            sealer,
            opener,
            decoder,
        })
    }

    /// Handles one message; returns the sequence number observations are stored up to,
    /// for the next acknowledgement.
    fn on_message(&self, name: &str, boot: &str, link: &DaemonLink, m: Message) -> Option<u64> {
        match m {
            Message::Observations { first_seq, items } => {
                let (fresh, ack) = {
                    let mut inboxes = self.inner.inboxes.lock().unwrap_or_else(|e| e.into_inner());
                    inboxes
                        .entry((name.to_string(), boot.to_string()))
                        .or_insert_with(|| Inbox {
                            // What a server before this one stored is not stored twice.
                            next_expected: self
                                .inner
                                .config
                                .inboxes
                                .get(&(
                                    link.environment.clone(),
                                    name.to_string(),
                                    boot.to_string(),
                                ))
                                .copied()
                                .unwrap_or(0),
                        })
                        .accept(first_seq, items)
                };
                let first = (ack + 1).saturating_sub(fresh.len() as u64);
                let clock = link.clock.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for (i, observation) in fresh.into_iter().enumerate() {
                    if matches!(&observation, Observation::Event { source, name, .. } if source == "daemon" && name == "configured")
                    {
                        link.configured.store(true, Ordering::SeqCst);
                    }
                    let daemon_at = match &observation {
                        Observation::Event { at_us, .. } | Observation::Metric { at_us, .. } => {
                            *at_us
                        }
                    };
                    let _ = self.inner.delivered.send(Delivered {
                        daemon: name.to_string(),
                        environment: link.environment.clone(),
                        boot: boot.to_string(),
                        seq: Some(first + i as u64),
                        at_us: clock.to_router(daemon_at),
                        observation,
                    });
                }
                return Some(ack);
            }
            Message::Dropped { count } => {
                crate::errln!("router: daemon {name} dropped {count} observations while away");
                let _ = self.inner.delivered.send(Delivered {
                    daemon: name.to_string(),
                    environment: link.environment.clone(),
                    boot: boot.to_string(),
                    seq: None,
                    at_us: now_us(),
                    observation: Observation::Event {
                        at_us: now_us(),
                        source: name.to_string(),
                        name: "dropped".into(),
                        value: count.to_string(),
                    },
                });
            }
            Message::Pong {
                ping_sent_us,
                received_us,
                sent_us,
                ..
            } => {
                link.clock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .add(Sample::router_initiated(
                        ping_sent_us,
                        received_us,
                        sent_us,
                        now_us(),
                    ));
            }
            Message::Ping { seq, sent_us } => {
                let now = now_us();
                let _ = link.tx.send(Message::Pong {
                    seq,
                    ping_sent_us: sent_us,
                    received_us: now,
                    sent_us: now,
                });
            }
            Message::Outcome {
                id,
                status,
                stdout,
                stderr,
                error,
            } => {
                if let Some(tx) = link
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id)
                {
                    let _ = tx.send(Outcome {
                        status,
                        stdout,
                        stderr,
                        error,
                    });
                }
            }
            other => {
                crate::errln!(
                    "router: daemon {name} sent a `{}` message, which a daemon does not send; ignored",
                    other.kind()
                );
            }
        }
        None
    }
}
