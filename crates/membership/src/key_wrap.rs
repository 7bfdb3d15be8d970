//! Wrapping the group key for one member identity, so a joiner (or a member
//! after rotation) can receive it over any channel.
//!
//! Scheme (an ECIES-style KEM + AEAD, all choices fixed by version "v1"):
//! 1. The recipient's Ed25519 identity key is mapped to X25519 with the
//!    birational map (`VerifyingKey::to_montgomery`); its secret side is the
//!    SHA-512-derived scalar of the seed (`SigningKey::to_scalar_bytes`), so a
//!    member needs no second key pair.
//! 2. The sender draws a fresh ephemeral X25519 secret `e`, sends `E = e·B`,
//!    and computes `shared = e·R`; the recipient computes `shared = r·E`.
//!    An all-zero `shared` (a low-order point on either side) is refused.
//! 3. `kek = Hash::derive("weft key wrap v1", shared ‖ E ‖ recipient ‖ context)`:
//!    binding `E`, the recipient and the context means a wrap for one context
//!    or one member never opens as a wrap for another.
//! 4. `ciphertext = XChaCha20-Poly1305(kek, nonce = 0, aad = "weft key wrap v1")`.
//!
//! Why a zero nonce: `kek` is used exactly once. It depends on the fresh
//! ephemeral secret, so two wraps share a `kek` only if the random source
//! repeats 32 bytes, and then a random nonce from the same broken source would
//! not help. The fixed nonce saves 24 bytes and a second draw from the RNG.
//!
//! Guarantees: [`unwrap_group_key`] returns an error, never panics, for a
//! wrong recipient, a wrong context, a low-order ephemeral point, a wrong
//! length, or any altered byte.
//!
//! Caveat: the identity key is used both to sign and for Diffie-Hellman. This
//! is considered sound for Ed25519/X25519 (eprint 2021/509), and it avoids
//! publishing and authenticating a second key per member.

use borsh::{BorshDeserialize, BorshSerialize};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use weft_primitives::encoding::{decode, encode};
use weft_primitives::{Hash, PublicKey, SigningKey};
use zeroize::Zeroize;

use crate::MembershipError;
use crate::group_key::{GROUP_KEY_BYTES, GroupKey, TAG_BYTES};

/// Length of a wrapped key's ciphertext: the group key and the tag.
pub const WRAPPED_CIPHERTEXT_BYTES: usize = GROUP_KEY_BYTES + TAG_BYTES;

const KEY_WRAP_DOMAIN: &str = "weft key wrap v1";

/// A group key encrypted for one member identity in one context.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct WrappedKey {
    /// The sender's ephemeral X25519 public key (Montgomery u-coordinate).
    pub ephemeral: [u8; 32],
    /// The group key and its tag, [`WRAPPED_CIPHERTEXT_BYTES`] long.
    pub ciphertext: Vec<u8>,
}

impl WrappedKey {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Strict decoding (no trailing bytes, ciphertext of the right length).
    pub fn decode(bytes: &[u8]) -> Result<WrappedKey, MembershipError> {
        let wrapped: WrappedKey = decode(bytes)?;
        wrapped.check_length()?;
        Ok(wrapped)
    }

    fn check_length(&self) -> Result<(), MembershipError> {
        if self.ciphertext.len() != WRAPPED_CIPHERTEXT_BYTES {
            return Err(MembershipError::WrappedKeyLength {
                len: self.ciphertext.len(),
                expected: WRAPPED_CIPHERTEXT_BYTES,
            });
        }
        Ok(())
    }
}

/// The X25519 form of an Ed25519 identity, refusing invalid and small-order keys.
fn recipient_point(recipient: &PublicKey) -> Result<MontgomeryPoint, MembershipError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(&recipient.0)
        .map_err(|_| MembershipError::InvalidRecipientKey(*recipient))?;
    if key.is_weak() {
        return Err(MembershipError::WeakRecipientKey(*recipient));
    }
    Ok(key.to_montgomery())
}

