//! Generation, pure: a definition, its snapshots' texts and the environment's param
//! overrides make a [`Generator`] (everything checked), which writes its data set to any
//! `Write`. No files are touched here; [`super::files`] does the I/O.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};

use super::GENERATOR_VERSION;
use super::definition::{Definition, Kind, unknown_param};
use super::rng::SplitMix64;
use super::snapshot::{Flow, Instrument, json_key_finding, parse_flow, parse_instruments};
use crate::scenario::diagnostic::did_you_mean;
use crate::source::{Finding, SourceFile};

/// The header of a generated order file (what the demo exchange's load generator reads).
pub const ORDERS_HEADER: &str = "id,side,symbol,qty,price";
/// Most orders one data set may have.
pub const MAX_COUNT: u64 = 100_000_000;

/// A checked generator, ready to write.
#[derive(Debug)]
pub struct Generator {
    pub kind: Kind,
    /// Every param of the kind with its effective value: the kind's default, over it
    /// the definition's, over that the environment's.
    pub params: BTreeMap<String, String>,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Instruments {
        header: String,
        symbols: Vec<String>,
    },
    Orders(Orders),
}

#[derive(Debug)]
struct Orders {
    count: u64,
    seed: u64,
    /// Standard deviations as fractions (0.005 for 0.5%).
    price_sd: f64,
    qty_sd: f64,
    /// 0 = no limit.
    max_qty: u64,
    /// Symbols with a positive weight, in name order.
    table: Vec<Drawn>,
}

/// One symbol orders are drawn for.
#[derive(Debug)]
struct Drawn {
    symbol: Box<[u8]>,
    /// Cumulative share of the weights up to and including this symbol; the last is 1.
    cum: f64,
    buy_ratio: f64,
    mean_qty: f64,
    /// ref_price / tick_size.
    ref_ticks: f64,
    tick: u64,
}

/// Where an effective param value came from, for findings.
#[derive(Clone, Copy, PartialEq)]
enum From {
    Default,
    Definition,
    Override,
}

/// The effective params and how to report a bad one.
struct Params<'a> {
    def: &'a Definition,
    origin: &'a str,
    values: BTreeMap<String, (String, From)>,
}

impl Params<'_> {
    fn get(&self, name: &str) -> &str {
        &self.values[name].0
    }

    fn error(&self, name: &str, message: String) -> Finding {
        match self.values.get(name).map(|v| v.1) {
            Some(From::Override) => Finding::file(
                &self.def.file.path,
                format!("{message} (set by {})", self.origin),
            ),
            _ => self.def.at_param(name, message),
        }
    }

    /// A whole number in `min..=max`.
    fn whole(&self, name: &str, min: u64, max: u64, findings: &mut Vec<Finding>) -> u64 {
        let text = self.get(name).trim();
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) && text.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                findings.push(self.error(
                    name,
                    format!("{name} must be a whole number from {min} to {max}, got `{text}`"),
                ));
                min
            }
        }
    }

    /// A decimal number in `min..=max`.
    fn number(&self, name: &str, min: f64, max: f64, findings: &mut Vec<Finding>) -> f64 {
        let text = self.get(name).trim();
        match text.parse::<f64>() {
            Ok(x) if (min..=max).contains(&x) => x,
            _ => {
                findings.push(self.error(
                    name,
                    format!("{name} must be a number from {min} to {max}, got `{text}`"),
                ));
                min
            }
        }
    }

    /// A comma list: items trimmed, empty items and repeats dropped. Empty = no filter.
    fn list(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in self.get(name).split(',').map(str::trim) {
            if !item.is_empty() && !out.iter().any(|o| o == item) {
                out.push(item.to_string());
            }
        }
        out
    }

    /// Checks every item of list `name` is one of `known` (named `what` in `file`).
    fn check_list(
        &self,
        name: &str,
        items: &[String],
        known: &[&str],
        what: &str,
        file: &str,
        findings: &mut Vec<Finding>,
    ) {
        for item in items {
            if known.contains(&item.as_str()) {
                continue;
            }
            let f = self.error(
                name,
                format!("{name} names {what} `{item}`, which is not in {file}"),
            );
            findings.push(match did_you_mean(item, known.iter().copied()) {
                Some(close) => f.help(format!("did you mean `{close}`?")),
                None => f.help(format!("{file} has: {}", known.join(", "))),
            });
        }
    }
}

