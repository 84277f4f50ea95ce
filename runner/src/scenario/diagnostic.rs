//! Diagnostics: what is wrong, where, and what to do about it — rendered like a compiler
//! does, with the source line and a caret under the culprit.

use std::fmt::Write as _;

use super::span::Span;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, as a lowercase fragment without a trailing period.
    pub message: String,
    pub span: Span,
    /// A short note shown under the caret.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `path:line:col: error: message`, then the line with a caret, then help.
    pub fn render(&self, path: &str, source: &str) -> String {
        let mut out = String::new();
        let line_no = self.span.line.max(1);
        let gutter = line_no.to_string().len();
        let _ = writeln!(
            out,
            "error: {}\n  --> {}:{}:{}",
            self.message, path, line_no, self.span.col
        );
        if let Some(line) = source.lines().nth(line_no as usize - 1) {
            let line = line.trim_end_matches('\r');
            let width = source
                .get(self.span.range())
                .map(|s| s.lines().next().unwrap_or("").chars().count())
                .unwrap_or(1)
                .max(1);
            let pad: String = line
                .chars()
                .take(self.span.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "{:gutter$} |", "");
            let _ = writeln!(out, "{line_no} | {line}");
            let _ = write!(out, "{:gutter$} | {pad}{}", "", "^".repeat(width));
            if let Some(label) = &self.label {
                let _ = write!(out, " {label}");
            }
            out.push('\n');
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{:gutter$} = help: {help}", "");
        }
        out
    }
}

/// The closest candidate to `name`, if it is close enough to be what was meant.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_caret() {
        let src = "echo hi\nset s exec_smok\n";
        let d = Diagnostic::new(
            Span {
                offset: 14,
                len: 9,
                line: 2,
                col: 7,
            },
            "unknown command `exec_smok`",
        )
        .label("did you mean `exec_smoke`?")
        .help("define it as an alias in the environment");
        assert_eq!(
            d.render("a.scn", src),
            "error: unknown command `exec_smok`\n  --> a.scn:2:7\n  |\n2 | set s exec_smok\n  |       ^^^^^^^^^ did you mean `exec_smoke`?\n  = help: define it as an alias in the environment\n"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("exec_smok", ["exec_smoke", "stop_load"]),
            Some("exec_smoke")
        );
        assert_eq!(did_you_mean("xyz", ["exec_smoke"]), None);
        assert_eq!(did_you_mean("strat", ["start", "stop"]), Some("start"));
    }
}
