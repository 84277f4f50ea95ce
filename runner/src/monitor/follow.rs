//! Following a log file like `tail -F`: whole lines as they are appended, across
//! rotation (the file renamed away and a new one created), truncation (copytruncate) and
//! a file that does not exist yet — no line lost, none given twice, in the order written.
//!
//! The caller polls ([`Follower::poll`]) when it likes (on a timer, or when inotify says
//! so); each poll hands over the complete lines appended since the last one, as one
//! buffer the rules can scan at once.
//!
//! Rotation: the old file is read to its end before the new one is opened, and kept open
//! for [`RETIRE_AFTER`] more, because a writer may still append to it until it reopens its
//! log; its lines always come before the new file's. A last line without a newline in a
//! retired file is handed over as a line of its own.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a rotated-away file is still read from.
pub const RETIRE_AFTER: Duration = Duration::from_secs(2);

/// What a poll found besides lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Happened {
    /// The file was replaced by a new one (rotation).
    pub rotated: bool,
    /// The file got shorter: it was truncated and is read from its start again.
    pub truncated: bool,
    /// The file is not there (yet, or any more).
    pub missing: bool,
}

struct Open {
    file: File,
    ino: u64,
    dev: u64,
    offset: u64,
    /// Bytes after the last newline: a line still being written.
    partial: Vec<u8>,
    /// Where reads land (kept: a busy log is read many times a second).
    chunk: Vec<u8>,
}

impl Open {
    fn at(path: &Path, from_end: bool) -> io::Result<Open> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let offset = if from_end {
            file.seek(SeekFrom::End(0))?
        } else {
            0
        };
        Ok(Open {
            file,
            ino: meta.ino(),
            dev: meta.dev(),
            offset,
            partial: Vec::new(),
            chunk: Vec::new(),
        })
    }

    /// Reads to the end; appends complete lines to `out`. `limit` bounds one read.
    fn drain(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        const CHUNK: usize = 64 * 1024;
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.resize(CHUNK, 0);
        let result = self.drain_into(&mut chunk, out, limit);
        self.chunk = chunk;
        result
    }

    fn drain_into(&mut self, chunk: &mut [u8], out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        let mut read_now = 0;
        loop {
            let n = self.file.read(chunk)?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            read_now += n;
            let data = &chunk[..n];
            match memchr::memrchr(b'\n', data) {
                Some(last) => {
                    out.extend_from_slice(&self.partial);
                    self.partial.clear();
                    out.extend_from_slice(&data[..=last]);
                    self.partial.extend_from_slice(&data[last + 1..]);
                }
                None => self.partial.extend_from_slice(data),
            }
            // A short read is the end of the file for now: what is appended later is
            // the next poll's (one `read` per poll of a quiet log, not two).
            if read_now >= limit || n < chunk.len() {
                return Ok(());
            }
        }
    }
}

/// One followed file.
pub struct Follower {
    path: PathBuf,
    current: Option<Open>,
    /// A rotated-away file still read from, and when it was retired.
    retiring: Option<(Open, Instant)>,
    /// Start at the end of a file that exists at the start (a daemon attaching to a live
    /// log), or read it whole.
    from_end: bool,
    /// Most bytes handed over per poll (the rest waits for the next one).
    pub max_per_poll: usize,
    /// The path was gone at the last poll: whatever is there now is a new file, even if
    /// the file system gave it the old one's inode number (tmpfs and ext4 reuse them).
    was_missing: bool,
}

