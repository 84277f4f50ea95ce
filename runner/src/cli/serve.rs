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
//! Not yet here (issue 4): leases, status, pause and lock through a local API, GitHub
//! statuses, https remotes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use clap::Args;

use super::poll::round;
use super::run::{RunArgs, run};
use super::{Cli, CliError};
use crate::execute::interrupt;
use crate::pipeline::Pipeline;
use crate::scenario::duration::parse_duration;
use crate::trigger::webhook::{Delivery, MAX_BODY, Receiver};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where to listen for webhooks (it prints every address it bound).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
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
    wake: tokio::sync::mpsc::Sender<String>,
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
        eprintln!(
            "note: LOWTOUCH_WEBHOOK_SECRET is not set: /hooks/github answers 503 to every delivery"
        );
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| CliError::input(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::infra(format!("no local address: {e}")))?;
    println!("lowtouch serve: listening on http://{addr} (webhooks: POST /hooks/github)");
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let (wake, mut woken) = tokio::sync::mpsc::channel::<String>(64);
    let state = Arc::new(AppState {
        receiver: Mutex::new(Receiver::new(secret.map(String::into_bytes))),
        wake,
    });
    let app = Router::new()
        .route("/hooks/github", post(hook))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(MAX_BODY + 1))
        .with_state(state);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(interrupted())
            .await
    });

    let mut reason = "start".to_string();
    loop {
        interrupt::clear_preemption();
        let now = chrono::Utc::now();
        let served = served(&project, &args.pipelines);
        let ran = if let Some(name) = reason
            .strip_prefix("schedule: ")
            .and_then(|r| r.split_whitespace().next())
        {
            // A cron pattern fired: run that pipeline whatever changed.
            eprintln!("run {name} ({reason})");
            let (c, name) = (cli.clone(), name.to_string());
            report(
                tokio::task::spawn_blocking(move || {
                    run(&c, &RunArgs::pipelines(vec![name])).map(|_| 1)
                })
                .await,
            )
        } else {
            eprintln!("poll ({reason})");
            let (c, p, only) = (cli.clone(), project.clone(), args.pipelines.clone());
            let ran = report(
                tokio::task::spawn_blocking(move || round(&c, &p, &only, false).map(|r| r.ran))
                    .await,
            );
            eprintln!("poll done: {ran} run{}", if ran == 1 { "" } else { "s" });
            ran
        };
        if interrupt::requested() {
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
                if interrupt::requested() || interrupt::preempted() {
                    break;
                }
                eprintln!("run {name} (continuous)");
                let c = cli.clone();
                report(
                    tokio::task::spawn_blocking(move || {
                        run(&c, &RunArgs::pipelines(vec![name])).map(|_| 1)
                    })
                    .await,
                );
            }
            if interrupt::requested() {
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
            reason = tokio::select! {
                _ = tokio::time::sleep(args.poll_interval) => "schedule".to_string(),
                _ = tokio::time::sleep(until_cron) => match next_cron {
                    Some((_, why)) => why,
                    None => "schedule".to_string(),
                },
                Some(why) = woken.recv() => why,
                _ = interrupted() => break,
            };
        }
        // Deliveries that came in meanwhile are served by this same round.
        while let Ok(more) = woken.try_recv() {
            reason = format!("{reason}; {more}");
        }
    }
    let _ = server.await;
    eprintln!("lowtouch serve: stopped");
    Ok(super::error::exit::INTERRUPTED)
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
                    eprintln!("{f}");
                }
                None
            }
        })
        .filter(|p| {
            if only.is_empty() {
                !p.repositories.is_empty() || !p.schedule.is_empty() || p.continuous
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
            eprintln!("failed (the server goes on): {e}");
            0
        }
        Err(e) => {
            eprintln!("panicked (the server goes on): {e}");
            0
        }
    }
}

/// Resolves when Ctrl-C or SIGTERM arrived (the handlers are lowtouch's own).
async fn interrupted() {
    while !interrupt::requested() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn hook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let response = {
        let mut receiver = state.receiver.lock().unwrap_or_else(|e| e.into_inner());
        receiver.receive(
            |name| headers.get(name).and_then(|v| v.to_str().ok()),
            &body,
        )
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
