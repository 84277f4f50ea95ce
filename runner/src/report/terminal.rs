//! The terminal: live progress while a run goes, and the summary at its end.
//!
//! Progress goes to stderr (a spinner on a terminal, one line per scenario otherwise),
//! so stdout carries only the summary, or JSON with `--json`. Colours only on a terminal
//! and never with `NO_COLOR`.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::event::{Listener, RunEvent};
use crate::record::{RunRecord, ScenarioKind, ScenarioRecord, Status};
use crate::scenario::duration::human;

/// ANSI styling that switches itself off where it does not belong.
#[derive(Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colours where the current console says so (`--color`, a terminal, `NO_COLOR`).
    pub fn of(stream: crate::console::Stream) -> Style {
        Style::of_sink(&*crate::console::current(), stream)
    }

    pub fn of_sink(sink: &dyn crate::console::Sink, stream: crate::console::Stream) -> Style {
        Style {
            color: sink.color(stream),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn green(self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn red(self, t: &str) -> String {
        self.paint("31", t)
    }
    pub fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    pub fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    pub fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }

    pub fn status(self, s: Status) -> String {
        let text = match s {
            Status::Passed => "PASS",
            Status::Failed => "FAIL",
            Status::Skipped => "SKIP",
            Status::Interrupted => "INTR",
            Status::Crashed => "CRSH",
            Status::Running => "RUN ",
        };
        match s {
            Status::Passed => self.green(text),
            Status::Skipped | Status::Interrupted => self.yellow(text),
            _ => self.red(text),
        }
    }
}

/// How much the live view shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// One line per scenario (and a spinner on a terminal).
    Scenarios,
    /// Every step and what it printed (`run --scenario`, `--verbose`).
    Steps,
    /// Nothing while it runs (`-q`): the summary says what came of it.
    Quiet,
}

pub struct Progress {
    /// Where the lines go: the console of the thread that made it (a client's, when the
    /// server runs a command for one), also from the threads of parallel scenarios.
    sink: std::sync::Arc<dyn crate::console::Sink>,
    style: Style,
    detail: Detail,
    bar: Option<ProgressBar>,
    total: u64,
    lock: Mutex<()>,
}

impl Progress {
    pub fn new(detail: Detail, total_scenarios: usize) -> Progress {
        let sink = crate::console::current();
        let terminal = sink.is_terminal(crate::console::Stream::Err);
        let style = Style::of_sink(&*sink, crate::console::Stream::Err);
        let detail = if sink.quiet() { Detail::Quiet } else { detail };
        let bar = (terminal && detail == Detail::Scenarios).then(|| {
            let bar = ProgressBar::new(total_scenarios as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            sink,
            style,
            detail,
            bar,
            total: total_scenarios as u64,
            lock: Mutex::new(()),
        }
    }

    fn line(&self, text: &str) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                self.sink
                    .write(crate::console::Stream::Err, &format!("{text}\n"));
            }
        }
    }
}

