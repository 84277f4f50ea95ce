//! The command line: clap definitions, one file per subcommand. Raw `*Args` are checked
//! into what the library needs; errors become [`CliError`]s with their exit code.

pub mod check;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod diff;
pub mod error;
pub mod history;
pub mod poll;
pub mod render;
pub mod rollout;
pub mod run;
pub mod serve;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

pub use error::CliError;

/// lowtouch — a Git-driven TestOps runner for production-like test environments.
///
/// Exit codes: 0 all good; 1 something failed (a scenario, a check finding);
/// 2 bad input, nothing ran; 3 infrastructure (store held, disk); 130 interrupted.
#[derive(Debug, Clone, Parser)]
#[command(name = "lowtouch", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Run as if started in DIR (the project root).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// The store [default: .lowtouch/db under the project].
    #[arg(long, global = true, value_name = "PATH", env = "LOWTOUCH_DB")]
    pub db: Option<PathBuf>,

    /// The config history repository [default: .lowtouch/config-history].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "LOWTOUCH_CONFIG_HISTORY"
    )]
    pub history: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run pipelines once (default: those marked `default: true`) and exit.
    Run(run::RunArgs),
    /// Validate pipelines, environments and scenarios against each other; runs nothing.
    Check(check::CheckArgs),
    /// List stored runs, newest first.
    History(history::HistoryArgs),
    /// Compare two runs (or the newest with its previous release): changes, diffs, metrics.
    Diff(diff::DiffArgs),
    /// Name a stored run a release (the baseline later runs are compared with).
    Release(diff::ReleaseArgs),
    /// Write a stored run's JUnit XML or a single-file HTML report.
    Report(diff::ReportArgs),
    /// Prune old runs (every release stays) and compact the store.
    Gc(diff::GcArgs),
    /// Render an environment's configs and test data; `--diff` shows what would change.
    Render(render::RenderArgs),
    /// Fetch the pipelines' repositories once and run what their new commits call for.
    Poll(poll::PollArgs),
    /// The long-running server: GitHub webhooks and a polling schedule start runs.
    Serve(serve::ServeArgs),
    /// The monitoring daemon of one host: dials the server's router, collects, obeys.
    Daemon(daemon::DaemonArgs),
    /// Roll changed configs out group by group, canary first, smoke-tested; restore on failure.
    Rollout(rollout::RolloutArgs),
    /// Each environment: idle, running what, paused or locked by whom; the last verdicts.
    Status(control::StatusArgs),
    /// Keep the server off an environment (a person may still run it).
    Pause(control::EnvArg),
    /// Let the server use a paused environment again.
    Resume(control::EnvArg),
    /// Take an environment for manual work: nothing is scheduled on it meanwhile.
    Lock(control::LockArgs),
    /// Give a locked environment back.
    Unlock(control::EnvArg),
    /// Stop a run in progress: its step is stopped, teardown runs, it is stored interrupted.
    Cancel(control::CancelArgs),
    /// The bundled demo exchange (engine, smoke, order, book, loadgen).
    #[command(hide = true, disable_help_flag = true)]
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

impl Cli {
    pub fn project(&self) -> Result<PathBuf, CliError> {
        let dir = match &self.chdir {
            Some(d) => d.clone(),
            None => {
                let cwd = std::env::current_dir()
                    .map_err(|e| CliError::infra(format!("no working directory: {e}")))?;
                // Like git and cargo: the nearest directory up that looks like a project.
                cwd.ancestors()
                    .find(|d| d.join("pipelines").is_dir() || d.join("environments").is_dir())
                    .map_or(cwd.clone(), Path::to_path_buf)
            }
        };
        if !dir.is_dir() {
            return Err(CliError::input(format!(
                "-C {}: not a directory",
                dir.display()
            )));
        }
        Ok(dir)
    }

    pub fn history_path(&self, project: &Path) -> PathBuf {
        match &self.history {
            Some(p) if p.is_relative() => project.join(p),
            Some(p) => p.clone(),
            None => project.join(".lowtouch").join("config-history"),
        }
    }

    pub fn db_path(&self, project: &Path) -> PathBuf {
        match &self.db {
            Some(p) if p.is_relative() => project.join(p),
            Some(p) => p.clone(),
            None => project.join(".lowtouch").join("db"),
        }
    }
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Check(_) => "check",
            Command::History(_) => "history",
            Command::Diff(_) => "diff",
            Command::Release(_) => "release",
            Command::Report(_) => "report",
            Command::Gc(_) => "gc",
            Command::Render(_) => "render",
            Command::Poll(_) => "poll",
            Command::Serve(_) => "serve",
            Command::Daemon(_) => "daemon",
            Command::Rollout(_) => "rollout",
            Command::Status(_) => "status",
            Command::Pause(_) => "pause",
            Command::Resume(_) => "resume",
            Command::Lock(_) => "lock",
            Command::Unlock(_) => "unlock",
            Command::Cancel(_) => "cancel",
            Command::Demo { .. } => "demo",
        }
    }
}

/// Runs the command: through a running server's local API when it is one the server
/// does (the server holds the store), else here. `argv` is the command line as typed,
/// without the program name.
pub fn dispatch(cli: &Cli, argv: Vec<String>) -> Result<i32, CliError> {
    if crate::api::FORWARDED.contains(&cli.command.name()) {
        let project = cli.project()?;
        let socket = crate::api::socket_path(&cli.db_path(&project));
        let request = crate::api::protocol::Request {
            argv,
            terminal_out: crate::console::is_terminal(crate::console::Stream::Out),
            terminal_err: crate::console::is_terminal(crate::console::Stream::Err),
        };
        if let Some(code) = crate::api::client::forward(&socket, &request)
            .map_err(|e| CliError::infra(e.to_string()))?
        {
            return Ok(code);
        }
    }
    execute(cli)
}

/// Reports a command's error on the console; returns the exit code.
pub fn finish(result: Result<i32, CliError>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e @ CliError::Findings(_)) => {
            crate::errln!("{e}");
            e.exit_code()
        }
        Err(e) => {
            crate::errln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Runs the command in this process.
pub fn execute(cli: &Cli) -> Result<i32, CliError> {
    match &cli.command {
        Command::Run(args) => run::run(cli, args),
        Command::Check(args) => check::check(cli, args),
        Command::History(args) => history::history(cli, args),
        Command::Diff(args) => diff::diff(cli, args),
        Command::Release(args) => diff::release(cli, args),
        Command::Report(args) => diff::report(cli, args),
        Command::Gc(args) => diff::gc(cli, args),
        Command::Render(args) => render::render(cli, args),
        Command::Poll(args) => poll::poll(cli, args),
        Command::Serve(args) => serve::serve(cli, args),
        Command::Daemon(args) => daemon::daemon(args),
        Command::Rollout(args) => rollout::rollout(cli, args),
        Command::Demo { args } => Ok(demo::demo(args)),
        Command::Status(args) => control::status(cli, args, None),
        Command::Pause(args) => control::pause(cli, args, true),
        Command::Resume(args) => control::pause(cli, args, false),
        Command::Lock(args) => control::lock(cli, args),
        Command::Unlock(args) => control::unlock(cli, args),
        Command::Cancel(args) => control::cancel(cli, args),
    }
}
