//! BLAKE3 digests as a value type.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use blake3::hazmat::{ContextKey, HasherExt};
use borsh::{BorshDeserialize, BorshSerialize};

/// Derivation contexts whose keys a thread remembers. The code names a few
/// dozen constant contexts; past this bound a new one is hashed each time
/// (correct, only slower), so memory stays bounded whatever a caller passes.
const CONTEXT_KEYS_MAX: usize = 64;

thread_local! {
    /// The key BLAKE3 derives from each context string, by context. The
    /// key depends on the string alone, so reusing it gives exactly the
    /// digest `blake3::Hasher::new_derive_key` would (see `derive`).
    static CONTEXT_KEYS: RefCell<HashMap<Box<str>, ContextKey>> = RefCell::new(HashMap::new());
}

/// A hasher in derive-key mode for `context`, its context key hashed once
/// per thread rather than once per digest: for the short inputs hashed
/// here (a node's children, a state row) that is up to half the work.
fn derive_hasher(context: &str) -> blake3::Hasher {
    let known = CONTEXT_KEYS.with(|keys| keys.borrow().get(context).copied());
    let key = known.unwrap_or_else(|| {
        let key = blake3::hazmat::hash_derive_key_context(context);
        CONTEXT_KEYS.with(|keys| {
            let mut keys = keys.borrow_mut();
            if keys.len() < CONTEXT_KEYS_MAX {
                keys.insert(context.into(), key);
            }
        });
        key
    });
    blake3::Hasher::new_from_context_key(&key)
}

/// A 32-byte BLAKE3 digest.
///
/// Ordering is bytewise, so sorting by `Hash` is the same on every machine.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero digest, used as a sentinel (e.g. "no parent").
    pub const ZERO: Hash = Hash([0; 32]);

    /// BLAKE3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// BLAKE3 of the concatenation of `parts`, without allocating.
    pub fn of_parts(parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    /// BLAKE3 in keyed-derivation mode: `context` separates hash domains so that
    /// a delta id can never collide with an entity hash of the same bytes.
    pub fn derive(context: &str, parts: &[&[u8]]) -> Hash {
        let mut hasher = derive_hasher(context);
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A string that is not 64 hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 64 hex digits, got {0:?}")]
pub struct HashParseError(pub String);

impl FromStr for Hash {
    type Err = HashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(HashParseError(s.chars().take(80).collect()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(|| HashParseError(s.to_owned()))?;
            let lo = hex_value(pair[1]).ok_or_else(|| HashParseError(s.to_owned()))?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Hash(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits identify a hash in logs without drowning them.
        write!(f, "#{}", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let h = Hash::of(b"weft");
        assert_eq!(h.to_hex().parse::<Hash>(), Ok(h));
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!("zz".parse::<Hash>().is_err());
        assert!("g".repeat(64).parse::<Hash>().is_err());
    }

    #[test]
    fn derive_separates_domains() {
        assert_ne!(Hash::derive("a", &[b"x"]), Hash::derive("b", &[b"x"]));
        assert_eq!(Hash::of_parts(&[b"ab", b"c"]), Hash::of(b"abc"));
    }

    /// BLAKE3's own derive-key mode, hashing the context every time.
    fn derive_uncached(context: &str, parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new_derive_key(context);
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    proptest::proptest! {
        /// The remembered context keys give BLAKE3's derive-key digests
        /// exactly: for contexts seen before and new ones, for more
        /// contexts than the bound, and for contexts that share a prefix.
        #[test]
        fn derive_is_blake3_derive_key(
            contexts in proptest::collection::vec("[a-c]{0,3}", 1..(2 * CONTEXT_KEYS_MAX)),
            material in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            for round in 0..2 {
                for context in &contexts {
                    let want = derive_uncached(context, &[&material, &[round]]);
                    proptest::prop_assert_eq!(Hash::derive(context, &[&material, &[round]]), want);
                }
            }
        }
    }

    #[test]
    fn derive_of_a_known_context_matches_blake3() {
        // A context well within the bound, asked twice: the second answer
        // comes from the remembered key.
        for _ in 0..2 {
            let want: [u8; 32] = blake3::derive_key("weft test context", b"material");
            assert_eq!(Hash::derive("weft test context", &[b"mate", b"rial"]).0, want);
        }
    }
}
