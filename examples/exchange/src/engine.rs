//! The engine server: configuration, lifecycle states, the client listener
//! and the handling of client requests against the books. Replication and
//! failover live in [`crate::replication`]; this module owns the shared
//! engine state they operate on.
//!
//! Concurrency model: one thread per client connection, and a single mutex
//! around the books. An order is matched, replicated to the backup and
//! acknowledged by it while that mutex is held, so the backup sees operations
//! in exactly the order the primary applied them and an `ACK` to a client
//! always means the backup already has the order.

use std::io::{self, BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::book::{Books, NewOrder, Reject};
use crate::knobs::Knobs;
use crate::log::MatchLog;
use crate::protocol::{self, Reply, Request};
use crate::replication::{self, BackupLink};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Backup,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Backup => "backup",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "primary" => Some(Role::Primary),
            "backup" => Some(Role::Backup),
            _ => None,
        }
    }
}

/// Lifecycle state, reported by `STATUS` and logged as `STATE: <state>`.
/// (`STOPPED` is only ever logged: the process exits right after.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Started, not yet serving orders (a backup stays here until it has
    /// synchronised with a primary).
    Starting,
    /// Primary serving orders.
    Ready,
    /// Backup mirroring a primary; refuses orders.
    Standby,
    /// Backup that took over after losing its primary; serves orders.
    Active,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "STARTING",
            State::Ready => "READY",
            State::Standby => "STANDBY",
            State::Active => "ACTIVE",
        }
    }

    pub fn accepts_orders(self) -> bool {
        matches!(self, State::Ready | State::Active)
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub name: String,
    pub role: Role,
    /// Client listen address.
    pub listen: String,
    pub log: PathBuf,
    /// Primary: where the backup connects.
    pub replication: Option<String>,
    /// Backup: the primary's replication address.
    pub primary: Option<String>,
    pub instruments: Vec<String>,
    /// Orders with a larger quantity get `REJ <id> LIMIT`; `None` = no limit.
    pub max_order_qty: Option<u64>,
    pub knobs: Knobs,
    pub heartbeat: Duration,
    pub heartbeat_timeout: Duration,
    /// The `--config` file the settings came from, if any (for the log).
    pub config: Option<PathBuf>,
}

/// Everything guarded by the engine mutex.
pub(crate) struct Core {
    pub(crate) state: State,
    pub(crate) books: Books,
    /// Number of operations (accepted NEW or CANCEL) applied so far; the
    /// replication stream numbers its operations with it.
    pub(crate) seq: u64,
    /// Primary only: the connected, synchronised backup.
    pub(crate) backup: Option<BackupLink>,
    /// The leak knob's allocations, kept forever on purpose.
    leaked: Vec<Box<[u8]>>,
}

pub(crate) struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) log: MatchLog,
    core: Mutex<Core>,
}

impl Engine {
    pub(crate) fn new(cfg: EngineConfig, log: MatchLog) -> Engine {
        let books = Books::new(&cfg.instruments);
        Engine {
            cfg,
            log,
            core: Mutex::new(Core {
                state: State::Starting,
                books,
                seq: 0,
                backup: None,
                leaked: Vec::new(),
            }),
        }
    }

    /// Locks the core. A panic in another thread while holding the lock
    /// must not take the whole engine down, so poisoning is ignored: every
    /// mutation of the core leaves it consistent between statements.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        match self.core.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Changes state and logs `STATE: <state>`.
    pub(crate) fn set_state(&self, core: &mut Core, state: State) {
        core.state = state;
        self.log.line(&format!("STATE: {}", state.as_str()));
    }

