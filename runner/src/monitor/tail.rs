//! The end of a log file, read from its end: a run keeps each component's log tail as an
//! artifact, and an error message quotes the last lines a component wrote. A log of a
//! 24/7 environment may be gigabytes; only its last bytes are read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The last `lines` lines of the file at `path`, within its last `max_bytes` bytes (a
/// line cut by that limit is left out whole).
pub fn last_lines(path: &Path, lines: usize, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    // One byte before the window too: whether the window begins a line is the byte
    // before it.
    let from = start.saturating_sub(1);
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity((len - from) as usize);
    file.take(len - from).read_to_end(&mut buf)?;
    // Begun before the window: keep what follows the first line break (the byte before
    // the window, when the window begins a line).
    if start > 0 {
        match memchr::memchr(b'\n', &buf) {
            Some(nl) => {
                buf.drain(..=nl);
            }
            None => buf.clear(),
        }
    }
    let kept = last_lines_of(&buf, lines).len();
    buf.drain(..buf.len() - kept);
    Ok(buf)
}

/// The last `n` lines of `bytes` (a last line without a newline counts as one). Pure.
pub fn last_lines_of(bytes: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &bytes[bytes.len()..];
    }
    // The newline that ends the last line is not a line break before it.
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    match memchr::memrchr_iter(b'\n', body).nth(n - 1) {
        Some(nl) => &bytes[nl + 1..],
        None => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_whether_or_not_the_last_one_ends() {
        assert_eq!(last_lines_of(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines_of(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines_of(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines_of(b"", 3), b"");
        assert_eq!(last_lines_of(b"a\n", 0), b"");
        assert_eq!(last_lines_of(b"\n\n", 1), b"\n");
    }

    #[test]
    fn a_big_log_is_read_from_its_end_and_a_cut_line_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.log");
        let text: String = (0..10_000).map(|i| format!("line {i:05}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let tail = last_lines(&path, 3, 1 << 20).unwrap();
        assert_eq!(tail, b"line 09997\nline 09998\nline 09999\n");
        // 25 bytes reach into the middle of line 09997: only whole lines are kept.
        let cut = last_lines(&path, 200, 25).unwrap();
        assert_eq!(cut, b"line 09998\nline 09999\n");
        // 22 bytes are exactly two lines: both kept.
        let exact = last_lines(&path, 200, 22).unwrap();
        assert_eq!(exact, b"line 09998\nline 09999\n");
        let whole = last_lines(&path, 20_000, 1 << 20).unwrap();
        assert_eq!(whole, text.as_bytes());
        assert!(last_lines(&dir.path().join("missing.log"), 3, 100).is_err());
    }
}
