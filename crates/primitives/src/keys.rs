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

impl PublicKey {
    /// Check `signature` over `message` for this key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidPublicKey(*self))?;
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
}
