//! The server's local API: while `lowtouch serve` runs it holds the store, so the other
//! commands (`run`, `history`, `status`, `pause`, `resume`, `lock`, `unlock`, `cancel`)
//! ask it to do their work instead of opening the store themselves.
//!
//! Transport: HTTP/1.1 on a Unix socket beside the store (`.lowtouch/serve.sock` for the
//! default `.lowtouch/db`), created 0600 and answering only peers of the server's own
//! user (checked with `SO_PEERCRED` on every connection) — the same people who may open
//! the store's files. `curl --unix-socket .lowtouch/serve.sock` speaks it too. HTTP is
//! hyper's on both ends (axum's server, hyper's client connection); lowtouch's own part is
//! the request and the output frames ([`protocol`]).
//!
//! One endpoint, `POST /v1/command`: the client sends its command line ([`protocol`]),
//! the server parses it as the client would, runs it in-process on its store with the
//! command's output captured ([`crate::console`]), and streams that output back as JSON
//! lines, ending with the exit code. Runs wait in the server's queue for their turn.
//!
//! **Owns:** the socket, the wire format, the client. **May not touch:** what commands
//! do (the server's executor decides: `cli::serve` parses, `server` queues runs).

pub mod client;
pub mod error;
pub mod protocol;
pub mod server;

pub use error::{BindError, ClientError, FrameError, UntrustedSocket};

use std::path::{Path, PathBuf};

/// The socket of the server that holds the store at `db`.
pub fn socket_path(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join("serve.sock")
}

/// The commands that go through a running server's local API.
pub const FORWARDED: &[&str] = &[
    "run", "history", "diff", "judge", "baseline", "release", "report", "status", "pause",
    "resume", "lock", "unlock", "cancel",
];
