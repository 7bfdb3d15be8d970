//! Property tests: any single altered byte makes opening, unwrapping or
//! verifying fail, and no decoder panics on arbitrary input.

use proptest::prelude::*;
use weft_membership::{
    GroupKey, Invitation, JoinBinding, JoinProof, MembershipError, WrappedKey, open_gossip, seal_gossip,
    unwrap_group_key, wrap_group_key,
};
use weft_primitives::{Hash, SigningKey};

const NOW: u64 = 1_700_000_000_000;

/// One join exchange the proofs here are made in.
const BINDING: JoinBinding = JoinBinding { challenge: [1; 32], joiner_node: [2; 32], inviter_node: [3; 32] };

fn invitation(inviter_seed: u8, named: bool) -> Result<Invitation, MembershipError> {
    let invitee = named.then(|| SigningKey::from_seed([200; 32]).public_key());
    let addrs = vec!["/ip4/10.0.0.1/tcp/4001".to_owned(), "/dns4/example.invalid/udp/9/quic-v1".to_owned()];
    Invitation::create(
        &SigningKey::from_seed([inviter_seed; 32]),
        Hash::of(b"ctx"),
        invitee,
        NOW + 1000,
        [4; 32],
        addrs,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn altered_sealed_gossip_never_opens(
        key in any::<[u8; 32]>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..300),
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let key = GroupKey::from_bytes(key);
        let context = Hash::of(b"ctx");
        let id = Hash::of(&plaintext);
        let mut sealed = seal_gossip(&key, &context, &id, &plaintext).unwrap();
        prop_assert_eq!(open_gossip(&key, &context, &sealed).unwrap(), (id, plaintext));
        let i = position.index(sealed.len());
        sealed[i] ^= mask;
        prop_assert!(open_gossip(&key, &context, &sealed).is_err());
    }

    #[test]
    fn altered_wrapped_key_never_unwraps(
        seed in any::<[u8; 32]>(),
        key in any::<[u8; 32]>(),
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let member = SigningKey::from_seed(seed);
        let context = Hash::of(b"ctx");
        let key = GroupKey::from_bytes(key);
        let wrapped = wrap_group_key(&key, &context, &member.public_key()).unwrap();
        prop_assert_eq!(unwrap_group_key(&wrapped, &context, &member).unwrap(), key);
        let mut bytes = wrapped.encode();
        let i = position.index(bytes.len());
        bytes[i] ^= mask;
        // Either the encoding no longer parses, or what parses no longer opens.
        if let Ok(altered) = WrappedKey::decode(&bytes) {
            prop_assert!(unwrap_group_key(&altered, &context, &member).is_err());
        }
    }

    #[test]
    fn altered_invitation_text_never_verifies(
        inviter_seed in 0u8..8,
        named in any::<bool>(),
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let invitation = invitation(inviter_seed, named).unwrap();
        let joiner = SigningKey::from_seed([200; 32]).public_key();
        prop_assert_eq!(invitation.verify(NOW, &joiner), Ok(()));
        let mut text = invitation.to_text().into_bytes();
        let i = position.index(text.len());
        text[i] ^= mask;
        // A flip that breaks UTF-8 cannot even be handed to the parser.
        if let Ok(text) = std::str::from_utf8(&text) {
            let verified = Invitation::from_text(text).and_then(|parsed| parsed.verify(NOW, &joiner));
            prop_assert!(verified.is_err());
        }
    }

    #[test]
    fn altered_invitation_bytes_never_verify(
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let invitation = invitation(1, true).unwrap();
        let joiner = SigningKey::from_seed([200; 32]).public_key();
        let proof = JoinProof::create(&SigningKey::from_seed([200; 32]), &invitation, &BINDING);
        let mut bytes = invitation.encode();
        let i = position.index(bytes.len());
        bytes[i] ^= mask;
        if let Ok(parsed) = Invitation::decode(&bytes) {
            prop_assert!(parsed.verify(NOW, &joiner).is_err());
            // The proof binds the signed fields (the id), not the signature.
            if i < bytes.len() - 64 {
                prop_assert!(proof.verify(&parsed, &BINDING).is_err());
            }
        }
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let key = GroupKey::from_bytes([1; 32]);
        let context = Hash::of(b"ctx");
        prop_assert!(open_gossip(&key, &context, &bytes).is_err());
        if let Ok(wrapped) = WrappedKey::decode(&bytes) {
            prop_assert!(unwrap_group_key(&wrapped, &context, &SigningKey::from_seed([2; 32])).is_err());
        }
        if let Ok(invitation) = Invitation::decode(&bytes) {
            let _ = invitation.verify(NOW, &SigningKey::from_seed([2; 32]).public_key());
        }
        if let Ok(proof) = JoinProof::decode(&bytes) {
            let _ = proof.verify(&invitation(1, false).unwrap(), &BINDING);
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Invitation::from_text(text);
        }
    }

    #[test]
    fn arbitrary_text_after_the_prefix_never_panics(digits in "[0-9a-f]{0,400}") {
        let text = format!("weft-invite1:{digits}");
        if let Ok(invitation) = Invitation::from_text(&text) {
            prop_assert_eq!(invitation.to_text(), text);
        }
    }
}
