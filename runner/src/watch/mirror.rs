//! Mirrors: a bare git repository per watched URL (under `.lowtouch/mirrors/` in a
//! project), fetched with explicit refspecs, its refs listed from the remote's
//! advertisement — never by walking history.
//!
//! This is the only file of lowtouch that uses gix. Networking is blocking: a server calls
//! [`Mirror::fetch`] from a blocking thread (`spawn_blocking`).
//!
//! Transports: local paths and `file://` URLs (gix runs `git upload-pack` for them, so the
//! `git` program must be installed), and `https://` (or plain `http://`) through gix's
//! reqwest transport with rustls and the system's root certificates. A private https
//! remote gets the token in `LOWTOUCH_GIT_TOKEN` (user `x-access-token`, as GitHub
//! expects), over https only; credentials written into a URL are refused, because URLs
//! appear in logs and errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use sha2::{Digest, Sha256};

use super::change::{Ancestry, RefTip};
use super::error::{SpecError, WatchError, describe};

/// The refspecs every fetch uses: branches and tags mirrored under their own names,
/// force-updated (a force push upstream is a force update here). A bare repository has
/// no refspec of its own, so fetching without them would silently list nothing.
pub const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Whether lowtouch can fetch from `url` (a URL with a scheme, or scp-like `host:path`);
/// plain paths always can.
pub fn url_support(url: &str) -> Result<(), SpecError> {
    let scheme = match url.split_once("://") {
        Some((scheme, _)) => scheme.to_ascii_lowercase(),
        None if url.contains(':') && !url.starts_with('/') => "ssh".into(),
        None => return Ok(()),
    };
    match scheme.as_str() {
        "file" => Ok(()),
        "https" | "http" => {
            let authority = url
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
                .unwrap_or("");
            if authority.contains('@') {
                return Err(SpecError::Credentials { scheme });
            }
            Ok(())
        }
        _ => Err(SpecError::Scheme {
            url: url.to_string(),
            scheme,
        }),
    }
}

