//! The config history: a git repository (git2) with one branch per environment,
//! `env/<name>`, whose commits are the environment's rendered states. A state that does
//! not differ from the branch's tip is not committed. Secrets appear only as placeholders.
//!
//! The runtime directory remembers the commit it was rendered from (`config-commit`).
//! When the branch no longer descends from it — someone reset or rewrote the branch —
//! the history has diverged, and lowtouch stops rather than guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::{ErrorCode, Oid, Repository, Signature, Tree};

use super::render::Revisions;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "the config history {path} is not a git repository; move it away or point --history elsewhere"
    )]
    NotARepository { path: PathBuf },
    #[error(
        "the config history {path} is locked by another process ({detail}); retry when it is done"
    )]
    Locked { path: PathBuf, detail: String },
    #[error(
        "the config history of `{env}` has diverged: branch env/{env} is at {tip}, which does not descend \
         from {applied}, the commit the runtime copy was rendered from; inspect it with \
         `git -C {path} log env/{env}`, then delete {marker} to accept the branch as it is"
    )]
    Diverged {
        env: String,
        path: PathBuf,
        tip: String,
        applied: String,
        marker: PathBuf,
    },
    #[error(
        "the config history of `{env}` is missing: {path} has no branch env/{env}, but the runtime copy \
         was rendered from {applied}; restore the history (or point --history at it), or delete {marker} \
         to start a new one"
    )]
    Missing {
        env: String,
        path: PathBuf,
        applied: String,
        marker: PathBuf,
    },
    #[error("config history {path}: {source}")]
    Git {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
}

impl HistoryError {
    /// Whether `--history` names something that is no config history (exit 2). A lock, a
    /// diverged or missing branch and git's own failures are the state of the machine
    /// (exit 3): each message says what to do about it.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, HistoryError::NotARepository { .. })
    }
}

pub struct History {
    repo: Repository,
    path: PathBuf,
}

/// A committed (or unchanged) state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub commit: String,
    /// False when the rendered state equalled the tip: nothing was committed.
    pub new: bool,
    /// The commit before this one on the branch (`None` for the first).
    pub previous: Option<String>,
    /// The rendered files' tree: the same content has the same tree whatever its commit.
    pub tree: String,
}

