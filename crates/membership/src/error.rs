//! The one error type of this crate: every rejection has its own variant so the
//! node can log, count and answer each precisely.

use weft_primitives::encoding::DecodeError;
use weft_primitives::{Hash, PublicKey};

/// Why a membership operation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MembershipError {
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),

    /// A sealed gossip message is shorter than the id and tag it must carry.
    #[error("sealed gossip of {len} bytes is shorter than the {min}-byte overhead")]
    SealedTooShort {
        /// The received length.
        len: usize,
        /// [`crate::GOSSIP_OVERHEAD_BYTES`].
        min: usize,
    },
    /// A sealed gossip message, or a plaintext to seal, exceeds the frame limit.
    #[error("gossip payload of {len} bytes exceeds the {max}-byte limit")]
    GossipTooLarge {
        /// The offending length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The gossip tag does not verify: wrong group key, another context, or
    /// any byte (id, ciphertext or tag) altered in transit.
    #[error("sealed gossip failed authentication (wrong key, wrong context or tampered)")]
    GossipAuthFailed,
    /// The AEAD refused to encrypt (only possible for absurd lengths).
    #[error("encryption failed")]
    EncryptFailed,

    /// The recipient's identity key is not a valid Ed25519 point.
    #[error("recipient key {0:?} is not a valid Ed25519 public key")]
    InvalidRecipientKey(PublicKey),
    /// The recipient's identity key has small order: anything "wrapped" for it
    /// would be readable by everyone.
    #[error("recipient key {0:?} has small order")]
    WeakRecipientKey(PublicKey),
    /// The Diffie-Hellman output is all zero: the peer sent a low-order point.
    #[error("key agreement produced the all-zero secret (low-order point)")]
    LowOrderSharedSecret,
    /// A wrapped key's ciphertext has the wrong length.
    #[error("wrapped key ciphertext is {len} bytes, expected {expected}")]
    WrappedKeyLength {
        /// The received length.
        len: usize,
        /// Group key plus tag.
        expected: usize,
    },
    /// The wrapped key does not open: wrong recipient, wrong context, or tampered.
    #[error("wrapped group key failed authentication (wrong recipient, wrong context or tampered)")]
    UnwrapFailed,

    /// An invitation of a format version this build does not know.
    #[error("invitation version {found} is not supported (expected {supported})")]
    UnsupportedInvitationVersion {
        /// The version in the invitation.
        found: u8,
        /// The version this build writes and reads.
        supported: u8,
    },
    /// An invitation lists more listen addresses than allowed.
    #[error("invitation lists {count} addresses, at most {max} allowed")]
    TooManyAddrs {
        /// The number listed.
        count: usize,
        /// [`crate::INVITATION_ADDRS_MAX`].
        max: usize,
    },
    /// One listen address in an invitation is too long.
    #[error("invitation address of {len} bytes exceeds {max} bytes")]
    AddrTooLong {
        /// Its length in bytes.
        len: usize,
        /// [`crate::INVITATION_ADDR_BYTES_MAX`].
        max: usize,
    },
    /// The inviter's signature over the invitation does not verify.
    #[error("invitation signature does not verify for inviter {0:?}")]
    BadInvitationSignature(PublicKey),
    /// The invitation is past its expiry.
    #[error("invitation {id:?} expired at {expires_ms} ms (now {now_ms} ms)")]
    Expired {
        /// The invitation id.
        id: Hash,
        /// Its expiry.
        expires_ms: u64,
        /// The time it was presented.
        now_ms: u64,
    },
    /// The invitation names a different invitee than the joiner.
    #[error("invitation is for {expected:?}, presented by {joiner:?}")]
    WrongInvitee {
        /// The invitee named in the invitation.
        expected: PublicKey,
        /// The identity trying to use it.
        joiner: PublicKey,
    },
    /// The joiner's proof of key possession does not verify.
    #[error("join proof of {0:?} does not verify")]
    BadJoinProof(PublicKey),

    /// The invitation is to another context than the one named.
    #[error("the invitation is to context {found:?}, not {expected:?}")]
    WrongContext {
        /// The context named by the caller.
        expected: Hash,
        /// The invitation's context.
        found: Hash,
    },
    /// An encoded invitation is larger than [`crate::INVITATION_BYTES_MAX`].
    #[error("encoded invitation of {len} bytes exceeds {max} bytes")]
    InvitationTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Invitation text does not start with [`crate::INVITATION_TEXT_PREFIX`].
    #[error("invitation text does not start with the expected prefix")]
    BadTextPrefix,
    /// Invitation text is longer than any valid invitation.
    #[error("invitation text of {len} bytes exceeds {max} bytes")]
    TextTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Invitation text is not lower-case hex of even length.
    #[error("invitation text is not lower-case hex (at byte {position})")]
    BadHex {
        /// Offset (after the prefix) of the first offending character, or the
        /// length when it is odd.
        position: usize,
    },
    /// Bytes that are not the canonical encoding of the expected type
    /// (truncated, trailing bytes, unknown enum tag, bad UTF-8, ...).
    #[error(transparent)]
    Malformed(#[from] DecodeError),
}
