//! Production snapshots, anonymised and small: instrument reference data (CSV) and a
//! day's order-flow statistics (JSON). Parsed from text, so tests need no files; every
//! problem is a [`Finding`] at the file, line and column.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::source::{Finding, SourceFile};

/// The header line an instruments snapshot starts with.
pub const INSTRUMENTS_HEADER: &str = "symbol,name,market,ref_price,tick_size";

/// One row of the instruments snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instrument {
    pub symbol: String,
    pub name: String,
    pub market: String,
    /// Reference price in integer price units (what the exchange trades in).
    pub ref_price: u64,
    /// Prices are multiples of this.
    pub tick_size: u64,
    /// 1-based line in the snapshot, for findings.
    pub line: u32,
}

/// Symbols as the exchange accepts them: 1-16 of `A-Z a-z 0-9 _ . -`.
pub fn valid_symbol(s: &str) -> bool {
    (1..=16).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Parses an instruments snapshot: the header [`INSTRUMENTS_HEADER`], then one
/// instrument per line. Plain comma-separated values, no quoting; blank lines and lines
/// starting with `#` are skipped. Reports every bad line, not just the first.
pub fn parse_instruments(file: &SourceFile) -> Result<Vec<Instrument>, Vec<Finding>> {
    let mut findings = Vec::new();
    let mut out: Vec<Instrument> = Vec::new();
    let mut header_seen = false;
    for (i, raw) in file.text.lines().enumerate() {
        let line_no = i as u32 + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(col) = line.find('"') {
            findings.push(
                Finding::at(file, line_no, col_of(line, col), 1, "quoting is not supported")
                    .help("snapshots are plain comma-separated values: no field may contain a comma or a quote"),
            );
            continue;
        }
        if !header_seen {
            header_seen = true;
            let header: Vec<&str> = line.split(',').map(str::trim).collect();
            if header.join(",") != INSTRUMENTS_HEADER {
                findings.push(
                    Finding::at(file, line_no, 1, line.len(), "not the instruments header")
                        .help(format!("the first line must be `{INSTRUMENTS_HEADER}`")),
                );
                return Err(findings);
            }
            continue;
        }
        match parse_instrument(line) {
            Ok(mut inst) => {
                inst.line = line_no;
                if let Some(first) = out.iter().find(|o| o.symbol == inst.symbol) {
                    findings.push(Finding::at(
                        file,
                        line_no,
                        1,
                        inst.symbol.len(),
                        format!(
                            "duplicate symbol `{}` (first on line {})",
                            inst.symbol, first.line
                        ),
                    ));
                } else {
                    out.push(inst);
                }
            }
            Err((field, message)) => {
                let col = field_col(line, field);
                let len = line.split(',').nth(field).map_or(1, str::len);
                findings.push(
                    Finding::at(file, line_no, col, len, message)
                        .help(format!("each line is `{INSTRUMENTS_HEADER}`")),
                );
            }
        }
    }
    if !header_seen {
        findings.push(
            Finding::at(file, 1, 1, 1, "the instruments snapshot is empty")
                .help(format!("the first line must be `{INSTRUMENTS_HEADER}`")),
        );
    } else if out.is_empty() && findings.is_empty() {
        findings.push(Finding::at(
            file,
            1,
            1,
            1,
            "the instruments snapshot lists no instrument",
        ));
    }
    if findings.is_empty() {
        Ok(out)
    } else {
        Err(findings)
    }
}

/// One data line; on error, the index of the field at fault and the message.
fn parse_instrument(line: &str) -> Result<Instrument, (usize, String)> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [symbol, name, market, ref_price, tick_size] = fields[..] else {
        return Err((
            0,
            format!("expected 5 comma-separated fields, found {}", fields.len()),
        ));
    };
    if !valid_symbol(symbol) {
        return Err((
            0,
            format!("bad symbol `{symbol}` (1-16 of A-Z a-z 0-9 _ . -)"),
        ));
    }
    if name.is_empty() {
        return Err((1, "the name is empty".into()));
    }
    if !valid_symbol(market) {
        return Err((
            2,
            format!("bad market `{market}` (1-16 of A-Z a-z 0-9 _ . -)"),
        ));
    }
    let positive = |s: &str, what: &str, field: usize| match s.parse::<u64>() {
        Ok(n) if n >= 1 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err((
            field,
            format!("{what} must be a whole number ≥ 1, got `{s}`"),
        )),
    };
    Ok(Instrument {
        symbol: symbol.to_string(),
        name: name.to_string(),
        market: market.to_string(),
        ref_price: positive(ref_price, "ref_price", 3)?,
        tick_size: positive(tick_size, "tick_size", 4)?,
        line: 0,
    })
}

