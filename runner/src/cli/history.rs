//! `lowtouch history`: stored candidates (or runs, `--runs`), newest first; one run's
//! events, metrics and steps; flaky scenarios.

use std::collections::BTreeMap;

use clap::Args;

use crate::app::{App, Error};
use crate::compare::candidates;
use crate::record::RunRecord;
use crate::report::history;
use crate::report::terminal::Style;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// How many candidates (runs, with `--runs`) to show.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    /// One line per run instead of one per candidate (a candidate's consecutive runs on
    /// one pipeline and environment are one line).
    #[arg(long)]
    pub runs: bool,
    /// Only runs of this revision (a commit id, `<sha>-dirty`, `unversioned-…`).
    #[arg(long)]
    pub revision: Option<String>,
    /// Only runs of this pipeline.
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Only runs on this environment.
    #[arg(long = "env", value_name = "NAME")]
    pub environment: Option<String>,
    /// Only runs under this condition, `KEY=VALUE` (repeatable, all must hold): `load.ENV.VAR`,
    /// `test_data.ENV`, `config.ENV`, `host.cores`, `host.kernel`, `hosts.ENV/DAEMON.cores`…
    /// A commit or hash matches by a prefix of 7 or more characters.
    #[arg(long = "condition", value_name = "KEY=VALUE")]
    pub conditions: Vec<String>,
    /// Print the candidates (the runs, with `--runs`) as JSON.
    #[arg(long)]
    pub json: bool,
    /// One run (`last`: the newest), for `--events` and `--metrics`.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// The run's events, as the daemons saw them, on the server's timeline.
    #[arg(long, requires = "run")]
    pub events: bool,
    /// The run's samples of one metric (`internal_latency_us`, `rss_bytes`…).
    #[arg(long, value_name = "NAME", requires = "run")]
    pub metrics: Option<String>,
    /// The run's steps, each with what the daemons saw around it: events during it and
    /// the metrics that changed from just before to just after.
    #[arg(long, requires = "run", conflicts_with_all = ["events", "metrics"])]
    pub steps: bool,
    /// Scenarios whose outcome flips across the recent runs (`--limit`) of one candidate
    /// (revision, candidate commits, pipelines and environments), or that passed only on
    /// a retry.
    #[arg(long, conflicts_with_all = ["run", "json"])]
    pub flaky: bool,
}

pub fn history(app: &App, args: &HistoryArgs) -> Result<i32, Error> {
    let store = app.store()?;
    if let Some(id) = &args.run {
        return observations(&store, id, args);
    }
    let wanted = parse_conditions(&args.conditions)?;
    let matching = |r: &RunRecord| {
        args.pipeline
            .as_ref()
            .is_none_or(|p| r.pipelines.contains(p))
            && args
                .environment
                .as_ref()
                .is_none_or(|e| r.environments.contains(e))
            && r.holds(&wanted)
    };
    // Newest first, filtered, read as needed.
    let runs: Box<dyn Iterator<Item = Result<RunRecord, StoreError>>> = match &args.revision {
        Some(rev) => {
            let ids = store.runs_for_revision(rev)?;
            let store = store.share();
            Box::new(
                ids.into_iter()
                    .rev()
                    .filter_map(move |id| store.run(&id).transpose()),
            )
        }
        None => Box::new(store.runs_newest_first()),
    };
    let runs = runs.filter(|r| r.as_ref().map_or(true, &matching));
    if args.flaky {
        let runs: Vec<RunRecord> = runs.take(args.limit).collect::<Result<_, _>>()?;
        return flaky(&store, &runs);
    }
    let releases: BTreeMap<String, String> = store
        .releases()?
        .into_iter()
        .map(|r| (r.run_id, r.name))
        .collect();
    let style = Style::of(crate::console::Stream::Out);
    let shown = if args.runs {
        let runs: Vec<RunRecord> = runs.take(args.limit).collect::<Result<_, _>>()?;
        if args.json {
            print_json(&runs)?;
        } else if !runs.is_empty() {
            crate::out!("{}", history::runs_table(&runs, &releases, &style));
        }
        runs.len()
    } else {
        let stretches = candidates::stretches(runs, args.limit)?;
        if args.json {
            let rows: Vec<history::CandidateRow> = stretches
                .iter()
                .map(|s| history::CandidateRow::of(s, &releases))
                .collect();
            print_json(&rows)?;
        } else if !stretches.is_empty() {
            crate::out!(
                "{}",
                history::candidates_table(&stretches, &releases, &style)
            );
        }
        stretches.len()
    };
    if shown == 0 && !args.json {
        if !wanted.is_empty() {
            // Say which keys there are: the newest run's.
            let keys: Vec<String> = store
                .runs(1)?
                .first()
                .map(|r| r.condition_pairs().into_keys().collect())
                .unwrap_or_default();
            crate::errln!(
                "no runs match in {}; the newest run's conditions are: {}",
                store.path().display(),
                keys.join(", ")
            );
        } else if args.pipeline.is_some() || args.environment.is_some() || args.revision.is_some() {
            crate::errln!("no runs match in {}", store.path().display());
        } else {
            crate::errln!(
                "no runs stored in {} yet; start one with `lowtouch run`",
                store.path().display()
            );
        }
    }
    Ok(0)
}

/// `--condition KEY=VALUE` arguments, checked.
fn parse_conditions(given: &[String]) -> Result<Vec<(String, String)>, Error> {
    given
        .iter()
        .map(|c| match c.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Error::input(format!(
                "--condition `{c}`: expected KEY=VALUE, for example --condition load.local.load_rate=200"
            ))),
        })
        .collect()
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::infra(e.to_string()))?;
    crate::outln!("{text}");
    Ok(())
}

/// `history --run ID --events` / `--metrics NAME`: what the daemons observed while the
/// run ran, on its environments.
fn observations(store: &Store, id: &str, args: &HistoryArgs) -> Result<i32, Error> {
    let run = crate::app::history::run_named(store, id)?;
    if args.steps {
        return steps(store, &run, args.json);
    }
    let mut rows =
        crate::compare::history::observed(store, &run, args.metrics.is_none() && args.events)?;
    rows.retain(|o| match &args.metrics {
        Some(name) => o.kind == "metric" && &o.name == name,
        None => !args.events || o.kind == "event",
    });
    if args.json {
        print_json(&rows)?;
        return Ok(0);
    }
    if rows.is_empty() {
        crate::errln!(
            "run {} has no {} stored (daemons report them through `lowtouch serve`'s router)",
            run.id,
            match &args.metrics {
                Some(m) => format!("samples of `{m}`"),
                None => "events".to_string(),
            }
        );
        return Ok(0);
    }
    let (from, _) = crate::compare::history::window(&run);
    crate::out!("{}", history::observations_table(&rows, from));
    Ok(0)
}

/// `history --run ID --steps`: every step of the run with the system around it.
fn steps(store: &Store, run: &RunRecord, json: bool) -> Result<i32, Error> {
    let all = crate::app::history::steps(store, run)?;
    if json {
        print_json(&history::steps_json(&all))?;
    } else {
        crate::out!("{}", history::steps_text(&all));
    }
    Ok(0)
}

/// `history --flaky`: per scenario, its outcomes across runs of the same candidate.
fn flaky(store: &Store, runs: &[RunRecord]) -> Result<i32, Error> {
    let flaky = crate::app::history::flaky(store, runs)?;
    if flaky.is_empty() {
        crate::errln!("no flaky scenario in the last {} runs", runs.len());
    } else {
        crate::out!("{}", history::flaky_table(&flaky));
    }
    Ok(0)
}
