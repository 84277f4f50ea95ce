//! A component's pid record: `PID START_TIME\n` in `NAME.pid`, the one thing that lets a
//! later run find and stop what an earlier, killed run started.
//!
//! The component's own process writes it, between fork and exec: a kill -9 of lowtouch at
//! any moment of a start leaves either no process (not forked yet) or a process whose
//! record is written before its program runs (the child goes on without its parent). When
//! lowtouch wrote the record after `spawn()` returned, a kill in between left a component no
//! record named, holding its port for every later run. A record that cannot be written
//! stops the start: the program never runs unrecorded.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What the forked child needs to record itself, prepared (allocated) before the fork.
pub(crate) struct PreExecRecord {
    /// Written first, then renamed over `path`: a reader never sees half a record.
    tmp: CString,
    path: CString,
}

impl PreExecRecord {
    pub(crate) fn new(path: &Path) -> io::Result<PreExecRecord> {
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        Ok(PreExecRecord {
            tmp: c(Path::new(&tmp))?,
            path: c(path)?,
        })
    }

    /// Writes the calling process's record. Runs in the forked child before exec, so it
    /// makes only async-signal-safe system calls and allocates nothing.
    pub(crate) fn write_in_child(&self) -> io::Result<()> {
        let mut stat = [0u8; 1024];
        let n = read_self_stat(&mut stat)?;
        let (pid, start) =
            pid_and_start(&stat[..n]).ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))?;
        let mut line = [0u8; 64];
        let len = pid.len() + 1 + start.len() + 1;
        if len > line.len() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        line[..pid.len()].copy_from_slice(pid);
        line[pid.len()] = b' ';
        line[pid.len() + 1..len - 1].copy_from_slice(start);
        line[len - 1] = b'\n';
        // SAFETY: plain system calls on NUL-terminated paths this struct owns and a stack
        // buffer; each result is checked.
        unsafe {
            let fd = libc::open(
                self.tmp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let written = libc::write(fd, line.as_ptr().cast(), len);
            let write_error = io::Error::last_os_error();
            libc::close(fd);
            if written != len as isize {
                return Err(if written < 0 {
                    write_error
                } else {
                    io::Error::from_raw_os_error(libc::ENOSPC)
                });
            }
            if libc::rename(self.tmp.as_ptr(), self.path.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Reads /proc/self/stat into `buf` with raw system calls (no allocation).
fn read_self_stat(buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: open/read/close on a static NUL-terminated path and a caller's buffer.
    unsafe {
        let fd = libc::open(
            c"/proc/self/stat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut n = 0;
        while n < buf.len() {
            let r = libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n);
            if r < 0 {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            if r == 0 {
                break;
            }
            n += r as usize;
        }
        libc::close(fd);
        Ok(n)
    }
}

/// The pid (field 1) and start time (field 22) of a /proc/PID/stat line, as its bytes.
fn pid_and_start(stat: &[u8]) -> Option<(&[u8], &[u8])> {
    let pid = &stat[..stat.iter().position(|&b| b == b' ')?];
    // The command name (field 2) may hold spaces and parentheses: fields go on after the
    // last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let start = stat.get(close + 2..)?.split(|&b| b == b' ').nth(19)?;
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    (digits(pid) && digits(start)).then_some((pid, start))
}

/// The pid a record names, when that process is alive and started at the recorded time
/// (a pid reused by another process after a crash is not the component).
pub(crate) fn read(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    let pid: i32 = it.next()?.parse().ok()?;
    let start: u64 = it.next()?.parse().ok()?;
    (super::components::alive(pid) && super::components::proc_start_time(pid) == Some(start))
        .then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn check(stat: &str, expected: Option<(&str, &str)>) {
        let got = pid_and_start(stat.as_bytes()).map(|(p, s)| {
            (
                std::str::from_utf8(p).unwrap().to_string(),
                std::str::from_utf8(s).unwrap().to_string(),
            )
        });
        assert_eq!(
            got,
            expected.map(|(p, s)| (p.to_string(), s.to_string())),
            "{stat}"
        );
    }

    #[test]
    fn the_pid_and_start_time_come_from_their_fields_whatever_the_command_name() {
        let tail = "S 1 2 3 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        check(&format!("4242 (sleep) {tail}"), Some(("4242", "987654")));
        check(&format!("7 (a) b) (c) {tail}"), Some(("7", "987654")));
        check("7 (cut", None);
        check("", None);
    }

    #[test]
    fn a_child_records_itself_before_its_program_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("C.pid");
        let record = PreExecRecord::new(&path).unwrap();
        // The program reads its own record: it exists before exec.
        let mut cat = std::process::Command::new("cat");
        cat.arg(&path).stdout(std::process::Stdio::piped());
        // SAFETY: write_in_child makes only async-signal-safe calls.
        let child = unsafe { cat.pre_exec(move || record.write_in_child()) }
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with(&format!("{pid} ")), "{text}");
        assert!(!dir.path().join("C.pid.new").exists());
    }

    #[test]
    fn no_record_no_start() {
        let path = Path::new("/nonexistent-dir/C.pid");
        let record = PreExecRecord::new(path).unwrap();
        let mut cmd = std::process::Command::new("true");
        // SAFETY: as above.
        let spawned = unsafe { cmd.pre_exec(move || record.write_in_child()) }.spawn();
        assert!(spawned.is_err(), "the program ran without its record");
    }
}
