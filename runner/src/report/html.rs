//! A run as one HTML file a person would rather look at than read: the verdict, the
//! scenarios with their change against the previous release, each failed step with its
//! output and diff, the metric summaries, and small plots of the run's metrics over time
//! with the previous release's drawn beside them. Inline CSS and SVG: it opens from disk
//! with no network. Pure: everything comes in as data.

use std::fmt::Write as _;

use crate::compare::{Change, Comparison};
use crate::record::StoredRun;
use crate::record::{ScenarioKind, Status};

/// One metric over time: seconds since its run began, and the value.
pub struct Series {
    pub name: String,
    pub current: Vec<(f64, f64)>,
    /// The previous release's, when there is one.
    pub previous: Vec<(f64, f64)>,
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Passed => "pass",
        Status::Skipped => "skip",
        _ => "fail",
    }
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#1d1d1f;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.verdict{display:inline-block;padding:.15em .6em;border-radius:4px;color:#fff;font-weight:600}
.pass{color:#1a7f37}.fail{color:#cf222e}.skip{color:#8c6d1f}
.verdict.pass{background:#1a7f37;color:#fff}.verdict.fail{background:#cf222e;color:#fff}.verdict.skip{background:#8c6d1f;color:#fff}
table{border-collapse:collapse;width:100%}td,th{padding:.3em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.new-failure{background:#ffebe9}tr.fixed{background:#dafbe1}tr.still-failing{background:#fff1e5}tr.new{background:#ddf4ff}
tr.regressed,tr.over-limit{background:#ffebe9}tr.changed,tr.missing{background:#fff1e5}tr.improved{background:#dafbe1}tr.report-only,tr.leaning{color:#57606a}
.meta{color:#57606a}pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:12px;border-radius:4px}
.add{color:#1a7f37}.del{color:#cf222e}.plots{display:flex;flex-wrap:wrap;gap:1em}
.plot{border:1px solid #eee;border-radius:4px;padding:.4em}.plot .t{font-size:12px;color:#57606a}
.legend span{margin-right:1em;font-size:12px}";

/// The judge's verdict: its headline, then each finding — regressions first, highlighted —
/// with the baseline's band (center ± 2 noise units) and where this run fell.
fn judge_section(h: &mut String, v: &crate::judge::Verdict) {
    let _ = write!(
        h,
        "<h2>Judged against history</h2><p><b>{}</b></p>",
        esc(&v.headline())
    );
    if v.findings.is_empty() {
        return;
    }
    h.push_str("<table><tr><th>Finding</th><th>Feature</th><th>Against the baseline</th><th class=\"num\">Baseline</th><th class=\"num\">This run</th><th>Numbers</th></tr>");
    for j in v.findings.iter().take(50) {
        let label = super::verdict::label(j);
        let _ = write!(
            h,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"meta\">{}</td></tr>",
            label.replace(' ', "-"),
            esc(label),
            esc(&j.feature.to_string()),
            band(j),
            esc(&j.unit.show(j.center)),
            esc(&j.unit.show(j.value)),
            esc(&j.explanation())
        );
    }
    h.push_str("</table>");
    if v.findings.len() > 50 {
        let _ = write!(
            h,
            "<p class=\"meta\">… {} more: <code>lowtouch judge --all</code></p>",
            v.findings.len() - 50
        );
    }
}

/// A finding as a strip: the baseline's band (center ± 2 noise units) in grey, its
/// center, and this run's value as a mark — red when it regressed.
fn band(j: &crate::judge::Judged) -> String {
    let (lo, hi) = (j.center - 2.0 * j.noise, j.center + 2.0 * j.noise);
    let min = lo.min(j.value);
    let max = hi.max(j.value);
    let span = if max > min { max - min } else { 1.0 };
    let x = |v: f64| 4.0 + 152.0 * (v - min) / span;
    let colour = match j.direction {
        Some(crate::judge::Direction::Improved) => "#1a7f37",
        Some(_) => "#cf222e",
        None => "#57606a",
    };
    format!(
        "<svg width=\"160\" height=\"14\" role=\"img\"><rect x=\"{:.1}\" y=\"3\" width=\"{:.1}\" height=\"8\" fill=\"#d0d7de\"/><line x1=\"{c:.1}\" y1=\"2\" x2=\"{c:.1}\" y2=\"12\" stroke=\"#8c959f\"/><circle cx=\"{:.1}\" cy=\"7\" r=\"4\" fill=\"{colour}\"/></svg>",
        x(lo),
        (x(hi) - x(lo)).max(1.0),
        x(j.value),
        c = x(j.center),
    )
}

/// The whole page.
pub fn render(
    stored: &StoredRun,
    comparison: Option<&Comparison>,
    compared_with: Option<&str>,
    verdict: Option<&crate::judge::Verdict>,
    series: &[Series],
) -> String {
    let run = &stored.run;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>lowtouch run {}</title><style>{STYLE}</style></head><body>",
        esc(&run.id)
    );
    let _ = write!(
        h,
        "<h1>Run {} <span class=\"verdict {}\">{}</span></h1>",
        esc(&run.id),
        status_class(run.status),
        run.status.as_str()
    );
    let _ = write!(
        h,
        "<p class=\"meta\">{} on {} · revision {} · {} passed, {} failed, {} skipped · {:.1} s · started {}</p>",
        esc(&run.pipelines.join(", ")),
        esc(&run.environments.join(", ")),
        esc(&run.revision),
        run.passed,
        run.failed,
        run.skipped,
        run.duration_ms as f64 / 1000.0,
        esc(&run.started_at)
    );
    match (compared_with, comparison) {
        (Some(with), Some(c)) => {
            let counts: Vec<String> = Change::ALL
                .iter()
                .filter(|ch| c.count(**ch) > 0)
                .map(|ch| format!("{} {}", c.count(*ch), ch.as_str()))
                .collect();
            let _ = write!(
                h,
                "<p>Compared with the previous release <b>{}</b>: {}.</p>",
                esc(with),
                esc(&counts.join(", "))
            );
        }
        _ => h.push_str("<p>No previous release to compare with.</p>"),
    }
    if let Some(v) = verdict {
        judge_section(&mut h, v);
    }

    let changes: std::collections::HashMap<
        (&str, &str, &str),
        &crate::compare::changes::ScenarioChange,
    > = comparison
        .map(|c| {
            c.scenarios
                .iter()
                .map(|s| {
                    (
                        (s.pipeline.as_str(), s.environment.as_str(), s.name.as_str()),
                        s,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    h.push_str("<h2>Scenarios</h2><table><tr><th>Scenario</th><th>Status</th><th>Change</th><th>Before</th><th class=\"num\">Time</th><th class=\"num\">Δ time</th></tr>");
    // Per scenario the record that stands for it (a skipped retry: the attempt before).
    let standing = super::attempts::standing(&stored.scenarios);
    for (sc, _) in standing.iter().map(|s| s.record) {
        if !sc.is_shown() {
            continue;
        }
        let c = changes
            .get(&(
                sc.pipeline.as_str(),
                sc.environment.as_str(),
                sc.name.as_str(),
            ))
            .copied();
        let change = c.map_or("new", |c| c.change.as_str());
        let name = match sc.kind {
            ScenarioKind::Scenario => sc.name.clone(),
            ScenarioKind::Hook => format!("[{}]", sc.name),
        };
        let _ = write!(
            h,
            "<tr class=\"{change}\"><td>{}.{} <b>{}</b></td><td class=\"{}\">{}</td><td>{change}</td><td>{}</td><td class=\"num\">{} ms</td><td class=\"num\">{}</td></tr>",
            esc(&sc.pipeline),
            esc(&sc.environment),
            esc(&name),
            status_class(sc.status),
            sc.status.as_str(),
            c.and_then(|c| c.before).map_or("-", |s| s.as_str()),
            sc.duration_ms,
            c.and_then(|c| c.duration_change_pct)
                .map_or(String::new(), |p| format!("{p:+.0}%"))
        );
    }
    if let Some(c) = comparison {
        for s in c.scenarios.iter().filter(|s| s.change == Change::Removed) {
            let _ = write!(
                h,
                "<tr class=\"removed\"><td>{}.{} <b>{}</b></td><td>-</td><td>removed</td><td>{}</td><td></td><td></td></tr>",
                esc(&s.pipeline),
                esc(&s.environment),
                esc(&s.name),
                s.before.map_or("-", |s| s.as_str())
            );
        }
    }
    h.push_str("</table>");

    if let Some(c) = comparison.filter(|c| !c.metrics.is_empty()) {
        h.push_str("<h2>Metrics</h2><table><tr><th>Metric</th><th class=\"num\">Previous release</th><th class=\"num\">This run</th><th class=\"num\">Change</th></tr>");
        for m in &c.metrics {
            let v = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}"));
            let pct = m.change_pct.map_or(String::new(), |p| format!("{p:+.1}%"));
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{pct}</td></tr>",
                esc(&m.name),
                v(m.before),
                v(m.after)
            );
        }
        h.push_str("</table>");
    }

    if !series.is_empty() {
        h.push_str("<h2>Over time</h2><p class=\"legend\"><span style=\"color:#0969da\">━ this run</span><span style=\"color:#8c959f\">┅ previous release</span></p><div class=\"plots\">");
        for s in series {
            h.push_str(&plot(s));
        }
        h.push_str("</div>");
    }

    let failed: Vec<_> = standing
        .iter()
        .map(|s| s.record)
        .filter(|(sc, _)| !matches!(sc.status, Status::Passed | Status::Skipped))
        .collect();
    let diffs: Vec<_> = comparison
        .map(|c| c.scenarios.iter().filter(|s| !s.steps.is_empty()).collect())
        .unwrap_or_default();
    if !failed.is_empty() || !diffs.is_empty() {
        h.push_str("<h2>Failures and differences</h2>");
    }
    for (sc, steps) in failed {
        let _ = write!(
            h,
            "<h3 class=\"fail\">{} — {}</h3>",
            esc(&sc.name),
            esc(sc.reason.as_deref().unwrap_or(sc.status.as_str()))
        );
        if let Some(step) = steps
            .iter()
            .rev()
            .find(|s| s.status != 0 || s.failure.is_some())
        {
            let _ = write!(
                h,
                "<p>{}:{} <code>{}</code> (status {})</p><pre>{}{}</pre>",
                esc(&sc.path),
                step.line,
                esc(&step.command_line()),
                step.status,
                esc(&step.stdout),
                esc(&step.stderr)
            );
        }
    }
    for s in diffs {
        let _ = write!(h, "<h3>{} — {}</h3>", esc(&s.name), s.change.as_str());
        for d in &s.steps {
            let _ = write!(
                h,
                "<p>line {}: <code>{}</code></p><pre>",
                d.line,
                esc(&d.command)
            );
            for line in d.diff.lines() {
                let class = if line.starts_with('+') && !line.starts_with("+++") {
                    "add"
                } else if line.starts_with('-') && !line.starts_with("---") {
                    "del"
                } else {
                    ""
                };
                let _ = writeln!(h, "<span class=\"{class}\">{}</span>", esc(line));
            }
            h.push_str("</pre>");
        }
    }
    if !stored.artifacts.is_empty() {
        h.push_str(
            "<h2>Artifacts</h2><p class=\"meta\">Kept with the run: <code>lowtouch report --run ",
        );
        h.push_str(&esc(&run.id));
        h.push_str(" --artifact NAME</code> prints one.</p><table><tr><th>Name</th><th class=\"num\">Bytes</th></tr>");
        for (name, size) in &stored.artifacts {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{size}</td></tr>",
                esc(name)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<p class=\"meta\">lowtouch report</p></body></html>\n");
    h
}

/// At most this many points per line: buckets keep each one's highest value.
const POINTS: usize = 300;

fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= POINTS {
        return points.to_vec();
    }
    let per = points.len().div_ceil(POINTS);
    points
        .chunks(per)
        .map(|c| {
            let top = c
                .iter()
                .copied()
                .fold((c[0].0, f64::MIN), |a, p| if p.1 > a.1 { p } else { a });
            (c[0].0, top.1)
        })
        .collect()
}

/// One metric as a small SVG line chart.
fn plot(s: &Series) -> String {
    const W: f64 = 340.0;
    const H: f64 = 140.0;
    const PAD: f64 = 28.0;
    let current = thin(&s.current);
    let previous = thin(&s.previous);
    let all = current.iter().chain(&previous);
    let (mut t_max, mut v_min, mut v_max) = (0.0f64, f64::MAX, f64::MIN);
    for (t, v) in all {
        t_max = t_max.max(*t);
        v_min = v_min.min(*v);
        v_max = v_max.max(*v);
    }
    if v_min > v_max {
        return String::new();
    }
    if (v_max - v_min).abs() < f64::EPSILON {
        v_max = v_min + 1.0;
    }
    let t_max = t_max.max(1e-3);
    let x = |t: f64| PAD + t / t_max * (W - PAD - 6.0);
    let y = |v: f64| H - 16.0 - (v - v_min) / (v_max - v_min) * (H - 26.0);
    let line = |pts: &[(f64, f64)]| {
        pts.iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = format!(
        "<div class=\"plot\"><div class=\"t\">{}</div><svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(&s.name),
        esc(&s.name)
    );
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{W}\" y2=\"{b}\" stroke=\"#ddd\"/><text x=\"2\" y=\"12\" font-size=\"10\" fill=\"#57606a\">{}</text><text x=\"2\" y=\"{b}\" font-size=\"10\" fill=\"#57606a\">{}</text><text x=\"{tx}\" y=\"{H}\" font-size=\"10\" fill=\"#57606a\">{:.0} s</text>",
        short(v_max),
        short(v_min),
        t_max,
        b = H - 16.0,
        tx = W - 30.0
    );
    if previous.len() > 1 {
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"#8c959f\" stroke-dasharray=\"4 3\" stroke-width=\"1.2\" points=\"{}\"/>",
            line(&previous)
        );
    }
    if current.len() > 1 {
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\" points=\"{}\"/>",
            line(&current)
        );
    }
    svg.push_str("</svg></div>");
    svg
}

fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_plots_are_thinned() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let points: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, (i % 7) as f64)).collect();
        let thinned = thin(&points);
        assert!(thinned.len() <= POINTS);
        // Every full bucket of 34 holds a 6 (values cycle through 0..7): it keeps it.
        assert!(
            thinned[..thinned.len() - 1].iter().all(|p| p.1 == 6.0),
            "a bucket keeps its peak"
        );
        let svg = plot(&Series {
            name: "p99 <latency>".into(),
            current: points,
            previous: vec![(0.0, 1.0), (5.0, 2.0)],
        });
        assert!(svg.contains("p99 &lt;latency&gt;") && svg.matches("<polyline").count() == 2);
    }
}
