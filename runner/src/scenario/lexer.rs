//! The lexer: source text to tokens, losslessly — the tokens' spans tile the input, so
//! concatenating their text gives the file back (a property the tests check).
//!
//! Quoting follows the shell closely enough that nobody is surprised: `'single'` is
//! literal, `"double"` interpolates `#{var}` and knows the escapes `\"`, `\\` and `\#`,
//! and quoted pieces glue to adjacent bare text. `#` outside quotes starts a comment
//! unless it opens `#{`.

use super::span::Span;
use super::token::{LexError, Part, Token, TokenKind, is_var_name};

/// Lexes a whole source into tokens (newlines included).
pub fn lex(src: &str) -> Vec<Token> {
    let mut lexer = Lexer::new(src);
    let mut all = Vec::new();
    let mut line = Vec::new();
    while lexer.line(&mut line) {
        all.append(&mut line);
    }
    all
}

/// A byte-level lexer that hands out one line at a time, so a parser can work through a
/// large file with one reusable token buffer. Every delimiter is ASCII, so runs of other
/// bytes (UTF-8 included) are copied as whole slices, and columns are counted as the
/// lexer goes, in characters.
pub struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    /// The 1-based column (in characters) at `pos`.
    col: u32,
}

/// Characters in a byte slice of UTF-8: the bytes that are not continuation bytes.
fn chars_in(bytes: &[u8]) -> u32 {
    bytes.iter().filter(|&&b| (b as i8) >= -0x40).count() as u32
}

