//! The server side: the socket (stale ones replaced, a live one refused), the peer check,
//! the endpoint, and the sink that streams a command's output back to its client.
//! What a command does is the executor's business (`lowtouch serve` passes one in).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::error::BindError;
use super::protocol::{Frame, Request};
use crate::console::{Sink, Stream};

/// Where a command's output goes: back to the client that asked, frame by frame.
pub struct ClientSink {
    tx: UnboundedSender<Frame>,
    terminal_out: bool,
    terminal_err: bool,
}

impl ClientSink {
    /// Ends the command with its exit code.
    pub fn exit(&self, code: i32) {
        let _ = self.tx.send(Frame::Exit(code));
    }

    /// Whether the client hung up (Ctrl-C on its side). Sends a [`Frame::Beat`]: the
    /// connection only learns that its peer is gone when it writes.
    pub fn gone(&self) -> bool {
        self.tx.send(Frame::Beat).is_err()
    }
}

impl Sink for ClientSink {
    fn write(&self, stream: Stream, text: &str) -> bool {
        let frame = match stream {
            Stream::Out => Frame::Out(text.to_string()),
            Stream::Err => Frame::Err(text.to_string()),
        };
        self.tx.send(frame).is_ok()
    }

    fn is_terminal(&self, stream: Stream) -> bool {
        match stream {
            Stream::Out => self.terminal_out,
            Stream::Err => self.terminal_err,
        }
    }
}

/// Runs a client's command: gets the request and the sink, and must end with
/// [`ClientSink::exit`] (from whatever thread does the work).
pub type Executor = Arc<dyn Fn(Request, Arc<ClientSink>) + Send + Sync>;

/// The response body: the frames as they come, one JSON line each.
struct Frames(UnboundedReceiver<Frame>);

impl futures_core::Stream for Frames {
    type Item = Result<Bytes, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_recv(cx)
            .map(|f| f.map(|f| Ok(Bytes::from(f.to_line()))))
    }
}

async fn command(State(executor): State<Executor>, body: Bytes) -> Response {
    let request: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a command request: {e}\n"),
            )
                .into_response();
        }
    };
    let (tx, rx) = unbounded_channel();
    let sink = Arc::new(ClientSink {
        tx,
        terminal_out: request.terminal_out,
        terminal_err: request.terminal_err,
    });
    executor(request, sink);
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(Frames(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The local API's endpoint: commands go to `executor`.
pub fn router(executor: Executor) -> Router {
    Router::new()
        .route("/v1/command", post(command))
        .with_state(executor)
}

/// A Unix socket that serves only peers running as this process's user.
pub struct Local {
    listener: tokio::net::UnixListener,
    uid: u32,
    path: PathBuf,
}

impl Local {
    /// Binds `path` (0600). A socket a dead server left is replaced; one a live server
    /// answers on is an error naming it.
    pub fn bind(path: &Path) -> Result<Local, BindError> {
        let socket = || path.to_path_buf();
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::Live { socket: socket() });
            }
            std::fs::remove_file(path).map_err(|error| BindError::Stale {
                socket: socket(),
                error,
            })?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| BindError::Directory {
                dir: dir.to_path_buf(),
                error,
            })?;
        }
        // Created 0600 from the start (no moment in which others could connect), then
        // set again in case the file system ignores the mask.
        // SAFETY: umask has no preconditions; the old mask is put back right after.
        let old_mask = unsafe { libc::umask(0o177) };
        let bound = tokio::net::UnixListener::bind(path);
        // SAFETY: as above.
        unsafe { libc::umask(old_mask) };
        let listener = bound.map_err(|error| BindError::Listen {
            socket: socket(),
            error,
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |error| BindError::Restrict {
                socket: socket(),
                error,
            },
        )?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        Ok(Local {
            listener,
            uid,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl axum::serve::Listener for Local {
    type Io = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((io, addr)) => match io.peer_cred() {
                    Ok(cred) if cred.uid() == self.uid => return (io, addr),
                    Ok(cred) => crate::errln!(
                        "local API: refused a connection from uid {} (only uid {} may use it)",
                        cred.uid(),
                        self.uid
                    ),
                    Err(e) => crate::errln!("local API: refused a connection: no credentials: {e}"),
                },
                Err(e) => {
                    crate::errln!("local API: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_socket_is_refused_a_stale_one_replaced_and_a_dropped_one_removed() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store/serve.sock");
        let first = Local::bind(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let refused = Local::bind(&path).err().unwrap();
        assert_eq!(
            refused.to_string(),
            format!(
                "another `lowtouch serve` answers on {} already; one server per store",
                path.display()
            )
        );
        drop(first);
        assert!(!path.exists(), "the socket outlived its server");
        // What a killed server leaves: the file, nobody listening.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        Local::bind(&path).unwrap();
    }
}
