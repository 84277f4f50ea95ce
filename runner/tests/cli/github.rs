//! Commit statuses against a local server that behaves as GitHub's API does: it checks
//! the token, the path and the body, and can be told to fail.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::harness::{commit, git, history, watched_project};

#[derive(Default)]
struct Fake {
    /// (owner/repo, sha, state, context, description)
    posts: Vec<(String, String, String, String, String)>,
    /// Answer 502 to this many requests first.
    fail_next: u32,
    requests: u32,
}

type Shared = Arc<Mutex<Fake>>;

async fn create_status(
    State(fake): State<Shared>,
    UrlPath((owner, repo, sha)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let mut f = fake.lock().unwrap();
    f.requests += 1;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !auth.ends_with("good-token") && !auth.ends_with("readonly-token") {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"message":"Requires authentication"}"#.into(),
        );
    }
    if auth.ends_with("readonly-token") {
        return (
            StatusCode::FORBIDDEN,
            r#"{"message":"Resource not accessible by integration"}"#.into(),
        );
    }
    if f.fail_next > 0 {
        f.fail_next -= 1;
        return (
            StatusCode::BAD_GATEWAY,
            r#"{"message":"Server Error"}"#.into(),
        );
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"message":"Problems parsing JSON"}"#.into(),
        );
    };
    let state = v["state"].as_str().unwrap_or("");
    if !["error", "failure", "pending", "success"].contains(&state) || sha.len() != 40 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"message":"Validation Failed"}"#.into(),
        );
    }
    let context = v["context"].as_str().unwrap_or("default").to_string();
    let description = v["description"].as_str().unwrap_or("").to_string();
    f.posts.push((
        format!("{owner}/{repo}"),
        sha.clone(),
        state.to_string(),
        context.clone(),
        description.clone(),
    ));
    let reply = serde_json::json!({
        "url": format!("https://api.github.com/repos/{owner}/{repo}/statuses/{sha}"),
        "avatar_url": null, "id": f.posts.len(), "node_id": "SC_kwDO", "state": state,
        "description": description, "target_url": null, "context": context,
        "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z",
        "creator": null
    });
    (StatusCode::CREATED, reply.to_string())
}

/// Starts the fake on a free port; returns its base URL.
fn start_fake(fake: Shared) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            let app = Router::new()
                .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
                .with_state(fake);
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://127.0.0.1:{}", rx.recv().unwrap())
}

fn head(dir: &std::path::Path) -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_verdict_is_posted_on_the_tested_commit_and_github_failures_never_fail_the_run() {
    let fake: Shared = Arc::default();
    let api = start_fake(fake.clone());
    let (product, p) = watched_project("    github: octo-org/exchange\n");
    let poll = |token: &str| {
        p.lowtouch(&["poll"])
            .env("GITHUB_TOKEN", token)
            .env("LOWTOUCH_GITHUB_API", &api)
            .output()
            .expect_code(0)
    };
    poll("good-token");
    assert!(
        fake.lock().unwrap().posts.is_empty(),
        "first sight posted something"
    );

    commit(product.path(), "src/engine.txt", "v2\n");
    let out = poll("good-token");
    assert!(
        out.stderr
            .contains("github: posted success to octo-org/exchange"),
        "{}",
        out.stderr
    );
    {
        let f = fake.lock().unwrap();
        assert_eq!(f.posts.len(), 1);
        let (repo, sha, state, context, description) = &f.posts[0];
        assert_eq!(
            (repo.as_str(), sha.as_str(), state.as_str()),
            (
                "octo-org/exchange",
                head(product.path()).as_str(),
                "success"
            )
        );
        assert_eq!(context, "lowtouch/watched/local");
        assert!(
            description.starts_with("1 passed, 0 failed"),
            "{description}"
        );
    }

    // GitHub fails twice: retried with backoff, then posted.
    fake.lock().unwrap().fail_next = 2;
    let before = fake.lock().unwrap().requests;
    commit(product.path(), "src/engine.txt", "v3\n");
    let out = poll("good-token");
    assert!(
        out.stderr.contains("github: posted success"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.lock().unwrap().requests - before, 3);

    // A token that may not post: reported, not retried, and the run is stored all the same.
    commit(product.path(), "src/engine.txt", "v4\n");
    let before = fake.lock().unwrap().requests;
    let out = poll("readonly-token");
    assert!(
        out.stderr.contains("GitHub refused the status"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.lock().unwrap().requests - before, 1);
    assert_eq!(history(&p).len(), 3);

    // GitHub unreachable: the run goes on, the failure is said.
    commit(product.path(), "src/engine.txt", "v5\n");
    let out = p
        .lowtouch(&["poll"])
        .env("GITHUB_TOKEN", "good-token")
        .env("LOWTOUCH_GITHUB_API", "http://127.0.0.1:9")
        .output()
        .expect_code(0);
    assert!(
        out.stderr.contains("did not take the status"),
        "{}",
        out.stderr
    );
    assert_eq!(history(&p).len(), 4);
    git(product.path(), &["log", "--oneline", "-1"]);
}
