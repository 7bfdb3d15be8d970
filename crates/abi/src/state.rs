//! State requests ([`StateCall`]) a guest sends through `state_call`, the
//! replies ([`StateReply`]) it gets back, and the [`StatusCode`]s of failures.
//!
//! Guarantees: the borsh tag order of every enum here is part of ABI v1 and
//! only ever grows at the end.

use alloc::string::String;
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};

/// The id of a collection (an entity id in `weft-state`).
pub type CollectionId = [u8; 32];

/// The CRDT a collection is. Tag order is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum CrdtKind {
    /// Last-writer-wins register of bytes.
    LwwRegister,
    /// Grow-only counter.
    GCounter,
    /// Positive-negative counter.
    PnCounter,
    /// Map from byte keys to values or nested collections.
    Map,
    /// Add-wins set of byte elements.
    Set,
    /// Ordered sequence of values.
    Vector,
    /// Collaborative text (RGA).
    Text,
}

/// Who may write a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum Storage {
    /// Any member of the context.
    Public,
    /// Only the identity `owner`.
    UserOwned {
        /// The owner's 32-byte public key.
        owner: [u8; 32],
    },
    /// Written once, then immutable.
    Frozen,
}

/// A state operation. The reply each variant gets is in its doc.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StateCall {
    /// The root map's id → [`StateReply::Id`].
    RootId,
    /// The id `parent[key]` has or would have as a `kind` collection, without
    /// writing → [`StateReply::Id`].
    ChildId {
        /// The parent map.
        parent: CollectionId,
        /// The key under the parent.
        key: Vec<u8>,
        /// The child's CRDT.
        kind: CrdtKind,
        /// The child's storage rule.
        storage: Storage,
    },
    /// Create `parent[key]` as a `kind` collection if absent → [`StateReply::Id`].
    Create {
        /// The parent map.
        parent: CollectionId,
        /// The key under the parent.
        key: Vec<u8>,
        /// The child's CRDT.
        kind: CrdtKind,
        /// The child's storage rule.
        storage: Storage,
    },
    /// `map[key] = value` → [`StateReply::Unit`].
    MapInsert {
        /// The map.
        map: CollectionId,
        /// The key.
        key: Vec<u8>,
        /// The value bytes.
        value: Vec<u8>,
    },
    /// `map[key]` → [`StateReply::Value`].
    MapGet {
        /// The map.
        map: CollectionId,
        /// The key.
        key: Vec<u8>,
    },
    /// Remove `map[key]` → [`StateReply::Bool`] (whether it existed).
    MapRemove {
        /// The map.
        map: CollectionId,
        /// The key.
        key: Vec<u8>,
    },
    /// Up to `limit` entries in key order after `after` → [`StateReply::Entries`].
    MapEntries {
        /// The map.
        map: CollectionId,
        /// Start strictly after this key (`None` = from the first key).
        after: Option<Vec<u8>>,
        /// Page size (clamped by the host).
        limit: u32,
    },
    /// Number of entries → [`StateReply::U64`].
    MapLen {
        /// The map.
        map: CollectionId,
    },
    /// Set the register → [`StateReply::Unit`].
    RegisterSet {
        /// The register.
        register: CollectionId,
        /// The new value bytes.
        value: Vec<u8>,
    },
    /// The register's value → [`StateReply::Bytes`].
    RegisterGet {
        /// The register.
        register: CollectionId,
    },
    /// Add `delta` → [`StateReply::Unit`].
    CounterAdd {
        /// The counter.
        counter: CollectionId,
        /// The signed increment (negative only for PN counters).
        delta: i64,
    },
    /// The counter's value → [`StateReply::I128`].
    CounterValue {
        /// The counter.
        counter: CollectionId,
    },
    /// Add an element → [`StateReply::Bool`] (whether it was absent).
    SetAdd {
        /// The set.
        set: CollectionId,
        /// The element bytes.
        element: Vec<u8>,
    },
    /// Remove an element → [`StateReply::Bool`] (whether it was present).
    SetRemove {
        /// The set.
        set: CollectionId,
        /// The element bytes.
        element: Vec<u8>,
    },
    /// Membership → [`StateReply::Bool`].
    SetContains {
        /// The set.
        set: CollectionId,
        /// The element bytes.
        element: Vec<u8>,
    },
    /// Up to `limit` elements in byte order after `after` → [`StateReply::Elements`].
    SetIter {
        /// The set.
        set: CollectionId,
        /// Start strictly after this element (`None` = from the first).
        after: Option<Vec<u8>>,
        /// Page size (clamped by the host).
        limit: u32,
    },
    /// Number of elements → [`StateReply::U64`].
    SetLen {
        /// The set.
        set: CollectionId,
    },
    /// Append a value → [`StateReply::Unit`].
    VectorPush {
        /// The vector.
        vector: CollectionId,
        /// The value bytes.
        value: Vec<u8>,
    },
    /// The value at `index` → [`StateReply::Bytes`].
    VectorGet {
        /// The vector.
        vector: CollectionId,
        /// The zero-based index.
        index: u64,
    },
    /// Number of values → [`StateReply::U64`].
    VectorLen {
        /// The vector.
        vector: CollectionId,
    },
    /// Replace the value at `index` → [`StateReply::Unit`] (`NotFound` past the end).
    VectorSet {
        /// The vector.
        vector: CollectionId,
        /// The zero-based index.
        index: u64,
        /// The new value bytes.
        value: Vec<u8>,
    },
    /// Remove the value at `index` → [`StateReply::Unit`] (`NotFound` past the end).
    VectorRemove {
        /// The vector.
        vector: CollectionId,
        /// The zero-based index.
        index: u64,
    },
    /// Insert `value` before character `pos` → [`StateReply::Unit`].
    TextInsert {
        /// The text.
        text: CollectionId,
        /// Character (Unicode scalar) position, at most the length.
        pos: u64,
        /// The characters to insert.
        value: String,
    },
    /// Delete `len` characters from `pos` → [`StateReply::Unit`].
    TextDelete {
        /// The text.
        text: CollectionId,
        /// Character position of the first deleted character.
        pos: u64,
        /// Number of characters.
        len: u64,
    },
    /// The whole text → [`StateReply::Text`].
    TextRead {
        /// The text.
        text: CollectionId,
    },
    /// Length in characters → [`StateReply::U64`].
    TextLen {
        /// The text.
        text: CollectionId,
    },
}

