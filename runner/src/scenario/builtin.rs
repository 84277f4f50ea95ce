//! The builtin commands of the scenario language (`echo`, `sleep`, `kill`, `start`,
//! `stop`, `restart`, `wait_for`, `metric`) as one typed value, [`Builtin`], read from a
//! step's words by one parser.
//!
//! The same parser serves two readers. `check` reads the source ([`Check`]): a word built
//! from `#{…}` is known only once the run fills it in, so each part is kept with its span
//! and its value when the source says it, and every error points at its word. The run
//! reads the interpolated words ([`Run`]): every part is a plain value, and the first
//! error is the step's. Environment conditions are `wait_for`'s words:
//! [`WaitFor::parse`] reads them.
//!
//! Pure: no I/O; what a builtin does is the executor's business.

use std::fmt;
use std::time::Duration;

use regex::Regex;

use super::ast::Call;
use super::diagnostic::Diagnostic;
use super::duration::parse_duration;
use super::span::Span;

/// Every builtin command's name: what aliases may not be called, what suggestions draw on.
pub const BUILTINS: &[&str] = &[
    "echo", "sleep", "kill", "start", "stop", "restart", "wait_for", "metric",
];

/// What `wait_for` takes, said wherever its words do not fit.
pub const WAIT_FOR_USAGE: &str =
    "`wait_for` takes `COMPONENT STATE [timeout D]` or `event 'REGEX' [timeout D]`";

const DURATION_HELP: &str = "write it as 500ms, 5s or 2m; a bare number is seconds";
const SIGNAL_HELP: &str = "write it as -9, -KILL or -SIGKILL";

/// Which builtin a step names, before its words are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Echo,
    Sleep,
    Kill,
    Start,
    Stop,
    Restart,
    WaitFor,
    Metric,
}

impl Command {
    /// The builtin called `name`, if one is.
    pub fn parse(name: &str) -> Option<Command> {
        Some(match name {
            "echo" => Command::Echo,
            "sleep" => Command::Sleep,
            "kill" => Command::Kill,
            "start" => Command::Start,
            "stop" => Command::Stop,
            "restart" => Command::Restart,
            "wait_for" => Command::WaitFor,
            "metric" => Command::Metric,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Echo => "echo",
            Command::Sleep => "sleep",
            Command::Kill => "kill",
            Command::Start => "start",
            Command::Stop => "stop",
            Command::Restart => "restart",
            Command::WaitFor => "wait_for",
            Command::Metric => "metric",
        }
    }

    /// True for the builtins that control a component the environment names.
    pub fn controls_a_component(self) -> bool {
        matches!(
            self,
            Command::Kill | Command::Start | Command::Stop | Command::Restart
        )
    }

    /// What it takes, said when its words do not fit.
    fn usage(self) -> &'static str {
        match self {
            Command::Echo => "`echo` takes any words",
            Command::Sleep => "`sleep` takes one duration: `sleep 500ms`",
            Command::Kill => "`kill` takes `[-SIGNAL] COMPONENT`",
            Command::Start => "`start` takes one component",
            Command::Stop => "`stop` takes one component",
            Command::Restart => "`restart` takes one component",
            Command::WaitFor => WAIT_FOR_USAGE,
            Command::Metric => "`metric` takes `NAME` or `SOURCE NAME`",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signal for `kill`. `-9`, `-KILL` and `-SIGKILL` are one and the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal(i32);

/// The signals `kill` knows by name (Linux numbering), without their `SIG` prefix.
const SIGNAL_NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ABRT", 6),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("CONT", 18),
    ("STOP", 19),
];

impl Signal {
    /// What a bare `kill COMPONENT` sends.
    pub const TERM: Signal = Signal(15);

    /// `-9`, `-KILL`, `-SIGKILL` (case-insensitive): a number from 1 to 64, or a name.
    pub fn parse(text: &str) -> Option<Signal> {
        let body = text.strip_prefix('-')?;
        if let Ok(n) = body.parse::<i32>() {
            return (1..=64).contains(&n).then_some(Signal(n));
        }
        let upper = body.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        SIGNAL_NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, n)| Signal(n))
    }

