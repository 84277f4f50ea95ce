//! `lowtouch status` as a person reads it: each environment's state and last run, and —
//! inside a server — what it does, its daemons and its queue. Pure.

use std::fmt::Write as _;

use crate::net::router::Connected;

/// What a server says about itself.
pub struct Server {
    /// What it runs, or what it waits for.
    pub doing: String,
    /// Runs asked for and not started yet.
    pub queue: Vec<String>,
    /// Its daemons; `None`: the router is off.
    pub daemons: Option<Vec<Connected>>,
}

/// The status table (`rows` as `status --json` gives them) and the server's part.
pub fn text(rows: &[serde_json::Value], server: Option<&Server>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<12} {:<60} LAST RUN", "ENVIRONMENT", "STATE");
    for r in rows {
        let last = match &r["last_run"] {
            serde_json::Value::Null => "-".to_string(),
            l => format!(
                "{} {} ({} passed, {} failed)",
                l["id"].as_str().unwrap_or(""),
                l["status"].as_str().unwrap_or(""),
                l["passed"],
                l["failed"]
            ),
        };
        let _ = writeln!(
            out,
            "{:<12} {:<60} {last}",
            r["environment"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or("")
        );
    }
    let Some(server) = server else {
        let _ = writeln!(
            out,
            "server: none running (`lowtouch serve` keeps the queue)"
        );
        return out;
    };
    let _ = writeln!(out, "server: {}", server.doing);
    match &server.daemons {
        None => {
            let _ = writeln!(
                out,
                "daemons: the router is off (LOWTOUCH_DAEMON_SECRET unset)"
            );
        }
        Some(connected) => {
            if connected.is_empty() {
                let _ = writeln!(out, "daemons: none connected");
            }
            for d in connected {
                let _ = writeln!(
                    out,
                    "daemon {}/{} from {}: {}{}",
                    d.environment,
                    d.name,
                    d.peer,
                    if d.configured {
                        "following its logs"
                    } else {
                        "configuring"
                    },
                    d.offset_us
                        .map(|(o, e)| format!(
                            ", clock {:+.3} ms (±{:.3})",
                            -o as f64 / 1000.0,
                            e as f64 / 1000.0
                        ))
                        .unwrap_or_default()
                );
            }
        }
    }
    if server.queue.is_empty() {
        let _ = writeln!(out, "queue: empty");
    } else {
        let _ = writeln!(out, "queue: {} waiting", server.queue.len());
        for q in &server.queue {
            let _ = writeln!(out, "  {q}");
        }
    }
    out
}

/// `status --deliveries`: one line per webhook delivery, oldest first, or JSON. Header
/// values are the sender's, so they are escaped.
pub fn deliveries(all: &[crate::app::activity::Delivered], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(all).unwrap_or_default() + "\n";
    }
    if all.is_empty() {
        return "no webhook deliveries since the server started\n".to_string();
    }
    let esc = crate::scenario::diagnostic::escape_text;
    let mut out = String::new();
    for d in all {
        let what = match d.repository.is_empty() {
            true => String::new(),
            false => format!(" {} {}", esc(&d.repository), esc(&d.git_ref)),
        };
        let _ = writeln!(
            out,
            "{} {} {}{what}: {}",
            d.at,
            esc(if d.id.is_empty() { "(no id)" } else { &d.id }),
            esc(if d.event.is_empty() {
                "(no event)"
            } else {
                &d.event
            }),
            esc(&d.outcome)
        );
    }
    out
}