impl History {
    /// Opens the history, creating a bare repository when the path does not exist yet.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        let git = |source| HistoryError::Git {
            path: path.to_path_buf(),
            source,
        };
        let repo = if path.exists() {
            Repository::open_bare(path)
                .or_else(|_| Repository::open(path))
                .map_err(|e| {
                    if e.code() == ErrorCode::NotFound {
                        HistoryError::NotARepository {
                            path: path.to_path_buf(),
                        }
                    } else {
                        git(e)
                    }
                })?
        } else {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            Repository::init_bare(path).map_err(git)?
        };
        Ok(History {
            repo,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: git2::Error) -> HistoryError {
        if source.code() == ErrorCode::Locked {
            HistoryError::Locked {
                path: self.path.clone(),
                detail: source.message().to_string(),
            }
        } else {
            HistoryError::Git {
                path: self.path.clone(),
                source,
            }
        }
    }

    fn branch(env: &str) -> String {
        format!("refs/heads/env/{env}")
    }

    /// The tip of the environment's branch.
    pub fn tip(&self, env: &str) -> Result<Option<Oid>, HistoryError> {
        match self.repo.refname_to_id(&Self::branch(env)) {
            Ok(oid) => Ok(Some(oid)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The files of a commit (the tip when `commit` is `None`).
    pub fn files(
        &self,
        env: &str,
        commit: Option<&str>,
    ) -> Result<BTreeMap<String, String>, HistoryError> {
        let oid = match commit {
            Some(c) => Some(Oid::from_str(c).map_err(|e| self.err(e))?),
            None => self.tip(env)?,
        };
        let Some(oid) = oid else {
            return Ok(BTreeMap::new());
        };
        let commit = self.repo.find_commit(oid).map_err(|e| self.err(e))?;
        let tree = commit.tree().map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        self.read_tree(&tree, "", &mut out)?;
        Ok(out)
    }

    fn read_tree(
        &self,
        tree: &Tree<'_>,
        prefix: &str,
        out: &mut BTreeMap<String, String>,
    ) -> Result<(), HistoryError> {
        for entry in tree.iter() {
            let name = format!("{prefix}{}", entry.name().unwrap_or("?"));
            let object = entry.to_object(&self.repo).map_err(|e| self.err(e))?;
            if let Some(sub) = object.as_tree() {
                self.read_tree(sub, &format!("{name}/"), out)?;
            } else if let Some(blob) = object.as_blob() {
                out.insert(name, String::from_utf8_lossy(blob.content()).into_owned());
            }
        }
        Ok(())
    }

    /// The commit the runtime copy was rendered from, when its marker names one this
    /// history has.
    pub fn applied(&self, runtime_dir: &Path) -> Option<String> {
        let text = std::fs::read_to_string(runtime_dir.join("config-commit")).ok()?;
        let oid = Oid::from_str(text.trim()).ok()?;
        self.repo.find_commit(oid).ok().map(|c| c.id().to_string())
    }

    /// Takes the environment's branch away (a first rollout that failed has nothing to
    /// go back to), keeping its tip reachable under `refs/lowtouch/failed/` for a look.
    pub fn drop_branch(&self, env: &str, keep_as: &str) -> Result<(), HistoryError> {
        if let Some(tip) = self.tip(env)? {
            self.repo
                .reference(
                    &format!("refs/lowtouch/failed/{keep_as}"),
                    tip,
                    true,
                    "rollout failed",
                )
                .map_err(|e| self.err(e))?;
            let mut r = self
                .repo
                .find_reference(&Self::branch(env))
                .map_err(|e| self.err(e))?;
            r.delete().map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Checks the branch still descends from the commit the runtime copy came from.
    pub fn check_not_diverged(&self, env: &str, runtime_dir: &Path) -> Result<(), HistoryError> {
        let marker = runtime_dir.join("config-commit");
        let Ok(applied) = std::fs::read_to_string(&marker) else {
            return Ok(());
        };
        let Ok(applied_oid) = Oid::from_str(applied.trim()) else {
            return Ok(());
        };
        let Some(tip) = self.tip(env)? else {
            return Err(HistoryError::Missing {
                env: env.to_string(),
                path: self.path.clone(),
                applied: applied.trim().to_string(),
                marker,
            });
        };
        let fine = tip == applied_oid
            || self
                .repo
                .graph_descendant_of(tip, applied_oid)
                .unwrap_or(false);
        if fine {
            return Ok(());
        }
        Err(HistoryError::Diverged {
            env: env.to_string(),
            path: self.path.clone(),
            tip: tip.to_string(),
            applied: applied.trim().to_string(),
            marker,
        })
    }

    /// Commits `files` as the environment's new state unless it equals the tip's.
    pub fn commit(
        &self,
        env: &str,
        files: &BTreeMap<String, String>,
        summary: &str,
        revisions: &Revisions,
    ) -> Result<State, HistoryError> {
        let tree_id = self.write_tree(files)?;
        let tip = self.tip(env)?;
        let parent = match tip {
            Some(oid) => Some(self.repo.find_commit(oid).map_err(|e| self.err(e))?),
            None => None,
        };
        if let Some(p) = &parent
            && p.tree_id() == tree_id
        {
            return Ok(State {
                commit: p.id().to_string(),
                new: false,
                previous: p.parent_ids().next().map(|o| o.to_string()),
                tree: tree_id.to_string(),
            });
        }
        let tree = self.repo.find_tree(tree_id).map_err(|e| self.err(e))?;
        let sig = Signature::now("lowtouch", "lowtouch@localhost").map_err(|e| self.err(e))?;
        let message = format!(
            "{summary}\n\nproduct: {}\ntools: {}\ndata: {}\n",
            revisions.product, revisions.tools, revisions.data
        );
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = self
            .repo
            .commit(
                Some(&Self::branch(env)),
                &sig,
                &sig,
                &message,
                &tree,
                &parents,
            )
            .map_err(|e| self.err(e))?;
        Ok(State {
            commit: oid.to_string(),
            new: true,
            previous: parent.map(|p| p.id().to_string()),
            tree: tree_id.to_string(),
        })
    }

    /// Builds (nested) trees for `path → content`.
    fn write_tree(&self, files: &BTreeMap<String, String>) -> Result<Oid, HistoryError> {
        let mut root: BTreeMap<String, Node> = BTreeMap::new();
        for (path, content) in files {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            insert(&mut root, &parts, content);
        }
        self.write_dir(&root)
    }

    fn write_dir(&self, dir: &BTreeMap<String, Node>) -> Result<Oid, HistoryError> {
        let mut builder = self.repo.treebuilder(None).map_err(|e| self.err(e))?;
        for (name, node) in dir {
            let (oid, mode) = match node {
                Node::File(content) => (
                    self.repo
                        .blob(content.as_bytes())
                        .map_err(|e| self.err(e))?,
                    0o100644,
                ),
                Node::Dir(sub) => (self.write_dir(sub)?, 0o040000),
            };
            builder.insert(name, oid, mode).map_err(|e| self.err(e))?;
        }
        builder.write().map_err(|e| self.err(e))
    }
}

enum Node {
    File(String),
    Dir(BTreeMap<String, Node>),
}

fn insert(dir: &mut BTreeMap<String, Node>, parts: &[&str], content: &str) {
    match parts {
        [] => {}
        [leaf] => {
            dir.insert(leaf.to_string(), Node::File(content.to_string()));
        }
        [first, rest @ ..] => {
            let node = dir
                .entry(first.to_string())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            if let Node::Dir(sub) = node {
                insert(sub, rest, content);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn commits_only_changes_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(&dir.path().join("hist")).unwrap();
        let revs = Revisions::same("abc");
        let a = h
            .commit(
                "uat",
                &files(&[("a.conf", "x = 1\n"), ("sub/b.conf", "y\n")]),
                "render uat",
                &revs,
            )
            .unwrap();
        assert!(a.new && a.previous.is_none());
        let same = h
            .commit(
                "uat",
                &files(&[("a.conf", "x = 1\n"), ("sub/b.conf", "y\n")]),
                "again",
                &revs,
            )
            .unwrap();
        assert!(!same.new);
        assert_eq!(same.commit, a.commit);
        let b = h
            .commit(
                "uat",
                &files(&[("a.conf", "x = 2\n"), ("sub/b.conf", "y\n")]),
                "render",
                &revs,
            )
            .unwrap();
        assert!(b.new);
        assert_eq!(b.previous.as_deref(), Some(a.commit.as_str()));
        assert_eq!(h.files("uat", None).unwrap()["a.conf"], "x = 2\n");
        assert_eq!(
            h.files("uat", Some(&a.commit)).unwrap()["sub/b.conf"],
            "y\n"
        );
        // Another environment has its own branch.
        assert!(h.tip("local").unwrap().is_none());
    }

    #[test]
    fn a_rewritten_branch_is_diverged() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(&dir.path().join("hist")).unwrap();
        let revs = Revisions::same("abc");
        let a = h.commit("e", &files(&[("f", "1")]), "one", &revs).unwrap();
        let runtime = dir.path().join("rt");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::write(runtime.join("config-commit"), &a.commit).unwrap();
        h.check_not_diverged("e", &runtime).unwrap();
        // A history that lost the branch the runtime copy came from is reported, not rebuilt.
        let fresh = History::open(&dir.path().join("fresh")).unwrap();
        assert!(matches!(
            fresh.check_not_diverged("e", &runtime),
            Err(HistoryError::Missing { .. })
        ));
        h.commit("e", &files(&[("f", "2")]), "two", &revs).unwrap();
        h.check_not_diverged("e", &runtime).unwrap();
        // Reset the branch to an unrelated root commit.
        let other = h
            .commit("x", &files(&[("f", "3")]), "other", &revs)
            .unwrap();
        h.repo
            .reference(
                "refs/heads/env/e",
                Oid::from_str(&other.commit).unwrap(),
                true,
                "rewrite",
            )
            .unwrap();
        assert!(matches!(
            h.check_not_diverged("e", &runtime),
            Err(HistoryError::Diverged { .. })
        ));
    }

    #[test]
    fn a_directory_that_is_not_a_repository_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk"), "x").unwrap();
        let refused = History::open(dir.path()).err().unwrap();
        assert!(matches!(refused, HistoryError::NotARepository { .. }));
        assert!(
            refused.is_bad_input(),
            "--history names no repository: exit 2"
        );
    }
}
