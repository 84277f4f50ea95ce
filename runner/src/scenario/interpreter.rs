//! The interpreter: walks a checked scenario, keeps variables and control flow, and hands
//! every command to a [`Host`]. It does no I/O itself — the host runs processes, talks to
//! components, sleeps and records — so the language's semantics are tested without any.

use std::collections::HashMap;
use std::time::Duration;

use super::ast::{Arg, Call, Cond, Op, Scenario, StmtKind};
use super::token::Part;

/// The default step budget: a runaway `goto` loop ends here with a clear error.
pub const DEFAULT_STEP_BUDGET: u64 = 100_000;

/// One command for the host to run.
#[derive(Debug)]
pub struct StepRequest<'a> {
    /// 1-based count of the commands run so far in this scenario.
    pub seq: u64,
    pub line: u32,
    pub name: &'a str,
    /// Interpolated arguments: each is exactly one argument, whatever it contains.
    pub args: Vec<String>,
    /// From `timeout DURATION …`; the host applies its default otherwise.
    pub timeout: Option<Duration>,
    /// True under `set`: a non-zero status does not fail the scenario.
    pub captured: bool,
}

/// What the host reports back for a step.
#[derive(Debug, Default, Clone)]
pub struct StepResult {
    pub status: i32,
    pub stdout: String,
    /// Why the step failed beyond its status (timed out, could not start, refused…).
    pub failure: Option<String>,
    /// The run is being interrupted: stop at once.
    pub interrupted: bool,
}

pub trait Host {
    fn run_step(&mut self, step: &StepRequest<'_>) -> StepResult;
    /// Checked before each statement; true ends the scenario as interrupted.
    fn interrupted(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed { line: u32, reason: String },
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Statements executed (the budget counts these).
    pub statements: u64,
    /// The code the scenario ended with (`exit N`, 0 when it ran off the end).
    pub exit_code: i32,
}

pub struct Interpreter<'s> {
    scenario: &'s Scenario,
    vars: HashMap<String, String>,
    budget: u64,
    regexes: HashMap<String, regex::Regex>,
}

enum Flow {
    Next,
    Jump(usize),
    End(Verdict, i32),
}

impl<'s> Interpreter<'s> {
    pub fn new(scenario: &'s Scenario, vars: HashMap<String, String>) -> Self {
        Interpreter {
            scenario,
            vars,
            budget: DEFAULT_STEP_BUDGET,
            regexes: HashMap::new(),
        }
    }

    pub fn with_budget(mut self, budget: u64) -> Self {
        self.budget = budget;
        self
    }

    pub fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    /// The variables as the scenario left them.
    pub fn into_vars(self) -> HashMap<String, String> {
        self.vars
    }

    pub fn run(&mut self, host: &mut dyn Host) -> Outcome {
        let mut pc = 0;
        let mut statements = 0u64;
        let mut seq = 0u64;
        let stmts = &self.scenario.stmts;
        while pc < stmts.len() {
            let stmt = &stmts[pc];
            if matches!(stmt.kind, StmtKind::Label(_)) {
                pc += 1;
                continue;
            }
            if host.interrupted() {
                return self.outcome(Verdict::Interrupted, statements, 130);
            }
            statements += 1;
            if statements > self.budget {
                let reason = format!(
                    "step budget of {} statements exhausted at line {} — a `goto` loop that never ends?",
                    self.budget, stmt.span.line
                );
                return self.outcome(
                    Verdict::Failed {
                        line: stmt.span.line,
                        reason,
                    },
                    statements - 1,
                    1,
                );
            }
            match self.exec(&stmt.kind, stmt.span.line, &mut seq, host) {
                Flow::Next => pc += 1,
                Flow::Jump(to) => pc = to,
                Flow::End(verdict, code) => return self.outcome(verdict, statements, code),
            }
        }
        self.outcome(Verdict::Passed, statements, 0)
    }

    fn outcome(&self, verdict: Verdict, statements: u64, exit_code: i32) -> Outcome {
        Outcome {
            verdict,
            statements,
            exit_code,
        }
    }

