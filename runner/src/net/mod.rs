//! The monitoring network's wire (issue 5): how the router on the management server and
//! the daemons on the hosts of the system under test talk. So far the pure parts:
//! [`codec`] (length-prefixed, versioned frames of JSON messages), [`auth`] (mutual
//! HMAC challenge–response over a per-environment secret), [`timeline`] (each daemon's
//! clock offset, from ping exchanges) and [`outbox`] (numbered, acknowledged observations:
//! exactly once across reconnects, bounded, drops counted). The router and the daemon
//! that put them on sockets are still to come.
//!
//! **Owns:** the protocol. **May not touch:** the store, processes, files.

pub mod auth;
pub mod codec;
pub mod outbox;
pub mod router;
pub mod timeline;

pub use codec::{Command, Decoder, Message, Observation};

/// The next message on a connection being set up (both ends of a handshake read so).
/// `peer` names the other side in the error when it closes first.
pub(crate) async fn next_message(
    read: &mut tokio::net::tcp::OwnedReadHalf,
    decoder: &mut Decoder,
    peer: &str,
) -> Result<Message, String> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(m) = decoder.next_message().map_err(|e| e.to_string())? {
            return Ok(m);
        }
        let n = read.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("{peer} closed the connection during the handshake"));
        }
        decoder.feed(&buf[..n]);
    }
}
