//! Primary/backup replication and failover.
//!
//! Primary side: accept one backup on the replication address, send it a
//! snapshot of the books, then forward every accepted operation and wait for
//! its acknowledgement before the client is answered; heartbeats keep an
//! idle link observable. A backup that errs or stops acknowledging is
//! dropped and the primary carries on alone.
//!
//! Backup side: connect (retrying every 100 ms, staying STARTING), load the
//! snapshot, go STANDBY, apply and acknowledge operations. When the link
//! breaks or falls silent for longer than the heartbeat timeout, declare the
//! primary lost, wait the failover delay, and go ACTIVE with the books as
//! replicated. A backup only ever takes over a primary it was synchronised
//! with, so it never serves an empty book by mistake.

use std::fmt::Display;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::Duration;

use crate::book::Books;
use crate::engine::{Core, Engine, State};
use crate::protocol::{self, Repl, Request};

/// How often a backup retries an unreachable primary.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// One end of a replication connection.
pub(crate) struct Link {
    /// The peer engine's name (from HELLO), or its address on the backup side.
    name: String,
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    timeout: Duration,
}

/// On the primary, the link to its backup.
pub(crate) type BackupLink = Link;

impl Link {
    fn new(stream: TcpStream, name: String, timeout: Duration) -> io::Result<Link> {
        stream.set_nodelay(true)?;
        // Read timeout = heartbeat timeout: silence that long means the peer
        // is gone. The write timeout keeps a stuck peer from blocking the
        // primary (which writes while holding the engine lock) forever.
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Link {
            name,
            reader,
            writer: BufWriter::new(stream),
            timeout,
        })
    }

    fn write(&mut self, msg: &dyn Display) -> Result<(), String> {
        writeln!(self.writer, "{msg}").map_err(|e| self.describe(&e, "write"))
    }

    fn flush(&mut self) -> Result<(), String> {
        self.writer.flush().map_err(|e| self.describe(&e, "write"))
    }

    fn send(&mut self, msg: &dyn Display) -> Result<(), String> {
        self.write(msg)?;
        self.flush()
    }

    /// Next raw line; `waiting_for` names what silence means in the error.
    fn recv_line(&mut self, waiting_for: &str) -> Result<String, String> {
        match protocol::read_line(&mut self.reader) {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err("connection closed by peer".into()),
            Err(e) => Err(self.describe(&e, waiting_for)),
        }
    }

    fn recv(&mut self, waiting_for: &str) -> Result<Repl, String> {
        let line = self.recv_line(waiting_for)?;
        protocol::parse_repl(&line)
    }

    fn describe(&self, e: &io::Error, waiting_for: &str) -> String {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("no {waiting_for} within {} ms", self.timeout.as_millis())
            }
            _ => format!("{waiting_for} failed: {e}"),
        }
    }
}

/// Primary: forwards one applied operation to the backup, if any, and waits
/// for its acknowledgement. Called with the engine lock held, right after
/// the operation was applied locally, so the stream order is the apply order.
pub(crate) fn replicate(engine: &Engine, core: &mut Core, request: Request) {
    core.seq = core.seq.wrapping_add(1);
    let seq = core.seq;
    let Some(link) = core.backup.as_mut() else {
        return;
    };
    let result = link.send(&Repl::Op { seq, request }).and_then(|()| {
        match link.recv("ACK from backup")? {
            Repl::Ack { seq: acked } if acked == seq => Ok(()),
            other => Err(format!("expected ACK {seq}, got {other:?}")),
        }
    });
    if let Err(reason) = result {
        drop_backup(engine, core, &reason);
    }
}

fn drop_backup(engine: &Engine, core: &mut Core, reason: &str) {
    if let Some(link) = core.backup.take() {
        engine
            .log
            .line(&format!("BACKUP LOST: {} ({reason})", link.name));
    }
}

