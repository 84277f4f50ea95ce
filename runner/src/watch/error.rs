//! Errors of watching. Every gix error is turned into text here, with its causes, so the
//! rest of lowtouch never sees a gix type.

use std::path::PathBuf;

/// What went wrong while mirroring, fetching or diffing a watched repository.
///
/// [`WatchError::Unreachable`] is the one a server retries with backoff: the remote may
/// come back. The others point at the mirror or at lowtouch itself.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot open or create the mirror {dir}: {message}")]
    Mirror { dir: PathBuf, message: String },
    #[error("{url}: {message}")]
    Unsupported { url: String, message: String },
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("fetching {url} failed: {message}")]
    Fetch { url: String, message: String },
    #[error("in the mirror {dir}: {what}: {message}")]
    Repository {
        dir: PathBuf,
        what: String,
        message: String,
    },
}

/// An error and its causes on one line, without the repetitions gix's layers add.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn describe_joins_causes_once() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(describe(&e), "outer: inner");
        let same = std::io::Error::other("x");
        assert_eq!(describe(&same), "x");
    }
}
