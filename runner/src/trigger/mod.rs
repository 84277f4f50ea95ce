//! Triggers: what starts work besides a person — GitHub webhook deliveries, verified and
//! parsed here without any HTTP (the server hands over headers and body). Bursts of
//! candidates coalesce in the round (`app::round::contend`); waiting runs queue in the
//! server's scheduler (`server::scheduler`).
//!
//! **Invariant:** no I/O here; the server and the watcher feed it.

pub mod webhook;
