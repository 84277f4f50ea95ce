//! `POST /hooks/github`: a delivery read within the listener's budget, its signature
//! checked, and what it asks for turned into a [`Wake`]. `GET /healthz` answers `ok`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use super::wake::Wake;
use crate::app::Activity;
use crate::app::activity::Delivered;
use crate::trigger::webhook::{Delivery, Receiver};
use crate::webhook_listener::BodyBudget;

struct Hooks {
    receiver: Mutex<Receiver>,
    /// The memory unauthenticated bodies may hold at once.
    bodies: BodyBudget,
    wake: tokio::sync::mpsc::UnboundedSender<Wake>,
    /// Continuous runs in progress stop at their next scenario boundary.
    preempt: Box<dyn Fn() + Send + Sync>,
    /// Where each delivery is noted for `status --deliveries`.
    activity: Activity,
}

/// The webhook endpoints. `secret`: the webhook secret (`None`: every delivery gets 503).
pub fn routes(
    secret: Option<Vec<u8>>,
    bodies: BodyBudget,
    wake: tokio::sync::mpsc::UnboundedSender<Wake>,
    preempt: impl Fn() + Send + Sync + 'static,
    activity: Activity,
) -> Router {
    let state = Arc::new(Hooks {
        receiver: Mutex::new(Receiver::new(secret)),
        bodies,
        wake,
        preempt: Box::new(preempt),
        activity,
    });
    Router::new()
        .route("/hooks/github", post(hook))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

async fn hook(
    State(state): State<Arc<Hooks>>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, String) {
    // Read within the listener's budget and timeout before the signature can be checked.
    let body = match state.bodies.read(&headers, body).await {
        Ok(body) => body,
        Err(refused) => return (refused.status(), format!("{refused}\n")),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let response = {
        let mut receiver = state.receiver.lock().unwrap_or_else(|e| e.into_inner());
        receiver.receive(header, &body.bytes)
    };
    // What was pushed or created, if it was taken: (repository, ref, created).
    let pushed = match &response.delivery {
        Some(Delivery::Push(p)) => Some((p.repository.as_str(), p.git_ref.as_str(), false)),
        Some(Delivery::Create {
            repository,
            git_ref,
            ..
        }) => Some((repository.as_str(), git_ref.as_str(), true)),
        _ => None,
    };
    if let Some((repository, git_ref, created)) = pushed {
        (state.preempt)();
        // Deliveries that arrive while a round runs coalesce into the next one.
        let _ = state.wake.send(Wake::Webhook {
            repository: repository.to_string(),
            git_ref: git_ref.to_string(),
            created,
        });
    }
    let (repository, git_ref, _) = pushed.unwrap_or(("", "", false));
    state.activity.delivered(Delivered::new(
        header("X-GitHub-Delivery").unwrap_or(""),
        header("X-GitHub-Event").unwrap_or(""),
        repository,
        git_ref,
        &format!("{} {}", response.status, response.message),
    ));
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, format!("{}\n", response.message))
}
