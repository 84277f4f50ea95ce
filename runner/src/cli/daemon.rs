//! `lowtouch daemon`: the monitoring daemon of one host (see [`crate::daemon`]). It dials
//! the management server's router and runs until Ctrl-C or SIGTERM. The same daemon, in
//! a binary of its own for hosts: `lowtouch-daemon` (`daemon::host`).

use std::path::PathBuf;

use clap::Args;

use crate::app::Error;

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

pub fn daemon(args: &DaemonArgs) -> Result<i32, Error> {
    let settings = crate::daemon::host::HostSettings {
        server: args.server.clone(),
        name: args.name.clone(),
        environment: args.environment.clone(),
        secret_file: args.secret_file.clone(),
        buffer: args.buffer,
    };
    crate::daemon::host::run(&settings).map_err(|e| match e {
        crate::daemon::host::HostError::Input(m) => Error::input(m),
        crate::daemon::host::HostError::Infra(m) => Error::infra(m),
    })?;
    Ok(crate::app::exit::INTERRUPTED)
}
