//! Commit statuses: context `lowtouch/PIPELINE/ENV` on the product commit under test.
//! The token comes from `GITHUB_TOKEN`; the API from `LOWTOUCH_GITHUB_API` (GitHub
//! Enterprise, or the local stand-in the tests run), default `https://api.github.com`.

use std::time::Duration;

use octocrab::models::StatusState;

/// Tries per post; the wait doubles from [`FIRST_BACKOFF`] between them.
pub(crate) const TRIES: u32 = 4;
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// A GitHub that does not answer within this is treated as failing (and retried).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// [`TIMEOUT`], or `LOWTOUCH_GITHUB_TIMEOUT_MS` (a GitHub Enterprise far away, or a test
/// that makes its stand-in hang).
pub(crate) fn timeout() -> Duration {
    std::env::var("LOWTOUCH_GITHUB_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(TIMEOUT, Duration::from_millis)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure,
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Failure => "failure",
            Verdict::Error => "error",
        }
    }

    fn state(self) -> StatusState {
        match self {
            Verdict::Success => StatusState::Success,
            Verdict::Failure => StatusState::Failure,
            Verdict::Error => StatusState::Error,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StatusPost {
    pub owner: String,
    pub repo: String,
    pub sha: String,
    pub context: String,
    pub verdict: Verdict,
    /// At most 140 characters (GitHub's limit).
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("cannot use the GitHub API at {url}: {message}")]
    Setup { url: String, message: String },
    #[error("GitHub refused {what} for {sha} ({context}): {message}")]
    Refused {
        what: &'static str,
        sha: String,
        context: String,
        message: String,
    },
    #[error("GitHub did not take {what} for {sha} ({context}) after {tries} tries: {message}")]
    Unavailable {
        what: &'static str,
        sha: String,
        context: String,
        tries: u32,
        message: String,
    },
    #[error("the GitHub App cannot be used: {0}")]
    App(#[source] super::app::KeyError),
    #[error("the GitHub App cannot be used: {0}")]
    Runtime(#[source] std::io::Error),
}

impl GithubError {
    /// Whether the person's settings are the cause (the App's key); GitHub refusing or
    /// not answering, and the machine, are not.
    pub fn is_bad_input(&self) -> bool {
        match self {
            GithubError::App(key) => key.is_bad_input(),
            GithubError::Setup { .. }
            | GithubError::Refused { .. }
            | GithubError::Unavailable { .. }
            | GithubError::Runtime(_) => false,
        }
    }
}

pub struct GitHub {
    client: octocrab::Octocrab,
    runtime: tokio::runtime::Runtime,
}

impl GitHub {
    /// `None` without `GITHUB_TOKEN`: nothing is posted then.
    pub fn from_env() -> Option<Result<GitHub, GithubError>> {
        let token = std::env::var("GITHUB_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())?;
        Some(GitHub::new(&api_url(), token))
    }

    pub fn new(url: &str, token: String) -> Result<GitHub, GithubError> {
        let setup = |message: String| GithubError::Setup {
            url: url.to_string(),
            message,
        };
        // Its own small runtime: callers are synchronous (a poll round, a run's end).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let client = runtime
            .block_on(async {
                octocrab::Octocrab::builder()
                    .base_uri(url)?
                    .personal_token(token)
                    .set_connect_timeout(Some(timeout()))
                    .set_read_timeout(Some(timeout()))
                    .build()
            })
            .map_err(|e| setup(describe(&e)))?;
        Ok(GitHub { client, runtime })
    }

    /// Posts one status, retrying server errors and timeouts with backoff. A 4xx is not
    /// retried: asking again would get the same answer.
    pub fn post(&self, s: &StatusPost) -> Result<(), GithubError> {
        let mut wait = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=TRIES {
            let description: String = s.description.chars().take(140).collect();
            let sent = self.runtime.block_on(
                self.client
                    .repos(&s.owner, &s.repo)
                    .create_status(s.sha.clone(), s.verdict.state())
                    .context(s.context.clone())
                    .description(description)
                    .send(),
            );
            match sent {
                Ok(_) => return Ok(()),
                Err(e) => {
                    last = describe(&e);
                    if let octocrab::Error::GitHub { source, .. } = &e
                        && source.status_code.is_client_error()
                    {
                        return Err(GithubError::Refused {
                            what: "the status",
                            sha: s.sha.clone(),
                            context: s.context.clone(),
                            message: last,
                        });
                    }
                }
            }
            if attempt < TRIES {
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
        Err(GithubError::Unavailable {
            what: "the status",
            sha: s.sha.clone(),
            context: s.context.clone(),
            tries: TRIES,
            message: last,
        })
    }
}

/// The API's base URL: `LOWTOUCH_GITHUB_API`, default `https://api.github.com`.
pub fn api_url() -> String {
    std::env::var("LOWTOUCH_GITHUB_API").unwrap_or_else(|_| "https://api.github.com".into())
}

/// An octocrab error with its causes, on one line.
pub(crate) fn describe(e: &octocrab::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
