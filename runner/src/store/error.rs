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
    #[error("store i/o failed")]
    Io(#[from] sled::Error),
    #[error("a stored record is corrupt: {key}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("a stored record is damaged: {key}: {why}")]
    Damaged { key: String, why: String },
}
