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
