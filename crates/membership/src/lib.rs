//! Who may be in a Weft context, and the secrets its members share, as pure
//! logic: no I/O, no clock (time is an argument), randomness only from the
//! operating system for fresh keys and nonces.
//!
//! - [`GroupKey`], [`seal_gossip`], [`open_gossip`]: the context's symmetric
//!   key and the XChaCha20-Poly1305 sealing of gossip payloads.
//! - [`wrap_group_key`], [`unwrap_group_key`]: delivering the group key to one
//!   member identity (Ed25519 identity mapped to X25519, ephemeral-static DH).
//! - [`Invitation`], [`JoinProof`]: signed, expiring credentials to join, and
//!   the joiner's proof that it holds its identity key.
//! - (The membership change a delta carries, `weft_sync::MembershipChange`, lives with the replica that applies it.)
//!
//! # Threat model
//!
//! **What the group key protects.** A context's deltas travel on a gossipsub
//! topic that any peer can subscribe to, and relays forward them. Sealing each
//! payload with the group key keeps its content from every non-member on the
//! topic and makes forged or altered payloads fail before they are decoded.
//! Authorship is *not* the group key's job: every member holds the key, so a
//! member could seal anything. Each delta is signed by its author and checked
//! against membership at its causal point after opening.
//!
//! **What it does not protect.** Pairwise sync streams (parent requests,
//! anti-entropy, snapshots) are protected by the transport (Noise over TCP,
//! QUIC's TLS) between two authenticated nodes, not by the group key; a node
//! serves them only to peers that speak for a member. The clear delta id at
//! the front of each sealed message tells observers which deltas exist and how
//! large they are, and the topic reveals which peers take part.
//!
//! **Removal.** A removed member keeps every group key it ever held, so it can
//! read gossip sealed with them. Removal therefore rotates: a fresh key
//! ([`GroupKey::generate`]) wrapped for each remaining member
//! ([`wrap_group_key`]) travels in the removing delta, which starts a new key
//! epoch (the epochs themselves are `weft_sync`'s); members seal with the
//! newest key they hold, whose [`GroupKey::tag`] leads the sealed message, so
//! gossip sealed after a rotation does not open with any older key.
//!
//! **Invitations.** An invitation is signed by a member and expires. An open
//! invitation (no named invitee) is a bearer credential: whoever holds its
//! text can join until it expires, so it should travel over a channel the
//! inviter trusts and expire soon. Naming the invitee removes that risk. The
//! [`JoinProof`] stops anyone from joining *as someone else*, and its
//! [`JoinBinding`] (a fresh challenge from the inviter's node and both nodes'
//! keys) stops a recorded join from being replayed; it does not stop a leaked
//! open invitation from being used once. Whether the inviter is a member, and
//! whether the invitation is still unused, is checked by the node against its
//! replica, not here.

mod error;
mod group_key;
mod hex;
mod invitation;
mod key_wrap;

pub use error::MembershipError;
pub use group_key::{
    GOSSIP_OVERHEAD_BYTES, GROUP_KEY_BYTES, GroupKey, KEY_TAG_BYTES, SEALED_GOSSIP_BYTES_MAX, TAG_BYTES,
    gossip_key_tag, open_gossip, seal_gossip,
};
pub use invitation::{
    INVITATION_ADDR_BYTES_MAX, INVITATION_ADDRS_MAX, INVITATION_BYTES_MAX, INVITATION_ENCODED_BYTES_BOUND,
    INVITATION_TEXT_BYTES_MAX, INVITATION_TEXT_PREFIX, INVITATION_VERSION, Invitation, JoinBinding, JoinProof,
};
pub use key_wrap::{WRAPPED_CIPHERTEXT_BYTES, WrappedKey, unwrap_group_key, wrap_group_key};
