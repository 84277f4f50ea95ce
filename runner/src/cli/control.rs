//! A tester's control of the environments: `lowtouch status`, `pause`/`resume`,
//! `lock`/`unlock`, `cancel`. Pausing or locking an environment keeps the server (`serve`,
//! `poll`) off it; a person's own `lowtouch run` still goes ahead, with a note.
//!
//! These work on the store. While `lowtouch serve` runs it holds the store, and these run
//! inside it, asked through its local API ([`crate::api`]).

use clap::Args;

use super::{Cli, CliError};
use crate::api::ActivitySnapshot;
use crate::clock;
use crate::environment::Environment;
use crate::scenario::diagnostic::did_you_mean;
use crate::store::control::EnvLock;
use crate::store::{SCHEMA_VERSION, Store};

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
}

fn known(project: &std::path::Path, env: &str) -> Result<(), CliError> {
    let names = Environment::names(project);
    if names.iter().any(|n| n == env) {
        return Ok(());
    }
    let hint = match did_you_mean(env, names.iter().map(String::as_str)) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("environments: {}", names.join(", ")),
    };
    Err(CliError::input(format!(
        "no environment named `{env}`; {hint}"
    )))
}

/// `pause` and `resume`.
pub fn pause(cli: &Cli, args: &EnvArg, paused: bool) -> Result<i32, CliError> {
    let project = cli.project()?;
    known(&project, &args.env)?;
    let store = Store::open(&cli.db_path(&project))?;
    let mut c = store.control(&args.env)?;
    c.v = SCHEMA_VERSION;
    c.paused = paused;
    c.paused_at = paused.then(clock::now);
    store.set_control(&args.env, &c)?;
    crate::outln!(
        "{} {}",
        args.env,
        if paused {
            "paused: nothing is scheduled on it"
        } else {
            "resumed"
        }
    );
    Ok(0)
}

pub fn lock(cli: &Cli, args: &LockArgs) -> Result<i32, CliError> {
    let project = cli.project()?;
    known(&project, &args.env)?;
    let store = Store::open(&cli.db_path(&project))?;
    let mut c = store.control(&args.env)?;
    if let Some(l) = &c.lock {
        return Err(CliError::input(format!(
            "{} is already locked by {} since {}: {}; `lowtouch unlock {}` first",
            args.env, l.by, l.since, l.reason, args.env
        )));
    }
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "someone".into());
    c.v = SCHEMA_VERSION;
    c.lock = Some(EnvLock {
        by: by.clone(),
        reason: args.reason.clone(),
        since: clock::now(),
    });
    store.set_control(&args.env, &c)?;
    crate::outln!("{} locked by {by}: {}", args.env, args.reason);
    Ok(0)
}

pub fn unlock(cli: &Cli, args: &EnvArg) -> Result<i32, CliError> {
    let project = cli.project()?;
    known(&project, &args.env)?;
    let store = Store::open(&cli.db_path(&project))?;
    let mut c = store.control(&args.env)?;
    match c.lock.take() {
        Some(l) => {
            store.set_control(&args.env, &c)?;
            crate::outln!(
                "{} unlocked (was locked by {}: {})",
                args.env,
                l.by,
                l.reason
            );
        }
        None => crate::outln!("{} was not locked", args.env),
    }
    Ok(0)
}

