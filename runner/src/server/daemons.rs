//! The server's side of the monitoring network: the router daemons dial, and the data
//! processor that stores what they observe and passes events on.

use super::wake::Wake;
use crate::app::{App, Error};
use crate::net::router::{Router, RouterConfig};

/// Starts the router when a daemon secret is set, and the data processor that stores
/// what daemons observe; attaches the router to `app` so its runs use it. `None` (and a
/// note) without a secret: no daemon could prove itself.
pub async fn start(
    app: &App,
    addr: &str,
    wake: tokio::sync::mpsc::UnboundedSender<Wake>,
) -> Result<Option<Router>, Error> {
    let Some(secret) = std::env::var("LOWTOUCH_DAEMON_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        crate::errln!(
            "note: LOWTOUCH_DAEMON_SECRET is not set: the router is off, no daemon can connect"
        );
        return Ok(None);
    };
    crate::net::auth::check_secret(secret.as_bytes())?;
    let project = app.project();
    let state_dir = project.state_dir();
    let mut config = RouterConfig::default();
    for name in crate::environment::Environment::names(project.root()) {
        config
            .secrets
            .insert(name.clone(), secret.as_bytes().to_vec());
        let Some(path) = crate::environment::Environment::path_for(project.root(), &name) else {
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
    let store = app.store()?;
    // Acknowledged only once stored, and what an earlier server stored is not stored
    // again: exactly once across a restart of the server.
    config.ack_when_stored = true;
    config.inboxes = store.inbox_marks()?;
    let (router, bound, observed) = Router::bind(addr, config)
        .await
        .map_err(|e| Error::infra(format!("--router {addr}: cannot listen: {e}")))?;
    crate::outln!(
        "lowtouch serve: router on {bound} (daemons: lowtouch daemon --server {bound} --name NAME --environment ENV)"
    );
    // Events reach the server's loop as wake-ups.
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(d) = events.recv().await {
            if wake.send(Wake::Event(Box::new(d))).is_err() {
                break;
            }
        }
    });
    // The data processor: every observation into the store, on the server's timeline.
    tokio::spawn(crate::daemon::processor::store_all(
        observed,
        store,
        Some(events_tx),
        router.clone(),
    ));
    app.attach_network(crate::daemon::local::Network::new(
        router.clone(),
        tokio::runtime::Handle::current(),
    ));
    Ok(Some(router))
}
