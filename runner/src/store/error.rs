//! Store errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path} is held by another process{owner}")]
    Locked { path: PathBuf, owner: String },
    #[error(
        "the store {path} is damaged and cannot be read ({source}); lowtouch leaves it be: move it aside to start a new one (mv {path} {path}.damaged), or restore a copy"
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the store {path} has schema version {found}, newer than this lowtouch reads ({supported})"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "no space left on the disk that holds the store{}: what was stored before is kept; free some space (`lowtouch gc` prunes old runs and gives their space back) and run again",
        .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default()
    )]
    NoSpace { path: Option<PathBuf> },
    #[error("store i/o failed")]
    Io(#[source] sled::Error),
    #[error("a stored record is corrupt: {key}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("a stored record is damaged: {key}: {why}")]
    Damaged { key: String, why: String },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        if is_no_space(&e) {
            StoreError::NoSpace { path: None }
        } else {
            StoreError::Io(e)
        }
    }
}

impl StoreError {
    /// Never: every store error is the disk, the store's files or another process holding
    /// them (exit 3), however much a person can do about it (a full disk, a lock).
    pub fn is_bad_input(&self) -> bool {
        false
    }
}

/// A full disk (or a full quota): the one i/o failure a person can do something about.
pub(super) fn is_no_space(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::StorageFull
                || io.raw_os_error() == Some(libc::ENOSPC)
                || io.raw_os_error() == Some(libc::EDQUOT)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_is_never_bad_input() {
        assert!(!StoreError::NoSpace { path: None }.is_bad_input());
        let locked = StoreError::Locked {
            path: "/s".into(),
            owner: String::new(),
        };
        assert!(!locked.is_bad_input());
    }
}
