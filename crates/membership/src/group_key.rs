//! The context's group key and the sealing of gossip payloads with it.
//!
//! A sealed gossip message is `key tag (8 bytes, clear) || delta_id (32 bytes,
//! clear) || ciphertext || tag (16 bytes)`, XChaCha20-Poly1305 with the
//! context id and the key tag as associated data. The key tag
//! ([`GroupKey::tag`]) names which of a context's keys (one per key epoch)
//! sealed it, so a receiver picks the key without trying each.
//!
//! Guarantees:
//! - Deterministic: the nonce is derived from `(context, delta_id)`, so sealing
//!   one delta twice gives identical bytes, and the gossip message id (the
//!   hash of those bytes) is the same, which lets gossipsub deduplicate
//!   re-publishes.
//! - No nonce reuse, *provided the caller passes the content hash of the
//!   plaintext as `delta_id`*: then one nonce is only ever used with one
//!   plaintext under one key.
//! - [`open_gossip`] fails (never panics) on short or oversize input, a wrong
//!   key, a sealed message from another context, or any altered byte: the
//!   clear id is bound through the nonce, so changing it breaks the tag.
//! - It does *not* check that the id is the hash of the content; the caller
//!   does that after decoding the delta.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use weft_primitives::Hash;
use weft_primitives::encoding::FRAME_BYTES_MAX;
use zeroize::Zeroize;

use crate::MembershipError;

/// Length of a group key.
pub const GROUP_KEY_BYTES: usize = 32;
/// Length of the XChaCha20-Poly1305 authentication tag.
pub const TAG_BYTES: usize = 16;
/// Length of the clear key tag in front of a sealed gossip message.
pub const KEY_TAG_BYTES: usize = 8;
/// Bytes a sealed gossip message adds to its plaintext: the key tag, the
/// clear delta id and the authentication tag.
pub const GOSSIP_OVERHEAD_BYTES: usize = KEY_TAG_BYTES + 32 + TAG_BYTES;
/// The largest sealed gossip message, id and tag included: one frame.
pub const SEALED_GOSSIP_BYTES_MAX: usize = FRAME_BYTES_MAX;

const GOSSIP_NONCE_DOMAIN: &str = "weft gossip nonce v1";
const FINGERPRINT_DOMAIN: &str = "weft group key fingerprint v1";

/// A context's symmetric group key. Its bytes never appear in `Debug` output
/// and are wiped from memory when the value is dropped.
#[derive(Clone)]
pub struct GroupKey([u8; GROUP_KEY_BYTES]);

impl GroupKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<GroupKey, MembershipError> {
        let mut key = GroupKey([0; GROUP_KEY_BYTES]);
        getrandom::fill(&mut key.0).map_err(|e| MembershipError::Random(e.to_string()))?;
        Ok(key)
    }

    /// A key from its raw bytes (as stored by the node, or unwrapped).
    pub fn from_bytes(bytes: [u8; GROUP_KEY_BYTES]) -> GroupKey {
        GroupKey(bytes)
    }

    /// The raw bytes, for storage or wrapping. Handle with care.
    pub fn as_bytes(&self) -> &[u8; GROUP_KEY_BYTES] {
        &self.0
    }

    /// A one-way fingerprint that names the key in logs and comparisons
    /// without revealing it.
    pub fn fingerprint(&self) -> Hash {
        Hash::derive(FINGERPRINT_DOMAIN, &[&self.0])
    }

    /// The key's tag in sealed gossip: the first bytes of its fingerprint.
    pub fn tag(&self) -> [u8; KEY_TAG_BYTES] {
        let mut tag = [0u8; KEY_TAG_BYTES];
        tag.copy_from_slice(&self.fingerprint().0[..KEY_TAG_BYTES]);
        tag
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

impl PartialEq for GroupKey {
    /// Constant-time, so comparing a guess against a key leaks nothing through timing.
    fn eq(&self, other: &GroupKey) -> bool {
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Eq for GroupKey {}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupKey(fp:{:?})", self.fingerprint())
    }
}

impl Drop for GroupKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The nonce for one delta in one context: the first 24 bytes of a
/// domain-separated hash, so it is unique per (context, delta).
fn gossip_nonce(context: &Hash, delta_id: &Hash) -> XNonce {
    let digest = Hash::derive(GOSSIP_NONCE_DOMAIN, &[context.as_bytes(), delta_id.as_bytes()]);
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&digest.0[..24]);
    nonce.into()
}

/// The associated data: the context and the key tag.
fn gossip_aad(context: &Hash, key_tag: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + KEY_TAG_BYTES);
    aad.extend_from_slice(context.as_bytes());
    aad.extend_from_slice(key_tag);
    aad
}

/// The key tag of a sealed gossip message (`None` if it is too short to
/// hold one): which key to open it with.
pub fn gossip_key_tag(sealed: &[u8]) -> Option<[u8; KEY_TAG_BYTES]> {
    sealed.get(..KEY_TAG_BYTES)?.try_into().ok()
}

/// Seal `plaintext` (an encoded delta whose id is `delta_id`) for the gossip
/// topic of `context`: `key tag || delta_id || ciphertext || tag`.
pub fn seal_gossip(
    key: &GroupKey,
    context: &Hash,
    delta_id: &Hash,
    plaintext: &[u8],
) -> Result<Vec<u8>, MembershipError> {
    let len = plaintext.len().saturating_add(GOSSIP_OVERHEAD_BYTES);
    if len > SEALED_GOSSIP_BYTES_MAX {
        return Err(MembershipError::GossipTooLarge { len, max: SEALED_GOSSIP_BYTES_MAX });
    }
    // Encrypt in place behind the clear id: one allocation, no copy of the ciphertext.
    let key_tag = key.tag();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&key_tag);
    out.extend_from_slice(delta_id.as_bytes());
    out.extend_from_slice(plaintext);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(
            &gossip_nonce(context, delta_id),
            &gossip_aad(context, &key_tag),
            &mut out[KEY_TAG_BYTES + 32..],
        )
        .map_err(|_| MembershipError::EncryptFailed)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Open a sealed gossip message for `context`: the claimed delta id and the
