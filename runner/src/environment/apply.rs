//! Applying an environment's rendered state: render its templates (secrets filled in) and
//! plan its test data before anything is written, commit the public state (secrets as
//! placeholders, plus the data's content hashes) to the config history, then generate the
//! data, write the runtime copy, and remember which commit it came from. Also: previewing
//! that as a diff against what the runtime copy came from, and the rollout's way back —
//! a snapshot of the runtime copy taken before applying, restored byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::environment::Environment;
use super::history::{History, HistoryError, State};
use super::render::{self, Revisions};
use crate::source::Finding;
use crate::testdata;

/// The history file that records the generated data's content hashes.
pub const DATA_LOCK: &str = "data.lock";
/// The runtime file naming the config commit the runtime copy came from.
pub const MARKER: &str = "config-commit";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{} problem{} in templates or test data", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Input(Vec<Finding>),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("{0}")]
    Io(String),
}

impl ApplyError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ApplyError::Input(_) => 2,
            ApplyError::History(h) if h.is_bad_input() => 2,
            _ => 3,
        }
    }
}

/// What applying did.
#[derive(Debug)]
pub struct Applied {
    /// Each rendered file and whether its public text changed against the previous state.
    pub files: Vec<(String, bool)>,
    pub data: Vec<testdata::Outcome>,
    /// The config commit; `None` for an export (`render --out`), which history does not see.
    pub state: Option<State>,
}

/// What applying would change against what the runtime copy came from.
#[derive(Debug)]
pub struct Preview {
    /// The commit compared against: the runtime copy's, else the branch's tip.
    pub base: Option<String>,
    /// Per file: the previous and the new public text.
    pub changes: Vec<(String, Option<String>, Option<String>)>,
    pub data: Vec<testdata::Outcome>,
}

impl Preview {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.data.iter().all(|d| !d.generated)
    }
}

/// Whether the environment has anything to render at all.
pub fn renders(env: &Environment) -> bool {
    !env.templates.is_empty() || !env.data.is_empty()
}

fn public_files(
    rendered: &[render::Rendered],
    data: &[testdata::Outcome],
) -> BTreeMap<String, String> {
    let mut files: BTreeMap<String, String> = rendered
        .iter()
        .map(|r| (r.dest.clone(), r.public.clone()))
        .collect();
    if !data.is_empty() {
        files.insert(DATA_LOCK.to_string(), testdata::manifest_text(data));
    }
    files
}

/// Applies the environment's state to `runtime_dir`. With `commit`, the state goes into
/// the config history first (an export to another directory passes `false`).
pub fn apply(
    env: &Environment,
    runtime_dir: &Path,
    history: &History,
    revisions: &Revisions,
    commit: bool,
) -> Result<Applied, ApplyError> {
    if commit {
        history.check_not_diverged(&env.name, runtime_dir)?;
    }
    // Everything that can fail on bad input fails here, before anything is written.
    let data_dir = runtime_dir.join("data");
    let planned = testdata::plan(&env.data, &data_dir).map_err(ApplyError::Input)?;
    let rendered = render::render(env, revisions, runtime_dir, true).map_err(ApplyError::Input)?;
    let previous = match history.applied(runtime_dir) {
        Some(c) => history.files(&env.name, Some(&c))?,
        None => history.files(&env.name, None)?,
    };
    let state = if commit {
        let files = public_files(&rendered, &planned);
        Some(history.commit(
            &env.name,
            &files,
            &format!("render {}", env.name),
            revisions,
        )?)
    } else {
        None
    };
    let data = testdata::apply(&env.data, &data_dir).map_err(ApplyError::Input)?;
    for r in &rendered {
        let text = r.runtime.as_deref().unwrap_or(&r.public);
        write_file(runtime_dir, &r.dest, text, text != r.public)?;
    }
    if let Some(s) = &state {
        write_file(runtime_dir, MARKER, &format!("{}\n", s.commit), false)?;
    }
    let changed = rendered
        .iter()
        .map(|r| (r.dest.clone(), previous.get(&r.dest) != Some(&r.public)))
        .collect();
    Ok(Applied {
        files: changed,
        data,
        state,
    })
}