    /// Answers one request. `received` is when the request line was read,
    /// the start of the INTERNAL LATENCY measurement.
    pub(crate) fn handle(&self, request: Request, received: Instant) -> Vec<Reply> {
        match request {
            Request::New(order) => self.new_order(order, received),
            Request::Cancel { id } => self.cancel(id),
            Request::Has { id } => {
                let present = self.lock().books.has(&id);
                vec![Reply::Has { id, present }]
            }
            Request::Book { symbol } => {
                let core = self.lock();
                let Some(book) = core.books.book(&symbol) else {
                    return vec![Reply::Err(format!("UNKNOWN_SYMBOL {symbol}"))];
                };
                let level = |side, price, id: &str, qty| Reply::Level {
                    side,
                    id: id.to_string(),
                    qty,
                    price,
                };
                let mut out: Vec<Reply> = book
                    .bids()
                    .map(|(p, r)| level(crate::book::Side::Buy, p, &r.id, r.qty))
                    .collect();
                out.extend(
                    book.asks()
                        .map(|(p, r)| level(crate::book::Side::Sell, p, &r.id, r.qty)),
                );
                out.push(Reply::End);
                out
            }
            Request::Status => {
                let state = self.lock().state;
                vec![Reply::Status {
                    name: self.cfg.name.clone(),
                    role: self.cfg.role.as_str().to_string(),
                    state: state.as_str().to_string(),
                }]
            }
        }
    }

    fn new_order(&self, order: NewOrder, received: Instant) -> Vec<Reply> {
        let mut core = self.lock();
        if !core.state.accepts_orders() {
            return vec![rej(&order.id, Reject::NotActive)];
        }
        // The latency knob simulates slow matching, so it is spent inside the
        // critical section like real matching work would be.
        if self.cfg.knobs.latency_us > 0 {
            self.cfg.knobs.spend_latency();
        }
        // A pre-trade risk check: refused before it can touch the book. A
        // standby backup never gets here (it mirrors what the primary
        // accepted), so each engine's own limit applies while it serves.
        if self.cfg.max_order_qty.is_some_and(|max| order.qty > max) {
            self.log
                .line(&format!("REJECT {} {}", order.id, Reject::Limit));
            return vec![rej(&order.id, Reject::Limit)];
        }
        let trades = match core.books.submit(&order) {
            Ok(trades) => trades,
            Err(reason) => {
                self.log.line(&format!("REJECT {} {}", order.id, reason));
                return vec![rej(&order.id, reason)];
            }
        };
        if let Some(block) = self.cfg.knobs.leak_block() {
            core.leaked.push(block);
        }
        replication::replicate(self, &mut core, Request::New(order.clone()));
        let latency_us = received.elapsed().as_micros();
        // Logged under the lock so the log shows events in matching order.
        self.log.line(&format!(
            "ORDER {} {} {} {} {}",
            order.id, order.side, order.symbol, order.qty, order.price
        ));
        for t in &trades {
            self.log.line(&format!(
                "TRADE {} {} {} {} {}",
                t.buy_id, t.sell_id, t.symbol, t.qty, t.price
            ));
        }
        self.log.line(&format!("INTERNAL LATENCY: {latency_us}"));
        drop(core);
        // The CPU knob: work after the order is matched, outside the latency measured.
        self.cfg.knobs.burn_cpu();
        let mut replies: Vec<Reply> = trades.into_iter().map(Reply::Trade).collect();
        replies.push(Reply::Ack { id: order.id });
        replies
    }

    fn cancel(&self, id: String) -> Vec<Reply> {
        let mut core = self.lock();
        if !core.state.accepts_orders() {
            return vec![rej(&id, Reject::NotActive)];
        }
        if let Err(reason) = core.books.cancel(&id) {
            return vec![rej(&id, reason)];
        }
        replication::replicate(self, &mut core, Request::Cancel { id: id.clone() });
        self.log.line(&format!("CANCEL {id}"));
        drop(core);
        vec![Reply::Canceled { id }]
    }

