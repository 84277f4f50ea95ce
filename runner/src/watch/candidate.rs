//! A candidate: the revisions under test — one commit of each repository a pipeline
//! depends on — and, for a deploy stage, the worktrees they are written out to.
//!
//! A poll builds one from the change that won (that repository at its new commit, the
//! others at their current tips); a run started by hand builds one from the tips alone.
//! Scenarios and deploy steps see it as variables: `#{NAME.revision}`, `#{NAME.short}`,
//! `#{NAME.ref}`, `#{NAME.path}` for each repository `NAME`, and the same under its role
//! (`#{product.path}`) for the first repository of each role.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::change::{RefPattern, RefTip, is_followed};
use super::error::WatchError;
use super::mirror::Mirror;
use super::repository::{Repository, Role};

/// One repository's revision under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateRepo {
    pub name: String,
    pub role: Role,
    /// The full ref it came from (`refs/heads/main`, `refs/tags/v1.2`).
    pub git_ref: String,
    /// The commit, hex.
    pub commit: String,
    /// Where its files are written out, once [`Candidate::materialize`] ran.
    pub path: Option<PathBuf>,
}

/// The revisions under test, one per repository, in the pipeline's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    pub repos: Vec<CandidateRepo>,
}

/// The tip a run tests when no change chose one: the first `follow` pattern that matches
/// anything decides; a branch is preferred to a tag, and among several matches (`v*`) the
/// highest name in natural order (`v1.10` after `v1.9`).
pub fn default_tip<'a>(tips: &'a [RefTip], follow: &[RefPattern]) -> Option<&'a RefTip> {
    for pattern in follow {
        let best = tips
            .iter()
            .filter(|t| pattern.matches(&t.name))
            .max_by(|a, b| {
                (!a.is_tag())
                    .cmp(&!b.is_tag())
                    .then_with(|| natural_cmp(&a.name, &b.name))
            });
        if best.is_some() {
            return best;
        }
    }
    tips.iter()
        .filter(|t| is_followed(&t.name, follow))
        .max_by(|a, b| natural_cmp(&a.name, &b.name))
}

/// Compares names with runs of digits as numbers: `v1.9` < `v1.10`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// A ref's short name: `main`, `v1.2`.
pub fn short_ref(name: &str) -> &str {
    name.strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("refs/tags/"))
        .unwrap_or(name)
}

impl Candidate {
    /// Assembles a candidate: `chosen` (repository name, ref, commit) for the repository a
    /// change came from, the default tip of `tips` for every other. A repository with no
    /// followed ref at all is left out (its variables are then undefined).
    pub fn assemble(
        repos: &[Repository],
        tips: &BTreeMap<String, Vec<RefTip>>,
        chosen: Option<(&str, &str, &str)>,
    ) -> Candidate {
        let mut out = Vec::new();
        for repo in repos {
            let picked = match chosen {
                Some((name, git_ref, commit)) if name == repo.name => {
                    Some((git_ref.to_string(), commit.to_string()))
                }
                _ => tips.get(&repo.name).and_then(|t| {
                    default_tip(t, &repo.follow).map(|t| (t.name.clone(), t.commit().to_string()))
                }),
            };
            if let Some((git_ref, commit)) = picked {
                out.push(CandidateRepo {
                    name: repo.name.clone(),
                    role: repo.role,
                    git_ref,
                    commit,
                    path: None,
                });
            }
        }
        Candidate { repos: out }
    }

    /// The candidate a run started by hand tests: every repository fetched (or, when its
    /// remote cannot be reached, as its mirror last saw it — said in `notes`) and taken at
    /// its default tip.
    pub fn current(
        mirrors: &Path,
        repos: &[Repository],
        notes: &mut Vec<String>,
    ) -> Result<Candidate, WatchError> {
        let mut tips = BTreeMap::new();
        for repo in repos {
            let mirror = Mirror::open_or_create(&repo.url, &Mirror::dir_for(mirrors, &repo.url))?;
            let listed = match mirror.fetch() {
                Ok(t) => t,
                Err(e) => {
                    let local = mirror.local_tips()?;
                    if local.is_empty() {
                        return Err(e);
                    }
                    notes.push(format!(
                        "{}: {e}; testing what the mirror last fetched",
                        repo.name
                    ));
                    local
                }
            };
            tips.insert(repo.name.clone(), listed);
        }
        Ok(Candidate::assemble(repos, &tips, None))
    }

