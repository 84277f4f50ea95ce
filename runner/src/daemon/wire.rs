//! The sending end of a daemon's connection, shared by the runtime and the collector
//! thread. The collector writes its observations itself: a log line costs the daemon one
//! thread's wake-up and one `sendto`, instead of also waking the runtime to hand the frame
//! over (a third of its CPU per line, measured). Frames go out whole and in order: every
//! frame is sealed and written under `pending`'s lock (so records are numbered in the order
//! they go out); what the socket does not take at once waits there, and the runtime's
//! writer sends it when the socket is writable again.

use std::sync::Mutex;

use tokio::net::tcp::OwnedWriteHalf;

use crate::net::channel::Sealer;
use crate::net::codec::{Message, encode};
use crate::net::outbox::Outbox;

pub struct Wire {
    write: OwnedWriteHalf,
    /// The channel's sending keys, and the sealed bytes the socket has not taken yet.
    pending: Mutex<Pending>,
    /// Wakes the writer when `pending` has bytes.
    backlog: tokio::sync::Notify,
}

struct Pending {
    sealer: Sealer,
    bytes: Vec<u8>,
    /// More than [`MAX_BACKLOG`] waited: the connection is to end (its observations wait
    /// in the outbox, sent again after the reconnect).
    overflowed: bool,
}

/// The most sealed bytes that may wait for a socket that takes nothing (a router that is
/// stuck, or a relay that stopped reading): past it the connection ends, so the host under
/// test does not pay for it in memory.
const MAX_BACKLOG: usize = 8 << 20;

impl Wire {
    pub fn new(write: OwnedWriteHalf, sealer: Sealer) -> Wire {
        Wire {
            write,
            pending: Mutex::new(Pending {
                sealer,
                bytes: Vec::new(),
                overflowed: false,
            }),
            backlog: tokio::sync::Notify::new(),
        }
    }

    /// Sends one message, from any thread; never blocks on the socket.
    pub fn send(&self, m: &Message) {
        let frame = encode(m);
        let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Pending {
            sealer,
            bytes,
            overflowed,
        } = &mut *guard;
        if *overflowed {
            return;
        }
        let queued = bytes.len();
        // Sealing fails only past Noise's nonce space (2^64 records): never in practice.
        if sealer.seal(&frame, bytes).is_err() {
            bytes.truncate(queued);
            return;
        }
        if queued == 0 {
            match self.write.try_write(bytes) {
                Ok(n) if n == bytes.len() => {
                    bytes.clear();
                    return;
                }
                Ok(n) => {
                    bytes.drain(..n);
                }
                // Full (or failed: the writer meets the error and the connection ends).
                Err(_) => {}
            }
        } else if bytes.len() > MAX_BACKLOG {
            *overflowed = true;
            *bytes = Vec::new();
        }
        drop(guard);
        self.backlog.notify_one();
    }

    /// The runtime's part: sends what waits whenever the socket takes it. Returns the
    /// error that ended the connection's sending.
    pub async fn write_backlog(&self) -> std::io::Error {
        loop {
            self.backlog.notified().await;
            loop {
                {
                    let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    if pending.overflowed {
                        return std::io::Error::other(format!(
                            "the router took nothing while {} MiB waited",
                            MAX_BACKLOG >> 20
                        ));
                    }
                    if pending.bytes.is_empty() {
                        break;
                    }
                    match self.write.try_write(&pending.bytes) {
                        Ok(n) => {
                            pending.bytes.drain(..n);
                            continue;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return e,
                    }
                }
                if let Err(e) = self.write.writable().await {
                    return e;
                }
            }
        }
    }
}

/// Sends what the outbox holds that this connection has not sent yet (and how much it
/// had to drop while the router was away).
pub fn send_collected(outbox: &mut Outbox, wire: &Wire) {
    let dropped = outbox.take_dropped();
    if dropped > 0 {
        wire.send(&Message::Dropped { count: dropped });
    }
    while let Some((first_seq, items)) = outbox.to_send(512) {
        wire.send(&Message::Observations { first_seq, items });
    }
}
