//! A daemon's configuration, made by the management server from the environment: the
//! components on the daemon's host (where their pid files and logs are, the log rules),
//! the collectors and their interval, and the commands it may run, rendered to programs
//! and arguments. What the daemon gets in `Configure`; it reads nothing of the project.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::environment::{AliasKind, Environment};
use crate::net::codec::{CommandSpec, ComponentWatch, DaemonConfig, ProbeConfig};
use crate::process::components::control_spec;

/// `ENVIRONMENT/DAEMON` → configuration, for every daemon `env` declares, with the
/// environment's own variables (what a server configures before any run). `state_dir` is
/// the project's `.lowtouch`, where runs keep components' pid files and logs.
pub fn for_environment(env: &Environment, state_dir: &Path) -> HashMap<String, DaemonConfig> {
    let env_dir = env.runtime_dir(state_dir);
    let vars = env.runtime_variables(&env_dir, "", []);
    let project = state_dir.parent().unwrap_or(state_dir);
    for_run(env, &env_dir, project, &vars)
}

/// The same, rendered with a run's variables (its candidate's builds, its overrides):
/// what a run sends its environment's daemons before its first step.
pub fn for_run(
    env: &Environment,
    env_dir: &Path,
    project: &Path,
    vars: &BTreeMap<String, String>,
) -> HashMap<String, DaemonConfig> {
    let mut out = HashMap::new();
    for daemon in env.daemons.values() {
        let mut components = Vec::new();
        for (name, c) in &env.components {
            let on_host = c.host.as_deref().is_none_or(|h| h == daemon.host);
            if !on_host {
                continue;
            }
            let log = c.log.as_ref().and_then(|t| t.render(vars).ok()).map(|p| {
                let p = std::path::PathBuf::from(p);
                if p.is_relative() { env_dir.join(p) } else { p }
            });
            let rules = daemon
                .logs
                .iter()
                .filter(|l| &l.component == name)
                .flat_map(|l| l.rules.iter())
                .map(|r| r.config(vars))
                .collect();
            components.push(ComponentWatch {
                name: name.clone(),
                pid_file: Some(env_dir.join(format!("{name}.pid")).display().to_string()),
                stop_marker: Some(
                    env_dir
                        .join(format!("{name}.stopping"))
                        .display()
                        .to_string(),
                ),
                log: log.map(|p| p.display().to_string()),
                rules,
                control: control_spec(c, env_dir, vars).ok(),
            });
        }
        let commands = daemon
            .allow
            .iter()
            .filter_map(|name| {
                let alias = env.aliases.get(name)?;
                let AliasKind::Run(argv) = &alias.kind else {
                    return None;
                };
                let argv: Option<Vec<String>> = argv.iter().map(|t| t.render(vars).ok()).collect();
                Some(CommandSpec {
                    name: name.clone(),
                    argv: argv?,
                })
            })
            .collect();
        out.insert(
            format!("{}/{}", env.name, daemon.name),
            DaemonConfig {
                interval_ms: daemon.interval.as_millis() as u64,
                collectors: daemon.collectors.clone(),
                components,
                commands,
                workdir: Some(project.display().to_string()),
                runtime_dir: Some(env_dir.display().to_string()),
                remove_env: env.secret_vars(),
                probes: daemon
                    .probes
                    .iter()
                    .filter_map(|p| {
                        Some(ProbeConfig {
                            component: p.component.clone(),
                            argv: p
                                .run
                                .iter()
                                .map(|t| t.render(vars).ok())
                                .collect::<Option<_>>()?,
                            every_ms: p.every.as_millis() as u64,
                            timeout_ms: p.timeout.as_millis() as u64,
                            rules: p.rules.iter().map(|r| r.config(vars)).collect(),
                        })
                    })
                    .collect(),
            },
        );
    }
    out
}
