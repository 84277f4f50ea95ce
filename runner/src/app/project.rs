//! A project: the directory with `pipelines/` and `environments/`, and every path lowtouch
//! keeps under it. Nothing else joins `.lowtouch/…` by hand.

use std::path::{Path, PathBuf};

use super::Error;

/// The project under test and where its state lives.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
    db: PathBuf,
    history: PathBuf,
}

impl Project {
    /// The project at `root`, its store at `db` and its config history at `history`
    /// (relative paths are the project's; `None`: their places under `.lowtouch/`).
    pub fn new(root: PathBuf, db: Option<&Path>, history: Option<&Path>) -> Project {
        let state = root.join(".lowtouch");
        let under = |given: Option<&Path>, default: &str| match given {
            Some(p) if p.is_relative() => root.join(p),
            Some(p) => p.to_path_buf(),
            None => state.join(default),
        };
        Project {
            db: under(db, "db"),
            history: under(history, "config-history"),
            root,
        }
    }

    /// The project directory: `dir` when given, else the nearest directory up from the
    /// working directory that looks like a project (like git and cargo). Outside of one,
    /// nothing is done — no store made wherever a command happens to run — unless the
    /// store is named (`store_named`: `--db`).
    pub fn locate(dir: Option<&Path>, store_named: bool) -> Result<PathBuf, Error> {
        // lowtouch's state made here before is a project's too (its store, its runs).
        let is_project = |d: &Path| {
            ["pipelines", "environments", ".lowtouch"]
                .iter()
                .any(|m| d.join(m).is_dir())
        };
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => {
                let cwd = std::env::current_dir()
                    .map_err(|e| Error::infra(format!("no working directory: {e}")))?;
                cwd.ancestors()
                    .find(|d| is_project(d))
                    .map_or(cwd.clone(), Path::to_path_buf)
            }
        };
        if !dir.is_dir() {
            return Err(Error::input(format!(
                "-C {}: not a directory",
                dir.display()
            )));
        }
        if !store_named && !is_project(&dir) {
            return Err(Error::input(format!(
                "{} is not in a lowtouch project (a directory with `environments/`, \
                 `pipelines/` or `.lowtouch/`); start one with `lowtouch init`, or name one with `-C DIR`",
                dir.display()
            )));
        }
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store (`.lowtouch/db`, or `--db`).
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// The config history repository (`.lowtouch/config-history`, or `--history`).
    pub fn config_history(&self) -> &Path {
        &self.history
    }

    /// lowtouch's state under the project: `.lowtouch/`. Environments' runtime
    /// directories are `envs/NAME/` below it.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".lowtouch")
    }

    /// Bare mirrors of watched repositories.
    pub fn mirrors(&self) -> PathBuf {
        self.state_dir().join("mirrors")
    }

    /// Where a pipeline's candidate is checked out.
    pub fn worktree(&self, pipeline: &str) -> PathBuf {
        self.state_dir().join("worktrees").join(pipeline)
    }

    /// What a pipeline's deploy stage last put in place.
    pub fn deployed_marker(&self, pipeline: &str) -> PathBuf {
        self.state_dir()
            .join("worktrees")
            .join(format!("{pipeline}.deployed"))
    }

    /// The scratch copy a rollout keeps of an environment's runtime directory.
    pub fn rollout_scratch(&self, environment: &str) -> PathBuf {
        self.state_dir().join("rollout").join(environment)
    }

    /// The local API's socket: beside the store, so a `--db` elsewhere finds its server.
    pub fn socket(&self) -> PathBuf {
        crate::api::socket_path(&self.db)
    }

    /// `path` as the project sees it: relative paths are the project's.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lives_under_dot_lowtouch_unless_given_elsewhere() {
        let p = Project::new("/p".into(), None, None);
        assert_eq!(p.db(), Path::new("/p/.lowtouch/db"));
        assert_eq!(p.config_history(), Path::new("/p/.lowtouch/config-history"));
        assert_eq!(p.mirrors(), Path::new("/p/.lowtouch/mirrors"));
        assert_eq!(
            p.deployed_marker("nightly"),
            Path::new("/p/.lowtouch/worktrees/nightly.deployed")
        );
        let q = Project::new("/p".into(), Some(Path::new("x/db")), Some(Path::new("/h")));
        assert_eq!(q.db(), Path::new("/p/x/db"));
        assert_eq!(q.config_history(), Path::new("/h"));
        assert_eq!(
            q.resolve(Path::new("reports/j.xml")),
            Path::new("/p/reports/j.xml")
        );
    }
}
