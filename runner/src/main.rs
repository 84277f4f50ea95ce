//! The `lowtouch` binary: parse the command line, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use lowtouch::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli::dispatch(&cli) {
        Ok(code) => code,
        Err(e @ cli::CliError::Findings(_)) => {
            eprintln!("{e}");
            e.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
