//! Log rules: regular expressions with named captures that turn a component's log lines
//! into events (`STATE: (?P<state>\w+)` → a state change) and metric samples
//! (`INTERNAL LATENCY: (?P<us>\d+)` → a latency sample). Pure: bytes in, extractions out.
//!
//! Speed comes from scanning whole buffers, not lines: each rule's regex runs over the
//! buffer with the regex crate's literal prefilter (SIMD `memmem` for `STATE: `), and the
//! capture groups — the expensive part — are resolved only on the lines that matched.
//! Extractions come out in line order, and for one line in rule order; a rule yields at
//! most one extraction per line (its first match), as a line-by-line reader would.

use regex::bytes::Regex;

/// What a rule makes of a matching line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// An event named so; its value is the first named capture (or the whole match).
    Event(String),
    /// A sample of the metric named so; its value is the first named capture, a number.
    Metric(String),
}

/// Why a rule's pattern is not a regular expression. Always the person's environment file
/// (checked where the environment is loaded).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RuleError(#[from] regex::Error);

impl RuleError {
    /// Always: a pattern is what a person wrote.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

/// One rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pattern: Regex,
    kind: RuleKind,
    /// The index of the capture group that holds the value: the first named one, else 0.
    value_group: usize,
    /// The named groups, for an event's fields.
    names: Vec<(usize, String)>,
}

impl Rule {
    /// Compiles a rule. `pattern` is a regular expression (Rust `regex` syntax).
    pub fn new(pattern: &str, kind: RuleKind) -> Result<Rule, RuleError> {
        let regex = Regex::new(pattern)?;
        let names: Vec<(usize, String)> = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, n.to_string())))
            .collect();
        let value_group = names.first().map_or(0, |(i, _)| *i);
        Ok(Rule {
            pattern: regex,
            kind,
            value_group,
            names,
        })
    }

    pub fn kind(&self) -> &RuleKind {
        &self.kind
    }
}

/// What one rule found in one line.
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction<'a> {
    /// Byte offset of the line's start in the scanned buffer.
    pub line_start: usize,
    /// Which rule (its index in the [`RuleSet`]).
    pub rule: usize,
    /// The value: an event's text, or a metric's number as written.
    pub value: &'a [u8],
    /// A metric's value parsed; `None` for events, or a metric value that is no number.
    pub number: Option<f64>,
}

/// The rules of one log, applied together.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        RuleSet { rules }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies the rules to `buf`, which holds whole lines (a last line without its
    /// newline counts as whole: the follower only hands over complete lines). Calls `out`
    /// for every extraction in line order. A metric whose value is no number comes with
    /// `number: None`, for the caller to report.
    pub fn scan<'a>(&self, buf: &'a [u8], mut out: impl FnMut(Extraction<'a>)) {
        if self.rules.len() == 1 {
            self.scan_rule(0, buf, &mut out);
            return;
        }
        let mut found = Vec::new();
        for i in 0..self.rules.len() {
            self.scan_rule(i, buf, &mut |e| found.push(e));
        }
        // Each rule's list is in line order already; a stable sort by line keeps rule
        // order within a line.
        found.sort_by_key(|e| e.line_start);
        for e in found {
            out(e);
        }
    }

    fn scan_rule<'a>(&self, i: usize, buf: &'a [u8], out: &mut impl FnMut(Extraction<'a>)) {
        let rule = &self.rules[i];
        let mut from = 0;
        while from < buf.len() {
            let Some(m) = rule.pattern.find_at(buf, from) else {
                return;
            };
            let line_start = memchr::memrchr(b'\n', &buf[..m.start()]).map_or(0, |p| p + 1);
            let line_end =
                memchr::memchr(b'\n', &buf[m.start()..]).map_or(buf.len(), |p| m.start() + p);
            let line = &buf[line_start..line_end];
            // The match may have run across a newline (`\s` matches one): the line alone
            // decides. Captures are resolved here only, on the one line.
            if let Some(caps) = rule.pattern.captures(line) {
                let value = caps
                    .get(rule.value_group)
                    .or_else(|| caps.get(0))
                    .map_or(&line[..0], |g| g.as_bytes());
                let number = match rule.kind {
                    RuleKind::Metric(_) => parse_number(value),
                    RuleKind::Event(_) => None,
                };
                out(Extraction {
                    line_start,
                    rule: i,
                    value,
                    number,
                });
            }
            from = line_end + 1;
        }
    }

    /// An event's named captures as (name, text) pairs, for one line a rule matched.
    pub fn fields<'a>(&self, rule: usize, line: &'a [u8]) -> Vec<(&str, &'a [u8])> {
        let r = &self.rules[rule];
        let Some(caps) = r.pattern.captures(line) else {
            return Vec::new();
        };
        r.names
            .iter()
            .filter_map(|(i, n)| caps.get(*i).map(|g| (n.as_str(), g.as_bytes())))
            .collect()
    }
}

