//! The messages of `/weft/sync/1` and the "have hints" of reconciliation.
//!
//! Every message is one borsh-encoded [`SyncMessage`] in one frame (u32-BE
//! length, at most [`FRAME_BYTES_MAX`]; the driver strips the prefix). The
//! first byte is the variant tag: an unknown tag is reported as
//! [`ProtocolError::UnknownTag`] so the replica can answer it with an
//! explicit [`SyncMessage::Error`] instead of a silent close (a newer peer
//! learns what we do not speak). Requests that open a session carry
//! [`PROTOCOL_VERSION`] and the context id, so a driver can route an inbound
//! stream by its first message.
//!
//! Decoding is strict (no trailing bytes, unknown nested tags are errors) and
//! every list is bounded by a named `*_MAX` constant checked after decoding;
//! borsh never preallocates more than a small cautious amount for a claimed
//! length, and the frame bound caps the rest.
//!
//! The reconciliation itself is described in the crate documentation.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_dag::DeltaId;
use weft_primitives::Hash;
use weft_primitives::encoding::{self, FRAME_BYTES_MAX};

/// The libp2p protocol id of the sync stream protocol. A change to the
/// messages that old peers cannot decode gets a new id.
pub const PROTOCOL_ID: &str = "/weft/sync/1";

/// The version carried in session-opening requests.
pub const PROTOCOL_VERSION: u16 = 1;

/// Most heads in one summary (a DAG rarely has more than one per concurrent
/// writer; far beyond any honest context).
pub const HEADS_MAX: usize = 4096;

/// Most have hints in one summary: two per power of two of the history
/// length, for any history a u64 can count.
pub const HINTS_MAX: usize = 128;

/// Most ids in one `GetDeltas`, `NotFound` or `PrunedHistory`.
pub const REQUEST_IDS_MAX: usize = 256;

/// A page is closed once it holds this many bytes of deltas (a page always
/// holds at least one delta, and a delta is at most 1 MiB, so a page stays
/// far below the frame limit).
pub const PAGE_BYTES_MAX: usize = 1024 * 1024;

/// Most bytes of an error message's detail.
pub const ERROR_DETAIL_BYTES_MAX: usize = 256;

/// One message of `/weft/sync/1`. Variant order is the wire tag: append only.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncMessage {
    /// Tag 0. Opens an anti-entropy session: the initiator's summary. Also
    /// the divergence heartbeat: a responder with the same heads compares
    /// root hashes.
    SyncRequest(SyncRequest),
    /// Tag 1. The responder's answer, first message of its side.
    SyncReply(SyncReply),
    /// Tag 2. A page of encoded deltas in causal order.
    Deltas(DeltaPage),
    /// Tag 3. The receiver processed a burst; send the next one.
    Continue,
    /// Tag 4. Opens a parent request: send these deltas.
    GetDeltas(GetDeltas),
    /// Tag 5. Requested deltas the responder does not have.
    NotFound {
        /// The ids.
        ids: Vec<DeltaId>,
    },
    /// Tag 6. Deltas the responder pruned: history cannot serve them, a
    /// snapshot must.
    PrunedHistory {
        /// The ids (for a sync session, the first pruned delta found).
        ids: Vec<DeltaId>,
    },
    /// Tag 7. The sender refuses the session; it ends.
    Error(ErrorReply),
}

/// Number of [`SyncMessage`] variants: tags at or above are unknown.
const TAG_COUNT: u8 = 8;

/// What a replica has, in a few ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Summary {
    /// The root hash of its state (never adopted, only compared).
    pub root_hash: Hash,
    /// Its heads, sorted.
    pub heads: Vec<DeltaId>,
    /// Its have hints (see [`have_hints`]).
    pub hints: Vec<DeltaId>,
}

/// Opens an anti-entropy session.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncRequest {
    /// [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The context (routing, and a check against cross-context sessions).
    pub context: Hash,
    /// The initiator's summary.
    pub summary: Summary,
}