impl StateCall {
    /// Whether this request writes (and so is refused from a view with
    /// [`StatusCode::ReadOnly`]).
    pub fn is_write(&self) -> bool {
        match self {
            Self::Create { .. }
            | Self::MapInsert { .. }
            | Self::MapRemove { .. }
            | Self::RegisterSet { .. }
            | Self::CounterAdd { .. }
            | Self::SetAdd { .. }
            | Self::SetRemove { .. }
            | Self::VectorPush { .. }
            | Self::VectorSet { .. }
            | Self::VectorRemove { .. }
            | Self::TextInsert { .. }
            | Self::TextDelete { .. } => true,
            Self::RootId
            | Self::ChildId { .. }
            | Self::MapGet { .. }
            | Self::MapEntries { .. }
            | Self::MapLen { .. }
            | Self::RegisterGet { .. }
            | Self::CounterValue { .. }
            | Self::SetContains { .. }
            | Self::SetIter { .. }
            | Self::SetLen { .. }
            | Self::VectorGet { .. }
            | Self::VectorLen { .. }
            | Self::TextRead { .. }
            | Self::TextLen { .. } => false,
        }
    }
}

/// A map value: plain bytes, or a nested collection.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StateValue {
    /// A value set with `MapInsert`.
    Bytes(Vec<u8>),
    /// A nested collection created with `Create`.
    Collection {
        /// Its id.
        id: CollectionId,
        /// Its CRDT.
        kind: CrdtKind,
    },
}

/// The reply to a successful [`StateCall`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StateReply {
    /// Done, nothing to return.
    Unit,
    /// A collection id.
    Id(CollectionId),
    /// A yes/no answer.
    Bool(bool),
    /// A count or length.
    U64(u64),
    /// A counter value.
    I128(i128),
    /// A register or vector value, if any.
    Bytes(Option<Vec<u8>>),
    /// A map value, if any.
    Value(Option<StateValue>),
    /// One page of map entries.
    Entries {
        /// Entries in key order.
        items: Vec<(Vec<u8>, StateValue)>,
        /// The key to pass as `after` for the next page (`None` = no more).
        next: Option<Vec<u8>>,
    },
    /// One page of set elements.
    Elements {
        /// Elements in byte order.
        items: Vec<Vec<u8>>,
        /// The element to pass as `after` for the next page (`None` = no more).
        next: Option<Vec<u8>>,
    },
    /// A whole text.
    Text(String),
}

/// The `i32` `state_call` returns. Negative values are failures; the register
/// then holds a UTF-8 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum StatusCode {
    /// Success; the register holds the borsh [`StateReply`].
    Ok = 0,
    /// The request bytes are not a borsh [`StateCall`].
    BadRequest = -1,
    /// A collection or index that does not exist.
    NotFound = -2,
    /// The collection is not of the kind the request needs.
    WrongKind = -3,
    /// A write from a view method.
    ReadOnly = -4,
    /// A per-call bound was exceeded.
    LimitExceeded = -5,
    /// A storage rule forbids the write.
    Denied = -6,
    /// The host failed (its store); not the guest's fault.
    Internal = -7,
}

impl StatusCode {
    /// Every status code.
    pub const ALL: [StatusCode; 8] = [
        Self::Ok,
        Self::BadRequest,
        Self::NotFound,
        Self::WrongKind,
        Self::ReadOnly,
        Self::LimitExceeded,
        Self::Denied,
        Self::Internal,
    ];

    /// The `i32` on the wire.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The status for an `i32` from the wire, if it is one.
    pub fn from_code(code: i32) -> Option<StatusCode> {
        Self::ALL.into_iter().find(|status| status.code() == code)
    }

    /// A short name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::BadRequest => "bad request",
            Self::NotFound => "not found",
            Self::WrongKind => "wrong kind",
            Self::ReadOnly => "read only",
            Self::LimitExceeded => "limit exceeded",
            Self::Denied => "denied",
            Self::Internal => "internal",
        }
    }
}

/// The borsh layout `time_now` writes: a hybrid logical clock reading, byte
/// compatible with `weft_primitives::Hlc`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// Logical counter within one millisecond.
    pub counter: u32,
}
