//! What goes wrong in the local API: on the client's side ([`ClientError`]), when the
//! server takes its socket ([`BindError`]), and in the frames themselves ([`FrameError`]).
//! Every one of them is infrastructure to the command that meets it (exit 3): the
//! command itself never ran, or its result was lost.

use std::path::PathBuf;

/// A line of a response body that is not a frame.
#[derive(Debug, thiserror::Error)]
#[error("bad frame {line:?}: {error}")]
pub struct FrameError {
    pub line: String,
    #[source]
    pub error: serde_json::Error,
}

/// Why a server socket is not talked to: whoever listens there would receive the command
/// line (with its `--set` values) and could fake its results.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UntrustedSocket {
    #[error("it is not a socket")]
    NotASocket,
    #[error("it belongs to {}, not to this user", super::client::owner(*uid))]
    OtherOwner { uid: u32 },
    #[error("others may write to it (mode {mode:o})")]
    WritableByOthers { mode: u32 },
    #[error("the process listening on it runs as {}, not as this user", super::client::owner(*uid))]
    OtherListener { uid: u32 },
}

/// A server was there (or seemed to be) but the command's exchange with it failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The user sees where, why, and what to do.
    #[error(
        "refusing the server socket {}: {reason}; if no server of yours runs, remove it \
         (or use a store directory only you can write to)",
        socket.display()
    )]
    Untrusted {
        socket: PathBuf,
        reason: UntrustedSocket,
    },
    #[error("cannot reach the server at {}: {error}", socket.display())]
    Unreachable {
        socket: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot start the local API's client: {error}")]
    Runtime {
        #[source]
        error: std::io::Error,
    },
    /// Never seen: a request is strings and booleans.
    #[error("{error}")]
    Encode {
        #[source]
        error: serde_json::Error,
    },
    /// The connection broke; shown as the system's reason when there is one underneath.
    #[error("the server at {} stopped answering: {}", socket.display(), io_reason(error))]
    Broken {
        socket: PathBuf,
        #[source]
        error: hyper::Error,
    },
    #[error("not an HTTP/1 response from the server at {}: {error}", socket.display())]
    NotHttp {
        socket: PathBuf,
        #[source]
        error: hyper::Error,
    },
    #[error("the server closed the connection without an answer")]
    NoAnswer,
    /// Its body says why (at most 4 KiB of it).
    #[error("the server refused the command ({status}): {}", body.trim())]
    Refused { status: u16, body: String },
    #[error(transparent)]
    BadFrame(#[from] FrameError),
    #[error("the server ended the command without an exit code (did it stop?)")]
    NoExitCode,
}

/// The system's reason under a hyper error (`Connection reset by peer (os error 104)`),
/// as the user saw it when the client read the socket itself; hyper's own words when
/// there is none.
fn io_reason(error: &hyper::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.to_string();
        }
        cause = e.source();
    }
    error.to_string()
}

/// Why `lowtouch serve` could not take its socket.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "another `lowtouch serve` answers on {} already; one server per store",
        socket.display()
    )]
    Live { socket: PathBuf },
    #[error("cannot replace the stale socket {}: {error}", socket.display())]
    Stale {
        socket: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot create {}: {error}", dir.display())]
    Directory {
        dir: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot listen on {}: {error}", socket.display())]
    Listen {
        socket: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot restrict {}: {error}", socket.display())]
    Restrict {
        socket: PathBuf,
        #[source]
        error: std::io::Error,
    },
}
