//! Invitations: signed, expiring bearer credentials to join a context, and the
//! joiner's proof that it holds the identity it joins with.
//!
//! An invitation is signed by a member (`inviter`) over
//! `Hash::derive("weft invitation v1", borsh(every field but the signature))`;
//! that digest is the invitation's [`Invitation::id`]. It carries what a
//! joiner needs to reach the inviter's node (node key, listen addresses).
//!
//! Guarantees of [`Invitation::verify`]: the format version is known, the
//! address list is within [`INVITATION_ADDRS_MAX`] × [`INVITATION_ADDR_BYTES_MAX`],
//! the signature verifies (strict Ed25519), `now_ms < expires_ms`, and the
//! joiner is the named invitee when there is one. It does **not** check that
//! the inviter is a member: only a replica of the context knows that.
//!
//! An open invitation (`invitee: None`) is a bearer credential: anyone who
//! holds the text may join until it expires. A [`JoinProof`] does not change
//! that; it only proves the joiner holds the key it will be added as, so no
//! one can join in someone else's name.
//!
//! Text form: [`INVITATION_TEXT_PREFIX`] followed by lower-case hex of the
//! borsh encoding; parsing is strict (prefix, hex, no trailing bytes, size).

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::encoding::{decode, encode};
use weft_primitives::{Hash, PublicKey, Signature, SigningKey};

use crate::{MembershipError, hex};

/// The invitation format this build writes and accepts.
pub const INVITATION_VERSION: u8 = 1;
/// The most listen addresses an invitation may carry.
pub const INVITATION_ADDRS_MAX: usize = 16;
/// The longest listen address (a multiaddr in text form), in bytes.
pub const INVITATION_ADDR_BYTES_MAX: usize = 256;
/// The largest encoded invitation accepted from text: 8 KiB. A maximal valid
/// invitation is [`INVITATION_ENCODED_BYTES_BOUND`] bytes, well within it.
pub const INVITATION_BYTES_MAX: usize = 8 * 1024;
/// The prefix of an invitation's text form; the `1` is the text format version.
pub const INVITATION_TEXT_PREFIX: &str = "weft-invite1:";
/// The longest invitation text accepted: the prefix and hex of
/// [`INVITATION_BYTES_MAX`] bytes.
pub const INVITATION_TEXT_BYTES_MAX: usize = INVITATION_TEXT_PREFIX.len() + 2 * INVITATION_BYTES_MAX;
/// The encoded size of the largest valid invitation.
pub const INVITATION_ENCODED_BYTES_BOUND: usize =
    1 + 32 + 32 + 33 + 8 + 16 + 32 + 4 + INVITATION_ADDRS_MAX * (4 + INVITATION_ADDR_BYTES_MAX) + 64;
const _: () = assert!(INVITATION_ENCODED_BYTES_BOUND <= INVITATION_BYTES_MAX);

const INVITATION_DOMAIN: &str = "weft invitation v1";
const JOIN_DOMAIN: &str = "weft join v2";

/// A signed, expiring credential to join `context`.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Invitation {
    /// Format version, [`INVITATION_VERSION`].
    pub version: u8,
    /// The context to join.
    pub context: Hash,
    /// The member identity that signed the invitation.
    pub inviter: PublicKey,
    /// The only identity allowed to use it, or `None` for an open invitation.
    pub invitee: Option<PublicKey>,
    /// Unix time in milliseconds from which the invitation is refused.
    pub expires_ms: u64,
    /// Random, so two otherwise identical invitations have distinct ids.
    pub nonce: [u8; 16],
    /// The Ed25519 (libp2p) public key bytes of the inviter's node.
    pub inviter_node: [u8; 32],
    /// Multiaddrs where the inviter's node listens.
    pub addrs: Vec<String>,
    /// The inviter's signature over [`Invitation::id`].
    pub signature: Signature,
}

