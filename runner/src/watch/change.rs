//! Change detection: the tips stored last time against the refs a fetch just listed.
//!
//! Pure apart from the one question only the mirror can answer — is the old tip an
//! ancestor of the new one? — asked through [`Ancestry`], and only when a followed ref
//! moved. Nothing here walks history.

use std::collections::BTreeMap;
use std::fmt;

use super::error::{SpecError, WatchError};

/// One ref as the remote advertised it (`ls-refs`), after a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTip {
    /// The full name: `refs/heads/main`, `refs/tags/v1.2`.
    pub name: String,
    /// The object the ref points at, hex: a commit, or a tag object for annotated tags.
    pub target: String,
    /// For an annotated tag, the object it finally points at (the commit), hex.
    pub peeled: Option<String>,
}

impl RefTip {
    /// The commit under test: the peeled object of an annotated tag, else the target.
    pub fn commit(&self) -> &str {
        self.peeled.as_deref().unwrap_or(&self.target)
    }

    pub fn is_tag(&self) -> bool {
        self.name.starts_with("refs/tags/")
    }
}

/// A ref pattern of a repository's `follow:` list, matched like git's wildmatch: `*` and
/// `?` stay within one `/`-separated part, `**` crosses them.
///
/// A pattern that starts with `refs/` matches full ref names (`refs/tags/v*` follows tags
/// only). Any other pattern matches the short name of a branch or a tag: `main`,
/// `release/*`, `v*`, `rc-*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPattern(String);

impl RefPattern {
    /// Checks a pattern; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<RefPattern, SpecError> {
        if text.is_empty() {
            return Err(SpecError::EmptyRefPattern);
        }
        if let Some(c) = text
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '~' | '^' | ':' | '\\'))
        {
            return Err(SpecError::RefChar(c));
        }
        if text.starts_with('/') || text.ends_with('/') || text.contains("//") {
            return Err(SpecError::RefSlashes);
        }
        if text.contains("..") || text.contains("@{") || text.ends_with(".lock") {
            return Err(SpecError::RefReserved);
        }
        Ok(RefPattern(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the full ref name `name` is followed by this pattern.
    pub fn matches(&self, name: &str) -> bool {
        if self.0.starts_with("refs/") {
            return glob(&self.0, name);
        }
        ["refs/heads/", "refs/tags/"]
            .iter()
            .filter_map(|prefix| name.strip_prefix(prefix))
            .any(|short| glob(&self.0, short))
    }
}

impl fmt::Display for RefPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// git's wildmatch with `*` not crossing `/` (as in pathspecs and refspecs).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    gix::glob::wildmatch(
        pattern.into(),
        text.into(),
        gix::glob::wildmatch::Mode::NO_MATCH_SLASH_LITERAL,
    )
}

/// Whether any pattern follows the ref.
pub fn is_followed(name: &str, follow: &[RefPattern]) -> bool {
    follow.iter().any(|p| p.matches(name))
}

/// The tips to store after a fetch: followed ref name → commit under test.
pub fn followed_tips(current: &[RefTip], follow: &[RefPattern]) -> BTreeMap<String, String> {
    current
        .iter()
        .filter(|r| is_followed(&r.name, follow))
        .map(|r| (r.name.clone(), r.commit().to_string()))
        .collect()
}

/// How a followed ref changed since the stored tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A followed branch or tag that was not there before: a new tag `v1.3`, a new
    /// branch `release/2`.
    Created,
    /// The ref moved forward: the old tip is an ancestor of the new one.
    Advanced,
    /// The ref moved to a commit that does not contain the old tip (force push, rebase,
    /// a tag moved elsewhere).
    ForcePushed,
    /// The ref is gone from the remote.
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Advanced => "advanced",
            ChangeKind::ForcePushed => "force-pushed",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// One change of one followed ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The full ref name.
    pub name: String,
    pub kind: ChangeKind,
    /// The stored tip (commit), if there was one.
    pub old: Option<String>,
    /// The new tip (commit), unless the ref was deleted.
    pub new: Option<String>,
}

impl Change {
    /// A change that brings a commit to test (everything but a deletion).
    pub fn candidate(&self) -> Option<&str> {
        self.new.as_deref()
    }

    pub fn is_tag(&self) -> bool {
        self.name.starts_with("refs/tags/")
    }
}

/// The one question about history change detection asks, answered by the mirror.
pub trait Ancestry {
    /// Whether commit `old` is an ancestor of (or equal to) commit `new`.
    fn is_ancestor(&self, old: &str, new: &str) -> Result<bool, WatchError>;
}

