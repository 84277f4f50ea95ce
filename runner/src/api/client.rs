//! The client side: a command that finds a server's socket sends itself there and
//! plays back what the server streams, then exits with the server's exit code.
//!
//! Blocking to its caller: hyper's HTTP/1 client runs on a runtime of this thread only,
//! so the output is written to this thread's console as it arrives.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::pin::Pin;

use hyper::body::{Body as _, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;

use super::error::{ClientError, UntrustedSocket};
use super::protocol::{Frame, FrameReader, Request};
use crate::console::{self, Stream};

/// At most this much of a refusal's body is shown.
const REFUSAL_SHOWN: usize = 4096;

/// Sends `request` to the server listening on `socket` and writes its output to this
/// thread's console. `Ok(None)`: no server listens there (no socket, or a stale one a
/// dead server left) — the caller does the work itself. `Err`: a server is there but
/// the exchange failed.
pub fn forward(socket: &Path, request: &Request) -> Result<Option<i32>, ClientError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let untrusted = |reason| ClientError::Untrusted {
        socket: socket.to_path_buf(),
        reason,
    };
    // Before a byte of the command line (and its `--set` values) leaves this process.
    match std::fs::symlink_metadata(socket) {
        Ok(meta) => trust(&SocketFile::of(&meta), me).map_err(untrusted)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => {} // Connecting says what is wrong.
    }
    let unreachable = |error| ClientError::Unreachable {
        socket: socket.to_path_buf(),
        error,
    };
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(unreachable(e)),
    };
    // The file may have been replaced since it was looked at: the process that accepted
    // is what counts.
    if let Some(peer) = peer_uid(&stream)
        && peer != me
    {
        return Err(untrusted(UntrustedSocket::OtherListener { uid: peer }));
    }
    let body = serde_json::to_string(request).map_err(|error| ClientError::Encode { error })?;
    stream.set_nonblocking(true).map_err(unreachable)?;
    // Built only once a server answered: a command without a server pays nothing for it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|error| ClientError::Runtime { error })?;
    runtime.block_on(async {
        let stream = tokio::net::UnixStream::from_std(stream).map_err(unreachable)?;
        exchange(socket, stream, body).await
    })
}

/// POSTs the command line and plays the frames back until the exit code.
async fn exchange(
    socket: &Path,
    stream: tokio::net::UnixStream,
    body: String,
) -> Result<Option<i32>, ClientError> {
    let failed = |error: hyper::Error| {
        if error.is_parse() {
            ClientError::NotHttp {
                socket: socket.to_path_buf(),
                error,
            }
        } else if error.is_incomplete_message() {
            ClientError::NoAnswer
        } else {
            ClientError::Broken {
                socket: socket.to_path_buf(),
                error,
            }
        }
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    // The connection does the socket's reading and writing; its errors reach the
    // request or the body below.
    tokio::spawn(connection);
    let mut http = hyper::Request::new(body);
    *http.method_mut() = hyper::Method::POST;
    *http.uri_mut() = hyper::Uri::from_static("/v1/command");
    let headers = http.headers_mut();
    headers.insert(HOST, HeaderValue::from_static("lowtouch"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    let response = sender.send_request(http).await.map_err(failed)?;
    let status = response.status();
    let mut body = response.into_body();

    if status != hyper::StatusCode::OK {
        let mut text = Vec::new();
        while text.len() < REFUSAL_SHOWN
            && let Some(frame) = next_frame(&mut body).await
        {
            match frame {
                Ok(frame) => text.extend_from_slice(frame.data_ref().map_or(&[][..], |d| d)),
                Err(e) if e.is_incomplete_message() => break,
                Err(e) => return Err(failed(e)),
            }
        }
        text.truncate(REFUSAL_SHOWN);
        return Err(ClientError::Refused {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&text).into_owned(),
        });
    }
    let mut frames = FrameReader::default();
    while let Some(frame) = next_frame(&mut body).await {
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
            // The server went away in the middle: no exit code (below).
            Err(e) if e.is_incomplete_message() => break,
            Err(e) => return Err(failed(e)),
        };
        frames.feed(&data);
        while let Some(frame) = frames.next_frame() {
            match frame? {
                Frame::Out(text) => {
                    console::write(Stream::Out, &text);
                }
                Frame::Err(text) => {
                    console::write(Stream::Err, &text);
                }
                Frame::Exit(code) => return Ok(Some(code)),
                Frame::Beat => {}
            }
        }
    }
    Err(ClientError::NoExitCode)
}

/// The body's next frame as it arrives; `None` at its end.
async fn next_frame(
    body: &mut Incoming,
) -> Option<Result<hyper::body::Frame<hyper::body::Bytes>, hyper::Error>> {
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
}

/// What [`trust`] looks at in a socket file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketFile {
    pub is_socket: bool,
    pub uid: u32,
    pub mode: u32,
}