    /// The number `kill(2)` takes.
    pub fn number(self) -> i32 {
        self.0
    }

    /// True when it ends a process that does not handle it (KILL, TERM, INT, QUIT, ABRT,
    /// SEGV): a component killed so must then be seen CRASHED.
    pub fn is_fatal(self) -> bool {
        matches!(self.0, 9 | 15 | 2 | 3 | 6 | 11)
    }
}

/// How a reader holds a builtin's parts, and what it reads them from.
pub trait Stage {
    /// One word of the step as this reader has it.
    type Word;
    /// One part of a builtin as this reader holds it.
    type Part<T: Clone + fmt::Debug>: Clone + fmt::Debug;

    /// The word's text; `None` when only the run knows it.
    fn text(word: &Self::Word) -> Option<&str>;
    fn span(word: &Self::Word) -> Span;
    /// A part read from a word.
    fn known<T: Clone + fmt::Debug>(value: T, span: Span) -> Self::Part<T>;
    /// A part whose word gave no value (interpolated, or in error); `None` when this
    /// reader cannot go on without it.
    fn unknown<T: Clone + fmt::Debug>(span: Span) -> Option<Self::Part<T>>;
}

/// The run's reading: every word is known and every part is its value.
#[derive(Clone, Copy, Debug)]
pub struct Run;

impl Stage for Run {
    type Word = String;
    type Part<T: Clone + fmt::Debug> = T;

    fn text(word: &String) -> Option<&str> {
        Some(word)
    }
    fn span(_: &String) -> Span {
        // The run's words were interpolated: they have no place in the source.
        Span::default()
    }
    fn known<T: Clone + fmt::Debug>(value: T, _: Span) -> T {
        value
    }
    fn unknown<T: Clone + fmt::Debug>(_: Span) -> Option<T> {
        None
    }
}

/// `check`'s reading of the source: each part keeps where it is written, and its value
/// when the source says it.
#[derive(Clone, Copy, Debug)]
pub struct Check;

/// A word of the source: its text when it is literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceWord {
    pub text: Option<String>,
    pub span: Span,
}

/// A value and where it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl Stage for Check {
    type Word = SourceWord;
    type Part<T: Clone + fmt::Debug> = Spanned<Option<T>>;

    fn text(word: &SourceWord) -> Option<&str> {
        word.text.as_deref()
    }
    fn span(word: &SourceWord) -> Span {
        word.span
    }
    fn known<T: Clone + fmt::Debug>(value: T, span: Span) -> Spanned<Option<T>> {
        Spanned {
            value: Some(value),
            span,
        }
    }
    fn unknown<T: Clone + fmt::Debug>(span: Span) -> Option<Spanned<Option<T>>> {
        Some(Spanned { value: None, span })
    }
}

/// A builtin step, its words read. At run time ([`Run`], the default) every part is a
/// plain value; in `check` ([`Check`]) each is a [`Spanned`] value known or not.
#[derive(Clone, Debug)]
pub enum Builtin<S: Stage = Run> {
    /// `echo WORDS…`: prints the step's words; any words will do.
    Echo,
    /// `sleep DURATION`.
    Sleep(S::Part<Duration>),
    /// `kill [-SIGNAL] COMPONENT`, `start COMPONENT`, `stop COMPONENT`,
    /// `restart COMPONENT`: a component the environment names, controlled.
    Control {
        action: Action<S>,
        component: S::Part<String>,
    },
    /// `wait_for COMPONENT STATE [timeout D]` / `wait_for event 'REGEX' [timeout D]`.
    WaitFor(WaitFor<S>),
    /// `metric NAME` / `metric SOURCE NAME`: the latest sample's value.
    Metric {
        source: Option<S::Part<String>>,
        name: S::Part<String>,
    },
}

/// What a component control does.
#[derive(Clone, Debug)]
pub enum Action<S: Stage = Run> {
    Start,
    Stop,
    Restart,
    /// The signal as written; none is TERM.
    Kill(Option<S::Part<Signal>>),
}