/// The 1-based column where field `n` of a comma-separated line starts.
fn field_col(line: &str, n: usize) -> u32 {
    let mut byte = 0;
    for (i, f) in line.split(',').enumerate() {
        if i == n {
            let lead = f.len() - f.trim_start().len();
            return col_of(line, byte + lead);
        }
        byte += f.len() + 1;
    }
    1
}

/// The 1-based column of byte offset `byte` in `line`.
fn col_of(line: &str, byte: usize) -> u32 {
    line[..byte].chars().count() as u32 + 1
}

/// A day's order flow, per symbol.
#[derive(Clone, Debug)]
pub struct Flow {
    pub date: String,
    pub symbols: BTreeMap<String, FlowStat>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowStat {
    /// Share of the day's orders (any non-negative scale; normalised over the symbols
    /// drawn from).
    pub weight: f64,
    /// Share of buy orders, 0 to 1.
    pub buy_ratio: f64,
    /// Mean order quantity, at least 1.
    pub mean_qty: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowFile {
    date: String,
    #[allow(dead_code)] // Documentation for people: "anonymised, from …".
    #[serde(default)]
    note: Option<String>,
    symbols: BTreeMap<String, FlowStat>,
}

/// Parses an order-flow snapshot (JSON: `date`, `note`, `symbols: {SYM: {weight,
/// buy_ratio, mean_qty}}`) and checks every number is in range.
pub fn parse_flow(file: &SourceFile) -> Result<Flow, Vec<Finding>> {
    let spec: FlowFile = serde_json::from_str(&file.text).map_err(|e| {
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        vec![Finding::at(
            file,
            e.line() as u32,
            e.column() as u32,
            1,
            message,
        )]
    })?;
    let mut findings = Vec::new();
    for (sym, stat) in &spec.symbols {
        let problem = if !valid_symbol(sym) {
            Some(format!("bad symbol `{sym}` (1-16 of A-Z a-z 0-9 _ . -)"))
        } else if !(stat.weight.is_finite() && stat.weight >= 0.0) {
            Some(format!("`{sym}`: weight must be ≥ 0, got {}", stat.weight))
        } else if !(0.0..=1.0).contains(&stat.buy_ratio) {
            Some(format!(
                "`{sym}`: buy_ratio must be between 0 and 1, got {}",
                stat.buy_ratio
            ))
        } else if !(stat.mean_qty.is_finite() && stat.mean_qty >= 1.0) {
            Some(format!(
                "`{sym}`: mean_qty must be ≥ 1, got {}",
                stat.mean_qty
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            findings.push(json_key_finding(file, sym, message));
        }
    }
    if spec.symbols.is_empty() {
        findings.push(json_key_finding(
            file,
            "symbols",
            "the order flow lists no symbol".into(),
        ));
    }
    if findings.is_empty() {
        Ok(Flow {
            date: spec.date,
            symbols: spec.symbols,
        })
    } else {
        Err(findings)
    }
}

/// A finding at the first place `"key"` is written in a JSON file (the top of the file
/// if it is not found).
pub fn json_key_finding(file: &SourceFile, key: &str, message: String) -> Finding {
    let quoted = format!("\"{key}\"");
    for (i, line) in file.text.lines().enumerate() {
        if let Some(byte) = line.find(&quoted) {
            return Finding::at(
                file,
                i as u32 + 1,
                col_of(line, byte),
                quoted.len(),
                message,
            );
        }
    }
    Finding::at(file, 1, 1, 1, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> SourceFile {
        SourceFile {
            path: "snap".into(),
            text: text.into(),
        }
    }

    /// Parses `input` as an instruments snapshot: `Ok` symbols or every finding rendered.
    fn instruments(input: &str) -> Result<Vec<String>, String> {
        parse_instruments(&src(input))
            .map(|v| v.into_iter().map(|i| i.symbol).collect())
            .map_err(|f| f.iter().map(|f| f.to_string()).collect())
    }

    fn check(input: &str, expected: Result<&[&str], &[&str]>) {
        match (instruments(input), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(wants)) => {
                for want in wants {
                    assert!(got.contains(want), "expected {want:?} in:\n{got}");
                }
            }
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    const HEAD: &str = "symbol,name,market,ref_price,tick_size\n";

    #[test]
    fn instruments_parse() {
        check(
            &format!("# comment\n{HEAD}A,Alpha,MAIN,100,1\r\n\n B , Beta Co , GROWTH , 5 , 5 \n"),
            Ok(&["A", "B"]),
        );
    }

    #[test]
    fn instrument_errors_name_the_line_and_column() {
        check(
            &format!("{HEAD}A,\"Alpha, Inc\",MAIN,100,1\n"),
            Err(&["quoting is not supported", "snap:2:3", "^"]),
        );
        check(
            &format!("{HEAD}A,Alpha,MAIN,100\n"),
            Err(&["expected 5 comma-separated fields, found 4", "snap:2:1"]),
        );
        check(
            &format!("{HEAD}A,Alpha,MAIN,ten,1\n"),
            Err(&[
                "ref_price must be a whole number ≥ 1, got `ten`",
                "snap:2:14",
            ]),
        );
        check(
            &format!("{HEAD}A,Alpha,MAIN,10,0\n"),
            Err(&["tick_size must be"]),
        );
        check(
            &format!("{HEAD}A$,Alpha,MAIN,10,1\n"),
            Err(&["bad symbol `A$`"]),
        );
        check(
            &format!("{HEAD}A,Alpha,MAIN,10,1\nA,Again,MAIN,10,1\n"),
            Err(&["duplicate symbol `A` (first on line 2)", "snap:3:1"]),
        );
        check(
            "sym,name\nA,B\n",
            Err(&["not the instruments header", "snap:1:1"]),
        );
        check("", Err(&["the instruments snapshot is empty"]));
        check(HEAD, Err(&["lists no instrument"]));
        // Every bad line at once.
        check(
            &format!("{HEAD}A,Alpha,MAIN,x,1\nB,Beta,MAIN,1,y\n"),
            Err(&["snap:2:", "snap:3:"]),
        );
    }

    fn flow_err(input: &str) -> String {
        parse_flow(&src(input))
            .unwrap_err()
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn flow_parses_and_checks_ranges() {
        let ok = r#"{"date": "2026-03-02", "note": "anonymised",
            "symbols": {"A": {"weight": 2, "buy_ratio": 0.5, "mean_qty": 10}}}"#;
        let flow = parse_flow(&src(ok)).unwrap();
        assert_eq!(flow.date, "2026-03-02");
        assert_eq!(flow.symbols["A"].weight, 2.0);

        let bad = "{\"date\": \"d\",\n \"symbols\": {\n  \"A\": {\"weight\": 1, \"buy_ratio\": 1.5, \"mean_qty\": 10}}}";
        let err = flow_err(bad);
        assert!(
            err.contains("`A`: buy_ratio must be between 0 and 1"),
            "{err}"
        );
        assert!(err.contains("snap:3:3"), "{err}");

        let err = flow_err("{\"date\": \"d\", \"symbols\": {\"A\": {\"weight\": 1}}}");
        assert!(err.contains("missing field `buy_ratio`"), "{err}");
        let err = flow_err("{\"date\": \"d\", \"symbols\": {}, \"extra\": 1}");
        assert!(err.contains("unknown field `extra`"), "{err}");
        let err = flow_err("{\"date\": \"d\",\n \"symbols\": {}}");
        assert!(
            err.contains("lists no symbol") && err.contains("snap:2:2"),
            "{err}"
        );
        let err = flow_err(
            "{\"date\": \"d\",\n \"symbols\": {\"A\": {\"weight\": -1, \"buy_ratio\": 0.5, \"mean_qty\": 1}}}",
        );
        assert!(err.contains("weight must be ≥ 0"), "{err}");
    }
}
