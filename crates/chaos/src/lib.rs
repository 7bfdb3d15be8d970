//! The chaos harness (docs/testing.md S7 and S11): real `weft run` daemons
//! on loopback, their swarm traffic through a fault-injecting proxy, a
//! seeded workload through their APIs, seeded faults (`kill -9` and
//! restart, SIGSTOP/SIGCONT, partitions that heal, stalls, flaky links, a
//! full disk), then a wait for convergence and a verdict from the write
//! ledger, the handlers' runs and the daemons' logs.
//!
//! The cluster is set up as the README tells a user to (init, invite,
//! join) with no bootstrap list: the daemons must find each other, and find
//! each other again after every restart, by themselves.
//!
//! Modules: `proxy` (the fault proxy), `cluster` (the daemons), `api` (their
//! HTTP API), `workload` (the writers), `ledger` (the set-full check),
//! `schedule` (the seeded fault schedule), `disk` (the disk-full fault),
//! `ports` (ports that stay free across restarts), `run` (one run, start to
//! verdict), `report` (the JSON summary).

pub mod api;
pub mod cluster;
pub mod disk;
pub mod ledger;
pub mod ports;
pub mod proxy;
pub mod report;
pub mod run;
pub mod schedule;
pub mod workload;