/// plaintext. The caller must still check that the id is the content hash.
pub fn open_gossip(key: &GroupKey, context: &Hash, sealed: &[u8]) -> Result<(Hash, Vec<u8>), MembershipError> {
    if sealed.len() < GOSSIP_OVERHEAD_BYTES {
        return Err(MembershipError::SealedTooShort { len: sealed.len(), min: GOSSIP_OVERHEAD_BYTES });
    }
    if sealed.len() > SEALED_GOSSIP_BYTES_MAX {
        return Err(MembershipError::GossipTooLarge { len: sealed.len(), max: SEALED_GOSSIP_BYTES_MAX });
    }
    let (key_tag, sealed) = sealed.split_at(KEY_TAG_BYTES);
    let (id_bytes, rest) = sealed.split_at(32);
    let (ciphertext, tag_bytes) = rest.split_at(rest.len() - TAG_BYTES);
    let mut id = [0u8; 32];
    id.copy_from_slice(id_bytes);
    let delta_id = Hash(id);
    let mut plaintext = ciphertext.to_vec();
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(tag_bytes);
    let tag = Tag::from(tag);
    key.cipher()
        .decrypt_in_place_detached(
            &gossip_nonce(context, &delta_id),
            &gossip_aad(context, key_tag),
            &mut plaintext,
            &tag,
        )
        .map_err(|_| MembershipError::GossipAuthFailed)?;
    Ok((delta_id, plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (GroupKey, Hash, Hash, Vec<u8>) {
        let plaintext = b"an encoded delta".to_vec();
        (GroupKey::from_bytes([9; 32]), Hash::of(b"context"), Hash::of(&plaintext), plaintext)
    }

    #[test]
    fn seal_then_open_round_trips() {
        let (key, context, id, plaintext) = fixture();
        let sealed = seal_gossip(&key, &context, &id, &plaintext).unwrap();
        assert_eq!(sealed.len(), plaintext.len() + GOSSIP_OVERHEAD_BYTES);
        assert_eq!(&sealed[..KEY_TAG_BYTES], &key.tag());
        assert_eq!(gossip_key_tag(&sealed), Some(key.tag()));
        assert_eq!(&sealed[KEY_TAG_BYTES..KEY_TAG_BYTES + 32], id.as_bytes());
        assert_eq!(open_gossip(&key, &context, &sealed).unwrap(), (id, plaintext));
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let (key, context, id, _) = fixture();
        let sealed = seal_gossip(&key, &context, &id, &[]).unwrap();
        assert_eq!(sealed.len(), GOSSIP_OVERHEAD_BYTES);
        assert_eq!(open_gossip(&key, &context, &sealed).unwrap(), (id, Vec::new()));
    }

    #[test]
    fn sealing_is_deterministic_so_the_message_id_is_the_delta_id() {
        let (key, context, id, plaintext) = fixture();
        assert_eq!(seal_gossip(&key, &context, &id, &plaintext), seal_gossip(&key, &context, &id, &plaintext));
    }

    #[test]
    fn wrong_key_fails_authentication() {
        let (key, context, id, plaintext) = fixture();
        let sealed = seal_gossip(&key, &context, &id, &plaintext).unwrap();
        let other = GroupKey::from_bytes([10; 32]);
        assert_ne!(other.tag(), key.tag(), "another key has another tag");
        assert_eq!(open_gossip(&other, &context, &sealed), Err(MembershipError::GossipAuthFailed));
    }

    #[test]
    fn other_context_fails_authentication() {
        let (key, context, id, plaintext) = fixture();
        let sealed = seal_gossip(&key, &context, &id, &plaintext).unwrap();
        assert_eq!(open_gossip(&key, &Hash::of(b"elsewhere"), &sealed), Err(MembershipError::GossipAuthFailed));
    }

    #[test]
    fn altered_byte_anywhere_fails_authentication() {
        let (key, context, id, plaintext) = fixture();
        let sealed = seal_gossip(&key, &context, &id, &plaintext).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(open_gossip(&key, &context, &bad), Err(MembershipError::GossipAuthFailed), "byte {i}");
        }
    }

    #[test]
    fn short_input_is_refused_before_decryption() {
        let (key, context, ..) = fixture();
        for len in 0..GOSSIP_OVERHEAD_BYTES {
            assert_eq!(
                open_gossip(&key, &context, &vec![0; len]),
                Err(MembershipError::SealedTooShort { len, min: GOSSIP_OVERHEAD_BYTES })
            );
        }
    }

    #[test]
    fn oversize_plaintext_is_refused() {
        let (key, context, id, _) = fixture();
        let huge = vec![0u8; SEALED_GOSSIP_BYTES_MAX];
        assert!(matches!(seal_gossip(&key, &context, &id, &huge), Err(MembershipError::GossipTooLarge { .. })));
        assert!(matches!(
            open_gossip(&key, &context, &[0; SEALED_GOSSIP_BYTES_MAX + 1]),
            Err(MembershipError::GossipTooLarge { .. })
        ));
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let key = GroupKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(GroupKey::generate().unwrap(), GroupKey::generate().unwrap());
        assert_eq!(GroupKey::from_bytes([1; 32]), GroupKey::from_bytes([1; 32]));
    }
}