/// Checks a definition with its snapshots (by the definition's snapshot names) and the
/// environment's `overrides`; `origin` names where the overrides come from in findings
/// ("the data entry for `orders.csv`").
pub fn prepare(
    def: &Definition,
    snapshots: &BTreeMap<String, SourceFile>,
    overrides: &BTreeMap<String, String>,
    origin: &str,
) -> Result<Generator, Vec<Finding>> {
    let kind = def.kind;
    let mut findings = Vec::new();
    let mut values = BTreeMap::new();
    for p in kind.params() {
        values.insert(p.name.to_string(), (p.default.to_string(), From::Default));
    }
    for (k, v) in &def.params {
        values.insert(k.clone(), (v.clone(), From::Definition));
    }
    for (k, v) in overrides {
        if !values.contains_key(k) {
            findings.push(unknown_param(
                Finding::file(
                    &def.file.path,
                    format!(
                        "unknown param `{k}` for `{}` generators (set by {origin})",
                        kind.name()
                    ),
                ),
                kind,
                k,
            ));
            continue;
        }
        values.insert(k.clone(), (v.clone(), From::Override));
    }
    let params = Params {
        def,
        origin,
        values,
    };

    let snapshot = |name: &str| -> (&SourceFile, &str) {
        let file = snapshots
            .get(name)
            .unwrap_or_else(|| panic!("snapshot `{name}` not loaded"));
        (file, def.snapshots[name].as_str())
    };
    let (inst_file, inst_name) = snapshot("instruments");
    let instruments = parse_instruments(inst_file).unwrap_or_else(|mut f| {
        findings.append(&mut f);
        Vec::new()
    });

    let body = match kind {
        Kind::Instruments => instruments_body(&params, &instruments, inst_name, &mut findings),
        Kind::Orders => {
            let (flow_file, flow_name) = snapshot("flow");
            match parse_flow(flow_file) {
                Ok(flow) if !instruments.is_empty() => orders_body(
                    &params,
                    &instruments,
                    inst_name,
                    &flow,
                    flow_file,
                    flow_name,
                    &mut findings,
                ),
                Ok(_) => None,
                Err(mut f) => {
                    findings.append(&mut f);
                    None
                }
            }
        }
    };
    match body {
        Some(body) if findings.is_empty() => Ok(Generator {
            kind,
            params: params.values.into_iter().map(|(k, v)| (k, v.0)).collect(),
            body,
        }),
        _ => Err(findings),
    }
}

fn instruments_body(
    params: &Params,
    instruments: &[Instrument],
    inst_name: &str,
    findings: &mut Vec<Finding>,
) -> Option<Body> {
    let markets = params.list("markets");
    let symbols = params.list("symbols");
    if instruments.is_empty() {
        return None;
    }
    let mut known_markets: Vec<&str> = Vec::new();
    for i in instruments {
        if !known_markets.contains(&i.market.as_str()) {
            known_markets.push(&i.market);
        }
    }
    let known_symbols: Vec<&str> = instruments.iter().map(|i| i.symbol.as_str()).collect();
    let before = findings.len();
    params.check_list(
        "markets",
        &markets,
        &known_markets,
        "market",
        inst_name,
        findings,
    );
    params.check_list(
        "symbols",
        &symbols,
        &known_symbols,
        "symbol",
        inst_name,
        findings,
    );
    if findings.len() > before {
        return None;
    }
    let out: Vec<String> = instruments
        .iter()
        .filter(|i| markets.is_empty() || markets.contains(&i.market))
        .filter(|i| symbols.is_empty() || symbols.contains(&i.symbol))
        .map(|i| i.symbol.clone())
        .collect();
    let shown = |list: &[String]| {
        if list.is_empty() {
            "all".to_string()
        } else {
            list.join(",")
        }
    };
    if out.is_empty() {
        findings.push(params.error(
            "markets",
            format!(
                "no instrument of {inst_name} is in markets {} and symbols {}: the list would be empty",
                shown(&markets),
                shown(&symbols)
            ),
        ));
        return None;
    }
    let header = format!(
        "# generated by lowtouch (test-data generator {GENERATOR_VERSION}, instruments): \
         markets={} symbols={}; one symbol per line\n",
        shown(&markets),
        shown(&symbols)
    );
    Some(Body::Instruments {
        header,
        symbols: out,
    })
}

