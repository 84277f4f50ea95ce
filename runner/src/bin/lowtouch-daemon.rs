//! `lowtouch-daemon`: the monitoring daemon for the hosts of a system under test, the
//! same as `lowtouch daemon` in a binary that links only the daemon (no git, store or
//! HTTP): a smaller process on every host. Its few options are read by hand, so no
//! argument parser is linked either.

use std::path::PathBuf;
use std::process::ExitCode;

use lowtouch::daemon::host::{HostError, HostSettings};

const USAGE: &str = "\
The monitoring daemon of one host: dials lowtouch serve's router, follows the logs and
processes of the components on this host, samples the system, runs what the router may ask.

Usage: lowtouch-daemon --server HOST:PORT --name NAME [OPTIONS]

Options:
      --server HOST:PORT    The router to dial: `lowtouch serve`'s --router address
      --name NAME           This daemon's name, as the environment's `daemons:` names it
      --environment ENV     The environment it belongs to [default: local]
      --secret-file PATH    A file holding the environment's daemon secret
                            [default: $LOWTOUCH_DAEMON_SECRET]
      --buffer N            Observations kept while the router is away [default: 100000]
  -h, --help                Print help
  -V, --version             Print version
";

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<HostSettings>, String> {
    let mut server = None;
    let mut name = None;
    let mut settings = HostSettings {
        server: String::new(),
        name: String::new(),
        environment: "local".into(),
        secret_file: None,
        buffer: 100_000,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("lowtouch-daemon {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--server" => server = Some(value()?),
            "--name" => name = Some(value()?),
            "--environment" => settings.environment = value()?,
            "--secret-file" => settings.secret_file = Some(PathBuf::from(value()?)),
            "--buffer" => {
                let v = value()?;
                settings.buffer = v
                    .parse()
                    .map_err(|_| format!("--buffer {v}: not a number"))?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    settings.server = server.ok_or("--server HOST:PORT is required")?;
    settings.name = name.ok_or("--name NAME is required")?;
    Ok(Some(settings))
}

fn main() -> ExitCode {
    let settings = match parse(std::env::args().skip(1)) {
        Ok(Some(s)) => s,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: {e}\n\nUsage: lowtouch-daemon --server HOST:PORT --name NAME [OPTIONS]\nFor more information, try '--help'."
            );
            return ExitCode::from(2);
        }
    };
    match lowtouch::daemon::host::run(&settings) {
        // Stopped by Ctrl-C or SIGTERM, as `lowtouch daemon` reports it.
        Ok(()) => ExitCode::from(130),
        Err(HostError::Input(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(HostError::Infra(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}