/// Every field of an [`Invitation`] but the signature, in field order: what is signed.
#[derive(BorshSerialize)]
struct SignedFields<'a> {
    version: u8,
    context: &'a Hash,
    inviter: &'a PublicKey,
    invitee: &'a Option<PublicKey>,
    expires_ms: u64,
    nonce: &'a [u8; 16],
    inviter_node: &'a [u8; 32],
    addrs: &'a [String],
}

impl Invitation {
    /// Sign a new invitation to `context` with a fresh random nonce.
    pub fn create(
        inviter: &SigningKey,
        context: Hash,
        invitee: Option<PublicKey>,
        expires_ms: u64,
        inviter_node: [u8; 32],
        addrs: Vec<String>,
    ) -> Result<Invitation, MembershipError> {
        check_addrs(&addrs)?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| MembershipError::Random(e.to_string()))?;
        let mut invitation = Invitation {
            version: INVITATION_VERSION,
            context,
            inviter: inviter.public_key(),
            invitee,
            expires_ms,
            nonce,
            inviter_node,
            addrs,
            signature: Signature([0; 64]),
        };
        invitation.signature = inviter.sign(invitation.id().as_bytes());
        Ok(invitation)
    }

    /// The signed digest: names this invitation (e.g. in a membership `Add`).
    pub fn id(&self) -> Hash {
        let signed = SignedFields {
            version: self.version,
            context: &self.context,
            inviter: &self.inviter,
            invitee: &self.invitee,
            expires_ms: self.expires_ms,
            nonce: &self.nonce,
            inviter_node: &self.inviter_node,
            addrs: &self.addrs,
        };
        Hash::derive(INVITATION_DOMAIN, &[&encode(&signed)])
    }

    /// Check the invitation for `joiner` at `now_ms`; see the module doc for
    /// what is and is not checked.
    pub fn verify(&self, now_ms: u64, joiner: &PublicKey) -> Result<(), MembershipError> {
        self.check_structure()?;
        let id = self.id();
        self.inviter
            .verify(id.as_bytes(), &self.signature)
            .map_err(|_| MembershipError::BadInvitationSignature(self.inviter))?;
        if now_ms >= self.expires_ms {
            return Err(MembershipError::Expired { id, expires_ms: self.expires_ms, now_ms });
        }
        if let Some(expected) = self.invitee
            && expected != *joiner
        {
            return Err(MembershipError::WrongInvitee { expected, joiner: *joiner });
        }
        Ok(())
    }

    /// The canonical (borsh) encoding, e.g. for a join request.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Strict decoding of [`Invitation::encode`]'s output; also refuses an
    /// unknown version or out-of-bounds addresses. Does not verify the signature.
    pub fn decode(bytes: &[u8]) -> Result<Invitation, MembershipError> {
        if bytes.len() > INVITATION_BYTES_MAX {
            return Err(MembershipError::InvitationTooLarge { len: bytes.len(), max: INVITATION_BYTES_MAX });
        }
        let invitation: Invitation = decode(bytes)?;
        invitation.check_structure()?;
        Ok(invitation)
    }

    /// The shareable text form: `weft-invite1:` and lower-case hex.
    pub fn to_text(&self) -> String {
        let mut text = String::from(INVITATION_TEXT_PREFIX);
        text.push_str(&hex::encode(&self.encode()));
        text
    }

    /// Parse the text form strictly (callers trim surrounding whitespace).
    /// Does not verify the signature; call [`Invitation::verify`].
    pub fn from_text(text: &str) -> Result<Invitation, MembershipError> {
        if text.len() > INVITATION_TEXT_BYTES_MAX {
            return Err(MembershipError::TextTooLarge { len: text.len(), max: INVITATION_TEXT_BYTES_MAX });
        }
        let digits = text.strip_prefix(INVITATION_TEXT_PREFIX).ok_or(MembershipError::BadTextPrefix)?;
        Invitation::decode(&hex::decode(digits)?)
    }

    fn check_structure(&self) -> Result<(), MembershipError> {
        if self.version != INVITATION_VERSION {
            return Err(MembershipError::UnsupportedInvitationVersion {
                found: self.version,
                supported: INVITATION_VERSION,
            });
        }
        check_addrs(&self.addrs)
    }
}

