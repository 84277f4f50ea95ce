//! `lowtouch poll`: one round of what `lowtouch serve` does continuously — fetch the
//! pipelines' repositories, detect and classify new changes, and run every pipeline that
//! has something to redo, once, with its newest candidate.

use clap::Args;

use crate::app::{App, Error, exit};
use crate::pipeline::Pipeline;

#[derive(Debug, Clone, Args)]
pub struct PollArgs {
    /// Pipelines to poll for [default: every pipeline that declares repositories].
    pub pipelines: Vec<String>,
    /// Report what changed and what would run; run nothing and keep the stored tips.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn poll(app: &App, args: &PollArgs) -> Result<i32, Error> {
    let watched = Pipeline::discover(app.project().root())
        .iter()
        .filter_map(|path| Pipeline::load(path).ok())
        .any(|p| !p.repositories.is_empty());
    if !watched {
        return Err(Error::input(
            "no pipeline declares `repositories:` to poll; add some (see README, Watching repositories)",
        ));
    }
    let pipelines = app.watched_pipelines(&args.pipelines)?;
    let round = app.plan_round(&pipelines, args.dry_run, &Default::default())?;
    for (d, why) in &round.waiting {
        crate::outln!(
            "waits: {} ({}): {}; {why}",
            d.pipeline,
            d.action.as_str(),
            d.because
        );
    }
    let due = round.due;
    if args.dry_run || due.is_empty() {
        if due.is_empty() {
            crate::outln!("nothing new to run");
        }
        for d in &due {
            crate::outln!(
                "would run {} ({}): {}",
                d.pipeline,
                d.action.as_str(),
                d.because
            );
        }
        return Ok(exit::OK);
    }
    let mut worst = exit::OK;
    for d in due {
        crate::errln!(
            "running {} ({}): {}",
            d.pipeline,
            d.action.as_str(),
            d.because
        );
        let ran = app.run(&d.request())?;
        worst = worst.max(ran.exit_code());
        if let Some(outcome) = ran.outcome() {
            app.publish(outcome);
        }
    }
    Ok(worst)
}