impl Listener for Progress {
    fn on_event(&self, event: &RunEvent<'_>) {
        if self.detail == Detail::Quiet {
            return;
        }
        let s = self.style;
        match event {
            RunEvent::RunStarted(run) => self.line(&format!(
                "{} run {} of {} on {} at {} ({} scenario{})",
                s.bold("lowtouch"),
                run.id,
                run.pipelines.join(", "),
                run.environments.join(", "),
                run.revision,
                self.total,
                if self.total == 1 { "" } else { "s" }
            )),
            RunEvent::Notice(text) => self.line(&format!("{} {text}", s.yellow("note:"))),
            RunEvent::ScenarioStarted(sc) => {
                if self.detail == Detail::Steps {
                    let what = if sc.kind == ScenarioKind::Hook {
                        "hook"
                    } else {
                        "scenario"
                    };
                    self.line(&format!(
                        "{} {what} {} ({})",
                        s.bold("==>"),
                        sc.name,
                        sc.path
                    ));
                }
                if let Some(bar) = &self.bar {
                    bar.set_message(sc.name.clone());
                }
            }
            RunEvent::StepStarted {
                scenario,
                line,
                command,
                args,
                ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{scenario}:{line} {command} {}", args.join(" ")));
                }
            }
            RunEvent::StepFinished(step) => {
                if self.detail != Detail::Steps {
                    return;
                }
                let ok = step.status == 0 && step.failure.is_none();
                let mark = if ok { s.green("ok") } else { s.red("FAILED") };
                let mut text = format!(
                    "  {} {} {mark} {}",
                    s.dim(&format!("{:>4}", step.line)),
                    step.command_line(),
                    s.dim(&format!("{:.1}ms", step.duration_us as f64 / 1000.0))
                );
                if !step.held.is_empty() {
                    let held: Vec<String> = step
                        .held
                        .iter()
                        .map(|h| format!("{} +{:.1}ms", h.condition, h.after_us as f64 / 1000.0))
                        .collect();
                    text.push_str(&s.dim(&format!(" (then {})", held.join(", "))));
                }
                for l in step.stdout.lines() {
                    text.push_str(&format!("\n       {} {l}", s.dim("|")));
                }
                if !ok {
                    for l in step.stderr.lines() {
                        text.push_str(&format!("\n       {} {l}", s.red("!")));
                    }
                    if let Some(f) = &step.failure
                        && !step.stderr.contains(f.as_str())
                    {
                        text.push_str(&format!("\n       {} {f}", s.red("!")));
                    }
                }
                self.line(&text);
            }
            RunEvent::ScenarioFinished(sc) => {
                if sc.kind == ScenarioKind::Hook
                    && sc.status == Status::Passed
                    && self.detail == Detail::Scenarios
                {
                    return;
                }
                let mut text = format!(
                    "{} {}{} {}",
                    s.status(sc.status),
                    if sc.kind == ScenarioKind::Hook {
                        "hook "
                    } else {
                        ""
                    },
                    sc.name,
                    s.dim(&human(Duration::from_millis(sc.duration_ms)))
                );
                if let Some(r) = &sc.reason
                    && sc.status != Status::Passed
                {
                    let place = sc
                        .failed_line
                        .map(|l| format!("{}:{l}: ", sc.path))
                        .unwrap_or_default();
                    text.push_str(&format!("\n     {place}{r}"));
                }
                if let Some(bar) = &self.bar
                    && sc.kind == ScenarioKind::Scenario
                {
                    bar.inc(1);
                }
                self.line(&text);
            }
            RunEvent::Artifact { .. } => {}
            RunEvent::ScenarioRetried(sc) => self.line(&format!(
                "{} {} failed on attempt {}: running it again (retries)",
                s.yellow("retry:"),
                sc.name,
                sc.attempt + 1
            )),
            RunEvent::RunFinished(_) => {
                if let Some(bar) = &self.bar {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

/// The table printed when the run ends.
/// Lines of a crash's diagnostics the summary shows.
const DIAGNOSTICS_LINES: usize = 20;

pub fn summary(run: &RunRecord, scenarios: &[ScenarioRecord], style: Style) -> String {
    let mut out = String::new();
    let rows: Vec<&ScenarioRecord> = scenarios
        .iter()
        .filter(|sc| sc.is_shown())
        // A replaced attempt is no row: its final attempt is.
        .filter(|sc| !sc.retried)
        .collect();
    let name_w = rows
        .iter()
        .map(|sc| sc.name.len() + if sc.kind == ScenarioKind::Hook { 2 } else { 0 })
        .max()
        .unwrap_or(8)
        .max(8);
    let where_w = rows
        .iter()
        .map(|sc| sc.pipeline.len() + sc.environment.len() + 1)
        .max()
        .unwrap_or(5)
        .max(5);
    out.push_str(&format!(
        "\n{}  {:name_w$}  {:where_w$}  {:>8}  {:>6}\n",
        style.bold("RESULT"),
        "SCENARIO",
        "WHERE",
        "TIME",
        "STEPS"
    ));
    for sc in &rows {
        let name = if sc.kind == ScenarioKind::Hook {
            format!("[{}]", sc.name)
        } else {
            sc.name.clone()
        };
        out.push_str(&format!(
            "{}    {:name_w$}  {:where_w$}  {:>8}  {:>6}\n",
            style.status(sc.status),
            name,
            format!("{}.{}", sc.pipeline, sc.environment),
            human(Duration::from_millis(sc.duration_ms)),
            sc.steps
        ));
    }
    let verdict = match run.status {
        Status::Passed => style.green("passed"),
        Status::Interrupted => style.yellow("interrupted"),
        _ => style.red(run.status.as_str()),
    };
    let interrupted = if run.interrupted > 0 {
        format!(", {} interrupted", run.interrupted)
    } else {
        String::new()
    };
    out.push_str(&format!(
        "\nrun {} {verdict}: {} passed, {} failed, {} skipped{interrupted} in {} (revision {})\n",
        run.id,
        run.passed,
        run.failed,
        run.skipped,
        human(Duration::from_millis(run.duration_ms)),
        run.revision
    ));
    out
}

/// What a finished run prints: its summary, the judge's verdict, where JUnit and the store
/// are; or all of it as JSON (`--json`).
pub struct Finished<'a> {
    pub stored: &'a crate::record::StoredRun,
    pub verdict: Option<&'a crate::judge::Verdict>,
    pub junit: &'a std::path::Path,
    pub store: &'a std::path::Path,
    /// Runs in the store.
    pub runs: usize,
}

impl Finished<'_> {
    fn scenarios(&self) -> Vec<ScenarioRecord> {
        self.stored
            .scenarios
            .iter()
            .map(|(sc, _)| sc.clone())
            .collect()
    }

    pub fn text(&self, style: Style) -> String {
        let mut out = summary(&self.stored.run, &self.scenarios(), style);
        // What a crash's diagnostics collected, where the run's result is read.
        for (sc, steps) in &self.stored.scenarios {
            if !sc.name.starts_with(crate::record::DIAGNOSTICS_PREFIX) {
                continue;
            }
            out.push_str(&format!("{} ({}):\n", style.bold(&sc.name), sc.path));
            let said: Vec<&str> = steps.iter().flat_map(|s| s.stdout.lines()).collect();
            for line in said.iter().take(DIAGNOSTICS_LINES) {
                out.push_str(&format!("  | {line}\n"));
            }
            if said.len() > DIAGNOSTICS_LINES {
                out.push_str(&format!(
                    "  | … {} more lines: lowtouch history --run {} --steps\n",
                    said.len() - DIAGNOSTICS_LINES,
                    self.stored.run.id
                ));
            }
        }
        if let Some(v) = self.verdict {
            out.push_str(&super::verdict::text(v, 3));
        }
        out.push_str(&format!(
            "junit: {}  store: {} ({} runs)\n",
            crate::source::display_path(self.junit),
            crate::source::display_path(self.store),
            self.runs
        ));
        out
    }

    pub fn json(&self) -> String {
        let value = serde_json::json!({
            "run": self.stored.run,
            "verdict": self.verdict,
            "scenarios": self.scenarios(),
            "junit": self.junit.display().to_string(),
            "store": self.store.display().to_string(),
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}
