//! The local API's own wire format, apart from any socket: the request a client sends and
//! the frames of output the server streams back (one JSON object per line). HTTP itself
//! is hyper's business on both sides. Pure, so it is tested (and fuzzable) without a
//! server.

use serde::{Deserialize, Serialize};

use super::error::FrameError;

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

    pub fn from_line(line: &str) -> Result<Frame, FrameError> {
        serde_json::from_str(line.trim_end()).map_err(|error| FrameError {
            line: line.to_string(),
            error,
        })
    }
}

/// Cuts a response body into frames whatever pieces it arrives in: feed bytes as they
/// come, take the frames they complete.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes of a line whose end has not arrived yet.
    pending: Vec<u8>,
}

impl FrameReader {
    /// Adds bytes of the body.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete frame, if one arrived; one at a time, so a frame's output is
    /// written before a bad line after it is read.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let nl = self.pending.iter().position(|&b| b == b'\n')?;
        let line: Vec<u8> = self.pending.drain(..=nl).collect();
        Some(Frame::from_line(&String::from_utf8_lossy(&line)))
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
        let bad = Frame::from_line("{\"bogus\":1}").unwrap_err().to_string();
        assert!(
            bad.starts_with("bad frame \"{\\\"bogus\\\":1}\": "),
            "{bad}"
        );
    }

    #[test]
    fn frames_survive_any_split_of_the_body() {
        let frames = [
            Frame::Out("hello\n".into()),
            Frame::Beat,
            Frame::Err("ünïcode\n".into()),
            Frame::Exit(7),
        ];
        let body: String = frames.iter().map(Frame::to_line).collect();
        let body = body.as_bytes();
        for split in 0..=body.len() {
            let mut reader = FrameReader::default();
            let mut got = Vec::new();
            for part in [&body[..split], &body[split..]] {
                reader.feed(part);
                while let Some(f) = reader.next_frame() {
                    got.push(f.unwrap());
                }
            }
            assert_eq!(got, frames, "split at {split}");
        }
        // Byte by byte.
        let mut reader = FrameReader::default();
        let mut got = Vec::new();
        for b in body {
            reader.feed(&[*b]);
            got.extend(std::iter::from_fn(|| reader.next_frame()).map(Result::unwrap));
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn a_bad_line_is_an_error_after_the_frames_before_it() {
        let mut reader = FrameReader::default();
        reader.feed(b"{\"out\":\"a\"}\nnot json\n");
        assert_eq!(
            reader.next_frame().unwrap().unwrap(),
            Frame::Out("a".into())
        );
        assert!(reader.next_frame().unwrap().is_err());
        assert!(reader.next_frame().is_none());
    }
}