/// A metric value as written: integer or decimal, optionally signed.
fn parse_number(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_rules() -> RuleSet {
        RuleSet::new(vec![
            Rule::new(r"STATE: (?P<state>\w+)", RuleKind::Event("state".into())).unwrap(),
            Rule::new(
                r"INTERNAL LATENCY: (?P<us>\d+)",
                RuleKind::Metric("internal_latency_us".into()),
            )
            .unwrap(),
        ])
    }

    fn collect(rules: &RuleSet, text: &str) -> Vec<(usize, String, Option<f64>)> {
        let mut out = Vec::new();
        rules.scan(text.as_bytes(), |e| {
            out.push((
                e.rule,
                String::from_utf8_lossy(e.value).into_owned(),
                e.number,
            ))
        });
        out
    }

    #[test]
    fn events_and_metrics_in_line_order() {
        let text = "t0 ORDER NEW\n\
                    t1 INTERNAL LATENCY: 12 us\n\
                    t2 STATE: READY prev=SYNCING\n\
                    t3 INTERNAL LATENCY: 7 us STATE: ACTIVE\n\
                    t4 STATE: HALTED";
        assert_eq!(
            collect(&demo_rules(), text),
            vec![
                (1, "12".into(), Some(12.0)),
                (0, "READY".into(), None),
                // Two rules on one line: rule order.
                (0, "ACTIVE".into(), None),
                (1, "7".into(), Some(7.0)),
                (0, "HALTED".into(), None),
            ]
        );
    }

    #[test]
    fn a_log_that_is_not_text_is_scanned_around_the_garbage() {
        // Binary junk, invalid UTF-8 and NUL bytes between good lines: nothing panics,
        // the good lines still count, and no match spans a line.
        let mut buf = b"STATE: READY\n\x00\xff\xfe garbage \x80STATE\n".to_vec();
        buf.extend_from_slice(b"\xc3\x28 INTERNAL LATENCY: 42 us\n\x00\x00\n");
        buf.extend_from_slice(&[0xff; 300]);
        buf.extend_from_slice(b"\nSTATE: ACTIVE\n");
        let mut got = Vec::new();
        demo_rules().scan(&buf, |e| {
            got.push((e.rule, String::from_utf8_lossy(e.value).into_owned()))
        });
        assert_eq!(
            got,
            vec![
                (0, "READY".to_string()),
                (1, "42".to_string()),
                (0, "ACTIVE".to_string())
            ]
        );
    }

    #[test]
    fn one_extraction_per_rule_and_line_and_none_across_lines() {
        let rules = RuleSet::new(vec![
            Rule::new(r"a\s+b(?P<n>\d)", RuleKind::Event("ab".into())).unwrap(),
        ]);
        // `\s+` could match the newline between `a` and `b1`: it must not count.
        assert_eq!(
            collect(&rules, "x a\nb1 y\na  b2 a b3\n"),
            vec![(0, "2".into(), None)]
        );
    }

    #[test]
    fn without_named_groups_the_whole_match_is_the_value() {
        let rules = RuleSet::new(vec![
            Rule::new(r"SLOW CONSUMER", RuleKind::Event("slow".into())).unwrap(),
        ]);
        assert_eq!(
            collect(&rules, "ok\nWARN SLOW CONSUMER s=1\n"),
            vec![(0, "SLOW CONSUMER".into(), None)]
        );
        let demo = demo_rules();
        let fields = demo.fields(0, b"STATE: READY");
        assert_eq!(fields, vec![("state", &b"READY"[..])]);
    }

    #[test]
    fn a_metric_value_that_is_no_number_is_kept_as_text() {
        let rules = RuleSet::new(vec![
            Rule::new(r"lat=(?P<v>\S+)", RuleKind::Metric("lat".into())).unwrap(),
        ]);
        assert_eq!(
            collect(&rules, "lat=1.5e3\nlat=fast\n"),
            vec![(0, "1.5e3".into(), Some(1500.0)), (0, "fast".into(), None)]
        );
        let bad = Rule::new("(", RuleKind::Event("x".into())).unwrap_err();
        assert!(bad.is_bad_input());
    }

    proptest::proptest! {
        /// Whatever the text, scanning buffers gives what a line-by-line reader gives.
        #[test]
        fn buffer_scan_equals_line_by_line(
            lines in proptest::collection::vec(
                proptest::string::string_regex("(STATE: [A-Z]{1,5}|INTERNAL LATENCY: [0-9]{1,4}|x| |\\t){0,4}").unwrap(),
                0..30,
            )
        ) {
            let rules = demo_rules();
            let text = lines.join("\n");
            let whole = collect(&rules, &text);
            let mut by_line = Vec::new();
            for line in text.split('\n') {
                by_line.extend(collect(&rules, line));
            }
            proptest::prop_assert_eq!(whole, by_line);
        }
    }
}
