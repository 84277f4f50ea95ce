//! Input files and their findings: every problem in a pipeline, environment or scenario
//! is a [`Finding`] that names the file, line and column, shows the line, and says what
//! to do. YAML loaders use [`locate_key`] to point at keys serde cannot place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::scenario::Diagnostic;
use crate::scenario::diagnostic::escape_text;
use crate::scenario::span::Span;

/// A file's path (as the user should see it) and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// The largest input file read: pipelines, environments, scenarios, templates are written
/// by hand, and checking costs memory in proportion to the text (a scenario of many short
/// words takes about a hundred times its size as a tree). The largest file of the
/// benchmarks is a 3.5 MiB scenario of 100,000 lines.
pub const MAX_SOURCE_BYTES: usize = 4 << 20;

impl SourceFile {
    /// Reads a file that must be UTF-8 and at most [`MAX_SOURCE_BYTES`] long.
    pub fn read(path: &Path) -> Result<SourceFile, Finding> {
        use std::io::Read as _;
        let cannot = |e: std::io::Error| Finding::file(path, format!("cannot read file: {e}"));
        let file = std::fs::File::open(path).map_err(cannot)?;
        // One byte more than the limit tells a file at the limit from a longer one, even
        // if it grows while we read it.
        let mut bytes = Vec::new();
        file.take(MAX_SOURCE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() > MAX_SOURCE_BYTES {
            let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
            return Err(Finding::file(
                path,
                format!(
                    "file of {:.1} MiB; the limit is {} MiB",
                    size as f64 / (1 << 20) as f64,
                    MAX_SOURCE_BYTES >> 20
                ),
            )
            .help("split it into smaller files"));
        }
        match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile {
                path: path.to_path_buf(),
                text: text.into(),
            }),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                let (line, col) = line_col_at(&bytes, valid);
                // Shown with U+FFFD in place of the bad bytes, so the line can be printed.
                let file = SourceFile {
                    path: path.to_path_buf(),
                    text: String::from_utf8_lossy(&bytes).into_owned().into(),
                };
                let span = Span {
                    offset: valid,
                    len: 1,
                    line,
                    col,
                };
                Err(
                    Finding::new(&file, Diagnostic::new(span, "not valid UTF-8"))
                        .label("this byte does not belong to a UTF-8 character")
                        .help("save the file as UTF-8"),
                )
            }
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

