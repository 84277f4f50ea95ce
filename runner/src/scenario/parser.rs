//! The parser: tokens to a [`Scenario`] plus every problem found, never just the first.
//!
//! One statement per line. Method names follow a convention: `parse_*` builds a node,
//! `expect_*` reports a user error when the input is not what the grammar needs.
//! Parsing never fails as a whole: a bad line becomes a diagnostic and is skipped.

use std::collections::HashMap;

use super::ast::{Arg, Call, Cond, Name, Op, Scenario, Stmt, StmtKind};
use super::diagnostic::{Diagnostic, did_you_mean};
use super::duration::parse_duration;
use super::lexer::Lexer;
use super::span::Span;
use super::token::{LexError, Token, TokenKind, is_ident, is_var_name};

/// How deep statements may nest (`if … then if …`, `timeout 5s timeout …`): the tree is
/// walked recursively (checks, printing, the interpreter on a step thread's stack), and
/// no scenario needs more than two or three levels.
pub const MAX_NESTING: usize = 100;

/// The longest line read, in bytes: longer ones are reported and skipped unlexed.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Parses a whole scenario file.
pub fn parse(src: &str) -> (Scenario, Vec<Diagnostic>) {
    let mut lexer = Lexer::new(src);
    let mut diagnostics = Vec::new();
    let mut scenario = Scenario::default();
    let mut label_spans: HashMap<String, Span> = HashMap::new();
    let mut line = Vec::new();
    let mut words: Vec<Token> = Vec::new();

    loop {
        if let Some((span, len)) = lexer.skip_line_longer_than(MAX_LINE_BYTES) {
            diagnostics.push(
                Diagnostic::new(
                    span,
                    format!("line of {len} bytes; the limit is {MAX_LINE_BYTES}"),
                )
                .help("split the statement; keep long data in a file a command reads"),
            );
            continue;
        }
        if !lexer.line(&mut line) {
            break;
        }
        // The words alone, in place: one buffer, however long the line.
        line.retain(|t| {
            !matches!(
                t.kind,
                TokenKind::Space | TokenKind::Comment | TokenKind::Newline
            )
        });
        std::mem::swap(&mut line, &mut words);
        if words.is_empty() {
            continue;
        }
        if let Some(bad) = words.iter().find(|t| matches!(t.kind, TokenKind::Error(_))) {
            diagnostics.push(lex_error(bad));
            continue;
        }
        let top = words[0].span;
        match parse_statement(&mut words, Nesting { depth: 0, top }) {
            Ok(stmt) => {
                if let StmtKind::Label(name) = &stmt.kind {
                    if let Some(first) = label_spans.get(&name.text) {
                        diagnostics.push(
                            Diagnostic::new(
                                name.span,
                                format!("label `{}` is defined twice", name.text),
                            )
                            .label("defined again here")
                            .help(format!(
                                "the first definition is on line {}; rename one of them",
                                first.line
                            )),
                        );
                        continue;
                    }
                    label_spans.insert(name.text.clone(), name.span);
                    scenario
                        .labels
                        .insert(name.text.clone(), scenario.stmts.len());
                }
                scenario.stmts.push(stmt);
            }
            Err(d) => diagnostics.push(d),
        }
    }

    for stmt in &scenario.stmts {
        for target in goto_targets(stmt) {
            if !scenario.labels.contains_key(&target.text) {
                let mut d =
                    Diagnostic::new(target.span, format!("undefined label `{}`", target.text));
                if let Some(close) =
                    did_you_mean(&target.text, scenario.labels.keys().map(String::as_str))
                {
                    d = d.label(format!("did you mean `{close}`?"));
                } else {
                    d = d.help(format!(
                        "define it on a line of its own: `{}:`",
                        target.text
                    ));
                }
                diagnostics.push(d);
            }
        }
    }
    diagnostics.sort_by_key(|d| d.span.offset);
    (scenario, diagnostics)
}

/// The labels a statement may jump to (through `if … then goto`, too).
pub fn goto_targets(stmt: &Stmt) -> Vec<&Name> {
    match &stmt.kind {
        StmtKind::Goto(name) => vec![name],
        StmtKind::If { then, .. } => goto_targets(then),
        _ => Vec::new(),
    }
}