impl Follower {
    /// Follows `path`. With `from_end`, lines already in the file when this is made are
    /// skipped; a file that appears later, or a new file after a rotation, is read from
    /// its start.
    pub fn new(path: impl Into<PathBuf>, from_end: bool) -> Follower {
        Follower {
            path: path.into(),
            current: None,
            retiring: None,
            from_end,
            max_per_poll: 16 * 1024 * 1024,
            was_missing: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The complete lines appended since the last poll, appended to `out` (each with its
    /// newline).
    pub fn poll(&mut self, out: &mut Vec<u8>) -> io::Result<Happened> {
        let mut happened = Happened::default();
        if self.current.is_none() {
            match Open::at(&self.path, self.from_end) {
                Ok(open) => self.current = Some(open),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.from_end = false;
                    self.drain_retiring(out)?;
                    happened.missing = true;
                    return Ok(happened);
                }
                Err(e) => return Err(e),
            }
            // Only the first file may start at its end; later ones are new.
            self.from_end = false;
        }
        // The retiring file's lines were written before the current file's.
        self.drain_retiring(out)?;
        let limit = self.max_per_poll;
        let Some(cur) = self.current.as_mut() else {
            return Ok(happened);
        };
        cur.drain(out, limit)?;
        let was_missing = std::mem::take(&mut self.was_missing);
        match std::fs::metadata(&self.path) {
            Ok(meta) if was_missing || meta.ino() != cur.ino || meta.dev() != cur.dev => {
                // Rotated: what the old file holds is read; the new one starts now.
                happened.rotated = true;
                let old = self.current.take();
                if let Some((mut previous, _)) = self.retiring.take() {
                    flush_partial(&mut previous, out);
                }
                self.retiring = old.map(|o| (o, Instant::now()));
                match Open::at(&self.path, false) {
                    Ok(mut open) => {
                        open.drain(out, limit)?;
                        self.current = Some(open);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => happened.missing = true,
                    Err(e) => return Err(e),
                }
            }
            Ok(meta) if meta.len() < cur.offset => {
                // Truncated in place: read again from the start.
                happened.truncated = true;
                cur.file.seek(SeekFrom::Start(0))?;
                cur.offset = 0;
                cur.partial.clear();
                cur.drain(out, limit)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Renamed away, nothing new yet: keep reading it until a new one comes.
                happened.missing = true;
                self.was_missing = true;
            }
            Err(e) => return Err(e),
        }
        Ok(happened)
    }

    fn drain_retiring(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if let Some((old, since)) = self.retiring.as_mut() {
            old.drain(out, usize::MAX)?;
            if since.elapsed() >= RETIRE_AFTER
                && let Some((mut old, _)) = self.retiring.take()
            {
                flush_partial(&mut old, out);
            }
        }
        Ok(())
    }
}

/// A retired file's unfinished last line: nobody will finish it, so it is a line.
fn flush_partial(open: &mut Open, out: &mut Vec<u8>) {
    if !open.partial.is_empty() {
        out.append(&mut open.partial);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn poll(f: &mut Follower) -> (String, Happened) {
        let mut out = Vec::new();
        let h = f.poll(&mut out).unwrap();
        (String::from_utf8(out).unwrap(), h)
    }

    #[test]
    fn whole_lines_only_and_a_missing_file_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("engine.log");
        let mut f = Follower::new(&log, true);
        assert!(poll(&mut f).1.missing);
        append(&log, "one\ntw");
        assert_eq!(poll(&mut f).0, "one\n", "a file that appears is read whole");
        append(&log, "o\nthree\n");
        assert_eq!(poll(&mut f).0, "two\nthree\n");
        assert_eq!(poll(&mut f).0, "");
    }

    #[test]
    fn from_end_skips_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("engine.log");
        append(&log, "old\n");
        let mut f = Follower::new(&log, true);
        assert_eq!(poll(&mut f).0, "");
        append(&log, "new\n");
        assert_eq!(poll(&mut f).0, "new\n");
    }

    #[test]
    fn rotation_loses_nothing_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("engine.log");
        let mut f = Follower::new(&log, false);
        append(&log, "1\n2\n");
        assert_eq!(poll(&mut f).0, "1\n2\n");
        // logrotate: written, renamed, written again (the writer has not reopened yet),
        // then a new file.
        append(&log, "3\n");
        std::fs::rename(&log, dir.path().join("engine.log.1")).unwrap();
        append(&dir.path().join("engine.log.1"), "4\n5-unfinish");
        append(&log, "6\n");
        let (text, h) = poll(&mut f);
        assert!(h.rotated);
        assert_eq!(text, "3\n4\n6\n");
        // The writer finishes its line in the old file before reopening.
        append(&dir.path().join("engine.log.1"), "ed\n");
        append(&log, "7\n");
        assert_eq!(poll(&mut f).0, "5-unfinished\n7\n");
    }

    #[test]
    fn truncation_reads_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("engine.log");
        let mut f = Follower::new(&log, false);
        append(&log, "a long first line\n");
        assert_eq!(poll(&mut f).0, "a long first line\n");
        std::fs::write(&log, "b\n").unwrap();
        let (text, h) = poll(&mut f);
        assert!(h.truncated);
        assert_eq!(text, "b\n");
    }

    #[test]
    fn a_deleted_file_is_followed_to_its_end_and_a_new_one_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("engine.log");
        let mut f = Follower::new(&log, false);
        append(&log, "a\n");
        assert_eq!(poll(&mut f).0, "a\n");
        std::fs::remove_file(&log).unwrap();
        assert!(poll(&mut f).1.missing);
        append(&log, "b\n");
        let (text, h) = poll(&mut f);
        assert!(h.rotated);
        assert_eq!(text, "b\n");
    }
}
