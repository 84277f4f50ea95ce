//! The fuzz targets: each one feeds an input to a parser or decoder that reads what comes
//! from outside lowtouch, through the same entry point lowtouch itself uses, and renders
//! whatever it reports (rendering places spans in the source, a classic place to panic).
//!
//! A target is a row of [`TARGETS`]: a name (also its corpus folder, `fuzz/corpus/NAME/`),
//! a dictionary of the words its format is made of, and a function that builds its
//! [`Harness`] (a target that needs set-up, such as a loaded environment, does it once
//! there). Adding a target is one row, one function and a folder of seeds.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lowtouch::environment::{Environment, Resolver, Tools};
use lowtouch::net::codec::{self, Decoder};
use lowtouch::pipeline::Pipeline;
use lowtouch::scenario::{self, check};
use lowtouch::source::{Finding, SourceFile};
use lowtouch::testdata::{Definition, snapshot};
use lowtouch::trigger::webhook::{self, Receiver};

/// Runs one input and says what came out as a fingerprint: the driver keeps the inputs
/// whose fingerprint it has not seen yet, so the search drifts towards new behaviour.
pub type Harness = Box<dyn FnMut(&[u8]) -> u64>;

/// One thing to fuzz.
pub struct Target {
    /// Also the name of its seed folder under `fuzz/corpus/`.
    pub name: &'static str,
    /// What it feeds, for `--list` and reports.
    pub about: &'static str,
    /// Words the mutator inserts: the keywords and punctuation of the format.
    pub dictionary: &'static [&'static str],
    /// Builds the harness (once per run, and again after a panic, whose state is suspect).
    pub harness: fn() -> Harness,
}

/// Every target, in the order a run takes them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "scenario",
        about: "scenario::parse, then check against the demo environment",
        dictionary: SCENARIO_WORDS,
        harness: scenario_harness,
    },
    Target {
        name: "pipeline",
        about: "Pipeline::parse (pipeline YAML; scenarios it names are read from pipelines/)",
        dictionary: YAML_WORDS,
        harness: || Box::new(pipeline_input),
    },
    Target {
        name: "environment",
        about: "Environment::parse (environment YAML)",
        dictionary: YAML_WORDS,
        harness: || Box::new(environment_input),
    },
    Target {
        name: "testdata",
        about: "Definition::parse (test data definition YAML)",
        dictionary: YAML_WORDS,
        harness: || Box::new(definition_input),
    },
    Target {
        name: "instruments",
        about: "snapshot::parse_instruments (the instrument snapshot, CSV)",
        dictionary: CSV_WORDS,
        harness: || Box::new(instruments_input),
    },
    Target {
        name: "order_flow",
        about: "snapshot::parse_flow (the order-flow snapshot, JSON)",
        dictionary: JSON_WORDS,
        harness: || Box::new(flow_input),
    },
    Target {
        name: "webhook",
        about: "webhook::Receiver::receive (headers, body, signature, payload)",
        dictionary: WEBHOOK_WORDS,
        harness: webhook_harness,
    },
    Target {
        name: "frame",
        about: "net::codec::Decoder (the router's wire frames, fed in pieces)",
        dictionary: FRAME_WORDS,
        harness: || Box::new(frame_input),
    },
    Target {
        name: "record",
        about: "net::channel (a stranger's first record, a router's answer, bytes on an open channel)",
        // Record heads: nothing, a hello's length, a long one; the preface.
        dictionary: &["\x00", "\x00\x30", "\x00\x7f", "LTN\x02"],
        harness: || Box::new(record_input),
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The repository's root: the loaders look up the files an input names (scenarios,
/// templates) relative to the input's place, so inputs are placed among the real ones.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ sits in the repository")
        .to_path_buf()
}

/// The seed folder of a target.
pub fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}

/// Text loaders read files with `read_to_string`, so only UTF-8 reaches them; bytes that
/// are not become U+FFFD rather than being thrown away, so byte mutations still count.
fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

fn source_at(relative: &str, input: &[u8]) -> SourceFile {
    SourceFile {
        path: project_root().join(relative),
        text: Arc::from(text(input)),
    }
}

/// What the findings say, without the values quoted in them: two inputs that fail the
/// same way have the same fingerprint.
fn fingerprint<'a>(ok: bool, messages: impl Iterator<Item = &'a str>) -> u64 {
    let mut hasher = DefaultHasher::new();
    ok.hash(&mut hasher);
    let mut shapes: Vec<String> = messages.map(shape).collect();
    shapes.sort();
    shapes.dedup();
    shapes.hash(&mut hasher);
    hasher.finish()
}