fn lex_error(token: &Token) -> Diagnostic {
    match &token.kind {
        TokenKind::Error(LexError::UnterminatedQuote(q)) => {
            Diagnostic::new(token.span, format!("unterminated {q}quote{q}"))
                .label("this quote is never closed")
                .help(format!("close it with {q} on the same line"))
        }
        TokenKind::Error(LexError::UnterminatedInterpolation) => {
            Diagnostic::new(token.span, "unterminated `#{`").help("close the variable with `}`")
        }
        TokenKind::Error(LexError::BadVariableName(name)) => {
            Diagnostic::new(token.span, format!("`{name}` is not a variable name"))
                .help("variable names use letters, digits, `_`, `.` and `-`")
        }
        _ => Diagnostic::new(token.span, "unexpected token"),
    }
}

/// The keyword a statement starts with, found without keeping a borrow of the tokens.
enum Head {
    Label,
    Goto,
    Set,
    If,
    Assert,
    Exit,
    Command,
}

/// How deep a statement is nested, and where its outermost statement starts.
#[derive(Clone, Copy)]
struct Nesting {
    depth: usize,
    top: Span,
}

impl Nesting {
    /// One level deeper, or the diagnostic for a statement nested too deep.
    fn deeper(self) -> Result<Nesting, Diagnostic> {
        if self.depth >= MAX_NESTING {
            return Err(Diagnostic::new(
                self.top,
                format!("statements nested deeper than {MAX_NESTING} levels"),
            )
            .help("split the statement: use `set`, labels and `goto`"));
        }
        Ok(Nesting {
            depth: self.depth + 1,
            top: self.top,
        })
    }
}

fn parse_statement(words: &mut [Token], nesting: Nesting) -> Result<Stmt, Diagnostic> {
    let top_level = nesting.depth == 0;
    let span = words[0].span.to(words[words.len() - 1].span);
    let stmt = |kind| Ok(Stmt { kind, span });
    let head = match words[0].bare_text() {
        None => {
            return Err(Diagnostic::new(
                words[0].span,
                "a statement must start with a command name",
            )
            .help("command names are bare words; quote only the arguments"));
        }
        Some(t) if words.len() == 1 && t.ends_with(':') => Head::Label,
        Some("goto") => Head::Goto,
        Some("set") => Head::Set,
        Some("if") => Head::If,
        Some("assert") => Head::Assert,
        Some("exit") => Head::Exit,
        Some(_) => Head::Command,
    };

    if let Head::Label = head {
        let label = words[0]
            .bare_text()
            .unwrap_or(":")
            .trim_end_matches(':')
            .to_string();
        let label = label.as_str();
        if !top_level {
            return Err(Diagnostic::new(
                words[0].span,
                "a label cannot follow `then`",
            ));
        }
        if !is_ident(label) {
            return Err(Diagnostic::new(
                words[0].span,
                format!("`{label}` is not a valid label name"),
            )
            .help("labels are letters, digits, `_` and `-`, starting with a letter"));
        }
        return stmt(StmtKind::Label(name_of(&words[0], label)));
    }

    match head {
        Head::Label => unreachable!("handled above"),
        Head::Goto => {
            let [_, target] = &*words else {
                return Err(arity(words, "goto takes one label: `goto LABEL`"));
            };
            let Some(text) = target.bare_text().filter(|t| is_ident(t)) else {
                return Err(Diagnostic::new(target.span, "expected a label name"));
            };
            stmt(StmtKind::Goto(name_of(target, text)))
        }
        Head::Set => {
            if words.len() < 3 {
                return Err(arity(
                    words,
                    "`set` needs a variable and a command: `set VAR COMMAND ARGS…`",
                ));
            }
            let Some(var) = words[1].bare_text().filter(|t| is_var_name(t)) else {
                return Err(Diagnostic::new(words[1].span, "expected a variable name")
                    .help("variable names use letters, digits, `_`, `.` and `-`"));
            };
            let var = name_of(&words[1], var);
            let call = parse_call(&mut words[2..], nesting)?;
            stmt(StmtKind::Set { var, call })
        }
        Head::If => {
            let then_at = words.iter().position(|w| w.bare_text() == Some("then"));
            let Some(then_at) = then_at else {
                return Err(Diagnostic::new(span, "`if` needs `then`")
                    .help("write `if A OP B then STATEMENT`"));
            };
            if then_at != 4 {
                return Err(Diagnostic::new(
                    span,
                    "`if` takes a condition of three words: `if A OP B then STATEMENT`",
                )
                .help("quote operands that contain spaces"));
            }
            if then_at + 1 >= words.len() {
                return Err(
                    Diagnostic::new(words[then_at].span, "nothing follows `then`")
                        .help("give the statement to run, for example `goto pass`"),
                );
            }
            let cond = parse_cond(&mut words[1..4])?;
            let then = parse_statement(&mut words[then_at + 1..], nesting.deeper()?)?;
            stmt(StmtKind::If {
                cond,
                then: Box::new(then),
            })
        }
        Head::Assert => {
            if !(4..=5).contains(&words.len()) {
                return Err(arity(words, "`assert` takes `A OP B [MESSAGE]`"));
            }
            let cond = parse_cond(&mut words[1..4])?;
            let message = words.get_mut(4).map(arg_of);
            stmt(StmtKind::Assert { cond, message })
        }
        Head::Exit => {
            if words.len() > 2 {
                return Err(arity(words, "`exit` takes at most one exit code"));
            }
            let code = words.get_mut(1).map(arg_of);
            if let Some(lit) = code.as_ref().and_then(Arg::literal)
                && lit.parse::<u8>().is_err()
            {
                return Err(
                    Diagnostic::new(words[1].span, format!("`{lit}` is not an exit code"))
                        .help("exit codes are whole numbers from 0 to 255"),
                );
            }
            stmt(StmtKind::Exit { code })
        }
        Head::Command => stmt(StmtKind::Call(parse_call(words, nesting)?)),
    }
}

