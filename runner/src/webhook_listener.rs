//! The webhook listener's side of TCP (issue 12 §3): what peers that have proven nothing
//! yet may hold of `lowtouch serve`. Its HTTP server is hyper's, driven here so that:
//!
//! - open connections are capped ([`Limits::max_connections`], kept well below the
//!   process's file limit, which [`raise_open_files_limit`] lifts to its hard ceiling at
//!   start): a connection past the cap closes the oldest one, so a flood of idle or slow
//!   peers cannot keep a new delivery out, and the local API's Unix socket always finds
//!   a free descriptor;
//! - a request head must arrive within [`Limits::header_timeout`] (this also bounds how
//!   long a kept-alive connection may sit idle) and within [`Limits::head_buffer`] bytes;
//! - a body is read only after its `Content-Length` is checked (over the limit: 413) and,
//!   past [`Limits::small_body`], its bytes are reserved from a budget all connections
//!   share ([`Limits::body_budget`]; none left: 503 at once); it must arrive within
//!   [`Limits::body_timeout`].
//!
//! So unauthenticated bodies hold at most `max_connections × small_body + body_budget`
//! bytes, and a signed delivery — a few kilobytes sent at once — goes through whatever
//! slow peers do.
//!
//! **Owns:** accepting, connection timeouts, the body budget. **May not touch:** what a
//! delivery means ([`crate::trigger::webhook`] decides that).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// What unauthenticated peers may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; one more closes the oldest.
    pub max_connections: usize,
    /// A request head, or the next one on a kept-alive connection, must arrive within this.
    pub header_timeout: Duration,
    /// The most a connection buffers for a request head (hyper's read buffer).
    pub head_buffer: usize,
    /// A whole body must arrive within this once its head has.
    pub body_timeout: Duration,
    /// Bodies larger than this are refused with 413 before a byte of them is read.
    pub max_body: usize,
    /// Bodies up to this size need no reservation: every connection may hold one.
    pub small_body: usize,
    /// The bytes larger bodies may hold at once, all connections together.
    pub body_budget: usize,
}

impl Default for Limits {
    /// GitHub sends a delivery at once and gives up after 10 s: a peer slower than that is
    /// not GitHub. Pings and most pushes are a few kilobytes (under `small_body`).
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(5),
            head_buffer: 16 * 1024,
            body_timeout: Duration::from_secs(10),
            max_body: crate::trigger::webhook::MAX_BODY,
            small_body: 64 * 1024,
            body_budget: 8 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// These limits with the connection cap at most a quarter of `open_files`, the
    /// process's file limit: the rest stays for the store, runs and the local API.
    pub fn within_open_files(mut self, open_files: u64) -> Limits {
        let quarter = usize::try_from(open_files / 4).unwrap_or(usize::MAX);
        self.max_connections = self.max_connections.min(quarter).max(1);
        self
    }
}

/// Raises this process's soft limit of open files to its hard limit and returns the
/// limit now in force. A server holds many descriptors; the default soft limit (often
/// 1,024) is a convention for interactive shells, not a ceiling the system imposes.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Ok(limit.rlim_cur);
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

/// The open connections, oldest first, each with the signal that closes it.
#[derive(Default)]
struct Connections {
    next: u64,
    open: BTreeMap<u64, Arc<Notify>>,
}

impl Connections {
    /// Registers a new connection under `max`; returns its id, its close signal, and the
    /// close signal of the oldest one when it had to make room.
    fn admit(&mut self, max: usize) -> (u64, Arc<Notify>, Option<Arc<Notify>>) {
        let evicted = if self.open.len() >= max {
            self.open.pop_first().map(|(_, close)| close)
        } else {
            None
        };
        let id = self.next;
        self.next += 1;
        let close = Arc::new(Notify::new());
        self.open.insert(id, close.clone());
        (id, close, evicted)
    }

    /// Closes the oldest connection (to free a descriptor); whether there was one.
    fn evict_oldest(&mut self) -> bool {
        match self.open.pop_first() {
            Some((_, close)) => {
                close.notify_one();
                true
            }
            None => false,
        }
    }