    /// A YAML error from serde, placed where serde says it is — except a duplicate key,
    /// which serde places at the start of the mapping that holds it: that one is placed
    /// where the key is written again.
    pub fn yaml(file: &SourceFile, error: &serde_yaml::Error) -> Finding {
        let message = strip_yaml_location(&error.to_string());
        match error.location() {
            Some(loc) => {
                let (line, col) = (loc.line() as u32, loc.column() as u32);
                let duplicate = duplicated_key(&message)
                    .and_then(|key| locate_duplicate_key(&file.text, line, col, key));
                if let Some((key, close)) = unknown_field(&message) {
                    let f = Finding::at(file, line, col, key.chars().count().max(1), &message);
                    return match close {
                        Some(close) => f.label(format!("did you mean `{close}`?")),
                        None => f,
                    };
                }
                match duplicate {
                    Some((line, col, len)) => Finding::at(file, line, col, len, message)
                        .label("written a second time here"),
                    None => Finding::at(file, line, col, 1, message),
                }
            }
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
                writeln!(
                    f,
                    "error: {}\n  --> {}",
                    escape_text(&self.diagnostic.message),
                    escape_text(&path)
                )?;
                if let Some(help) = &self.diagnostic.help {
                    writeln!(f, "  = help: {}", escape_text(help))?;
                }
                Ok(())
            }
        }
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `bytes`, whose first
/// `offset` bytes are UTF-8.
fn line_col_at(bytes: &[u8], offset: usize) -> (u32, u32) {
    let before = &bytes[..offset];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let col = before[line_start..]
        .iter()
        .filter(|&&b| (b as i8) >= -0x40)
        .count()
        + 1;
    (line as u32, col as u32)
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

/// The key serde's unknown-field message names (``unknown field `K`, expected one of
/// `a`, `b` `` or ``expected `a` ``), and the expected key closest to it, if any is
/// close enough to be what was meant.
fn unknown_field(message: &str) -> Option<(&str, Option<&str>)> {
    let at = message.find("unknown field `")? + "unknown field `".len();
    let rest = &message[at..];
    let end = rest.find('`')?;
    let key = &rest[..end];
    let expected = rest[end + 1..]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|k| !k.is_empty());
    Some((
        key,
        crate::scenario::diagnostic::did_you_mean(key, expected),
    ))
}

/// The key a serde duplicate-key message names: ``duplicate field `K` `` (a struct) or
/// `duplicate entry with key "K"` (a map).
/// serde_yaml puts the path of the mapping in front (`components.B: duplicate field …`).
fn duplicated_key(message: &str) -> Option<&str> {
    for (opening, closing) in [
        ("duplicate field `", '`'),
        ("duplicate entry with key \"", '"'),
    ] {
        if let Some(at) = message.find(opening) {
            return message[at + opening.len()..].strip_suffix(closing);
        }
    }
    None
}

/// Where `key` is written a second time in the block mapping that starts at `line`:`col`
/// (its first key): the line, column and length of that key. One pass from `line`.
/// Flow mappings (`{a: 1, a: 2}`) are not searched.
pub fn locate_duplicate_key(
    text: &str,
    line: u32,
    col: u32,
    key: &str,
) -> Option<(u32, u32, usize)> {
    let indent = col.checked_sub(1)? as usize;
    let written = [key.to_string(), format!("\"{key}\""), format!("'{key}'")];
    let mut seen = 0;
    for (i, l) in text.lines().enumerate().skip(line.checked_sub(1)? as usize) {
        let candidate = if i + 1 == line as usize {
            // The first key may follow `- ` (a mapping in a list): take the text from it.
            l.get(indent..)?
        } else {
            let trimmed = l.trim_start_matches(' ');
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let own_indent = l.len() - trimmed.len();
            if own_indent < indent {
                // Less indented than the mapping: it has ended.
                return None;
            }
            if own_indent > indent || trimmed.starts_with("- ") || trimmed == "-" {
                // A value of one of its keys.
                continue;
            }
            trimmed
        };
        let Some(k) = written.iter().find(|k| {
            candidate
                .strip_prefix(k.as_str())
                .is_some_and(|r| r.trim_start().starts_with(':'))
        }) else {
            continue;
        };
        seen += 1;
        if seen == 2 {
            return Some((i as u32 + 1, col, k.len()));
        }
    }
    None
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

/// Where a key is written: 1-based line and column, and the byte offset of its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPlace {
    pub line: u32,
    pub col: u32,
    pub line_start: usize,
}

impl KeyPlace {
    /// The key's line, without its newline.
    pub fn line_text(self, text: &str) -> &str {
        text[self.line_start..].lines().next().unwrap_or("")
    }

    /// The span of a key `len` bytes long (written unquoted; indentation is ASCII).
    pub fn key_span(self, len: usize) -> Span {
        Span {
            offset: self.line_start + self.col as usize - 1,
            len,
            line: self.line,
            col: self.col,
        }
    }
}

/// Where each key of the block mapping at a key path (`["variables"]`) is written, all
/// found in one pass. Empty for a flow mapping or a missing path.
pub fn locate_children(text: &str, path: &[&str]) -> std::collections::HashMap<String, KeyPlace> {
    let mut out = std::collections::HashMap::new();
    if path.is_empty() {
        return out;
    }
    let Some((parent_line, parent_col)) = locate_key(text, path) else {
        return out;
    };
    let parent_indent = parent_col as usize - 1;
    let mut child_indent = None;
    let mut line_start = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let start = line_start;
        line_start += raw.len();
        if i < parent_line as usize {
            continue;
        }
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent <= parent_indent {
            break;
        }
        if *child_indent.get_or_insert(indent) != indent {
            // Deeper: inside a child's value.
            continue;
        }
        let key = match trimmed.as_bytes()[0] {
            q @ (b'"' | b'\'') => trimmed[1..].split(q as char).next(),
            _ => trimmed.split(':').next().map(str::trim_end),
        };
        if let Some(key) = key {
            out.entry(key.to_string()).or_insert(KeyPlace {
                line: i as u32 + 1,
                col: indent as u32 + 1,
                line_start: start,
            });
        }
    }
    out
}