fn parse_call(words: &mut [Token], nesting: Nesting) -> Result<Call, Diagnostic> {
    let Some(head) = words[0].bare_text() else {
        return Err(Diagnostic::new(
            words[0].span,
            "a command name must be a bare word",
        ));
    };
    if head == "timeout" {
        if words.len() < 3 {
            return Err(arity(
                words,
                "`timeout` needs a duration and a command: `timeout 5s COMMAND…`",
            ));
        }
        let duration = words[1]
            .bare_text()
            .and_then(parse_duration)
            .ok_or_else(|| expect_duration(&words[1]))?;
        let mut call = parse_call(&mut words[2..], nesting.deeper()?)?;
        call.timeout = Some(duration);
        return Ok(call);
    }
    if !is_ident(head) {
        return Err(
            Diagnostic::new(words[0].span, format!("`{head}` is not a command name"))
                .help("command names are letters, digits, `_` and `-`, starting with a letter"),
        );
    }
    let name = name_of(&words[0], head);
    Ok(Call {
        name,
        args: words[1..].iter_mut().map(arg_of).collect(),
        timeout: None,
    })
}

fn parse_cond(words: &mut [Token]) -> Result<Cond, Diagnostic> {
    let op_token = &words[1];
    let op = op_token.bare_text().and_then(Op::parse).ok_or_else(|| {
        Diagnostic::new(op_token.span, "expected a comparison operator")
            .help("use one of ==, !=, <, <=, >, >=, =~")
    })?;
    let op_span = op_token.span;
    Ok(Cond {
        lhs: arg_of(&mut words[0]),
        op,
        op_span,
        rhs: arg_of(&mut words[2]),
    })
}

pub fn expect_duration(token: &Token) -> Diagnostic {
    Diagnostic::new(token.span, "expected a duration")
        .help("write it as 500ms, 5s or 2m; a bare number is seconds")
}

fn arity(words: &[Token], message: &str) -> Diagnostic {
    let span = words[0].span.to(words[words.len() - 1].span);
    Diagnostic::new(span, message.to_string())
}

fn name_of(token: &Token, text: &str) -> Name {
    Name {
        text: text.to_string(),
        span: token.span,
    }
}

