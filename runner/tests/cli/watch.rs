//! Watching: real upstream repositories made with the `git` CLI in temp dirs, mirrored and
//! fetched with gix, tips kept in a real sled store — the poll cycle `lowtouch serve` runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use lowtouch::store::Store;
use lowtouch::watch::{
    Action, Change, ChangeKind, Mirror, PathFilter, RefPattern, Role, WatchError, classify, detect,
    followed_tips,
};

/// An upstream repository with a working tree, driven by the `git` CLI.
struct Upstream {
    _dir: tempfile::TempDir,
    path: PathBuf,
    commits: u32,
}

impl Upstream {
    fn new() -> Upstream {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("upstream");
        std::fs::create_dir(&path).unwrap();
        let up = Upstream {
            _dir: dir,
            path,
            commits: 0,
        };
        up.git(&["init", "-q"]);
        up
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=lowtouch test",
                "-c",
                "user.email=test@lowtouch.invalid",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "tag.gpgsign=false",
            ])
            .args(args)
            .current_dir(&self.path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes `file` (a new line each time) and commits; returns the commit id.
    fn commit(&mut self, file: &str) -> String {
        self.commits += 1;
        let path = self.path.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&format!("change {}\n", self.commits));
        std::fs::write(&path, text).unwrap();
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", &format!("change {}", self.commits)]);
        self.head()
    }

    fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        self.path.to_str().unwrap().to_string()
    }
}

/// lowtouch's side: a project dir with the store and the mirrors.
struct Watcher {
    dir: tempfile::TempDir,
    store: Option<Store>,
}

impl Watcher {
    fn new() -> Watcher {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join(".lowtouch/db")).unwrap();
        Watcher {
            dir,
            store: Some(store),
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store open")
    }

    /// Stops and starts again: the store closed and reopened from its files.
    fn restart(&mut self) {
        self.store = None;
        self.store = Some(Store::open(&self.dir.path().join(".lowtouch/db")).unwrap());
    }

    fn mirror(&self, url: &str) -> Result<Mirror, WatchError> {
        let root = self.dir.path().join(".lowtouch/mirrors");
        Mirror::open_or_create(url, &Mirror::dir_for(&root, url))
    }

    /// One poll of one repository: fetch, compare with the stored tips, store the new ones.
    fn poll(&self, key: &str, url: &str, follow: &[&str]) -> Result<Vec<Change>, WatchError> {
        let follow: Vec<RefPattern> = follow
            .iter()
            .map(|p| RefPattern::parse(p).unwrap())
            .collect();
        let mirror = self.mirror(url)?;
        let refs = mirror.fetch()?;
        let previous = self.store().tips(key).unwrap();
        let changes = detect(previous.as_ref(), &refs, &follow, &mirror)?;
        self.store()
            .replace_tips(key, &followed_tips(&refs, &follow))
            .unwrap();
        Ok(changes)
    }

    fn tips(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.store().tips(key).unwrap()
    }
}

fn change(name: &str, kind: ChangeKind, old: Option<&str>, new: Option<&str>) -> Change {
    Change {
        name: name.into(),
        kind,
        old: old.map(str::to_string),
        new: new.map(str::to_string),
    }
}

#[test]
fn first_sight_records_tips_then_a_new_commit_is_detected() {
    let mut up = Upstream::new();
    up.commit("src/a.rs");
    let c2 = up.commit("src/a.rs");
    let w = Watcher::new();

    assert_eq!(w.poll("p/product", &up.url(), &["main"]).unwrap(), vec![]);
    let tips = w.tips("p/product").expect("seen");
    assert_eq!(tips.get("refs/heads/main"), Some(&c2));

    let c3 = up.commit("src/b.rs");
    assert_eq!(
        w.poll("p/product", &up.url(), &["main"]).unwrap(),
        vec![change(
            "refs/heads/main",
            ChangeKind::Advanced,
            Some(&c2),
            Some(&c3)
        )]
    );
    // Seen once, reported once.
    assert_eq!(w.poll("p/product", &up.url(), &["main"]).unwrap(), vec![]);

    // Several commits in one go are one change, from the old tip to the newest.
    up.commit("src/a.rs");
    let c5 = up.commit("src/c.rs");
    let changes = w.poll("p/product", &up.url(), &["main"]).unwrap();
    assert_eq!(
        changes,
        vec![change(
            "refs/heads/main",
            ChangeKind::Advanced,
            Some(&c3),
            Some(&c5)
        )]
    );
    let mirror = w.mirror(&up.url()).unwrap();
    assert_eq!(
        mirror.changed_paths(Some(&c3), &c5).unwrap(),
        vec!["src/a.rs".to_string(), "src/c.rs".to_string()]
    );
}

