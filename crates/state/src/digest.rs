//! The state's hash domains: BLAKE3 in derive-key mode, one context string
//! per kind of hash, giving the same digests as `Hash::derive(context, ..)`.
//!
//! Hashing is on every write path (a few hashes per tree node), so each
//! domain's context key is computed once, and the small pieces of one hash
//! input are gathered on the stack and handed to the hasher in one update:
//! a hash then costs its compressions and little else.

use std::io::{self, Write};
use std::sync::LazyLock;

use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};
use weft_primitives::Hash;

/// A hash domain: the context key of one context string.
pub(crate) type Domain = LazyLock<ContextKey>;

pub(crate) static SLOT: Domain = LazyLock::new(|| hash_derive_key_context("weft state slot"));
pub(crate) static OWN: Domain = LazyLock::new(|| hash_derive_key_context("weft state own"));
pub(crate) static ENTITY: Domain = LazyLock::new(|| hash_derive_key_context("weft state entity"));
pub(crate) static ENTRY: Domain = LazyLock::new(|| hash_derive_key_context("weft state entry"));
pub(crate) static TREE_LEVEL: Domain = LazyLock::new(|| hash_derive_key_context("weft state tree level"));
pub(crate) static TREE_NODE: Domain = LazyLock::new(|| hash_derive_key_context("weft state tree node"));
pub(crate) static TREE_ENTRIES: Domain = LazyLock::new(|| hash_derive_key_context("weft state tree node entries"));

/// Bytes gathered before they go to the hasher: one BLAKE3 chunk.
const GATHER_BYTES: usize = 1024;

/// One hash input being gathered (see [`digest`]).
pub(crate) struct Gather<'d> {
    domain: &'d ContextKey,
    buffer: [u8; GATHER_BYTES],
    len: usize,
    /// Created only when the input outgrows the buffer.
    hasher: Option<blake3::Hasher>,
}

impl Gather<'_> {
    /// Append `bytes` to the input.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if let Some(room) = self.buffer.get_mut(self.len..self.len + bytes.len()) {
            room.copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        let hasher = self.hasher.get_or_insert_with(|| blake3::Hasher::new_from_context_key(self.domain));
        hasher.update(&self.buffer[..self.len]);
        self.len = 0;
        match self.buffer.get_mut(..bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len = bytes.len();
            }
            None => {
                hasher.update(bytes);
            }
        }
    }
}

impl Write for Gather<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.push(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The hash in `domain` of the input that `fill` pushes.
pub(crate) fn digest(domain: &Domain, fill: impl FnOnce(&mut Gather<'_>)) -> Hash {
    let mut gather = Gather { domain, buffer: [0; GATHER_BYTES], len: 0, hasher: None };
    fill(&mut gather);
    let mut hasher = match gather.hasher.take() {
        Some(hasher) => hasher,
        None => blake3::Hasher::new_from_context_key(domain),
    };
    hasher.update(&gather.buffer[..gather.len]);
    Hash(*hasher.finalize().as_bytes())
}

/// The hash in `domain` of `bytes`.
pub(crate) fn digest_bytes(domain: &Domain, bytes: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new_from_context_key(domain);
    hasher.update(bytes);
    Hash(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_equal_hash_derive_whatever_the_input_size() {
        for len in [0, 3, 100, 1023, 1024, 1025, 5000] {
            let input: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for (domain, context) in [
                (&SLOT, "weft state slot"),
                (&OWN, "weft state own"),
                (&ENTITY, "weft state entity"),
                (&ENTRY, "weft state entry"),
                (&TREE_LEVEL, "weft state tree level"),
                (&TREE_NODE, "weft state tree node"),
                (&TREE_ENTRIES, "weft state tree node entries"),
            ] {
                let expected = Hash::derive(context, &[&input]);
                assert_eq!(digest_bytes(domain, &input), expected);
                // In uneven pieces, through the gathering buffer.
                let gathered = digest(domain, |g| {
                    for piece in input.chunks(7 + len / 3) {
                        g.push(piece);
                    }
                });
                assert_eq!(gathered, expected);
            }
        }
    }
}
