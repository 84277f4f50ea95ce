//! Errors of the monitoring network's shared steps: a secret too short to use, and a
//! handshake or a sealed connection that broke.

use super::channel::ChannelError;
use super::codec::CodecError;

/// What went wrong in a step both ends of the network take (see `net::next_record` and
/// its siblings). Only [`NetError::ShortSecret`] is a person's input; the others are a
/// peer or a socket.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(
        "the daemon secret is {len} bytes; use at least 16 (for example `openssl rand -hex 32`)"
    )]
    ShortSecret { len: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{peer} closed the connection during the handshake")]
    Closed { peer: String },
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A frame inside a record that opened could not be read.
    #[error("bad frame: {0}")]
    BadFrame(#[source] CodecError),
    #[error("the handshake's payload is not one message")]
    PayloadNotOne,
    #[error("the handshake's payload: {0}")]
    Payload(#[source] CodecError),
}

impl NetError {
    /// Whether a person's setting is the cause (exit 2) rather than a peer or a socket.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, NetError::ShortSecret { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_short_secret_is_bad_input() {
        assert!(NetError::ShortSecret { len: 5 }.is_bad_input());
        let closed = NetError::Closed {
            peer: "the router".into(),
        };
        assert!(!closed.is_bad_input());
        assert_eq!(
            closed.to_string(),
            "the router closed the connection during the handshake"
        );
        assert!(!NetError::Channel(ChannelError::Handshake).is_bad_input());
    }
}