fn orders_body(
    params: &Params,
    instruments: &[Instrument],
    inst_name: &str,
    flow: &Flow,
    flow_file: &SourceFile,
    flow_name: &str,
    findings: &mut Vec<Finding>,
) -> Option<Body> {
    let before = findings.len();
    let count = params.whole("count", 1, MAX_COUNT, findings);
    let seed = params.whole("seed", 0, u64::MAX, findings);
    let price_sd = params.number("price_stddev_pct", 0.0, 50.0, findings) / 100.0;
    let qty_sd = params.number("qty_stddev_pct", 0.0, 100.0, findings) / 100.0;
    let max_qty = params.whole("max_qty", 0, u64::MAX, findings);

    for sym in flow.symbols.keys() {
        if !instruments.iter().any(|i| &i.symbol == sym) {
            findings.push(
                json_key_finding(
                    flow_file,
                    sym,
                    format!("`{sym}` has order flow but is not in {inst_name}"),
                )
                .help(format!("add it to {inst_name} or remove it here")),
            );
        }
    }
    let symbols = params.list("symbols");
    for sym in &symbols {
        if flow.symbols.contains_key(sym) {
            continue;
        }
        if instruments.iter().any(|i| &i.symbol == sym) {
            findings.push(params.error(
                "symbols",
                format!("symbols names `{sym}`, which has no order flow in {flow_name}"),
            ));
        } else {
            params.check_list(
                "symbols",
                std::slice::from_ref(sym),
                &flow.symbols.keys().map(String::as_str).collect::<Vec<_>>(),
                "symbol",
                flow_name,
                findings,
            );
        }
    }
    if findings.len() > before {
        return None;
    }

    let chosen: Vec<(&String, _)> = flow
        .symbols
        .iter()
        .filter(|(sym, stat)| (symbols.is_empty() || symbols.contains(sym)) && stat.weight > 0.0)
        .collect();
    let total: f64 = chosen.iter().map(|(_, s)| s.weight).sum();
    if chosen.is_empty() || !total.is_finite() {
        let message =
            format!("no orders can be drawn: every selected symbol has weight 0 in {flow_name}");
        findings.push(if symbols.is_empty() {
            json_key_finding(flow_file, "symbols", message)
        } else {
            params.error("symbols", message)
        });
        return None;
    }
    let mut table = Vec::with_capacity(chosen.len());
    let mut running = 0.0;
    for (sym, stat) in &chosen {
        let inst = instruments.iter().find(|i| &i.symbol == *sym)?;
        running += stat.weight;
        table.push(Drawn {
            symbol: sym.as_bytes().into(),
            cum: running / total,
            buy_ratio: stat.buy_ratio,
            mean_qty: stat.mean_qty,
            ref_ticks: inst.ref_price as f64 / inst.tick_size as f64,
            tick: inst.tick_size,
        });
    }
    if let Some(last) = table.last_mut() {
        last.cum = 1.0;
    }
    Some(Body::Orders(Orders {
        count,
        seed,
        price_sd,
        qty_sd,
        max_qty,
        table,
    }))
}