    /// Writes each repository's commit out under `root/NAME` (kept between runs: a
    /// repository whose commit did not change is not written again). Returns what it
    /// wrote, for the log.
    pub fn materialize(
        &mut self,
        mirrors: &Path,
        repos: &[Repository],
        root: &Path,
    ) -> Result<Vec<String>, WatchError> {
        let mut wrote = Vec::new();
        for c in &mut self.repos {
            let Some(repo) = repos.iter().find(|r| r.name == c.name) else {
                continue;
            };
            let mirror = Mirror::open_or_create(&repo.url, &Mirror::dir_for(mirrors, &repo.url))?;
            let dest = root.join(&c.name);
            if mirror.export(&c.commit, &dest)? {
                wrote.push(format!(
                    "{} {} ({}) -> {}",
                    c.name,
                    &c.commit[..c.commit.len().min(12)],
                    short_ref(&c.git_ref),
                    dest.display()
                ));
            }
            c.path = Some(dest);
        }
        Ok(wrote)
    }

    /// The variables scenarios and deploy steps see.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        let mut roles_seen = Vec::new();
        for c in &self.repos {
            let mut prefixes = vec![c.name.as_str()];
            if !roles_seen.contains(&c.role) {
                roles_seen.push(c.role);
                if c.role.as_str() != c.name {
                    prefixes.push(c.role.as_str());
                }
            }
            for prefix in prefixes {
                vars.insert(format!("{prefix}.revision"), c.commit.clone());
                vars.insert(
                    format!("{prefix}.short"),
                    c.commit[..c.commit.len().min(12)].to_string(),
                );
                vars.insert(format!("{prefix}.ref"), short_ref(&c.git_ref).to_string());
                if let Some(p) = &c.path {
                    vars.insert(format!("{prefix}.path"), p.display().to_string());
                }
            }
        }
        vars
    }

    /// Repository name → commit: what a run record keeps.
    pub fn commits(&self) -> BTreeMap<String, String> {
        self.repos
            .iter()
            .map(|c| (c.name.clone(), c.commit.clone()))
            .collect()
    }

    /// The first product repository's revision, if there is one.
    pub fn product(&self) -> Option<&CandidateRepo> {
        self.repos.iter().find(|c| c.role == Role::Product)
    }
}

/// The names a candidate can define for these repositories: what a pipeline's
/// `variables:` may refer to before any candidate exists.
pub fn variable_names(repos: &[Repository]) -> Vec<String> {
    let mut prefixes: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
    prefixes.extend(repos.iter().map(|r| r.role.as_str()));
    prefixes.sort();
    prefixes.dedup();
    prefixes
        .iter()
        .flat_map(|p| ["revision", "short", "ref", "path"].map(|f| format!("{p}.{f}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip(name: &str, commit: &str) -> RefTip {
        RefTip {
            name: name.into(),
            target: commit.into(),
            peeled: None,
        }
    }

    fn follow(p: &[&str]) -> Vec<RefPattern> {
        p.iter().map(|p| RefPattern::parse(p).unwrap()).collect()
    }

    #[test]
    fn the_first_pattern_that_matches_decides_and_versions_sort_naturally() {
        let tips = vec![
            tip("refs/heads/main", "a"),
            tip("refs/tags/v1.9", "b"),
            tip("refs/tags/v1.10", "c"),
        ];
        assert_eq!(
            default_tip(&tips, &follow(&["main", "v*"])).unwrap().target,
            "a"
        );
        assert_eq!(
            default_tip(&tips, &follow(&["v*", "main"])).unwrap().target,
            "c"
        );
        assert_eq!(
            default_tip(&tips, &follow(&["release/*", "v*"]))
                .unwrap()
                .target,
            "c"
        );
        assert!(default_tip(&tips, &follow(&["nope"])).is_none());
    }

    #[test]
    fn natural_order() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_cmp("v1.9", "v1.10"), Less);
        assert_eq!(natural_cmp("rc-2", "rc-10"), Less);
        assert_eq!(natural_cmp("v2", "v10"), Less);
        assert_eq!(natural_cmp("a", "a"), Equal);
        assert_eq!(natural_cmp("v1", "v1.0"), Less);
    }

    #[test]
    fn vars_by_name_and_by_first_role() {
        let c = Candidate {
            repos: vec![
                CandidateRepo {
                    name: "exchange".into(),
                    role: Role::Product,
                    git_ref: "refs/tags/v1.2".into(),
                    commit: "0123456789abcdef0123".into(),
                    path: Some("/w/exchange".into()),
                },
                CandidateRepo {
                    name: "gateway".into(),
                    role: Role::Product,
                    git_ref: "refs/heads/main".into(),
                    commit: "ffff".into(),
                    path: None,
                },
            ],
        };
        let v = c.vars();
        assert_eq!(v["product.path"], "/w/exchange");
        assert_eq!(v["exchange.ref"], "v1.2");
        assert_eq!(v["exchange.short"], "0123456789ab");
        assert_eq!(v["gateway.revision"], "ffff");
        assert!(!v.contains_key("gateway.path"));
        assert_eq!(c.product().unwrap().name, "exchange");
    }
}
