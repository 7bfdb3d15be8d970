//! The node's libp2p identity, and the bridge between libp2p peer ids and
//! Weft's Ed25519 [`PublicKey`].
//!
//! Guarantees: the same 32-byte seed always yields the same [`PeerId`], so a
//! node keeps its identity across restarts; an Ed25519 peer id converts to
//! the public key it embeds and back without loss.

use libp2p::PeerId;
use libp2p::identity::{self, Keypair};
use weft_primitives::PublicKey;

use crate::NetError;

/// The libp2p key pair made from a 32-byte Ed25519 seed.
pub(crate) fn keypair_from_seed(seed: &[u8; 32]) -> Result<Keypair, NetError> {
    // libp2p zeroizes the buffer it is given; hand it a copy.
    let mut bytes = *seed;
    Keypair::ed25519_from_bytes(&mut bytes).map_err(|e| NetError::BadIdentity(e.to_string()))
}

/// The peer id a node running with `seed` has.
pub fn peer_id_from_seed(seed: &[u8; 32]) -> Result<PeerId, NetError> {
    Ok(keypair_from_seed(seed)?.public().to_peer_id())
}

/// The peer id of the node whose Ed25519 identity is `key`.
pub fn peer_id_of(key: &PublicKey) -> Result<PeerId, NetError> {
    let ed = identity::ed25519::PublicKey::try_from_bytes(&key.0).map_err(|e| NetError::BadIdentity(e.to_string()))?;
    Ok(identity::PublicKey::from(ed).to_peer_id())
}

/// How libp2p writes an Ed25519 public key in a peer id, before its 32
/// bytes: protobuf field 1 (`KeyType`) = 1 (Ed25519), field 2 (`Data`) of
/// 32 bytes. libp2p writes only this form (`PublicKey::encode_protobuf`).
const ED25519_KEY_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x20];

/// The Ed25519 public key embedded in `peer`, or `None` when the peer id
/// does not embed one (another key type, a hashed key, or an encoding
/// libp2p does not write).
///
/// The key is read, not decoded: decoding decompresses the curve point
/// (about 15 µs), and the node asks this for every sync frame, gossip
/// message and topic subscriber it handles. A connected peer's id was
/// proven by the Noise handshake, so its key is a valid point; a peer id
/// from hearsay whose bytes are not one fails where it is used
/// ([`peer_id_of`], a dial, a signature check).
pub fn peer_public_key(peer: &PeerId) -> Option<PublicKey> {
    // Ed25519 peer ids use the identity multihash (code 0): the digest is the
    // protobuf-encoded public key itself.
    const IDENTITY_MULTIHASH: u64 = 0;
    let multihash = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let key: [u8; 32] = multihash.digest().strip_prefix(&ED25519_KEY_PREFIX)?.try_into().ok()?;
    Some(PublicKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_primitives::SigningKey;

    #[test]
    fn same_seed_gives_same_peer_id() {
        assert_eq!(peer_id_from_seed(&[7; 32]).unwrap(), peer_id_from_seed(&[7; 32]).unwrap());
        assert_ne!(peer_id_from_seed(&[7; 32]).unwrap(), peer_id_from_seed(&[8; 32]).unwrap());
    }

    #[test]
    fn peer_id_and_public_key_round_trip() {
        let key = SigningKey::from_seed([3; 32]);
        let public = key.public_key();
        let peer = peer_id_of(&public).unwrap();
        assert_eq!(peer, peer_id_from_seed(&[3; 32]).unwrap());
        assert_eq!(peer_public_key(&peer), Some(public));
    }

    #[test]
    fn non_ed25519_peer_id_has_no_public_key() {
        assert_eq!(peer_public_key(&PeerId::random()), None);
    }

    /// The key read from the bytes is the one libp2p decodes, for every
    /// key libp2p writes.
    #[test]
    fn the_key_read_is_the_key_libp2p_decodes() {
        for seed in 0..=255u8 {
            let peer = peer_id_from_seed(&[seed; 32]).unwrap();
            let decoded = identity::PublicKey::try_decode_protobuf(peer.as_ref().digest())
                .unwrap()
                .try_into_ed25519()
                .unwrap()
                .to_bytes();
            assert_eq!(peer_public_key(&peer), Some(PublicKey(decoded)));
        }
    }

    /// Identity-multihash peer ids that are not the one form libp2p writes
    /// for an Ed25519 key embed none.
    #[test]
    fn other_encodings_embed_no_key() {
        let key = [9u8; 32];
        let with = |prefix: &[u8], tail: &[u8]| {
            let digest: Vec<u8> = prefix.iter().chain(&key).chain(tail).copied().collect();
            let multihash = libp2p::multihash::Multihash::<64>::wrap(0, &digest).unwrap();
            PeerId::from_multihash(multihash).unwrap()
        };
        assert_eq!(peer_public_key(&with(&ED25519_KEY_PREFIX, &[])), Some(PublicKey(key)));
        assert_eq!(peer_public_key(&with(&ED25519_KEY_PREFIX, &[0])), None, "trailing bytes");
        assert_eq!(peer_public_key(&with(&[0x08, 0x02, 0x12, 0x20], &[])), None, "a secp256k1 key");
        assert_eq!(peer_public_key(&with(&[0x12, 0x20], &[])), None, "no key type");
        assert_eq!(peer_public_key(&with(&[0x08, 0x01, 0x12, 0x21], &[0])), None, "a 33-byte key");
    }
}
