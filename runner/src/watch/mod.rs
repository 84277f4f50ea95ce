//! Watching repositories: the foundation of lowtouch's Git-driven triggers.
//!
//! A pipeline declares the repositories it depends on ([`repository`]: role, URL, refs
//! to follow, path filters). lowtouch keeps a bare [`mirror`] of each, fetches it, and
//! compares the advertised refs with the tips it stored last time ([`change`]): new
//! commits, new tags, force pushes, deleted refs. Each change is then [`classify`]-ed by the
//! repository's role and the paths it touches into what must be redone.
//!
//! A poll, as the server does it:
//! ```text
//! let mirror = Mirror::open_or_create(&repo.url, &Mirror::dir_for(mirrors, &repo.url))?;
//! let refs = mirror.fetch()?;                               // Unreachable: retry later
//! let previous = store.tips(key)?;                          // None: first sight
//! for change in detect(previous.as_ref(), &refs, &repo.follow, &mirror)? {
//!     let paths = mirror.changed_paths(change.old.as_deref(), change.candidate()?)?;
//!     let action = classify(repo.role, &paths, &repo.paths);
//!     …
//! }
//! store.replace_tips(key, &followed_tips(&refs, &repo.follow))?;
//! ```
//!
//! **Owns:** the mirrors (their directories) and everything gix does; gix is used in
//! [`mirror`] only. **May not touch:** sled (tips go through [`crate::store::Store`]),
//! processes, runs. Nothing here walks history except one merge-base of two commits when a
//! followed ref moved (is it a force push?), so detecting a new commit costs the same in
//! a repository of 10 commits and one of 100,000.

pub mod candidate;
pub mod change;
pub mod classify;
pub mod error;
pub mod mirror;
pub mod repository;

pub use candidate::{Candidate, CandidateRepo};
pub use change::{
    Ancestry, Change, ChangeKind, RefPattern, RefTip, detect, followed_tips, is_followed,
};
pub use classify::{Action, PathFilter, classify};
pub use error::WatchError;
pub use mirror::Mirror;
pub use repository::{GithubRepo, Repository, RepositorySpec, Role};