/// Compares the stored tips of one repository with the refs a fetch listed.
///
/// `previous` is `None` the first time a repository is seen: nothing is reported then
/// (old commits are not new), and the caller stores [`followed_tips`]. Only refs matched
/// by `follow` count. Moved refs cost one ancestry check each (a merge-base of two
/// commits); unchanged refs cost a string comparison.
///
/// Changes come sorted by ref name.
pub fn detect(
    previous: Option<&BTreeMap<String, String>>,
    current: &[RefTip],
    follow: &[RefPattern],
    ancestry: &dyn Ancestry,
) -> Result<Vec<Change>, WatchError> {
    let Some(previous) = previous else {
        return Ok(Vec::new());
    };
    let now = followed_tips(current, follow);
    let mut changes = Vec::new();
    for (name, new) in &now {
        match previous.get(name) {
            None => changes.push(Change {
                name: name.clone(),
                kind: ChangeKind::Created,
                old: None,
                new: Some(new.clone()),
            }),
            Some(old) if old == new => {}
            Some(old) => {
                let kind = if ancestry.is_ancestor(old, new)? {
                    ChangeKind::Advanced
                } else {
                    ChangeKind::ForcePushed
                };
                changes.push(Change {
                    name: name.clone(),
                    kind,
                    old: Some(old.clone()),
                    new: Some(new.clone()),
                });
            }
        }
    }
    for (name, old) in previous {
        // A ref no longer followed (the pipeline's `follow:` changed) is forgotten, not
        // reported as deleted.
        if !now.contains_key(name) && is_followed(name, follow) {
            changes.push(Change {
                name: name.clone(),
                kind: ChangeKind::Deleted,
                old: Some(old.clone()),
                new: None,
            });
        }
    }
    changes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// History as a child → parent list: `("c", "b")` means b is c's parent.
    struct Linear(&'static [(&'static str, &'static str)]);

    impl Ancestry for Linear {
        fn is_ancestor(&self, old: &str, new: &str) -> Result<bool, WatchError> {
            let mut at = new;
            loop {
                if at == old {
                    return Ok(true);
                }
                match self.0.iter().find(|(c, _)| *c == at) {
                    Some((_, parent)) => at = parent,
                    None => return Ok(false),
                }
            }
        }
    }

    fn tip(name: &str, commit: &str) -> RefTip {
        RefTip {
            name: name.into(),
            target: commit.into(),
            peeled: None,
        }
    }

    fn patterns(p: &[&str]) -> Vec<RefPattern> {
        p.iter().map(|p| RefPattern::parse(p).unwrap()).collect()
    }

    fn check(
        previous: Option<&[(&str, &str)]>,
        current: &[(&str, &str)],
        follow: &[&str],
        expected: &[(&str, ChangeKind)],
    ) {
        const HISTORY: Linear = Linear(&[("c2", "c1"), ("c3", "c2"), ("x2", "c1")]);
        let previous: Option<BTreeMap<String, String>> = previous.map(|p| {
            p.iter()
                .map(|(n, c)| (n.to_string(), c.to_string()))
                .collect()
        });
        let current: Vec<RefTip> = current.iter().map(|(n, c)| tip(n, c)).collect();
        let got = detect(previous.as_ref(), &current, &patterns(follow), &HISTORY).unwrap();
        let got: Vec<(&str, ChangeKind)> = got.iter().map(|c| (c.name.as_str(), c.kind)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn first_sight_reports_nothing() {
        check(None, &[("refs/heads/main", "c3")], &["main"], &[]);
    }

    #[test]
    fn unchanged_refs_report_nothing() {
        check(
            Some(&[("refs/heads/main", "c2")]),
            &[("refs/heads/main", "c2"), ("refs/heads/other", "x2")],
            &["main"],
            &[],
        );
    }

    #[test]
    fn moves_are_advances_or_force_pushes() {
        check(
            Some(&[("refs/heads/main", "c1")]),
            &[("refs/heads/main", "c3")],
            &["main"],
            &[("refs/heads/main", ChangeKind::Advanced)],
        );
        check(
            Some(&[("refs/heads/main", "c2")]),
            &[("refs/heads/main", "x2")],
            &["main"],
            &[("refs/heads/main", ChangeKind::ForcePushed)],
        );
        // A reset backwards: the old tip is not an ancestor of the new one.
        check(
            Some(&[("refs/heads/main", "c3")]),
            &[("refs/heads/main", "c1")],
            &["main"],
            &[("refs/heads/main", ChangeKind::ForcePushed)],
        );
    }

    #[test]
    fn new_and_deleted_refs() {
        check(
            Some(&[("refs/heads/main", "c1"), ("refs/heads/release/1", "c1")]),
            &[
                ("refs/heads/main", "c1"),
                ("refs/tags/v1.0", "c2"),
                ("refs/tags/nightly", "c2"),
            ],
            &["main", "release/*", "v*"],
            &[
                ("refs/heads/release/1", ChangeKind::Deleted),
                ("refs/tags/v1.0", ChangeKind::Created),
            ],
        );
    }

    #[test]
    fn refs_no_longer_followed_are_forgotten_not_deleted() {
        check(
            Some(&[("refs/heads/main", "c1"), ("refs/heads/old", "c1")]),
            &[("refs/heads/main", "c1"), ("refs/heads/old", "c2")],
            &["main"],
            &[],
        );
    }

    #[test]
    fn annotated_tags_compare_by_commit() {
        let current = [RefTip {
            name: "refs/tags/v1".into(),
            target: "tagobject".into(),
            peeled: Some("c1".into()),
        }];
        let tips = followed_tips(&current, &patterns(&["v*"]));
        assert_eq!(tips.get("refs/tags/v1").map(String::as_str), Some("c1"));
    }

    #[test]
    fn patterns_match_short_and_full_names() {
        let m = |p: &str, name: &str| RefPattern::parse(p).unwrap().matches(name);
        assert!(m("main", "refs/heads/main"));
        assert!(!m("main", "refs/heads/main2"));
        assert!(!m("main", "refs/remotes/origin/main"));
        assert!(m("release/*", "refs/heads/release/1.2"));
        assert!(!m("release/*", "refs/heads/release/1/hotfix"));
        assert!(m("release/**", "refs/heads/release/1/hotfix"));
        assert!(m("v*", "refs/tags/v1.2.3"));
        assert!(!m("v*", "refs/tags/x1"));
        assert!(m("rc-*", "refs/tags/rc-7"));
        assert!(m("refs/tags/v*", "refs/tags/v2"));
        assert!(!m("refs/tags/v*", "refs/heads/v2"));
        assert!(m("v[0-9]*", "refs/tags/v9"));
        assert!(!m("v[0-9]*", "refs/tags/vx"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in ["", "a b", "/main", "main/", "a..b", "x:y", "a//b", "x.lock"] {
            assert!(RefPattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