fn check_addrs(addrs: &[String]) -> Result<(), MembershipError> {
    if addrs.len() > INVITATION_ADDRS_MAX {
        return Err(MembershipError::TooManyAddrs { count: addrs.len(), max: INVITATION_ADDRS_MAX });
    }
    if let Some(long) = addrs.iter().find(|a| a.len() > INVITATION_ADDR_BYTES_MAX) {
        return Err(MembershipError::AddrTooLong { len: long.len(), max: INVITATION_ADDR_BYTES_MAX });
    }
    Ok(())
}

/// What a join proof is bound to besides the invitation: one join exchange
/// between two nodes. The inviter's node picks `challenge` at random for
/// each exchange and the nodes' keys are those their transport
/// authenticated, so a recorded proof is refused in any other exchange and
/// by any other node.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct JoinBinding {
    /// The inviter's node's fresh random challenge.
    pub challenge: [u8; 32],
    /// The joining node's key (its libp2p identity).
    pub joiner_node: [u8; 32],
    /// The inviter's node's key.
    pub inviter_node: [u8; 32],
}

/// The joiner's proof that it holds the identity key it asks to be added as,
/// bound to one invitation and one join exchange ([`JoinBinding`]).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct JoinProof {
    /// The identity that will become a member.
    pub joiner: PublicKey,
    /// Its signature over `Hash::derive("weft join v2", invitation id ‖
    /// joiner ‖ challenge ‖ joiner node ‖ inviter node)`.
    pub signature: Signature,
}

impl JoinProof {
    /// Prove possession of `joiner` for `invitation`, in the exchange `binding`.
    pub fn create(joiner: &SigningKey, invitation: &Invitation, binding: &JoinBinding) -> JoinProof {
        let public = joiner.public_key();
        JoinProof { joiner: public, signature: joiner.sign(join_digest(invitation, &public, binding).as_bytes()) }
    }

