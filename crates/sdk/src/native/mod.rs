//! The in-memory host of native builds: serves the host functions to app
//! code running natively (in `cargo test`), on `weft-state` over a
//! `MemoryKv`, so apps are tested against the real CRDT logic.
//!
//! - [`world`]: simulated nodes of one context, their open transactions and
//!   the deltas they exchanged.
//! - [`ops`]: one [`weft_abi::StateCall`] against a `StateTxn`.
//! - [`host`]: the host functions, as `crate::sys` exposes them.

pub(crate) mod host;
pub(crate) mod ops;
pub(crate) mod world;
