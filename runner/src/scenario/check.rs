//! Static checks of a parsed scenario against what the environment offers: every command
//! resolves, every component exists, every variable can be set, every literal regex and
//! duration is valid — so a run never stops half-way on something knowable in advance.

use std::collections::{HashMap, HashSet};

use super::ast::{Arg, Call, Op, Scenario, Stmt, StmtKind};
use super::builtin::{BUILTINS, Builtin};
use super::diagnostic::{Diagnostic, did_you_mean};
use super::span::Span;

/// What a scenario's names resolve against: the environment and the tool directories.
pub trait Catalog {
    /// True when `name` is an alias of the environment or a plugin on the tool path.
    fn has_command(&self, name: &str) -> bool;
    /// Every alias and plugin name, for suggestions.
    fn command_names(&self) -> Vec<String>;
    fn has_component(&self, name: &str) -> bool;
    fn component_names(&self) -> Vec<String>;
    /// Variables set before the scenario starts (environment variables, run context).
    fn has_variable(&self, name: &str) -> bool;
    /// Their names, for suggestions.
    fn variable_names(&self) -> Vec<String>;
}

pub fn check(scenario: &Scenario, catalog: &dyn Catalog) -> Vec<Diagnostic> {
    let mut set_vars = HashSet::new();
    for stmt in &scenario.stmts {
        collect_sets(stmt, &mut set_vars);
    }
    let mut checker = Checker {
        catalog,
        set_vars,
        valid_regexes: HashSet::new(),
        suggested_variables: HashMap::new(),
        suggested_commands: HashMap::new(),
        diagnostics: Vec::new(),
    };
    for stmt in &scenario.stmts {
        checker.stmt(stmt);
    }
    checker.diagnostics
}

fn collect_sets(stmt: &Stmt, out: &mut HashSet<String>) {
    match &stmt.kind {
        StmtKind::Set { var, .. } => {
            out.insert(var.text.clone());
            out.insert(format!("{}.status", var.text));
        }
        StmtKind::If { then, .. } => collect_sets(then, out),
        _ => {}
    }
}

/// The value `make` gives for `name`, made the first time only.
fn memo(
    cache: &mut HashMap<String, Option<String>>,
    name: &str,
    make: impl FnOnce() -> Option<String>,
) -> Option<String> {
    if let Some(known) = cache.get(name) {
        return known.clone();
    }
    let value = make();
    cache.insert(name.to_string(), value.clone());
    value
}

