//! `lowtouch init`: a starting project — an environment, a pipeline, a scenario and a
//! `.gitignore` — that `lowtouch check` passes and `lowtouch run` runs green, to be
//! edited into one's own. Nothing that exists is overwritten. The JSON Schemas of its
//! two kinds of file go to `.lowtouch/schema/`, where the files' first lines point
//! editors (docs/reference.md, "In your editor").

use std::path::Path;

use super::Error;

/// The files of a new project, relative to its root.
const FILES: &[(&str, &str)] = &[
    (
        "environments/local.yaml",
        r##"# yaml-language-server: $schema=../.lowtouch/schema/environment.schema.json
# The environment the scenarios run against: its hosts, variables, components (how
# each is started, stopped, found and known to be ready) and aliases (commands the
# scenarios call). README: Pipelines and environments.
description: This machine
variables:
  greeting: hello
components:
  # A long-running process of the system under test; `start`/`stop`/`kill -9` in a
  # scenario act on it, and the steady state below starts it before each scenario.
  server:
    start: [sleep, "3600"]
steady_state:
  components: [server]
aliases:
  greet:
    description: say hello (a program and its arguments, never a shell)
    run: [echo, "#{greeting}"]
"##,
    ),
    (
        "pipelines/main.yaml",
        r#"# yaml-language-server: $schema=../.lowtouch/schema/pipeline.schema.json
# A pipeline: which environment, which scenarios, and the hooks around them.
# `lowtouch run` runs the pipelines marked `default: true`.
name: main
default: true
environment: local
scenarios:
  - main/hello.scn
"#,
    ),
    (
        "pipelines/main/hello.scn",
        r##"# A scenario: one step a line (README: Scenarios).
set said greet
assert #{said} == 'hello' "the alias greets"
kill -9 server
"##,
    ),
    (
        ".gitignore",
        "# lowtouch's store, runtime files and reports\n.lowtouch/\nreports/\n",
    ),
];

/// Writes a starting project into `dir` (made if missing); says what it wrote and what
/// next. Refuses, writing nothing, when any of the files exists.
pub fn init(dir: &Path) -> Result<String, Error> {
    let existing: Vec<String> = FILES
        .iter()
        .filter(|(rel, _)| dir.join(rel).exists())
        .map(|(rel, _)| rel.to_string())
        .collect();
    if !existing.is_empty() {
        return Err(Error::input(format!(
            "{} has a project already ({} exist); nothing was written",
            dir.display(),
            existing.join(", ")
        )));
    }
    let mut written = Vec::new();
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::infra(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Error::infra(format!("cannot write {}: {e}", path.display())))?;
        written.push(format!("wrote {}", path.display()));
    }
    let schemas = dir.join(".lowtouch").join("schema");
    std::fs::create_dir_all(&schemas)
        .map_err(|e| Error::infra(format!("cannot create {}: {e}", schemas.display())))?;
    for kind in crate::schema::Kind::ALL {
        let path = schemas.join(format!("{}.schema.json", kind.name()));
        std::fs::write(&path, crate::schema::schema_text(kind))
            .map_err(|e| Error::infra(format!("cannot write {}: {e}", path.display())))?;
        written.push(format!("wrote {}", path.display()));
    }
    written.push(format!(
        "next: `lowtouch check`, then `lowtouch run` (in {})",
        dir.display()
    ));
    Ok(written.join("\n"))
}