impl Generator {
    /// Writes the data set to `out` (buffered here) and returns how many rows it has.
    /// The bytes depend only on the generator's inputs: no time, no host, no order of
    /// hash maps.
    pub fn write<W: Write>(&self, out: W) -> io::Result<u64> {
        let mut w = BufWriter::with_capacity(1 << 16, out);
        let rows = match &self.body {
            Body::Instruments { header, symbols } => {
                w.write_all(header.as_bytes())?;
                for s in symbols {
                    w.write_all(s.as_bytes())?;
                    w.write_all(b"\n")?;
                }
                symbols.len() as u64
            }
            Body::Orders(o) => o.write(&mut w)?,
        };
        w.flush()?;
        Ok(rows)
    }

    /// How many rows [`Generator::write`] will write.
    pub fn rows(&self) -> u64 {
        match &self.body {
            Body::Instruments { symbols, .. } => symbols.len() as u64,
            Body::Orders(o) => o.count,
        }
    }
}

impl Orders {
    /// One row per order. Per order, in this order forever: a uniform for the symbol,
    /// a uniform for the side, one Box–Muller pair (price, quantity).
    fn write<W: Write>(&self, w: &mut W) -> io::Result<u64> {
        w.write_all(ORDERS_HEADER.as_bytes())?;
        w.write_all(b"\n")?;
        let width = decimal_len(self.count);
        let mut rng = SplitMix64::new(self.seed);
        let mut line = [0u8; 128];
        let last = self.table.len() - 1;
        for n in 1..=self.count {
            let u = rng.unit();
            let d = match self.table.iter().position(|d| u < d.cum) {
                Some(i) => &self.table[i],
                None => &self.table[last],
            };
            let buy = rng.unit() < d.buy_ratio;
            let (zp, zq) = rng.normal_pair();
            let ticks = (d.ref_ticks * (1.0 + self.price_sd * zp)).round();
            let price = d.tick * if ticks < 1.0 { 1 } else { ticks as u64 };
            let q = (d.mean_qty * (1.0 + self.qty_sd * zq)).round();
            let mut qty = if q < 1.0 { 1 } else { q as u64 };
            if self.max_qty > 0 && qty > self.max_qty {
                qty = self.max_qty;
            }

            line[0] = b'o';
            let mut at = put_u64(&mut line, 1, n, width);
            let side: &[u8] = if buy { b",BUY," } else { b",SELL," };
            line[at..at + side.len()].copy_from_slice(side);
            at += side.len();
            line[at..at + d.symbol.len()].copy_from_slice(&d.symbol);
            at += d.symbol.len();
            line[at] = b',';
            at = put_u64(&mut line, at + 1, qty, 1);
            line[at] = b',';
            at = put_u64(&mut line, at + 1, price, 1);
            line[at] = b'\n';
            w.write_all(&line[..at + 1])?;
        }
        Ok(self.count)
    }
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Writes `n` in decimal at `buf[at..]`, zero-padded to `width`; returns the end.
#[inline]
fn put_u64(buf: &mut [u8], at: usize, mut n: u64, width: usize) -> usize {
    let len = decimal_len(n).max(width);
    let end = at + len;
    for slot in buf[at..end].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    end
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    pub(crate) const INSTRUMENTS: &str = "symbol,name,market,ref_price,tick_size\n\
        DEMO,Demo Holdings,MAIN,100,1\n\
        ACME,Acme Industries,MAIN,250,1\n\
        BIG,Big Tick Group,MAIN,1200,5\n\
        TINY,Tiny Ventures,GROWTH,2,1\n\
        IDLE,Idle Labs,GROWTH,40,1\n";

    pub(crate) const FLOW: &str = r#"{
  "date": "2026-03-02",
  "note": "test",
  "symbols": {
    "DEMO": { "weight": 0.5, "buy_ratio": 0.6, "mean_qty": 40 },
    "ACME": { "weight": 0.3, "buy_ratio": 0.5, "mean_qty": 20 },
    "BIG": { "weight": 0.15, "buy_ratio": 0.4, "mean_qty": 5 },
    "TINY": { "weight": 0.05, "buy_ratio": 0.5, "mean_qty": 100 },
    "IDLE": { "weight": 0, "buy_ratio": 0.5, "mean_qty": 10 }
  }
}
"#;