struct Checker<'a> {
    catalog: &'a dyn Catalog,
    set_vars: HashSet<String>,
    /// Patterns already compiled once: a large file repeats the same few.
    valid_regexes: HashSet<String>,
    /// Suggestions for unknown variables and commands, made once per name: each compares
    /// the name with every known one, and a large file repeats the same few mistakes.
    suggested_variables: HashMap<String, Option<String>>,
    suggested_commands: HashMap<String, Option<String>>,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn stmt(&mut self, stmt: &Stmt) {
        match &stmt.kind {
            StmtKind::Label(_) | StmtKind::Goto(_) => {}
            StmtKind::Set { call, .. } => self.call(call),
            StmtKind::If { cond, then } => {
                self.args([&cond.lhs, &cond.rhs]);
                self.regex(cond.op, &cond.rhs);
                self.stmt(then);
            }
            StmtKind::Assert { cond, message } => {
                self.args([&cond.lhs, &cond.rhs]);
                self.args(message.iter());
                self.regex(cond.op, &cond.rhs);
            }
            StmtKind::Exit { code } => self.args(code.iter()),
            StmtKind::Call(call) => self.call(call),
        }
    }

    fn args<'b>(&mut self, args: impl IntoIterator<Item = &'b Arg>) {
        for arg in args {
            for (name, span) in arg.vars() {
                if self.set_vars.contains(name) || self.catalog.has_variable(name) {
                    continue;
                }
                let mut d = Diagnostic::new(span, format!("variable `{name}` is never set"));
                let (catalog, set_vars) = (self.catalog, &self.set_vars);
                let close = memo(&mut self.suggested_variables, name, || {
                    let outer = catalog.variable_names();
                    let known = set_vars
                        .iter()
                        .map(String::as_str)
                        .chain(outer.iter().map(String::as_str));
                    did_you_mean(name, known).map(str::to_string)
                });
                if let Some(close) = close {
                    d = d.label(format!("did you mean `{close}`?"));
                } else {
                    d = d.help(format!(
                        "set it with `set {name} COMMAND…` or define it in the environment's variables"
                    ));
                }
                self.diagnostics.push(d);
            }
        }
    }

    fn regex(&mut self, op: Op, rhs: &Arg) {
        if op != Op::Match {
            return;
        }
        let Some(pattern) = rhs.literal() else { return };
        if self.valid_regexes.contains(&pattern) {
            return;
        }
        if let Err(e) = regex::Regex::new(&pattern) {
            let first = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            self.diagnostics
                .push(Diagnostic::new(rhs.span, "invalid regular expression").label(first));
        } else {
            self.valid_regexes.insert(pattern);
        }
    }

    fn call(&mut self, call: &Call) {
        self.args(call.args.iter());
        let name = call.name.text.as_str();
        // A builtin's words are read by the parser the run uses: each error at its word.
        if let Some(checked) = Builtin::check(call) {
            self.diagnostics
                .extend(checked.errors.iter().map(|e| e.diagnostic()));
            if let Some(component) = checked.builtin.as_ref().and_then(|b| b.component()) {
                self.component(component.value.as_deref(), component.span);
            }
            return;
        }
        if self.catalog.has_command(name) {
            return;
        }
        let catalog = self.catalog;
        let close = memo(&mut self.suggested_commands, name, || {
            let names = catalog.command_names();
            let candidates = names
                .iter()
                .map(String::as_str)
                .chain(BUILTINS.iter().copied());
            did_you_mean(name, candidates).map(str::to_string)
        });
        let mut d = Diagnostic::new(call.name.span, format!("unknown command `{name}`"));
        if let Some(close) = close {
            d = d.label(format!("did you mean `{close}`?"));
        } else {
            d = d.help(format!(
                "define `{name}` as an alias in the environment, or put an executable \
                 `lowtouch-{name}` in one of the pipeline's tool directories"
            ));
        }
        self.diagnostics.push(d);
    }

    /// A component the source names (`None`: only the run knows which).
    fn component(&mut self, name: Option<&str>, span: Span) {
        let Some(name) = name else { return };
        if self.catalog.has_component(name) {
            return;
        }
        let names = self.catalog.component_names();
        let mut d = Diagnostic::new(span, format!("unknown component `{name}`"));
        if let Some(close) = did_you_mean(name, names.iter().map(String::as_str)) {
            d = d.label(format!("did you mean `{close}`?"));
        } else if names.is_empty() {
            d = d.help("the environment defines no components");
        } else {
            d = d.help(format!(
                "the environment's components are: {}",
                names.join(", ")
            ));
        }
        self.diagnostics.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    struct Demo;
    impl Catalog for Demo {
        fn has_command(&self, name: &str) -> bool {
            ["exec_smoke", "start_load", "stop_load"].contains(&name)
        }
        fn command_names(&self) -> Vec<String> {
            vec!["exec_smoke".into(), "start_load".into(), "stop_load".into()]
        }
        fn has_component(&self, name: &str) -> bool {
            ["MatchingEnginePrimary", "MatchingEngineBackup"].contains(&name)
        }
        fn component_names(&self) -> Vec<String> {
            vec![
                "MatchingEnginePrimary".into(),
                "MatchingEngineBackup".into(),
            ]
        }
        fn has_variable(&self, name: &str) -> bool {
            name == "env"
        }
        fn variable_names(&self) -> Vec<String> {
            vec!["env".into()]
        }
    }

    fn check_src(src: &str, expected: &str) {
        let (ast, diags) = parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let out: String = check(&ast, &Demo)
            .iter()
            .map(|d| {
                format!(
                    "{}:{}: {}{}\n",
                    d.span.line,
                    d.span.col,
                    d.message,
                    d.label
                        .as_ref()
                        .map(|l| format!(" ({l})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(out, expected, "checking {src:?}");
    }

    #[test]
    fn a_good_scenario_has_no_findings() {
        check_src(
            "start_load\nkill -9 MatchingEnginePrimary\nset s exec_smoke\nif PASS == #{s} then goto p\nexit 1\np:\necho #{s.status} #{env}\n",
            "",
        );
    }

    #[test]
    fn findings() {
        check_src(
            "exec_smok\nkill -9 MatchingEnginePrimry\nkill -NOPE MatchingEngineBackup\necho #{smoke}\nsleep soon\nif a =~ ( then exit\nfrobnicate\n",
            "1:1: unknown command `exec_smok` (did you mean `exec_smoke`?)\n\
             2:9: unknown component `MatchingEnginePrimry` (did you mean `MatchingEnginePrimary`?)\n\
             3:6: `-NOPE` is not a signal\n\
             4:6: variable `smoke` is never set\n\
             5:7: `soon` is not a duration\n\
             6:9: invalid regular expression (error: unclosed group)\n\
             7:1: unknown command `frobnicate`\n",
        );
    }
}
