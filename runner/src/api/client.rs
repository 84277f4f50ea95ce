//! The client side: a command that finds a server's socket sends itself there and
//! plays back what the server streams, then exits with the server's exit code.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::protocol::{Dechunker, Frame, Request, parse_head};
use crate::console::{self, Stream};

/// Sends `request` to the server listening on `socket` and writes its output to this
/// thread's console. `Ok(None)`: no server listens there (no socket, or a stale one a
/// dead server left) — the caller does the work itself. `Err`: a server is there but
/// the exchange failed.
pub fn forward(socket: &Path, request: &Request) -> Result<Option<i32>, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    // Before a byte of the command line (and its `--set` values) leaves this process.
    match std::fs::symlink_metadata(socket) {
        Ok(meta) => trust(&SocketFile::of(&meta), me).map_err(|e| e.at(socket))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => {} // Connecting says what is wrong.
    }
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(format!(
                "cannot reach the server at {}: {e}",
                socket.display()
            ));
        }
    };
    // The file may have been replaced since it was looked at: the process that accepted
    // is what counts.
    if let Some(peer) = peer_uid(&stream)
        && peer != me
    {
        return Err(UntrustedSocket::OtherListener { uid: peer }
            .at(socket)
            .to_string());
    }
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let head = format!(
        "POST /v1/command HTTP/1.1\r\nHost: lowtouch\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let broken =
        |e: std::io::Error| format!("the server at {} stopped answering: {e}", socket.display());
    stream.write_all(head.as_bytes()).map_err(broken)?;
    stream.write_all(&body).map_err(broken)?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).map_err(broken)?;
        if n == 0 {
            return Err("the server closed the connection without an answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = parse_head(&String::from_utf8_lossy(&buf[..head_end]))?;
    let mut rest = buf.split_off(head_end + 4);
    if head.status != 200 {
        while head.content_length.is_none_or(|l| rest.len() < l) {
            let n = stream.read(&mut chunk).map_err(broken)?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        let mut body = if head.chunked {
            Dechunker::default().feed(&rest).unwrap_or_default()
        } else {
            rest
        };
        body.truncate(4096);
        return Err(format!(
            "the server refused the command ({}): {}",
            head.status,
            String::from_utf8_lossy(&body).trim()
        ));
    }
    let mut dechunker = head.chunked.then(Dechunker::default);
    let mut pending: Vec<u8> = Vec::new();
    let mut input = rest;
    loop {
        let body = match &mut dechunker {
            Some(d) => d.feed(&input)?,
            None => std::mem::take(&mut input),
        };
        input.clear();
        pending.extend_from_slice(&body);
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            match Frame::from_line(&String::from_utf8_lossy(&line))? {
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
        if dechunker.as_ref().is_some_and(Dechunker::finished) {
            break;
        }
        let n = stream.read(&mut chunk).map_err(broken)?;
        if n == 0 {
            break;
        }
        input.extend_from_slice(&chunk[..n]);
    }
    Err("the server ended the command without an exit code (did it stop?)".into())
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

/// Why a `serve.sock` is not talked to: whoever listens there would receive the command
/// line (with its `--set` values) and could fake its results.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UntrustedSocket {
    #[error("it is not a socket")]
    NotASocket,
    #[error("it belongs to {}, not to this user", owner(*uid))]
    OtherOwner { uid: u32 },
    #[error("others may write to it (mode {mode:o})")]
    WritableByOthers { mode: u32 },
    #[error("the process listening on it runs as {}, not as this user", owner(*uid))]
    OtherListener { uid: u32 },
}

impl UntrustedSocket {
    /// The error as the user sees it: where, why, and what to do.
    pub fn at(&self, socket: &Path) -> String {
        format!(
            "refusing the server socket {}: {self}; if no server of yours runs, remove it \
             (or use a store directory only you can write to)",
            socket.display()
        )
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
fn owner(uid: u32) -> String {
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
    use super::*;

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
        let text = UntrustedSocket::OtherOwner { uid: 0 }.at(Path::new("/x/serve.sock"));
        assert!(text.contains("/x/serve.sock"), "{text}");
        assert!(text.contains("root (uid 0)"), "{text}");
    }
}