impl SocketFile {
    pub fn of(meta: &std::fs::Metadata) -> SocketFile {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        SocketFile {
            is_socket: meta.file_type().is_socket(),
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
        }
    }
}

/// Whether a server socket can be trusted by the user `me`: a socket of that user that
/// nobody else may write to (the server creates it 0600).
pub fn trust(file: &SocketFile, me: u32) -> Result<(), UntrustedSocket> {
    if !file.is_socket {
        return Err(UntrustedSocket::NotASocket);
    }
    if file.uid != me {
        return Err(UntrustedSocket::OtherOwner { uid: file.uid });
    }
    if file.mode & 0o022 != 0 {
        return Err(UntrustedSocket::WritableByOthers { mode: file.mode });
    }
    Ok(())
}

/// The uid of the process at the other end (`SO_PEERCRED`); `None` when it cannot be read.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which is that large.
    let done = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    };
    (done == 0).then_some(cred.uid)
}

/// A user as people know it: `name (uid N)`, or `uid N` without an account.
pub(super) fn owner(uid: u32) -> String {
    // SAFETY: passwd is plain data (integers and pointers); all zeroes is a valid value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes the entry into `pwd` and its strings into `buf` (of the
    // length given); `found` is null or points at `pwd`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &raw mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &raw mut found,
        )
    };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: on success pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    format!("{} (uid {uid})", name.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use super::*;
    use crate::api::server::{ClientSink, Executor, Local, router};
    use crate::console::Sink;

    /// A real server on a real socket: the local API's router (or `app`) served by axum
    /// on a thread of its own, stopped and joined when dropped.
    struct Server {
        socket: std::path::PathBuf,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
        _dir: tempfile::TempDir,
    }

    impl Server {
        fn start(app: axum::Router) -> Server {
            let dir = tempfile::tempdir().unwrap();
            let socket = dir.path().join("serve.sock");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let (ready, bound) = mpsc::channel();
            let path = socket.clone();
            let thread = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let local = Local::bind(&path).unwrap();
                    ready.send(()).unwrap();
                    axum::serve(local, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await
                        .unwrap();
                });
            });
            bound.recv().unwrap();
            Server {
                socket,
                stop: Some(stop),
                thread: Some(thread),
                _dir: dir,
            }
        }

        fn api(executor: Executor) -> Server {
            Server::start(router(executor))
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.stop.take().map(|s| s.send(()));
            let _ = self.thread.take().map(std::thread::JoinHandle::join);
        }
    }

    /// The console of the client: what `forward` wrote, in order; `on_write` sees each
    /// piece as it is written.
    struct Console {
        written: Mutex<Vec<(Stream, String)>>,
        on_write: Box<dyn Fn(&str) + Send + Sync>,
    }

    impl Console {
        fn new(on_write: impl Fn(&str) + Send + Sync + 'static) -> Arc<Console> {
            Arc::new(Console {
                written: Mutex::new(Vec::new()),
                on_write: Box::new(on_write),
            })
        }

        fn written(&self) -> Vec<(Stream, String)> {
            self.written.lock().unwrap().clone()
        }
    }

    impl Sink for Console {
        fn write(&self, stream: Stream, text: &str) -> bool {
            self.written
                .lock()
                .unwrap()
                .push((stream, text.to_string()));
            (self.on_write)(text);
            true
        }

        fn is_terminal(&self, _: Stream) -> bool {
            false
        }
    }

    fn request(argv: &[&str]) -> Request {
        Request {
            argv: argv.iter().map(ToString::to_string).collect(),
            terminal_out: false,
            terminal_err: true,
        }
    }

    fn forward_to(socket: &Path, console: &Arc<Console>) -> Result<Option<i32>, ClientError> {
        let sink: Arc<dyn Sink> = console.clone();
        console::capture(sink, || forward(socket, &request(&["status", "--json"])))
    }

    #[test]
    fn a_command_streams_its_output_as_it_comes_and_ends_with_its_exit_code() {
        // The command's last words wait until the client has written its first ones: a
        // client that held the output back until the end would never see the exit.
        let (seen, wait_seen) = mpsc::channel::<()>();
        let wait_seen = Arc::new(Mutex::new(wait_seen));
        let executor: Executor = Arc::new(move |request, sink: Arc<ClientSink>| {
            let doing = "idle";
            let wait_seen = wait_seen.clone();
            std::thread::spawn(move || {
                sink.write(
                    Stream::Out,
                    &format!("{} while {doing}\n", request.argv.join(" ")),
                );
                // A bound, not a pace: only a client that buffers ever waits this long.
                let streamed = wait_seen
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(60))
                    .is_ok();
                sink.write(
                    Stream::Err,
                    &format!("terminal: {}\n", sink.is_terminal(Stream::Err)),
                );
                sink.exit(if streamed { 7 } else { 99 });
            });
        });
        let server = Server::api(executor);
        let console = Console::new(move |text| {
            if text.starts_with("status") {
                let _ = seen.send(());
            }
        });
        assert_eq!(forward_to(&server.socket, &console).unwrap(), Some(7));
        assert_eq!(
            console.written(),
            vec![
                (Stream::Out, "status --json while idle\n".to_string()),
                (Stream::Err, "terminal: true\n".to_string()),
            ]
        );
    }

    #[test]
    fn no_socket_or_one_nobody_listens_on_means_no_server() {
        let dir = tempfile::tempdir().unwrap();
        let console = Console::new(|_| {});
        let socket = dir.path().join("serve.sock");
        assert_eq!(forward_to(&socket, &console).unwrap(), None);
        // The socket a dead server left behind.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(forward_to(&socket, &console).unwrap(), None);
        assert!(console.written().is_empty());
    }

    #[test]
    fn a_refusal_shows_the_status_and_what_the_server_said() {
        use axum::http::StatusCode;
        let app = axum::Router::new().route(
            "/v1/command",
            axum::routing::post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "stopping\n") }),
        );
        let server = Server::start(app);
        let error = forward_to(&server.socket, &Console::new(|_| {})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the server refused the command (503): stopping"
        );
    }

    #[test]
    fn a_command_that_ends_without_an_exit_code_is_an_error_after_its_output() {
        let executor: Executor = Arc::new(|_, sink: Arc<ClientSink>| {
            sink.write(Stream::Out, "partial\n");
            // The sink is dropped: the body ends with no exit frame.
        });
        let server = Server::api(executor);
        let console = Console::new(|_| {});
        let error = forward_to(&server.socket, &console).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the server ended the command without an exit code (did it stop?)"
        );
        assert_eq!(
            console.written(),
            vec![(Stream::Out, "partial\n".to_string())]
        );
    }

    /// A listener of this user that is no HTTP server: it reads the request, then
    /// answers `answer` (nothing: it hangs up).
    fn impostor(answer: &'static [u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("serve.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // The request's JSON body ends it.
            while !got.ends_with(b"}") {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer).unwrap();
        });
        (dir, socket)
    }

    #[test]
    fn a_peer_that_hangs_up_or_speaks_no_http_is_an_error() {
        let (_dir, socket) = impostor(b"");
        let error = forward_to(&socket, &Console::new(|_| {})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the server closed the connection without an answer"
        );
        let (_dir, socket) = impostor(b"SSH-2.0-OpenSSH_9.6\r\n");
        let error = forward_to(&socket, &Console::new(|_| {})).unwrap_err();
        assert!(
            error.to_string().starts_with(&format!(
                "not an HTTP/1 response from the server at {}: ",
                socket.display()
            )),
            "{error}"
        );
    }

    #[test]
    fn only_a_socket_of_this_user_that_others_cannot_write_is_trusted() {
        let check =
            |is_socket: bool, uid: u32, mode: u32, expected: Result<(), UntrustedSocket>| {
                let file = SocketFile {
                    is_socket,
                    uid,
                    mode,
                };
                assert_eq!(trust(&file, 1000), expected, "{file:?}");
            };
        check(true, 1000, 0o600, Ok(()));
        check(true, 1000, 0o755, Ok(()));
        check(false, 1000, 0o600, Err(UntrustedSocket::NotASocket));
        check(true, 0, 0o600, Err(UntrustedSocket::OtherOwner { uid: 0 }));
        check(
            true,
            1000,
            0o622,
            Err(UntrustedSocket::WritableByOthers { mode: 0o622 }),
        );
    }

    #[test]
    fn the_refusal_names_the_socket_and_the_owner() {
        let text = ClientError::Untrusted {
            socket: "/x/serve.sock".into(),
            reason: UntrustedSocket::OtherOwner { uid: 0 },
        }
        .to_string();
        assert!(text.contains("/x/serve.sock"), "{text}");
        assert!(text.contains("root (uid 0)"), "{text}");
    }
}
