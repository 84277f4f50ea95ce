//! `lowtouch serve`: the long-running management server (its first part). It listens for
//! GitHub webhooks (`POST /hooks/github`, signature-checked with `LOWTOUCH_WEBHOOK_SECRET`)
//! and polls the pipelines' repositories on a schedule; either wakes the same round that
//! `lowtouch poll` runs once: fetch, detect, classify, run. Deliveries that arrive while a
//! round runs coalesce into the next one. Ctrl-C or SIGTERM stops it: a running scenario
//! is stopped and stored as interrupted, the listener closes.
//!
//! Pipelines may also run by the clock (`schedule:` cron patterns) and continuously
//! (`continuous: true`: while nothing new arrives the pipeline runs again and again, and a
//! webhook pre-empts it at the next scenario boundary).
//!
//! It holds the store for its whole life; `run`, `history`, `status`, `pause`, `resume`,
//! `lock`, `unlock` and `cancel` started meanwhile come through its local API (a Unix
//! socket beside the store, [`crate::api`]) and run here: runs wait in its queue and
//! pre-empt a continuous pipeline at its next scenario boundary; the rest run at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use clap::Args;

use super::poll::round;
use super::run::{RunArgs, run};
use super::{Cli, CliError, Command};
use crate::api::server::{ClientSink, Executor, Local, set_activity};
use crate::console::{self, Sink, Stream};
use crate::execute::interrupt;
use crate::pipeline::Pipeline;
use crate::scenario::duration::parse_duration;
use crate::trigger::webhook::{Delivery, Receiver};
use crate::webhook_listener::{BodyBudget, Limits};

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

struct AppState {
    receiver: Mutex<Receiver>,
    /// The memory unauthenticated bodies may hold at once.
    bodies: BodyBudget,
    wake: tokio::sync::mpsc::Sender<String>,
}

/// A `lowtouch run` a client asked for through the local API, waiting for its turn.
struct ApiRun {
    cli: Cli,
    sink: Arc<ClientSink>,
    what: String,
}

