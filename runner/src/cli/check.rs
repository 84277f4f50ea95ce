//! `lowtouch check`: validate pipelines, environments and scenarios against each other,
//! report every finding with its place, run nothing. Exit 1 when anything is found.

use std::path::PathBuf;

use clap::Args;

use crate::app::{App, Error};

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Files to check: pipelines (`*.yaml`), environments (`environments/*.yaml`) or
    /// scenarios (`*.scn`) [default: every pipeline and environment of the project].
    pub paths: Vec<PathBuf>,
    /// The environment scenario files given alone are checked against.
    #[arg(long, value_name = "NAME", default_value = "local")]
    pub env: String,
    /// More directories to search for `lowtouch-NAME` plugins.
    #[arg(long = "tools", value_name = "DIR")]
    pub tools: Vec<PathBuf>,
}

pub fn check(app: &App, args: &CheckArgs) -> Result<i32, Error> {
    let checked = app.check(&args.paths, &args.env, &args.tools)?;
    for f in &checked.findings {
        crate::errln!("{f}");
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let what = format!(
        "{} pipeline{}, {} environment{}, {} scenario{}",
        checked.pipelines,
        plural(checked.pipelines),
        checked.environments,
        plural(checked.environments),
        checked.scenarios,
        plural(checked.scenarios)
    );
    if checked.findings.is_empty() {
        crate::errln!("ok: checked {what}");
        Ok(0)
    } else {
        crate::errln!(
            "{} problem{} in {what}",
            checked.findings.len(),
            plural(checked.findings.len())
        );
        Ok(1)
    }
}
