//! Classification: what a change makes lowtouch redo, from the repository's role and the
//! paths the change touches. Pure: no git, no I/O.

use std::fmt;

use super::change::glob;
use super::error::SpecError;
use super::repository::Role;

/// A path filter of a repository's `paths:` list, matched like git's wildmatch against
/// paths relative to the repository root: `*` stays within a directory, `**` crosses
/// them (`src/**`, `**/*.rs`, `Cargo.toml`). A filter naming a directory (`docs` or
/// `docs/`) covers everything under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFilter(String);

impl PathFilter {
    pub fn parse(text: &str) -> Result<PathFilter, SpecError> {
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(SpecError::EmptyPathFilter);
        }
        if trimmed.starts_with('/') {
            return Err(SpecError::AbsolutePathFilter);
        }
        if trimmed.split('/').any(|part| part == ".." || part == ".") {
            return Err(SpecError::DotPathFilter);
        }
        Ok(PathFilter(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `path` (relative, `/`-separated) is covered.
    pub fn matches(&self, path: &str) -> bool {
        glob(&self.0, path)
            || path
                .strip_prefix(self.0.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for PathFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a change asks for, from least to most. Several changes combine into the
/// largest ([`Ord`], `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// The change touches nothing the pipeline depends on.
    Nothing,
    /// Test tools changed: run the scenarios again (no new build, no new data).
    RerunScenarios,
    /// Test data changed: regenerate the data, then run the scenarios.
    RegenerateData,
    /// A new product build: the whole pipeline — deploy, data, scenarios.
    RunPipeline,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Nothing => "nothing",
            Action::RerunScenarios => "rerun-scenarios",
            Action::RegenerateData => "regenerate-data",
            Action::RunPipeline => "run-pipeline",
        }
    }
}

/// What a change of a repository with `role`, touching `paths`, asks for.
///
/// Without filters every path counts. A change that touches no path (an empty commit, a
/// tag on an already tested tree) asks for nothing; a caller that wants a new tag tested
/// anyway passes the paths of the whole tree (see `Mirror::changed_paths` with no old
/// commit).
pub fn classify(role: Role, paths: &[String], filters: &[PathFilter]) -> Action {
    let relevant = paths
        .iter()
        .any(|p| filters.is_empty() || filters.iter().any(|f| f.matches(p)));
    if !relevant {
        return Action::Nothing;
    }
    match role {
        Role::Product => Action::RunPipeline,
        Role::Tools => Action::RerunScenarios,
        Role::Data => Action::RegenerateData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(role: Role, paths: &[&str], filters: &[&str], expected: Action) {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let filters: Vec<PathFilter> = filters
            .iter()
            .map(|f| PathFilter::parse(f).unwrap())
            .collect();
        assert_eq!(
            classify(role, &paths, &filters),
            expected,
            "{role:?} {paths:?} {filters:?}"
        );
    }

    #[test]
    fn roles_decide_what_is_redone() {
        check(Role::Product, &["src/main.rs"], &[], Action::RunPipeline);
        check(Role::Tools, &["bin/smoke"], &[], Action::RerunScenarios);
        check(Role::Data, &["snap.csv"], &[], Action::RegenerateData);
    }

    #[test]
    fn changes_outside_the_filters_do_nothing() {
        check(
            Role::Product,
            &["docs/README.md"],
            &["src/**"],
            Action::Nothing,
        );
        check(
            Role::Product,
            &["docs/README.md", "src/lib.rs"],
            &["src/**"],
            Action::RunPipeline,
        );
        check(
            Role::Data,
            &["a/b/snap.csv"],
            &["**/*.csv"],
            Action::RegenerateData,
        );
        check(
            Role::Data,
            &["snap.csv"],
            &["**/*.csv"],
            Action::RegenerateData,
        );
        check(Role::Tools, &["tools/x.py"], &["*.py"], Action::Nothing);
        check(
            Role::Tools,
            &["tools/x.py"],
            &["tools"],
            Action::RerunScenarios,
        );
        check(
            Role::Tools,
            &["tools/x.py"],
            &["tools/"],
            Action::RerunScenarios,
        );
        check(Role::Tools, &["toolsx/x.py"], &["tools"], Action::Nothing);
    }

    #[test]
    fn an_empty_change_does_nothing() {
        check(Role::Product, &[], &[], Action::Nothing);
    }

    #[test]
    fn actions_combine_to_the_largest() {
        let all = [
            Action::RerunScenarios,
            Action::Nothing,
            Action::RegenerateData,
        ];
        assert_eq!(all.into_iter().max(), Some(Action::RegenerateData));
        assert!(Action::RunPipeline > Action::RegenerateData);
    }

    #[test]
    fn bad_filters_say_why() {
        for bad in ["", "/src", "../x", "a/./b"] {
            assert!(PathFilter::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
