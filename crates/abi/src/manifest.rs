//! The app manifest: which methods an app exports (with their argument and
//! result types as written in Rust), which are views, init and handlers, and
//! which events it emits.
//!
//! # Section format
//!
//! The custom section [`crate::MANIFEST_SECTION`] holds a concatenation of
//! records, each framed as
//!
//! ```text
//! len: u32 little-endian | borsh(ManifestRecord) (exactly len bytes)
//! ```
//!
//! Several SDK macros contribute records independently (`#[app::logic]` one
//! [`ManifestRecord::Package`] and one [`ManifestRecord::Methods`], each
//! `#[app::event]` enum one [`ManifestRecord::Events`]) and the linker
//! concatenates them in no particular order, so the format is order-free:
//! [`Manifest::decode_section`] merges all records into one [`Manifest`].
//! Several sections of that name may be concatenated before decoding.
//!
//! Guarantees: decoding never panics, rejects anything but exactly one
//! `Package` record with `abi_version == ABI_VERSION`, duplicate method or
//! event names, truncated or trailing bytes, and sections over
//! [`crate::limits::MANIFEST_BYTES_MAX`] bytes or
//! [`crate::limits::MANIFEST_RECORDS_MAX`] records.

use alloc::string::String;
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use core::fmt;

use crate::ABI_VERSION;
use crate::limits::{MANIFEST_BYTES_MAX, MANIFEST_RECORDS_MAX};

/// What kind of entry point a method is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum MethodKind {
    /// The constructor, run once when the context is created.
    Init,
    /// A method that may write state and emit events.
    Mutate,
    /// A read-only method: any write fails with `ReadOnly`.
    View,
    /// A mutate method run by every other node when it applies an event naming it.
    Handler,
}

impl MethodKind {
    /// Whether calls of this kind may write.
    pub fn writes(self) -> bool {
        !matches!(self, Self::View)
    }
}

/// One exported method.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct MethodSpec {
    /// The export name.
    pub name: String,
    /// Its kind.
    pub kind: MethodKind,
    /// `(argument name, Rust type as written)`, in declaration order.
    pub args: Vec<(String, String)>,
    /// The Rust return type as written (`()` when none).
    pub returns: String,
}

/// One event kind (a variant of an `#[app::event]` enum).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EventSpec {
    /// The event kind: the variant name.
    pub name: String,
    /// The variant's fields as written (`{ key: String }`, `(u64)` or empty).
    pub fields: String,
}

/// An app's manifest, merged from its section's records.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Manifest {
    /// The ABI version the app was built against.
    pub abi_version: u32,
    /// The app's package name.
    pub name: String,
    /// The app's package version.
    pub version: String,
    /// Its exported methods.
    pub methods: Vec<MethodSpec>,
    /// The events it may emit.
    pub events: Vec<EventSpec>,
}

/// One framed record of the manifest section. Tag order is fixed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ManifestRecord {
    /// The package identity; exactly one per section.
    Package {
        /// The ABI version the app was built against.
        abi_version: u32,
        /// The package name.
        name: String,
        /// The package version.
        version: String,
    },
    /// Methods (from one `#[app::logic]` impl).
    Methods(Vec<MethodSpec>),
    /// Events (from one `#[app::event]` enum).
    Events(Vec<EventSpec>),
}

