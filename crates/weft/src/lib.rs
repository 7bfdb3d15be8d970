//! The testable parts of the `weft` command-line tool: the config file and
//! its documented defaults ([`config`]), the home directory ([`home`]), the
//! HTTP API client ([`client`]), the SSE parser of `weft watch` ([`sse`])
//! and the human rendering of API answers ([`output`]). The binary
//! (`src/main.rs`) wires them to the commands, the daemon and the demo.

pub mod client;
pub mod config;
pub mod home;
pub mod output;
pub mod sse;
