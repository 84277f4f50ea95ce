//! `lowtouch serve` under a flood of unauthenticated clients (issue 12 §3): hundreds of
//! slow connections neither keep a signed delivery from being answered nor starve the
//! local API of file descriptors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use lowtouch::trigger::webhook::sign;

use crate::harness::{Project, stop, wait_until};
use crate::serve::SECRET;

/// Starts `lowtouch serve` whose file descriptors are limited to `soft`/`hard`, as an
/// ordinary account's are; returns the child, its webhook port and its stderr.
fn start_limited(
    p: &Project,
    soft: u64,
    hard: u64,
) -> (
    std::process::Child,
    u16,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    let mut run = p
        .lowtouch(&["serve", "--listen", "127.0.0.1:0", "--poll-interval", "1h"])
        .env("LOWTOUCH_WEBHOOK_SECRET", SECRET);
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's own limits.
    unsafe {
        run.cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    crate::serve::spawn_serve(run)
}

/// A signed `ping` on a fresh connection: its status, or `None` when no answer came
/// within `limit`.
fn signed_ping(port: u16, id: &str, limit: Duration) -> Option<u16> {
    let ping = r#"{"zen":"Keep it logically awesome.","hook_id":7}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(limit)).unwrap();
    write!(
        s,
        "POST /hooks/github HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: ping\r\nX-GitHub-Delivery: {id}\r\nX-Hub-Signature-256: {}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{ping}",
        sign(SECRET.as_bytes(), ping.as_bytes()),
        ping.len()
    )
    .ok()?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).ok()?;
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

/// Slow clients: half send their request head a byte at a time and never finish it,
/// half send a complete head announcing a 1 MiB body and then the body a byte at a
/// time. Returns the connections made; stops at the first connection the server's
/// backlog no longer takes (a server that stopped accepting).
fn slow_clients(port: u16, count: usize) -> Vec<TcpStream> {
    let head = "POST /hooks/github HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Event: push\r\n\
                Content-Length: 1048576\r\n\r\n";
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut clients = Vec::new();
    for i in 0..count {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
            break;
        };
        s.set_nonblocking(true).unwrap();
        let start = if i % 2 == 0 { &head[..5] } else { head };
        let _ = s.write_all(start.as_bytes());
        clients.push(s);
    }
    clients
}

/// One more byte on every slow connection still open (a write error means the server
/// closed it, which is what it may do).
fn drip(clients: &mut [TcpStream]) {
    for s in clients {
        let _ = s.write_all(b"{");
    }
}

#[test]
fn a_signed_ping_is_answered_and_the_local_api_works_while_hundreds_of_slow_clients_hold_on() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    // 600 slow clients against a server allowed 256 open files (raisable to 512): before
    // the fix the flood took every descriptor, signed pings went unanswered and the
    // local API could not accept.
    let (child, port, log) = start_limited(&p, 256, 512);
    assert_eq!(
        signed_ping(port, "before", Duration::from_secs(30)),
        Some(200),
        "{}",
        log.lock().unwrap()
    );

    let mut clients = slow_clients(port, 600);
    assert_eq!(
        clients.len(),
        600,
        "the server stopped accepting:\n{}",
        log.lock().unwrap()
    );
    drip(&mut clients);

    // The issue's target is 100 ms; machines running this are shared and noisy, so the
    // bound asserted here is generous (the real figure is measured in BENCHMARKS.md).
    let started = Instant::now();
    let answered = signed_ping(port, "during", Duration::from_secs(10));
    let took = started.elapsed();
    drip(&mut clients);
    assert_eq!(
        answered,
        Some(200),
        "no answer during the flood:\n{}",
        log.lock().unwrap()
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");

    // The local API still accepts: `status` goes through the server's socket.
    let mut status = p.lowtouch(&["status"]).spawn();
    let finished = wait_until(Duration::from_secs(30), || {
        status.try_wait().unwrap().is_some()
    });
    if !finished {
        let _ = status.kill();
    }
    let code = status.wait().unwrap().code();
    let mut err = String::new();
    if let Some(mut e) = status.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(finished, "`status` hung during the flood");
    assert_eq!(code, Some(0), "`status` during the flood: {err}");
    drop(clients);
    assert_eq!(stop(child), Some(130), "{}", log.lock().unwrap());
}