    fn leave(&mut self, id: u64) {
        self.open.remove(&id);
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting, lets requests in progress finish (their timeouts bound how long) and
/// returns when every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Mutex::new(Connections::default()));
    let (stopping_tx, stopping) = watch::channel(false);
    // Every connection task holds a clone; `recv` returns `None` once all are gone.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.head_buffer);
    let builder = Arc::new(builder);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failing = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                failing = false;
                stream
            }
            Err(e) => {
                // Out of descriptors (or another transient failure): free one by closing
                // the oldest connection, and do not spin while the kernel recovers.
                if !failing {
                    crate::errln!("webhook listener: cannot accept a connection: {e}");
                    failing = true;
                }
                lock(&connections).evict_oldest();
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (id, close, evicted) = lock(&connections).admit(limits.max_connections);
        if let Some(oldest) = evicted {
            oldest.notify_one();
        }
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let connections = connections.clone();
        let mut stopping = stopping.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    // Dropping the connection closes its socket.
                    () = close.notified() => break,
                    changed = stopping.changed() => {
                        if changed.is_err() || *stopping.borrow() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            lock(&connections).leave(id);
            drop(alive);
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    drop(alive);
    let _ = all_closed.recv().await;
}

fn lock(connections: &Mutex<Connections>) -> std::sync::MutexGuard<'_, Connections> {
    connections.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a body was not read; each maps to the HTTP status that says so.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyRefusal {
    #[error("a delivery needs a Content-Length (chunked bodies are not accepted)")]
    NoLength,
    #[error("Content-Length is not a number of bytes")]
    BadLength,
    #[error("body over {max} bytes")]
    TooLarge { max: usize },
    #[error("too many large bodies in flight; try again")]
    Busy,
    #[error("the body did not arrive within {0:?}")]
    TooSlow(Duration),
    #[error("the body was cut short: {0}")]
    Broken(String),
}

impl BodyRefusal {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyRefusal::NoLength => StatusCode::LENGTH_REQUIRED,
            BodyRefusal::BadLength | BodyRefusal::Broken(_) => StatusCode::BAD_REQUEST,
            BodyRefusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyRefusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
            BodyRefusal::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// The memory unauthenticated bodies may hold, shared by every connection.
pub struct BodyBudget {
    limits: Limits,
    bytes: Arc<Semaphore>,
}

/// A body read within the budget; its reservation lasts as long as it does.
pub struct HeldBody {
    pub bytes: Bytes,
    _reservation: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    pub fn new(limits: Limits) -> BodyBudget {
        let bytes = Arc::new(Semaphore::new(limits.body_budget));
        BodyBudget { limits, bytes }
    }

    /// Reads `body` whole if its declared length passes the limits and the budget has
    /// room for it, within the body timeout.
    pub async fn read(&self, headers: &HeaderMap, body: Body) -> Result<HeldBody, BodyRefusal> {
        let length = declared_length(headers, self.limits.max_body)?;
        let reservation = if length <= self.limits.small_body {
            None
        } else {
            let permits = u32::try_from(length).map_err(|_| BodyRefusal::TooLarge {
                max: self.limits.max_body,
            })?;
            Some(
                self.bytes
                    .clone()
                    .try_acquire_many_owned(permits)
                    .map_err(|_| BodyRefusal::Busy)?,
            )
        };
        let bytes =
            tokio::time::timeout(self.limits.body_timeout, axum::body::to_bytes(body, length))
                .await
                .map_err(|_| BodyRefusal::TooSlow(self.limits.body_timeout))?
                .map_err(|e| BodyRefusal::Broken(e.to_string()))?;
        Ok(HeldBody {
            bytes,
            _reservation: reservation,
        })
    }
}

/// The body length a request declares, checked against `max` before any of it is read.
fn declared_length(headers: &HeaderMap, max: usize) -> Result<usize, BodyRefusal> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(BodyRefusal::NoLength);
    }
    let value = headers
        .get(header::CONTENT_LENGTH)
        .ok_or(BodyRefusal::NoLength)?;
    let length: u64 = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or(BodyRefusal::BadLength)?;
    match usize::try_from(length) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(BodyRefusal::TooLarge { max }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_declared_length_is_checked_before_reading() {
        let check = |pairs: &[(&str, &str)], expected: Result<usize, BodyRefusal>| {
            assert_eq!(declared_length(&headers(pairs), 100), expected, "{pairs:?}");
        };
        check(&[("content-length", "100")], Ok(100));
        check(&[("content-length", "0")], Ok(0));
        check(
            &[("content-length", "101")],
            Err(BodyRefusal::TooLarge { max: 100 }),
        );
        check(
            &[("content-length", "99999999999999999999999")],
            Err(BodyRefusal::BadLength),
        );
        check(&[("content-length", "-1")], Err(BodyRefusal::BadLength));
        check(&[], Err(BodyRefusal::NoLength));
        check(
            &[("transfer-encoding", "chunked"), ("content-length", "5")],
            Err(BodyRefusal::NoLength),
        );
    }

    #[test]
    fn a_new_connection_past_the_cap_closes_the_oldest() {
        let mut c = Connections::default();
        let (a, _, none) = c.admit(2);
        assert!(none.is_none());
        let (_, _, none) = c.admit(2);
        assert!(none.is_none());
        let (_, _, evicted) = c.admit(2);
        assert!(evicted.is_some(), "the third connection made no room");
        assert_eq!(c.open.len(), 2);
        assert!(!c.open.contains_key(&a), "not the oldest was closed");
        c.leave(a); // The evicted one leaving later changes nothing.
        assert_eq!(c.open.len(), 2);
        assert!(c.evict_oldest());
        assert!(c.evict_oldest());
        assert!(!c.evict_oldest());
    }

    #[test]
    fn the_connection_cap_stays_a_quarter_of_the_file_limit() {
        assert_eq!(
            Limits::default().within_open_files(1 << 20).max_connections,
            256
        );
        assert_eq!(
            Limits::default().within_open_files(512).max_connections,
            128
        );
        assert_eq!(Limits::default().within_open_files(2).max_connections, 1);
    }

    /// A server on loopback with `limits` whose one route reads its body within the
    /// budget and answers its length; stops when the returned sender is dropped.
    async fn server(
        limits: Limits,
    ) -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        Arc<BodyBudget>,
    ) {
        use axum::extract::State;
        let budget = Arc::new(BodyBudget::new(limits.clone()));
        let app = Router::new()
            .route(
                "/",
                axum::routing::post(
                    |State(budget): State<Arc<BodyBudget>>, headers: HeaderMap, body: Body| async move {
                        match budget.read(&headers, body).await {
                            Ok(b) => (StatusCode::OK, b.bytes.len().to_string()),
                            Err(e) => (e.status(), e.to_string()),
                        }
                    },
                ),
            )
            .with_state(budget.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop, budget)
    }

    async fn connect(addr: std::net::SocketAddr, head: &str) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s
    }

