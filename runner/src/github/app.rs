//! Check runs, posted as a GitHub App: the App's JWT (RS256, signed here with its
//! private key), its installation on the repository, an installation token, and a
//! completed check run on the commit under test with a summary — the counts and the
//! failed scenarios.
//!
//! Configured by `LOWTOUCH_GITHUB_APP_ID` and `LOWTOUCH_GITHUB_APP_KEY` (the path of the
//! App's private key, PEM: `BEGIN RSA PRIVATE KEY` as GitHub hands it out, or PKCS#8).
//! The key is read once and never printed; errors name the file, not its contents.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::RsaKeyPair;

/// Why the App's key cannot be used: the variables that name it, its PEM text, or the
/// signature made with it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read LOWTOUCH_GITHUB_APP_KEY={path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// What is wrong with the key in the file `LOWTOUCH_GITHUB_APP_KEY` names.
    #[error("LOWTOUCH_GITHUB_APP_KEY={path}: {source}")]
    InFile {
        path: String,
        #[source]
        source: Box<KeyError>,
    },
    #[error("the App id must be a number, not {0:?}")]
    AppId(String),
    #[error("no `-----BEGIN …-----` line: not a PEM file")]
    NoBegin,
    #[error("a broken BEGIN line")]
    BrokenBegin,
    #[error("no `-----END {label}-----` line")]
    NoEnd { label: String },
    #[error("the PEM body is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    #[error("a `{label}` block is not an RSA private key")]
    NotRsa { label: String },
    #[error("not a usable RSA private key: {0}")]
    Rejected(#[source] ring::error::KeyRejected),
    #[error("signing the App's JWT failed")]
    Signing,
}

impl KeyError {
    /// Whether the person's settings are the cause: the variables, the key file and what
    /// it holds. A key file that cannot be read counts too (the variable names it). Only a
    /// failed signature is the machine's.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, KeyError::Signing)
    }
}

use super::status::{FIRST_BACKOFF, GithubError, TRIES, api_url, describe, timeout};

/// A GitHub App's identity: its id and private key.
pub struct AppKey {
    app_id: String,
    key: RsaKeyPair,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl AppKey {
    /// `None` unless both variables are set: no check runs then.
    pub fn from_env() -> Option<Result<AppKey, GithubError>> {
        let id = std::env::var("LOWTOUCH_GITHUB_APP_ID")
            .ok()
            .filter(|v| !v.is_empty())?;
        let path = std::env::var("LOWTOUCH_GITHUB_APP_KEY")
            .ok()
            .filter(|v| !v.is_empty())?;
        Some(
            std::fs::read_to_string(&path)
                .map_err(|source| KeyError::Unreadable {
                    path: path.clone(),
                    source,
                })
                .and_then(|pem| {
                    AppKey::parse(&id, &pem).map_err(|e| KeyError::InFile {
                        path: path.clone(),
                        source: Box::new(e),
                    })
                })
                .map_err(GithubError::App),
        )
    }

    /// The key from its PEM text.
    pub fn parse(app_id: &str, pem: &str) -> Result<AppKey, KeyError> {
        if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KeyError::AppId(app_id.to_string()));
        }
        let (label, der) = pem_block(pem)?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            _ => return Err(KeyError::NotRsa { label }),
        }
        .map_err(KeyError::Rejected)?;
        Ok(AppKey {
            app_id: app_id.to_string(),
            key,
        })
    }

    /// The App's JWT at `now` (seconds since the epoch): issued a minute back (clocks
    /// drift), valid for nine minutes (GitHub allows ten).
    pub fn jwt(&self, now: u64) -> Result<String, KeyError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": now.saturating_sub(60),
            "exp": now + 9 * 60,
            "iss": self.app_id,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The one PEM block of `text`: its label and its bytes.
fn pem_block(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let begin = text.find("-----BEGIN ").ok_or(KeyError::NoBegin)?;
    let rest = &text[begin + 11..];
    let label_end = rest.find("-----").ok_or(KeyError::BrokenBegin)?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let end = rest.find(&end_marker).ok_or_else(|| KeyError::NoEnd {
        label: label.clone(),
    })?;
    let body: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD.decode(body).map_err(KeyError::Base64)?;
    Ok((label, der))
}

/// A completed check run.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub owner: String,
    pub repo: String,
    pub sha: String,
    /// `lowtouch/PIPELINE/ENV`.
    pub name: String,
    /// `success`, `failure`, `cancelled`…
    pub conclusion: &'static str,
    pub started_at: String,
    pub completed_at: String,
    pub title: String,
    /// Markdown.
    pub summary: String,
}

impl CheckRun {
    fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "head_sha": self.sha,
            "status": "completed",
            "conclusion": self.conclusion,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "output": {
                "title": self.title.chars().take(255).collect::<String>(),
                // GitHub's limit for a summary is 65535 characters.
                "summary": self.summary.chars().take(65_000).collect::<String>(),
            },
        })
    }
}

