//! Why the server wakes up: one typed value per cause, from the webhook listener, the
//! local API, the router's events, the clock and the signal handler alike.

use std::sync::Arc;

use crate::api::server::ClientSink;
use crate::app::RunRequest;
use crate::net::router::Delivered;

/// A cause for the server to act.
pub enum Wake {
    /// Time to look for changes (the poll interval, or a round asked for after a run).
    Poll { why: String },
    /// GitHub says something was pushed (`created`: a branch or tag was created).
    Webhook {
        repository: String,
        git_ref: String,
        created: bool,
    },
    /// A `schedule:` pattern of a pipeline fired.
    Schedule { pipeline: String, pattern: String },
    /// A daemon observed something (an event-driven scenario may listen for it).
    Event(Box<Delivered>),
    /// A person's `lowtouch run` through the local API.
    Api(ApiRun),
    /// Ctrl-C or SIGTERM: finish what runs, start nothing new.
    Stop,
}

/// A `lowtouch run` a client asked for through the local API.
pub struct ApiRun {
    pub request: RunRequest,
    /// Where its output and exit code go.
    pub sink: Arc<ClientSink>,
    /// `sink` as the client's flags ask (`--color`, `-q`): what its output is written through.
    pub console: Arc<dyn crate::console::Sink>,
    /// Reports the run to the client as `lowtouch run` would; returns the exit code.
    pub finish: Box<dyn FnOnce(Result<crate::app::Ran, crate::app::Error>) -> i32 + Send>,
}

impl Wake {
    /// The reason a round or run it starts carries in the log.
    pub fn reason(&self) -> String {
        match self {
            Wake::Poll { why } => why.clone(),
            Wake::Webhook {
                repository,
                git_ref,
                created: false,
            } => format!("webhook: push to {repository} {git_ref}"),
            Wake::Webhook {
                repository,
                git_ref,
                created: true,
            } => format!("webhook: {git_ref} created in {repository}"),
            Wake::Schedule { pipeline, pattern } => format!("schedule: {pipeline} {pattern}"),
            Wake::Event(d) => format!("event from {}/{}", d.environment, d.daemon),
            Wake::Api(r) => format!("{} (asked through the local API)", r.request.describe()),
            Wake::Stop => "stop".to_string(),
        }
    }
}
