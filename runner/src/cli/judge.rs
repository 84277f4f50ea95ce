//! `lowtouch judge [RUN]` and `lowtouch baseline --run ID`: a run's verdict against
//! comparable history (recomputed from what was stored), and the runs it was judged
//! against.

use clap::Args;

use crate::app::{App, Error, exit};
use crate::compare::history;
use crate::report::verdict::SHOWN;

#[derive(Debug, Clone, Args)]
pub struct JudgeArgs {
    /// The run: an id, `last`, a release, a commit or a tag [default: the newest].
    #[arg(value_name = "RUN")]
    pub name: Option<String>,
    /// The run, as `--run ID` (the same as RUN).
    #[arg(long = "run", value_name = "ID", conflicts_with = "name")]
    pub run: Option<String>,
    /// Every finding, not only the first ten.
    #[arg(long)]
    pub all: bool,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    /// The run [default: the newest].
    #[arg(long = "run", value_name = "ID", default_value = "last")]
    pub run: String,
    /// Print the choice as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit 1 when a feature that is not report-only regressed (as `diff` exits 1 on new
/// failures); 0 otherwise.
pub fn judge(app: &App, args: &JudgeArgs) -> Result<i32, Error> {
    let name = args
        .name
        .as_ref()
        .or(args.run.as_ref())
        .map_or("last", |n| n);
    let store = app.store()?;
    let run = history::resolve(&store, app.project().root(), name)?;
    let policy = crate::pipeline::policy_for(app.project().root(), &run.pipelines);
    let judged = app.rejudge(&run, &app.declared(&run), &policy)?;
    if args.json {
        let value = serde_json::json!({ "run": run.id, "verdict": judged.verdict,
            "matches_stored": judged.matches_stored });
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        let limit = if args.all { usize::MAX } else { SHOWN };
        crate::out!(
            "run {}\n{}",
            run.id,
            crate::report::verdict::text(&judged.verdict, limit)
        );
        crate::outln!(
            "{}",
            crate::report::verdict::recomputed(judged.matches_stored)
        );
    }
    Ok(if judged.verdict.regressed() {
        exit::FAILED
    } else {
        exit::OK
    })
}

pub fn baseline(app: &App, args: &BaselineArgs) -> Result<i32, Error> {
    let store = app.store()?;
    let run = history::resolve(&store, app.project().root(), &args.run)?;
    let policy = crate::pipeline::policy_for(app.project().root(), &run.pipelines);
    let choice = app.baseline(&run, &policy)?;
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&choice).unwrap_or_default()
        );
    } else {
        let runs = store.runs(usize::MAX)?;
        crate::out!("{}", crate::report::verdict::baseline(&run, &choice, &runs));
    }
    Ok(exit::OK)
}