    const ORDERS_DEF: &str = "kind: orders\nsnapshots:\n  instruments: snapshots/instruments.csv\n  \
        flow: snapshots/order_flow.json\nparams:\n  count: 1000\n  seed: 42\n  symbols: \"\"\n  \
        price_stddev_pct: 0.5\n";
    const INSTRUMENTS_DEF: &str = "kind: instruments\nsnapshots:\n  instruments: snapshots/instruments.csv\nparams:\n  markets: \"\"\n";

    fn src(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Generates from definition `def` over `instruments` and `flow` with `overrides`:
    /// the output, or every finding rendered.
    fn run_with(
        def: &str,
        instruments: &str,
        flow: &str,
        overrides: &[(&str, &str)],
    ) -> Result<String, String> {
        let render = |f: Vec<Finding>| f.iter().map(|f| f.to_string()).collect::<String>();
        let def = Definition::parse(&src("def.yaml", def)).map_err(render)?;
        let mut snaps = BTreeMap::new();
        snaps.insert(
            "instruments".to_string(),
            src("instruments.csv", instruments),
        );
        snaps.insert("flow".to_string(), src("flow.json", flow));
        let overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let g = prepare(&def, &snaps, &overrides, "the data entry for `out`").map_err(render)?;
        let mut out = Vec::new();
        let rows = g.write(&mut out).unwrap();
        assert_eq!(rows, g.rows());
        Ok(String::from_utf8(out).unwrap())
    }

    fn orders(overrides: &[(&str, &str)]) -> String {
        run_with(ORDERS_DEF, INSTRUMENTS, FLOW, overrides).unwrap()
    }

    /// `def` with `overrides` fails with every string of `expected` in its findings.
    fn check_err(
        def: &str,
        instruments: &str,
        flow: &str,
        overrides: &[(&str, &str)],
        expected: &[&str],
    ) {
        match run_with(def, instruments, flow, overrides) {
            Ok(out) => panic!("expected {expected:?}, generated:\n{out}"),
            Err(e) => {
                for want in expected {
                    assert!(e.contains(want), "expected {want:?} in:\n{e}");
                }
            }
        }
    }

    /// Parsed rows: (id, side, symbol, qty, price).
    fn rows(csv: &str) -> Vec<(String, String, String, u64, u64)> {
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(ORDERS_HEADER));
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                assert_eq!(f.len(), 5, "{l}");
                (
                    f[0].to_string(),
                    f[1].to_string(),
                    f[2].to_string(),
                    f[3].parse().unwrap(),
                    f[4].parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn same_inputs_and_seed_give_the_same_bytes() {
        assert_eq!(orders(&[]), orders(&[]));
        assert_ne!(orders(&[]), orders(&[("seed", "43")]));
        let r = rows(&orders(&[]));
        assert_eq!(r.len(), 1000);
        assert_eq!(r[0].0, "o0001");
        assert_eq!(r[999].0, "o1000");
    }

    #[test]
    fn output_is_pinned_forever() {
        // The exact bytes of one configuration. If this changes, generated data changes
        // for every user: bump GENERATOR_VERSION and update the hash.
        let out = orders(&[]);
        let hash: String = Sha256::digest(out.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            out.starts_with(
                "id,side,symbol,qty,price\n\
                 o0001,BUY,DEMO,53,100\n\
                 o0002,SELL,ACME,13,250\n\
                 o0003,SELL,BIG,5,1195\n"
            ),
            "{}",
            &out[..200]
        );
        assert_eq!(
            hash,
            "1a6a94c7ed97902c81542299ca6e6284f46f69ac82c50b995e40ddea84760c83"
        );
    }

    #[test]
    fn distribution_is_plausible() {
        let r = rows(&orders(&[("count", "100000"), ("seed", "7")]));
        assert_eq!(r.len(), 100_000);
        let share = |sym: &str| r.iter().filter(|o| o.2 == sym).count() as f64 / 100_000.0;
        assert!((share("DEMO") - 0.5).abs() < 0.01, "DEMO {}", share("DEMO"));
        assert!((share("ACME") - 0.3).abs() < 0.01, "ACME {}", share("ACME"));
        assert!(
            (share("TINY") - 0.05).abs() < 0.005,
            "TINY {}",
            share("TINY")
        );
        assert_eq!(share("IDLE"), 0.0, "weight 0 is never drawn");
        let demo: Vec<_> = r.iter().filter(|o| o.2 == "DEMO").collect();
        let buys = demo.iter().filter(|o| o.1 == "BUY").count() as f64 / demo.len() as f64;
        assert!((buys - 0.6).abs() < 0.015, "DEMO buys {buys}");
        assert!(demo.iter().all(|o| o.1 == "BUY" || o.1 == "SELL"));
        let mean_price = demo.iter().map(|o| o.4 as f64).sum::<f64>() / demo.len() as f64;
        assert!(
            (mean_price - 100.0).abs() < 0.05,
            "DEMO mean price {mean_price}"
        );
        assert!(
            demo.iter().all(|o| (95..=105).contains(&o.4)),
            "0.5% stddev stays near 100"
        );
        let mean_qty = demo.iter().map(|o| o.3 as f64).sum::<f64>() / demo.len() as f64;
        assert!((mean_qty - 40.0).abs() < 1.0, "DEMO mean qty {mean_qty}");
        assert!(
            r.iter().filter(|o| o.2 == "BIG").all(|o| o.4 % 5 == 0),
            "BIG keeps its tick"
        );
        assert!(r.iter().all(|o| o.3 >= 1 && o.4 >= 1));
        assert!(r.iter().all(|o| o.0.len() <= 48));
    }

    #[test]
    fn prices_and_quantities_stay_positive_under_wild_spreads() {
        let r = rows(&orders(&[
            ("count", "50000"),
            ("price_stddev_pct", "50"),
            ("qty_stddev_pct", "100"),
            ("max_qty", "60"),
        ]));
        assert!(r.iter().all(|o| o.4 >= 1 && (1..=60).contains(&o.3)));
        assert!(
            r.iter().any(|o| o.2 == "TINY" && o.4 == 1),
            "clamped at one tick"
        );
        assert!(r.iter().any(|o| o.3 == 60), "clamped at max_qty");
    }

    #[test]
    fn symbol_filter_limits_orders() {
        let r = rows(&orders(&[("symbols", " ACME, BIG ,ACME")]));
        assert!(r.iter().all(|o| o.2 == "ACME" || o.2 == "BIG"));
        assert!(r.iter().any(|o| o.2 == "BIG"));
        // Zero stddev: every price is the reference price.
        let r = rows(&orders(&[("symbols", "DEMO"), ("price_stddev_pct", "0")]));
        assert!(r.iter().all(|o| o.2 == "DEMO" && o.4 == 100));
    }

    #[test]
    fn instruments_are_listed_with_filters() {
        let run =
            |overrides: &[(&str, &str)]| run_with(INSTRUMENTS_DEF, INSTRUMENTS, FLOW, overrides);
        let all = run(&[]).unwrap();
        assert_eq!(
            all,
            "# generated by lowtouch (test-data generator 1, instruments): markets=all \
             symbols=all; one symbol per line\nDEMO\nACME\nBIG\nTINY\nIDLE\n"
        );
        let growth = run(&[("markets", "GROWTH")]).unwrap();
        assert!(
            growth.ends_with("symbols=all; one symbol per line\nTINY\nIDLE\n"),
            "{growth}"
        );
        let two = run(&[("symbols", "ACME,DEMO")]).unwrap();
        assert!(two.ends_with("\nDEMO\nACME\n"), "snapshot order: {two}");
        let both = run(&[("symbols", "ACME,TINY"), ("markets", "MAIN")]).unwrap();
        assert!(both.ends_with("line\nACME\n"), "{both}");
    }

    #[test]
    fn param_errors() {
        let o = |overrides: &[(&str, &str)], expected: &[&str]| {
            check_err(ORDERS_DEF, INSTRUMENTS, FLOW, overrides, expected)
        };
        o(
            &[("count", "ten")],
            &[
                "count must be a whole number from 1 to 100000000, got `ten`",
                "(set by the data entry for `out`)",
            ],
        );
        o(&[("count", "0")], &["count must be a whole number from 1"]);
        o(&[("count", "-5")], &["count must be a whole number from 1"]);
        o(&[("seed", "4.2")], &["seed must be a whole number"]);
        o(
            &[("price_stddev_pct", "wide")],
            &["price_stddev_pct must be a number from 0 to 50"],
        );
        o(
            &[("price_stddev_pct", "NaN")],
            &["price_stddev_pct must be a number"],
        );
        o(
            &[("colour", "red")],
            &[
                "unknown param `colour` for `orders` generators (set by the data entry for `out`)",
                "known params: count, seed, symbols, price_stddev_pct, qty_stddev_pct, max_qty",
            ],
        );
        o(
            &[("symbols", "DEMO,ACNE")],
            &[
                "symbols names symbol `ACNE`, which is not in snapshots/order_flow.json",
                "did you mean `ACME`?",
            ],
        );
        o(
            &[("symbols", "IDLE")],
            &["no orders can be drawn: every selected symbol has weight 0"],
        );
        // A bad value in the definition itself points at its line.
        check_err(
            &ORDERS_DEF.replace("count: 1000", "count: lots"),
            INSTRUMENTS,
            FLOW,
            &[],
            &[
                "count must be a whole number from 1 to 100000000, got `lots`",
                "def.yaml:6:3",
            ],
        );
        let i = |overrides: &[(&str, &str)], expected: &[&str]| {
            check_err(INSTRUMENTS_DEF, INSTRUMENTS, FLOW, overrides, expected)
        };
        i(
            &[("markets", "MAIN,SIDE")],
            &[
                "markets names market `SIDE`, which is not in snapshots/instruments.csv",
                "has: MAIN, GROWTH",
            ],
        );
        i(&[("symbols", "XYZ")], &["symbols names symbol `XYZ`"]);
        i(
            &[("symbols", "TINY"), ("markets", "MAIN")],
            &[
                "no instrument of snapshots/instruments.csv is in markets MAIN and symbols TINY: the list would be empty",
            ],
        );
        i(
            &[("count", "5")],
            &[
                "unknown param `count` for `instruments` generators",
                "known params: markets, symbols",
            ],
        );
    }

    #[test]
    fn snapshot_errors() {
        let e = |instruments: &str, flow: &str, overrides: &[(&str, &str)], expected: &[&str]| {
            check_err(ORDERS_DEF, instruments, flow, overrides, expected)
        };
        e(
            &INSTRUMENTS.replace("DEMO,Demo Holdings,", "DEMO,\"Demo, Holdings\","),
            FLOW,
            &[],
            &["quoting is not supported", "instruments.csv:2:6"],
        );
        e(
            &INSTRUMENTS.replace("ACME,Acme Industries,MAIN,250,1", "ACME,Acme"),
            FLOW,
            &[],
            &["instruments.csv:3:1", "expected 5 comma-separated fields"],
        );
        // The flow names a symbol the instruments do not have.
        e(
            &INSTRUMENTS.replace("BIG,Big Tick Group,MAIN,1200,5\n", ""),
            FLOW,
            &[],
            &[
                "`BIG` has order flow but is not in snapshots/instruments.csv",
                "flow.json:7:5",
            ],
        );
        // An instrument without flow cannot be asked for.
        e(
            &format!("{INSTRUMENTS}NEW,New Co,MAIN,10,1\n"),
            FLOW,
            &[("symbols", "NEW")],
            &["symbols names `NEW`, which has no order flow in snapshots/order_flow.json"],
        );
        e(INSTRUMENTS, "{ not json", &[], &["flow.json:1:3"]);
    }
}
