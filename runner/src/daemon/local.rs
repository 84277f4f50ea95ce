//! One path, local and distributed: a `lowtouch run` without a server starts an
//! in-process router on loopback and a daemon for each daemon its environments declare,
//! speaking the same protocol as a remote one; what they observe is stored like a
//! server's. A run inside `lowtouch serve` uses the server's router instead.

use std::time::Duration;

use crate::environment::Environment;
use crate::net::codec::Command;
use crate::net::router::{Outcome, Router, RouterConfig, RouterError};
use crate::process::control::RunControl;
use crate::store::Store;

/// A run's way to the daemons: a router and the runtime it lives on. Its calls block, for
/// the run's threads (never call them from inside the runtime).
#[derive(Clone)]
pub struct Network {
    pub router: Router,
    handle: tokio::runtime::Handle,
}

/// Why a command through the network has no outcome.
#[derive(Debug, PartialEq)]
pub enum Failed {
    Router(RouterError),
    Interrupted,
}

impl Network {
    pub fn new(router: Router, handle: tokio::runtime::Handle) -> Network {
        Network { router, handle }
    }

    /// Sends `command` to `daemon` and waits for its outcome (at most `timeout`); `stop`
    /// (its run's control) ends the wait early (the daemon finishes on its own).
    pub fn command(
        &self,
        daemon: &str,
        command: Command,
        timeout: Duration,
        stop: Option<&RunControl>,
    ) -> Result<Outcome, Failed> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (router, daemon) = (self.router.clone(), daemon.to_string());
        self.handle.spawn(async move {
            let _ = tx.send(router.command(&daemon, command, timeout).await);
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(r) => return r.map_err(Failed::Router),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Failed::Router(RouterError::Gone("the router".into())));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if stop.is_some_and(RunControl::stop_requested) {
                        return Err(Failed::Interrupted);
                    }
                }
            }
        }
    }
}

/// The in-process network of one run; stopped when dropped.
pub struct LocalNetwork {
    runtime: Option<tokio::runtime::Runtime>,
    network: Network,
    pub daemons: Vec<String>,
}

impl LocalNetwork {
    /// Starts a router and the environments' daemons, and waits (up to 3 s) until every
    /// daemon is connected and configured. `None` when no environment declares a daemon.
    pub fn start(
        envs: &[&Environment],
        state_dir: &std::path::Path,
        store: &Store,
        control: &RunControl,
    ) -> Result<Option<LocalNetwork>, String> {
        let wanted: Vec<(String, String)> = envs
            .iter()
            .flat_map(|e| e.daemons.values().map(|d| (e.name.clone(), d.name.clone())))
            .collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        let secret = crate::net::auth::nonce().into_bytes();
        let mut config = RouterConfig {
            ack_when_stored: true,
            ..RouterConfig::default()
        };
        for env in envs {
            config.secrets.insert(env.name.clone(), secret.clone());
            config
                .configs
                .extend(super::config::for_environment(env, state_dir));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("monitor")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the monitoring network: {e}"))?;
        let store = store.share();
        let (connected, router) = runtime.block_on(async {
            let (router, addr, rx) = Router::bind("127.0.0.1:0", config)
                .await
                .map_err(|e| format!("the local router cannot listen on loopback: {e}"))?;
            tokio::spawn(super::processor::store_all(rx, store, None, router.clone()));
            for (env, name) in &wanted {
                let options = super::Options {
                    server: addr.to_string(),
                    name: name.clone(),
                    environment: env.clone(),
                    secret: secret.clone(),
                    outbox_capacity: 100_000,
                    dead_after: Duration::from_secs(3),
                    max_backoff: Duration::from_millis(200),
                    stop: control.clone(),
                };
                tokio::spawn(super::run(options, std::future::pending()));
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            loop {
                let up = router.connected();
                if wanted.iter().all(|(e, n)| {
                    up.iter()
                        .any(|c| &c.name == n && &c.environment == e && c.configured)
                }) {
                    return Ok::<_, String>((true, router));
                }
                if tokio::time::Instant::now() >= deadline {
                    return Ok((false, router));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })?;
        if !connected {
            return Err("the local monitoring daemons did not connect within 3s".into());
        }
        let network = Network::new(router, runtime.handle().clone());
        Ok(Some(LocalNetwork {
            network,
            runtime: Some(runtime),
            daemons: wanted
                .into_iter()
                .map(|(e, n)| format!("{e}/{n}"))
                .collect(),
        }))
    }

    pub fn network(&self) -> &Network {
        &self.network
    }
}

impl Drop for LocalNetwork {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // What the daemons saw last (they wake on every write) reaches the store first.
            std::thread::sleep(Duration::from_millis(20));
            rt.shutdown_timeout(Duration::from_millis(500));
        }
    }
}
