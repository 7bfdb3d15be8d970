//! Every ABI type survives borsh encode/decode, decoding arbitrary bytes never
//! panics, and the manifest section format merges records in any order.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use weft_abi::{
    ABI_VERSION, CrdtKind, EventSpec, Manifest, ManifestError, ManifestRecord, MethodKind, MethodSpec, StateCall,
    StateReply, StateValue, StatusCode, Storage, Timestamp,
};

fn round_trip<T: borsh::BorshSerialize + borsh::BorshDeserialize + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = borsh::to_vec(value).unwrap();
    let back: T = borsh::from_slice(&bytes).unwrap();
    assert_eq!(&back, value);
}

const A: [u8; 32] = [1; 32];

fn every_call() -> Vec<StateCall> {
    let key = b"k".to_vec();
    vec![
        StateCall::RootId,
        StateCall::ChildId { parent: A, key: key.clone(), kind: CrdtKind::Map, storage: Storage::Public },
        StateCall::Create {
            parent: A,
            key: key.clone(),
            kind: CrdtKind::Text,
            storage: Storage::UserOwned { owner: A },
        },
        StateCall::Create { parent: A, key: key.clone(), kind: CrdtKind::GCounter, storage: Storage::Frozen },
        StateCall::MapInsert { map: A, key: key.clone(), value: b"v".to_vec() },
        StateCall::MapGet { map: A, key: key.clone() },
        StateCall::MapRemove { map: A, key: key.clone() },
        StateCall::MapEntries { map: A, after: Some(key.clone()), limit: 7 },
        StateCall::MapEntries { map: A, after: None, limit: 0 },
        StateCall::MapLen { map: A },
        StateCall::RegisterSet { register: A, value: vec![] },
        StateCall::RegisterGet { register: A },
        StateCall::CounterAdd { counter: A, delta: -5 },
        StateCall::CounterValue { counter: A },
        StateCall::SetAdd { set: A, element: key.clone() },
        StateCall::SetRemove { set: A, element: key.clone() },
        StateCall::SetContains { set: A, element: key.clone() },
        StateCall::SetIter { set: A, after: None, limit: 3 },
        StateCall::SetLen { set: A },
        StateCall::VectorPush { vector: A, value: key.clone() },
        StateCall::VectorGet { vector: A, index: 2 },
        StateCall::VectorLen { vector: A },
        StateCall::VectorSet { vector: A, index: 1, value: key.clone() },
        StateCall::VectorRemove { vector: A, index: 0 },
        StateCall::TextInsert { text: A, pos: 3, value: "héllo".into() },
        StateCall::TextDelete { text: A, pos: 1, len: 2 },
        StateCall::TextRead { text: A },
        StateCall::TextLen { text: A },
    ]
}

#[test]
fn every_state_call_round_trips() {
    for call in every_call() {
        round_trip(&call);
    }
}

#[test]
fn every_crdt_kind_round_trips_with_fixed_tags() {
    let kinds = [
        CrdtKind::LwwRegister,
        CrdtKind::GCounter,
        CrdtKind::PnCounter,
        CrdtKind::Map,
        CrdtKind::Set,
        CrdtKind::Vector,
        CrdtKind::Text,
    ];
    for (tag, kind) in kinds.iter().enumerate() {
        round_trip(kind);
        assert_eq!(borsh::to_vec(kind).unwrap(), vec![tag as u8]);
    }
}

#[test]
fn every_state_reply_round_trips() {
    let replies = vec![
        StateReply::Unit,
        StateReply::Id(A),
        StateReply::Bool(true),
        StateReply::U64(u64::MAX),
        StateReply::I128(i128::MIN),
        StateReply::Bytes(None),
        StateReply::Bytes(Some(vec![1, 2])),
        StateReply::Value(None),
        StateReply::Value(Some(StateValue::Bytes(vec![9]))),
        StateReply::Value(Some(StateValue::Collection { id: A, kind: CrdtKind::Set })),
        StateReply::Entries {
            items: vec![
                (b"a".to_vec(), StateValue::Bytes(vec![])),
                (b"b".to_vec(), StateValue::Collection { id: A, kind: CrdtKind::Vector }),
            ],
            next: Some(b"b".to_vec()),
        },
        StateReply::Elements { items: vec![b"x".to_vec()], next: None },
        StateReply::Text("text".into()),
    ];
    for reply in replies {
        round_trip(&reply);
    }
}

#[test]
fn writes_are_exactly_the_mutating_calls() {
    let writes: Vec<bool> = every_call().iter().map(StateCall::is_write).collect();
    let reads = [0, 1, 5, 7, 8, 9, 11, 13, 16, 17, 18, 20, 21, 26, 27];
    for (index, is_write) in writes.iter().enumerate() {
        assert_eq!(*is_write, !reads.contains(&index), "call {index}");
    }
}

#[test]
fn status_codes_map_to_and_from_their_i32() {
    for status in StatusCode::ALL {
        assert_eq!(StatusCode::from_code(status.code()), Some(status));
    }
    assert_eq!(StatusCode::Internal.code(), -7);
    assert_eq!(StatusCode::from_code(1), None);
    assert_eq!(StatusCode::from_code(-8), None);
}

