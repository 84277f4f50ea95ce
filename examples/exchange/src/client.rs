//! The client side of the protocol: one request/reply exchange over a TCP
//! connection, and finding the engine that currently serves orders among a
//! list of candidates (the demo never knows in advance which one that is).

use std::io::{self, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::{self, Reply, Request};

/// Upper bound for a single connect or request, so one unresponsive engine
/// cannot eat the whole deadline of a caller that has others to try.
const MAX_STEP: Duration = Duration::from_millis(1000);

/// A connection to one engine.
pub struct Conn {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Conn> {
        let timeout = timeout.max(Duration::from_millis(1));
        let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let reader = BufReader::new(stream.try_clone()?);
                    let conn = Conn {
                        addr: addr.to_string(),
                        reader,
                        writer: stream,
                    };
                    conn.set_timeout(timeout)?;
                    return Ok(conn);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Read and write timeout for the following requests.
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        // A zero timeout means "block forever" to the OS; never ask for that.
        let t = Some(timeout.max(Duration::from_millis(1)));
        self.writer.set_read_timeout(t)?;
        self.writer.set_write_timeout(t)
    }

    /// Sends one request and reads reply lines up to and including the
    /// terminal one.
    pub fn request(&mut self, request: &Request) -> io::Result<Vec<Reply>> {
        writeln!(self.writer, "{request}")?;
        self.writer.flush()?;
        let mut replies = Vec::new();
        loop {
            let Some(line) = protocol::read_line(&mut self.reader)? else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "engine closed the connection",
                ));
            };
            let reply = protocol::parse_reply(&line)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let done = reply.is_terminal();
            replies.push(reply);
            if done {
                return Ok(replies);
            }
        }
    }

    /// `STATUS` → (name, role, state).
    pub fn status(&mut self) -> io::Result<(String, String, String)> {
        match self.request(&Request::Status)?.pop() {
            Some(Reply::Status { name, role, state }) => Ok((name, role, state)),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected reply to STATUS: {other:?}"),
            )),
        }
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Finds the engine that serves orders, retrying until `deadline`. An
/// `ACTIVE` engine (a backup that took over) is preferred over a `READY`
/// one: if the old primary was restarted next to it, the restarted one has
/// an empty book and the taken-over one holds the real state.
pub fn find_active(engines: &[String], deadline: Instant) -> Result<Conn, String> {
    loop {
        let mut seen = Vec::new();
        let mut ready = None;
        for addr in engines {
            let step = remaining(deadline).min(MAX_STEP);
            let probe = Conn::connect(addr, step).and_then(|mut c| {
                let (_, _, state) = c.status()?;
                Ok((c, state))
            });
            match probe {
                Ok((conn, state)) if state == "ACTIVE" => return Ok(conn),
                Ok((conn, state)) => {
                    if state == "READY" && ready.is_none() {
                        ready = Some(conn);
                    }
                    seen.push(format!("{addr}: {state}"));
                }
                Err(e) => seen.push(format!("{addr}: {e}")),
            }
        }
        if let Some(conn) = ready {
            return Ok(conn);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no ACTIVE or READY engine before the deadline ({})",
                seen.join("; ")
            ));
        }
        thread::sleep(remaining(deadline).min(Duration::from_millis(50)));
    }
}
