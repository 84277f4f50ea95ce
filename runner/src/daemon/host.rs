//! Running a daemon as a host's process: its settings, its secret, a small runtime, and
//! a stop on Ctrl-C or SIGTERM. Shared by `lowtouch daemon` and the lean
//! `lowtouch-daemon` binary (`src/bin/lowtouch-daemon.rs`), which links only this part of
//! lowtouch — no git, store or HTTP — so a host carries a small process.

use std::path::PathBuf;
use std::time::Duration;

use crate::process::interrupt;

/// A host daemon's settings, as either command line gives them.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// `HOST:PORT` of the router.
    pub server: String,
    pub name: String,
    pub environment: String,
    /// A file with the environment's daemon secret; `LOWTOUCH_DAEMON_SECRET` otherwise.
    pub secret_file: Option<PathBuf>,
    /// Observations kept while the router is away.
    pub buffer: usize,
}

/// Why a daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Bad settings: exit 2.
    #[error("{0}")]
    Input(String),
    /// The machine would not let it run: exit 3.
    #[error("{0}")]
    Infra(String),
}

/// Runs the daemon until Ctrl-C or SIGTERM.
pub fn run(settings: &HostSettings) -> Result<(), HostError> {
    let signals = interrupt::install();
    let secret = match &settings.secret_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| HostError::Input(format!("--secret-file {}: {e}", path.display())))?
            .trim()
            .as_bytes()
            .to_vec(),
        None => std::env::var("LOWTOUCH_DAEMON_SECRET")
            .map_err(|_| {
                HostError::Input(
                    "no daemon secret: give --secret-file PATH or set LOWTOUCH_DAEMON_SECRET \
                     (the same as the server's)"
                        .into(),
                )
            })?
            .into_bytes(),
    };
    crate::net::auth::check_secret(&secret).map_err(|e| HostError::Input(e.to_string()))?;
    if !settings.server.contains(':') {
        return Err(HostError::Input(format!(
            "--server {}: give HOST:PORT, for example 127.0.0.1:7471",
            settings.server
        )));
    }
    let options = super::Options {
        server: settings.server.clone(),
        name: settings.name.clone(),
        environment: settings.environment.clone(),
        secret,
        outbox_capacity: settings.buffer,
        dead_after: Duration::from_secs(3),
        max_backoff: Duration::from_secs(5),
        stop: crate::process::control::RunControl::new(signals),
    };
    // Small on purpose: one thread for the connection, one for the collectors.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HostError::Infra(format!("cannot start the daemon's runtime: {e}")))?;
    crate::errln!(
        "lowtouch daemon {} ({}): dialling {}",
        settings.name,
        settings.environment,
        settings.server
    );
    runtime.block_on(super::run(options, async {
        while !signals.received() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }));
    crate::errln!("lowtouch daemon {}: stopped", settings.name);
    Ok(())
}
