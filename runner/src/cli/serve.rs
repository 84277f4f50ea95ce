//! `lowtouch serve`: the long-running server ([`crate::server`]). This file turns its
//! flags into the server's settings and says what the local API does with a client's
//! command line: a `run` joins the server's queue, the rest run at once inside it.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{Cli, Command};
use crate::api::server::Executor;
use crate::app::{App, Error, exit};
use crate::console::{Sink, Stream};
use crate::scenario::duration::parse_duration;
use crate::server::{ApiRun, Settings, Wake};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where to listen for webhooks (it prints every address it bound).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where daemons dial in (the router; needs LOWTOUCH_DAEMON_SECRET).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7471")]
    pub router: String,
    /// How often to poll the repositories without a webhook.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub poll_interval: Duration,
    /// Pipelines to serve [default: every pipeline that declares repositories].
    pub pipelines: Vec<String>,
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| format!("`{text}` is not a duration (500ms, 30s, 5m)"))
}

pub fn serve(app: &App, args: &ServeArgs) -> Result<i32, Error> {
    let settings = Settings {
        listen: args.listen.clone(),
        router: args.router.clone(),
        poll_interval: args.poll_interval,
        pipelines: args.pipelines.clone(),
    };
    crate::server::serve(
        App::new(app.project().clone()),
        settings,
        Box::new(|app, wake| executor(app, wake)),
    )
}

/// What the local API does with a client's command line: it runs with the server's
/// project, store and history, whatever the client's own flags said (it found the
/// socket through them).
fn executor(app: Arc<App>, wake: tokio::sync::mpsc::UnboundedSender<Wake>) -> Executor {
    Arc::new(move |request, sink| {
        let argv = std::iter::once("lowtouch".to_string()).chain(request.argv.iter().cloned());
        let cli = match <Cli as clap::Parser>::try_parse_from(argv) {
            Ok(c) => c,
            Err(e) => {
                let stream = if e.use_stderr() {
                    Stream::Err
                } else {
                    Stream::Out
                };
                sink.write(stream, &e.render().to_string());
                sink.exit(if e.use_stderr() {
                    exit::BAD_INPUT
                } else {
                    exit::OK
                });
                return;
            }
        };
        let name = cli.command.name();
        let console = cli.console(sink.clone());
        if let Command::Run(args) = cli.command {
            // A continuous pipeline gives way at its next scenario boundary.
            app.runs().preempt();
            let request = args.request();
            let finish = {
                let app = app.clone();
                Box::new(move |ran| super::finish(super::report_run(&app, args.json, ran)))
            };
            let run = ApiRun {
                request,
                console,
                sink: sink.clone(),
                finish,
            };
            if wake.send(Wake::Api(run)).is_err() {
                sink.write(Stream::Err, "lowtouch serve is stopping; nothing was run\n");
                sink.exit(exit::INFRA);
            }
            return;
        }
        if !crate::api::FORWARDED.contains(&name) {
            sink.write(
                Stream::Err,
                &format!("`lowtouch {name}` is not run through the server; run it yourself\n"),
            );
            sink.exit(exit::BAD_INPUT);
            return;
        }
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            let code = crate::console::capture(console, || {
                super::finish(super::execute(&app, &cli.command))
            });
            sink.exit(code);
        });
    })
}
