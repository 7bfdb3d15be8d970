//! Invitations as a client pastes them (`Invitation::from_text`) or a
//! joiner sends them (`Invitation::decode`), join proofs
//! (`JoinProof::decode`), wrapped group keys (`WrappedKey::decode`,
//! `unwrap_group_key`), and the listen addresses an invitation carries (as
//! the joiner dials them and the peer book keeps them). Asserts: no panic;
//! every decoder is canonical (an accepted input re-encodes, or re-prints,
//! to itself); verification and unwrapping refuse with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_membership::{Invitation, JoinBinding, JoinProof, WrappedKey, unwrap_group_key};
use weft_net::{Multiaddr, peer_of_addr};
use weft_node::peers::PeerBook;
use weft_primitives::{Hash, SigningKey};

fn addresses(invitation: &Invitation) {
    for addr in &invitation.addrs {
        if let Ok(addr) = addr.parse::<Multiaddr>() {
            let _ = peer_of_addr(&addr);
        }
    }
    let mut book = PeerBook::default();
    book.add_member_node(invitation.inviter_node, invitation.context);
    book.learn_addrs(&invitation.inviter_node, &invitation.addrs, false);
}

fuzz_target!(|data: &[u8]| {
    let joiner = SigningKey::from_seed([2; 32]);
    if let Ok(invitation) = Invitation::decode(data) {
        weft_fuzz::canonical("Invitation", data, &invitation, &invitation.encode());
        let _ = invitation.verify(0, &joiner.public_key());
        let binding = JoinBinding { challenge: [4; 32], joiner_node: [5; 32], inviter_node: invitation.inviter_node };
        let _ = JoinProof::create(&joiner, &invitation, &binding).verify(&invitation, &binding);
        addresses(&invitation);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(invitation) = Invitation::from_text(text)
    {
        weft_fuzz::canonical("Invitation text", data, &invitation, invitation.to_text().as_bytes());
        addresses(&invitation);
    }
    if let Ok(proof) = JoinProof::decode(data) {
        weft_fuzz::canonical("JoinProof", data, &proof, &proof.encode());
    }
    if let Ok(wrapped) = WrappedKey::decode(data) {
        weft_fuzz::canonical("WrappedKey", data, &wrapped, &wrapped.encode());
        assert!(unwrap_group_key(&wrapped, &Hash([3; 32]), &joiner).is_err(), "a forged wrapped key unwrapped");
    }
});