    /// The status line's code, or `None` when the server closed without answering.
    async fn status_of(s: &mut tokio::net::TcpStream) -> Option<u16> {
        use tokio::io::AsyncReadExt;
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer)
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
    }

    fn post(length: usize) -> String {
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    }

    #[tokio::test]
    async fn an_unfinished_head_is_closed_after_the_header_timeout() {
        let limits = Limits {
            header_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let (addr, _stop, _) = server(limits).await;
        let mut slow = connect(addr, "POST / HT").await;
        // The server closes it (hyper answers nothing or a 408); the read ends.
        let status = tokio::time::timeout(Duration::from_secs(30), status_of(&mut slow))
            .await
            .expect("the slow head was never closed");
        assert!(matches!(status, None | Some(408)), "{status:?}");
    }

    #[tokio::test]
    async fn a_slow_body_is_refused_after_the_body_timeout() {
        let limits = Limits {
            body_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let (addr, _stop, _) = server(limits).await;
        let mut slow = connect(addr, &(post(10) + "12345")).await;
        assert_eq!(status_of(&mut slow).await, Some(408));
    }

    #[tokio::test]
    async fn large_bodies_share_a_budget_and_small_ones_need_none() {
        let limits = Limits {
            small_body: 10,
            body_budget: 100,
            ..Limits::default()
        };
        let (addr, _stop, budget) = server(limits.clone()).await;
        // Holds 80 of the 100 bytes while its body trickles in.
        let mut holder = connect(addr, &(post(80) + "x")).await;
        while budget.bytes.available_permits() != 20 {
            tokio::task::yield_now().await;
        }
        // Announced past what is left: refused at once, not read.
        let mut refused = connect(addr, &post(30)).await;
        assert_eq!(status_of(&mut refused).await, Some(503));
        // A small body goes through meanwhile; so does one that fits what is left.
        let mut small = connect(addr, &(post(10) + "0123456789")).await;
        assert_eq!(status_of(&mut small).await, Some(200));
        let mut fits = connect(addr, &(post(20) + &"y".repeat(20))).await;
        assert_eq!(status_of(&mut fits).await, Some(200));
        // Over the limit: 413 before any of it is sent.
        let mut huge = connect(addr, &post(limits.max_body + 1)).await;
        assert_eq!(status_of(&mut huge).await, Some(413));
        {
            use tokio::io::AsyncWriteExt;
            holder.write_all("x".repeat(79).as_bytes()).await.unwrap();
        }
        assert_eq!(status_of(&mut holder).await, Some(200));
        // Its reservation is back: the same size fits again.
        let mut again = connect(addr, &(post(80) + &"z".repeat(80))).await;
        assert_eq!(status_of(&mut again).await, Some(200));
    }

    #[tokio::test]
    async fn past_the_cap_the_oldest_connection_is_closed_and_the_new_one_served() {
        let limits = Limits {
            max_connections: 3,
            ..Limits::default()
        };
        let (addr, _stop, _) = server(limits).await;
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(connect(addr, "POST").await);
        }
        let mut fresh = connect(addr, &(post(2) + "ok")).await;
        assert_eq!(status_of(&mut fresh).await, Some(200));
        // The first idle one was closed to make room (it reads the end of its stream).
        let closed = tokio::time::timeout(Duration::from_secs(30), status_of(&mut idle[0]))
            .await
            .expect("the oldest connection stayed open");
        assert_eq!(closed, None);
    }
}
