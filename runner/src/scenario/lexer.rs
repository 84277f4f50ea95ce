//! The lexer: source text to tokens, losslessly — the tokens' spans tile the input, so
//! concatenating their text gives the file back (a property the tests check).
//!
//! Quoting follows the shell closely enough that nobody is surprised: `'single'` is
//! literal, `"double"` interpolates `#{var}` and knows the escapes `\"`, `\\` and `\#`,
//! and quoted pieces glue to adjacent bare text. `#` outside quotes starts a comment
//! unless it opens `#{`.

use super::span::Span;
use super::token::{LexError, Part, Token, TokenKind, is_var_name};

pub fn lex(src: &str) -> Vec<Token> {
    Lexer::new(src).run()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    /// Byte offset where the current line starts, for columns.
    line_start: usize,
    tokens: Vec<Token>,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
            line_start: 0,
            tokens: Vec::new(),
        }
    }

    fn run(mut self) -> Vec<Token> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            let kind = match c {
                '\n' => {
                    self.bump();
                    TokenKind::Newline
                }
                '\r' if self.src[self.pos..].starts_with("\r\n") => {
                    self.pos += 2;
                    TokenKind::Newline
                }
                ' ' | '\t' | '\r' => {
                    while matches!(self.peek(), Some(' ' | '\t' | '\r'))
                        && !self.src[self.pos..].starts_with("\r\n")
                    {
                        self.bump();
                    }
                    TokenKind::Space
                }
                '#' if !self.src[self.pos..].starts_with("#{") => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        if self.src[self.pos..].starts_with("\r\n") {
                            break;
                        }
                        self.bump();
                    }
                    TokenKind::Comment
                }
                _ => self.word(),
            };
            let span = self.span_from(start);
            let newline = kind == TokenKind::Newline;
            self.tokens.push(Token { kind, span });
            if newline {
                self.line += 1;
                self.line_start = self.pos;
            }
        }
        self.tokens
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn span_from(&self, start: usize) -> Span {
        Span {
            offset: start,
            len: self.pos - start,
            line: self.line,
            col: self.src[self.line_start..start].chars().count() as u32 + 1,
        }
    }

    fn at_word_end(&self) -> bool {
        match self.peek() {
            None | Some(' ' | '\t' | '\n' | '\r') => true,
            Some('#') => !self.src[self.pos..].starts_with("#{"),
            _ => false,
        }
    }

    fn word(&mut self) -> TokenKind {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut bare = true;
        while !self.at_word_end() {
            match self.peek() {
                Some('\'') => {
                    bare = false;
                    let open = self.pos;
                    self.bump();
                    loop {
                        match self.peek() {
                            None | Some('\n') => {
                                self.pos = self.line_end_from(open);
                                return TokenKind::Error(LexError::UnterminatedQuote('\''));
                            }
                            Some('\'') => {
                                self.bump();
                                break;
                            }
                            Some(c) => {
                                lit.push(c);
                                self.bump();
                            }
                        }
                    }
                }
                Some('"') => {
                    bare = false;
                    let open = self.pos;
                    self.bump();
                    loop {
                        match self.peek() {
                            None | Some('\n') => {
                                self.pos = self.line_end_from(open);
                                return TokenKind::Error(LexError::UnterminatedQuote('"'));
                            }
                            Some('"') => {
                                self.bump();
                                break;
                            }
                            Some('\\') => {
                                self.bump();
                                match self.peek() {
                                    Some(c @ ('"' | '\\' | '#')) => {
                                        lit.push(c);
                                        self.bump();
                                    }
                                    _ => lit.push('\\'),
                                }
                            }
                            Some('#') if self.src[self.pos..].starts_with("#{") => {
                                if let Err(e) = self.interpolation(&mut parts, &mut lit) {
                                    return TokenKind::Error(e);
                                }
                            }
                            Some(c) => {
                                lit.push(c);
                                self.bump();
                            }
                        }
                    }
                }
                Some('#') => {
                    bare = false;
                    if let Err(e) = self.interpolation(&mut parts, &mut lit) {
                        return TokenKind::Error(e);
                    }
                }
                Some(c) => {
                    lit.push(c);
                    self.bump();
                }
                None => break,
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        TokenKind::Word { parts, bare }
    }

    /// Reads `#{name}` at the current position (which starts with `#{`).
    fn interpolation(&mut self, parts: &mut Vec<Part>, lit: &mut String) -> Result<(), LexError> {
        let start = self.pos;
        let line_start = self.line_start;
        let rest = &self.src[self.pos + 2..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let Some(close) = rest[..line_end].find('}') else {
            self.pos += 2 + line_end;
            return Err(LexError::UnterminatedInterpolation);
        };
        let name = &rest[..close];
        self.pos += 2 + close + 1;
        if !is_var_name(name) {
            return Err(LexError::BadVariableName(name.to_string()));
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(lit)));
        }
        let span = Span {
            offset: start,
            len: self.pos - start,
            line: self.line,
            col: self.src[line_start..start].chars().count() as u32 + 1,
        };
        parts.push(Part::Var {
            name: name.to_string(),
            span,
        });
        Ok(())
    }

    /// After an unterminated quote, the error token swallows the rest of the line.
    fn line_end_from(&self, from: usize) -> usize {
        let rest = &self.src[from..];
        let end = rest.find('\n').unwrap_or(rest.len());
        let end = if rest[..end].ends_with('\r') {
            end - 1
        } else {
            end
        };
        from + end
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
