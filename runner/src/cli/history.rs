//! `lowtouch history`: stored runs, newest first.

use std::time::Duration;

use clap::Args;

use super::{Cli, CliError};
use crate::report::terminal::Style;
use crate::scenario::duration::human;
use crate::store::Store;

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// How many runs to show.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    /// Only runs of this revision (a commit id, `<sha>-dirty`, `unversioned-…`).
    #[arg(long)]
    pub revision: Option<String>,
    /// Print the runs as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn history(cli: &Cli, args: &HistoryArgs) -> Result<i32, CliError> {
    let project = cli.project()?;
    let store = Store::open(&cli.db_path(&project))?;
    let runs = match &args.revision {
        Some(rev) => {
            let mut ids = store.runs_for_revision(rev)?;
            ids.reverse();
            let mut out = Vec::new();
            for id in ids.into_iter().take(args.limit) {
                out.extend(store.run(&id)?);
            }
            out
        }
        None => store.runs(args.limit)?,
    };
    if args.json {
        let text =
            serde_json::to_string_pretty(&runs).map_err(|e| CliError::infra(e.to_string()))?;
        crate::outln!("{text}");
        return Ok(0);
    }
    if runs.is_empty() {
        crate::errln!(
            "no runs stored in {} yet; start one with `lowtouch run`",
            store.path().display()
        );
        return Ok(0);
    }
    let style = Style::detect(crate::console::is_terminal(crate::console::Stream::Out));
    crate::outln!(
        "{:<26} {:<11} {:<20} {:<18} {:>6} {:>6} {:>6} {:>8}  STARTED",
        "RUN",
        "STATUS",
        "REVISION",
        "PIPELINES",
        "PASS",
        "FAIL",
        "SKIP",
        "TIME"
    );
    for run in &runs {
        let status = run.status.as_str();
        let status = match status {
            "passed" => style.green(&format!("{status:<11}")),
            "failed" | "crashed" => style.red(&format!("{status:<11}")),
            _ => style.yellow(&format!("{status:<11}")),
        };
        let rev: String = if run.revision.len() > 20 {
            let dirty = if run.revision.ends_with("-dirty") {
                "-dirty"
            } else {
                ""
            };
            format!("{}{dirty}", &run.revision[..12])
        } else {
            run.revision.clone()
        };
        crate::outln!(
            "{:<26} {status} {:<20} {:<18} {:>6} {:>6} {:>6} {:>8}  {}",
            run.id,
            rev,
            run.pipelines.join(","),
            run.passed,
            run.failed,
            run.skipped,
            human(Duration::from_millis(run.duration_ms)),
            run.started_at
        );
    }
    Ok(0)
}
