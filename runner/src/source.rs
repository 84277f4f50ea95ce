//! Input files and their findings: every problem in a pipeline, environment or scenario
//! is a [`Finding`] that names the file, line and column, shows the line, and says what
//! to do. YAML loaders use [`locate_key`] to point at keys serde cannot place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::scenario::Diagnostic;
use crate::scenario::span::Span;

/// A file's path (as the user should see it) and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn read(path: &Path) -> Result<SourceFile, Finding> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(SourceFile {
                path: path.to_path_buf(),
                text: text.into(),
            }),
            Err(e) => Err(Finding::file(path, format!("cannot read file: {e}"))),
        }
    }

    /// A span for 1-based `line` and `col`, `len` bytes long (clamped to the line).
    pub fn span_at(&self, line: u32, col: u32, len: usize) -> Span {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line as usize {
                let col_bytes: usize = l
                    .chars()
                    .take(col.saturating_sub(1) as usize)
                    .map(char::len_utf8)
                    .sum();
                let rest = l[col_bytes..].trim_end_matches(['\n', '\r']).len();
                return Span {
                    offset: offset + col_bytes,
                    len: len.min(rest).max(1),
                    line,
                    col,
                };
            }
            offset += l.len();
        }
        Span {
            offset: self.text.len(),
            len: 0,
            line: line.max(1),
            col: col.max(1),
        }
    }
}

/// One problem in one input file.
#[derive(Clone, Debug)]
pub struct Finding {
    pub path: PathBuf,
    /// The file's text, when the finding points into it.
    pub source: Option<Arc<str>>,
    /// Boxed: findings travel in `Result`s, and the error side should stay small.
    pub diagnostic: Box<Diagnostic>,
}

impl Finding {
    pub fn new(file: &SourceFile, diagnostic: Diagnostic) -> Finding {
        Finding {
            path: file.path.clone(),
            source: Some(file.text.clone()),
            diagnostic: Box::new(diagnostic),
        }
    }

    /// A finding about a whole file (it is missing, unreadable…).
    pub fn file(path: &Path, message: impl Into<String>) -> Finding {
        Finding {
            path: path.to_path_buf(),
            source: None,
            diagnostic: Box::new(Diagnostic::new(Span::default(), message)),
        }
    }

    /// A finding at a line and column of `file`.
    pub fn at(
        file: &SourceFile,
        line: u32,
        col: u32,
        len: usize,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(file, Diagnostic::new(file.span_at(line, col, len), message))
    }

    pub fn help(mut self, help: impl Into<String>) -> Finding {
        self.diagnostic.help = Some(help.into());
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Finding {
        self.diagnostic.label = Some(label.into());
        self
    }

    /// A YAML error from serde, placed where serde says it is.
    pub fn yaml(file: &SourceFile, error: &serde_yaml::Error) -> Finding {
        let message = strip_yaml_location(&error.to_string());
        match error.location() {
            Some(loc) => Finding::at(file, loc.line() as u32, loc.column() as u32, 1, message),
            None => Finding::new(file, Diagnostic::new(file.span_at(1, 1, 1), message)),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = display_path(&self.path);
        match &self.source {
            Some(text) => f.write_str(&self.diagnostic.render(&path, text)),
            None => {
                writeln!(f, "error: {}\n  --> {path}", self.diagnostic.message)?;
                if let Some(help) = &self.diagnostic.help {
                    writeln!(f, "  = help: {help}")?;
                }
                Ok(())
            }
        }
    }
}

/// Paths as a person reads them: relative to the working directory when they can be.
pub fn display_path(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    p.strip_prefix(&cwd).unwrap_or(p).display().to_string()
}

/// serde_yaml appends " at line L column C" to its messages; we show the place ourselves.
fn strip_yaml_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_string(),
        _ => message.to_string(),
    }
}

/// Finds where a key path (`["components", "Engine", "start"]`) is written in a YAML
/// file, by indentation. Returns the 1-based line and the column of the key, or of the
/// deepest ancestor found. Good enough for hand-written block YAML, which is what
/// pipelines and environments are; flow style falls back to the ancestor.
pub fn locate_key(text: &str, path: &[&str]) -> Option<(u32, u32)> {
    let mut best = None;
    let mut depth = 0;
    let mut indent_of_parent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        if depth == path.len() {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(parent) = indent_of_parent
            && indent <= parent
        {
            // Left the parent's block without finding the key.
            break;
        }
        let key = trimmed.trim_start_matches("- ");
        let key_col = indent + (trimmed.len() - key.len());
        let want = path[depth];
        let matches = key
            .strip_prefix(want)
            .or_else(|| key.strip_prefix(&format!("\"{want}\"")))
            .or_else(|| key.strip_prefix(&format!("'{want}'")))
            .is_some_and(|rest| rest.starts_with(':'));
        if matches {
            best = Some((i as u32 + 1, key_col as u32 + 1));
            indent_of_parent = Some(key_col);
            depth += 1;
        }
    }
    best
}

/// Finds the line of a list item or value whose text is `needle` under a key path.
pub fn locate_value(text: &str, path: &[&str], needle: &str) -> Option<(u32, u32)> {
    let (start_line, _) = locate_key(text, path)?;
    for (i, line) in text.lines().enumerate().skip(start_line as usize - 1) {
        if let Some(col) = line.find(needle) {
            return Some((i as u32 + 1, line[..col].chars().count() as u32 + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "name: x\ncomponents:\n  A:\n    start: [a]\n  B:\n    start: [b]\n    log: b.log\naliases:\n  start: x\n";

    #[test]
    fn locates_nested_keys() {
        assert_eq!(locate_key(YAML, &["components", "B", "log"]), Some((7, 5)));
        assert_eq!(
            locate_key(YAML, &["components", "A", "start"]),
            Some((4, 5))
        );
        assert_eq!(locate_key(YAML, &["aliases", "start"]), Some((9, 3)));
        // A missing key points at its deepest ancestor.
        assert_eq!(locate_key(YAML, &["components", "A", "log"]), Some((3, 3)));
        assert_eq!(
            locate_value(YAML, &["components", "B"], "b.log"),
            Some((7, 10))
        );
    }

    #[test]
    fn yaml_errors_carry_their_place() {
        let file = SourceFile {
            path: "p.yaml".into(),
            text: "a: [1\n".into(),
        };
        let err = serde_yaml::from_str::<serde_yaml::Value>(&file.text).unwrap_err();
        let f = Finding::yaml(&file, &err);
        assert!(f.to_string().contains("--> p.yaml:"), "{f}");
    }
}
