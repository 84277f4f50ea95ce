//! `lowtouch render --env NAME`: generate the environment's test data, render its config
//! templates into the runtime directory and commit the new state to the config history;
//! with `--diff`, show what would change and apply nothing.

use std::path::PathBuf;

use clap::Args;

use crate::app::{App, Error};
use crate::environment::apply::{self, ApplyError};
use crate::environment::history::History;
use crate::environment::render::Revisions;
use crate::report::terminal::Style;
use crate::revision;

#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The environment to render (`environments/NAME.yaml`).
    #[arg(long, value_name = "NAME")]
    pub env: String,
    /// Where to write [default: the environment's runtime directory, .lowtouch/envs/NAME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Show what would change against the last rendered state, as a unified diff; apply nothing.
    #[arg(long)]
    pub diff: bool,
    /// Override an environment variable (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = super::parse_set)]
    pub set: Vec<(String, String)>,
}

pub fn render(app: &App, args: &RenderArgs) -> Result<i32, Error> {
    let project = app.project().root();
    let env = crate::app::environments::load(app.project(), &args.env, &args.set)?;
    let style = Style::of(crate::console::Stream::Out);
    let rev = revision::detect(project)
        .resolve(revision::project_inputs(project).iter().map(String::as_str));
    let revisions = Revisions::same(&rev);
    // `--out` exports: the history and the runtime copy stay as they are.
    let export = args.out.is_some();
    let runtime_dir = match &args.out {
        Some(d) if d.is_relative() => project.join(d),
        Some(d) => d.clone(),
        None => env.runtime_dir(&app.project().state_dir()),
    };
    if !apply::renders(&env) {
        crate::outln!(
            "environment `{}` has no templates and no data sets: nothing to render",
            env.name
        );
        return Ok(0);
    }
    let history = History::open(app.project().config_history()).map_err(ApplyError::from)?;

    if args.diff {
        let preview = apply::preview(&env, &runtime_dir, &history, &revisions)?;
        let base = preview
            .base
            .as_deref()
            .map_or("nothing rendered yet".to_string(), |t| {
                format!("config {}", &t[..12])
            });
        if preview.is_empty() {
            crate::outln!("no changes against {base}");
            return Ok(0);
        }
        for (dest, old, new) in &preview.changes {
            let old = old.as_deref().unwrap_or("");
            let new = new.as_deref().unwrap_or("");
            let (from, to) = (
                format!("a/{dest} ({base})"),
                format!("b/{dest} (rendered now)"),
            );
            crate::out!(
                "{}",
                crate::report::unified::unified(old, new, &from, &to, style)
            );
        }
        for d in preview.data.iter().filter(|d| d.generated) {
            crate::outln!("data/{}: would be regenerated (its inputs changed)", d.dest);
        }
        crate::outln!(
            "nothing applied; `lowtouch render --env {}` applies it",
            env.name
        );
        return Ok(0);
    }

    let applied = apply::apply(&env, &runtime_dir, &history, &revisions, !export)?;
    crate::outln!(
        "rendered {} into {}",
        env.name,
        crate::source::display_path(&runtime_dir)
    );
    for (dest, changed) in &applied.files {
        let what = if *changed {
            style.yellow("changed")
        } else {
            style.dim("unchanged")
        };
        crate::outln!("  {dest:<28} {what}");
    }
    for d in &applied.data {
        let what = if d.generated {
            format!("{} rows generated in {}ms", d.rows, d.elapsed.as_millis())
        } else {
            style.dim(&format!(
                "unchanged (inputs {}), not regenerated",
                &d.input_hash[..12]
            ))
        };
        crate::outln!("  data/{:<23} {what}", d.dest);
    }
    match &applied.state {
        Some(state) if state.new => crate::outln!(
            "config history: new commit {} on env/{} ({})",
            &state.commit[..12],
            env.name,
            crate::source::display_path(history.path())
        ),
        Some(state) => crate::outln!(
            "config history: unchanged, env/{} stays at {}",
            env.name,
            &state.commit[..12]
        ),
        None => crate::outln!("exported: the config history and the runtime copy were not touched"),
    }
    Ok(0)
}
