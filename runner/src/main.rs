//! The `lowtouch` binary: parse the command line, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use lowtouch::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let argv = std::env::args().skip(1).collect();
    let code = cli::finish(cli::dispatch(&cli, argv));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
