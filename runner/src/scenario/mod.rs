//! The scenario language: lexer, parser, static checks and interpreter.
//!
//! **Invariant:** nothing here does I/O. Commands reach the world only through the
//! [`interpreter::Host`] the caller supplies, and names resolve only through a
//! [`check::Catalog`]. That keeps the language testable, fuzzable and fast.

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
