//! The syntax tree of a scenario, and its canonical printing.

use std::fmt;
use std::time::Duration;

use super::span::Span;
use super::token::Part;

/// A parsed scenario: its statements in order, and where each label points.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    pub stmts: Vec<Stmt>,
    /// Label name to the index in `stmts` of the label statement.
    pub labels: std::collections::HashMap<String, usize>,
}

#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    /// The whole statement, for diagnostics and step records.
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum StmtKind {
    Label(Name),
    Goto(Name),
    /// `set VAR COMMAND ARGS…`
    Set {
        var: Name,
        call: Call,
    },
    /// `if A OP B then STATEMENT`
    If {
        cond: Cond,
        then: Box<Stmt>,
    },
    /// `assert A OP B [MESSAGE]`
    Assert {
        cond: Cond,
        message: Option<Arg>,
    },
    /// `exit [CODE]`
    Exit {
        code: Option<Arg>,
    },
    /// Any command: a builtin, a component control, an alias or a plugin.
    Call(Call),
}

#[derive(Clone, Debug)]
pub struct Cond {
    pub lhs: Arg,
    pub op: Op,
    pub op_span: Span,
    pub rhs: Arg,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub name: Name,
    pub args: Vec<Arg>,
    /// From `timeout DURATION COMMAND…`: this step's own limit.
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// An argument: literal and interpolated parts, one argument whatever the values contain.
#[derive(Clone, Debug)]
pub struct Arg {
    pub parts: Vec<Part>,
    pub span: Span,
}

impl Arg {
    /// The text when the argument has no interpolation.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var { .. } => return None,
            }
        }
        Some(out)
    }

    pub fn vars(&self) -> impl Iterator<Item = (&str, Span)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, span } => Some((name.as_str(), *span)),
            Part::Lit(_) => None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
}

impl Op {
    pub const ALL: [(&'static str, Op); 7] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        ("=~", Op::Match),
    ];

    pub fn parse(text: &str) -> Option<Op> {
        Op::ALL.iter().find(|(t, _)| *t == text).map(|(_, op)| *op)
    }

    pub fn as_str(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(t, _)| *t)
            .unwrap_or("?")
    }
}

/// Prints an argument so that the lexer reads it back as the same parts: bare when it
/// can be, double-quoted otherwise, single-quoted when it holds `#{` literally.
impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = self.parts.iter().all(|p| match p {
            Part::Lit(s) => {
                !s.is_empty()
                    && !s
                        .chars()
                        .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '#' | '\\'))
            }
            Part::Var { .. } => true,
        });
        if plain {
            for part in &self.parts {
                match part {
                    Part::Lit(s) => f.write_str(s)?,
                    Part::Var { name, .. } => write!(f, "#{{{name}}}")?,
                }
            }
            return Ok(());
        }
        f.write_str("\"")?;
        for part in &self.parts {
            match part {
                Part::Lit(s) => {
                    for c in s.chars() {
                        match c {
                            '"' | '\\' | '#' => write!(f, "\\{c}")?,
                            '\n' => f.write_str("\\n")?,
                            c => write!(f, "{c}")?,
                        }
                    }
                }
                Part::Var { name, .. } => write!(f, "#{{{name}}}")?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.lhs, self.op.as_str(), self.rhs)
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = self.timeout {
            write!(f, "timeout {}ms ", t.as_millis())?;
        }
        f.write_str(&self.name.text)?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// The canonical form of a statement: `parse(print(ast))` gives the same tree back.
impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            StmtKind::Label(name) => write!(f, "{}:", name.text),
            StmtKind::Goto(name) => write!(f, "goto {}", name.text),
            StmtKind::Set { var, call } => write!(f, "set {} {call}", var.text),
            StmtKind::If { cond, then } => write!(f, "if {cond} then {then}"),
            StmtKind::Assert { cond, message } => {
                write!(f, "assert {cond}")?;
                if let Some(m) = message {
                    write!(f, " {m}")?;
                }
                Ok(())
            }
            StmtKind::Exit { code: None } => f.write_str("exit"),
            StmtKind::Exit { code: Some(c) } => write!(f, "exit {c}"),
            StmtKind::Call(call) => write!(f, "{call}"),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for stmt in &self.stmts {
            writeln!(f, "{stmt}")?;
        }
        Ok(())
    }
}
