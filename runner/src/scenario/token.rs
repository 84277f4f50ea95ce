//! Tokens of the scenario language.

use super::span::Span;

/// One piece of a word: literal text, or a `#{name}` to fill in at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Var { name: String, span: Span },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A word: bare text, 'single' and "double" quoted pieces glued together, as in a shell.
    Word {
        parts: Vec<Part>,
        /// No quotes and no interpolation: only bare words can be keywords, labels or names.
        bare: bool,
    },
    /// Spaces and tabs between words.
    Space,
    /// `# …` to the end of the line.
    Comment,
    /// `\n` or `\r\n`.
    Newline,
    /// Text the lexer could not make sense of; the parser reports it.
    Error(LexError),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexError {
    UnterminatedQuote(char),
    UnterminatedInterpolation,
    BadVariableName(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

impl Token {
    /// The word's text when it is a bare word.
    pub fn bare_text(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Word { parts, bare: true } => match parts.as_slice() {
                [Part::Lit(s)] => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Variable names: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`.
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Labels and command names: an identifier, `-` allowed after the first character.
pub fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}
