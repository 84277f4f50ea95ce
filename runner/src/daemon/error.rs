//! Why a daemon's connection to its router never came up. The daemon logs it and dials
//! again with backoff; nothing here ends the daemon.

use crate::net::NetError;
use crate::net::channel::ChannelError;

/// A connection that failed before the router welcomed the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach the router at {server}: {source}")]
    Unreachable {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Net(#[from] NetError),
    /// The router said nothing a handshake could use.
    #[error(
        "{source}: it does not hold environment `{environment}`'s secret, does not serve it, or is an older lowtouch"
    )]
    NoAnswer {
        environment: String,
        #[source]
        source: NetError,
    },
    /// The router's answer did not verify against the environment's key.
    #[error(
        "the router at {server} could not prove it holds environment `{environment}`'s secret; not obeying it"
    )]
    Unproven { server: String, environment: String },
    #[error("the router's answer was not a greeting")]
    NotGreeting,
    #[error("refused: {reason}")]
    Refused { reason: String },
    #[error("unexpected answer to the handshake: a `{kind}` message")]
    Unexpected { kind: &'static str },
    #[error("the handshake took over 10s")]
    Timeout,
}

impl ConnectError {
    /// Never: a daemon retries whatever kept it from its router (a router down, a router
    /// that does not serve its environment yet, a secret being rotated), so no cause here
    /// is final enough to be called the person's input.
    pub fn is_bad_input(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_is_never_bad_input_and_reads_as_before() {
        let e = ConnectError::NoAnswer {
            environment: "perf".into(),
            source: NetError::Closed {
                peer: "the router at 127.0.0.1:1".into(),
            },
        };
        assert!(!e.is_bad_input());
        assert_eq!(
            e.to_string(),
            "the router at 127.0.0.1:1 closed the connection during the handshake: it does not \
             hold environment `perf`'s secret, does not serve it, or is an older lowtouch"
        );
    }
}
