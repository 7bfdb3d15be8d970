//! The receive path of one context's replica (`weft_sync::Replica::handle`
//! and `Replica::new`), fed what a peer or the disk can send: gossip
//! payloads, the messages of a sync session (one the peer opened, or one we
//! opened), and rows restored from the store. The first byte picks the path;
//! the rest is u32-BE frames, one message or row each. With the first
//! byte's top bit set, a frame that decodes as delta content
//! (parents, hlc, actions, events) is signed here by a member (its actions
//! aimed at the root or its children, see `aim`), so the fuzzer also plays
//! a malicious member, not only a stranger.
//! Asserts: no panic; every frame the replica sends is a `SyncMessage` that
//! decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_dag::DeltaId;
use weft_primitives::encoding::{self, FRAME_BYTES_MAX, split_frame};
use weft_primitives::kv::WriteSet;
use weft_primitives::{Hash, Hlc, PublicKey, SigningKey};
use weft_state::{Action, CrdtKind, StorageKind, child_id, root_id};
use weft_sync::protocol::{DeltaPage, PageEnd, SyncMessage};
use weft_sync::{
    AppliedRow, Config, Event, Input, MemoryStore, Output, PeerId, Replica, ReplicaParams, ReplicaStore, SessionId,
    SignedDelta,
};

/// A clock near zero, so timestamps the fuzzer writes are within drift.
const START_MS: u64 = 1_000_000;
const PEER: PeerId = PeerId([9; 32]);

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed([seed; 32])
}

fn replica(store: MemoryStore) -> Option<Replica<MemoryStore>> {
    let params = ReplicaParams {
        context: Hash([3; 32]),
        genesis: Hash::ZERO,
        local_peer: PeerId([1; 32]),
        identity: key(1),
        members: vec![key(1).public_key(), key(2).public_key()],
        config: Config::default(),
        rng_seed: 7,
        store,
    };
    Replica::new(params, START_MS).ok()
}

/// `frame` as a delta: as it is, or the delta member 2 signs over it.
fn delta(frame: &[u8], sign: bool) -> Vec<u8> {
    type Content = (Vec<DeltaId>, Hlc, Vec<Action>, Vec<Event>);
    match encoding::decode::<Content>(frame) {
        Ok((parents, hlc, mut actions, events)) if sign => {
            let signer = key(2);
            actions.iter_mut().for_each(|action| aim(action, signer.public_key()));
            SignedDelta::sign(&signer, &Hash([3; 32]), parents, hlc, actions, events).encode()
        }
        _ => frame.to_vec(),
    }
}

/// Makes the names the fuzzer cannot guess (hashes, keys) reachable: an
/// action is by the signer, and a target `[k, 0, …, 0]` is the root (k = 0)
/// or the root's child at key `[k]` of the k-th kind (mod 7), public.
fn aim(action: &mut Action, author: PublicKey) {
    const KINDS: [CrdtKind; 7] = [
        CrdtKind::LwwRegister,
        CrdtKind::GCounter,
        CrdtKind::PnCounter,
        CrdtKind::Map,
        CrdtKind::Set,
        CrdtKind::Vector,
        CrdtKind::Text,
    ];
    action.stamp.author = author;
    let [k, rest @ ..] = action.target.0;
    if rest.iter().all(|b| *b == 0) {
        action.target = match k {
            0 => root_id(),
            k => child_id(&root_id(), &[k], KINDS[usize::from(k) % 7], &StorageKind::Public),
        };
    }
}

/// `frame` as a stream message: as it is, or a page of one signed delta.
fn message(frame: &[u8], sign: bool) -> Vec<u8> {
    if !sign || SyncMessage::decode(frame).is_ok() {
        return frame.to_vec();
    }
    SyncMessage::Deltas(DeltaPage { deltas: vec![delta(frame, true)], end: PageEnd::More }).encode()
}

fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Ok(Some((frame, rest))) = split_frame(data, FRAME_BYTES_MAX) {
        out.push(frame);
        data = rest;
    }
    out
}

fn check(outputs: &[Output]) -> Option<SessionId> {
    let mut opened = None;
    for output in outputs {
        if let Output::Send { session, bytes, .. } = output {
            assert!(SyncMessage::decode(bytes).is_ok(), "the replica sent a message that does not decode");
            opened = Some(*session);
        }
    }
    opened
}

fuzz_target!(|data: &[u8]| {
    weft_fuzz::init();
    let Some((&mode, rest)) = data.split_first() else { return };
    let sign = mode & 0x80 != 0;
    let frames = frames(rest);
    let mut now = START_MS;
    let mut replica = match mode & 0x03 {
        3 => {
            // Rows restored from the store: even first byte applied, odd pending.
            let mut store = MemoryStore::new();
            let mut position = 0;
            for frame in &frames {
                let Some((&kind, row)) = frame.split_first() else { continue };
                let bytes = delta(row, sign);
                let id = SignedDelta::decode(&bytes).map(|d| d.id).unwrap_or(Hash::of(&bytes));
                if kind & 1 == 1 {
                    let _ = store.put_pending(id, &bytes);
                } else {
                    let row =
                        AppliedRow { position, id, bytes: &bytes, writes: WriteSet::new(), root_hash: Hash::ZERO };
                    let _ = store.commit_applied(row);
                    position += 1;
                }
            }
            let Some(replica) = replica(store) else { return };
            replica
        }
        _ => match replica(MemoryStore::new()) {
            Some(replica) => replica,
            None => return,
        },
    };
    check(&replica.handle(Input::PeerUp { peer: PEER }, now));
    let session = match mode & 0x03 {
        1 => Some(SessionId { opener: PEER, n: 1 }),
        2 => check(&replica.handle(Input::SyncNow { peer: Some(PEER) }, now)),
        _ => None,
    };
    for (n, frame) in frames.iter().enumerate() {
        now += 100;
        let input = match (mode & 0x03, session) {
            (0, _) => Input::GossipReceived { from: PEER, message: n as u64, bytes: delta(frame, sign) },
            (1 | 2, Some(session)) => Input::StreamMessage { from: PEER, session, bytes: message(frame, sign) },
            _ => break,
        };
        check(&replica.handle(input, now));
    }
    if let Some(session) = session {
        check(&replica.handle(Input::StreamClosed { peer: PEER, session }, now));
    }
    // Let every timer fire: timeouts, retries, the pending sweep.
    check(&replica.handle(Input::Tick, now + 120_000));
    check(&replica.handle(Input::PeerDown { peer: PEER }, now + 120_000));
});