/// The responder's answer to a [`SyncRequest`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncReply {
    /// The responder's summary.
    pub summary: Summary,
    /// The responder holds all the initiator's heads, so the initiator has
    /// nothing it lacks: the initiator sends nothing more, and the
    /// responder streams at once. Otherwise the responder waits for the
    /// initiator's deltas first.
    pub has_your_heads: bool,
}

/// Opens a parent request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct GetDeltas {
    /// [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The context.
    pub context: Hash,
    /// The deltas wanted, at most [`REQUEST_IDS_MAX`].
    pub ids: Vec<DeltaId>,
}

/// A page of deltas.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DeltaPage {
    /// Encoded [`SignedDelta`](crate::delta::SignedDelta)s, each after its
    /// parents that the receiver lacks.
    pub deltas: Vec<Vec<u8>>,
    /// What follows this page.
    pub end: PageEnd,
}

/// What follows a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum PageEnd {
    /// More pages of this burst follow.
    More,
    /// The burst is over; the sender waits for [`SyncMessage::Continue`].
    AwaitContinue,
    /// Nothing more from this side of the session.
    Done,
}

/// Why a session was refused.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ErrorReply {
    /// The reason, machine-readable.
    pub code: ErrorCode,
    /// A short human-readable detail, at most [`ERROR_DETAIL_BYTES_MAX`].
    pub detail: String,
}

/// Machine-readable reasons of [`SyncMessage::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ErrorCode {
    /// A message tag this version does not know.
    UnknownTag,
    /// A message that does not decode or breaks a bound.
    Malformed,
    /// A protocol version this replica does not speak.
    UnsupportedVersion,
    /// The request names another context.
    WrongContext,
    /// Too many sessions at once; try later or elsewhere.
    Busy,
    /// A message that makes no sense at this point of the session.
    Unexpected,
}

/// Why a message from a peer was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// No bytes at all.
    #[error("empty message")]
    Empty,
    /// A frame larger than [`FRAME_BYTES_MAX`].
    #[error("message of {len} bytes exceeds the {max}-byte frame limit")]
    TooLarge {
        /// The length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A variant tag this version does not know.
    #[error("unknown message tag {tag}")]
    UnknownTag {
        /// The tag.
        tag: u8,
    },
    /// Not a canonical encoding (truncated, trailing bytes, bad nested tag).
    #[error("malformed message: {reason}")]
    Malformed {
        /// What the decoder objected to.
        reason: String,
    },
    /// A list longer than its bound.
    #[error("{what}: {count} entries (max {max})")]
    LimitExceeded {
        /// Which list.
        what: &'static str,
        /// Its length.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A request with a version we do not speak.
    #[error("unsupported protocol version {version}")]
    UnsupportedVersion {
        /// The version.
        version: u16,
    },
    /// A request for another context.
    #[error("request for context {got:?}, this is {expected:?}")]
    WrongContext {
        /// Ours.
        expected: Hash,
        /// Theirs.
        got: Hash,
    },
    /// A message that does not fit the session's state.
    #[error("unexpected {what}")]
    Unexpected {
        /// What arrived.
        what: &'static str,
    },
}

impl ProtocolError {
    /// The code to answer this error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::UnknownTag { .. } => ErrorCode::UnknownTag,
            ProtocolError::Empty
            | ProtocolError::TooLarge { .. }
            | ProtocolError::Malformed { .. }
            | ProtocolError::LimitExceeded { .. } => ErrorCode::Malformed,
            ProtocolError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            ProtocolError::WrongContext { .. } => ErrorCode::WrongContext,
            ProtocolError::Unexpected { .. } => ErrorCode::Unexpected,
        }
    }
}

fn bounded(what: &'static str, count: usize, max: usize) -> Result<(), ProtocolError> {
    if count > max {
        return Err(ProtocolError::LimitExceeded { what, count, max });
    }
    Ok(())
}

impl Summary {
    fn check(&self) -> Result<(), ProtocolError> {
        bounded("heads", self.heads.len(), HEADS_MAX)?;
        bounded("hints", self.hints.len(), HINTS_MAX)
    }
}

