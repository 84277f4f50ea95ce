//! The application's errors, each with the exit code DESIGN.md gives its kind: the code
//! is derived from what went wrong, never picked by a call site.

use crate::compare::history::ResolveError;
use crate::environment::apply::ApplyError;
use crate::source::Finding;
use crate::store::StoreError;

/// Documented exit codes, the same for every command.
pub mod exit {
    /// All good.
    pub const OK: i32 = 0;
    /// Something failed: a scenario, a `check` finding.
    pub const FAILED: i32 = 1;
    /// Bad input (a file, a flag, a name that does not resolve): nothing ran.
    pub const BAD_INPUT: i32 = 2;
    /// Infrastructure: the store is held by another process, a disk is full.
    pub const INFRA: i32 = 3;
    /// Interrupted (Ctrl-C / SIGTERM); what was done is stored and marked interrupted.
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in input files, each rendered with its place.
    #[error("{}", render(.0))]
    Findings(Vec<Finding>),
    /// A flag, a name or a file that does not do: nothing ran.
    #[error("{0}")]
    Input(String),
    /// The machine would not let it run: a disk, a socket, a process.
    #[error("{0}")]
    Infra(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Apply(ApplyError),
    #[error(transparent)]
    Resolve(ResolveError),
    /// The local API: a server's socket that cannot be trusted or stopped answering.
    #[error(transparent)]
    Client(#[from] crate::api::ClientError),
    /// The local API's socket cannot be made.
    #[error(transparent)]
    Bind(#[from] crate::api::BindError),
    /// The monitoring network: a secret too short, a connection that failed.
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// A watched repository: a `repositories:` entry, a remote.
    #[error(transparent)]
    Watch(#[from] crate::watch::WatchError),
}

fn render(findings: &[Finding]) -> String {
    let mut out: String = findings.iter().map(|f| f.to_string() + "\n").collect();
    out.push_str(&format!(
        "{} problem{} found; nothing ran",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    ));
    out
}

impl Error {
    pub fn input(message: impl Into<String>) -> Error {
        Error::Input(message.into())
    }

    pub fn infra(message: impl Into<String>) -> Error {
        Error::Infra(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Findings(_) | Error::Input(_) => exit::BAD_INPUT,
            Error::Infra(_) | Error::Store(_) | Error::Client(_) | Error::Bind(_) => exit::INFRA,
            Error::Apply(e) => e.exit_code(),
            Error::Resolve(ResolveError::Store(_)) => exit::INFRA,
            Error::Resolve(_) => exit::BAD_INPUT,
            Error::Net(e) if e.is_bad_input() => exit::BAD_INPUT,
            Error::Watch(e) if e.is_bad_input() => exit::BAD_INPUT,
            Error::Net(_) | Error::Watch(_) => exit::INFRA,
        }
    }
}

impl From<ApplyError> for Error {
    /// Findings stay findings (each with its place); the rest keeps its own kind.
    fn from(e: ApplyError) -> Error {
        match e {
            ApplyError::Input(findings) => Error::Findings(findings),
            e => Error::Apply(e),
        }
    }
}

impl From<ResolveError> for Error {
    fn from(e: ResolveError) -> Error {
        match e {
            ResolveError::Store(e) => Error::Store(e),
            e => Error::Resolve(e),
        }
    }
}

impl From<Vec<Finding>> for Error {
    fn from(findings: Vec<Finding>) -> Error {
        Error::Findings(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_follows_the_kind_of_error() {
        assert_eq!(Error::input("x").exit_code(), exit::BAD_INPUT);
        assert_eq!(Error::Findings(Vec::new()).exit_code(), exit::BAD_INPUT);
        assert_eq!(Error::infra("x").exit_code(), exit::INFRA);
        let held = StoreError::Locked {
            path: "db".into(),
            owner: String::new(),
        };
        assert_eq!(Error::from(held).exit_code(), exit::INFRA);
    }
}