/// Primary: accepts backups one at a time. A new backup replaces the old
/// link (the old one is most likely dead if its engine reconnects).
pub(crate) fn accept_backups(engine: &Engine, listener: TcpListener) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                if let Err(reason) = attach_backup(engine, stream) {
                    engine.log.line(&format!("BACKUP REFUSED: {reason}"));
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn attach_backup(engine: &Engine, stream: TcpStream) -> Result<(), String> {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let mut link = Link::new(stream, peer.clone(), engine.cfg.heartbeat_timeout)
        .map_err(|e| format!("{peer}: {e}"))?;
    let name = match link.recv("HELLO")? {
        Repl::Hello { name } => name,
        other => return Err(format!("{peer}: expected HELLO, got {other:?}")),
    };
    link.name = name.clone();

    // The snapshot is taken and sent under the engine lock, so no operation
    // can slip between the snapshot and the start of the stream.
    let mut core = engine.lock();
    let orders = core.books.resting_orders();
    let seq = core.seq;
    link.write(&Repl::Snapshot {
        seq,
        count: orders.len() as u64,
        instruments: core.books.instruments().map(str::to_string).collect(),
    })?;
    for order in &orders {
        link.write(&Request::New(order.clone()))?;
    }
    link.flush()?;
    match link.recv("SYNCED")? {
        Repl::Synced { seq: synced } if synced == seq => {}
        other => return Err(format!("{name}: expected SYNCED {seq}, got {other:?}")),
    }
    if core.backup.is_some() {
        drop_backup(engine, &mut core, "replaced by a new backup connection");
    }
    engine.log.line(&format!(
        "BACKUP CONNECTED: {name} from {peer} (snapshot of {} orders at seq {seq})",
        orders.len()
    ));
    core.backup = Some(link);
    Ok(())
}

/// Primary: heartbeats to the backup every heartbeat interval, so a backup
/// can tell an idle primary from a dead one.
pub(crate) fn heartbeat_loop(engine: &Engine) {
    loop {
        thread::sleep(engine.cfg.heartbeat);
        let mut core = engine.lock();
        let seq = core.seq;
        let failed = core
            .backup
            .as_mut()
            .and_then(|link| link.send(&Repl::Heartbeat { seq }).err());
        if let Some(reason) = failed {
            drop_backup(engine, &mut core, &reason);
        }
    }
}

/// Backup: connect and synchronise (retrying), mirror the primary, then take
/// over when it is lost. Returns after going ACTIVE.
pub(crate) fn follow_primary(engine: &Engine, addr: &str) {
    let mut last_error: Option<String> = None;
    let link = loop {
        match sync_with_primary(engine, addr) {
            Ok(link) => break link,
            Err(e) => {
                // Logged once per distinct error, not every 100 ms.
                if last_error.as_deref() != Some(e.as_str()) {
                    engine.log.line(&format!(
                        "PRIMARY UNREACHABLE: {addr}: {e} (retrying every {} ms)",
                        RETRY_INTERVAL.as_millis()
                    ));
                    last_error = Some(e);
                }
                thread::sleep(RETRY_INTERVAL);
            }
        }
    };
    let reason = mirror(engine, link);
    engine.log.line(&format!("PRIMARY LOST: {reason}"));
    let delay = engine.cfg.knobs.failover_delay();
    if !delay.is_zero() {
        engine.log.line(&format!(
            "FAILOVER: waiting {} ms before taking over",
            delay.as_millis()
        ));
        thread::sleep(delay);
    }
    let mut core = engine.lock();
    engine.set_state(&mut core, State::Active);
}

fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

fn sync_with_primary(engine: &Engine, addr: &str) -> Result<Link, String> {
    let timeout = engine.cfg.heartbeat_timeout;
    let stream = connect(addr, timeout)?;
    let mut link = Link::new(stream, addr.to_string(), timeout).map_err(|e| e.to_string())?;
    link.send(&Repl::Hello {
        name: engine.cfg.name.clone(),
    })?;
    let (seq, count, instruments) = match link.recv("SNAPSHOT")? {
        Repl::Snapshot {
            seq,
            count,
            instruments,
        } => (seq, count, instruments),
        other => return Err(format!("expected SNAPSHOT, got {other:?}")),
    };
    // The primary's instrument set wins: mirroring is only exact if both
    // sides accept the same symbols.
    let mut books = Books::new(&instruments);
    for _ in 0..count {
        let line = link.recv_line("snapshot line")?;
        match protocol::parse_request(&line)? {
            Request::New(order) => match books.submit(&order) {
                Ok(trades) if trades.is_empty() => {}
                _ => return Err(format!("inconsistent snapshot at {line:?}")),
            },
            other => return Err(format!("unexpected snapshot line {other:?}")),
        }
    }
    link.send(&Repl::Synced { seq })?;

    let mut core = engine.lock();
    core.books = books;
    core.seq = seq;
    engine.log.line(&format!(
        "PRIMARY CONNECTED: {addr} (snapshot of {count} orders at seq {seq}, instruments {})",
        instruments.join(",")
    ));
    engine.set_state(&mut core, State::Standby);
    Ok(link)
}

/// Backup: applies the primary's stream until the link fails; returns why.
fn mirror(engine: &Engine, mut link: Link) -> String {
    loop {
        let msg = match link.recv("heartbeat from primary") {
            Ok(msg) => msg,
            Err(reason) => return reason,
        };
        match msg {
            Repl::Heartbeat { .. } => {}
            Repl::Op { seq, request } => {
                apply(engine, seq, request);
                if let Err(reason) = link.send(&Repl::Ack { seq }) {
                    return reason;
                }
            }
            other => return format!("unexpected message from primary: {other:?}"),
        }
    }
}

fn apply(engine: &Engine, seq: u64, request: Request) {
    let mut core = engine.lock();
    // Wrapping: a sequence number comes off the network and must not be
    // able to panic the backup.
    let expected = core.seq.wrapping_add(1);
    if seq != expected {
        engine.log.line(&format!(
            "REPLICATION ERROR: expected seq {expected}, got {seq}"
        ));
    }
    core.seq = seq;
    let result = match &request {
        Request::New(order) => core.books.submit(order).map(drop),
        Request::Cancel { id } => core.books.cancel(id),
        _ => Ok(()),
    };
    // Cannot happen while the books are identical; logged so a divergence
    // would be visible rather than silent.
    if let Err(reason) = result {
        engine
            .log
            .line(&format!("REPLICATION ERROR: {request} -> {reason}"));
    }
}
