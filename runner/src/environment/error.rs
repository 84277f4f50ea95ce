//! Errors of environments: a template's variable with no value, a secret with no value, and
//! what is wrong with an environment file's `variables:` or a destination it names.
//! Checking an environment file reports these as findings at their `file:line:col`.

use std::path::PathBuf;

use crate::scenario::token::LexError;

/// What went wrong filling in or checking an environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    /// A template used a variable nobody set.
    #[error("variable `{name}` is not set")]
    Unset { name: String },
    /// A secret from the environment, and the variable is not set.
    #[error("environment variable `{var}` is not set")]
    SecretUnset { var: String },
    /// A secret from a file that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    SecretUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{dest}` must be a relative path inside the runtime directory")]
    DestOutside { dest: String },
    #[error("`{dest}` is a name lowtouch keeps for itself; pick another")]
    DestReserved { dest: String },
    #[error("`{dest}` is inside `data/`, where the generated test data lives")]
    DestInData { dest: String },
    #[error("variable `{name}`: bad interpolation: {error:?}")]
    BadInterpolation { name: String, error: LexError },
    #[error("variable `{name}` uses `{unknown}`, which is not defined")]
    UnknownVariable { name: String, unknown: String },
    #[error("variables refer to each other in a cycle: {}", names.join(", "))]
    Cycle { names: Vec<String> },
}

impl EnvironmentError {
    /// Always: each is the person's environment file or its setup (a secret's variable or
    /// file is where the file says it comes from; `render` reports one with no value as a
    /// finding, exit 2).
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_errors_are_bad_input_and_read_as_before() {
        let unset = EnvironmentError::Unset {
            name: "port".into(),
        };
        assert!(unset.is_bad_input());
        assert_eq!(unset.to_string(), "variable `port` is not set");
        let cycle = EnvironmentError::Cycle {
            names: vec!["a".into(), "b".into()],
        };
        assert!(cycle.is_bad_input());
        assert_eq!(
            cycle.to_string(),
            "variables refer to each other in a cycle: a, b"
        );
        let unreadable = EnvironmentError::SecretUnreadable {
            path: "/run/secret".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(unreadable.is_bad_input());
    }
}
