//! Errors at the command line's edge, each with the exit code DESIGN.md gives it.

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
pub enum CliError {
    /// Problems in input files, each rendered with its place.
    #[error("{}", render(.0))]
    Findings(Vec<Finding>),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Infra(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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

impl CliError {
    pub fn input(message: impl Into<String>) -> CliError {
        CliError::Input(message.into())
    }

    pub fn infra(message: impl Into<String>) -> CliError {
        CliError::Infra(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Findings(_) | CliError::Input(_) => exit::BAD_INPUT,
            CliError::Infra(_) | CliError::Store(_) => exit::INFRA,
        }
    }
}
