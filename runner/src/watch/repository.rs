//! The repositories a pipeline depends on: the YAML of its `repositories:` map and the
//! checks that turn it into [`Repository`] values.
//!
//! ```yaml
//! repositories:
//!   product:                      # the name: #{product.revision}, #{product.path}
//!     role: product               # product | tools | data
//!     url: ../exchange            # a path (relative to the pipeline file), file://, https://
//!     follow: [main, "v*"]        # branches and tags, git wildmatch (see RefPattern)
//!     paths: ["src/**", Cargo.toml]   # optional: changes elsewhere do nothing
//!     github: lowtouch/exchange   # optional: webhooks and statuses
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::change::RefPattern;
use super::classify::PathFilter;
use super::error::SpecError;
use super::mirror::url_support;
use crate::source::{Finding, SourceFile, locate_key, locate_value};

/// What a repository holds, which decides what its changes make lowtouch redo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The system under test: a change runs the whole pipeline.
    Product,
    /// Test tools (scenarios, plugins, scripts): a change re-runs the scenarios.
    Tools,
    /// Test data (snapshots, definitions): a change regenerates data, then runs scenarios.
    Data,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Product => "product",
            Role::Tools => "tools",
            Role::Data => "data",
        }
    }
}

/// A repository whose new commits start the pipeline.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositorySpec {
    /// What it holds, which decides what its changes make lowtouch redo.
    pub role: Role,
    /// A path, `file://` or `https://` URL (relative paths from the project root).
    pub url: String,
    /// Branches and tag patterns to follow.
    #[serde(default)]
    pub follow: Vec<String>,
    /// Path filters; none means every path counts.
    #[serde(default)]
    pub paths: Vec<String>,
    /// `OWNER/NAME` of the GitHub repository this one mirrors.
    pub github: Option<String>,
}

/// A GitHub repository, `OWNER/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubRepo {
    pub owner: String,
    pub name: String,
}

/// A checked repository: its URL resolved, its patterns parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The key under `repositories:`; a variable prefix (`#{NAME.revision}`).
    pub name: String,
    pub role: Role,
    /// An absolute path, or a URL (`file://`, `https://`), as given to the mirror.
    pub url: String,
    pub follow: Vec<RefPattern>,
    pub paths: Vec<PathFilter>,
    pub github: Option<GithubRepo>,
}

/// Checks every entry of a pipeline's `repositories:` (`file` is the pipeline file,
/// relative paths resolve against `base`, its directory). Returns the entries that passed
/// and a finding for every problem, so `lowtouch check` shows them all at once.
pub fn check(
    file: &SourceFile,
    base: &Path,
    specs: &BTreeMap<String, RepositorySpec>,
) -> (Vec<Repository>, Vec<Finding>) {
    let mut ok = Vec::new();
    let mut findings = Vec::new();
    for (name, spec) in specs {
        let before = findings.len();
        let at_key = |field: &str, message: String| {
            let path = ["repositories", name.as_str(), field];
            let path = if field.is_empty() {
                &path[..2]
            } else {
                &path[..]
            };
            let (line, col) = locate_key(&file.text, path).unwrap_or((1, 1));
            Finding::at(file, line, col, field.len().max(name.len()), message)
        };
        let at_value = |field: &str, value: &str, message: String| match locate_value(
            &file.text,
            &["repositories", name, field],
            value,
        ) {
            Some((line, col)) => Finding::at(file, line, col, value.len(), message),
            None => at_key(field, message),
        };
        if let Err(why) = check_name(name) {
            findings.push(
                at_key("", format!("repository name `{name}`: {why}"))
                    .help("names are variables' prefixes: letters, digits, `_` and `-`"),
            );
        }
        let url =
            match resolve_url(&spec.url, base) {
                Ok(url) => Some(url),
                Err(why) => {
                    findings.push(at_value("url", &spec.url, why.to_string()).help(
                        "use a path (relative to this file), a file:// URL or an https:// URL",
                    ));
                    None
                }
            };
        if spec.follow.is_empty() {
            findings.push(
                at_key(
                    "follow",
                    format!("repository `{name}` follows no branch or tag"),
                )
                .help("add for example `follow: [main, \"v*\"]`"),
            );
        }
        let mut follow = Vec::new();
        for text in &spec.follow {
            match RefPattern::parse(text) {
                Ok(p) => follow.push(p),
                Err(why) => findings.push(at_value(
                    "follow",
                    text,
                    format!("ref pattern `{text}`: {why}"),
                )),
            }
        }
        let mut paths = Vec::new();
        for text in &spec.paths {
            match PathFilter::parse(text) {
                Ok(p) => paths.push(p),
                Err(why) => findings.push(at_value(
                    "paths",
                    text,
                    format!("path filter `{text}`: {why}"),
                )),
            }
        }
        let github = match spec.github.as_deref().map(parse_github) {
            None => None,
            Some(Ok(g)) => Some(g),
            Some(Err(why)) => {
                let text = spec.github.as_deref().unwrap_or_default();
                findings.push(
                    at_value("github", text, why.to_string()).help("write it as `OWNER/NAME`"),
                );
                None
            }
        };
        if let (true, Some(url)) = (findings.len() == before, url) {
            ok.push(Repository {
                name: name.clone(),
                role: spec.role,
                url,
                follow,
                paths,
                github,
            });
        }
    }
    (ok, findings)
}