#[test]
fn new_tags_matching_a_pattern_are_detected_and_others_ignored() {
    let mut up = Upstream::new();
    let c1 = up.commit("README");
    let w = Watcher::new();
    let follow = ["main", "v*"];
    let file_url = format!("file://{}", up.url());
    assert_eq!(w.poll("p/product", &file_url, &follow).unwrap(), vec![]);

    up.git(&["tag", "v1.0"]);
    up.git(&["tag", "-a", "v1.1", "-m", "release 1.1"]);
    up.git(&["tag", "nightly"]);
    up.git(&["tag", "-a", "build-7", "-m", "not followed"]);
    let changes = w.poll("p/product", &file_url, &follow).unwrap();
    assert_eq!(
        changes,
        vec![
            change("refs/tags/v1.0", ChangeKind::Created, None, Some(&c1)),
            // An annotated tag is reported with the commit it names, not the tag object.
            change("refs/tags/v1.1", ChangeKind::Created, None, Some(&c1)),
        ]
    );
    assert!(changes.iter().all(Change::is_tag));
    // A new tag has nothing to compare with: every file of its commit counts.
    let mirror = w.mirror(&file_url).unwrap();
    assert_eq!(
        mirror.changed_paths(None, &c1).unwrap(),
        vec!["README".to_string()]
    );
    assert_eq!(w.poll("p/product", &file_url, &follow).unwrap(), vec![]);
}

#[test]
fn a_force_push_is_detected_as_such() {
    let mut up = Upstream::new();
    let c1 = up.commit("src/a.rs");
    let c2 = up.commit("src/b.rs");
    let w = Watcher::new();
    w.poll("p/product", &up.url(), &["main"]).unwrap();

    up.git(&["reset", "-q", "--hard", &c1]);
    let c3 = up.commit("src/c.rs");
    assert_eq!(
        w.poll("p/product", &up.url(), &["main"]).unwrap(),
        vec![change(
            "refs/heads/main",
            ChangeKind::ForcePushed,
            Some(&c2),
            Some(&c3)
        )]
    );
    // The rewritten-away commit is still in the mirror: the diff is from what was tested.
    let mirror = w.mirror(&up.url()).unwrap();
    assert_eq!(
        mirror.changed_paths(Some(&c2), &c3).unwrap(),
        vec!["src/b.rs".to_string(), "src/c.rs".to_string()]
    );

    // A reset to an older commit is a force push too, and fast-forwarding after it is not.
    up.git(&["reset", "-q", "--hard", &c1]);
    let changes = w.poll("p/product", &up.url(), &["main"]).unwrap();
    assert_eq!(changes[0].kind, ChangeKind::ForcePushed);
    let c4 = up.commit("src/d.rs");
    let changes = w.poll("p/product", &up.url(), &["main"]).unwrap();
    assert_eq!(
        changes,
        vec![change(
            "refs/heads/main",
            ChangeKind::Advanced,
            Some(&c1),
            Some(&c4)
        )]
    );
}