impl ManifestRecord {
    /// This record as one frame of the section format.
    pub fn encode_frame(&self) -> Vec<u8> {
        // Writing into a Vec cannot fail; borsh only errors on I/O writers.
        let body = borsh::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// Why a manifest section was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// The section is larger than the limit.
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The section has more records than the limit.
    TooManyRecords,
    /// A frame announces more bytes than remain.
    Truncated {
        /// Byte offset of the frame.
        offset: usize,
    },
    /// A frame's bytes are not a borsh `ManifestRecord`.
    BadRecord {
        /// Byte offset of the frame.
        offset: usize,
    },
    /// No `Package` record.
    MissingPackage,
    /// More than one `Package` record.
    DuplicatePackage,
    /// The app was built for another ABI version.
    UnsupportedAbiVersion {
        /// The version it declares.
        found: u32,
    },
    /// Two methods share a name.
    DuplicateMethod {
        /// The name.
        name: String,
    },
    /// Two events share a name.
    DuplicateEvent {
        /// The name.
        name: String,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => write!(f, "manifest of {len} bytes exceeds {MANIFEST_BYTES_MAX}"),
            Self::TooManyRecords => write!(f, "manifest has more than {MANIFEST_RECORDS_MAX} records"),
            Self::Truncated { offset } => write!(f, "manifest record at byte {offset} is truncated"),
            Self::BadRecord { offset } => write!(f, "manifest record at byte {offset} is malformed"),
            Self::MissingPackage => write!(f, "manifest has no package record"),
            Self::DuplicatePackage => write!(f, "manifest has more than one package record"),
            Self::UnsupportedAbiVersion { found } => {
                write!(f, "app built for ABI version {found}, this host speaks {ABI_VERSION}")
            }
            Self::DuplicateMethod { name } => write!(f, "manifest lists method `{name}` twice"),
            Self::DuplicateEvent { name } => write!(f, "manifest lists event `{name}` twice"),
        }
    }
}

impl core::error::Error for ManifestError {}

impl Manifest {
    /// Decode and merge the records of a manifest section (see the module doc).
    pub fn decode_section(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MANIFEST_BYTES_MAX {
            return Err(ManifestError::TooLarge { len: bytes.len() });
        }
        let mut package = None;
        let mut methods: Vec<MethodSpec> = Vec::new();
        let mut events: Vec<EventSpec> = Vec::new();
        let mut offset = 0;
        let mut records = 0;
        while offset < bytes.len() {
            records += 1;
            if records > MANIFEST_RECORDS_MAX {
                return Err(ManifestError::TooManyRecords);
            }
            let mut len_bytes = [0u8; 4];
            len_bytes.copy_from_slice(bytes.get(offset..offset + 4).ok_or(ManifestError::Truncated { offset })?);
            let len = u32::from_le_bytes(len_bytes) as usize;
            let body =
                bytes.get(offset + 4..).and_then(|rest| rest.get(..len)).ok_or(ManifestError::Truncated { offset })?;
            let record: ManifestRecord = borsh::from_slice(body).map_err(|_| ManifestError::BadRecord { offset })?;
            match record {
                ManifestRecord::Package { abi_version, name, version } => {
                    if package.is_some() {
                        return Err(ManifestError::DuplicatePackage);
                    }
                    if abi_version != ABI_VERSION {
                        return Err(ManifestError::UnsupportedAbiVersion { found: abi_version });
                    }
                    package = Some((abi_version, name, version));
                }
                ManifestRecord::Methods(more) => {
                    for method in more {
                        if methods.iter().any(|known| known.name == method.name) {
                            return Err(ManifestError::DuplicateMethod { name: method.name });
                        }
                        methods.push(method);
                    }
                }
                ManifestRecord::Events(more) => {
                    for event in more {
                        if events.iter().any(|known| known.name == event.name) {
                            return Err(ManifestError::DuplicateEvent { name: event.name });
                        }
                        events.push(event);
                    }
                }
            }
            offset += 4 + len;
        }
        let (abi_version, name, version) = package.ok_or(ManifestError::MissingPackage)?;
        Ok(Manifest { abi_version, name, version, methods, events })
    }

    /// This manifest in the section format (one record each for package,
    /// methods and events); [`Manifest::decode_section`] returns it unchanged.
    pub fn encode_section(&self) -> Vec<u8> {
        let mut out = ManifestRecord::Package {
            abi_version: self.abi_version,
            name: self.name.clone(),
            version: self.version.clone(),
        }
        .encode_frame();
        out.extend(ManifestRecord::Methods(self.methods.clone()).encode_frame());
        out.extend(ManifestRecord::Events(self.events.clone()).encode_frame());
        out
    }

    /// The method named `name`, if exported.
    pub fn method(&self, name: &str) -> Option<&MethodSpec> {
        self.methods.iter().find(|method| method.name == name)
    }

    /// The init method, if the app has one.
    pub fn init(&self) -> Option<&MethodSpec> {
        self.methods.iter().find(|method| method.kind == MethodKind::Init)
    }
}