impl SyncMessage {
    /// The canonical bytes (the frame payload).
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode one message, strictly, and check every bound.
    pub fn decode(bytes: &[u8]) -> Result<SyncMessage, ProtocolError> {
        if bytes.len() > FRAME_BYTES_MAX {
            return Err(ProtocolError::TooLarge { len: bytes.len(), max: FRAME_BYTES_MAX });
        }
        let Some(&tag) = bytes.first() else { return Err(ProtocolError::Empty) };
        if tag >= TAG_COUNT {
            return Err(ProtocolError::UnknownTag { tag });
        }
        let message: SyncMessage =
            encoding::decode(bytes).map_err(|error| ProtocolError::Malformed { reason: error.to_string() })?;
        message.check()?;
        Ok(message)
    }

    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            SyncMessage::SyncRequest(_) => "SyncRequest",
            SyncMessage::SyncReply(_) => "SyncReply",
            SyncMessage::Deltas(_) => "Deltas",
            SyncMessage::Continue => "Continue",
            SyncMessage::GetDeltas(_) => "GetDeltas",
            SyncMessage::NotFound { .. } => "NotFound",
            SyncMessage::PrunedHistory { .. } => "PrunedHistory",
            SyncMessage::Error(_) => "Error",
        }
    }

    fn check(&self) -> Result<(), ProtocolError> {
        match self {
            SyncMessage::SyncRequest(request) => request.summary.check(),
            SyncMessage::SyncReply(reply) => reply.summary.check(),
            SyncMessage::GetDeltas(request) => bounded("requested ids", request.ids.len(), REQUEST_IDS_MAX),
            SyncMessage::NotFound { ids } | SyncMessage::PrunedHistory { ids } => {
                bounded("ids", ids.len(), REQUEST_IDS_MAX)
            }
            SyncMessage::Error(reply) => bounded("error detail bytes", reply.detail.len(), ERROR_DETAIL_BYTES_MAX),
            SyncMessage::Deltas(_) | SyncMessage::Continue => Ok(()),
        }
    }
}

/// An [`SyncMessage::Error`] for `code`, its detail cut to the bound on a
/// character boundary.
pub fn error_reply(code: ErrorCode, detail: &str) -> SyncMessage {
    let mut end = detail.len().min(ERROR_DETAIL_BYTES_MAX);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    SyncMessage::Error(ErrorReply { code, detail: detail[..end].to_owned() })
}

/// The have hints of a replica whose apply order is `apply_log`: the ids at
/// offsets 1, 2, 3, 4, 6, 8, 12, 16, 24, … back from the end (powers of two
/// and 1.5 times powers of two), then the first delta. At most
/// [`HINTS_MAX`] ids, about 2·log2(n).
///
/// A peer that knows a hint knows all its ancestors, so the ids a peer sends
/// needlessly are at most those applied after the newest hint it knows:
/// within a factor 1.5 of how far back the common history ends.
pub fn have_hints(apply_log: &[DeltaId]) -> Vec<DeltaId> {
    have_hints_by(apply_log.len() as u64, |position| {
        usize::try_from(position).ok().and_then(|at| apply_log.get(at)).copied()
    })
}