/// Finds values in a file in the order they are written, each search going on from the
/// last find: placing every entry of a long list costs one pass, not one pass per entry.
pub struct Cursor<'a> {
    text: &'a str,
    offset: usize,
    line: u32,
    line_start: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of 1-based `line`.
    pub fn at_line(text: &'a str, line: u32) -> Cursor<'a> {
        let mut cursor = Cursor {
            text,
            offset: 0,
            line: 1,
            line_start: 0,
        };
        for _ in 1..line {
            match memchr::memchr(b'\n', &text.as_bytes()[cursor.offset..]) {
                Some(nl) => {
                    cursor.offset += nl + 1;
                    cursor.line += 1;
                    cursor.line_start = cursor.offset;
                }
                None => break,
            }
        }
        cursor
    }

    /// The span of the next `needle` after the last find, if there is one.
    pub fn find(&mut self, needle: &str) -> Option<Span> {
        let at = self.offset + self.text[self.offset..].find(needle)?;
        let between = &self.text.as_bytes()[self.offset..at];
        self.line += memchr::memchr_iter(b'\n', between).count() as u32;
        if let Some(nl) = memchr::memrchr(b'\n', between) {
            self.line_start = self.offset + nl + 1;
        }
        self.offset = at + needle.len();
        Some(Span {
            offset: at,
            len: needle.len(),
            line: self.line,
            col: self.text[self.line_start..at].chars().count() as u32 + 1,
        })
    }
}

