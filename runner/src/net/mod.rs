//! The monitoring network's wire: how the router on the management server and the daemons
//! on the hosts of the system under test talk. The pure parts: [`channel`] (a Noise
//! handshake over the environment's secret, then every frame sealed), [`codec`]
//! (length-prefixed, versioned frames of JSON messages, carried inside the channel),
//! [`auth`] (secrets and random ids), [`timeline`] (each daemon's clock offset, from ping
//! exchanges) and [`outbox`] (numbered, acknowledged observations: exactly once across
//! reconnects, bounded, drops counted); and [`router`], which puts them on sockets on the
//! server's side (the daemon's side is `crate::daemon`).
//!
//! **Owns:** the protocol. **May not touch:** the store, processes, files.

pub mod auth;
pub mod channel;
pub mod codec;
pub mod error;
pub mod outbox;
pub mod router;
pub mod timeline;

pub use codec::{Command, Decoder, Message, Observation};
pub use error::NetError;

/// Reads from `read` into `records` until a whole record arrived (a handshake's step).
/// `peer` names the other side in the error when it closes first.
pub(crate) async fn next_record(
    read: &mut tokio::net::tcp::OwnedReadHalf,
    records: &mut channel::Records,
    peer: &str,
) -> Result<Vec<u8>, NetError> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(record) = records.next_record() {
            return Ok(record.to_vec());
        }
        let n = read.read(&mut buf).await?;
        if n == 0 {
            return Err(NetError::Closed { peer: peer.into() });
        }
        records.feed(&buf[..n]);
    }
}

/// The next message on a sealed connection still being set up.
pub(crate) async fn next_sealed_message(
    read: &mut tokio::net::tcp::OwnedReadHalf,
    opener: &mut channel::Opener,
    decoder: &mut Decoder,
    peer: &str,
) -> Result<Message, NetError> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let mut plain = Vec::new();
    loop {
        if let Some(m) = decoder.next_message()? {
            return Ok(m);
        }
        plain.clear();
        opener.open(&mut plain)?;
        if !plain.is_empty() {
            decoder.feed(&plain);
            continue;
        }
        let n = read.read(&mut buf).await?;
        if n == 0 {
            return Err(NetError::Closed { peer: peer.into() });
        }
        opener.feed(&buf[..n]);
    }
}

/// Bytes read from an established connection: every record they complete is opened and
/// its frames handed to `on_message`, in order. `Ok(true)` when at least one record opened
/// (only that proves the peer alive: bytes alone could be anyone's). An error ends the
/// connection.
pub(crate) fn receive_sealed(
    bytes: &[u8],
    opener: &mut channel::Opener,
    plain: &mut Vec<u8>,
    decoder: &mut Decoder,
    on_message: impl FnMut(Message),
) -> Result<bool, NetError> {
    opener.feed(bytes);
    plain.clear();
    let opened = opener.open(plain)?;
    decoder.feed(plain);
    decoder
        .for_each_message(on_message)
        .map_err(NetError::BadFrame)?;
    Ok(opened > 0)
}

/// The one message a handshake record's payload holds.
pub(crate) fn payload_message(payload: &[u8]) -> Result<Message, NetError> {
    let mut decoder = Decoder::default();
    decoder.feed(payload);
    match decoder.next_message() {
        Ok(Some(m)) if decoder.pending() == 0 => Ok(m),
        Ok(_) => Err(NetError::PayloadNotOne),
        Err(e) => Err(NetError::Payload(e)),
    }
}