#[test]
fn a_deleted_branch_is_detected_and_pruned_from_the_mirror() {
    let mut up = Upstream::new();
    let c1 = up.commit("a");
    up.git(&["branch", "release/1"]);
    up.git(&["branch", "feature"]);
    let w = Watcher::new();
    let follow = ["main", "release/*"];
    w.poll("p/product", &up.url(), &follow).unwrap();
    assert_eq!(
        w.tips("p/product").unwrap().len(),
        2,
        "feature is not followed"
    );

    up.git(&["branch", "-D", "release/1"]);
    up.git(&["branch", "-D", "feature"]);
    assert_eq!(
        w.poll("p/product", &up.url(), &follow).unwrap(),
        vec![change(
            "refs/heads/release/1",
            ChangeKind::Deleted,
            Some(&c1),
            None
        )]
    );
    assert_eq!(w.poll("p/product", &up.url(), &follow).unwrap(), vec![]);
    let mirror = w.mirror(&up.url()).unwrap();
    let refs = Command::new("git")
        .args(["for-each-ref", "--format=%(refname)"])
        .current_dir(mirror.dir())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&refs.stdout).trim(),
        "refs/heads/main"
    );

    // A branch `release/1/hotfix` where `release/1` was: the old ref is no obstacle.
    up.git(&["branch", "release/1/hotfix"]);
    let changes = w
        .poll("p/product", &up.url(), &["main", "release/**"])
        .unwrap();
    assert_eq!(changes[0].name, "refs/heads/release/1/hotfix");
    assert_eq!(changes[0].kind, ChangeKind::Created);
}