    /// Check the proof against `invitation` and the exchange `binding`
    /// (verify the invitation itself with [`Invitation::verify`] for
    /// `self.joiner`).
    pub fn verify(&self, invitation: &Invitation, binding: &JoinBinding) -> Result<(), MembershipError> {
        self.joiner
            .verify(join_digest(invitation, &self.joiner, binding).as_bytes(), &self.signature)
            .map_err(|_| MembershipError::BadJoinProof(self.joiner))
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Strict decoding (no trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<JoinProof, MembershipError> {
        Ok(decode(bytes)?)
    }
}

fn join_digest(invitation: &Invitation, joiner: &PublicKey, binding: &JoinBinding) -> Hash {
    Hash::derive(
        JOIN_DOMAIN,
        &[invitation.id().as_bytes(), &joiner.0, &binding.challenge, &binding.joiner_node, &binding.inviter_node],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn inviter() -> SigningKey {
        SigningKey::from_seed([1; 32])
    }

    fn open_invitation() -> Invitation {
        let addrs = vec!["/ip4/127.0.0.1/tcp/4001".to_owned(), "/ip4/127.0.0.1/udp/4001/quic-v1".to_owned()];
        Invitation::create(&inviter(), Hash::of(b"context"), None, NOW + 60_000, [7; 32], addrs).unwrap()
    }

    #[test]
    fn created_invitation_verifies_for_anyone_when_open() {
        let invitation = open_invitation();
        assert_eq!(invitation.inviter, inviter().public_key());
        for seed in 2..6 {
            assert_eq!(invitation.verify(NOW, &SigningKey::from_seed([seed; 32]).public_key()), Ok(()));
        }
    }

    #[test]
    fn text_round_trips_and_is_canonical() {
        let invitation = open_invitation();
        let text = invitation.to_text();
        assert!(text.starts_with(INVITATION_TEXT_PREFIX));
        let parsed = Invitation::from_text(&text).unwrap();
        assert_eq!(parsed, invitation);
        assert_eq!(parsed.to_text(), text);
        assert_eq!(parsed.id(), invitation.id());
    }

    #[test]
    fn nonce_makes_ids_distinct() {
        assert_ne!(open_invitation().id(), open_invitation().id());
    }

    #[test]
    fn expiry_is_exclusive() {
        let invitation = open_invitation();
        let joiner = SigningKey::from_seed([2; 32]).public_key();
        assert_eq!(invitation.verify(NOW + 59_999, &joiner), Ok(()));
        let expired = MembershipError::Expired { id: invitation.id(), expires_ms: NOW + 60_000, now_ms: NOW + 60_000 };
        assert_eq!(invitation.verify(NOW + 60_000, &joiner), Err(expired));
        assert!(matches!(invitation.verify(u64::MAX, &joiner), Err(MembershipError::Expired { .. })));
    }

    #[test]
    fn named_invitee_only() {
        let invitee = SigningKey::from_seed([2; 32]).public_key();
        let other = SigningKey::from_seed([3; 32]).public_key();
        let invitation =
            Invitation::create(&inviter(), Hash::of(b"c"), Some(invitee), NOW + 1, [0; 32], Vec::new()).unwrap();
        assert_eq!(invitation.verify(NOW, &invitee), Ok(()));
        assert_eq!(
            invitation.verify(NOW, &other),
            Err(MembershipError::WrongInvitee { expected: invitee, joiner: other })
        );
    }

    #[test]
    fn forged_or_altered_invitation_is_refused() {
        let joiner = SigningKey::from_seed([2; 32]).public_key();
        let mut forged = open_invitation();
        forged.inviter = SigningKey::from_seed([9; 32]).public_key();
        assert_eq!(forged.verify(NOW, &joiner), Err(MembershipError::BadInvitationSignature(forged.inviter)));

        let mut extended = open_invitation();
        extended.expires_ms += 1;
        assert!(matches!(extended.verify(NOW, &joiner), Err(MembershipError::BadInvitationSignature(_))));

        let mut redirected = open_invitation();
        redirected.addrs.push("/ip4/6.6.6.6/tcp/1".to_owned());
        assert!(matches!(redirected.verify(NOW, &joiner), Err(MembershipError::BadInvitationSignature(_))));

        let mut narrowed = open_invitation();
        narrowed.invitee = Some(joiner);
        assert!(matches!(narrowed.verify(NOW, &joiner), Err(MembershipError::BadInvitationSignature(_))));

        let mut resigned = open_invitation();
        resigned.signature.0[0] ^= 1;
        assert!(matches!(resigned.verify(NOW, &joiner), Err(MembershipError::BadInvitationSignature(_))));
    }

    #[test]
    fn address_bounds_are_enforced_on_create_and_verify() {
        let key = inviter();
        let c = Hash::of(b"c");
        let many = vec!["/ip4/1.2.3.4/tcp/1".to_owned(); INVITATION_ADDRS_MAX + 1];
        assert_eq!(
            Invitation::create(&key, c, None, NOW, [0; 32], many.clone()),
            Err(MembershipError::TooManyAddrs { count: INVITATION_ADDRS_MAX + 1, max: INVITATION_ADDRS_MAX })
        );
        let long = vec!["/".repeat(INVITATION_ADDR_BYTES_MAX + 1)];
        assert_eq!(
            Invitation::create(&key, c, None, NOW, [0; 32], long),
            Err(MembershipError::AddrTooLong { len: INVITATION_ADDR_BYTES_MAX + 1, max: INVITATION_ADDR_BYTES_MAX })
        );
        let mut smuggled = open_invitation();
        smuggled.addrs = many;
        assert!(matches!(smuggled.verify(NOW, &PublicKey([0; 32])), Err(MembershipError::TooManyAddrs { .. })));
        assert!(matches!(Invitation::from_text(&smuggled.to_text()), Err(MembershipError::TooManyAddrs { .. })));
    }

    #[test]
    fn largest_valid_invitation_fits_the_text_limit() {
        let addrs = vec!["a".repeat(INVITATION_ADDR_BYTES_MAX); INVITATION_ADDRS_MAX];
        let invitation =
            Invitation::create(&inviter(), Hash::of(b"c"), Some(PublicKey([3; 32])), NOW, [0; 32], addrs).unwrap();
        assert_eq!(invitation.encode().len(), INVITATION_ENCODED_BYTES_BOUND);
        assert_eq!(Invitation::from_text(&invitation.to_text()).unwrap(), invitation);
    }

    #[test]
    fn unknown_version_is_refused() {
        let mut invitation = open_invitation();
        invitation.version = 2;
        let refused = MembershipError::UnsupportedInvitationVersion { found: 2, supported: INVITATION_VERSION };
        assert_eq!(invitation.verify(NOW, &PublicKey([0; 32])), Err(refused));
        assert!(matches!(
            Invitation::from_text(&invitation.to_text()),
            Err(MembershipError::UnsupportedInvitationVersion { .. })
        ));
    }

    #[test]
    fn bad_text_is_refused() {
        let text = open_invitation().to_text();
        let digits = &text[INVITATION_TEXT_PREFIX.len()..];
        assert_eq!(Invitation::from_text(digits), Err(MembershipError::BadTextPrefix));
        assert_eq!(Invitation::from_text(&format!("weft-invite2:{digits}")), Err(MembershipError::BadTextPrefix));
        assert_eq!(Invitation::from_text(&format!(" {text}")), Err(MembershipError::BadTextPrefix));
        assert!(matches!(Invitation::from_text(&format!("{text} ")), Err(MembershipError::BadHex { .. })));
        assert!(matches!(
            Invitation::from_text(&text.to_uppercase().replace("WEFT-INVITE1:", INVITATION_TEXT_PREFIX)),
            Err(MembershipError::BadHex { .. })
        ));
        assert!(matches!(Invitation::from_text(&text[..text.len() - 1]), Err(MembershipError::BadHex { .. })));
        assert!(matches!(Invitation::from_text(&text[..text.len() - 2]), Err(MembershipError::Malformed(_))));
        assert!(matches!(Invitation::from_text(&format!("{text}00")), Err(MembershipError::Malformed(_))));
        assert!(matches!(Invitation::from_text(INVITATION_TEXT_PREFIX), Err(MembershipError::Malformed(_))));
        let huge = format!("{INVITATION_TEXT_PREFIX}{}", "0".repeat(2 * INVITATION_BYTES_MAX + 2));
        assert!(matches!(Invitation::from_text(&huge), Err(MembershipError::TextTooLarge { .. })));
    }

    #[test]
    fn join_proof_round_trips_and_binds_joiner_invitation_and_exchange() {
        let invitation = open_invitation();
        let joiner = SigningKey::from_seed([2; 32]);
        let binding = JoinBinding { challenge: [5; 32], joiner_node: [6; 32], inviter_node: [7; 32] };
        let proof = JoinProof::create(&joiner, &invitation, &binding);
        assert_eq!(proof.joiner, joiner.public_key());
        assert_eq!(proof.verify(&invitation, &binding), Ok(()));
        assert_eq!(JoinProof::decode(&proof.encode()).unwrap(), proof);

        let mut stolen = proof.clone();
        stolen.joiner = SigningKey::from_seed([3; 32]).public_key();
        assert_eq!(stolen.verify(&invitation, &binding), Err(MembershipError::BadJoinProof(stolen.joiner)));
        assert_eq!(proof.verify(&open_invitation(), &binding), Err(MembershipError::BadJoinProof(proof.joiner)));
        // Replayed in another exchange, from another node, or to another node.
        for other in [
            JoinBinding { challenge: [8; 32], ..binding },
            JoinBinding { joiner_node: [8; 32], ..binding },
            JoinBinding { inviter_node: [8; 32], ..binding },
        ] {
            assert_eq!(proof.verify(&invitation, &other), Err(MembershipError::BadJoinProof(proof.joiner)));
        }
        let mut tampered = proof.clone();
        tampered.signature.0[10] ^= 4;
        assert!(tampered.verify(&invitation, &binding).is_err());
    }
}