pub fn serve(cli: &Cli, args: &ServeArgs) -> Result<i32, CliError> {
    interrupt::install();
    let project = cli.project()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::infra(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(run_server(cli.clone(), project, args.clone()))
}

async fn run_server(
    cli: Cli,
    project: std::path::PathBuf,
    args: ServeArgs,
) -> Result<i32, CliError> {
    let secret = std::env::var("LOWTOUCH_WEBHOOK_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    if secret.is_none() {
        crate::errln!(
            "note: LOWTOUCH_WEBHOOK_SECRET is not set: /hooks/github answers 503 to every delivery"
        );
    }
    // Webhook peers may hold at most a quarter of the descriptors (see webhook_listener):
    // the store, runs and the local API keep the rest.
    let limits = match crate::webhook_listener::raise_open_files_limit() {
        Ok(open_files) => Limits::default().within_open_files(open_files),
        Err(e) => {
            crate::errln!("note: cannot read the open-files limit ({e}); assuming 1024");
            Limits::default().within_open_files(1024)
        }
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| CliError::input(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::infra(format!("no local address: {e}")))?;
    // The store stays open while the server lives; everything it runs shares it.
    let db = cli.db_path(&project);
    let store = crate::store::Store::open(&db)?;
    // The data processor writes observations from inside the runtime: open the detail
    // here, not in its first batch.
    store.open_detail()?;
    store.pin();
    let local = Local::bind(&crate::api::socket_path(&db)).map_err(CliError::infra)?;
    crate::outln!("lowtouch serve: listening on http://{addr} (webhooks: POST /hooks/github)");
    crate::outln!(
        "lowtouch serve: local API on {} (run, history, status, pause, resume, lock, unlock, cancel)",
        local.path().display()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    set_activity(|a| a.doing = "starting".into());
    let (api_tx, mut api_runs) = tokio::sync::mpsc::unbounded_channel::<ApiRun>();
    let executor = executor(cli_for_api(&cli, &project), api_tx);
    let api = tokio::spawn(async move {
        axum::serve(local, crate::api::server::router(executor))
            .with_graceful_shutdown(interrupted())
            .await
    });
    let mut waiting: std::collections::VecDeque<ApiRun> = Default::default();
    let (event_tx, mut events) =
        tokio::sync::mpsc::unbounded_channel::<crate::net::router::Delivered>();
    let _router = start_router(&args.router, &project, &store, event_tx).await?;
    // Events from before this instant happened during a run (or before the server): not
    // ones to start an event-driven scenario on.
    let mut quiet_since = crate::clock::now_us();
    let mut triggered: Option<(String, usize, std::collections::BTreeMap<String, String>)> = None;

    let (wake, mut woken) = tokio::sync::mpsc::channel::<String>(64);
    let state = Arc::new(AppState {
        receiver: Mutex::new(Receiver::new(secret.map(String::into_bytes))),
        bodies: BodyBudget::new(limits.clone()),
        wake,
    });
    let app = Router::new()
        .route("/hooks/github", post(hook))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state);
    let server = tokio::spawn(crate::webhook_listener::serve(
        listener,
        app,
        limits,
        interrupted(),
    ));

    let mut reason = "start".to_string();
    loop {
        // Runs people asked for come first, in the order they asked.
        while let Ok(r) = api_runs.try_recv() {
            waiting.push_back(r);
        }
        while let Some(r) = waiting.pop_front() {
            run_for_client(r).await;
            quiet_since = crate::clock::now_us();
            while let Ok(r) = api_runs.try_recv() {
                waiting.push_back(r);
            }
            if interrupt::shutdown() {
                break;
            }
        }
        if interrupt::shutdown() {
            break;
        }
        interrupt::clear_preemption();
        let now = chrono::Utc::now();
        let served = served(&project, &args.pipelines);
        let ran = if let Some((name, index, vars)) = triggered.take() {
            // A component crashed (or whatever the pipeline listens for) while nothing ran.
            crate::errln!("run {name} ({reason})");
            set_activity(|a| a.doing = format!("running {name} ({reason})"));
            let c = cli.clone();
            let ran = report(
                tokio::task::spawn_blocking(move || {
                    let mut args = RunArgs::pipelines(vec![name]);
                    args.event = Some((index, vars));
                    run(&c, &args).map(|_| 1)
                })
                .await,
            );
            quiet_since = crate::clock::now_us();
            // The round below still looks for changes.
            let _ = ran;
            0
        } else if let Some(name) = reason
            .strip_prefix("schedule: ")
            .and_then(|r| r.split_whitespace().next())
        {
            // A cron pattern fired: run that pipeline whatever changed.
            crate::errln!("run {name} ({reason})");
            set_activity(|a| a.doing = format!("running {name} ({reason})"));
            let (c, p, name) = (cli.clone(), project.clone(), name.to_string());
            report(
                tokio::task::spawn_blocking(move || {
                    let ran = run(&c, &RunArgs::pipelines(vec![name.clone()])).map(|_| 1);
                    post_after(&c, &p, &name);
                    ran
                })
                .await,
            )
        } else {
            crate::errln!("poll ({reason})");
            set_activity(|a| a.doing = format!("polling and running what changed ({reason})"));
            let (c, p, only) = (cli.clone(), project.clone(), args.pipelines.clone());
            let ran = report(
                tokio::task::spawn_blocking(move || round(&c, &p, &only, false).map(|r| r.ran))
                    .await,
            );
            crate::errln!("poll done: {ran} run{}", if ran == 1 { "" } else { "s" });
            ran
        };
        if ran > 0 {
            quiet_since = crate::clock::now_us();
        }
        if interrupt::shutdown() {
            break;
        }
        // Nothing new: the environment is not left idle when a pipeline says so.
        let continuous: Vec<String> = served
            .iter()
            .filter(|p| p.continuous)
            .map(|p| p.name.clone())
            .collect();
        if ran == 0 && !continuous.is_empty() && woken.is_empty() {
            for name in continuous {
                if interrupt::shutdown() || interrupt::preempted() {
                    break;
                }
                crate::errln!("run {name} (continuous)");
                set_activity(|a| a.doing = format!("running {name} (continuous)"));
                let (c, p) = (cli.clone(), project.clone());
                report(
                    tokio::task::spawn_blocking(move || {
                        // The one kind of run a new candidate or a person's run pre-empts.
                        let mut args = RunArgs::pipelines(vec![name.clone()]);
                        args.preemptible = true;
                        let ran = run(&c, &args).map(|_| 1);
                        post_after(&c, &p, &name);
                        ran
                    })
                    .await,
                );
            }
            if interrupt::shutdown() {
                break;
            }
            reason = match woken.try_recv() {
                Ok(why) => why,
                Err(_) => "continuous".to_string(),
            };
            if reason == "continuous" {
                // A breath between iterations, so a pipeline that fails at once does not
                // spin; rounds between them still fetch, so new commits are found.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    Some(why) = woken.recv() => reason = why,
                    Some(r) = api_runs.recv() => waiting.push_back(r),
                    _ = interrupted() => break,
                }
                continue;
            }
        } else {
            let next_cron = next_schedule(&served, &now);
            let until_cron = next_cron
                .as_ref()
                .map(|(at, _)| {
                    (*at - chrono::Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                })
                .unwrap_or(Duration::from_secs(365 * 24 * 3600));
            set_activity(|a| {
                a.doing = "idle: waiting for a change, a schedule or a request".into()
            });
            let poll_at = tokio::time::Instant::now() + args.poll_interval;
            let cron_at = tokio::time::Instant::now() + until_cron;
            reason = loop {
                tokio::select! {
                    Some(r) = api_runs.recv() => {
                        waiting.push_back(r);
                        break "after a run asked through the local API".to_string();
                    }
                    _ = tokio::time::sleep_until(poll_at) => break "schedule".to_string(),
                    _ = tokio::time::sleep_until(cron_at) => break match next_cron.clone() {
                        Some((_, why)) => why,
                        None => "schedule".to_string(),
                    },
                    Some(why) = woken.recv() => break why,
                    Some(d) = events.recv() => {
                        if let Some(t) = event_trigger(&served, &d, quiet_since, &store) {
                            let why = format!(
                                "event: {} {} {} on {}",
                                d.environment,
                                t.2.get("event.source").map_or("", String::as_str),
                                t.2.get("event.value").map_or("", String::as_str),
                                t.0
                            );
                            triggered = Some(t);
                            break why;
                        }
                    }
                    _ = interrupted() => break "stop".to_string(),
                }
            };
            if interrupt::shutdown() {
                break;
            }
        }
        // Deliveries that came in meanwhile are served by this same round.
        while let Ok(more) = woken.try_recv() {
            reason = format!("{reason}; {more}");
        }
    }
    // Requests from now on are told the server is stopping; those waiting are answered.
    api_runs.close();
    while let Ok(r) = api_runs.try_recv() {
        waiting.push_back(r);
    }
    for r in waiting.drain(..) {
        r.sink.write(
            Stream::Err,
            "lowtouch serve stopped before this run started\n",
        );
        r.sink.exit(super::error::exit::INTERRUPTED);
    }
    let _ = server.await;
    let _ = api.await;
    crate::errln!("lowtouch serve: stopped");
    Ok(super::error::exit::INTERRUPTED)
}

/// The event-driven scenario an event starts, if any: a served pipeline of the event's
/// environment whose `on_event` pattern matches `SOURCE NAME VALUE`, with nothing running
/// there, and the event newer than the last run (one a run caused is not "outside" it).
fn event_trigger(
    served: &[Pipeline],
    d: &crate::net::router::Delivered,
    quiet_since: i64,
    store: &crate::store::Store,
) -> Option<(String, usize, std::collections::BTreeMap<String, String>)> {
    let crate::net::Observation::Event {
        source,
        name,
        value,
        ..
    } = &d.observation
    else {
        return None;
    };
    if d.at_us < quiet_since {
        return None;
    }
    let line = format!("{source} {name} {value}");
    let (p, index) = served.iter().find_map(|p| {
        (p.environment == d.environment)
            .then(|| p.on_event.iter().position(|e| e.pattern.is_match(&line)))
            .flatten()
            .map(|i| (p, i))
    })?;
    if store
        .leases()
        .ok()?
        .iter()
        .any(|l| l.environment == d.environment)
    {
        return None;
    }
    let vars = [
        ("event.source", source.as_str()),
        ("event.name", name.as_str()),
        ("event.value", value.as_str()),
        ("event.daemon", d.daemon.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Some((p.name.clone(), index, vars))
}

/// Posts the verdict of a run the server started by the clock or continuously (a
/// change's runs post from the round).
fn post_after(cli: &Cli, project: &std::path::Path, name: &str) {
    if let Some(p) = served(project, &[name.to_string()]).first() {
        super::poll::post_verdicts(cli, project, p);
    }
}

/// The pipelines this server looks after: named ones, or every one with repositories,
/// a schedule or continuous mode. Read again every round: the repository may change them.
fn served(project: &std::path::Path, only: &[String]) -> Vec<Pipeline> {
    Pipeline::discover(project)
        .iter()
        .filter_map(|path| match Pipeline::load(path) {
            Ok(p) => Some(p),
            Err(findings) => {
                for f in findings {
                    crate::errln!("{f}");
                }
                None
            }
        })
        .filter(|p| {
            if only.is_empty() {
                !p.repositories.is_empty()
                    || !p.schedule.is_empty()
                    || p.continuous
                    || !p.on_event.is_empty()
            } else {
                only.contains(&p.name)
            }
        })
        .collect()
}

/// The earliest cron fire among the pipelines, with the reason it will carry.
fn next_schedule(
    pipelines: &[Pipeline],
    now: &chrono::DateTime<chrono::Utc>,
) -> Option<(chrono::DateTime<chrono::Utc>, String)> {
    pipelines
        .iter()
        .flat_map(|p| {
            p.schedule.iter().filter_map(|s| {
                s.next_after(now)
                    .map(|at| (at, format!("schedule: {} {}", p.name, s.pattern)))
            })
        })
        .min_by_key(|(at, _)| *at)
}

/// Logs a failed round or run and says how many runs it started; the server goes on.
fn report(result: Result<Result<usize, CliError>, tokio::task::JoinError>) -> usize {
    match result {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            crate::errln!("failed (the server goes on): {e}");
            0
        }
        Err(e) => {
            crate::errln!("panicked (the server goes on): {e}");
            0
        }
    }
}

/// Starts the router when a daemon secret is set, and the data processor that stores what
/// daemons observe. `None` (and a note) without a secret: no daemon could prove itself.
async fn start_router(
    addr: &str,
    project: &std::path::Path,
    store: &crate::store::Store,
    events: tokio::sync::mpsc::UnboundedSender<crate::net::router::Delivered>,
) -> Result<Option<crate::net::router::Router>, CliError> {
    use crate::net::router::{Router, RouterConfig};
    let Some(secret) = std::env::var("LOWTOUCH_DAEMON_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        crate::errln!(
            "note: LOWTOUCH_DAEMON_SECRET is not set: the router is off, no daemon can connect"
        );
        return Ok(None);
    };
    crate::net::auth::check_secret(secret.as_bytes())
        .map_err(|e| CliError::input(e.to_string()))?;
    let state_dir = crate::execute::run::state_dir(project);
    let mut config = RouterConfig::default();
    for name in crate::environment::Environment::names(project) {
        config
            .secrets
            .insert(name.clone(), secret.as_bytes().to_vec());
        let Some(path) = crate::environment::Environment::path_for(project, &name) else {
            continue;
        };
        match crate::environment::Environment::load(&path, &[]) {
            Ok(env) => config
                .configs
                .extend(crate::daemon::config::for_environment(&env, &state_dir)),
            Err(findings) => {
                for f in findings {
                    crate::errln!("{f}");
                }
            }
        }
    }
    // Acknowledged only once stored, and what an earlier server stored is not stored
    // again: exactly once across a restart of the server.
    config.ack_when_stored = true;
    config.inboxes = store.inbox_marks()?;
    let (router, bound, observed) = Router::bind(addr, config)
        .await
        .map_err(|e| CliError::input(format!("--router {addr}: cannot listen: {e}")))?;
    crate::outln!(
        "lowtouch serve: router on {bound} (daemons: lowtouch daemon --server {bound} --name NAME --environment ENV)"
    );
    // The data processor: every observation into the store, on the server's timeline.
    tokio::spawn(crate::daemon::processor::store_all(
        observed,
        store.share(),
        Some(events),
        router.clone(),
    ));
    let _ = crate::daemon::local::SERVER.set(crate::daemon::local::Network::new(
        router.clone(),
        tokio::runtime::Handle::current(),
    ));
    Ok(Some(router))
}

/// The `Cli` commands of clients run with: this server's project, store and history,
/// whatever the client's own flags said (it found the socket through them).
fn cli_for_api(cli: &Cli, project: &std::path::Path) -> Cli {
    let mut c = cli.clone();
    c.chdir = Some(project.to_path_buf());
    c.db = Some(cli.db_path(project));
    c.history = Some(cli.history_path(project));
    c
}

/// What the local API does with a client's command line.
fn executor(base: Cli, runs: tokio::sync::mpsc::UnboundedSender<ApiRun>) -> Executor {
    Arc::new(move |request, sink| {
        let argv = std::iter::once("lowtouch".to_string()).chain(request.argv.iter().cloned());
        let mut cli = match <Cli as clap::Parser>::try_parse_from(argv) {
            Ok(c) => c,
            Err(e) => {
                let stream = if e.use_stderr() {
                    Stream::Err
                } else {
                    Stream::Out
                };
                sink.write(stream, &e.render().to_string());
                sink.exit(if e.use_stderr() { 2 } else { 0 });
                return;
            }
        };
        cli.chdir = base.chdir.clone();
        cli.db = base.db.clone();
        cli.history = base.history.clone();
        let name = cli.command.name();
        if let Command::Run(args) = &cli.command {
            let what = match &args.scenario {
                Some(file) => format!("run --scenario {}", file.display()),
                None if args.pipelines.is_empty() => "run (the default pipelines)".to_string(),
                None => format!("run {}", args.pipelines.join(" ")),
            } + " (asked through the local API)";
            // A continuous pipeline gives way at its next scenario boundary.
            interrupt::request_preemption();
            set_activity(|a| a.queue.push(what.clone()));
            if let Err(refused) = runs.send(ApiRun { cli, sink, what }) {
                refused
                    .0
                    .sink
                    .write(Stream::Err, "lowtouch serve is stopping; nothing was run\n");
                refused.0.sink.exit(super::error::exit::INFRA);
            }
            return;
        }
        if !crate::api::FORWARDED.contains(&name) {
            sink.write(
                Stream::Err,
                &format!("`lowtouch {name}` is not run through the server; run it yourself\n"),
            );
            sink.exit(super::error::exit::BAD_INPUT);
            return;
        }
        tokio::task::spawn_blocking(move || {
            let out: Arc<dyn Sink> = sink.clone();
            let code = console::capture(out, || super::finish(super::execute(&cli)));
            sink.exit(code);
        });
    })
}

/// Runs a client's `lowtouch run` with its output going back to the client. A client
/// that hangs up (Ctrl-C) cancels its run.
async fn run_for_client(r: ApiRun) {
    crate::errln!("{}", r.what);
    set_activity(|a| {
        a.doing = format!("running {}", r.what.trim_start_matches("run "));
        if let Some(i) = a.queue.iter().position(|q| *q == r.what) {
            a.queue.remove(i);
        }
    });
    interrupt::clear_preemption();
    let db = r.cli.db.clone().unwrap_or_default();
    let sink = r.sink.clone();
    let watch = {
        let sink = sink.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if sink.gone() {
                    // Whatever run this client's command is running now.
                    if let Some(lease) = crate::store::Store::open(&db)
                        .ok()
                        .and_then(|s| s.leases().ok())
                        .and_then(|l| l.into_iter().find(|l| l.pid == std::process::id()))
                    {
                        interrupt::cancel(&lease.run_id);
                    }
                    break;
                }
            }
        })
    };
    let cli = r.cli;
    let done = tokio::task::spawn_blocking(move || {
        let out: Arc<dyn Sink> = sink.clone();
        let code = console::capture(out, || super::finish(super::execute(&cli)));
        sink.exit(code);
        code
    })
    .await;
    watch.abort();
    if let Err(e) = done {
        r.sink
            .write(Stream::Err, &format!("the run panicked: {e}\n"));
        r.sink.exit(super::error::exit::INFRA);
    }
}

/// Resolves when Ctrl-C or SIGTERM arrived (the handlers are lowtouch's own).
async fn interrupted() {
    while !interrupt::shutdown() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn hook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, String) {
    // Read within the listener's budget and timeout before the signature can be checked.
    let body = match state.bodies.read(&headers, body).await {
        Ok(body) => body,
        Err(refused) => return (refused.status(), format!("{refused}\n")),
    };
    let body = &body.bytes;
    let response = {
        let mut receiver = state.receiver.lock().unwrap_or_else(|e| e.into_inner());
        receiver.receive(|name| headers.get(name).and_then(|v| v.to_str().ok()), body)
    };
    let why = match &response.delivery {
        Some(Delivery::Push(p)) => Some(format!("push to {} {}", p.repository, p.git_ref)),
        Some(Delivery::Create {
            repository,
            git_ref,
            ..
        }) => Some(format!("{git_ref} created in {repository}")),
        _ => None,
    };
    if let Some(why) = why {
        // A continuous run in progress stops at its next scenario boundary.
        interrupt::request_preemption();
        // A full channel already holds a wake-up: the next round fetches everything anyway.
        let _ = state.wake.try_send(format!("webhook: {why}"));
    }
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, format!("{}\n", response.message))
}