    fn exec(&mut self, kind: &StmtKind, line: u32, seq: &mut u64, host: &mut dyn Host) -> Flow {
        let fail = |reason: String| Flow::End(Verdict::Failed { line, reason }, 1);
        match kind {
            StmtKind::Label(_) => Flow::Next,
            StmtKind::Goto(name) => match self.scenario.labels.get(&name.text) {
                Some(&to) => Flow::Jump(to),
                // The parser reports undefined labels; reaching one here is a bug upstream.
                None => fail(format!("undefined label `{}`", name.text)),
            },
            StmtKind::Set { var, call } => {
                let result = match self.call(call, line, seq, true, host) {
                    Ok(r) => r,
                    Err(flow) => return flow,
                };
                self.vars
                    .insert(var.text.clone(), result.stdout.trim().to_string());
                self.vars
                    .insert(format!("{}.status", var.text), result.status.to_string());
                Flow::Next
            }
            StmtKind::Call(call) => {
                let result = match self.call(call, line, seq, false, host) {
                    Ok(r) => r,
                    Err(flow) => return flow,
                };
                if result.status != 0 || result.failure.is_some() {
                    let why = result
                        .failure
                        .unwrap_or_else(|| format!("exited with status {}", result.status));
                    return fail(format!("`{}` {why}", call.name.text));
                }
                Flow::Next
            }
            StmtKind::If { cond, then } => match self.eval(cond) {
                Ok(true) => self.exec(&then.kind, line, seq, host),
                Ok(false) => Flow::Next,
                Err(reason) => fail(reason),
            },
            StmtKind::Assert { cond, message } => match self.eval(cond) {
                Ok(true) => Flow::Next,
                Ok(false) => {
                    let lhs = self.interpolate(&cond.lhs).unwrap_or_default();
                    let rhs = self.interpolate(&cond.rhs).unwrap_or_default();
                    let detail = format!(
                        "assertion failed: {cond} (`{lhs}` {} `{rhs}` is false)",
                        cond.op.as_str()
                    );
                    let reason = match message.as_ref().map(|m| self.interpolate(m)) {
                        Some(Ok(m)) => format!("{m}: {detail}"),
                        _ => detail,
                    };
                    fail(reason)
                }
                Err(reason) => fail(reason),
            },
            StmtKind::Exit { code } => {
                let code = match code {
                    None => 0,
                    Some(arg) => match self.interpolate(arg) {
                        Ok(text) => match text.trim().parse::<u8>() {
                            Ok(c) => i32::from(c),
                            Err(_) => {
                                return fail(format!("`exit {text}`: not an exit code (0-255)"));
                            }
                        },
                        Err(reason) => return fail(reason),
                    },
                };
                if code == 0 {
                    Flow::End(Verdict::Passed, 0)
                } else {
                    Flow::End(
                        Verdict::Failed {
                            line,
                            reason: format!("the scenario exited with code {code}"),
                        },
                        code,
                    )
                }
            }
        }
    }

    fn call(
        &mut self,
        call: &Call,
        line: u32,
        seq: &mut u64,
        captured: bool,
        host: &mut dyn Host,
    ) -> Result<StepResult, Flow> {
        let mut args = Vec::with_capacity(call.args.len());
        for arg in &call.args {
            match self.interpolate(arg) {
                Ok(v) => args.push(v),
                Err(reason) => return Err(Flow::End(Verdict::Failed { line, reason }, 1)),
            }
        }
        *seq += 1;
        let request = StepRequest {
            seq: *seq,
            line,
            name: &call.name.text,
            args,
            timeout: call.timeout,
            captured,
        };
        let result = host.run_step(&request);
        if result.interrupted {
            return Err(Flow::End(Verdict::Interrupted, 130));
        }
        Ok(result)
    }

    pub fn interpolate(&self, arg: &Arg) -> Result<String, String> {
        let mut out = String::new();
        for part in &arg.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var { name, .. } => match self.vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(format!(
                            "variable `{name}` is not set here (its `set` was not reached)"
                        ));
                    }
                },
            }
        }
        Ok(out)
    }

    fn eval(&mut self, cond: &Cond) -> Result<bool, String> {
        let lhs = self.interpolate(&cond.lhs)?;
        let rhs = self.interpolate(&cond.rhs)?;
        if cond.op == Op::Match {
            if !self.regexes.contains_key(&rhs) {
                let re = regex::Regex::new(&rhs)
                    .map_err(|e| format!("invalid regular expression `{rhs}`: {e}"))?;
                self.regexes.insert(rhs.clone(), re);
            }
            return Ok(self.regexes[&rhs].is_match(&lhs));
        }
        let ordering = match (number(&lhs), number(&rhs)) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => Some(lhs.cmp(&rhs)),
        };
        let Some(ord) = ordering else {
            return Ok(cond.op == Op::Ne);
        };
        use std::cmp::Ordering::*;
        Ok(match cond.op {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
            Op::Match => unreachable!("handled above"),
        })
    }
}