impl<S: Stage> Action<S> {
    pub fn command(&self) -> Command {
        match self {
            Action::Start => Command::Start,
            Action::Stop => Command::Stop,
            Action::Restart => Command::Restart,
            Action::Kill(_) => Command::Kill,
        }
    }
}

impl Action {
    /// The signal `kill` sends (TERM unless written); `None` for the other controls.
    pub fn signal(&self) -> Option<Signal> {
        match self {
            Action::Kill(signal) => Some(signal.unwrap_or(Signal::TERM)),
            Action::Start | Action::Stop | Action::Restart => None,
        }
    }
}

/// What `wait_for` (or an environment's condition) waits for, and for how long at most.
#[derive(Clone, Debug)]
pub struct WaitFor<S: Stage = Run> {
    pub awaited: Awaited<S>,
    /// `timeout D`; without it the step's (or the condition's) own limit applies.
    pub timeout: Option<S::Part<Duration>>,
}

/// What `wait_for` waits for.
#[derive(Clone, Debug)]
pub enum Awaited<S: Stage = Run> {
    /// `wait_for COMPONENT STATE`: the component's state is STATE — already, or once it
    /// changes. Its state is its latest log `state` event, unless its process ended since
    /// (CRASHED, STOPPED). A process event (STARTED, RESTARTED, CRASHED, STOPPED) of the
    /// scenario also counts when that is what is awaited.
    State {
        component: S::Part<String>,
        state: S::Part<String>,
    },
    /// `wait_for event 'REGEX'`: an event whose `SOURCE NAME VALUE` matches, since the
    /// step before this one began (so one that step caused is never missed).
    Event(S::Part<Regex>),
}

impl<S: Stage> Builtin<S> {
    pub fn command(&self) -> Command {
        match self {
            Builtin::Echo => Command::Echo,
            Builtin::Sleep(_) => Command::Sleep,
            Builtin::Control { action, .. } => action.command(),
            Builtin::WaitFor(_) => Command::WaitFor,
            Builtin::Metric { .. } => Command::Metric,
        }
    }

    /// The component it names: the one it controls, or whose state it awaits.
    pub fn component(&self) -> Option<&S::Part<String>> {
        match self {
            Builtin::Control { component, .. }
            | Builtin::WaitFor(WaitFor {
                awaited: Awaited::State { component, .. },
                ..
            }) => Some(component),
            _ => None,
        }
    }
}

impl Builtin {
    /// The builtin a step runs, read from its interpolated words: `None` when `name` is
    /// no builtin (an alias or a plugin then), the first error when the words do not fit.
    pub fn parse(name: &str, args: &[String]) -> Option<Result<Builtin, BuiltinError>> {
        let command = Command::parse(name)?;
        let mut reader = Reader::<Run>::new(command, Span::default(), args);
        let builtin = reader.parse_builtin();
        Some(match (builtin, reader.errors.into_iter().next()) {
            (Some(builtin), None) => Ok(builtin),
            (_, Some(error)) => Err(error),
            (None, None) => unreachable!("a reading that fails says why"),
        })
    }
}

impl WaitFor {
    /// `wait_for`'s words without the command, as an environment's condition writes them:
    /// `COMPONENT STATE [timeout D]` or `event REGEX [timeout D]`.
    pub fn parse(words: &[String]) -> Result<WaitFor, BuiltinError> {
        let mut reader = Reader::<Run>::new(Command::WaitFor, Span::default(), words);
        match (reader.parse_wait_for(), reader.errors.into_iter().next()) {
            (Some(wait), None) => Ok(wait),
            (_, Some(error)) => Err(error),
            (None, None) => unreachable!("a reading that fails says why"),
        }
    }
}

/// What `check` learns of a builtin call from the source.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The builtin, when its words fit its shape (each part known or not).
    pub builtin: Option<Builtin<Check>>,
    /// Every word that cannot be right, in the order of the words' roles.
    pub errors: Vec<BuiltinError>,
}

