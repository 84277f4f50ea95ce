//! A comparison as a person reads it (`lowtouch diff`): the counts of each kind of
//! change, each scenario's change with its step diffs, the key metrics. Pure.

use std::fmt::Write as _;

use crate::compare::{Change, Comparison};
use crate::record::Status;

/// The comparison as a person reads it, and the newer run's verdict against its whole
/// comparable history (the comparison is with one run; the judge's with many).
pub fn text(c: &Comparison, label: &str, judged: Option<&crate::judge::Verdict>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} against {label}", c.current);
    let counts: Vec<String> = Change::ALL
        .iter()
        .filter(|ch| c.count(**ch) > 0)
        .map(|ch| format!("{} {}", c.count(*ch), ch.as_str()))
        .collect();
    let _ = writeln!(out, "{}\n", counts.join(", "));
    for s in &c.scenarios {
        let status = |x: Option<Status>| x.map_or("-", |s| s.as_str());
        let time = match (s.before_ms, s.after_ms, s.duration_change_pct) {
            (Some(b), Some(a), Some(p)) => format!("{b}ms -> {a}ms ({p:+.0}%)"),
            (_, Some(a), _) => format!("{a}ms"),
            (Some(b), None, _) => format!("{b}ms before"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<14} {}.{} {}  {} -> {}  {time}",
            s.change.as_str(),
            s.pipeline,
            s.environment,
            s.name,
            status(s.before),
            status(s.after),
        );
        for step in &s.steps {
            let _ = writeln!(out, "  line {}: {}", step.line, step.command);
            for line in step.diff.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    if !c.metrics.is_empty() {
        let _ = writeln!(out, "\nmetrics");
        for m in &c.metrics {
            let v = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}"));
            let pct = m
                .change_pct
                .map_or(String::new(), |p| format!(" ({p:+.1}%)"));
            let _ = writeln!(
                out,
                "  {:<36} {} -> {}{pct}",
                m.name,
                v(m.before),
                v(m.after)
            );
        }
    }
    if let Some(v) = judged {
        out.push('\n');
        out.push_str(&super::verdict::text(v, 5));
    }
    out
}
