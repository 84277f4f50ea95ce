//! Starting one child with posix_spawn(3): its environment made once per run
//! ([`ChildEnv`]), its stdout and stderr on pipes, stdin on /dev/null, its own process
//! group, SIGPIPE back to its default.
//!
//! Why not `std::process::Command`: any `.env()` or `.env_remove()` makes std copy the
//! whole process environment into a map on every spawn (about 80 k instructions a step,
//! the largest cost of the run path); a run's children all start from the same
//! environment, so it is built once here and each spawn only adds its few variables.
//! Everything else is what std's own posix_spawn path does.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The environment a run's children start from: lowtouch's own minus the variables
/// that hold secrets, as `KEY=value` strings ready for execve, and /dev/null for their
/// stdin, opened once.
#[derive(Debug)]
pub struct ChildEnv {
    /// `KEY=value` and the length of `KEY`.
    entries: Vec<(CString, usize)>,
    /// Whether the children's `PATH` is lowtouch's own (then posix_spawnp's search,
    /// which reads lowtouch's `PATH`, finds what the child's would).
    path_inherited: bool,
    /// /dev/null, close-on-exec, dup2'd onto each child's stdin (`None` when it would
    /// not open: then each spawn opens it, and fails as std's would).
    null: Option<OwnedFd>,
}

impl ChildEnv {
    /// lowtouch's environment as it is now, without the variables in `remove`.
    pub fn inherit(remove: &[String]) -> ChildEnv {
        let mut path_inherited = false;
        let entries = std::env::vars_os()
            .filter(|(key, _)| !remove.iter().any(|r| OsStr::new(r) == key))
            .filter_map(|(key, value)| {
                path_inherited |= key == "PATH";
                let entry = entry(key.as_bytes(), value.as_bytes()).ok()?;
                Some((entry, key.len()))
            })
            .collect();
        let null = std::fs::File::open("/dev/null")
            .ok()
            .and_then(|f| above_stdio(f.into()).ok());
        ChildEnv {
            entries,
            path_inherited,
            null,
        }
    }

    /// The value of `key` a child gets, `set` (a spawn's own variables) first.
    fn value<'v>(&'v self, set: &'v [(CString, usize)], key: &[u8]) -> Option<&'v [u8]> {
        set.iter()
            .chain(&self.entries)
            .find(|(e, k)| *k == key.len() && e.as_bytes().starts_with(key))
            .map(|(e, k)| &e.as_bytes()[k + 1..])
    }
}

/// `KEY=value` as a C string; a NUL byte in either is an error (as std reports it).
fn entry(key: &[u8], value: &[u8]) -> io::Result<CString> {
    let mut bytes = Vec::with_capacity(key.len() + value.len() + 1);
    bytes.extend_from_slice(key);
    bytes.push(b'=');
    bytes.extend_from_slice(value);
    c_string(bytes)
}