impl Builtin<Check> {
    /// Reads a call of the source; `None` when it names no builtin.
    pub fn check(call: &Call) -> Option<Checked> {
        let command = Command::parse(&call.name.text)?;
        let words: Vec<SourceWord> = call
            .args
            .iter()
            .map(|arg| SourceWord {
                text: arg.literal(),
                span: arg.span,
            })
            .collect();
        let mut reader = Reader::<Check>::new(command, call.name.span, &words);
        let builtin = reader.parse_builtin();
        Some(Checked {
            builtin,
            errors: reader.errors,
        })
    }
}

/// Why a builtin's words do not fit, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct BuiltinError {
    pub command: Command,
    pub kind: BuiltinErrorKind,
    /// The word in error, or the whole call when the number of words is wrong. Empty at
    /// run time: the run's words were interpolated and have no place in the source.
    pub span: Span,
}

/// The ways a builtin's words can be wrong. Displayed as a run (or an environment's
/// condition) reports it, in one line; [`BuiltinError::diagnostic`] is what `check` shows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinErrorKind {
    /// The wrong number of words: what the builtin takes.
    #[error("{0}")]
    Usage(&'static str),
    #[error("`{0}` is not a duration")]
    NotADuration(String),
    #[error("`{0}` is not a signal")]
    NotASignal(String),
    /// `wait_for`'s third word is not `timeout`: at run time its usage says where it goes.
    #[error("{WAIT_FOR_USAGE}")]
    ExpectedTimeout,
    /// `wait_for event`'s pattern does not compile (the regex crate's message).
    #[error("bad pattern: {0}")]
    BadPattern(String),
}

impl BuiltinError {
    /// The error as `check` reports it: where, what and what to do.
    pub fn diagnostic(&self) -> Diagnostic {
        match &self.kind {
            BuiltinErrorKind::NotADuration(_) => {
                Diagnostic::new(self.span, self.kind.to_string()).help(DURATION_HELP)
            }
            BuiltinErrorKind::NotASignal(_) => {
                Diagnostic::new(self.span, self.kind.to_string()).help(SIGNAL_HELP)
            }
            BuiltinErrorKind::ExpectedTimeout => {
                Diagnostic::new(self.span, "expected `timeout`").help(WAIT_FOR_USAGE)
            }
            BuiltinErrorKind::Usage(_) | BuiltinErrorKind::BadPattern(_) => {
                Diagnostic::new(self.span, self.kind.to_string())
            }
        }
    }
}

/// Reads one builtin's words. `parse_*` builds a part; a word that does not fit is
/// noted in `errors`, and the reading goes on as far as the stage can.
struct Reader<'w, S: Stage> {
    command: Command,
    /// Where the command's name is written (empty at run time).
    name_span: Span,
    words: &'w [S::Word],
    errors: Vec<BuiltinError>,
}

impl<'w, S: Stage> Reader<'w, S> {
    fn new(command: Command, name_span: Span, words: &'w [S::Word]) -> Self {
        Reader {
            command,
            name_span,
            words,
            errors: Vec::new(),
        }
    }

    fn parse_builtin(&mut self) -> Option<Builtin<S>> {
        let words = self.words;
        Some(match (self.command, words) {
            (Command::Echo, _) => Builtin::Echo,
            (Command::Sleep, [duration]) => Builtin::Sleep(self.parse_duration(duration)?),
            (Command::Kill, [component]) => Builtin::Control {
                action: Action::Kill(None),
                component: self.parse_text(component)?,
            },
            (Command::Kill, [signal, component]) => Builtin::Control {
                action: Action::Kill(Some(self.parse_signal(signal)?)),
                component: self.parse_text(component)?,
            },
            (Command::Start, [component]) => self.parse_control(Action::Start, component)?,
            (Command::Stop, [component]) => self.parse_control(Action::Stop, component)?,
            (Command::Restart, [component]) => self.parse_control(Action::Restart, component)?,
            (Command::WaitFor, _) => Builtin::WaitFor(self.parse_wait_for()?),
            (Command::Metric, [name]) => Builtin::Metric {
                source: None,
                name: self.parse_text(name)?,
            },
            (Command::Metric, [source, name]) => Builtin::Metric {
                source: Some(self.parse_text(source)?),
                name: self.parse_text(name)?,
            },
            _ => return self.usage(),
        })
    }