/// Moves the word's parts into an argument: the token is spent.
fn arg_of(token: &mut Token) -> Arg {
    let parts = match &mut token.kind {
        TokenKind::Word { parts, .. } => std::mem::take(parts),
        _ => Vec::new(),
    };
    Arg {
        parts,
        span: token.span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and prints back: statements in canonical form, then diagnostics.
    fn check(src: &str, expected: &str) {
        let (ast, diags) = parse(src);
        let mut out = ast.to_string();
        for d in diags {
            out.push_str(&format!("{}:{}: {}\n", d.span.line, d.span.col, d.message));
        }
        assert_eq!(out, expected, "parsing {src:?}");
    }

    #[test]
    fn the_talks_scenario() {
        let src = "start_load\nkill -9 MatchingEnginePrimary\nset smoke_status exec_smoke\n\
                   if 'PASS' == #{smoke_status} then goto pass\necho FAIL\nstop_load\nexit 1\n\
                   pass:\necho PASS\nstop_load\nexit 0\n";
        check(
            src,
            "start_load\nkill -9 MatchingEnginePrimary\nset smoke_status exec_smoke\n\
             if PASS == #{smoke_status} then goto pass\necho FAIL\nstop_load\nexit 1\n\
             pass:\necho PASS\nstop_load\nexit 0\n",
        );
    }

    #[test]
    fn statements() {
        check("timeout 5s exec_smoke a\n", "timeout 5000ms exec_smoke a\n");
        check("set x timeout 500ms probe\n", "set x timeout 500ms probe\n");
        check(
            "assert #{a} >= 3 \"too slow\"\n",
            "assert #{a} >= 3 \"too slow\"\n",
        );
        check("exit\n", "exit\n");
        check("if a =~ ^b then exit 2\n", "if a =~ ^b then exit 2\n");
        check("echo   'two words'  # comment\n", "echo \"two words\"\n");
    }

    #[test]
    fn errors_are_all_reported() {
        check(
            "goto nowhere\nfoo:\nfoo:\nif a == b\nexit x\nset 'x' echo\n",
            "goto nowhere\nfoo:\n\
             1:6: undefined label `nowhere`\n\
             3:1: label `foo` is defined twice\n\
             4:1: `if` needs `then`\n\
             5:6: `x` is not an exit code\n\
             6:5: expected a variable name\n",
        );
    }

    #[test]
    fn more_errors() {
        check(
            "if a ~ b then exit\n",
            "1:6: expected a comparison operator\n",
        );
        check("if a == b then\n", "1:11: nothing follows `then`\n");
        check("timeout soon x\n", "1:9: expected a duration\n");
        check(
            "'echo' x\n",
            "1:1: a statement must start with a command name\n",
        );
        check("echo \"open\n", "1:6: unterminated \"quote\"\n");
        check(
            "if a == b then start:\n",
            "1:16: a label cannot follow `then`\n",
        );
    }

    #[test]
    fn nesting_is_limited() {
        let deep = |n: usize, head: &str| format!("{}echo x\n", head.repeat(n));
        let (ast, diags) = parse(&deep(MAX_NESTING, "if a == a then "));
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(ast.stmts.len(), 1);
        let (ast, diags) = parse(&deep(MAX_NESTING, "timeout 1s "));
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(ast.stmts.len(), 1);
        // One level more, and far more (which must not take long nor overflow the stack);
        // 60,000 levels stay under the line limit.
        for n in [MAX_NESTING + 1, 60_000] {
            for head in ["if a == a then ", "timeout 1s "] {
                let (ast, diags) = parse(&deep(n, head));
                assert!(ast.stmts.is_empty(), "{n} {head:?}: {diags:?}");
                assert_eq!(diags.len(), 1, "{diags:?}");
                assert_eq!(
                    diags[0].message,
                    format!("statements nested deeper than {MAX_NESTING} levels")
                );
                assert_eq!((diags[0].span.line, diags[0].span.col), (1, 1));
            }
        }
    }

    #[test]
    fn long_lines_are_refused_without_being_lexed() {
        let src = format!(
            "echo ok\necho {}\necho 'still read'\n",
            "ab ".repeat(MAX_LINE_BYTES / 3)
        );
        let (ast, diags) = parse(&src);
        assert_eq!(ast.stmts.len(), 2);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.starts_with("line of "), "{diags:?}");
        assert_eq!((diags[0].span.line, diags[0].span.col), (2, 1));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::parse;
    use crate::scenario::lexer::lex;

    /// Text that looks like scenarios: the language's own characters, often.
    fn scenario_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "echo", "set", "if", "then", "goto", "exit", "assert", "timeout", "5s", "x", "lbl:",
            "lbl", "==", "=~", "<", "'", "\"", "#", "#{", "}", "#{v}", " ", "  ", "\t", "\n",
            "\r\n", "\\", "é", "0", "-9",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(src in "\\PC*") {
            let _ = parse(&src);
        }

        #[test]
        fn never_panics_on_scenario_like_text(src in scenario_text()) {
            let _ = parse(&src);
        }

        #[test]
        fn lexemes_rebuild_the_input(src in scenario_text()) {
            let rebuilt: String = lex(&src).iter().map(|t| &src[t.span.range()]).collect();
            prop_assert_eq!(rebuilt, src);
        }

        /// Printing a parsed scenario and parsing it again gives the same statements.
        #[test]
        fn print_then_parse_is_stable(src in scenario_text()) {
            let (ast, _) = parse(&src);
            let printed = ast.to_string();
            let (again, diags) = parse(&printed);
            prop_assert!(diags.iter().all(|d| d.message.starts_with("undefined label")), "{printed:?}: {diags:?}");
            prop_assert_eq!(again.to_string(), printed);
        }
    }
}
