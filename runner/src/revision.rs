//! The revision under test: the project's git commit, `-dirty` when the work tree has
//! uncommitted changes, or `unversioned-<hash of the inputs>` outside a git checkout.
//!
//! One `git describe` answers both questions (commit and dirtiness); it runs on a thread
//! of its own while the run starts, so it costs no wall time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

pub struct Pending(JoinHandle<Option<String>>);

/// Starts finding the project's commit in the background.
pub fn detect(project: &Path) -> Pending {
    let project = project.to_path_buf();
    Pending(std::thread::spawn(move || git_revision(&project)))
}

impl Pending {
    /// The revision; `inputs` are the files whose content names an unversioned run.
    pub fn resolve<'a>(self, inputs: impl IntoIterator<Item = &'a str>) -> String {
        match self.0.join().ok().flatten() {
            Some(rev) => rev,
            None => unversioned(inputs),
        }
    }
}

fn git_revision(project: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(project)
        // A pattern no tag matches: always the full commit id, with -dirty when dirty.
        .args([
            "describe",
            "--always",
            "--dirty",
            "--abbrev=40",
            "--match=^lowtouch-no-tag^",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!rev.is_empty()).then_some(rev)
}

/// The texts that name an unversioned project: every pipeline, environment, template,
/// test-data and scenario file, in path order. One definition for every command.
pub fn project_inputs(project: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["pipelines", "environments", "templates", "testdata"] {
        collect(&project.join(dir), &mut files);
    }
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

pub fn unversioned<'a>(inputs: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for text in inputs {
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("unversioned-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unversioned_hash_is_stable_and_input_sensitive() {
        let a = unversioned(["x", "y"]);
        assert_eq!(a, unversioned(["x", "y"]));
        assert_ne!(a, unversioned(["xy"]));
        assert!(a.starts_with("unversioned-") && a.len() == "unversioned-".len() + 12);
    }
}
