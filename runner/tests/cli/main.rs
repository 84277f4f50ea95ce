//! Integration tests: the real `lowtouch` executable against real processes, real
//! sockets on loopback, real git repositories and real sled files, in temp dirs.

mod api;
mod check;
mod compare;
mod crash;
mod daemon;
mod demo;
mod deploy;
mod faults;
mod flood;
mod github;
mod harness;
mod holes;
mod http_remote;
mod judge;
mod junit_schema;
mod language;
mod netns;
mod network;
mod poll;
mod probe;
mod render;
mod revision;
mod schema;
mod serve;
mod store;
mod watch;