/// A plain decimal (`42`, `-1.5`, `0.25`): what a person means by a number. `inf`,
/// `NaN` and `1e3` stay strings.
fn number(text: &str) -> Option<f64> {
    let t = text.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    let mut parts = digits.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = plain(int) && frac.is_none_or(plain);
    if ok { t.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    /// A host that answers from a table and logs each call: no processes involved.
    struct Table {
        answers: HashMap<&'static str, (i32, &'static str)>,
        log: Vec<String>,
    }

    impl Host for Table {
        fn run_step(&mut self, step: &StepRequest<'_>) -> StepResult {
            self.log
                .push(format!("{} {}", step.name, step.args.join("|")));
            let (status, stdout) = self.answers.get(step.name).copied().unwrap_or((0, ""));
            StepResult {
                status,
                stdout: stdout.to_string(),
                ..Default::default()
            }
        }
    }

    fn check(
        src: &str,
        answers: &[(&'static str, i32, &'static str)],
        expected_log: &str,
        expected: Verdict,
    ) {
        let (ast, diags) = parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let mut host = Table {
            answers: answers.iter().map(|(n, s, o)| (*n, (*s, *o))).collect(),
            log: Vec::new(),
        };
        let outcome = Interpreter::new(&ast, HashMap::new())
            .with_budget(1000)
            .run(&mut host);
        assert_eq!(host.log.join("\n"), expected_log);
        assert_eq!(outcome.verdict, expected);
    }

    const TALK: &str = "start_load\nkill -9 MatchingEnginePrimary\nset smoke_status exec_smoke\n\
        if 'PASS' == #{smoke_status} then goto pass\necho FAIL\nstop_load\nexit 1\n\
        pass:\necho PASS\nstop_load\nexit 0\n";

    #[test]
    fn talk_scenario_passes_when_smoke_passes() {
        check(
            TALK,
            &[("exec_smoke", 0, "PASS\n")],
            "start_load \nkill -9|MatchingEnginePrimary\nexec_smoke \necho PASS\nstop_load ",
            Verdict::Passed,
        );
    }

    #[test]
    fn talk_scenario_fails_when_smoke_fails() {
        check(
            TALK,
            &[("exec_smoke", 1, "FAIL")],
            "start_load \nkill -9|MatchingEnginePrimary\nexec_smoke \necho FAIL\nstop_load ",
            Verdict::Failed {
                line: 7,
                reason: "the scenario exited with code 1".into(),
            },
        );
    }

    #[test]
    fn failing_command_stops_the_scenario() {
        check(
            "a\nb\nc\n",
            &[("b", 3, "")],
            "a \nb ",
            Verdict::Failed {
                line: 2,
                reason: "`b` exited with status 3".into(),
            },
        );
    }

    #[test]
    fn set_keeps_status_and_interpolation_is_one_argument() {
        check(
            "set x probe\necho #{x.status} \"#{x}\" pre#{x}\n",
            &[("probe", 4, "  two words \n")],
            "probe \necho 4|two words|pretwo words",
            Verdict::Passed,
        );
    }

    #[test]
    fn comparisons() {
        let src = "set n num\nassert #{n} > 9\nassert #{n} < 100\nassert abc < abd\nassert #{n} =~ ^1[0-9]$\nassert 10.0 == 10\nassert inf != Infinity\nassert -2 < 1\n";
        check(src, &[("num", 0, "10")], "num ", Verdict::Passed);
        check(
            "assert 9 > 10 \"too small\"\n",
            &[],
            "",
            Verdict::Failed {
                line: 1,
                reason: "too small: assertion failed: 9 > 10 (`9` > `10` is false)".into(),
            },
        );
    }

    #[test]
    fn single_quotes_do_not_interpolate() {
        check("echo '#{x}'\n", &[], "echo #{x}", Verdict::Passed);
    }

    #[test]
    fn unset_variable_at_run_time() {
        check(
            "goto skip\nset x probe\nskip:\necho #{x}\n",
            &[],
            "",
            Verdict::Failed {
                line: 4,
                reason: "variable `x` is not set here (its `set` was not reached)".into(),
            },
        );
    }

    #[test]
    fn runaway_loop_hits_the_budget() {
        let (ast, _) = parse("top:\ngoto top\n");
        let outcome = Interpreter::new(&ast, HashMap::new())
            .with_budget(50)
            .run(&mut Table {
                answers: HashMap::new(),
                log: Vec::new(),
            });
        assert!(
            matches!(outcome.verdict, Verdict::Failed { line: 2, ref reason } if reason.contains("step budget of 50"))
        );
        assert_eq!(outcome.statements, 50);
    }

    #[test]
    fn bare_exit_passes() {
        check("exit\necho never\n", &[], "", Verdict::Passed);
    }
}
