//! Ed25519 identities: public keys, signatures and signing keys.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::Signer;

/// An Ed25519 public key: the identity of a member or a node.
///
/// Stored as raw bytes so that decoding never fails; validity (a point on the
/// curve) is checked when a signature is verified.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// Why a key or signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The bytes are not a valid Ed25519 public key.
    #[error("public key {0:?} is not a valid Ed25519 point")]
    InvalidPublicKey(PublicKey),
    /// The signature does not verify for this key and message.
    #[error("signature does not verify for key {0:?}")]
    BadSignature(PublicKey),
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

/// Valid keys decompressed on a thread, kept at most this many at once.
pub const DECOMPRESSED_KEYS_MAX: usize = 256;

thread_local! {
    /// Decompressing a key is about a fifth of a signature check, and a
    /// context has few authors: each thread keeps the points it decompressed.
    /// Decompression is a pure function of the bytes, so the cache changes
    /// how fast a check runs, never its verdict; invalid keys are not kept.
    static DECOMPRESSED: std::cell::RefCell<std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

impl PublicKey {
    /// The key as a curve point (cached on this thread).
    fn point(&self) -> Result<ed25519_dalek::VerifyingKey, KeyError> {
        DECOMPRESSED.with(|cache| {
            if let Some(key) = cache.borrow().get(&self.0) {
                return Ok(*key);
            }
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidPublicKey(*self))?;
            let mut cache = cache.borrow_mut();
            if cache.len() >= DECOMPRESSED_KEYS_MAX {
                // Whole-cache eviction: simple, and rare with few authors.
                cache.clear();
            }
            cache.insert(self.0, key);
            Ok(key)
        })
    }

    /// Check `signature` over `message` for this key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        let key = self.point()?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        // `verify_strict` rejects small-order keys and malleable signatures, so
        // one message has exactly one accepted signature per key.
        key.verify_strict(message, &sig).map_err(|_| KeyError::BadSignature(*self))?;
        Ok(())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.0[..4].iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "pk:{hex}")
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.0[..4].iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "sig:{hex}…")
    }
}

/// An Ed25519 signing key. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(SigningKey::from_seed(seed))
    }

    /// A key from a 32-byte seed (deterministic: tests and key files).
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The seed this key was made from (for writing a key file).
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Sign `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({:?})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let key = SigningKey::from_seed([7; 32]);
        let sig = key.sign(b"hello");
        assert_eq!(key.public_key().verify(b"hello", &sig), Ok(()));
    }

    #[test]
    fn forged_signature_is_rejected() {
        let key = SigningKey::from_seed([7; 32]);
        let other = SigningKey::from_seed([8; 32]);
        let sig = other.sign(b"hello");
        assert_eq!(key.public_key().verify(b"hello", &sig), Err(KeyError::BadSignature(key.public_key())));
        let mut flipped = key.sign(b"hello");
        flipped.0[3] ^= 1;
        assert!(key.public_key().verify(b"hello", &flipped).is_err());
        assert!(key.public_key().verify(b"hellp", &key.sign(b"hello")).is_err());
    }

    /// What a check without the cache decides.
    fn uncached(key: &PublicKey, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        let point = ed25519_dalek::VerifyingKey::from_bytes(&key.0).map_err(|_| KeyError::InvalidPublicKey(*key))?;
        point
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
            .map_err(|_| KeyError::BadSignature(*key))
    }

    proptest::proptest! {
        /// The cache never changes a verdict: keys seen before, keys past
        /// the cache's bound, invalid keys, wrong and damaged signatures.
        #[test]
        fn cached_checks_decide_as_uncached_ones(
            checks in proptest::collection::vec(
                (0u16..600, proptest::prelude::any::<bool>(), 0u8..4, proptest::prelude::any::<[u8; 32]>()),
                1..400,
            )
        ) {
            for (seed, other_signer, damage, raw) in checks {
                let signer = SigningKey::from_seed([seed as u8, (seed >> 8) as u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
                // Some checks are against arbitrary bytes (often no point).
                let key = if damage == 3 { PublicKey(raw) } else { signer.public_key() };
                let mut signature = if other_signer { SigningKey::from_seed(raw).sign(b"m") } else { signer.sign(b"m") };
                if damage == 1 {
                    signature.0[(seed % 64) as usize] ^= 1;
                }
                let message: &[u8] = if damage == 2 { b"n" } else { b"m" };
                proptest::prop_assert_eq!(key.verify(message, &signature), uncached(&key, message, &signature));
            }
        }
    }
}