fn check_name(name: &str) -> Result<(), SpecError> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err(SpecError::EmptyName),
        Some(c) if !c.is_ascii_alphabetic() => Err(SpecError::NameStart),
        _ if chars.any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) => {
            Err(SpecError::NameChars)
        }
        _ => Ok(()),
    }
}

/// A path made absolute against `base`; URLs checked for a scheme lowtouch can fetch.
pub fn resolve_url(url: &str, base: &Path) -> Result<String, SpecError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(SpecError::EmptyUrl);
    }
    if url.contains("://") || looks_like_scp(url) {
        url_support(url)?;
        return Ok(url.to_string());
    }
    let path = Path::new(url);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| SpecError::NonUtf8Path(path.clone()))
}

/// `git@host:owner/repo` — ssh in scp form.
fn looks_like_scp(url: &str) -> bool {
    match url.split_once(':') {
        Some((host, _)) => !host.contains('/') && !host.is_empty(),
        None => false,
    }
}

fn parse_github(text: &str) -> Result<GithubRepo, SpecError> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match text.split_once('/') {
        Some((owner, name)) if valid(owner) && valid(name) => Ok(GithubRepo {
            owner: owner.into(),
            name: name.into(),
        }),
        _ => Err(SpecError::NotGithub(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        repositories: BTreeMap<String, RepositorySpec>,
    }

    /// Checks `yaml` and compares the findings' first lines (message + location).
    fn check_yaml(yaml: &str, expected: &[&str]) -> Vec<Repository> {
        let file = SourceFile {
            path: "p.yaml".into(),
            text: yaml.into(),
        };
        let parsed: File = serde_yaml::from_str(yaml).unwrap();
        let (ok, findings) = check(&file, Path::new("/base"), &parsed.repositories);
        let got: Vec<String> = findings
            .iter()
            .map(|f| {
                let text = f.to_string();
                let place = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("--> "))
                    .unwrap_or("?")
                    .to_string();
                format!("{place} {}", f.diagnostic.message)
            })
            .collect();
        assert_eq!(got, expected);
        ok
    }

    #[test]
    fn a_full_entry_is_read_and_resolved() {
        let ok = check_yaml(
            "repositories:\n  product:\n    role: product\n    url: ../exchange\n    follow: [main, \"v*\"]\n    paths: [\"src/**\", docs/]\n    github: lowtouch/exchange\n  tools:\n    role: tools\n    url: file:///srv/tools.git\n    follow: [main]\n",
            &[],
        );
        assert_eq!(ok.len(), 2);
        let product = &ok[0];
        assert_eq!(product.role, Role::Product);
        assert_eq!(product.url, "/base/../exchange");
        assert_eq!(product.follow.len(), 2);
        assert_eq!(product.paths[1].as_str(), "docs");
        assert_eq!(
            product.github,
            Some(GithubRepo {
                owner: "lowtouch".into(),
                name: "exchange".into()
            })
        );
        assert_eq!(ok[1].url, "file:///srv/tools.git");
    }

    #[test]
    fn every_problem_is_reported_in_place() {
        let ok = check_yaml(
            "repositories:\n  product:\n    role: product\n    url: ssh://host/x.git\n    follow: [\"a b\"]\n    paths: [/abs]\n    github: nope\n  data:\n    role: data\n    url: ./data\n",
            &[
                "p.yaml:8:3 repository `data` follows no branch or tag",
                "p.yaml:4:10 ssh://host/x.git: ssh remotes are not supported; use https:// or a local path",
                "p.yaml:5:15 ref pattern `a b`: a ref name cannot contain ' '",
                "p.yaml:6:13 path filter `/abs`: path filters are relative to the repository root; drop the leading `/`",
                "p.yaml:7:13 `nope` is not a GitHub repository",
            ],
        );
        assert!(ok.is_empty());
    }

    #[test]
    fn names_and_roles() {
        check_yaml(
            "repositories:\n  1x:\n    role: data\n    url: /d\n    follow: [main]\n",
            &["p.yaml:2:3 repository name `1x`: a name starts with a letter"],
        );
        let err = serde_yaml::from_str::<File>(
            "repositories:\n  x:\n    role: build\n    url: /d\n    follow: [main]\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("unknown variant `build`"), "{err}");
    }
}