    /// `COMPONENT STATE [timeout D]` or `event REGEX [timeout D]`: the timeout is read
    /// first, so its error comes first, as it always has.
    fn parse_wait_for(&mut self) -> Option<WaitFor<S>> {
        let words = self.words;
        let (head, tail) = match words.len() {
            2 => (&words[..2], None),
            4 => (&words[..2], Some(&words[2..])),
            _ => return self.usage(),
        };
        let timeout = match tail {
            None => None,
            Some([keyword, duration]) => {
                if S::text(keyword) == Some("timeout") {
                    Some(self.parse_duration(duration)?)
                } else {
                    // A timeout is written, but not so that it can be read.
                    self.error(BuiltinErrorKind::ExpectedTimeout, S::span(keyword));
                    Some(S::unknown(S::span(keyword))?)
                }
            }
            Some(_) => unreachable!("a tail of two words"),
        };
        let awaited = if S::text(&head[0]) == Some("event") {
            Awaited::Event(self.parse_pattern(&head[1])?)
        } else {
            Awaited::State {
                component: self.parse_text(&head[0])?,
                state: self.parse_text(&head[1])?,
            }
        };
        Some(WaitFor { awaited, timeout })
    }

    fn parse_control(&mut self, action: Action<S>, component: &S::Word) -> Option<Builtin<S>> {
        Some(Builtin::Control {
            action,
            component: self.parse_text(component)?,
        })
    }

    fn parse_text(&mut self, word: &S::Word) -> Option<S::Part<String>> {
        self.parse_with(word, |text| Ok(text.to_string()))
    }

    fn parse_duration(&mut self, word: &S::Word) -> Option<S::Part<Duration>> {
        self.parse_with(word, |text| {
            parse_duration(text).ok_or_else(|| BuiltinErrorKind::NotADuration(text.to_string()))
        })
    }

    fn parse_signal(&mut self, word: &S::Word) -> Option<S::Part<Signal>> {
        self.parse_with(word, |text| {
            Signal::parse(text).ok_or_else(|| BuiltinErrorKind::NotASignal(text.to_string()))
        })
    }

    fn parse_pattern(&mut self, word: &S::Word) -> Option<S::Part<Regex>> {
        self.parse_with(word, |text| {
            Regex::new(text).map_err(|e| BuiltinErrorKind::BadPattern(e.to_string()))
        })
    }

    /// A part read from a word by `read`; a word only the run knows stays unknown.
    fn parse_with<T: Clone + fmt::Debug>(
        &mut self,
        word: &S::Word,
        read: impl FnOnce(&str) -> Result<T, BuiltinErrorKind>,
    ) -> Option<S::Part<T>> {
        let span = S::span(word);
        let Some(text) = S::text(word) else {
            return S::unknown(span);
        };
        match read(text) {
            Ok(value) => Some(S::known(value, span)),
            Err(kind) => {
                self.error(kind, span);
                S::unknown(span)
            }
        }
    }

    /// The words do not fit the command's shape: the error covers the whole call.
    fn usage<T>(&mut self) -> Option<T> {
        let span = match self.words.last() {
            Some(last) => self.name_span.to(S::span(last)),
            None => self.name_span,
        };
        self.error(BuiltinErrorKind::Usage(self.command.usage()), span);
        None
    }