    /// Serves one client connection until it closes. Every request line gets
    /// exactly one reply ending with a terminal line.
    fn serve_client(&self, stream: TcpStream) {
        // Small request/reply messages: Nagle would add tens of ms.
        let _ = stream.set_nodelay(true);
        let Ok(read_half) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(read_half);
        let mut writer = BufWriter::new(stream);
        loop {
            let replies = match protocol::read_line(&mut reader) {
                Ok(None) => return,
                Ok(Some(line)) => {
                    let received = Instant::now();
                    match protocol::parse_request(&line) {
                        Ok(request) => self.handle(request, received),
                        Err(reason) => vec![Reply::Err(reason)],
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    // Over-long line: answer, then close, since the rest of
                    // the line would otherwise be read as further requests.
                    let _ = writeln!(writer, "{}", Reply::Err(e.to_string()));
                    let _ = writer.flush();
                    return;
                }
                Err(_) => return,
            };
            for reply in &replies {
                if writeln!(writer, "{reply}").is_err() {
                    return;
                }
            }
            if writer.flush().is_err() {
                return;
            }
        }
    }
}

fn rej(id: &str, reason: Reject) -> Reply {
    Reply::Rej {
        id: id.to_string(),
        reason: reason.code().to_string(),
    }
}

/// Runs an engine until SIGTERM/SIGINT (which exit the process with 0).
/// Returns an exit code only when it cannot start.
pub fn run(cfg: EngineConfig) -> i32 {
    let log = match MatchLog::open(&cfg.log, &cfg.name) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("exchange: cannot open log {}: {e}", cfg.log.display());
            return 1;
        }
    };
    let engine = Arc::new(Engine::new(cfg, log));
    engine.log.line("STATE: STARTING");
    let cfg = &engine.cfg;
    engine.log.line(&format!(
        "CONFIG: role={} listen={} replication={} primary={} instruments={} \
         latency_us={} leak_kb_per_order={} failover_delay_ms={} cpu_us_per_order={} heartbeat_ms={} \
         heartbeat_timeout_ms={} max_order_qty={} config={}",
        cfg.role.as_str(),
        cfg.listen,
        cfg.replication.as_deref().unwrap_or("-"),
        cfg.primary.as_deref().unwrap_or("-"),
        cfg.instruments.join(","),
        cfg.knobs.latency_us,
        cfg.knobs.leak_kb_per_order,
        cfg.knobs.failover_delay_ms,
        cfg.knobs.cpu_us_per_order,
        cfg.heartbeat.as_millis(),
        cfg.heartbeat_timeout.as_millis(),
        cfg.max_order_qty
            .map_or_else(|| "-".to_string(), |n| n.to_string()),
        cfg.config
            .as_ref()
            .map_or_else(|| "-".to_string(), |p| p.display().to_string()),
    ));

    // Installed before anything else so a stop request during start-up is
    // still logged as STOPPED rather than killing the process silently.
    if let Err(e) = spawn_signal_thread(Arc::clone(&engine)) {
        return fail(&engine, &format!("cannot install signal handlers: {e}"));
    }

    let listener = match TcpListener::bind(&cfg.listen) {
        Ok(l) => l,
        Err(e) => return fail(&engine, &format!("cannot listen on {}: {e}", cfg.listen)),
    };
    log_listening(&engine, "clients", &listener);

    match cfg.role {
        Role::Primary => {
            if let Some(addr) = &cfg.replication {
                let repl = match TcpListener::bind(addr) {
                    Ok(l) => l,
                    Err(e) => {
                        return fail(&engine, &format!("cannot listen for backup on {addr}: {e}"));
                    }
                };
                log_listening(&engine, "replication", &repl);
                let e = Arc::clone(&engine);
                thread::spawn(move || replication::accept_backups(&e, repl));
                let e = Arc::clone(&engine);
                thread::spawn(move || replication::heartbeat_loop(&e));
            }
            let mut core = engine.lock();
            engine.set_state(&mut core, State::Ready);
        }
        Role::Backup => {
            let Some(primary) = cfg.primary.clone() else {
                return fail(&engine, "a backup needs --primary");
            };
            let e = Arc::clone(&engine);
            thread::spawn(move || replication::follow_primary(&e, &primary));
        }
    }

    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let e = Arc::clone(&engine);
                thread::spawn(move || e.serve_client(stream));
            }
            // Typically EMFILE: back off instead of spinning.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    0
}

fn log_listening(engine: &Engine, what: &str, listener: &TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        engine.log.line(&format!("LISTENING: {what} on {addr}"));
    }
}

fn fail(engine: &Engine, message: &str) -> i32 {
    engine.log.line(&format!("ERROR: {message}"));
    eprintln!("exchange: {message}");
    1
}

/// A dedicated thread turns SIGTERM/SIGINT into a logged, clean exit(0).
/// Exiting from here is safe: no engine state needs flushing (every log
/// line is already written when it is produced).
fn spawn_signal_thread(engine: Arc<Engine>) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
            engine.log.line(&format!("SIGNAL: {name}"));
            engine.log.line("STATE: STOPPED");
            std::process::exit(0);
        }
    });
    Ok(())
}