/// rustls needs one crypto provider per process: ring, which octocrab builds anyway.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err: another part of the process installed one first, which does as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Answers an https remote's request for credentials with `LOWTOUCH_GIT_TOKEN`; never
/// prompts, and never sends the token over plain http or to another host (a redirect).
fn token_credentials(
    remote: &str,
    action: gix::credentials::helper::Action,
) -> Result<Option<gix::credentials::protocol::Outcome>, gix::Error> {
    use gix::credentials::helper::Action;
    let Action::Get(ctx) = action else {
        return Ok(None);
    };
    let token = std::env::var("LOWTOUCH_GIT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let asking = ctx.url.as_ref().map(|u| u.to_string()).unwrap_or_default();
    match token_for(&asking, remote, token) {
        Some(password) => Ok(Some(gix::credentials::protocol::Outcome {
            identity: gix::sec::identity::Account {
                username: "x-access-token".into(),
                password,
                oauth_refresh_token: None,
            },
            next: ctx.into(),
        })),
        None => Ok(None),
    }
}

/// The token to answer a credential request for `asking` (the URL the transport is at)
/// when fetching `remote`: only over https, only to the remote's own host.
fn token_for(asking: &str, remote: &str, token: Option<String>) -> Option<String> {
    let https_host = |url: &str| {
        let parsed = gix::url::parse(gix::bstr::BStr::new(url)).ok()?;
        (parsed.scheme == gix::url::Scheme::Https)
            .then(|| parsed.host().map(|h| (h.to_ascii_lowercase(), parsed.port)))
            .flatten()
    };
    let (asked, ours) = (https_host(asking)?, https_host(remote)?);
    (asked == ours).then_some(token).flatten()
}

/// A bare mirror of one remote repository.
pub struct Mirror {
    repo: gix::Repository,
    url: String,
    dir: PathBuf,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("url", &self.url)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Mirror {
    /// Where the mirror of `url` lives under `root`: a readable name from the URL's last
    /// part and a hash of the whole URL, so two URLs never share a mirror and pipelines
    /// following the same URL do.
    pub fn dir_for(root: &Path, url: &str) -> PathBuf {
        let last = url
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git");
        let readable: String = last
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let hash = Sha256::digest(url.as_bytes());
        let short: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
        root.join(format!("{readable}-{short}.git"))
    }

    /// Opens the mirror in `dir`, or creates an empty one there. No network: the first
    /// [`Mirror::fetch`] fills it. Creation is atomic (a temp dir renamed into place), so
    /// a crash never leaves half a mirror behind.
    pub fn open_or_create(url: &str, dir: &Path) -> Result<Mirror, WatchError> {
        url_support(url).map_err(|reason| WatchError::Unsupported {
            url: url.to_string(),
            reason,
        })?;
        let mirror_err = |message: String| WatchError::Mirror {
            dir: dir.to_path_buf(),
            message,
        };
        if !dir.exists() {
            create(url, dir)?;
        }
        let repo = gix::open_opts(dir, gix::open::Options::isolated())
            .map_err(|e| mirror_err(describe(&e)))?;
        if !repo.is_bare() {
            return Err(mirror_err(
                "it is not a bare repository; remove it and lowtouch makes a new mirror".into(),
            ));
        }
        Ok(Mirror {
            repo,
            url: url.to_string(),
            dir: dir.to_path_buf(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fetches the followed namespaces (branches and tags) and returns every ref the remote
    /// advertised, sorted by name. Refs gone upstream are removed from the mirror (their
    /// commits stay until a gc, so a deleted or force-pushed tip can still be diffed).
    ///
    /// Cost: one `ls-refs` round trip, and a pack only when something is new — no history
    /// walk on either side beyond git's own negotiation.
    ///
    /// An error leaves the mirror as it was: nothing is pruned before the remote answered.
    pub fn fetch(&self) -> Result<Vec<RefTip>, WatchError> {
        let unreachable = |e: gix::Error| WatchError::Unreachable {
            url: self.url.clone(),
            message: describe(&e),
        };
        let remote = self
            .repo
            .remote_at(self.url.as_str())
            .and_then(|r| r.with_refspecs(REFSPECS, gix::remote::Direction::Fetch))
            .map_err(|e| WatchError::Unsupported {
                url: self.url.clone(),
                reason: SpecError::Unparsable(describe(&e)),
            })?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        install_tls_provider();
        let connection = remote
            .connect(gix::remote::Direction::Fetch)
            .map_err(unreachable)?
            .with_credentials(|action| token_credentials(&self.url, action));
        let prepare = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(unreachable)?;
        let mut tips: Vec<RefTip> = prepare
            .ref_map()
            .remote_refs
            .iter()
            .filter_map(|r| {
                let (name, target, peeled) = r.unpack();
                let name = name.to_string();
                let mirrored = name.starts_with("refs/heads/") || name.starts_with("refs/tags/");
                Some(RefTip {
                    name,
                    target: target?.to_string(),
                    peeled: peeled.map(|p| p.to_string()),
                })
                .filter(|_| mirrored)
            })
            .collect();
        tips.sort_by(|a, b| a.name.cmp(&b.name));
        tips.dedup_by(|a, b| a.name == b.name);
        // Before the update, so a deleted `foo` never blocks a new `foo/bar`.
        self.prune(&tips)?;
        prepare
            .receive(gix::progress::Discard, &AtomicBool::new(false))
            .map_err(|e| WatchError::Fetch {
                url: self.url.clone(),
                message: describe(&e),
            })?;
        Ok(tips)
    }

    /// Removes the mirror's branches and tags the remote no longer has.
    fn prune(&self, tips: &[RefTip]) -> Result<(), WatchError> {
        use gix::refs::transaction::{Change, PreviousValue, RefEdit, RefLog};
        let err = |e: gix::Error| self.repository_error("pruning refs", &e);
        let platform = self.repo.references().map_err(err)?;
        let mut edits = Vec::new();
        for prefix in ["refs/heads/", "refs/tags/"] {
            for r in platform.prefixed(prefix).map_err(err)? {
                let r = r.map_err(|e| self.repository_error("reading refs", &e))?;
                let name = r.name().as_bstr().to_string();
                if tips
                    .binary_search_by(|t| t.name.as_str().cmp(&name))
                    .is_err()
                {
                    edits.push(RefEdit {
                        change: Change::Delete {
                            expected: PreviousValue::Any,
                            log: RefLog::AndReference,
                        },
                        name: r.name().to_owned(),
                        deref: false,
                    });
                }
            }
        }
        if !edits.is_empty() {
            self.repo.edit_references(edits).map_err(err)?;
        }
        Ok(())
    }

    /// The paths (files, relative to the root) that differ between commit `old` and
    /// commit `new`, sorted. With no `old`, every file of `new` (a new branch or tag has
    /// nothing to compare with). A plain tree diff: no rename detection, no history walk.
    pub fn changed_paths(&self, old: Option<&str>, new: &str) -> Result<Vec<String>, WatchError> {
        let new_tree = self.commit_tree(new)?;
        let old_tree = old.map(|o| self.commit_tree(o)).transpose()?;
        let changes = self
            .repo
            .diff_tree_to_tree(
                old_tree.as_ref(),
                Some(&new_tree),
                Some(gix::diff::Options::default()),
            )
            .map_err(|e| self.repository_error(&format!("diffing {new}"), &e))?;
        let mut paths: Vec<String> = changes
            .iter()
            .filter(|c| !c.entry_mode().is_tree())
            .map(|c| c.location().to_string())
            .collect();
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// The branches and tags the mirror holds now (as its last fetch left them), sorted by
    /// name: what a run started by hand tests when the remote cannot be reached.
    pub fn local_tips(&self) -> Result<Vec<RefTip>, WatchError> {
        let err = |e: gix::Error| self.repository_error("reading refs", &e);
        let platform = self.repo.references().map_err(err)?;
        let mut tips = Vec::new();
        for prefix in ["refs/heads/", "refs/tags/"] {
            for r in platform.prefixed(prefix).map_err(err)? {
                let mut r = r.map_err(|e| self.repository_error("reading refs", &e))?;
                let name = r.name().as_bstr().to_string();
                let Some(target) = r.target().try_id().map(|id| id.to_owned()) else {
                    continue;
                };
                let peeled = r
                    .peel_to_id()
                    .ok()
                    .map(|id| id.detach())
                    .filter(|id| *id != target);
                tips.push(RefTip {
                    name,
                    target: target.to_string(),
                    peeled: peeled.map(|p| p.to_string()),
                });
            }
        }
        tips.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tips)
    }

    /// Writes the files of commit `hex` into `dest` (a plain directory, no `.git`): the
    /// worktree a deploy stage builds from. Written beside `dest` first and renamed into
    /// place, so `dest` is always one whole commit; a marker beside it
    /// (`dest.commit`) skips the work when `dest` already holds that commit.
    ///
    /// Executable bits and symlinks are kept; submodules are left empty (a deploy that
    /// needs one fetches it itself).
    pub fn export(&self, hex: &str, dest: &Path) -> Result<bool, WatchError> {
        let marker = dest.with_extension("commit");
        if dest.is_dir() && std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == hex) {
            return Ok(false);
        }
        let tree = self.commit_tree(hex)?;
        let mut recorder = gix::traverse::tree::Recorder::default();
        tree.traverse()
            .breadthfirst(&mut recorder)
            .map_err(|e| self.repository_error(&format!("reading the tree of {hex}"), &e))?;
        let parent = dest.parent().unwrap_or(Path::new("."));
        let io = |what: &str, path: &Path, e: std::io::Error| WatchError::Repository {
            dir: self.dir.clone(),
            what: format!("{what} {}", path.display()),
            message: e.to_string(),
        };
        std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("tree");
        let tmp = parent.join(format!(".{name}.new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let written = (|| {
            std::fs::create_dir_all(&tmp).map_err(|e| io("creating", &tmp, e))?;
            // Links are made last, so no later write can go through one (a crafted tree
            // with a link `a` and a file `a/x` must not write outside `dest`).
            let mut links = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for entry in &recorder.records {
                let rel = entry.filepath.to_string();
                if !seen.insert(rel.clone()) {
                    // Two entries of one name: a tree git would reject (fsck).
                    return Err(WatchError::Repository {
                        dir: self.dir.clone(),
                        what: format!("the tree of {hex}"),
                        message: format!("`{rel}` appears twice; not writing it out"),
                    });
                }
                if rel.split('/').any(|p| p == ".." || p == ".git") || rel.starts_with('/') {
                    // A tree git itself would refuse to check out.
                    continue;
                }
                let path = tmp.join(&rel);
                if entry.mode.is_tree() || entry.mode.is_commit() {
                    std::fs::create_dir_all(&path).map_err(|e| io("creating", &path, e))?;
                    continue;
                }
                let object = self
                    .repo
                    .find_object(entry.oid)
                    .map_err(|e| self.repository_error(&format!("reading {rel}"), &e))?;
                if entry.mode.is_link() {
                    links.push((String::from_utf8_lossy(&object.data).into_owned(), path));
                    continue;
                }
                std::fs::write(&path, &object.data).map_err(|e| io("writing", &path, e))?;
                if entry.mode.is_executable() {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .map_err(|e| io("writing", &path, e))?;
                }
            }
            for (target, path) in links {
                std::os::unix::fs::symlink(&target, &path).map_err(|e| io("linking", &path, e))?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        if dest.exists() {
            std::fs::rename(dest, &old).map_err(|e| io("moving", dest, e))?;
        }
        std::fs::rename(&tmp, dest).map_err(|e| io("moving", dest, e))?;
        let _ = std::fs::remove_dir_all(&old);
        std::fs::write(&marker, format!("{hex}\n")).map_err(|e| io("writing", &marker, e))?;
        Ok(true)
    }

    fn commit_tree(&self, hex: &str) -> Result<gix::Tree<'_>, WatchError> {
        let id = self.oid(hex)?;
        self.repo
            .find_commit(id)
            .and_then(|c| c.tree())
            .map_err(|e| self.repository_error(&format!("commit {hex}"), &e))
    }

    fn oid(&self, hex: &str) -> Result<gix::ObjectId, WatchError> {
        gix::ObjectId::from_hex(hex.as_bytes()).map_err(|e| self.repository_error(hex, &e))
    }

    fn repository_error(&self, what: &str, e: &(dyn std::error::Error + 'static)) -> WatchError {
        WatchError::Repository {
            dir: self.dir.clone(),
            what: what.to_string(),
            message: describe(e),
        }
    }
}

impl Ancestry for Mirror {
    /// One merge-base of two commits. An `old` commit missing from the mirror cannot be an
    /// ancestor: a fetch brings the whole history of every new tip.
    fn is_ancestor(&self, old: &str, new: &str) -> Result<bool, WatchError> {
        let (old_id, new_id) = (self.oid(old)?, self.oid(new)?);
        if old_id == new_id {
            return Ok(true);
        }
        if !self.repo.has_object(old_id) {
            return Ok(false);
        }
        // The usual push adds a few commits on top of the old tip: look at the newest
        // ancestors first (a bounded number), and only then ask for a merge-base.
        if self.near_ancestor(old_id, new_id) {
            return Ok(true);
        }
        match self.repo.merge_base(old_id, new_id) {
            Ok(base) => Ok(base.is_some_and(|b| b.detach() == old_id)),
            Err(e) => Err(self.repository_error(&format!("merge-base of {old} and {new}"), &e)),
        }
    }
}

impl Mirror {
    /// Whether `old` is among the [`NEAR`] newest ancestors of `new` (breadth first over
    /// all parents). False says nothing: the caller asks for a merge-base then.
    fn near_ancestor(&self, old: gix::ObjectId, new: gix::ObjectId) -> bool {
        const NEAR: usize = 64;
        let mut queue = std::collections::VecDeque::from([new]);
        let mut seen = 0;
        while let Some(id) = queue.pop_front() {
            seen += 1;
            if seen > NEAR {
                return false;
            }
            let Ok(commit) = self.repo.find_commit(id) else {
                return false;
            };
            for parent in commit.parent_ids() {
                if parent == old {
                    return true;
                }
                queue.push_back(parent.detach());
            }
        }
        false
    }
}

/// `git init --bare` into a temp dir beside `dir`, the remote written to its config (for
/// people who look into it with git), then renamed into place.
fn create(url: &str, dir: &Path) -> Result<(), WatchError> {
    let mirror_err = |message: String| WatchError::Mirror {
        dir: dir.to_path_buf(),
        message,
    };
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| mirror_err(format!("cannot create {}: {e}", parent.display())))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = parent.join(format!(".mirror-{}-{nanos}", std::process::id()));
    if let Err(e) = init_into(url, &tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process made it first: use theirs.
        if !dir.exists() {
            return Err(mirror_err(format!(
                "cannot move the new mirror into place: {e}"
            )));
        }
    }
    Ok(())
}

/// The new mirror's repository and config in `tmp`, to be renamed to `dir` (the error
/// names `dir`: the temp dir is gone by the time anyone reads it).
fn init_into(url: &str, tmp: &Path, dir: &Path) -> Result<(), WatchError> {
    let mirror_err = |message: String| WatchError::Mirror {
        dir: dir.to_path_buf(),
        message,
    };
    let repo = gix::init_bare(tmp).map_err(|e| mirror_err(describe(&e)))?;
    let config_path = repo.git_dir().join("config");
    let mut config =
        gix::config::File::from_path_no_includes(config_path.clone(), gix::config::Source::Local)
            .map_err(|e| mirror_err(describe(&e)))?;
    repo.remote_at(url)
        .and_then(|r| r.with_refspecs(REFSPECS, gix::remote::Direction::Fetch))
        .and_then(|mut r| {
            r.save_as_to("origin", &mut config)?;
            Ok(())
        })
        .map_err(|e| mirror_err(describe(&e)))?;
    let mut out = Vec::new();
    config
        .write_to(&mut out)
        .map_err(|e| mirror_err(format!("cannot write the mirror's config: {e}")))?;
    std::fs::write(&config_path, out)
        .map_err(|e| mirror_err(format!("cannot write {}: {e}", config_path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lowtouch_can_fetch() {
        assert!(url_support("/srv/repo").is_ok());
        assert!(url_support("file:///srv/repo").is_ok());
        assert!(url_support("https://github.com/o/r.git").is_ok());
        assert!(url_support("http://127.0.0.1:8080/r.git").is_ok());
        let leaky = url_support("https://me:ghp_secret@github.com/o/r")
            .unwrap_err()
            .to_string();
        assert!(!leaky.contains("ghp_secret"), "{leaky}");
        assert!(leaky.contains("LOWTOUCH_GIT_TOKEN"), "{leaky}");
        assert!(url_support("ssh://host/r").is_err());
        assert!(url_support("git@github.com:o/r.git").is_err());
    }

    #[test]
    fn the_token_goes_to_the_remotes_own_https_host_only() {
        let t = || Some("s3cret".to_string());
        let remote = "https://git.example.com/o/r.git";
        assert_eq!(
            token_for("https://git.example.com/o/r.git/info/refs", remote, t()),
            t()
        );
        assert_eq!(
            token_for("https://GIT.example.com/o/r.git", remote, t()),
            t()
        );
        assert_eq!(
            token_for("https://evil.example.net/r.git", remote, t()),
            None
        );
        assert_eq!(
            token_for("http://git.example.com/o/r.git", remote, t()),
            None
        );
        assert_eq!(
            token_for("https://git.example.com:8443/o/r.git", remote, t()),
            None
        );
        assert_eq!(
            token_for(
                "http://git.example.com/o/r.git",
                "http://git.example.com/o/r.git",
                t()
            ),
            None,
            "never over plain http"
        );
        assert_eq!(
            token_for("https://git.example.com/o/r.git", remote, None),
            None
        );
    }

    #[test]
    fn a_mirror_can_move_to_a_blocking_thread() {
        fn send<T: Send>() {}
        send::<Mirror>();
    }

    #[test]
    fn mirror_dirs_are_readable_and_distinct() {
        let root = Path::new("/m");
        let a = Mirror::dir_for(root, "/srv/exchange.git");
        let b = Mirror::dir_for(root, "/other/exchange.git");
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("exchange-") && name.ends_with(".git"),
            "{name}"
        );
        assert_eq!(a, Mirror::dir_for(root, "/srv/exchange.git"));
    }
}