/// The single-use key-encryption key for one wrap.
fn key_encryption_key(
    shared: &MontgomeryPoint,
    ephemeral: &[u8; 32],
    recipient: &PublicKey,
    context: &Hash,
) -> Result<XChaCha20Poly1305, MembershipError> {
    // Constant-time enough: the branch only reveals that a peer sent a
    // low-order point, which the peer already knows.
    if shared.as_bytes().iter().all(|b| *b == 0) {
        return Err(MembershipError::LowOrderSharedSecret);
    }
    let mut kek = Hash::derive(KEY_WRAP_DOMAIN, &[shared.as_bytes(), ephemeral, &recipient.0, context.as_bytes()]);
    let cipher = XChaCha20Poly1305::new(&kek.0.into());
    kek.0.zeroize();
    Ok(cipher)
}

/// Encrypt `key` for `recipient` in `context` with a fresh ephemeral secret.
pub fn wrap_group_key(key: &GroupKey, context: &Hash, recipient: &PublicKey) -> Result<WrappedKey, MembershipError> {
    let recipient_x = recipient_point(recipient)?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| MembershipError::Random(e.to_string()))?;
    let ephemeral = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
    let shared = recipient_x.mul_clamped(secret);
    secret.zeroize();
    let cipher = key_encryption_key(&shared, &ephemeral, recipient, context)?;
    let mut ciphertext = Vec::with_capacity(WRAPPED_CIPHERTEXT_BYTES);
    ciphertext.extend_from_slice(key.as_bytes());
    let tag = cipher
        .encrypt_in_place_detached(&XNonce::default(), KEY_WRAP_DOMAIN.as_bytes(), &mut ciphertext)
        .map_err(|_| MembershipError::EncryptFailed)?;
    ciphertext.extend_from_slice(&tag);
    Ok(WrappedKey { ephemeral, ciphertext })
}