    fn error(&mut self, kind: BuiltinErrorKind, span: Span) {
        self.errors.push(BuiltinError {
            command: self.command,
            kind,
            span,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ast::StmtKind;
    use crate::scenario::parser::parse;

    /// The run's reading of one line of words (the first is the command).
    fn run(line: &str) -> Option<Result<Builtin, BuiltinError>> {
        let mut words = line.split_whitespace().map(str::to_string);
        let name = words.next().unwrap_or_default();
        Builtin::parse(&name, &words.collect::<Vec<_>>())
    }

    /// The builtin a run reads, shown compactly.
    fn show(builtin: &Builtin) -> String {
        let wait = |w: &WaitFor| {
            let timeout = w
                .timeout
                .map(|t| format!(" timeout {t:?}"))
                .unwrap_or_default();
            match &w.awaited {
                Awaited::State { component, state } => {
                    format!("state {component} {state}{timeout}")
                }
                Awaited::Event(re) => format!("event /{}/{timeout}", re.as_str()),
            }
        };
        match builtin {
            Builtin::Echo => "echo".into(),
            Builtin::Sleep(d) => format!("sleep {d:?}"),
            Builtin::Control {
                action: Action::Kill(signal),
                component,
            } => format!("kill {:?} {component}", signal.map(Signal::number)),
            Builtin::Control { action, component } => format!("{} {component}", action.command()),
            Builtin::WaitFor(w) => format!("wait_for {}", wait(w)),
            Builtin::Metric { source, name } => format!("metric {source:?} {name}"),
        }
    }

    /// Reads `line` as the run does and compares what it reads (or why not).
    fn check(line: &str, expected: &str) {
        let got = match run(line) {
            None => "no builtin".to_string(),
            Some(Ok(builtin)) => show(&builtin),
            Some(Err(e)) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "reading {line:?}");
    }

    /// `check`'s reading of one line of source: the builtin's parts (`?` for a part only
    /// the run knows) and each error as `col+len: message`.
    fn check_source(src: &str, expected: &str) {
        let (ast, diags) = parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let StmtKind::Call(call) = &ast.stmts[0].kind else {
            panic!("{src:?} is no call")
        };
        let checked = Builtin::check(call).expect("a builtin");
        let part = |p: &Spanned<Option<String>>| {
            format!("{}@{}", p.value.as_deref().unwrap_or("?"), p.span.col)
        };
        let mut out = match &checked.builtin {
            None => "-".to_string(),
            Some(b) => format!(
                "{} component={}",
                b.command(),
                b.component().map(part).unwrap_or_default()
            ),
        };
        for e in &checked.errors {
            let d = e.diagnostic();
            out.push_str(&format!(
                "\n{}:{}+{}: {}",
                d.span.line, d.span.col, d.span.len, d.message
            ));
        }
        assert_eq!(out, expected, "checking {src:?}");
    }

    #[test]
    fn each_builtin_reads_into_its_value() {
        check("echo a b", "echo");
        check("echo", "echo");
        check("sleep 500ms", "sleep 500ms");
        check("sleep 2", "sleep 2s");
        check("kill Primary", "kill None Primary");
        check("kill -9 Primary", "kill Some(9) Primary");
        check("start Primary", "start Primary");
        check("stop Primary", "stop Primary");
        check("restart Primary", "restart Primary");
        check("wait_for Backup ACTIVE", "wait_for state Backup ACTIVE");
        check(
            "wait_for Backup ACTIVE timeout 5s",
            "wait_for state Backup ACTIVE timeout 5s",
        );
        check(
            "wait_for event Primary.*CRASHED timeout 2m",
            "wait_for event /Primary.*CRASHED/ timeout 120s",
        );
        check("metric rss_bytes", "metric None rss_bytes");
        check(
            "metric Primary rss_bytes",
            "metric Some(\"Primary\") rss_bytes",
        );
        check("exec_smoke 1 2", "no builtin");
        check("wait_for_it", "no builtin");
    }

    #[test]
    fn every_builtin_name_is_a_command() {
        let commands: std::collections::HashSet<Command> = BUILTINS
            .iter()
            .map(|name| {
                let command = Command::parse(name).expect("a builtin's name");
                assert_eq!(command.as_str(), *name);
                command
            })
            .collect();
        assert_eq!(commands.len(), BUILTINS.len());
        assert_eq!(Command::parse("wait_for_it"), None);
    }

    #[test]
    fn a_run_reports_the_first_error_as_it_always_has() {
        check("sleep soon", "error: `soon` is not a duration");
        check("sleep", "error: `sleep` takes one duration: `sleep 500ms`");
        check("kill -NOPE Primary", "error: `-NOPE` is not a signal");
        check("kill 9 Primary", "error: `9` is not a signal");
        check("kill", "error: `kill` takes `[-SIGNAL] COMPONENT`");
        check("kill -9 a b", "error: `kill` takes `[-SIGNAL] COMPONENT`");
        check("start a b", "error: `start` takes one component");
        check("restart", "error: `restart` takes one component");
        check("metric", "error: `metric` takes `NAME` or `SOURCE NAME`");
        check(
            "metric a b c",
            "error: `metric` takes `NAME` or `SOURCE NAME`",
        );
        check("wait_for Backup", &format!("error: {WAIT_FOR_USAGE}"));
        check(
            "wait_for Backup ACTIVE timeout",
            &format!("error: {WAIT_FOR_USAGE}"),
        );
        // A misplaced word where `timeout` goes: the usage says where it goes.
        check(
            "wait_for Backup ACTIVE until 5s",
            &format!("error: {WAIT_FOR_USAGE}"),
        );
        check(
            "wait_for Backup ACTIVE timeout soon",
            "error: `soon` is not a duration",
        );
        let Some(Err(e)) = run("wait_for event (") else {
            panic!("an unclosed group is no pattern")
        };
        assert!(
            matches!(&e.kind, BuiltinErrorKind::BadPattern(why) if why.contains("unclosed group")),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("bad pattern: "), "{e}");
        // The timeout is read first: its error is the one a run reports.
        check(
            "wait_for event ( timeout soon",
            "error: `soon` is not a duration",
        );
    }

    #[test]
    fn signal_spellings_are_one_value() {
        let kill = Signal::parse("-9");
        assert_eq!(kill.map(Signal::number), Some(9));
        for spelling in ["-KILL", "-kill", "-SIGKILL", "-sigkill", "-SigKill"] {
            assert_eq!(Signal::parse(spelling), kill, "{spelling}");
        }
        assert_eq!(Signal::parse("-TERM"), Some(Signal::TERM));
        assert_eq!(Signal::parse("-15"), Some(Signal::TERM));
        assert_eq!(Signal::parse("-64").map(Signal::number), Some(64));
        for bad in ["9", "KILL", "-0", "-65", "--9", "-NOPE", "-SIG", "-"] {
            assert_eq!(Signal::parse(bad), None, "{bad}");
        }
        // So the steps are one and the same builtin.
        let (Some(Ok(a)), Some(Ok(b))) = (run("kill -9 Primary"), run("kill -SIGKILL Primary"))
        else {
            panic!("both are kills")
        };
        let (Builtin::Control { action: a, .. }, Builtin::Control { action: b, .. }) = (a, b)
        else {
            panic!("both are kills")
        };
        assert_eq!(a.signal(), b.signal());
        assert!(matches!(
            run("kill Primary"),
            Some(Ok(Builtin::Control { action, .. })) if action.signal() == Some(Signal::TERM)
        ));
        assert!(matches!(
            run("stop Primary"),
            Some(Ok(Builtin::Control { action, .. })) if action.signal().is_none()
        ));
        assert!(Signal::parse("-KILL").is_some_and(Signal::is_fatal));
        assert!(Signal::TERM.is_fatal());
        assert!(!Signal::parse("-HUP").is_some_and(Signal::is_fatal));
        assert!(!Signal::parse("-STOP").is_some_and(Signal::is_fatal));
    }

    #[test]
    fn check_points_at_each_word_in_error() {
        check_source("kill -9 Primary", "kill component=Primary@9");
        check_source(
            "kill -NOPE Primary",
            "kill component=Primary@12\n1:6+5: `-NOPE` is not a signal",
        );
        check_source(
            "sleep soon",
            "sleep component=\n1:7+4: `soon` is not a duration",
        );
        check_source(
            "wait_for Backup ACTIVE until 5s",
            "wait_for component=Backup@10\n1:24+5: expected `timeout`",
        );
        // Every error of the call, the timeout's first.
        check_source(
            "wait_for event '(' timeout soon",
            "wait_for component=\n1:28+4: `soon` is not a duration\n1:16+3: bad pattern: \
             regex parse error:\n    (\n    ^\nerror: unclosed group",
        );
        // The wrong number of words: the whole call.
        check_source("wait_for Backup", &format!("-\n1:1+15: {WAIT_FOR_USAGE}"));
        check_source("metric", "-\n1:1+6: `metric` takes `NAME` or `SOURCE NAME`");
        check_source("start a b", "-\n1:1+9: `start` takes one component");
        let (ast, _) = parse("sleep soon");
        let StmtKind::Call(call) = &ast.stmts[0].kind else {
            panic!("a call")
        };
        let d = Builtin::check(call).unwrap().errors[0].diagnostic();
        assert_eq!(d.help.as_deref(), Some(DURATION_HELP));
    }

    #[test]
    fn check_leaves_interpolated_words_to_the_run() {
        check_source("kill #{sig} #{who}", "kill component=?@13");
        check_source("sleep #{pause}", "sleep component=");
        check_source(
            "wait_for #{who} ACTIVE timeout #{t}",
            "wait_for component=?@10",
        );
        check_source("wait_for event #{pattern}", "wait_for component=");
        // Only a literal `timeout` says that a timeout follows.
        check_source(
            "wait_for Backup ACTIVE #{kw} 5s",
            "wait_for component=Backup@10\n1:24+5: expected `timeout`",
        );
    }

    #[test]
    fn a_condition_reads_as_wait_for_does() {
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let wait = WaitFor::parse(&words("Backup ACTIVE timeout 5s")).unwrap();
        assert_eq!(wait.timeout, Some(Duration::from_secs(5)));
        assert!(matches!(
            wait.awaited,
            Awaited::State { ref component, ref state } if component == "Backup" && state == "ACTIVE"
        ));
        let event = WaitFor::parse(&words("event Primary.*CRASHED")).unwrap();
        assert!(
            matches!(event.awaited, Awaited::Event(ref re) if re.is_match("Primary process CRASHED"))
        );
        let error = |s: &str| WaitFor::parse(&words(s)).unwrap_err().to_string();
        assert_eq!(error("Backup"), WAIT_FOR_USAGE);
        assert_eq!(error("Backup ACTIVE within 5s"), WAIT_FOR_USAGE);
        assert_eq!(
            error("Backup ACTIVE timeout soon"),
            "`soon` is not a duration"
        );
        assert!(error("event (").starts_with("bad pattern: "));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::scenario::ast::{Arg, Name};
    use crate::scenario::token::Part;

    /// Words that builtins take, and some they do not.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "timeout", "event", "5s", "500ms", "soon", "-9", "-KILL", "-NOPE", "9", "(",
                "a.*b", "Primary", "ACTIVE", "",
            ])
            .prop_map(str::to_string),
            "\\PC{0,6}",
        ]
    }

    /// A call of the source whose words are all literal.
    fn call(name: &str, words: &[String]) -> Call {
        let span = Span::default();
        Call {
            name: Name {
                text: name.to_string(),
                span,
            },
            args: words
                .iter()
                .map(|w| Arg {
                    parts: vec![Part::Lit(w.clone())],
                    span,
                })
                .collect(),
            timeout: None,
        }
    }

    proptest! {
        /// `check` and the run read literal words alike: the run's error is `check`'s
        /// first, and a step the run reads is one `check` finds nothing wrong with.
        #[test]
        fn check_and_run_agree(
            name in prop::sample::select(BUILTINS.to_vec()),
            words in prop::collection::vec(word(), 0..5),
        ) {
            let run = Builtin::parse(name, &words).expect("a builtin");
            let checked = Builtin::check(&call(name, &words)).expect("a builtin");
            match run {
                Ok(builtin) => {
                    prop_assert!(checked.errors.is_empty(), "{:?}", checked.errors);
                    prop_assert_eq!(checked.builtin.map(|b| b.command()), Some(builtin.command()));
                }
                Err(e) => prop_assert_eq!(checked.errors.first().map(|c| &c.kind), Some(&e.kind)),
            }
        }
    }
}
