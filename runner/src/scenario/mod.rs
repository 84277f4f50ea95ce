//! The scenario language: lexer, parser, static checks and interpreter.
//!
//! **Invariant:** nothing here does I/O. Commands reach the world only through the
//! [`interpreter::Host`] the caller supplies, and names resolve only through a
//! [`check::Catalog`]. That keeps the language testable, fuzzable and fast.
//!
//! The builtins (`sleep`, `kill`, `wait_for`, `metric`…) are one typed value,
//! [`builtin::Builtin`], read by one parser: `check` reads the source with spans, the
//! executor reads a step's interpolated words, and environment conditions are read as
//! `wait_for`'s words.

pub mod ast;
pub mod builtin;
pub mod check;
pub mod diagnostic;
pub mod duration;
pub mod interpreter;
pub mod lexer;
pub mod parser;
pub mod span;
pub mod token;

pub use ast::Scenario;
pub use diagnostic::Diagnostic;
pub use parser::parse;
