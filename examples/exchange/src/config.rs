//! The engine's configuration file (`engine --config PATH`), as lowtouch
//! renders it from a template per environment. Pure: the caller reads the
//! files and passes their text plus a name for messages (`origin`, the path),
//! so every error can name `PATH:LINE`.
//!
//! Format: one `key = value` per line. Blank lines and lines starting with
//! `#` are ignored; a `#` outside double quotes starts a trailing comment.
//! A value may be wrapped in double quotes (no escapes; needed only for a
//! value containing `#` or leading/trailing spaces). An empty value (`key =`
//! or `key = ""`) leaves the key unset, so a template can render an unused
//! key as empty. Unknown keys, repeated keys and malformed lines are errors.

use crate::protocol::valid_symbol;

/// Every key the file may contain.
pub const KEYS: &[&str] = &[
    "listen",
    "replication",
    "primary",
    "instruments",
    "instruments_file",
    "max_order_qty",
    "latency_us",
    "leak_kb_per_order",
    "failover_delay_ms",
    "cpu_us_per_order",
    "heartbeat_ms",
    "heartbeat_timeout_ms",
];

/// The settings found in a configuration file; `None` = not set there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub replication: Option<String>,
    pub primary: Option<String>,
    /// Validated, duplicates dropped (first occurrence kept).
    pub instruments: Option<Vec<String>>,
    /// As written; the caller resolves it (relative to the config file's
    /// directory) and reads it with [`parse_instruments`].
    pub instruments_file: Option<String>,
    /// Positive.
    pub max_order_qty: Option<u64>,
    pub latency_us: Option<u64>,
    pub leak_kb_per_order: Option<u64>,
    pub failover_delay_ms: Option<u64>,
    pub cpu_us_per_order: Option<u64>,
    pub heartbeat_ms: Option<u64>,
    pub heartbeat_timeout_ms: Option<u64>,
}

/// Parses a configuration file's text. `origin` names it in errors, which
/// all read `ORIGIN:LINE: message`.
pub fn parse(text: &str, origin: &str) -> Result<ConfigFile, String> {
    let mut cfg = ConfigFile::default();
    // Line of the first occurrence of each key, to refuse repeats.
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let at = |msg: String| format!("{origin}:{line_no}: {msg}");
        let Some((key, value)) = split_line(raw).map_err(at)? else {
            continue;
        };
        let Some(&known) = KEYS.iter().find(|k| **k == key) else {
            return Err(at(format!(
                "unknown key {key:?} (known keys: {})",
                KEYS.join(", ")
            )));
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == known) {
            return Err(at(format!(
                "key {key:?} given twice (first on line {first})"
            )));
        }
        seen.push((known, line_no));
        if value.is_empty() {
            continue;
        }
        let number = || -> Result<u64, String> {
            if !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(at(format!(
                    "{key} must be a non-negative integer, got {value:?}"
                )));
            }
            value
                .parse::<u64>()
                .map_err(|_| at(format!("{key} is too large: {value}")))
        };
        let text = || Some(value.to_string());
        match known {
            "listen" => cfg.listen = text(),
            "replication" => cfg.replication = text(),
            "primary" => cfg.primary = text(),
            "instruments" => {
                let syms = symbol_list(value).map_err(at)?;
                cfg.instruments = Some(syms);
            }
            "instruments_file" => cfg.instruments_file = text(),
            "max_order_qty" => {
                let n = number()?;
                if n == 0 {
                    return Err(at("max_order_qty must be positive".into()));
                }
                cfg.max_order_qty = Some(n);
            }
            "latency_us" => cfg.latency_us = Some(number()?),
            "leak_kb_per_order" => cfg.leak_kb_per_order = Some(number()?),
            "failover_delay_ms" => cfg.failover_delay_ms = Some(number()?),
            "cpu_us_per_order" => cfg.cpu_us_per_order = Some(number()?),
            "heartbeat_ms" => cfg.heartbeat_ms = Some(number()?),
            "heartbeat_timeout_ms" => cfg.heartbeat_timeout_ms = Some(number()?),
            _ => unreachable!("every key in KEYS is handled"),
        }
        if cfg.instruments.is_some() && cfg.instruments_file.is_some() {
            return Err(at(
                "instruments and instruments_file exclude each other".into()
            ));
        }
    }
    Ok(cfg)
}

/// Splits one line into `(key, value)`, or `None` for a blank or comment
/// line. The value has its quotes and surrounding spaces removed.
fn split_line(raw: &str) -> Result<Option<(&str, &str)>, String> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let Some((key, rest)) = line.split_once('=') else {
        return Err(format!("expected `key = value`, got {line:?}"));
    };
    let key = key.trim();
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("bad key {key:?} in {line:?}"));
    }
    let rest = rest.trim_start();
    let value = if let Some(quoted) = rest.strip_prefix('"') {
        let Some((value, after)) = quoted.split_once('"') else {
            return Err(format!("unterminated quote in {line:?}"));
        };
        let after = after.trim_start();
        if !(after.is_empty() || after.starts_with('#')) {
            return Err(format!(
                "unexpected text after the closing quote in {line:?}"
            ));
        }
        value
    } else {
        let value = match rest.split_once('#') {
            Some((value, _comment)) => value,
            None => rest,
        }
        .trim_end();
        if value.contains('"') {
            return Err(format!("stray quote in {line:?}"));
        }
        value
    };
    Ok(Some((key, value)))
}

