//! The matching log: one line per event, `<UTC timestamp> <NAME> <message>`,
//! appended and handed to the kernel immediately so `tail -F` (and the
//! runner's monitors) see every line as soon as it happens.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Formats a timestamp the way every log line starts:
/// RFC 3339, UTC, microsecond precision, `Z` suffix.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Appends lines to the matching log. Shared by all engine threads; the
/// mutex keeps lines whole and in the order they were produced.
pub struct MatchLog {
    name: String,
    file: Mutex<File>,
}

impl MatchLog {
    pub fn open(path: &Path, name: &str) -> io::Result<MatchLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(MatchLog {
            name: name.to_string(),
            file: Mutex::new(file),
        })
    }

    /// Writes one line. The timestamp is taken under the lock so timestamps
    /// never go backwards within a file. A failing disk must not stop
    /// matching, so write errors are reported on stderr and otherwise ignored.
    pub fn line(&self, message: &str) {
        let mut file = match self.file.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        let line = format!("{} {} {}\n", timestamp(Utc::now()), self.name, message);
        // `File` is unbuffered: a single write_all is one append, visible to
        // readers at once, so no explicit flush is needed beyond it.
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("exchange: cannot write matching log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamp_has_microseconds_and_z() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 14, 35, 40).unwrap()
            + chrono::Duration::microseconds(123_456);
        assert_eq!(timestamp(t), "2026-11-25T14:35:40.123456Z");
    }

    #[test]
    fn lines_are_appended_with_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/match.log");
        let log = MatchLog::open(&path, "p1").unwrap();
        log.line("STATE: STARTING");
        drop(log);
        let log = MatchLog::open(&path, "p1").unwrap();
        log.line("STATE: READY");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("Z p1 STATE: STARTING"), "{}", lines[0]);
        assert!(lines[1].ends_with("Z p1 STATE: READY"));
        assert_eq!(lines[0].find(' '), Some(27));
    }
}