/// `server`: what the server is doing, when `status` runs inside one (through its
/// local API).
pub fn status(
    cli: &Cli,
    args: &StatusArgs,
    server: Option<&ActivitySnapshot>,
) -> Result<i32, CliError> {
    let project = cli.project()?;
    let store = Store::open(&cli.db_path(&project))?;
    let leases = store.leases()?;
    let runs = store.runs(200)?;
    let mut rows = Vec::new();
    for env in Environment::names(&project) {
        let control = store.control(&env)?;
        let lease = leases.iter().find(|l| l.environment == env);
        let state = match (lease, control.hold()) {
            (Some(l), _) => format!(
                "running {} (run {}, pid {})",
                l.pipelines.join(", "),
                l.run_id,
                l.pid
            ),
            (None, Some(hold)) => hold,
            (None, None) => "idle".to_string(),
        };
        let last = runs.iter().find(|r| r.environments.contains(&env));
        rows.push(serde_json::json!({
            "environment": env,
            "state": state,
            "paused": control.paused,
            "lock": control.lock,
            "lease": lease,
            "last_run": last.map(|r| serde_json::json!({
                "id": r.id, "status": r.status, "passed": r.passed, "failed": r.failed,
                "revision": r.revision, "started_at": r.started_at,
            })),
        }));
    }
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(0);
    }
    crate::outln!("{:<12} {:<60} LAST RUN", "ENVIRONMENT", "STATE");
    for r in &rows {
        let last = match &r["last_run"] {
            serde_json::Value::Null => "-".to_string(),
            l => format!(
                "{} {} ({} passed, {} failed)",
                l["id"].as_str().unwrap_or(""),
                l["status"].as_str().unwrap_or(""),
                l["passed"],
                l["failed"]
            ),
        };
        crate::outln!(
            "{:<12} {:<60} {last}",
            r["environment"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or("")
        );
    }
    match server {
        Some(a) => {
            crate::outln!("server: {}", a.doing);
            match crate::daemon::local::SERVER.get() {
                None => crate::outln!("daemons: the router is off (LOWTOUCH_DAEMON_SECRET unset)"),
                Some(network) => {
                    let connected = network.router.connected();
                    if connected.is_empty() {
                        crate::outln!("daemons: none connected");
                    }
                    for d in connected {
                        crate::outln!(
                            "daemon {}/{} from {}: {}{}",
                            d.environment,
                            d.name,
                            d.peer,
                            if d.configured {
                                "following its logs"
                            } else {
                                "configuring"
                            },
                            d.offset_us
                                .map(|(o, e)| format!(
                                    ", clock {:+.3} ms (±{:.3})",
                                    -o as f64 / 1000.0,
                                    e as f64 / 1000.0
                                ))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            if a.queue.is_empty() {
                crate::outln!("queue: empty");
            } else {
                crate::outln!("queue: {} waiting", a.queue.len());
                for q in &a.queue {
                    crate::outln!("  {q}");
                }
            }
        }
        None => crate::outln!("server: none running (`lowtouch serve` keeps the queue)"),
    }
    Ok(0)
}

/// `lowtouch cancel RUN`: the run must be in progress in this process — the server's,
/// when asked through its local API (a run started by `lowtouch run` holds the store
/// itself; Ctrl-C stops it).
pub fn cancel(cli: &Cli, args: &CancelArgs) -> Result<i32, CliError> {
    let project = cli.project()?;
    let store = Store::open(&cli.db_path(&project))?;
    if let Some(lease) = store.leases()?.into_iter().find(|l| l.run_id == args.run) {
        if lease.pid == std::process::id() && crate::execute::interrupt::cancel(&lease.run_id) {
            crate::outln!(
                "cancelling run {} ({} on {}): its step is stopped, teardown runs, it is stored as interrupted",
                lease.run_id,
                lease.pipelines.join(", "),
                lease.environment
            );
            return Ok(0);
        }
        if lease.pid != std::process::id() {
            return Err(CliError::infra(format!(
                "run {} belongs to process {}; stop it there (Ctrl-C, or kill -TERM {})",
                args.run, lease.pid, lease.pid
            )));
        }
    }
    match store.run(&args.run)? {
        Some(run) => {
            crate::errln!(
                "run {} is not running: it is {}",
                run.id,
                run.status.as_str()
            );
            Ok(super::error::exit::FAILED)
        }
        None => Err(CliError::input(format!(
            "no run `{}`; `lowtouch history` lists them",
            args.run
        ))),
    }
}
