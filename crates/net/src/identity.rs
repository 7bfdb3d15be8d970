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

/// The Ed25519 public key embedded in `peer`, or `None` when the peer id
/// does not embed one (another key type, or a hashed key).
pub fn peer_public_key(peer: &PeerId) -> Option<PublicKey> {
    // Ed25519 peer ids use the identity multihash (code 0): the digest is the
    // protobuf-encoded public key itself.
    const IDENTITY_MULTIHASH: u64 = 0;
    let multihash = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed = key.try_into_ed25519().ok()?;
    Some(PublicKey(ed.to_bytes()))
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
}