fn c_string(bytes: impl Into<Vec<u8>>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

/// A started child: its pid (which is also its process group's id) and the parent's
/// ends of its output pipes.
pub(super) struct Spawned {
    pub pid: libc::pid_t,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// What the child runs and where.
pub(super) struct Launch<'a> {
    pub program: &'a OsStr,
    pub args: &'a [String],
    pub inherit: &'a ChildEnv,
    /// This child's own variables; they replace inherited ones of the same name.
    pub set: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
}

/// The directories searched when the child's `PATH` is unset (glibc's default).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

pub(super) fn spawn(launch: &Launch<'_>) -> io::Result<Spawned> {
    let program = c_string(launch.program.as_bytes())?;
    let args = launch
        .args
        .iter()
        .map(|a| c_string(a.as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let set = launch
        .set
        .iter()
        .map(|(k, v)| Ok((entry(k.as_bytes(), v.as_bytes())?, k.len())))
        .collect::<io::Result<Vec<_>>>()?;
    let mut argv: Vec<*mut libc::c_char> = Vec::with_capacity(args.len() + 2);
    argv.push(program.as_ptr().cast_mut());
    argv.extend(args.iter().map(|a| a.as_ptr().cast_mut()));
    argv.push(std::ptr::null_mut());
    let env = launch.inherit;
    let mut envp: Vec<*mut libc::c_char> = Vec::with_capacity(env.entries.len() + set.len() + 1);
    // An inherited variable the spawn sets itself is left out: execve would pass both.
    let replaced = |(entry, len): &&(CString, usize)| {
        set.iter()
            .any(|(s, l)| l == len && s.as_bytes()[..*l] == entry.as_bytes()[..*len])
    };
    envp.extend(
        env.entries
            .iter()
            .filter(|e| !replaced(e))
            .map(|(e, _)| e.as_ptr().cast_mut()),
    );
    envp.extend(set.iter().map(|(e, _)| e.as_ptr().cast_mut()));
    envp.push(std::ptr::null_mut());

    // posix_spawnp searches lowtouch's own PATH; a child whose PATH differs (set or
    // removed for it) is searched here in its own, as std does for such a child.
    let search_own = !program.as_bytes().contains(&b'/')
        && (!env.path_inherited || set.iter().any(|(e, _)| e.as_bytes().starts_with(b"PATH=")));
    let resolved = if search_own {
        let path = env.value(&set, b"PATH").unwrap_or(DEFAULT_PATH);
        Some(search(path, program.as_bytes(), launch.cwd)?)
    } else {
        None
    };

    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let cwd = launch
        .cwd
        .map(|c| c_string(c.as_os_str().as_bytes()))
        .transpose()?;
    let mut actions = FileActions::new()?;
    if let Some(cwd) = &cwd {
        // SAFETY: `actions` is initialised; glibc copies the path.
        check(unsafe {
            libc::posix_spawn_file_actions_addchdir_np(actions.as_mut_ptr(), cwd.as_ptr())
        })?;
    }
    match &env.null {
        // SAFETY: `actions` is initialised; the descriptor is open until the spawn
        // returns and above 2 (see `above_stdio`), so no later dup2 overwrites it.
        Some(null) => check(unsafe {
            libc::posix_spawn_file_actions_adddup2(actions.as_mut_ptr(), null.as_raw_fd(), 0)
        })?,
        // SAFETY: `actions` is initialised; the path is a NUL-terminated literal glibc
        // copies.
        None => check(unsafe {
            libc::posix_spawn_file_actions_addopen(
                actions.as_mut_ptr(),
                0,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            )
        })?,
    }
    for (fd, target) in [(&out_write, 1), (&err_write, 2)] {
        // SAFETY: `actions` is initialised; `fd` is open until the spawn returns. The
        // descriptors are above 2 (see `above_stdio`), so no dup2 overwrites another's
        // source.
        check(unsafe {
            libc::posix_spawn_file_actions_adddup2(actions.as_mut_ptr(), fd.as_raw_fd(), target)
        })?;
    }
    let mut attr = SpawnAttr::new()?;
    // SAFETY: `attr` is initialised; the sigsets are local values sigemptyset and
    // sigaddset initialise before use.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        check(libc::posix_spawnattr_setsigmask(attr.as_mut_ptr(), &none))?;
        // lowtouch ignores SIGPIPE (Rust's runtime does); its children must not.
        let mut pipe_signal: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe_signal);
        libc::sigaddset(&mut pipe_signal, libc::SIGPIPE);
        check(libc::posix_spawnattr_setsigdefault(
            attr.as_mut_ptr(),
            &pipe_signal,
        ))?;
        // Group 0: the child leads a new group of its own, so a timeout kills all of it.
        check(libc::posix_spawnattr_setpgroup(attr.as_mut_ptr(), 0))?;
        check(libc::posix_spawnattr_setflags(
            attr.as_mut_ptr(),
            (libc::POSIX_SPAWN_SETPGROUP
                | libc::POSIX_SPAWN_SETSIGDEF
                | libc::POSIX_SPAWN_SETSIGMASK) as libc::c_short,
        ))?;
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the program, argv and envp strings are
    // NUL-terminated and owned by this frame, both arrays end in a null pointer, and
    // `actions` and `attr` are initialised. glibc's child runs on its own stack and does
    // not touch our memory beyond reading these.
    let rc = unsafe {
        match &resolved {
            Some(path) => libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                actions.as_ptr(),
                attr.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
            ),
            None => libc::posix_spawnp(
                &mut pid,
                program.as_ptr(),
                actions.as_ptr(),
                attr.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
            ),
        }
    };
    check(rc)?;
    drop(out_write);
    drop(err_write);
    Ok(Spawned {
        pid,
        stdout: out_read,
        stderr: err_read,
    })
}

/// The first `dir/program` in `path` that is an executable file (relative directories
/// are taken from the child's working directory, as its exec would).
fn search(path: &[u8], program: &[u8], cwd: Option<&Path>) -> io::Result<CString> {
    let mut denied = false;
    for dir in path.split(|&b| b == b':') {
        let mut candidate = Vec::with_capacity(dir.len() + program.len() + 1);
        if dir.is_empty() {
            candidate.push(b'.');
        } else {
            candidate.extend_from_slice(dir);
        }
        candidate.push(b'/');
        candidate.extend_from_slice(program);
        let full = match (cwd, candidate.first()) {
            (Some(cwd), Some(b)) if *b != b'/' => {
                let mut bytes = cwd.as_os_str().as_bytes().to_vec();
                bytes.push(b'/');
                bytes.extend_from_slice(&candidate);
                bytes
            }
            _ => candidate,
        };
        let full = c_string(full)?;
        // SAFETY: access(2) reads the NUL-terminated path.
        if unsafe { libc::access(full.as_ptr(), libc::X_OK) } == 0 {
            let is_file =
                std::fs::metadata(OsStr::from_bytes(full.as_bytes())).is_ok_and(|m| m.is_file());
            if is_file {
                return Ok(full);
            }
        } else if io::Error::last_os_error().raw_os_error() == Some(libc::EACCES) {
            denied = true;
        }
    }
    Err(io::Error::from_raw_os_error(if denied {
        libc::EACCES
    } else {
        libc::ENOENT
    }))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// A pipe, close-on-exec at both ends (the child gets its end through dup2), both
/// descriptors above 2.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are new and ours alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(read)?, above_stdio(write)?))
}

/// A descriptor numbered 0–2 (lowtouch started with its stdio closed) moved above 2,
/// so that the child's dup2 onto 1 and 2 cannot overwrite it before it is used.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor >= 3 or -1.
    let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `moved` is a new descriptor, ours alone; `fd` closes when dropped here.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

/// posix_spawn_file_actions_t, destroyed when dropped.
struct FileActions(Box<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        // SAFETY: a zeroed struct is valid storage for init to fill in.
        let mut actions = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `actions` points to writable storage of the right type.
        check(unsafe { libc::posix_spawn_file_actions_init(&mut *actions) })?;
        Ok(FileActions(actions))
    }

    fn as_mut_ptr(&mut self) -> *mut libc::posix_spawn_file_actions_t {
        &mut *self.0
    }

    fn as_ptr(&self) -> *const libc::posix_spawn_file_actions_t {
        &*self.0
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut *self.0);
        }
    }
}

/// posix_spawnattr_t, destroyed when dropped.
struct SpawnAttr(Box<libc::posix_spawnattr_t>);

impl SpawnAttr {
    fn new() -> io::Result<SpawnAttr> {
        // SAFETY: a zeroed struct is valid storage for init to fill in.
        let mut attr = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `attr` points to writable storage of the right type.
        check(unsafe { libc::posix_spawnattr_init(&mut *attr) })?;
        Ok(SpawnAttr(attr))
    }

    fn as_mut_ptr(&mut self) -> *mut libc::posix_spawnattr_t {
        &mut *self.0
    }

    fn as_ptr(&self) -> *const libc::posix_spawnattr_t {
        &*self.0
    }
}

impl Drop for SpawnAttr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe {
            libc::posix_spawnattr_destroy(&mut *self.0);
        }
    }
}