pub fn preview(
    env: &Environment,
    runtime_dir: &Path,
    history: &History,
    revisions: &Revisions,
) -> Result<Preview, ApplyError> {
    history.check_not_diverged(&env.name, runtime_dir)?;
    let data = testdata::plan(&env.data, &runtime_dir.join("data")).map_err(ApplyError::Input)?;
    let rendered = render::render(env, revisions, runtime_dir, false).map_err(ApplyError::Input)?;
    let base = match history.applied(runtime_dir) {
        Some(c) => Some(c),
        None => history.tip(&env.name)?.map(|o| o.to_string()),
    };
    let previous = match &base {
        Some(c) => history.files(&env.name, Some(c))?,
        None => BTreeMap::new(),
    };
    let next = public_files(&rendered, &data);
    let mut changes = Vec::new();
    let names: std::collections::BTreeSet<&String> = previous.keys().chain(next.keys()).collect();
    for name in names {
        let (old, new) = (previous.get(name), next.get(name));
        if old != new {
            changes.push((name.clone(), old.cloned(), new.cloned()));
        }
    }
    Ok(Preview {
        base,
        changes,
        data,
    })
}

/// The runtime copy as it was before a rollout touched it, kept aside to go back to.
#[derive(Debug)]
pub struct Snapshot {
    dir: PathBuf,
    /// The runtime-relative files that existed (rendered files, the marker, data files).
    files: Vec<String>,
    /// The config commit the runtime copy came from.
    pub base: Option<String>,
}

impl Snapshot {
    /// The rollout went through: the copy is not needed.
    pub fn discard(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies the environment's rendered files, data and marker aside, under `scratch`.
pub fn snapshot(
    env: &Environment,
    runtime_dir: &Path,
    history: &History,
    scratch: &Path,
) -> Result<Snapshot, ApplyError> {
    let io = |e: std::io::Error| {
        ApplyError::Io(format!(
            "cannot keep a copy of {}: {e}",
            runtime_dir.display()
        ))
    };
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).map_err(io)?;
    let mut files = Vec::new();
    for rel in owned_files(env, runtime_dir) {
        let from = runtime_dir.join(&rel);
        if from.is_file() {
            let to = scratch.join(&rel);
            if let Some(p) = to.parent() {
                std::fs::create_dir_all(p).map_err(io)?;
            }
            std::fs::copy(&from, &to).map_err(io)?;
            files.push(rel);
        }
    }
    Ok(Snapshot {
        dir: scratch.to_path_buf(),
        files,
        base: history.applied(runtime_dir),
    })
}

/// The runtime files lowtouch renders or generates for `env` (not component output).
fn owned_files(env: &Environment, runtime_dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = env.templates.iter().map(|t| t.dest.clone()).collect();
    out.push(MARKER.to_string());
    if let Ok(entries) = std::fs::read_dir(runtime_dir.join("data")) {
        for e in entries.flatten() {
            if e.path().is_file() {
                out.push(format!("data/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Puts a snapshot back: the runtime copy byte for byte as it was (secrets, data and
/// all), and in the history a new commit with the previous state (history is never
/// rewritten). When there was no previous state, the branch is taken away (its tip kept
/// under `refs/lowtouch/failed/`), so the next rollout sees the change again.
pub fn restore(
    env: &Environment,
    runtime_dir: &Path,
    history: &History,
    snap: &Snapshot,
    reason: &str,
    revisions: &Revisions,
) -> Result<Option<State>, ApplyError> {
    let io = |e: std::io::Error| {
        ApplyError::Io(format!("cannot restore {}: {e}", runtime_dir.display()))
    };
    for rel in owned_files(env, runtime_dir) {
        if !snap.files.contains(&rel) {
            let _ = std::fs::remove_file(runtime_dir.join(&rel));
        }
    }
    for rel in &snap.files {
        let to = runtime_dir.join(rel);
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(io)?;
        }
        let tmp = to.with_extension("lowtouch-tmp");
        std::fs::copy(snap.dir.join(rel), &tmp).map_err(io)?;
        std::fs::rename(&tmp, &to).map_err(io)?;
    }
    let state = match &snap.base {
        Some(base) => {
            let files = history.files(&env.name, Some(base))?;
            let short = &base[..base.len().min(12)];
            let state = history.commit(
                &env.name,
                &files,
                &format!("restore {short} on {}: {reason}", env.name),
                revisions,
            )?;
            write_file(runtime_dir, MARKER, &format!("{}\n", state.commit), false)?;
            Some(state)
        }
        None => {
            let keep = format!("{}-{}", env.name, crate::clock::new_run_id());
            history.drop_branch(&env.name, &keep)?;
            None
        }
    };
    let _ = std::fs::remove_dir_all(&snap.dir);
    Ok(state)
}

/// Writes atomically (temp file, then rename); files holding secrets are private.
fn write_file(dir: &Path, dest: &str, text: &str, secret: bool) -> Result<(), ApplyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(dest);
    let io = |e: std::io::Error| ApplyError::Io(format!("cannot write {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("lowtouch-tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}
