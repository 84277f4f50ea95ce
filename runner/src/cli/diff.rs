//! `lowtouch diff A B` and `lowtouch release NAME`: a run against an earlier one, and
//! naming a run a release.

use clap::Args;

use crate::app::{App, Error};
use crate::compare::history::{self, RELEASE_PATTERN};
use crate::report;

use crate::store::Store;

#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The baseline: a run id, `last`, a release, a commit or a tag of the project.
    #[arg(value_name = "A", required_unless_present = "previous")]
    pub a: Option<String>,
    /// The run compared with it (default: `last`).
    #[arg(value_name = "B")]
    pub b: Option<String>,
    /// Compare a run (A, or the newest) with its previous release.
    #[arg(long, conflicts_with = "b")]
    pub previous: bool,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    /// The release's name (`v1.4.0`, `rc-2026-11`).
    pub name: String,
    /// The run that is the release [default: the newest].
    #[arg(long, value_name = "ID", default_value = "last")]
    pub run: String,
}

pub fn diff(app: &App, args: &DiffArgs) -> Result<i32, Error> {
    let project = app.project().root();
    let store = app.store()?;
    let current = if args.previous {
        history::resolve(&store, project, args.a.as_deref().unwrap_or("last"))
    } else {
        history::resolve(&store, project, args.b.as_deref().unwrap_or("last"))
    }?;
    let (label, baseline) = if args.previous {
        match history::previous_release(&store, project, &current, RELEASE_PATTERN)? {
            Some((name, run)) => (format!("release {name} ({})", run.id), run),
            None => {
                return Err(Error::input(format!(
                    "run {} has no previous release on {} / {}: name one with `lowtouch release NAME --run ID`, or tag a commit `v…`",
                    current.id,
                    current.pipelines.join(","),
                    current.environments.join(",")
                )));
            }
        }
    } else {
        let name = args.a.as_deref().unwrap_or("last");
        let run = history::resolve(&store, project, name)?;
        (format!("{name} ({})", run.id), run)
    };
    for run in [&baseline, &current] {
        if let Some(why) = &run.incomplete {
            crate::errln!(
                "warning: run {} is incomplete ({why}): scenarios it lacks show as added or removed",
                run.id
            );
        }
    }
    let masks = crate::pipeline::masks_for(project, &current.pipelines);
    let c = history::comparison(&store, &masks, &baseline, &current)?;
    if args.json {
        let text = serde_json::to_string_pretty(&c).map_err(|e| Error::infra(e.to_string()))?;
        crate::outln!("{text}");
    } else {
        let judged = store.verdict(&current.id)?;
        crate::out!("{}", report::comparison::text(&c, &label, judged.as_ref()));
    }
    Ok(if c.new_failures() > 0 { 1 } else { 0 })
}

pub fn release(app: &App, args: &ReleaseArgs) -> Result<i32, Error> {
    let project = app.project().root();
    let store = app.store()?;
    let run = history::resolve(&store, project, &args.run)?;
    if let Some(why) = &run.incomplete {
        return Err(Error::input(format!(
            "run {} is incomplete ({why}): a release is what later runs compare with; name a complete run",
            run.id
        )));
    }
    if let Some(existing) = store.put_release(&args.name, &run.id, &crate::clock::now())? {
        return Err(Error::input(format!(
            "release {} names run {} already (since {}); choose another name",
            existing.name, existing.run_id, existing.at
        )));
    }
    crate::outln!(
        "release {}: run {} ({}, {} on {})",
        args.name,
        run.id,
        run.revision,
        run.pipelines.join(","),
        run.environments.join(",")
    );
    Ok(0)
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The run (`last`, an id, a release, a commit or tag).
    #[arg(long, value_name = "ID", default_value = "last")]
    pub run: String,
    /// Write its JUnit XML here (with the comparison with its previous release), relative
    /// to the project as `run --junit` is.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<std::path::PathBuf>,
    /// Write a single-file HTML report here (relative to the project).
    #[arg(long, value_name = "PATH")]
    pub html: Option<std::path::PathBuf>,
    /// List what was kept with the run: component log tails, rendered configs.
    #[arg(long)]
    pub artifacts: bool,
    /// Print one of its artifacts.
    #[arg(long, value_name = "NAME")]
    pub artifact: Option<String>,
}

pub fn report(app: &App, args: &ReportArgs) -> Result<i32, Error> {
    if args.junit.is_none() && args.html.is_none() && !args.artifacts && args.artifact.is_none() {
        return Err(Error::input(
            "say what to write: --junit PATH, --html PATH, --artifacts or --artifact NAME",
        ));
    }
    let project = app.project().root();
    let store = app.store()?;
    let run = history::resolve(&store, project, &args.run)?;
    let report = crate::app::report::Report::load(&store, project, run)?;
    let id = &report.run.id;
    if args.artifacts {
        if report.stored.artifacts.is_empty() {
            crate::errln!("run {id} kept no artifacts");
        }
        for (name, size) in &report.stored.artifacts {
            crate::outln!("{name}  ({size} bytes)");
        }
    }
    if let Some(name) = &args.artifact {
        let Some(bytes) = store.artifact(id, name)? else {
            return Err(Error::input(format!(
                "run {id} has no artifact `{name}`; `lowtouch report --run {id} --artifacts` lists them"
            )));
        };
        crate::out!("{}", String::from_utf8_lossy(&bytes));
    }
    let write = |path: &std::path::Path, text: &str| -> Result<(), Error> {
        let path = &app.project().resolve(path);
        crate::app::report::write_file(path, text)?;
        crate::outln!("wrote {}", crate::execute::run::display_path(path));
        Ok(())
    };
    if let Some(path) = &args.junit {
        write(path, &report.junit()?)?;
    }
    if let Some(path) = &args.html {
        write(path, &report.html(&store)?)?;
    }
    Ok(0)
}

#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// Runs kept per pipeline and environment, besides every release.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub keep: usize,
    /// Prune only; leave the store's files as they are.
    #[arg(long)]
    pub no_compact: bool,
}

pub fn gc(app: &App, args: &GcArgs) -> Result<i32, Error> {
    let project = app.project().root();
    let path = app.project().db().to_path_buf();
    let pruned = {
        let store = Store::open(&path)?;
        let releases = history::release_runs(&store, project, RELEASE_PATTERN)?;
        let runs = store.runs(usize::MAX)?;
        let keep = crate::store::gc::kept(&runs, args.keep, &releases);
        store.prune(&keep)?
    };
    crate::outln!(
        "pruned {} run{}, {} scenario records, {} steps, {} observations (kept every release and the newest {} per pipeline and environment)",
        pruned.runs,
        if pruned.runs == 1 { "" } else { "s" },
        pruned.scenarios,
        pruned.steps,
        pruned.observations,
        args.keep
    );
    if !args.no_compact {
        let (before, after) = crate::store::gc::compact(&path)?;
        crate::outln!(
            "compacted {}: {:.1} MB -> {:.1} MB",
            crate::execute::run::display_path(&path),
            before as f64 / 1e6,
            after as f64 / 1e6
        );
    }
    Ok(0)
}