/// Finds the line of a list item or value whose text is `needle` under a key path: the
/// first place where it stands as a whole word (`stor` is not found in `store`), else the
/// first place at all.
pub fn locate_value(text: &str, path: &[&str], needle: &str) -> Option<(u32, u32)> {
    let (start_line, _) = locate_key(text, path)?;
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let whole = |line: &str, at: usize| {
        let (before, after) = (
            line[..at].chars().next_back(),
            line[at + needle.len()..].chars().next(),
        );
        let glued_before = word(needle.chars().next()) && word(before);
        let glued_after = word(needle.chars().next_back()) && word(after);
        !(glued_before || glued_after)
    };
    let mut first = None;
    for (i, line) in text.lines().enumerate().skip(start_line as usize - 1) {
        for (at, _) in line.match_indices(needle) {
            let place = (i as u32 + 1, line[..at].chars().count() as u32 + 1);
            if whole(line, at) {
                return Some(place);
            }
            first = first.or(Some(place));
        }
    }
    first
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
    fn a_value_is_found_as_a_whole_word_before_inside_a_longer_one() {
        let text = "probes:\n  - component: store\n  - component: stor\n";
        assert_eq!(locate_value(text, &["probes"], "stor"), Some((3, 16)));
        assert_eq!(locate_value(text, &["probes"], "tor"), Some((2, 17)));
    }

    #[test]
    fn locates_the_keys_of_a_mapping_in_one_pass() {
        let text = "variables:\n  a: 1\n  # note\n  'b c': 2\n  d:\n    e: 3\nname: x\n";
        let places = locate_children(text, &["variables"]);
        let at = |k: &str| places.get(k).map(|p| (p.line, p.col, p.line_text(text)));
        assert_eq!(at("a"), Some((2, 3, "  a: 1")));
        assert_eq!(at("b c"), Some((4, 3, "  'b c': 2")));
        assert_eq!(at("d"), Some((5, 3, "  d:")));
        assert_eq!(at("e"), None);
        assert_eq!(at("name"), None);
        assert_eq!(places.len(), 3);
    }

    #[test]
    fn a_cursor_finds_values_in_order() {
        let text = "scenarios:\n  - a.scn\n  - é/b.scn\n  - a.scn\n";
        let mut c = Cursor::at_line(text, 2);
        let at = |s: Option<Span>| s.map(|s| (s.line, s.col, &text[s.range()]));
        assert_eq!(at(c.find("a.scn")), Some((2, 5, "a.scn")));
        assert_eq!(at(c.find("b.scn")), Some((3, 7, "b.scn")));
        // The second `a.scn` is the one after the last find.
        assert_eq!(at(c.find("a.scn")), Some((4, 5, "a.scn")));
        assert_eq!(c.find("a.scn"), None);
    }

    #[test]
    fn an_unknown_key_is_underlined_whole_with_the_key_it_was_probably_meant_to_be() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Env {
            description: Option<String>,
            aliases: Option<serde_yaml::Value>,
            components: Option<serde_yaml::Value>,
        }
        let text = "description: d\naliasses:\n  t: 1\n";
        let file = SourceFile {
            path: PathBuf::from("e.yaml"),
            text: text.into(),
        };
        let err = serde_yaml::from_str::<Env>(text).unwrap_err();
        let f = Finding::yaml(&file, &err);
        assert_eq!(
            f.diagnostic.label.as_deref(),
            Some("did you mean `aliases`?")
        );
        assert_eq!((f.diagnostic.span.line, f.diagnostic.span.col), (2, 1));
        assert_eq!(f.diagnostic.span.len, "aliasses".len());
        // Nothing close: no guess.
        let text = "zzzzzz: 1\n";
        let file = SourceFile {
            path: PathBuf::from("e.yaml"),
            text: text.into(),
        };
        let err = serde_yaml::from_str::<Env>(text).unwrap_err();
        assert_eq!(Finding::yaml(&file, &err).diagnostic.label, None);
        assert_eq!(
            unknown_field("unknown field `runn`, expected `run`"),
            Some(("runn", Some("run")))
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

    fn yaml_finding(text: &str) -> Finding {
        #[derive(Debug, serde::Deserialize)]
        #[expect(dead_code, reason = "only deserialized, to provoke serde's errors")]
        struct Inner {
            start: Option<String>,
            log: Option<String>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[expect(dead_code, reason = "only deserialized, to provoke serde's errors")]
        struct Outer {
            name: Option<String>,
            environment: Option<String>,
            components: Option<std::collections::BTreeMap<String, Inner>>,
        }
        let file = SourceFile {
            path: "p.yaml".into(),
            text: text.into(),
        };
        let err = serde_yaml::from_str::<Outer>(&file.text).unwrap_err();
        Finding::yaml(&file, &err)
    }

    #[test]
    fn a_duplicate_key_is_placed_where_it_is_written_again() {
        // serde_yaml places these at the start of the mapping that holds them.
        let f = yaml_finding("name: x\nenvironment: local\n# note\nname: y\n");
        assert_eq!(f.diagnostic.message, "duplicate field `name`");
        assert_eq!((f.diagnostic.span.line, f.diagnostic.span.col), (4, 1));
        let f = yaml_finding(
            "components:\n  A:\n    start: a\n  B:\n    start: b\n    log: x\n    start: c\nname: n\n",
        );
        assert_eq!(
            f.diagnostic.message,
            "components.B: duplicate field `start`"
        );
        assert_eq!((f.diagnostic.span.line, f.diagnostic.span.col), (7, 5));
    }

    #[test]
    fn invalid_utf8_is_placed_at_its_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.scn");
        std::fs::write(&path, b"echo ok\necho caf\xc3\xa9 \xff\xfe\n").unwrap();
        let f = SourceFile::read(&path).unwrap_err();
        assert_eq!(f.diagnostic.message, "not valid UTF-8");
        // `é` is one character: the bad byte is the 11th character of line 2.
        assert_eq!((f.diagnostic.span.line, f.diagnostic.span.col), (2, 11));
        let shown = f.to_string();
        assert!(shown.contains("bad.scn:2:11"), "{shown}");
        assert!(shown.contains("UTF-8"), "{shown}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.scn");
        std::fs::write(&path, "echo x\n".repeat(MAX_SOURCE_BYTES / 7 + 1)).unwrap();
        let f = SourceFile::read(&path).unwrap_err();
        assert!(f.diagnostic.message.contains("the limit is"), "{f}");
    }
}
