//! Applying an environment's rendered state: generate its test data, render its
//! templates into the runtime directory (secrets filled in), commit the public state
//! (secrets as placeholders, plus the data's content hashes) to the config history, and
//! remember which commit the runtime copy came from. Also: previewing that as a diff,
//! and restoring an earlier commit (the rollout's way back).

use std::collections::BTreeMap;
use std::path::Path;

use super::environment::Environment;
use super::history::{History, HistoryError, State};
use super::render::{self, Revisions, placeholder};
use crate::source::Finding;
use crate::testdata;

/// The history file that records the generated data's content hashes.
pub const DATA_LOCK: &str = "data.lock";

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
            ApplyError::Input(_) | ApplyError::History(HistoryError::NotARepository { .. }) => 2,
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
    pub state: State,
}

/// What applying would change: per file, the previous and the new public text.
#[derive(Debug)]
pub struct Preview {
    pub tip: Option<String>,
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

pub fn apply(
    env: &Environment,
    runtime_dir: &Path,
    history: &History,
    revisions: &Revisions,
) -> Result<Applied, ApplyError> {
    history.check_not_diverged(&env.name, runtime_dir)?;
    let data = testdata::apply(&env.data, &runtime_dir.join("data")).map_err(ApplyError::Input)?;
    let rendered = render::render(env, revisions, runtime_dir, true).map_err(ApplyError::Input)?;
    let previous = history.files(&env.name, None)?;
    for r in &rendered {
        let text = r.runtime.as_deref().unwrap_or(&r.public);
        write_file(runtime_dir, &r.dest, text, text != r.public)?;
    }
    let files = public_files(&rendered, &data);
    let state = history.commit(
        &env.name,
        &files,
        &format!("render {}", env.name),
        revisions,
    )?;
    write_file(
        runtime_dir,
        "config-commit",
        &format!("{}\n", state.commit),
        false,
    )?;
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
    let data = testdata::plan(&env.data, &runtime_dir.join("data")).map_err(ApplyError::Input)?;
    let rendered = render::render(env, revisions, runtime_dir, false).map_err(ApplyError::Input)?;
    let tip = history.tip(&env.name)?.map(|o| o.to_string());
    let previous = history.files(&env.name, None)?;
    let next = public_files(&rendered, &data);
    let mut changes = Vec::new();
    for name in previous
        .keys()
        .chain(next.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (old, new) = (previous.get(name), next.get(name));
        if old != new {
            changes.push((name.clone(), old.cloned(), new.cloned()));
        }
    }
    Ok(Preview { tip, changes, data })
}

/// Makes `commit`'s state the environment's state again: a new commit with its files
/// (history is never rewritten), and the runtime copy rewritten from them with the
/// secrets filled back in.
pub fn restore(
    env: &Environment,
    runtime_dir: &Path,
    history: &History,
    commit: &str,
    reason: &str,
    revisions: &Revisions,
) -> Result<State, ApplyError> {
    let files = history.files(&env.name, Some(commit))?;
    let mut secrets = BTreeMap::new();
    for (name, secret) in &env.secrets {
        let value = secret.resolve().map_err(|e| {
            ApplyError::Input(vec![Finding::file(
                &env.file.path,
                format!("secret `{name}` has no value: {e}"),
            )])
        })?;
        secrets.insert(placeholder(name), value);
    }
    for (dest, text) in &files {
        if dest == DATA_LOCK {
            continue;
        }
        let mut real = text.clone();
        for (ph, value) in &secrets {
            real = real.replace(ph, value);
        }
        write_file(runtime_dir, dest, &real, real != *text)?;
    }
    let short = &commit[..commit.len().min(12)];
    let state = history.commit(
        &env.name,
        &files,
        &format!("restore {short} on {}: {reason}", env.name),
        revisions,
    )?;
    write_file(
        runtime_dir,
        "config-commit",
        &format!("{}\n", state.commit),
        false,
    )?;
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
