//! Hash maps keyed by [`DeltaId`](crate::DeltaId).
//!
//! Delta ids are BLAKE3 digests, so their bytes are already uniformly
//! distributed: hashing them again with SipHash would only cost time on the
//! hottest path of the DAG. [`IdHasher`] takes the first eight bytes as the
//! hash and ignores the rest.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for keys that are already uniformly random digests: the hash is
/// the first eight bytes written (little-endian), folded with later writes.
///
/// `[u8; 32]` hashes as a length prefix followed by the bytes; the length is a
/// constant and is folded in without harm.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher {
    state: u64,
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        let word = match bytes.first_chunk::<8>() {
            // The hot case (a digest): one unaligned load, no memcpy call.
            Some(chunk) => *chunk,
            None => {
                let mut word = [0u8; 8];
                word[..bytes.len()].copy_from_slice(bytes);
                word
            }
        };
        // A rotate keeps earlier writes (the length prefix) from cancelling
        // the digest bytes; for a digest this is the identity up to a constant.
        self.state = self.state.rotate_left(29) ^ u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, n: usize) {
        self.state = self.state.rotate_left(29) ^ n as u64;
    }
}

/// The `BuildHasher` for [`IdMap`] and [`IdSet`].
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;

/// A map keyed by delta id.
pub type IdMap<V> = HashMap<crate::DeltaId, V, IdBuildHasher>;

/// A set of delta ids.
pub type IdSet = HashSet<crate::DeltaId, IdBuildHasher>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use weft_primitives::Hash;

    use super::*;

    #[test]
    fn distinct_digests_hash_differently() {
        let build = IdBuildHasher::default();
        let a = build.hash_one(Hash::of(b"a"));
        let b = build.hash_one(Hash::of(b"b"));
        assert_ne!(a, b);
        // Same key, same hash.
        assert_eq!(a, build.hash_one(Hash::of(b"a")));
    }
}