/// Decrypt a wrapped group key with the recipient's identity key.
pub fn unwrap_group_key(
    wrapped: &WrappedKey,
    context: &Hash,
    recipient: &SigningKey,
) -> Result<GroupKey, MembershipError> {
    wrapped.check_length()?;
    let mut seed = recipient.to_seed();
    let identity = ed25519_dalek::SigningKey::from_bytes(&seed);
    seed.zeroize();
    let mut scalar = identity.to_scalar_bytes();
    // `mul_clamped` clamps exactly as Ed25519 does, so `scalar·B` is the
    // recipient's X25519 public key and `scalar·E == e·R`.
    let shared = MontgomeryPoint(wrapped.ephemeral).mul_clamped(scalar);
    scalar.zeroize();
    let cipher = key_encryption_key(&shared, &wrapped.ephemeral, &recipient.public_key(), context)?;

    let (body, tag_bytes) = wrapped.ciphertext.split_at(GROUP_KEY_BYTES);
    let mut plain = [0u8; GROUP_KEY_BYTES];
    plain.copy_from_slice(body);
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(tag_bytes);
    let opened =
        cipher.decrypt_in_place_detached(&XNonce::default(), KEY_WRAP_DOMAIN.as_bytes(), &mut plain, &Tag::from(tag));
    let result = opened.map(|()| GroupKey::from_bytes(plain)).map_err(|_| MembershipError::UnwrapFailed);
    plain.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (GroupKey, Hash, SigningKey) {
        (GroupKey::from_bytes([5; 32]), Hash::of(b"context"), SigningKey::from_seed([3; 32]))
    }

    #[test]
    fn wrap_then_unwrap_round_trips() {
        let (key, context, member) = fixture();
        let wrapped = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        assert_eq!(wrapped.ciphertext.len(), WRAPPED_CIPHERTEXT_BYTES);
        assert_eq!(unwrap_group_key(&wrapped, &context, &member).unwrap(), key);
        let decoded = WrappedKey::decode(&wrapped.encode()).unwrap();
        assert_eq!(decoded, wrapped);
    }

    #[test]
    fn round_trips_for_many_identities() {
        for seed in 0..32u8 {
            let member = SigningKey::from_seed([seed; 32]);
            let key = GroupKey::from_bytes([seed.wrapping_mul(7); 32]);
            let context = Hash::of(&[seed]);
            let wrapped = wrap_group_key(&key, &context, &member.public_key()).unwrap();
            assert_eq!(unwrap_group_key(&wrapped, &context, &member).unwrap(), key, "seed {seed}");
        }
    }

    #[test]
    fn each_wrap_uses_a_fresh_ephemeral() {
        let (key, context, member) = fixture();
        let a = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        let b = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        assert_ne!(a.ephemeral, b.ephemeral);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn wrong_recipient_cannot_unwrap() {
        let (key, context, member) = fixture();
        let wrapped = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        let other = SigningKey::from_seed([4; 32]);
        assert_eq!(unwrap_group_key(&wrapped, &context, &other), Err(MembershipError::UnwrapFailed));
    }

    #[test]
    fn wrong_context_cannot_unwrap() {
        let (key, context, member) = fixture();
        let wrapped = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        assert_eq!(unwrap_group_key(&wrapped, &Hash::of(b"other"), &member), Err(MembershipError::UnwrapFailed));
    }

    #[test]
    fn altered_byte_anywhere_cannot_unwrap() {
        let (key, context, member) = fixture();
        let wrapped = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        for i in 0..32 {
            let mut bad = wrapped.clone();
            bad.ephemeral[i] ^= 0x01;
            assert!(unwrap_group_key(&bad, &context, &member).is_err(), "ephemeral byte {i}");
        }
        for i in 0..WRAPPED_CIPHERTEXT_BYTES {
            let mut bad = wrapped.clone();
            bad.ciphertext[i] ^= 0x80;
            assert_eq!(unwrap_group_key(&bad, &context, &member), Err(MembershipError::UnwrapFailed), "byte {i}");
        }
    }

    #[test]
    fn low_order_ephemeral_is_refused() {
        let (key, context, member) = fixture();
        let mut wrapped = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        // u = 0 and u = 1 are low-order points on Curve25519; clamped
        // multiplication sends both to the all-zero output.
        for u in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            wrapped.ephemeral = u;
            assert_eq!(unwrap_group_key(&wrapped, &context, &member), Err(MembershipError::LowOrderSharedSecret));
        }
    }

    #[test]
    fn invalid_and_weak_recipients_are_refused() {
        let (key, context, _) = fixture();
        // The Ed25519 identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            wrap_group_key(&key, &context, &PublicKey(identity)),
            Err(MembershipError::WeakRecipientKey(PublicKey(identity)))
        );
        // y = 2 is not on the curve.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(
            wrap_group_key(&key, &context, &PublicKey(off_curve)),
            Err(MembershipError::InvalidRecipientKey(PublicKey(off_curve)))
        );
    }

    #[test]
    fn wrong_ciphertext_length_is_refused() {
        let (key, context, member) = fixture();
        let mut wrapped = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        wrapped.ciphertext.pop();
        let expected = || MembershipError::WrappedKeyLength {
            len: WRAPPED_CIPHERTEXT_BYTES - 1,
            expected: WRAPPED_CIPHERTEXT_BYTES,
        };
        assert_eq!(unwrap_group_key(&wrapped, &context, &member), Err(expected()));
        assert_eq!(WrappedKey::decode(&wrapped.encode()), Err(expected()));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let (key, context, member) = fixture();
        let mut bytes = wrap_group_key(&key, &context, &member.public_key()).unwrap().encode();
        bytes.push(0);
        assert!(matches!(WrappedKey::decode(&bytes), Err(MembershipError::Malformed(_))));
    }
}
