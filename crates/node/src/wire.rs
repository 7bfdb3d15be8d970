//! What the node says on a `/weft/sync/1` stream before (or instead of) the
//! replication protocol.
//!
//! Every stream starts with one [`StreamHello`] frame from its opener:
//! either it carries one anti-entropy or parent-request session of a
//! context (every later frame is a `weft_sync` message), or it asks to join
//! a context with an invitation (the answer is one [`JoinReply`] frame), or
//! it asks a member's node for the context's other member nodes (the answer
//! is one [`PeerDirectory`] frame).
//! Decoding is strict borsh: an unknown tag, trailing bytes or a short
//! frame is an error and the stream is dropped.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_membership::{Invitation, JoinProof, WrappedKey};
use weft_primitives::encoding::{self, DecodeError};
use weft_primitives::{Hash, PublicKey, Signature};

/// The version of the hello/join exchange.
pub const NODE_WIRE_VERSION: u8 = 1;

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
    Join(Box<JoinRequest>),
    /// A member's node asks which nodes of `context`'s members we know and
    /// where they are; the answer is one [`PeerDirectory`] frame.
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

/// The answer to [`StreamHello::Directory`]: members' nodes and their
/// addresses (at most [`crate::peers::DIRECTORY_ENTRIES_MAX`] entries; an
/// empty list when the asker does not speak for a member).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PeerDirectory {
    /// The nodes.
    pub entries: Vec<crate::peers::DirectoryEntry>,
}

impl PeerDirectory {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode strictly, refusing more entries or addresses than the bounds.
    pub fn decode(bytes: &[u8]) -> Result<PeerDirectory, DecodeError> {
        let directory: PeerDirectory = encoding::decode(bytes)?;
        let too_many = directory.entries.len() > crate::peers::DIRECTORY_ENTRIES_MAX
            || directory.entries.iter().any(|e| {
                e.addrs.len() > crate::peers::PEER_ADDRS_KEPT_MAX
                    || e.addrs.iter().any(|a| a.len() > crate::peers::PEER_ADDR_BYTES_MAX)
            });
        if too_many {
            return Err(DecodeError::Malformed { what: "PeerDirectory", reason: "over its bounds".into() });
        }
        Ok(directory)
    }
}

/// What a directory hello's signature covers (like [`sync_hello_digest`],
/// under its own domain so neither can stand for the other).
pub fn directory_hello_digest(context: &Hash, n: u64, opener: &[u8; 32], responder: &[u8; 32]) -> Hash {
    Hash::derive("weft directory hello v1", &[context.as_bytes(), &n.to_be_bytes(), opener, responder])
}

/// A joiner's request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct JoinRequest {
    /// The wire version.
    pub version: u8,
    /// The invitation.
    pub invitation: Invitation,
    /// Proof that the joiner holds the identity it asks to be admitted as.
    pub proof: JoinProof,
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
    /// The group key, wrapped for the joiner's identity.
    pub group_key: WrappedKey,
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
