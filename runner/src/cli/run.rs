//! `lowtouch run`: run pipelines (or one scenario file) once, store the results, write
//! JUnit, print a summary, exit with the verdict.

use std::path::PathBuf;

use clap::Args;

use crate::app::{App, Error, RunRequest, Selection, Trigger};

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Pipelines to run, by name or path [default: those marked `default: true`].
    pub pipelines: Vec<String>,
    /// Run one scenario file against an environment instead of pipelines.
    #[arg(long, value_name = "FILE", conflicts_with = "pipelines")]
    pub scenario: Option<PathBuf>,
    /// Only the pipelines' scenarios this names: a substring of the name, or a glob of the
    /// name or path (repeatable; hooks still run).
    #[arg(long, value_name = "NAME", conflicts_with = "scenario")]
    pub filter: Vec<String>,
    /// The environment for `--scenario`.
    #[arg(long, value_name = "NAME", default_value = "local")]
    #[arg(requires = "scenario")]
    pub env: String,
    /// More directories to search for `lowtouch-NAME` plugins.
    #[arg(long = "tools", value_name = "DIR")]
    pub tools: Vec<PathBuf>,
    /// Override an environment variable for this run (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = super::parse_set)]
    pub set: Vec<(String, String)>,
    /// Where to write the JUnit XML.
    #[arg(long, value_name = "PATH", default_value = crate::app::request::DEFAULT_JUNIT)]
    pub junit: PathBuf,
    /// Print the result as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Show every step and its output as it runs.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl RunArgs {
    /// The run a person asked for.
    pub fn request(&self) -> RunRequest {
        let selection = match &self.scenario {
            Some(file) => Selection::Scenario {
                file: file.clone(),
                environment: self.env.clone(),
            },
            None if self.pipelines.is_empty() => Selection::Defaults,
            None => Selection::Pipelines(self.pipelines.clone()),
        };
        RunRequest {
            selection,
            trigger: Trigger::Person,
            tools: self.tools.clone(),
            overrides: self.set.clone(),
            junit: self.junit.clone(),
            verbose: self.verbose,
            filter: self.filter.clone(),
        }
    }
}

pub fn run(app: &App, args: &RunArgs) -> Result<i32, Error> {
    super::report_run(app, args.json, app.run(&args.request()))
}
