//! The local API's wire format, apart from any socket: the request a client sends, the
//! frames of output the server streams back (one JSON object per line), and the little
//! of HTTP/1.1 a client needs to read a streamed response (status line, headers,
//! chunked transfer coding). Pure, so it is tested (and fuzzable) without a server.

use serde::{Deserialize, Serialize};

/// What a client asks: its command line (without the program name), and whether its own
/// stdout and stderr are terminals (colours, spinners).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub argv: Vec<String>,
    #[serde(default)]
    pub terminal_out: bool,
    #[serde(default)]
    pub terminal_err: bool,
}

/// One piece of a command's output, or its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    Out(String),
    Err(String),
    Exit(i32),
    /// Nothing: sent now and then while a command runs quietly, so a client that went
    /// away is noticed (writing to its closed socket fails).
    Beat,
}

impl Frame {
    /// The frame as one line of the response body.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| "{\"exit\":3}".into());
        line.push('\n');
        line
    }

    pub fn from_line(line: &str) -> Result<Frame, String> {
        serde_json::from_str(line.trim_end()).map_err(|e| format!("bad frame {line:?}: {e}"))
    }
}

/// A response's status line and the headers a client cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub chunked: bool,
    pub content_length: Option<usize>,
}

/// Parses the head of an HTTP/1.1 response (everything before the empty line).
pub fn parse_head(head: &str) -> Result<ResponseHead, String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {status_line:?}"))?;
    let mut out = ResponseHead {
        status,
        chunked: false,
        content_length: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            out.chunked = true;
        } else if name == "content-length" {
            out.content_length = value.parse().ok();
        }
    }
    Ok(out)
}

/// Undoes the chunked transfer coding incrementally: feed bytes as they arrive, take
/// the body bytes out.
#[derive(Debug, Default)]
pub struct Dechunker {
    buf: Vec<u8>,
    /// Bytes left in the current chunk (its data, then 2 for its CRLF).
    left: Option<usize>,
    done: bool,
}

impl Dechunker {
    /// Adds `input`; returns the body bytes it completes.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<u8>, String> {
        self.buf.extend_from_slice(input);
        let mut out = Vec::new();
        loop {
            if self.done {
                return Ok(out);
            }
            match self.left {
                None => {
                    let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                        if self.buf.len() > 1024 {
                            return Err("a chunk size line over 1 KiB".into());
                        }
                        return Ok(out);
                    };
                    let line = String::from_utf8_lossy(&self.buf[..eol]).to_string();
                    let size_text = line.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(size_text, 16)
                        .map_err(|_| format!("bad chunk size {line:?}"))?;
                    self.buf.drain(..eol + 2);
                    if size == 0 {
                        self.done = true;
                        return Ok(out);
                    }
                    self.left = Some(size.checked_add(2).ok_or("a chunk size out of range")?);
                }
                Some(left) => {
                    if self.buf.is_empty() {
                        return Ok(out);
                    }
                    if left > 2 {
                        // Data of the chunk.
                        let data = (left - 2).min(self.buf.len());
                        out.extend_from_slice(&self.buf[..data]);
                        self.buf.drain(..data);
                        self.left = Some(left - data);
                    } else {
                        // The CRLF that ends a chunk: checked, not skipped blindly.
                        let expected = &b"\r\n"[2 - left..];
                        let n = left.min(self.buf.len());
                        if self.buf[..n] != expected[..n] {
                            return Err("a chunk does not end with CRLF".into());
                        }
                        self.buf.drain(..n);
                        self.left = Some(left - n).filter(|l| *l > 0);
                    }
                }
            }
        }
    }

    /// Whether the last chunk arrived.
    pub fn finished(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_one_line_each_and_round_trip() {
        for f in [
            Frame::Out("a\nb \"quoted\"\n".into()),
            Frame::Err(String::new()),
            Frame::Exit(130),
            Frame::Beat,
        ] {
            let line = f.to_line();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert_eq!(Frame::from_line(&line).unwrap(), f);
        }
        assert!(Frame::from_line("{\"bogus\":1}").is_err());
    }

    #[test]
    fn heads() {
        let h =
            parse_head("HTTP/1.1 200 OK\r\ncontent-type: x\r\nTransfer-Encoding: chunked").unwrap();
        assert_eq!((h.status, h.chunked, h.content_length), (200, true, None));
        let h = parse_head("HTTP/1.1 400 Bad Request\r\ncontent-length: 12").unwrap();
        assert_eq!(
            (h.status, h.chunked, h.content_length),
            (400, false, Some(12))
        );
        assert!(parse_head("SSH-2.0-OpenSSH").is_err());
    }

    #[test]
    fn dechunking_survives_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = Dechunker::default();
            let mut body = d.feed(&wire[..split]).unwrap();
            body.extend(d.feed(&wire[split..]).unwrap());
            assert_eq!(body, b"hello, world", "split at {split}");
            assert!(d.finished());
        }
        // Byte by byte.
        let mut d = Dechunker::default();
        let body: Vec<u8> = wire.iter().flat_map(|b| d.feed(&[*b]).unwrap()).collect();
        assert_eq!(body, b"hello, world");
        assert!(Dechunker::default().feed(b"zz\r\n").is_err());
        assert!(
            Dechunker::default().feed(b"3\r\nabcXY").is_err(),
            "no CRLF after data"
        );
        assert!(
            Dechunker::default().feed(b"ffffffffffffffff\r\n").is_err(),
            "a size that overflows"
        );
    }
}
