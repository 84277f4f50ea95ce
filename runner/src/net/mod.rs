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
