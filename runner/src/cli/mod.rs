//! The command line: clap definitions, one file per subcommand. Each file turns its
//! arguments into a call on the application ([`crate::app`]) and prints the result;
//! errors are [`crate::app::Error`]s, whose kind gives the exit code.

pub mod check;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod diff;
pub mod docs;
pub mod history;
pub mod judge;
pub mod poll;
pub mod render;
pub mod rollout;
pub mod run;
pub mod serve;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::{App, Error, Project};
use crate::console::Sink;

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
    #[arg(long, global = true, value_name = "PATH")]
    #[arg(env = "LOWTOUCH_CONFIG_HISTORY")]
    pub history: Option<PathBuf>,

    /// When output gets colours [auto: on a terminal, unless NO_COLOR is set].
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t)]
    pub color: crate::console::ColorChoice,

    /// No live progress: only results, warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

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
    /// A run's verdict against comparable history: what regressed, by how much, how sure.
    Judge(judge::JudgeArgs),
    /// The runs a run is judged against, and why the others are not.
    Baseline(judge::BaselineArgs),
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
    /// Start a project here (or in DIR): an environment, a pipeline, a scenario, .gitignore
    Init { dir: Option<PathBuf> },
    /// Print the JSON Schema of environment or pipeline files (for editors), or --reference.
    Schema(docs::SchemaArgs),
    /// Print completions for a shell: `source <(lowtouch completions bash)`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (`lowtouch man > lowtouch.1; man ./lowtouch.1`).
    Man,
    /// The bundled demo exchange (engine, smoke, order, book, loadgen).
    #[command(hide = true, disable_help_flag = true)]
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

impl Cli {
    /// `sink` with what `--color` and `-q` ask of it.
    pub fn console(&self, sink: Arc<dyn Sink>) -> Arc<dyn Sink> {
        let (color, quiet) = (self.color, self.quiet);
        Arc::new(crate::console::Preferences {
            inner: sink,
            color,
            quiet,
        })
    }

    /// The project the flags name (`-C`, `--db`, `--history`), or the one around the
    /// working directory.
    pub fn project(&self) -> Result<Project, Error> {
        let root = Project::locate(self.chdir.as_deref(), self.db.is_some())?;
        Ok(Project::new(
            root,
            self.db.as_deref(),
            self.history.as_deref(),
        ))
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
            Command::Judge(_) => "judge",
            Command::Baseline(_) => "baseline",
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
            Command::Init { .. } => "init",
            Command::Schema(_) => "schema",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
        }
    }
}

/// Runs the command with the console its flags ask for (`--color`, `-q`).
pub fn dispatch(cli: &Cli, argv: Vec<String>) -> Result<i32, Error> {
    crate::console::capture(cli.console(crate::console::current()), || route(cli, argv))
}

/// Runs the command: through a running server's local API when it is one the server
/// does (the server holds the store), else here. `argv` is the command line as typed,
/// without the program name.
fn route(cli: &Cli, argv: Vec<String>) -> Result<i32, Error> {
    if crate::api::FORWARDED.contains(&cli.command.name()) {
        let socket = cli.project()?.socket();
        let request = crate::api::protocol::Request {
            argv,
            terminal_out: crate::console::is_terminal(crate::console::Stream::Out),
            terminal_err: crate::console::is_terminal(crate::console::Stream::Err),
        };
        if let Some(code) = crate::api::client::forward(&socket, &request)? {
            return Ok(code);
        }
    }
    match &cli.command {
        Command::Init { dir } => check::init(cli.chdir.as_deref(), dir.as_deref()),
        Command::Daemon(_) | Command::Demo { .. } | Command::Schema(_) => standalone(&cli.command),
        Command::Completions { .. } | Command::Man => standalone(&cli.command),
        _ => execute(&App::new(cli.project()?), &cli.command),
    }
}

/// `--set NAME=VALUE`, as clap parses it.
pub fn parse_set(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// Prints what a run came to (a summary, or JSON with `--json`); returns its exit code.
pub fn report_run(
    app: &App,
    json: bool,
    ran: Result<crate::app::Ran, Error>,
) -> Result<i32, Error> {
    let ran = ran?;
    if let crate::app::Ran::Done(outcome) = &ran {
        let finished = outcome.finished(app.store()?.run_count());
        if json {
            crate::outln!("{}", finished.json());
        } else {
            let style = crate::report::terminal::Style::of(crate::console::Stream::Out);
            crate::out!("{}", finished.text(style));
        }
    }
    Ok(ran.exit_code())
}

/// Reports a command's error on the console; returns the exit code.
pub fn finish(result: Result<i32, Error>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e @ Error::Findings(_)) => {
            crate::errln!("{e}");
            e.exit_code()
        }
        Err(e) => {
            crate::errln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Runs `command` with `app`: this process's, or a server's for a client of its local API.
pub fn execute(app: &App, command: &Command) -> Result<i32, Error> {
    match command {
        Command::Run(args) => run::run(app, args),
        Command::Check(args) => check::check(app, args),
        Command::History(args) => history::history(app, args),
        Command::Diff(args) => diff::diff(app, args),
        Command::Release(args) => diff::release(app, args),
        Command::Report(args) => diff::report(app, args),
        Command::Gc(args) => diff::gc(app, args),
        Command::Render(args) => render::render(app, args),
        Command::Poll(args) => poll::poll(app, args),
        Command::Serve(args) => serve::serve(app, args),
        Command::Rollout(args) => rollout::rollout(app, args),
        Command::Status(args) => control::status(app, args),
        Command::Pause(args) => control::pause(app, args, true),
        Command::Resume(args) => control::pause(app, args, false),
        Command::Lock(args) => control::lock(app, args),
        Command::Unlock(args) => control::unlock(app, args),
        Command::Cancel(args) => control::cancel(app, args),
        Command::Judge(args) => judge::judge(app, args),
        Command::Baseline(args) => judge::baseline(app, args),
        Command::Init { dir } => check::init(None, dir.as_deref()),
        other => standalone(other),
    }
}

/// The commands that need no project: the same anywhere.
fn standalone(command: &Command) -> Result<i32, Error> {
    match command {
        Command::Daemon(args) => daemon::daemon(args),
        Command::Demo { args } => Ok(demo::demo(args)),
        Command::Schema(args) => docs::schema(args),
        Command::Completions { shell } => docs::completions(*shell),
        Command::Man => docs::man(),
        other => Err(Error::input(format!(
            "`lowtouch {}` needs a project",
            other.name()
        ))),
    }
}
