//! Weft's shared nouns, used by every other crate so that no two layers can
//! disagree on what an id, a key or a timestamp is.
//!
//! - [`Hash`]: a BLAKE3 digest; ids of deltas, contexts, applications, blobs and
//!   entities are all hashes.
//! - [`PublicKey`], [`Signature`], [`SigningKey`]: Ed25519 identities.
//! - [`Hlc`], [`HlcClock`]: hybrid logical clocks (time is an input, never read here).
//! - [`encoding`]: canonical borsh encoding with strict decoding (no trailing bytes).
//! - [`kv`]: the read port that pure layers use to see persisted bytes, and the
//!   [`kv::WriteSet`] they return instead of writing.
//!
//! Nothing in this crate does I/O.

pub mod encoding;
mod hash;
mod hlc;
mod keys;
pub mod kv;

pub use hash::{Hash, HashParseError};
pub use hlc::{Hlc, HlcClock, HlcError};
pub use keys::{KeyError, PublicKey, Signature, SigningKey};