#[test]
fn timestamp_is_twelve_bytes() {
    let time = Timestamp { wall_ms: 1_700_000_000_000, counter: 3 };
    round_trip(&time);
    assert_eq!(borsh::to_vec(&time).unwrap().len(), 12);
}

fn sample_manifest() -> Manifest {
    Manifest {
        abi_version: ABI_VERSION,
        name: "kv-store".into(),
        version: "0.1.0".into(),
        methods: vec![
            MethodSpec { name: "init".into(), kind: MethodKind::Init, args: vec![], returns: "Self".into() },
            MethodSpec {
                name: "set".into(),
                kind: MethodKind::Mutate,
                args: vec![("key".into(), "String".into()), ("value".into(), "String".into())],
                returns: "()".into(),
            },
            MethodSpec { name: "len".into(), kind: MethodKind::View, args: vec![], returns: "u64".into() },
            MethodSpec { name: "on_event".into(), kind: MethodKind::Handler, args: vec![], returns: "()".into() },
        ],
        events: vec![EventSpec { name: "Inserted".into(), fields: "{ key : String }".into() }],
    }
}

#[test]
fn manifest_round_trips_through_borsh_and_section_format() {
    let manifest = sample_manifest();
    round_trip(&manifest);
    assert_eq!(Manifest::decode_section(&manifest.encode_section()).unwrap(), manifest);
    assert_eq!(manifest.method("len").unwrap().kind, MethodKind::View);
    assert_eq!(manifest.init().unwrap().name, "init");
    assert!(manifest.method("nope").is_none());
}

#[test]
fn manifest_records_merge_in_any_order() {
    let manifest = sample_manifest();
    let package = ManifestRecord::Package {
        abi_version: ABI_VERSION,
        name: manifest.name.clone(),
        version: manifest.version.clone(),
    };
    let (first, second) = manifest.methods.split_at(2);
    let mut section = ManifestRecord::Events(manifest.events.clone()).encode_frame();
    section.extend(ManifestRecord::Methods(first.to_vec()).encode_frame());
    section.extend(package.encode_frame());
    section.extend(ManifestRecord::Methods(second.to_vec()).encode_frame());
    assert_eq!(Manifest::decode_section(&section).unwrap(), manifest);
}

#[test]
fn manifest_rejections_are_typed() {
    let package = ManifestRecord::Package { abi_version: ABI_VERSION, name: "a".into(), version: "1".into() };
    let methods = ManifestRecord::Methods(sample_manifest().methods);
    assert_eq!(Manifest::decode_section(&[]), Err(ManifestError::MissingPackage));
    assert_eq!(Manifest::decode_section(&methods.encode_frame()), Err(ManifestError::MissingPackage));

    let mut twice = package.encode_frame();
    twice.extend(package.encode_frame());
    assert_eq!(Manifest::decode_section(&twice), Err(ManifestError::DuplicatePackage));

    let future = ManifestRecord::Package { abi_version: 2, name: "a".into(), version: "1".into() };
    assert_eq!(
        Manifest::decode_section(&future.encode_frame()),
        Err(ManifestError::UnsupportedAbiVersion { found: 2 })
    );

    let mut dup = package.encode_frame();
    dup.extend(methods.encode_frame());
    dup.extend(methods.encode_frame());
    assert_eq!(Manifest::decode_section(&dup), Err(ManifestError::DuplicateMethod { name: "init".into() }));

    let events = ManifestRecord::Events(sample_manifest().events);
    let mut dup = package.encode_frame();
    dup.extend(events.encode_frame());
    dup.extend(events.encode_frame());
    assert_eq!(Manifest::decode_section(&dup), Err(ManifestError::DuplicateEvent { name: "Inserted".into() }));

    let whole = package.encode_frame();
    assert_eq!(Manifest::decode_section(&whole[..whole.len() - 1]), Err(ManifestError::Truncated { offset: 0 }));
    assert_eq!(Manifest::decode_section(&whole[..2]), Err(ManifestError::Truncated { offset: 0 }));

    let mut trailing = whole.clone();
    trailing[0] += 1;
    trailing.push(0);
    assert_eq!(Manifest::decode_section(&trailing), Err(ManifestError::BadRecord { offset: 0 }));

    let huge = vec![0u8; weft_abi::limits::MANIFEST_BYTES_MAX + 1];
    assert!(matches!(Manifest::decode_section(&huge), Err(ManifestError::TooLarge { .. })));
    assert!(!ManifestError::MissingPackage.to_string().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = borsh::from_slice::<StateCall>(&bytes);
        let _ = borsh::from_slice::<StateReply>(&bytes);
        let _ = borsh::from_slice::<Manifest>(&bytes);
        let _ = borsh::from_slice::<Timestamp>(&bytes);
        let _ = Manifest::decode_section(&bytes);
    }

    #[test]
    fn decoding_mutated_valid_encodings_never_panics(index in 0usize..28, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = borsh::to_vec(&every_call()[index]).unwrap();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        let _ = borsh::from_slice::<StateCall>(&bytes);
        let mut section = sample_manifest().encode_section();
        let at = bytes.len() % section.len();
        section[at] ^= bytes[0];
        let _ = Manifest::decode_section(&section);
    }
}
