//! `lowtouch-exchange`: a small primary/backup matching engine, the system
//! under test of lowtouch's demo. See README.md for the subcommands, the
//! wire protocol, the log lines and the fault knobs.
//!
//! The runner calls [`cli::main`]; everything else is public for the tests
//! and for reading, not as a stable API.

pub mod book;
pub mod cli;
pub mod client;
pub mod config;
pub mod engine;
pub mod knobs;
pub mod loadgen;
pub mod log;
pub mod protocol;
mod replication;
pub mod tools;
