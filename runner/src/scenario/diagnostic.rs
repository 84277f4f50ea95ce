//! Diagnostics: what is wrong, where, and what to do about it — rendered like a compiler
//! does, with the source line and a caret under the culprit.

use std::fmt::Write as _;

use super::span::Span;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

    /// `path:line:col: error: message`, then the line with a caret, then help. A long line
    /// is cut around the culprit, and control characters (and those that reorder text)
    /// are shown escaped, so what the file holds cannot garble the terminal.
    pub fn render(&self, path: &str, source: &str) -> String {
        let mut out = String::new();
        let line_no = self.span.line.max(1);
        let gutter = line_no.to_string().len();
        let _ = writeln!(
            out,
            "error: {}\n  --> {}:{}:{}",
            escape_text(&self.message),
            escape_text(path),
            line_no,
            self.span.col
        );
        if let Some(excerpt) = Excerpt::of(source, self.span) {
            let _ = writeln!(out, "{:gutter$} |", "");
            let _ = writeln!(out, "{line_no} | {}", excerpt.line);
            let _ = write!(
                out,
                "{:gutter$} | {}{}",
                "",
                excerpt.pad,
                "^".repeat(excerpt.carets)
            );
            if let Some(label) = &self.label {
                let _ = write!(out, " {}", escape_text(label));
            }
            out.push('\n');
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{:gutter$} = help: {}", "", escape_text(help));
        }
        out
    }
}

/// Characters of the source line shown on each side of the culprit, at most.
const CONTEXT_CHARS: usize = 50;
/// Characters of the culprit underlined, at most.
const MAX_CARETS: usize = 40;

/// The part of a source line a diagnostic shows: escaped, cut to a window around the
/// span, with the caret's padding. Found from the span's byte offset, looking no further
/// than the window, so rendering costs the same on a 100,000-character line.
struct Excerpt {
    line: String,
    pad: String,
    carets: usize,
}

impl Excerpt {
    fn of(source: &str, span: Span) -> Option<Excerpt> {
        let offset = Self::offset(source, span)?;
        let is_end = |c: char| c == '\n';
        // Back to the line's start, or the window's.
        let mut start = offset;
        let mut cut_left = false;
        for (n, (i, c)) in source[..offset].char_indices().rev().enumerate() {
            if is_end(c) {
                break;
            }
            if n == CONTEXT_CHARS {
                cut_left = true;
                break;
            }
            start = i;
        }
        // The culprit, on its first line.
        let mut culprit_end = offset;
        let want_end = offset + span.len.max(1);
        for (n, (i, c)) in source[offset..].char_indices().enumerate() {
            if is_end(c) || offset + i >= want_end || n == MAX_CARETS {
                break;
            }
            culprit_end = offset + i + c.len_utf8();
        }
        // On to the line's end, or the window's.
        let mut end = culprit_end;
        let mut cut_right = false;
        for (n, (i, c)) in source[culprit_end..].char_indices().enumerate() {
            if is_end(c) {
                break;
            }
            if n == CONTEXT_CHARS {
                cut_right = true;
                break;
            }
            end = culprit_end + i + c.len_utf8();
        }
        let mut line = String::new();
        let mut pad = String::new();
        if cut_left {
            line.push('…');
            pad.push(' ');
        }
        for c in source[start..offset].chars() {
            let before = line.chars().count();
            escape_char(c, true, &mut line);
            if c == '\t' {
                pad.push('\t');
            } else {
                let width = line.chars().count() - before;
                pad.extend(std::iter::repeat_n(' ', width));
            }
        }
        let before = line.chars().count();
        for c in source[offset..culprit_end].chars() {
            escape_char(c, true, &mut line);
        }
        let carets = (line.chars().count() - before).max(1);
        for c in source[culprit_end..end].chars() {
            escape_char(c, true, &mut line);
        }
        let line = line.trim_end_matches("\\r").to_string();
        let line = if cut_right { line + "…" } else { line };
        Some(Excerpt { line, pad, carets })
    }

    /// The span's byte offset, when it is a place in `source`; else the start of its line
    /// (found by counting lines: spans made by hand, not by the lexer).
    fn offset(source: &str, span: Span) -> Option<usize> {
        if span.offset == source.len() && (source.is_empty() || source.ends_with('\n')) {
            // Past the last line (an error at the end of the file): no line to show.
            return None;
        }
        if span.offset <= source.len() && source.is_char_boundary(span.offset) {
            return Some(span.offset);
        }
        let line = span.line.max(1) as usize;
        let mut offset = 0;
        for (i, l) in source.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                return Some(offset);
            }
            offset += l.len();
        }
        None
    }
}

/// Text from the user's files as it may be printed: control characters and those that
/// reorder the text around them escaped (`\0`, `\x1b`, `\u{202e}`).
pub fn escape_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        escape_char(c, false, &mut out);
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `c`, escaped if it must be; a tab stays a tab in a source line (`keep_tab`).
fn escape_char(c: char, keep_tab: bool, out: &mut String) {
    match c {
        '\t' if keep_tab => out.push('\t'),
        '\0' => out.push_str("\\0"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if c.is_ascii_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
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
    fn long_lines_are_cut_around_the_column() {
        let src = format!(
            "echo {} #{{nope}} {}\n",
            "x".repeat(100_000),
            "y".repeat(50_000)
        );
        let offset = src.find("#{").unwrap();
        let d = Diagnostic::new(
            Span {
                offset,
                len: 7,
                line: 1,
                col: offset as u32 + 1,
            },
            "variable `nope` is never set",
        );
        let out = d.render("a.scn", &src);
        for line in out.lines() {
            assert!(line.chars().count() <= 160, "{line}");
        }
        let shown = out.lines().nth(3).unwrap();
        let caret = out.lines().nth(4).unwrap();
        assert!(shown.contains("…xxx"), "{shown}");
        assert!(shown.ends_with("yyy…"), "{shown}");
        // The caret still stands under `#{nope}` (counted in characters: `…` is one).
        let at = caret.find('^').unwrap();
        let under: String = shown.chars().skip(at).take(7).collect();
        assert_eq!(under, "#{nope}", "{out}");
        assert_eq!(caret.matches('^').count(), 7);
    }

    #[test]
    fn control_characters_are_escaped() {
        let src = "echo \0\x1b[2J \u{202e}x\tfoo\n";
        let offset = src.find("foo").unwrap();
        let d = Diagnostic::new(
            Span {
                offset,
                len: 3,
                line: 1,
                col: src[..offset].chars().count() as u32 + 1,
            },
            "unknown command `\0\x1b`",
        )
        .label("a\x07b");
        let out = d.render("a.scn", src);
        assert!(
            !out.chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{out:?}"
        );
        assert!(!out.contains('\u{202e}'), "{out:?}");
        assert!(out.contains("unknown command `\\0\\x1b`"), "{out}");
        assert!(out.contains("echo \\0\\x1b[2J \\u{202e}x\tfoo"), "{out}");
        let shown = out.lines().nth(3).unwrap();
        let caret = out.lines().nth(4).unwrap();
        let at = caret.find('^').unwrap();
        assert_eq!(&shown[at..at + 3], "foo", "{out}");
        assert!(out.contains("a\\x07b"), "{out}");
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