#[test]
fn an_unreachable_remote_is_an_error_and_the_stored_tips_stay() {
    let mut up = Upstream::new();
    let c1 = up.commit("a");
    let w = Watcher::new();
    w.poll("p/product", &up.url(), &["main"]).unwrap();

    let away = up.path.with_file_name("moved-away");
    std::fs::rename(&up.path, &away).unwrap();
    let err = w.poll("p/product", &up.url(), &["main"]).unwrap_err();
    assert!(matches!(err, WatchError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot reach {}: ", up.url())),
        "{text}"
    );
    assert_eq!(
        w.tips("p/product").unwrap().get("refs/heads/main"),
        Some(&c1)
    );

    // Back again, with a commit pushed while it was away: found, once.
    std::fs::rename(&away, &up.path).unwrap();
    let c2 = up.commit("b");
    assert_eq!(
        w.poll("p/product", &up.url(), &["main"]).unwrap(),
        vec![change(
            "refs/heads/main",
            ChangeKind::Advanced,
            Some(&c1),
            Some(&c2)
        )]
    );

    // Never reachable: an error too, and nothing stored.
    let err = w
        .poll("p/ghost", "/nonexistent/lowtouch/repo", &["main"])
        .unwrap_err();
    assert!(matches!(err, WatchError::Unreachable { .. }), "{err:?}");
    assert_eq!(w.tips("p/ghost"), None);
    // Not a git repository at all.
    let err = w
        .poll("p/plain", w.dir.path().to_str().unwrap(), &["main"])
        .unwrap_err();
    assert!(matches!(err, WatchError::Unreachable { .. }), "{err:?}");
}

#[test]
fn an_unreachable_https_remote_is_reported_and_ssh_is_refused() {
    let w = Watcher::new();
    // Nothing listens on port 9: an error a server retries, and nothing stored.
    let err = w
        .poll("p/remote", "https://127.0.0.1:9/exchange.git", &["main"])
        .unwrap_err();
    assert!(matches!(err, WatchError::Unreachable { .. }), "{err:?}");
    assert_eq!(w.tips("p/remote"), None);
    let err = w.mirror("ssh://git@example.com/o/r.git").unwrap_err();
    assert!(matches!(err, WatchError::Unsupported { .. }), "{err:?}");
}

#[test]
fn tips_survive_a_restart_old_commits_are_not_rerun_and_new_ones_are_found() {
    let mut up = Upstream::new();
    up.commit("a");
    let c2 = up.commit("a");
    let mut w = Watcher::new();
    w.poll("p/product", &up.url(), &["main", "v*"]).unwrap();

    // Down: nothing new while nobody watched.
    w.restart();
    assert_eq!(
        w.poll("p/product", &up.url(), &["main", "v*"]).unwrap(),
        vec![]
    );

    // Down again, and a commit and a tag land meanwhile.
    w.restart();
    let c3 = up.commit("b");
    up.git(&["tag", "v2"]);
    w.restart();
    assert_eq!(
        w.poll("p/product", &up.url(), &["main", "v*"]).unwrap(),
        vec![
            change(
                "refs/heads/main",
                ChangeKind::Advanced,
                Some(&c2),
                Some(&c3)
            ),
            change("refs/tags/v2", ChangeKind::Created, None, Some(&c3)),
        ]
    );
    w.restart();
    assert_eq!(
        w.poll("p/product", &up.url(), &["main", "v*"]).unwrap(),
        vec![]
    );
}

#[test]
fn a_change_outside_the_path_filters_does_nothing() {
    let mut up = Upstream::new();
    let c1 = up.commit("src/lib.rs");
    let w = Watcher::new();
    w.poll("p/product", &up.url(), &["main"]).unwrap();
    let filters = vec![PathFilter::parse("src/**").unwrap()];

    let c2 = up.commit("docs/guide.md");
    let changes = w.poll("p/product", &up.url(), &["main"]).unwrap();
    assert_eq!(changes.len(), 1);
    let mirror = w.mirror(&up.url()).unwrap();
    let paths = mirror.changed_paths(Some(&c1), &c2).unwrap();
    assert_eq!(paths, vec!["docs/guide.md".to_string()]);
    assert_eq!(classify(Role::Product, &paths, &filters), Action::Nothing);

    let c3 = up.commit("src/deep/er/mod.rs");
    w.poll("p/product", &up.url(), &["main"]).unwrap();
    let paths = mirror.changed_paths(Some(&c2), &c3).unwrap();
    assert_eq!(paths, vec!["src/deep/er/mod.rs".to_string()]);
    assert_eq!(
        classify(Role::Product, &paths, &filters),
        Action::RunPipeline
    );
    assert_eq!(
        classify(Role::Tools, &paths, &filters),
        Action::RerunScenarios
    );
    assert_eq!(
        classify(Role::Data, &paths, &filters),
        Action::RegenerateData
    );

    // A deleted file is a changed path too.
    up.git(&["rm", "-q", "src/lib.rs"]);
    up.git(&["commit", "-q", "-m", "remove"]);
    let c4 = up.head();
    w.poll("p/product", &up.url(), &["main"]).unwrap();
    assert_eq!(
        mirror.changed_paths(Some(&c3), &c4).unwrap(),
        vec!["src/lib.rs".to_string()]
    );
}

#[test]
fn two_keys_on_one_url_share_the_mirror_but_not_the_tips() {
    let mut up = Upstream::new();
    up.commit("a");
    let w = Watcher::new();
    w.poll("a/product", &up.url(), &["main"]).unwrap();
    w.poll("b/product", &up.url(), &["main"]).unwrap();
    up.commit("a");
    assert_eq!(w.poll("a/product", &up.url(), &["main"]).unwrap().len(), 1);
    // The mirror already has the commit; pipeline b still sees it as new.
    assert_eq!(w.poll("b/product", &up.url(), &["main"]).unwrap().len(), 1);
}

#[test]
fn an_empty_repository_is_seen_and_its_first_branch_is_new() {
    let mut up = Upstream::new();
    let w = Watcher::new();
    assert_eq!(w.poll("p/product", &up.url(), &["main"]).unwrap(), vec![]);
    assert_eq!(w.tips("p/product"), Some(BTreeMap::new()));
    let c1 = up.commit("a");
    assert_eq!(
        w.poll("p/product", &up.url(), &["main"]).unwrap(),
        vec![change(
            "refs/heads/main",
            ChangeKind::Created,
            None,
            Some(&c1)
        )]
    );
}
