//! `lowtouch schema`, `completions` and `man`: the contract of the YAML files and the
//! command line itself, printed for editors, shells and `man`.

use clap::{Args, CommandFactory};

use super::Cli;
use crate::app::Error;
use crate::schema::{self, Kind};

#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Which files: environments or pipelines (both with `--reference`).
    #[arg(value_enum)]
    pub kind: Option<Kind>,
    /// The reference of every key as markdown (docs/reference.md) instead of JSON Schema.
    #[arg(long, conflicts_with = "kind")]
    pub reference: bool,
}

pub fn schema(args: &SchemaArgs) -> Result<i32, Error> {
    match args.kind {
        _ if args.reference => crate::out!("{}", schema::reference()),
        Some(kind) => crate::out!("{}", schema::schema_text(kind)),
        None => {
            return Err(Error::input(
                "say which schema: `lowtouch schema environment` or `lowtouch schema pipeline` (or --reference)",
            ));
        }
    }
    Ok(0)
}

/// Completions for `shell`, to be sourced or saved where the shell looks for them.
pub fn completions(shell: clap_complete::Shell) -> Result<i32, Error> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lowtouch", &mut out);
    crate::out!("{}", String::from_utf8_lossy(&out));
    Ok(0)
}

/// The man page (roff) of `lowtouch` and its subcommands, one after another.
pub fn man() -> Result<i32, Error> {
    let mut out = Vec::new();
    let command = Cli::command();
    let render = |c: clap::Command, out: &mut Vec<u8>| {
        clap_mangen::Man::new(c)
            .render(out)
            .map_err(|e| Error::infra(format!("cannot render the man page: {e}")))
    };
    render(command.clone(), &mut out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("lowtouch-{}", sub.get_name());
        render(sub.clone().display_name(name), &mut out)?;
    }
    crate::out!("{}", String::from_utf8_lossy(&out));
    Ok(0)
}
