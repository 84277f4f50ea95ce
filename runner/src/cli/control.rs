//! A tester's control of the environments: `lowtouch status`, `pause`/`resume`,
//! `lock`/`unlock`, `cancel`. Pausing or locking an environment keeps the server (`serve`,
//! `poll`) off it; a person's own `lowtouch run` still goes ahead, with a note.
//!
//! These work on the store. While `lowtouch serve` runs it holds the store, and these run
//! inside it, asked through its local API ([`crate::api`]).

use clap::Args;

use crate::app::{App, Error};

#[derive(Debug, Clone, Args)]
pub struct EnvArg {
    /// The environment (`environments/NAME.yaml`).
    pub env: String,
}

#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// The environment (`environments/NAME.yaml`).
    pub env: String,
    /// Why: what you are doing with it (shown by `lowtouch status`).
    #[arg(long)]
    pub reason: String,
    /// Who holds it [default: $USER].
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CancelArgs {
    /// The run's id (`lowtouch status` and `lowtouch history` show it).
    pub run: String,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// The server's last 50 webhook deliveries: id, event, repository, ref, outcome.
    #[arg(long)]
    pub deliveries: bool,
}

/// `pause` and `resume`.
pub fn pause(app: &App, args: &EnvArg, paused: bool) -> Result<i32, Error> {
    app.pause(&args.env, paused)?;
    let what = if paused {
        "paused: nothing is scheduled on it"
    } else {
        "resumed"
    };
    crate::outln!("{} {what}", args.env);
    Ok(0)
}

pub fn lock(app: &App, args: &LockArgs) -> Result<i32, Error> {
    let lock = app.lock(&args.env, args.by.clone(), &args.reason)?;
    crate::outln!("{} locked by {}: {}", args.env, lock.by, lock.reason);
    Ok(0)
}

pub fn unlock(app: &App, args: &EnvArg) -> Result<i32, Error> {
    match app.unlock(&args.env)? {
        Some(l) => crate::outln!(
            "{} unlocked (was locked by {}: {})",
            args.env,
            l.by,
            l.reason
        ),
        None => crate::outln!("{} was not locked", args.env),
    }
    Ok(0)
}

pub fn status(app: &App, args: &StatusArgs) -> Result<i32, Error> {
    if args.deliveries {
        let all = app.deliveries()?;
        crate::out!("{}", crate::report::status::deliveries(&all, args.json));
        return Ok(0);
    }
    let rows = app.environment_status()?;
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(0);
    }
    let server = app.activity().map(|a| {
        let now = a.get();
        crate::report::status::Server {
            doing: now.doing,
            queue: now.queue,
            daemons: app.network().map(|n| n.router.connected()),
        }
    });
    crate::out!("{}", crate::report::status::text(&rows, server.as_ref()));
    Ok(0)
}

/// `lowtouch cancel RUN`.
pub fn cancel(app: &App, args: &CancelArgs) -> Result<i32, Error> {
    match app.cancel(&args.run)? {
        Ok(lease) => {
            crate::outln!(
                "cancelling run {} ({} on {}): its step is stopped, teardown runs, it is stored as interrupted",
                lease.run_id,
                lease.pipelines.join(", "),
                lease.environment
            );
            Ok(0)
        }
        Err(run) => {
            crate::errln!(
                "run {} is not running: it is {}",
                run.id,
                run.status.as_str()
            );
            Ok(crate::app::exit::FAILED)
        }
    }
}
