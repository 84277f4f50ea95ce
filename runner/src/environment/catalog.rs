//! What a scenario's command names resolve to in one environment: aliases first, then
//! plugins (`lowtouch-NAME` executables in the tool directories), as DESIGN.md orders it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::environment::{Alias, CONTEXT_VARS, Environment};
use crate::scenario::check::Catalog;

/// Plugins found in the tool directories, scanned once per run.
#[derive(Debug, Default, Clone)]
pub struct Tools {
    pub dirs: Vec<PathBuf>,
    pub plugins: BTreeMap<String, PathBuf>,
}

impl Tools {
    /// Scans `dirs` in order; the first directory that has a plugin wins.
    pub fn scan(dirs: Vec<PathBuf>) -> Tools {
        let mut plugins = BTreeMap::new();
        for dir in &dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut found: Vec<(String, PathBuf)> = entries
                .flatten()
                .filter_map(|e| {
                    let name = e
                        .file_name()
                        .to_str()?
                        .strip_prefix("lowtouch-")?
                        .to_string();
                    let path = e.path();
                    is_executable(&path).then_some((name, path))
                })
                .collect();
            found.sort();
            for (name, path) in found {
                plugins.entry(name).or_insert(path);
            }
        }
        Tools { dirs, plugins }
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What one command name means.
pub enum Resolved<'a> {
    Alias(&'a Alias),
    Plugin(&'a Path),
}

/// An environment plus its tools: the [`Catalog`] scenarios are checked against.
pub struct Resolver<'a> {
    pub env: &'a Environment,
    pub tools: &'a Tools,
    /// Extra variables known before the scenario starts (positional `1`, `2`… in alias steps).
    pub extra_vars: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(env: &'a Environment, tools: &'a Tools) -> Self {
        Resolver {
            env,
            tools,
            extra_vars: Vec::new(),
        }
    }

    pub fn resolve(&self, name: &str) -> Option<Resolved<'a>> {
        if let Some(alias) = self.env.aliases.get(name) {
            return Some(Resolved::Alias(alias));
        }
        self.tools
            .plugins
            .get(name)
            .map(|p| Resolved::Plugin(p.as_path()))
    }
}

impl Catalog for Resolver<'_> {
    fn variable_names(&self) -> Vec<String> {
        self.env
            .variables
            .keys()
            .cloned()
            .chain(CONTEXT_VARS.iter().map(|v| v.to_string()))
            .chain(self.extra_vars.iter().cloned())
            .collect()
    }

    fn has_command(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    fn command_names(&self) -> Vec<String> {
        self.env
            .aliases
            .keys()
            .chain(self.tools.plugins.keys())
            .cloned()
            .collect()
    }

    fn has_component(&self, name: &str) -> bool {
        self.env.components.contains_key(name)
    }

    fn component_names(&self) -> Vec<String> {
        self.env.components.keys().cloned().collect()
    }

    fn has_variable(&self, name: &str) -> bool {
        self.env.variables.contains_key(name)
            || CONTEXT_VARS.contains(&name)
            || self.extra_vars.iter().any(|v| v == name)
    }
}