/// Posts `check` as the App: installation, token, check run, each step retried on
/// server errors and timeouts; a 4xx is final.
pub fn post_check_run(app: &AppKey, check: &CheckRun) -> Result<u64, GithubError> {
    let url = api_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(GithubError::Runtime)?;
    let mut wait = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=TRIES {
        match runtime.block_on(attempt_check_run(&url, app, check)) {
            Ok(id) => return Ok(id),
            Err((final_answer, message)) => {
                if final_answer {
                    return Err(GithubError::Refused {
                        what: "the check run",
                        sha: check.sha.clone(),
                        context: check.name.clone(),
                        message,
                    });
                }
                last = message;
            }
        }
        if attempt < TRIES {
            std::thread::sleep(wait);
            wait *= 2;
        }
    }
    Err(GithubError::Unavailable {
        what: "the check run",
        sha: check.sha.clone(),
        context: check.name.clone(),
        tries: TRIES,
        message: last,
    })
}

/// One try. `Err((true, _))`: GitHub said no (4xx); `Err((false, _))`: try again.
async fn attempt_check_run(
    url: &str,
    app: &AppKey,
    check: &CheckRun,
) -> Result<u64, (bool, String)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let jwt = app.jwt(now).map_err(|e| (true, e.to_string()))?;
    let as_app = client(url, jwt)?;
    let installation: serde_json::Value = as_app
        .get(
            format!("/repos/{}/{}/installation", check.owner, check.repo),
            None::<&()>,
        )
        .await
        .map_err(|e| judged(&e, "finding the App's installation"))?;
    let id = installation["id"]
        .as_u64()
        .ok_or((true, "the installation has no id".to_string()))?;
    let token: serde_json::Value = as_app
        .post(
            format!("/app/installations/{id}/access_tokens"),
            None::<&()>,
        )
        .await
        .map_err(|e| judged(&e, "getting an installation token"))?;
    let token = token["token"]
        .as_str()
        .ok_or((true, "no token in GitHub's answer".to_string()))?
        .to_string();
    let as_installation = client(url, token)?;
    let created: serde_json::Value = as_installation
        .post(
            format!("/repos/{}/{}/check-runs", check.owner, check.repo),
            Some(&check.body()),
        )
        .await
        .map_err(|e| judged(&e, "creating the check run"))?;
    Ok(created["id"].as_u64().unwrap_or(0))
}

fn client(url: &str, bearer: String) -> Result<octocrab::Octocrab, (bool, String)> {
    octocrab::Octocrab::builder()
        .base_uri(url)
        .and_then(|b| {
            b.personal_token(bearer)
                .set_connect_timeout(Some(timeout()))
                .set_read_timeout(Some(timeout()))
                .build()
        })
        .map_err(|e| (true, describe(&e)))
}

/// Whether an error is GitHub's final answer (4xx), with what was being done.
fn judged(e: &octocrab::Error, doing: &str) -> (bool, String) {
    let final_answer =
        matches!(e, octocrab::Error::GitHub { source, .. } if source.status_code.is_client_error());
    (final_answer, format!("{doing}: {}", describe(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../tests/fixtures/github-app-test-key.pem");
    const PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/github-app-test-key.pub.der");

    #[test]
    fn the_jwt_is_rs256_signed_and_says_who_and_when() {
        let app = AppKey::parse("12345", KEY).unwrap();
        let jwt = app.jwt(1_800_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "12345");
        assert_eq!(claims["iat"], 1_800_000_000u64 - 60);
        assert_eq!(claims["exp"], 1_800_000_000u64 + 540);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            PUBLIC,
        );
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("a valid signature");
        assert!(
            !format!("{app:?}").contains("PRIVATE"),
            "Debug shows no key material"
        );
    }

    #[test]
    fn a_bad_key_is_bad_input_a_failed_signature_is_not() {
        let bad = AppKey::parse("1", "hello").unwrap_err();
        assert!(bad.is_bad_input());
        let in_file = KeyError::InFile {
            path: "/k.pem".into(),
            source: Box::new(bad),
        };
        assert!(GithubError::App(in_file).is_bad_input());
        assert!(!GithubError::App(KeyError::Signing).is_bad_input());
    }

    #[test]
    fn bad_keys_say_what_is_wrong() {
        assert!(
            AppKey::parse("12a", KEY)
                .unwrap_err()
                .to_string()
                .contains("number")
        );
        assert!(
            AppKey::parse("1", "hello")
                .unwrap_err()
                .to_string()
                .contains("not a PEM")
        );
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            AppKey::parse("1", cert)
                .unwrap_err()
                .to_string()
                .contains("not an RSA")
        );
        let broken = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(
            AppKey::parse("1", broken)
                .unwrap_err()
                .to_string()
                .contains("not a usable")
        );
    }
}
