//! `lowtouch daemon`: the monitoring daemon of one host (see [`crate::daemon`]). It dials
//! the management server's router and runs until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::execute::interrupt;

#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// The router to dial: `lowtouch serve`'s `--router` address.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: String,
    /// This daemon's name, as the environment's `daemons:` names it.
    #[arg(long)]
    pub name: String,
    /// The environment it belongs to (its secret is the environment's).
    #[arg(long, value_name = "ENV", default_value = "local")]
    pub environment: String,
    /// A file holding the environment's daemon secret [default: $LOWTOUCH_DAEMON_SECRET].
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// Observations kept while the router is away (the oldest are dropped past it, and
    /// the count reported).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub buffer: usize,
}

pub fn daemon(args: &DaemonArgs) -> Result<i32, CliError> {
    interrupt::install();
    let secret = match &args.secret_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::input(format!("--secret-file {}: {e}", path.display())))?
            .trim()
            .as_bytes()
            .to_vec(),
        None => std::env::var("LOWTOUCH_DAEMON_SECRET")
            .map_err(|_| {
                CliError::input(
                    "no daemon secret: give --secret-file PATH or set LOWTOUCH_DAEMON_SECRET \
                     (the same as the server's)",
                )
            })?
            .into_bytes(),
    };
    crate::net::auth::check_secret(&secret).map_err(CliError::input)?;
    if !args.server.contains(':') {
        return Err(CliError::input(format!(
            "--server {}: give HOST:PORT, for example 127.0.0.1:7471",
            args.server
        )));
    }
    let options = crate::daemon::Options {
        server: args.server.clone(),
        name: args.name.clone(),
        environment: args.environment.clone(),
        secret,
        outbox_capacity: args.buffer,
        dead_after: Duration::from_secs(3),
        max_backoff: Duration::from_secs(5),
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
        .map_err(|e| CliError::infra(format!("cannot start the daemon's runtime: {e}")))?;
    crate::errln!(
        "lowtouch daemon {} ({}): dialling {}",
        args.name,
        args.environment,
        args.server
    );
    runtime.block_on(crate::daemon::run(options, async {
        while !interrupt::shutdown() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }));
    crate::errln!("lowtouch daemon {}: stopped", args.name);
    Ok(super::error::exit::INTERRUPTED)
}