/// A message's first words, with what is between backticks and every digit dropped:
/// messages go on to quote the input in other ways too ("expected X, found Y").
fn shape(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars() {
        if c == '`' {
            quoted = !quoted;
        } else if !quoted && !c.is_ascii_digit() {
            out.push(c);
        }
    }
    out.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

/// Renders every finding (as `lowtouch check` prints them) and fingerprints them.
fn findings_fingerprint<T>(result: Result<T, Vec<Finding>>) -> u64 {
    match result {
        Ok(_) => fingerprint(true, std::iter::empty()),
        Err(findings) => {
            for f in &findings {
                std::hint::black_box(f.to_string());
            }
            fingerprint(
                false,
                findings.iter().map(|f| f.diagnostic.message.as_str()),
            )
        }
    }
}

fn scenario_harness() -> Harness {
    // Names resolve against the demo environment, as `lowtouch check` resolves them.
    let env = Environment::load(&project_root().join("environments/local.yaml"), &[])
        .unwrap_or_else(|f| panic!("the demo environment loads: {f:?}"));
    let tools = Tools::scan(Vec::new());
    Box::new(move |input| {
        let file = source_at("pipelines/fuzz.scn", input);
        let (ast, mut diagnostics) = scenario::parse(&file.text);
        diagnostics.extend(check::check(&ast, &Resolver::new(&env, &tools)));
        for d in &diagnostics {
            std::hint::black_box(Finding::new(&file, d.clone()).to_string());
        }
        fingerprint(
            diagnostics.is_empty(),
            diagnostics.iter().map(|d| d.message.as_str()),
        )
    })
}

fn pipeline_input(input: &[u8]) -> u64 {
    findings_fingerprint(Pipeline::parse(source_at("pipelines/fuzz.yaml", input)))
}

fn environment_input(input: &[u8]) -> u64 {
    findings_fingerprint(Environment::parse(
        source_at("environments/fuzz.yaml", input),
        &[],
    ))
}

fn definition_input(input: &[u8]) -> u64 {
    findings_fingerprint(Definition::parse(&source_at("testdata/fuzz.yaml", input)))
}

fn instruments_input(input: &[u8]) -> u64 {
    findings_fingerprint(snapshot::parse_instruments(&source_at(
        "testdata/snapshots/fuzz.csv",
        input,
    )))
}

fn flow_input(input: &[u8]) -> u64 {
    findings_fingerprint(snapshot::parse_flow(&source_at(
        "testdata/snapshots/fuzz.json",
        input,
    )))
}

/// The secret the webhook target's receiver holds.
pub const WEBHOOK_SECRET: &[u8] = b"fuzz-secret";

/// A header `X-Hub-Signature-256: sign` in a webhook input stands for the right
/// signature of its body, so mutants get past the check and reach the payload parser.
pub const SIGN_PLACEHOLDER: &str = "sign";

/// Input: header lines (`Name: value`), an empty line, then the body, as on the wire.
/// Each input is received twice: the second is a redelivery.
fn webhook_harness() -> Harness {
    let mut receiver = Receiver::new(Some(WEBHOOK_SECRET.to_vec()));
    Box::new(move |input| {
        let (head, body) = split_head(input);
        let head = text(head);
        let mut headers: Vec<(String, String)> = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        for (name, value) in &mut headers {
            if name.eq_ignore_ascii_case("X-Hub-Signature-256") && value == SIGN_PLACEHOLDER {
                *value = webhook::sign(WEBHOOK_SECRET, body);
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let first = receiver.receive(header, body);
        let again = receiver.receive(header, body);
        let mut hasher = DefaultHasher::new();
        (first.status, again.status).hash(&mut hasher);
        shape(&first.message).hash(&mut hasher);
        std::mem::discriminant(&first.delivery).hash(&mut hasher);
        hasher.finish()
    })
}

/// The header block and the body: split at the first empty line (`\n\n` or `\r\n\r\n`).
fn split_head(input: &[u8]) -> (&[u8], &[u8]) {
    for (i, window) in input.windows(2).enumerate() {
        if window == b"\n\n" {
            return (&input[..i], &input[i + 2..]);
        }
        if window == b"\n\r" && input.get(i + 2) == Some(&b'\n') {
            return (&input[..i], &input[i + 3..]);
        }
    }
    (input, &[])
}

/// Input: the byte stream of a connection. It is decoded twice: fed whole, and fed in
/// pieces of 1 to 16 bytes (a socket delivers frames split anywhere; the size follows
/// from the input, so a run stays reproducible). Every message decoded must encode and
/// decode back to itself, and both feedings must agree.
fn frame_input(input: &[u8]) -> u64 {
    let whole = decode_stream(input, input.len().max(1));
    let piece = input.iter().map(|&b| usize::from(b)).sum::<usize>() % 16 + 1;
    let pieces = decode_stream(input, piece);
    assert_eq!(
        whole, pieces,
        "fed in pieces of {piece} bytes, the stream reads otherwise"
    );
    let mut hasher = DefaultHasher::new();
    whole.hash(&mut hasher);
    hasher.finish()
}

/// Input: a mode byte, then bytes from someone who holds no secret. Mode 0: a stranger's
/// records to the router (the first tried as a hello); 1: a router's answer to a daemon's
/// hello; 2: what arrives on a channel both ends set up. Nothing may open, nothing may panic.
fn record_input(input: &[u8]) -> u64 {
    use lowtouch::net::channel::{Initiator, Records, Responder, psk};
    const SECRET: &[u8] = b"the fuzz target's secret, 32 b..";
    let Some((&mode, bytes)) = input.split_first() else {
        return 0;
    };
    let mut records = Records::default();
    records.feed(bytes);
    let outcome = match mode % 3 {
        0 => {
            let key = psk(SECRET, "fuzz");
            match records.next_record() {
                None => "short".to_string(),
                Some(first) => match Responder::open([("fuzz", &key)], first) {
                    Ok(_) => panic!("a record made without the secret opened"),
                    Err(e) => shape(&e.to_string()),
                },
            }
        }
        1 => {
            let (initiator, _) = Initiator::start(SECRET, "fuzz", b"hello").expect("a hello");
            match records.next_record() {
                None => "short".to_string(),
                Some(answer) => match initiator.finish(answer) {
                    Ok(_) => panic!("an answer made without the secret opened"),
                    Err(e) => shape(&e.to_string()),
                },
            }
        }
        _ => {
            let (initiator, first) = Initiator::start(SECRET, "fuzz", b"hello").expect("a hello");
            let key = psk(SECRET, "fuzz");
            let (_, _, responder) =
                Responder::open([("fuzz", &key)], &first[6..]).expect("our own hello opens");
            let (answer, _, _) = responder.answer(b"greeting").expect("an answer");
            let (_, _, mut opener) = initiator
                .finish(&answer[2..])
                .expect("our own answer opens");
            opener.feed(bytes);
            let mut plain = Vec::new();
            match opener.open(&mut plain) {
                Ok(0) => format!("{} bytes wait", opener.pending().min(8)),
                Ok(_) => panic!("a record sealed without the session's keys opened"),
                Err(e) => shape(&e.to_string()),
            }
        }
    };
    let mut hasher = DefaultHasher::new();
    (mode % 3, outcome).hash(&mut hasher);
    hasher.finish()
}

/// The kinds of the messages read, then the error's shape or how many bytes wait.
fn decode_stream(stream: &[u8], piece: usize) -> (Vec<&'static str>, String) {
    let mut decoder = Decoder::default();
    let mut kinds = Vec::new();
    for chunk in stream.chunks(piece) {
        decoder.feed(chunk);
        let outcome = decoder.for_each_message(|m| {
            let mut again = Decoder::default();
            again.feed(&codec::encode(&m));
            let back = again.next_message();
            assert!(
                matches!(&back, Ok(Some(b)) if *b == m),
                "a decoded {} message does not survive encode and decode: {back:?}",
                m.kind()
            );
            kinds.push(m.kind());
        });
        if let Err(e) = outcome {
            return (kinds, shape(&e.to_string()));
        }
    }
    (kinds, format!("{} bytes wait", decoder.pending().min(8)))
}

const SCENARIO_WORDS: &[&str] = &[
    "\n",
    " ",
    "  ",
    "#",
    "#{",
    "}",
    "${",
    "$",
    "\"",
    "'",
    "\\",
    "=",
    "==",
    "!=",
    "=~",
    "!~",
    "<",
    ">",
    "<=",
    ">=",
    "(",
    ")",
    "{",
    "}",
    ":",
    ";",
    "&&",
    "||",
    "!",
    "->",
    "if ",
    "then ",
    "else ",
    "not ",
    "goto ",
    "label ",
    "set ",
    "expect ",
    "within ",
    "every ",
    "retry ",
    "echo ",
    "sleep ",
    "kill ",
    "start ",
    "stop ",
    "restart ",
    "wait_for ",
    "metric ",
    "MatchingEnginePrimary",
    "MatchingEngineBackup",
    "1s",
    "500ms",
    "2m",
    "1h",
    "0s",
    "18446744073709551615s",
    ".status",
    ".stdout",
    "SIGKILL",
    "SIGTERM",
    "-9",
    "/re/",
    "\u{feff}",
    "\u{0}",
    "\r\n",
];

const YAML_WORDS: &[&str] = &[
    "\n",
    "  ",
    "- ",
    ": ",
    "? ",
    "|",
    ">",
    "|-",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "!tag ",
    "<<: ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "#",
    "---\n",
    "...\n",
    "~",
    "null",
    "true",
    "yes",
    "on",
    "no",
    ".nan",
    "0o17",
    "0x1f",
    "1e999",
    "-.inf",
    "name",
    "description",
    "environment",
    "scenarios",
    "smoke",
    "setup",
    "teardown",
    "before_each",
    "after_each",
    "deploy",
    "variables",
    "repositories",
    "schedule",
    "continuous",
    "maintenance",
    "on_event",
    "match",
    "run",
    "tools",
    "rollout",
    "step_timeout",
    "scenario_timeout",
    "deploy_timeout",
    "step_budget",
    "output_limit",
    "retries",
    "hosts",
    "address",
    "components",
    "aliases",
    "templates",
    "data",
    "secrets",
    "daemons",
    "conditions",
    "rollout_group",
    "command",
    "args",
    "env",
    "host",
    "ports",
    "log",
    "steps",
    "src",
    "dest",
    "generator",
    "params",
    "kind",
    "snapshots",
    "orders",
    "instruments",
    "flow",
    "count",
    "seed",
    "role",
    "url",
    "follow",
    "paths",
    "github",
    "product",
    "#{",
    "}",
    "demo/smoke.scn",
    "../",
    "/",
    "5s",
    "2m",
    "500ms",
    "* * * * *",
    "0 3 * * 1-5",
];

const CSV_WORDS: &[&str] = &[
    "\n",
    "\r\n",
    ",",
    "\"",
    "#",
    "symbol",
    "tick",
    "lot",
    "ref_price",
    "DEMO",
    "ACME",
    "0.01",
    "-1",
    "1e309",
    "NaN",
    "inf",
];

const JSON_WORDS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "false",
    "\"date\"",
    "\"note\"",
    "\"symbols\"",
    "\"weight\"",
    "\"buy_ratio\"",
    "\"mean_qty\"",
    "\"DEMO\"",
    "1e309",
    "-0",
    "0.5",
];

const WEBHOOK_WORDS: &[&str] = &[
    "\n",
    "\n\n",
    ": ",
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-Hub-Signature-256",
    "sha256=",
    "sign",
    "push",
    "ping",
    "create",
    "delete",
    "{",
    "}",
    "\"",
    ":",
    ",",
    "\"ref\"",
    "\"before\"",
    "\"after\"",
    "\"repository\"",
    "\"full_name\"",
    "\"ref_type\"",
    "\"tag\"",
    "\"branch\"",
    "\"hook_id\"",
    "\"created\"",
    "\"deleted\"",
    "\"forced\"",
    "refs/heads/main",
    "refs/tags/v1",
    "null",
    "true",
    "18446744073709551616",
];

const FRAME_WORDS: &[&str] = &[
    "\u{0}\u{0}\u{0}",
    "\u{1}",
    "{",
    "}",
    "\"t\"",
    ":",
    ",",
    "\"hello\"",
    "\"challenge\"",
    "\"auth\"",
    "\"welcome\"",
    "\"configure\"",
    "\"refused\"",
    "\"ping\"",
    "\"pong\"",
    "\"observations\"",
    "\"ack\"",
    "\"dropped\"",
    "\"command\"",
    "\"outcome\"",
    "\"seq\"",
    "\"items\"",
    "\"first_seq\"",
    "\"id\"",
    "null",
    "18446744073709551615",
    "-1",
    "1e400",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_drops_quoted_values_and_digits() {
        assert_eq!(
            shape("scenario `a/b.scn` not found at 12"),
            "scenario not found at"
        );
    }

    #[test]
    fn the_head_ends_at_the_first_empty_line() {
        assert_eq!(split_head(b"A: 1\n\nbody"), (&b"A: 1"[..], &b"body"[..]));
        assert_eq!(
            split_head(b"A: 1\r\n\r\nbody"),
            (&b"A: 1\r"[..], &b"body"[..])
        );
        assert_eq!(split_head(b"A: 1"), (&b"A: 1"[..], &b""[..]));
    }

    #[test]
    fn target_names_are_unique_and_have_seeds() {
        for (i, t) in TARGETS.iter().enumerate() {
            assert!(TARGETS[..i].iter().all(|o| o.name != t.name), "{}", t.name);
            assert!(corpus_dir(t.name).is_dir(), "no corpus for {}", t.name);
        }
    }
}
