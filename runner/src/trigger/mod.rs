//! Triggers: what starts work besides a person — GitHub webhook deliveries (verified and
//! parsed here, without any HTTP: the server hands over headers and body) and the run
//! queue that coalesces bursts of candidates.
//!
//! **Invariant:** no I/O here; the server and the watcher feed it.

pub mod queue;
pub mod webhook;
