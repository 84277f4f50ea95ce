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
    #[error("{url}: {reason}")]
    Unsupported { url: String, reason: SpecError },
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

impl WatchError {
    /// Whether the cause is what a person wrote (a repository's URL) rather than the
    /// network, the disk or a mirror: the application turns it into exit 2, not 3.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, WatchError::Unsupported { .. })
    }
}

/// What is wrong with one value of a pipeline's `repositories:` entry (its name, URL, a
/// ref pattern, a path filter, its GitHub repository). Always a person's input: the
/// caller places it at the value's `file:line:col` as a finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("an empty ref pattern follows nothing")]
    EmptyRefPattern,
    #[error("a ref name cannot contain {0:?}")]
    RefChar(char),
    #[error("a ref pattern cannot start or end with `/` or contain `//`")]
    RefSlashes,
    #[error("a ref name cannot contain `..` or `@{{` or end in `.lock`")]
    RefReserved,
    #[error("an empty path filter matches nothing")]
    EmptyPathFilter,
    #[error("path filters are relative to the repository root; drop the leading `/`")]
    AbsolutePathFilter,
    #[error("a path filter cannot contain `.` or `..` parts")]
    DotPathFilter,
    #[error("a name cannot be empty")]
    EmptyName,
    #[error("a name starts with a letter")]
    NameStart,
    #[error("a name holds only letters, digits, `_` and `-`")]
    NameChars,
    #[error("the URL is empty")]
    EmptyUrl,
    #[error("the path {} is not UTF-8", .0.display())]
    NonUtf8Path(PathBuf),
    /// The scheme only: the credentials themselves never reach a message.
    #[error(
        "{scheme}://…@…: credentials in a repository URL end up in logs; drop them and put the token in LOWTOUCH_GIT_TOKEN"
    )]
    Credentials { scheme: String },
    #[error("{url}: {scheme} remotes are not supported; use https:// or a local path")]
    Scheme { url: String, scheme: String },
    /// A URL gix cannot use as a remote, in gix's words.
    #[error("{0}")]
    Unparsable(String),
    #[error("`{0}` is not a GitHub repository")]
    NotGithub(String),
}

impl SpecError {
    /// Always: a repository's spec is what a person wrote.
    pub fn is_bad_input(&self) -> bool {
        true
    }
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
    fn an_unsupported_url_is_bad_input_and_a_dead_remote_is_not() {
        let unsupported = WatchError::Unsupported {
            url: "ssh://h/r".into(),
            reason: SpecError::Scheme {
                url: "ssh://h/r".into(),
                scheme: "ssh".into(),
            },
        };
        assert!(unsupported.is_bad_input());
        assert_eq!(
            unsupported.to_string(),
            "ssh://h/r: ssh://h/r: ssh remotes are not supported; use https:// or a local path"
        );
        let unreachable = WatchError::Unreachable {
            url: "https://h/r".into(),
            message: "connection refused".into(),
        };
        assert!(!unreachable.is_bad_input());
        assert!(SpecError::EmptyUrl.is_bad_input());
    }

    #[test]
    fn describe_joins_causes_once() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(describe(&e), "outer: inner");
        let same = std::io::Error::other("x");
        assert_eq!(describe(&same), "x");
    }
}
