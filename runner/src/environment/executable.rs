//! Which program `#{lowtouch}` names: this lowtouch's executable, at the path it is
//! installed at.
//!
//! `std::env::current_exe` reads /proc/self/exe, which the kernel suffixes with
//! ` (deleted)` once the file is replaced (every upgrade under a running `serve`): every
//! component started through `#{lowtouch}` then failed to start, and runs were stored as
//! scenario failures. The path as installed still names a lowtouch (the new one), so it is
//! used; when nothing is there any more, that is the machine's fault, not the system's.

use std::path::{Path, PathBuf};

/// What the kernel appends to /proc/PID/exe when the file was unlinked (proc(5)).
const DELETED: &str = " (deleted)";

#[derive(Debug, thiserror::Error)]
pub enum ExecutableError {
    #[error(
        "this lowtouch's executable {} was removed while it ran, so nothing can start `#{{lowtouch}}`: install it again and restart lowtouch",
        .path.display()
    )]
    Removed { path: PathBuf },
    #[error("cannot tell where this lowtouch's executable is: {source}")]
    Unknown {
        #[source]
        source: std::io::Error,
    },
}

/// This lowtouch's executable as installed: replaced by an upgrade, the new file there.
pub fn own_executable() -> Result<PathBuf, ExecutableError> {
    let link = std::env::current_exe().map_err(|source| ExecutableError::Unknown { source })?;
    resolve(&link, |p| p.is_file()).map_err(|path| ExecutableError::Removed { path })
}

/// The executable /proc/self/exe names (`link`), or the path it was at when the file is
/// gone from there (`Err`). `is_file` tells whether a path names a file now.
fn resolve(link: &Path, is_file: impl Fn(&Path) -> bool) -> Result<PathBuf, PathBuf> {
    if is_file(link) {
        return Ok(link.to_path_buf());
    }
    let installed = link
        .to_str()
        .and_then(|l| l.strip_suffix(DELETED))
        .map_or_else(|| link.to_path_buf(), PathBuf::from);
    if is_file(&installed) {
        Ok(installed)
    } else {
        Err(installed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(link: &str, files: &[&str], expected: Result<&str, &str>) {
        let got = resolve(Path::new(link), |p| files.iter().any(|f| Path::new(f) == p));
        assert_eq!(
            got,
            expected.map(PathBuf::from).map_err(PathBuf::from),
            "{link}"
        );
    }

    #[test]
    fn the_installed_path_whether_the_file_is_the_same_replaced_or_gone() {
        check(
            "/opt/bin/lowtouch",
            &["/opt/bin/lowtouch"],
            Ok("/opt/bin/lowtouch"),
        );
        // Replaced by an upgrade: the new file at the same path.
        check(
            "/opt/bin/lowtouch (deleted)",
            &["/opt/bin/lowtouch"],
            Ok("/opt/bin/lowtouch"),
        );
        // Removed for good.
        check("/opt/bin/lowtouch (deleted)", &[], Err("/opt/bin/lowtouch"));
        check("/opt/bin/lowtouch", &[], Err("/opt/bin/lowtouch"));
        // A file whose name really ends so is itself.
        check(
            "/opt/bin/x (deleted)",
            &["/opt/bin/x (deleted)"],
            Ok("/opt/bin/x (deleted)"),
        );
    }
}
