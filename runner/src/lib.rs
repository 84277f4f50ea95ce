//! lowtouch: a Git-driven TestOps runner.
pub mod scenario;