/// A comma-separated symbol list: items trimmed, empty items dropped,
/// duplicates dropped, each a valid symbol, at least one.
fn symbol_list(value: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for sym in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !valid_symbol(sym) {
            return Err(format!("bad symbol {sym:?} in instruments"));
        }
        if !out.iter().any(|s| s == sym) {
            out.push(sym.to_string());
        }
    }
    if out.is_empty() {
        return Err("instruments needs at least one symbol".into());
    }
    Ok(out)
}

/// Parses an instruments file: one symbol per line, blank lines and `#`
/// comments (whole-line or trailing) ignored, duplicates dropped, at least
/// one symbol. Errors read `ORIGIN:LINE: message`.
pub fn parse_instruments(text: &str, origin: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = match raw.split_once('#') {
            Some((before, _)) => before,
            None => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        if !valid_symbol(line) {
            return Err(format!(
                "{origin}:{}: bad symbol {line:?} (one symbol per line: 1-16 of A-Z a-z 0-9 _ . -)",
                i + 1
            ));
        }
        if !out.iter().any(|s| s == line) {
            out.push(line.to_string());
        }
    }
    if out.is_empty() {
        return Err(format!("{origin}: no symbols in the instruments file"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_file_with_every_key() {
        let text = "\
listen = 127.0.0.1:7001
replication = 127.0.0.1:7101
primary = 127.0.0.1:7102
instruments = DEMO, ACME,DEMO
max_order_qty = 1000
latency_us = 5
leak_kb_per_order = 6
cpu_us_per_order = 8
failover_delay_ms = 7
heartbeat_ms = 50
heartbeat_timeout_ms = 300
";
        let cfg = parse(text, "e.conf").unwrap();
        assert_eq!(
            cfg,
            ConfigFile {
                listen: Some("127.0.0.1:7001".into()),
                replication: Some("127.0.0.1:7101".into()),
                primary: Some("127.0.0.1:7102".into()),
                instruments: Some(vec!["DEMO".into(), "ACME".into()]),
                instruments_file: None,
                max_order_qty: Some(1000),
                latency_us: Some(5),
                leak_kb_per_order: Some(6),
                failover_delay_ms: Some(7),
                cpu_us_per_order: Some(8),
                heartbeat_ms: Some(50),
                heartbeat_timeout_ms: Some(300),
            }
        );
        assert_eq!(parse("", "e.conf"), Ok(ConfigFile::default()));
    }

    #[test]
    fn comments_and_blank_lines() {
        let text = "# rendered for staging\n\n   \n  # indented comment\n\
                    listen = a:1   # trailing comment\r\nlatency_us=3#tight\n";
        let cfg = parse(text, "e.conf").unwrap();
        assert_eq!(cfg.listen.as_deref(), Some("a:1"));
        assert_eq!(cfg.latency_us, Some(3));
    }

    #[test]
    fn quoted_and_empty_values() {
        let text = "listen = \"127.0.0.1:1\"  # quoted\n\
                    instruments_file = \"data/#1 syms.txt\"\n\
                    primary = \"\"\nreplication =\nmax_order_qty = \"10\"\n";
        let cfg = parse(text, "e.conf").unwrap();
        assert_eq!(cfg.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(cfg.instruments_file.as_deref(), Some("data/#1 syms.txt"));
        assert_eq!(cfg.primary, None);
        assert_eq!(cfg.replication, None);
        assert_eq!(cfg.max_order_qty, Some(10));
    }

    #[test]
    fn unknown_key_names_path_line_and_key() {
        let e = parse("listen = a:1\n\nlisten_addr = b:2\n", "/etc/x.conf").unwrap_err();
        assert!(e.starts_with("/etc/x.conf:3: "), "{e}");
        assert!(e.contains("\"listen_addr\""), "{e}");
        // Keys are case-sensitive.
        let e = parse("Listen = a:1\n", "x.conf").unwrap_err();
        assert!(e.starts_with("x.conf:1: "), "{e}");
    }

    #[test]
    fn malformed_lines() {
        for (text, line) in [
            ("listen a:1\n", 1),
            ("# ok\n= a:1\n", 2),
            ("listen = \"a:1\n", 1),
            ("listen = \"a:1\" b\n", 1),
            ("listen = a\"1\n", 1),
            ("lis ten = a:1\n", 1),
            ("listen = a:1\nlisten = b:2\n", 2),
            ("instruments = A\ninstruments_file = f\n", 2),
            ("instruments = BAD$\n", 1),
            ("instruments = ,\n", 1),
        ] {
            let e = parse(text, "x.conf").unwrap_err();
            assert!(e.starts_with(&format!("x.conf:{line}: ")), "{text:?}: {e}");
        }
    }

    #[test]
    fn bad_numbers() {
        for text in [
            "latency_us = fast",
            "heartbeat_ms = -1",
            "max_order_qty = 1.5",
            "max_order_qty = 0",
            "failover_delay_ms = 99999999999999999999999",
            "leak_kb_per_order = +4",
        ] {
            let e = parse(&format!("# c\n{text}\n"), "x.conf").unwrap_err();
            assert!(e.starts_with("x.conf:2: "), "{text}: {e}");
            let key = text.split(' ').next().unwrap();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn instruments_file() {
        let syms = parse_instruments("# generated\nDEMO\n\n  ACME  # note\nDEMO\nX.1\n", "s.txt");
        assert_eq!(syms.unwrap(), ["DEMO", "ACME", "X.1"]);
        let e = parse_instruments("DEMO\nTWO WORDS\n", "s.txt").unwrap_err();
        assert!(e.starts_with("s.txt:2: "), "{e}");
        assert!(parse_instruments("# nothing\n", "s.txt").is_err());
    }
}
