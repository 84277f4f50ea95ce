//! lowtouch: a Git-driven TestOps runner for production-like test environments.
//!
//! Layout, one module per part of the design:
//! - [`scenario`]: the scenario language — lexer, parser, checks, interpreter. No I/O.
//! - [`pipeline`]: pipeline YAML, loading, planning against an environment.
//! - [`environment`]: environment YAML: hosts, components, aliases, variables.
//! - [`execute`]: runs a plan: steps, hooks, conditions, groups; emits events.
//! - [`process`]: processes: one command with limits, components, what stops a run.
//! - [`event`]: the event type, the seam between execution and its listeners.
//! - [`store`]: the only module that touches sled: runs, scenarios, steps.
//! - [`watch`]: watched repositories: gix mirrors, change detection, classification.
//! - [`github`]: commit statuses (octocrab); the only module that talks to GitHub.
//! - [`report`]: terminal output, JUnit, JSON; they read events or stored runs.
//! - [`compare`]: a run against an earlier one: releases, `lowtouch diff`, JUnit's diff.
//! - [`testdata`]: test-data generators, deterministic, regenerated only on change.
//! - [`trigger`]: what starts work: GitHub webhooks (verified, parsed), the run queue.
//! - [`webhook_listener`]: the webhook listener's TCP side: connection cap, timeouts, body budget.
//! - [`revision`]: which revision of the project is under test.
//! - [`source`]: input files and located findings.
//! - [`clock`]: timestamps and run ids.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod console;
pub mod daemon;
pub mod environment;
pub mod event;
pub mod execute;
pub mod github;
pub mod judge;
pub mod monitor;
pub mod net;
pub mod pipeline;
pub mod process;
pub mod record;
pub mod report;
pub mod revision;
pub mod scenario;
pub mod schema;
pub mod server;
pub mod source;
pub mod store;
pub mod testdata;
pub mod trigger;
pub mod watch;
pub mod webhook_listener;
