//! `lowtouch check`: validate pipelines, environments and scenarios against each other,
//! report every finding with its place, run nothing. Exit 1 when anything is found.

use std::path::{Path, PathBuf};

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
    /// The findings as JSON on stdout (file, line, column, message, help): for annotations.
    #[arg(long)]
    pub json: bool,
}

pub fn check(app: &App, args: &CheckArgs) -> Result<i32, Error> {
    let checked = app.check(&args.paths, &args.env, &args.tools)?;
    if args.json {
        crate::outln!("{}", checked.json(app.project().root()));
    }
    for f in checked.findings.iter().filter(|_| !args.json) {
        crate::errln!("{f}");
    }
    crate::errln!("{}", checked.summary());
    Ok(if checked.findings.is_empty() { 0 } else { 1 })
}

/// `lowtouch init [DIR]`: a starting project in DIR (under `-C`), or here.
pub fn init(chdir: Option<&Path>, dir: Option<&Path>) -> Result<i32, Error> {
    let root = chdir
        .unwrap_or(Path::new("."))
        .join(dir.unwrap_or(Path::new("")));
    crate::outln!("{}", crate::app::init::init(&root)?);
    Ok(0)
}