/// [`have_hints`] of an apply order of `len` ids read through `id_at`
/// (the id at a position), so a replica need not hold the order as a list.
pub fn have_hints_by(len: u64, id_at: impl Fn(u64) -> Option<DeltaId>) -> Vec<DeltaId> {
    let mut hints = Vec::new();
    let mut power = 1u64;
    while power <= len && hints.len() + 2 < HINTS_MAX {
        hints.extend(id_at(len - power));
        let between = power + power / 2;
        if power >= 2 && between <= len {
            hints.extend(id_at(len - between));
        }
        let Some(next) = power.checked_mul(2) else { break };
        power = next;
    }
    if let Some(first) = id_at(0).filter(|_| len > 0)
        && !hints.contains(&first)
    {
        hints.push(first);
    }
    hints
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ids(n: u32) -> Vec<DeltaId> {
        (0..n).map(|i| Hash::of(&i.to_le_bytes())).collect()
    }

    fn request() -> SyncMessage {
        SyncMessage::SyncRequest(SyncRequest {
            version: PROTOCOL_VERSION,
            context: Hash::of(b"ctx"),
            summary: Summary { root_hash: Hash::of(b"root"), heads: ids(2), hints: ids(5) },
        })
    }

    #[test]
    fn every_message_round_trips() {
        let messages = [
            request(),
            SyncMessage::SyncReply(SyncReply { summary: Summary::default(), has_your_heads: true }),
            SyncMessage::Deltas(DeltaPage { deltas: vec![vec![1, 2], vec![]], end: PageEnd::AwaitContinue }),
            SyncMessage::Continue,
            SyncMessage::GetDeltas(GetDeltas { version: 1, context: Hash::ZERO, ids: ids(3) }),
            SyncMessage::NotFound { ids: ids(1) },
            SyncMessage::PrunedHistory { ids: ids(1) },
            error_reply(ErrorCode::Busy, "later"),
        ];
        assert_eq!(messages.len(), usize::from(TAG_COUNT));
        for (tag, message) in messages.iter().enumerate() {
            let bytes = message.encode();
            assert_eq!(usize::from(bytes[0]), tag, "tag of {}", message.name());
            assert_eq!(SyncMessage::decode(&bytes).as_ref(), Ok(message));
        }
    }

    #[test]
    fn unknown_tag_is_its_own_error() {
        assert_eq!(SyncMessage::decode(&[TAG_COUNT, 0, 0]), Err(ProtocolError::UnknownTag { tag: TAG_COUNT }));
        assert_eq!(SyncMessage::decode(&[255]), Err(ProtocolError::UnknownTag { tag: 255 }));
        assert_eq!(ProtocolError::UnknownTag { tag: 9 }.code(), ErrorCode::UnknownTag);
    }

    #[test]
    fn truncated_message_is_malformed() {
        let bytes = request().encode();
        assert_eq!(SyncMessage::decode(&[]), Err(ProtocolError::Empty));
        for cut in 1..bytes.len() {
            assert!(matches!(SyncMessage::decode(&bytes[..cut]), Err(ProtocolError::Malformed { .. })), "cut {cut}");
        }
        let mut padded = bytes;
        padded.push(0);
        assert!(matches!(SyncMessage::decode(&padded), Err(ProtocolError::Malformed { .. })));
    }

    #[test]
    fn oversize_lists_break_their_bounds() {
        let request =
            SyncMessage::GetDeltas(GetDeltas { version: 1, context: Hash::ZERO, ids: ids(REQUEST_IDS_MAX as u32 + 1) });
        assert_eq!(
            SyncMessage::decode(&request.encode()),
            Err(ProtocolError::LimitExceeded {
                what: "requested ids",
                count: REQUEST_IDS_MAX + 1,
                max: REQUEST_IDS_MAX
            })
        );
        let huge_claim = [4u8, 1, 0, 0, 0];
        assert!(SyncMessage::decode(&huge_claim).is_err());
    }

    #[test]
    fn hints_are_exponentially_spaced_and_bounded() {
        let log = ids(100);
        let hints = have_hints(&log);
        let offsets: Vec<usize> = hints.iter().map(|h| 100 - log.iter().position(|id| id == h).unwrap()).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 100]);
        assert!(have_hints(&[]).is_empty());
        assert_eq!(have_hints(&log[..1]), vec![log[0]]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn decode_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = SyncMessage::decode(&bytes);
        }

        #[test]
        fn hints_stay_within_bound(len in 0usize..2000) {
            let log = ids(len as u32);
            let hints = have_hints(&log);
            prop_assert!(hints.len() <= HINTS_MAX);
            prop_assert!(hints.len() <= 2 * (usize::BITS - len.leading_zeros()) as usize + 1);
        }
    }
}
