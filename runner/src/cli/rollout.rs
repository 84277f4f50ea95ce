//! `lowtouch rollout`: apply changed configs gradually, group by group, canary first,
//! each judged by the pipeline's smoke stage; the first failure restores every
//! environment already changed. Exit 1 when it stopped on a failure.

use clap::Args;

use crate::app::rollout::pick_pipeline;
use crate::app::{App, Error};
use crate::environment::Environment;

#[derive(Debug, Clone, Args)]
pub struct RolloutArgs {
    /// The pipeline whose smoke stage judges each environment [default: the default pipeline].
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Environments to consider (repeatable) [default: every environment that renders].
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
    /// Override an environment variable in every environment (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = super::parse_set)]
    pub set: Vec<(String, String)>,
}

pub fn rollout(app: &App, args: &RolloutArgs) -> Result<i32, Error> {
    let pipeline = pick_pipeline(app.project(), args.pipeline.as_deref())?;
    let names = if args.envs.is_empty() {
        Environment::names(app.project().root())
    } else {
        args.envs.clone()
    };
    app.rollout(&pipeline, &names, &args.set, &app.new_control())
}
