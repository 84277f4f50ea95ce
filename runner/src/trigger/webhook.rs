//! GitHub webhook deliveries: the signature check (`X-Hub-Signature-256`, HMAC-SHA256 of
//! the raw body, compared in constant time), the size limit, deduplication by
//! `X-GitHub-Delivery`, and the `ping`, `push` and `create` payloads. The HTTP server
//! calls [`Receiver::receive`] and answers with the status it returns.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Bodies larger than this are refused with 413 before anything else is done.
pub const MAX_BODY: usize = 1024 * 1024;

/// What a delivery means for lowtouch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Ping {
        hook_id: Option<u64>,
    },
    /// Commits pushed to a branch or a tag: fetch that repository now.
    Push(Push),
    /// A branch or tag was created.
    Create {
        repository: String,
        ref_type: String,
        git_ref: String,
    },
    /// An event lowtouch does not act on.
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// `OWNER/NAME`.
    pub repository: String,
    /// The full ref, `refs/heads/main` or `refs/tags/v1.2.0`.
    pub git_ref: String,
    pub before: String,
    pub after: String,
    pub created: bool,
    pub deleted: bool,
    pub forced: bool,
}

/// The answer to a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub message: String,
    /// What to act on; `None` when nothing is to be done.
    pub delivery: Option<Delivery>,
}

impl Response {
    fn new(status: u16, message: impl Into<String>) -> Response {
        Response {
            status,
            message: message.into(),
            delivery: None,
        }
    }
}

/// Receives deliveries: knows the secret and remembers recent delivery ids.
pub struct Receiver {
    secret: Option<Vec<u8>>,
    seen: HashSet<String>,
    order: VecDeque<String>,
    remember: usize,
}

impl Receiver {
    /// Without a secret, every delivery is answered 503: an unsigned endpoint must not act.
    pub fn new(secret: Option<Vec<u8>>) -> Receiver {
        Receiver {
            secret: secret.filter(|s| !s.is_empty()),
            seen: HashSet::new(),
            order: VecDeque::new(),
            remember: 10_000,
        }
    }

    /// `header` looks up a request header by (case-insensitive) name.
    pub fn receive<'h>(
        &mut self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Response {
        let Some(secret) = &self.secret else {
            return Response::new(
                503,
                "no webhook secret is configured (LOWTOUCH_WEBHOOK_SECRET); deliveries are refused",
            );
        };
        if body.len() > MAX_BODY {
            return Response::new(413, format!("body over {MAX_BODY} bytes"));
        }
        if let Err(e) = verify(secret, body, header("X-Hub-Signature-256")) {
            return Response::new(401, e.to_string());
        }
        let event = header("X-GitHub-Event").unwrap_or("");
        let id = header("X-GitHub-Delivery");
        if let Some(id) = id
            && self.seen.contains(id)
        {
            return Response::new(200, format!("delivery {id} was already received"));
        }
        let payload = match payload(header("Content-Type"), body) {
            Ok(p) => p,
            Err(message) => return Response::new(400, message),
        };
        let parsed = parse(event, &payload);
        // Only a delivery that was taken is remembered: GitHub's redelivery of one that
        // was refused (a 400) must get through.
        if let (Some(id), Ok(_)) = (id, &parsed) {
            self.remember(id);
        }
        match parsed {
            Ok(d @ Delivery::Ping { .. }) => Response {
                status: 200,
                message: "pong".into(),
                delivery: Some(d),
            },
            Ok(Delivery::Ignored(e)) => Response::new(202, format!("event `{e}` is not acted on")),
            Ok(d) => Response {
                status: 202,
                message: "accepted".into(),
                delivery: Some(d),
            },
            Err(e) => Response::new(400, format!("malformed `{event}` payload: {e}")),
        }
    }
}

impl Receiver {
    fn remember(&mut self, id: &str) {
        self.seen.insert(id.to_string());
        self.order.push_back(id.to_string());
        if self.order.len() > self.remember
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
    }
}

/// The JSON of a delivery: its body, or — for `application/x-www-form-urlencoded`, the
/// content type GitHub uses by default for hooks made through its API — the body's
/// `payload` field. The signature is over the body as sent, either way.
fn payload<'b>(content_type: Option<&str>, body: &'b [u8]) -> Result<Cow<'b, [u8]>, String> {
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/x-www-form-urlencoded") {
        return Ok(Cow::Borrowed(body));
    }
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| Cow::Owned(value.into_owned().into_bytes()))
        .ok_or_else(|| "a form-encoded delivery without a `payload` field".to_string())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256")]
    Missing,
    #[error("X-Hub-Signature-256 is not `sha256=<hex>`")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Verifies `sha256=<hex>` against the body, in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let sig = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Malformed)?;
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

/// The signature GitHub would send for `body`: for tests and for replaying deliveries.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Deserialize)]
struct RepoJson {
    full_name: String,
}

