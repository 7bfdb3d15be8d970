//! What the node says on a `/weft/sync/1` stream before (or instead of) the
//! replication protocol.
//!
//! Every stream starts with one [`StreamHello`] frame from its opener:
//! either it carries one anti-entropy or parent-request session of a
//! context (every later frame is a `weft_sync` message), or it asks to join
//! a context with an invitation (the inviter's node answers with a fresh
//! [`JoinChallenge`], the joiner with a `JoinProof` bound to it and to both
//! nodes, and the inviter's node with one [`JoinReply`] frame), or
//! it asks a member's node for the context's other member nodes (the answer
//! is one [`DirectoryReply`] frame). Both ends of a sync session prove they
//! speak for a member: the opener in its hello, the responder in its first
//! frame ([`SyncAccept`]), each signature bound to the context, the session
//! and both nodes.
//! Decoding is strict borsh: an unknown tag, trailing bytes or a short
//! frame is an error and the stream is dropped.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_membership::{Invitation, WrappedKey};
use weft_primitives::encoding::{self, DecodeError};
use weft_primitives::{Hash, PublicKey, Signature};

/// The version of the hello/join exchange (2: the join is challenged, and
/// delta ids hash the context id).
pub const NODE_WIRE_VERSION: u8 = 2;

/// The first frame of every stream.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StreamHello {
    /// A replication session of `context`, numbered `n` by its opener.
    Sync {
        /// The wire version.
        version: u8,
        /// The context.
        context: Hash,
        /// The opener's session number.
        n: u64,
        /// The member identity the opener's node speaks for.
        member: PublicKey,
        /// `member`'s signature over [`sync_hello_digest`]: only members'
        /// nodes are served a context's history.
        signature: Signature,
    },
    /// A request to be admitted to a context.
    Join(Box<JoinHello>),
    /// A member's node asks which nodes of `context`'s members we know and
    /// where they are; the answer is one [`DirectoryReply`] frame.
    Directory {
        /// The wire version.
        version: u8,
        /// The context.
        context: Hash,
        /// A number the opener picks at random (so the signature covers a
        /// fresh value).
        n: u64,
        /// The member identity the opener's node speaks for.
        member: PublicKey,
        /// `member`'s signature over [`directory_hello_digest`]: only
        /// members' nodes learn where the other members are.
        signature: Signature,
    },
}

/// The answer to [`StreamHello::Directory`]: refused, or the context's
/// members' nodes and their addresses (at most
/// [`crate::peers::DIRECTORY_ENTRIES_MAX`] entries) with the responder's
/// proof that it speaks for a member too.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum DirectoryReply {
    /// The asker does not speak for a member (or we are not in the context).
    Refused,
    /// The directory.
    Granted {
        /// The member identity the responder's node speaks for.
        member: PublicKey,
        /// `member`'s signature over [`directory_answer_digest`].
        signature: Signature,
        /// The nodes.
        entries: Vec<crate::peers::DirectoryEntry>,
    },
}

impl DirectoryReply {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode strictly, refusing more entries or addresses than the bounds.
    pub fn decode(bytes: &[u8]) -> Result<DirectoryReply, DecodeError> {
        let reply: DirectoryReply = encoding::decode(bytes)?;
        if let DirectoryReply::Granted { entries, .. } = &reply {
            let over = entries.len() > crate::peers::DIRECTORY_ENTRIES_MAX
                || entries.iter().any(|e| {
                    e.addrs.len() > crate::peers::PEER_ADDRS_KEPT_MAX
                        || e.addrs.iter().any(|a| a.len() > crate::peers::PEER_ADDR_BYTES_MAX)
                });
            if over {
                return Err(DecodeError::Malformed { what: "DirectoryReply", reason: "over its bounds".into() });
            }
        }
        Ok(reply)
    }
}

/// The responder's first frame on a sync stream it accepted: proof that
/// it speaks for a member of the context too. The opener sends nothing
/// after its hello until this arrives and checks out, so a node that is not
/// a member learns nothing of the context but that we asked.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncAccept {
    /// The member identity the responder's node speaks for.
    pub member: PublicKey,
    /// `member`'s signature over [`sync_accept_digest`].
    pub signature: Signature,
}

impl SyncAccept {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode strictly.
    pub fn decode(bytes: &[u8]) -> Result<SyncAccept, DecodeError> {
        encoding::decode(bytes)
    }
}

/// What a [`SyncAccept`]'s signature covers: the session and both nodes,
/// under its own domain (a hello cannot stand for an accept).
pub fn sync_accept_digest(context: &Hash, n: u64, opener: &[u8; 32], responder: &[u8; 32]) -> Hash {
    Hash::derive("weft sync accept v1", &[context.as_bytes(), &n.to_be_bytes(), opener, responder])
}

/// What a granted [`DirectoryReply`]'s signature covers.
pub fn directory_answer_digest(context: &Hash, n: u64, asker: &[u8; 32], responder: &[u8; 32]) -> Hash {
    Hash::derive("weft directory answer v1", &[context.as_bytes(), &n.to_be_bytes(), asker, responder])
}

/// What a directory hello's signature covers (like [`sync_hello_digest`],
/// under its own domain so neither can stand for the other).
pub fn directory_hello_digest(context: &Hash, n: u64, opener: &[u8; 32], responder: &[u8; 32]) -> Hash {
    Hash::derive("weft directory hello v1", &[context.as_bytes(), &n.to_be_bytes(), opener, responder])
}

/// A joiner's opening: the invitation it presents. Its proof follows once
/// the inviter's node has sent a [`JoinChallenge`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct JoinHello {
    /// The wire version.
    pub version: u8,
    /// The invitation.
    pub invitation: Invitation,
}

/// The inviter's node's answer to a [`JoinHello`]: a value it picked at
/// random for this exchange alone, which the joiner's `JoinProof` must sign
/// (`weft_membership::JoinBinding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct JoinChallenge {
    /// The fresh random value.
    pub challenge: [u8; 32],
}

impl JoinChallenge {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode strictly.
    pub fn decode(bytes: &[u8]) -> Result<JoinChallenge, DecodeError> {
        encoding::decode(bytes)
    }
}

/// The inviter's answer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum JoinReply {
    /// Admitted: the membership delta is committed on the inviter's node.
    Accepted(JoinAccepted),
    /// Refused, with a reason for the joiner's user.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What a joiner needs to run the context.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct JoinAccepted {
    /// The context's creator.
    pub creator: PublicKey,
    /// The application id.
    pub application: Hash,
    /// The creator's nonce (with the two above, it must hash to the context id).
    pub nonce: [u8; 16],
    /// The application's module.
    pub module: Vec<u8>,
    /// The inviter's newest group key, wrapped for the joiner's identity.
    pub group_key: WrappedKey,
    /// That key's epoch number.
    pub epoch_number: u64,
    /// That key's epoch's rotating delta (zero for epoch 0).
    pub epoch_rotation: Hash,
}

/// What a sync hello's signature covers: the context, the session, and both
/// nodes, so it cannot be replayed to another node or for another session.
pub fn sync_hello_digest(context: &Hash, n: u64, opener: &[u8; 32], responder: &[u8; 32]) -> Hash {
    Hash::derive("weft sync hello v1", &[context.as_bytes(), &n.to_be_bytes(), opener, responder])
}

impl StreamHello {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode strictly.
    pub fn decode(bytes: &[u8]) -> Result<StreamHello, DecodeError> {
        encoding::decode(bytes)
    }
}

impl JoinReply {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode strictly.
    pub fn decode(bytes: &[u8]) -> Result<JoinReply, DecodeError> {
        encoding::decode(bytes)
    }
}