/// Bytes that end a bare run inside a word.
fn is_special(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\'' | b'"' | b'#')
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn opens_interpolation(&self, i: usize) -> bool {
        self.at(i) == Some(b'#') && self.at(i + 1) == Some(b'{')
    }

    /// Lexes through the end of the current line, its newline included, into `out`
    /// (cleared first). Returns false at the end of the input.
    pub fn line(&mut self, out: &mut Vec<Token>) -> bool {
        out.clear();
        if self.pos >= self.bytes.len() {
            return false;
        }
        while let Some(b) = self.at(self.pos) {
            let start = self.pos;
            let start_col = self.col;
            let kind = match b {
                b'\n' => {
                    self.pos += 1;
                    TokenKind::Newline
                }
                b'\r' if self.at(self.pos + 1) == Some(b'\n') => {
                    self.pos += 2;
                    TokenKind::Newline
                }
                b' ' | b'\t' | b'\r' => {
                    while let Some(c @ (b' ' | b'\t' | b'\r')) = self.at(self.pos) {
                        if c == b'\r' && self.at(self.pos + 1) == Some(b'\n') {
                            break;
                        }
                        self.pos += 1;
                    }
                    TokenKind::Space
                }
                b'#' if !self.opens_interpolation(self.pos) => {
                    self.pos = self.line_end(self.pos);
                    TokenKind::Comment
                }
                _ => self.word(start_col),
            };
            let span = Span {
                offset: start,
                len: self.pos - start,
                line: self.line,
                col: start_col,
            };
            let newline = kind == TokenKind::Newline;
            out.push(Token { kind, span });
            if newline {
                self.line += 1;
                self.col = 1;
                break;
            }
            self.col += chars_in(&self.bytes[start..self.pos]);
        }
        true
    }

    /// When the current line is longer than `max` bytes (its newline left out), moves past
    /// it without lexing it and returns where it starts and its length: tokens of a line
    /// are held at once, so an absurd line would cost memory in proportion.
    pub fn skip_line_longer_than(&mut self, max: usize) -> Option<(Span, usize)> {
        let rest = self.bytes.get(self.pos..)?;
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        if len <= max {
            return None;
        }
        let span = Span {
            offset: self.pos,
            len: 1,
            line: self.line,
            col: self.col,
        };
        self.pos = (self.pos + len + 1).min(self.bytes.len());
        self.line += 1;
        self.col = 1;
        Some((span, len))
    }

    /// The offset of the line's end from `from`: its `\n`, or the `\r` of a `\r\n`.
    fn line_end(&self, from: usize) -> usize {
        let rest = &self.bytes[from..];
        let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        if nl > 0 && rest[nl - 1] == b'\r' && nl < rest.len() {
            from + nl - 1
        } else {
            from + nl
        }
    }

    fn word(&mut self, start_col: u32) -> TokenKind {
        let start = self.pos;
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut bare = true;
        loop {
            let run = self.pos;
            while self.at(self.pos).is_some_and(|b| !is_special(b)) {
                self.pos += 1;
            }
            lit.push_str(&self.src[run..self.pos]);
            match self.at(self.pos) {
                None | Some(b' ' | b'\t' | b'\n' | b'\r') => break,
                Some(b'#') => {
                    if !self.opens_interpolation(self.pos) {
                        break;
                    }
                    bare = false;
                    let col = start_col + chars_in(&self.bytes[start..self.pos]);
                    if let Err(e) = self.interpolation(&mut parts, &mut lit, col) {
                        return TokenKind::Error(e);
                    }
                }
                Some(b'\'') => {
                    bare = false;
                    let open = self.pos;
                    let rest = &self.bytes[open + 1..];
                    match rest.iter().position(|&b| b == b'\'' || b == b'\n') {
                        Some(i) if rest[i] == b'\'' => {
                            lit.push_str(&self.src[open + 1..open + 1 + i]);
                            self.pos = open + 1 + i + 1;
                        }
                        _ => {
                            self.pos = self.line_end(open);
                            return TokenKind::Error(LexError::UnterminatedQuote('\''));
                        }
                    }
                }
                Some(_) => {
                    // A double quote.
                    bare = false;
                    let open = self.pos;
                    self.pos += 1;
                    loop {
                        let run = self.pos;
                        while self
                            .at(self.pos)
                            .is_some_and(|b| !matches!(b, b'"' | b'\\' | b'#' | b'\n'))
                        {
                            self.pos += 1;
                        }
                        lit.push_str(&self.src[run..self.pos]);
                        match self.at(self.pos) {
                            None | Some(b'\n') => {
                                self.pos = self.line_end(open);
                                return TokenKind::Error(LexError::UnterminatedQuote('"'));
                            }
                            Some(b'"') => {
                                self.pos += 1;
                                break;
                            }
                            Some(b'\\') => {
                                self.pos += 1;
                                match self.at(self.pos) {
                                    Some(c @ (b'"' | b'\\' | b'#')) => {
                                        lit.push(c as char);
                                        self.pos += 1;
                                    }
                                    _ => lit.push('\\'),
                                }
                            }
                            Some(_) => {
                                // A `#`: interpolation, or a literal one.
                                if self.opens_interpolation(self.pos) {
                                    let col = start_col + chars_in(&self.bytes[start..self.pos]);
                                    if let Err(e) = self.interpolation(&mut parts, &mut lit, col) {
                                        return TokenKind::Error(e);
                                    }
                                } else {
                                    lit.push('#');
                                    self.pos += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        TokenKind::Word { parts, bare }
    }

    /// Reads `#{name}` at the current position (which starts with `#{`).
    fn interpolation(
        &mut self,
        parts: &mut Vec<Part>,
        lit: &mut String,
        col: u32,
    ) -> Result<(), LexError> {
        let start = self.pos;
        let rest = &self.bytes[start + 2..];
        let close = rest.iter().position(|&b| b == b'}' || b == b'\n');
        let Some(close) = close.filter(|&i| rest[i] == b'}') else {
            let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            self.pos = start + 2 + nl;
            return Err(LexError::UnterminatedInterpolation);
        };
        let name = &self.src[start + 2..start + 2 + close];
        self.pos = start + 2 + close + 1;
        if !is_var_name(name) {
            return Err(LexError::BadVariableName(name.to_string()));
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(lit)));
        }
        parts.push(Part::Var {
            name: name.to_string(),
            span: Span {
                offset: start,
                len: self.pos - start,
                line: self.line,
                col,
            },
        });
        Ok(())
    }
}

/// Parses a string that may contain `#{var}` (as in environment YAML values) into parts.
/// The text is taken literally apart from the interpolations; `\#{` escapes one.
pub fn interpolated(text: &str) -> Result<Vec<Part>, LexError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find("#{") {
        if rest[..i].ends_with('\\') {
            lit.push_str(&rest[..i - 1]);
            lit.push_str("#{");
            offset += i + 2;
            rest = &rest[i + 2..];
            continue;
        }
        lit.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(close) = after.find('}') else {
            return Err(LexError::UnterminatedInterpolation);
        };
        let name = &after[..close];
        if !is_var_name(name) {
            return Err(LexError::BadVariableName(name.to_string()));
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(&mut lit)));
        }
        parts.push(Part::Var {
            name: name.to_string(),
            span: Span {
                offset: offset + i,
                len: close + 3,
                line: 1,
                col: (offset + i) as u32 + 1,
            },
        });
        offset += i + 2 + close + 1;
        rest = &after[close + 1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders tokens compactly: words as their parts, with `$name` for variables.
    fn show(src: &str) -> String {
        lex(src)
            .iter()
            .map(|t| match &t.kind {
                TokenKind::Word { parts, bare } => {
                    let text: String = parts
                        .iter()
                        .map(|p| match p {
                            Part::Lit(s) => s.clone(),
                            Part::Var { name, .. } => format!("${name}"),
                        })
                        .collect();
                    if *bare {
                        format!("W({text})")
                    } else {
                        format!("Q({text})")
                    }
                }
                TokenKind::Space => "_".into(),
                TokenKind::Comment => "C".into(),
                TokenKind::Newline => "NL".into(),
                TokenKind::Error(e) => format!("E({e:?})"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn check(src: &str, expected: &str) {
        assert_eq!(show(src), expected, "lexing {src:?}");
        let rebuilt: String = lex(src).iter().map(|t| &src[t.span.range()]).collect();
        assert_eq!(rebuilt, src);
    }

    #[test]
    fn words_and_quotes() {
        check("echo hello world", "W(echo) _ W(hello) _ W(world)");
        check("echo 'a b' \"c d\"", "W(echo) _ Q(a b) _ Q(c d)");
        check("x'a'\"b\"c", "Q(xabc)");
        check("echo ''", "W(echo) _ Q()");
    }

    #[test]
    fn interpolation_in_words_and_double_quotes_only() {
        check("echo #{a} x#{b}y", "W(echo) _ Q($a) _ Q(x$by)");
        check("echo \"v=#{a}\"", "W(echo) _ Q(v=$a)");
        check("echo '#{a}'", "W(echo) _ Q(#{a})");
        check("echo \"\\#{a}\"", "W(echo) _ Q(#{a})");
    }

    #[test]
    fn comments() {
        check("echo a # note", "W(echo) _ W(a) _ C");
        check("# whole line\necho", "C NL W(echo)");
        check("echo a#b", "W(echo) _ W(a) C");
        check("echo \"a # b\"", "W(echo) _ Q(a # b)");
    }

    #[test]
    fn escapes_in_double_quotes() {
        check(
            r#"echo "say \"hi\" \\ \d""#,
            r#"W(echo) _ Q(say "hi" \ \d)"#,
        );
    }

    #[test]
    fn errors() {
        check(
            "echo 'abc\nnext",
            "W(echo) _ E(UnterminatedQuote('\\'')) NL W(next)",
        );
        check("echo #{abc", "W(echo) _ E(UnterminatedInterpolation)");
        check("echo #{a b}", "W(echo) _ E(BadVariableName(\"a b\"))");
    }

    #[test]
    fn columns_count_characters() {
        let toks = lex("echo \"é\" #{x}");
        let var = toks.last().unwrap();
        assert_eq!(var.span.col, 10);
    }

    #[test]
    fn crlf() {
        check(
            "echo a\r\necho b\r\n",
            "W(echo) _ W(a) NL W(echo) _ W(b) NL",
        );
    }

    #[test]
    fn interpolated_strings() {
        let parts = interpolated("127.0.0.1:#{port}/x").unwrap();
        assert_eq!(parts.len(), 3);
        assert!(matches!(&parts[1], Part::Var { name, .. } if name == "port"));
        assert_eq!(
            interpolated("a\\#{b}").unwrap(),
            vec![Part::Lit("a#{b}".into())]
        );
        assert!(interpolated("#{x").is_err());
    }
}