#[derive(Deserialize)]
struct PushJson {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    forced: bool,
    repository: RepoJson,
}

#[derive(Deserialize)]
struct CreateJson {
    #[serde(rename = "ref")]
    git_ref: String,
    ref_type: String,
    repository: RepoJson,
}

#[derive(Deserialize)]
struct PingJson {
    hook_id: Option<u64>,
}

/// Parses a delivery's payload by its `X-GitHub-Event`.
pub fn parse(event: &str, body: &[u8]) -> Result<Delivery, serde_json::Error> {
    Ok(match event {
        "ping" => Delivery::Ping {
            hook_id: serde_json::from_slice::<PingJson>(body)?.hook_id,
        },
        "push" => {
            let p: PushJson = serde_json::from_slice(body)?;
            Delivery::Push(Push {
                repository: p.repository.full_name,
                git_ref: p.git_ref,
                before: p.before,
                after: p.after,
                created: p.created,
                deleted: p.deleted,
                forced: p.forced,
            })
        }
        "create" => {
            let c: CreateJson = serde_json::from_slice(body)?;
            let git_ref = match c.ref_type.as_str() {
                "tag" => format!("refs/tags/{}", c.git_ref),
                _ => format!("refs/heads/{}", c.git_ref),
            };
            Delivery::Create {
                repository: c.repository.full_name,
                ref_type: c.ref_type,
                git_ref,
            }
        }
        other => Delivery::Ignored(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";

    /// A push to a branch, in the shape GitHub sends (trimmed of fields we do not read
    /// but keeping the nesting and types around them).
    const PUSH: &str = r#"{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","repository":{"id":186853002,"name":"exchange","full_name":"octo-org/exchange","private":false,"owner":{"login":"octo-org","id":6811672},"clone_url":"https://github.com/octo-org/exchange.git","default_branch":"main"},"pusher":{"name":"octocat","email":"octocat@github.com"},"created":false,"deleted":false,"forced":false,"base_ref":null,"compare":"https://github.com/octo-org/exchange/compare/6113728f27ae...59b20b8d5c6f","commits":[{"id":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","message":"Faster matching","timestamp":"2026-11-25T10:01:02+01:00","added":[],"removed":[],"modified":["src/book.rs"]}],"head_commit":{"id":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","message":"Faster matching","modified":["src/book.rs"]}}"#;

    fn deliver(
        r: &mut Receiver,
        event: &str,
        id: &str,
        body: &str,
        sig: Option<String>,
    ) -> Response {
        let headers = [
            ("x-github-event".to_string(), event.to_string()),
            ("x-github-delivery".to_string(), id.to_string()),
            ("x-hub-signature-256".to_string(), sig.unwrap_or_default()),
        ];
        r.receive(
            |name| {
                headers
                    .iter()
                    .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
                    .map(|(_, v)| v.as_str())
            },
            body.as_bytes(),
        )
    }

    #[test]
    fn a_form_encoded_delivery_is_read_from_its_payload_field_and_signed_as_sent() {
        let mut r = Receiver::new(Some(SECRET.to_vec()));
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", PUSH)
            .finish();
        let headers = [
            ("x-github-event", "push"),
            ("x-github-delivery", "f-1"),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ];
        let signature = sign(SECRET, form.as_bytes());
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .or((name.eq_ignore_ascii_case("x-hub-signature-256"))
                    .then_some(signature.as_str()))
        };
        let resp = r.receive(header, form.as_bytes());
        assert_eq!(resp.status, 202, "{resp:?}");
        let Some(Delivery::Push(p)) = resp.delivery else {
            panic!("{resp:?}")
        };
        assert_eq!(p.repository, "octo-org/exchange");
        // A form without the field is bad input, said so.
        assert_eq!(
            payload(Some("application/x-www-form-urlencoded"), b"other=1"),
            Err("a form-encoded delivery without a `payload` field".to_string())
        );
        // JSON (any other type, or none) is the body itself.
        assert_eq!(payload(None, b"{}").unwrap(), &b"{}"[..]);
    }

    #[test]
    fn a_refused_delivery_is_not_remembered_so_its_redelivery_gets_through() {
        let mut r = Receiver::new(Some(SECRET.to_vec()));
        let bad = "{not json";
        let resp = deliver(
            &mut r,
            "push",
            "r-1",
            bad,
            Some(sign(SECRET, bad.as_bytes())),
        );
        assert_eq!(resp.status, 400);
        // GitHub redelivers with the same id (here with the payload it meant).
        let resp = deliver(
            &mut r,
            "push",
            "r-1",
            PUSH,
            Some(sign(SECRET, PUSH.as_bytes())),
        );
        assert_eq!(resp.status, 202, "{resp:?}");
        let again = deliver(
            &mut r,
            "push",
            "r-1",
            PUSH,
            Some(sign(SECRET, PUSH.as_bytes())),
        );
        assert_eq!(again.status, 200);
    }

    #[test]
    fn githubs_documented_signature_vector() {
        // From GitHub's docs on validating deliveries.
        assert_eq!(
            sign(SECRET, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn a_signed_push_is_accepted_and_parsed() {
        let mut r = Receiver::new(Some(SECRET.to_vec()));
        let resp = deliver(
            &mut r,
            "push",
            "d-1",
            PUSH,
            Some(sign(SECRET, PUSH.as_bytes())),
        );
        assert_eq!(resp.status, 202);
        let Some(Delivery::Push(p)) = resp.delivery else {
            panic!("{resp:?}")
        };
        assert_eq!(p.repository, "octo-org/exchange");
        assert_eq!(p.git_ref, "refs/heads/main");
        assert!(!p.forced && !p.deleted);
        // The same delivery again is not acted on twice.
        let again = deliver(
            &mut r,
            "push",
            "d-1",
            PUSH,
            Some(sign(SECRET, PUSH.as_bytes())),
        );
        assert_eq!((again.status, again.delivery), (200, None));
    }

    #[test]
    fn bad_or_missing_signatures_do_nothing() {
        let mut r = Receiver::new(Some(SECRET.to_vec()));
        assert_eq!(deliver(&mut r, "push", "a", PUSH, None).status, 401);
        assert_eq!(
            deliver(&mut r, "push", "b", PUSH, Some("sha256=00".into())).status,
            401
        );
        assert_eq!(
            deliver(&mut r, "push", "c", PUSH, Some("sha1=abc".into())).status,
            401
        );
        let wrong = sign(b"another secret", PUSH.as_bytes());
        let resp = deliver(&mut r, "push", "d", PUSH, Some(wrong));
        assert_eq!((resp.status, resp.delivery), (401, None));
        // A refused delivery's id is not remembered: the real one still gets through.
        let ok = deliver(
            &mut r,
            "push",
            "d",
            PUSH,
            Some(sign(SECRET, PUSH.as_bytes())),
        );
        assert_eq!(ok.status, 202);
    }

    #[test]
    fn no_secret_means_503_and_large_bodies_413() {
        let mut r = Receiver::new(None);
        assert_eq!(deliver(&mut r, "ping", "p", "{}", None).status, 503);
        let mut r = Receiver::new(Some(SECRET.to_vec()));
        let big = "x".repeat(MAX_BODY + 1);
        assert_eq!(
            deliver(
                &mut r,
                "push",
                "big",
                &big,
                Some(sign(SECRET, big.as_bytes()))
            )
            .status,
            413
        );
    }

    #[test]
    fn ping_create_tags_force_pushes_deletions_and_unknown_events() {
        let mut r = Receiver::new(Some(SECRET.to_vec()));
        let signed = |b: &str| Some(sign(SECRET, b.as_bytes()));
        let ping = r#"{"zen":"Keep it logically awesome.","hook_id":12345678,"hook":{"type":"Repository","id":12345678,"events":["push","create"]},"repository":{"full_name":"octo-org/exchange"}}"#;
        let resp = deliver(&mut r, "ping", "1", ping, signed(ping));
        assert_eq!(
            (resp.status, resp.delivery),
            (
                200,
                Some(Delivery::Ping {
                    hook_id: Some(12345678)
                })
            )
        );

        let create = r#"{"ref":"v1.4.0","ref_type":"tag","master_branch":"main","pusher_type":"user","repository":{"full_name":"octo-org/exchange"}}"#;
        let resp = deliver(&mut r, "create", "2", create, signed(create));
        assert_eq!(resp.status, 202);
        assert!(
            matches!(resp.delivery, Some(Delivery::Create { ref ref_type, ref git_ref, .. }) if ref_type == "tag" && git_ref == "refs/tags/v1.4.0")
        );

        let forced = PUSH.replace(r#""forced":false"#, r#""forced":true"#);
        let resp = deliver(&mut r, "push", "3", &forced, signed(&forced));
        assert!(matches!(
            resp.delivery,
            Some(Delivery::Push(Push { forced: true, .. }))
        ));

        let deleted = r#"{"ref":"refs/heads/feature","before":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","after":"0000000000000000000000000000000000000000","created":false,"deleted":true,"forced":false,"repository":{"full_name":"octo-org/exchange"},"commits":[],"head_commit":null}"#;
        let resp = deliver(&mut r, "push", "4", deleted, signed(deleted));
        assert!(matches!(
            resp.delivery,
            Some(Delivery::Push(Push { deleted: true, .. }))
        ));

        let issues = r#"{"action":"opened","issue":{"number":1}}"#;
        let resp = deliver(&mut r, "issues", "5", issues, signed(issues));
        assert_eq!((resp.status, resp.delivery), (202, None));

        let broken = r#"{"ref": 5}"#;
        assert_eq!(
            deliver(&mut r, "push", "6", broken, signed(broken)).status,
            400
        );
    }
}
