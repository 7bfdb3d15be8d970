//! docs/testing.md S4 (the parts that reach the sync layer): each bad input is
//! refused with its own variant, the offender is penalized, and nothing
//! changes — neither the heads nor the root hash.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, START_MS, key, peer};
use weft_primitives::{Hash, Hlc, SigningKey};
use weft_sync::protocol::{
    ErrorCode, GetDeltas, PROTOCOL_VERSION, ProtocolError, Summary, SyncMessage, SyncReply, SyncRequest,
};
use weft_sync::replica::{PENDING_AUTHOR_BYTES_MAX, PENDING_AUTHOR_DELTAS_MAX};
use weft_sync::{
    Config, DELTA_BYTES_MAX, DeltaRejection, Event, Input, Offense, Output, SessionId, SignedDelta, Verdict,
};

fn genesis() -> Hash {
    Hash::of(b"test genesis")
}

fn delta_by(signer: &SigningKey, hlc: Hlc) -> SignedDelta {
    let event = Event { kind: "Ping".into(), data: b"{}".to_vec(), handler: None };
    SignedDelta::sign(signer, &common::context(), vec![genesis()], hlc, Vec::new(), vec![event])
}

/// Gossip `bytes` from replica 1 to replica 0 and return the rejection
/// replica 0 penalized replica 1 with; asserts nothing changed.
fn gossip_rejection(bytes: Vec<u8>) -> DeltaRejection {
    let mut cluster = Cluster::connected(2, Config::default());
    let (heads, root) = (cluster.replicas[0].heads(), cluster.replicas[0].root_hash());
    let traffic = cluster.input(0, Input::GossipReceived { from: peer(1), message: 9, bytes });
    assert_eq!(cluster.replicas[0].heads(), heads, "heads changed");
    assert_eq!(cluster.replicas[0].root_hash(), root, "root hash changed");
    assert!(traffic.outputs.iter().any(|(_, o)| *o == Output::GossipVerdict { message: 9, verdict: Verdict::Reject }));
    let rejections: Vec<DeltaRejection> = traffic
        .outputs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Penalize { peer: p, offense: Offense::BadDelta(rejection) } if *p == peer(1) => {
                Some(rejection.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(rejections.len(), 1, "exactly one penalty: {:?}", traffic.outputs);
    // Honest deltas still go through afterwards.
    let honest = delta_by(&key(1), Hlc::new(START_MS, 0));
    let traffic = cluster.input(0, Input::GossipReceived { from: peer(1), message: 10, bytes: honest.encode() });
    assert!(traffic.outputs.iter().any(|(_, o)| matches!(o, Output::Applied { .. })));
    rejections.into_iter().next().unwrap()
}

#[test]
fn forged_signature_is_rejected_as_bad_signature() {
    let mut delta = delta_by(&key(1), Hlc::new(START_MS, 0));
    delta.signature = key(0).sign(delta.id.as_bytes());
    assert_eq!(gossip_rejection(delta.encode()), DeltaRejection::BadSignature { author: key(1).public_key() });
}

#[test]
fn id_that_is_not_the_content_hash_is_rejected() {
    let mut delta = delta_by(&key(1), Hlc::new(START_MS, 0));
    delta.hlc = Hlc::new(START_MS, 1);
    assert!(matches!(gossip_rejection(delta.encode()), DeltaRejection::IdMismatch { .. }));
}

#[test]
fn non_member_author_is_rejected() {
    let outsider = SigningKey::from_seed([42; 32]);
    let delta = delta_by(&outsider, Hlc::new(START_MS, 0));
    assert_eq!(gossip_rejection(delta.encode()), DeltaRejection::NonMember { author: outsider.public_key() });
}

#[test]
fn oversize_delta_is_rejected_before_decoding() {
    let bytes = vec![0u8; DELTA_BYTES_MAX + 1];
    assert_eq!(gossip_rejection(bytes), DeltaRejection::Oversize { len: DELTA_BYTES_MAX + 1, max: DELTA_BYTES_MAX });
}

#[test]
fn truncated_delta_is_malformed() {
    let bytes = delta_by(&key(1), Hlc::new(START_MS, 0)).encode();
    assert!(matches!(gossip_rejection(bytes[..bytes.len() - 3].to_vec()), DeltaRejection::Malformed { .. }));
}

#[test]
fn far_future_timestamp_is_rejected() {
    let delta = delta_by(&key(1), Hlc::new(START_MS + 3_600_000, 0));
    assert!(matches!(gossip_rejection(delta.encode()), DeltaRejection::TooFarInFuture { .. }));
}

#[test]
fn duplicate_gossip_is_ignored_not_penalized() {
    let mut cluster = Cluster::connected(2, Config::default());
    let (_, bytes) = cluster.write(1, b"k", b"v");
    cluster.gossip(1, 0, &bytes);
    let traffic = cluster.input(0, Input::GossipReceived { from: peer(1), message: 5, bytes });
    assert!(traffic.penalties().is_empty());
    assert!(traffic.outputs.iter().any(|(_, o)| *o == Output::GossipVerdict { message: 5, verdict: Verdict::Ignore }));
}

/// Send raw stream bytes from replica 1 on a session it opened; returns the
/// error code replica 0 answered with and the offense it penalized, if any.
fn stream_refusal(bytes: Vec<u8>) -> (ErrorCode, Option<ProtocolError>) {
    stream_refusal_after(&[], bytes)
}

/// Like [`stream_refusal`], after feeding `before` on the same session.
fn stream_refusal_after(before: &[Vec<u8>], bytes: Vec<u8>) -> (ErrorCode, Option<ProtocolError>) {
    // Not connected: no session of replica 0's own gets in the way.
    let mut cluster = Cluster::new(2, Config::default());
    let (heads, root) = (cluster.replicas[0].heads(), cluster.replicas[0].root_hash());
    let session = SessionId { opener: peer(1), n: 77 };
    for earlier in before {
        let input = Input::StreamMessage { from: peer(1), session, bytes: earlier.clone() };
        cluster.replicas[0].handle(input, cluster.now);
    }
    let outputs = cluster.replicas[0].handle(Input::StreamMessage { from: peer(1), session, bytes }, cluster.now);
    assert_eq!((cluster.replicas[0].heads(), cluster.replicas[0].root_hash()), (heads, root));
    let mut code = None;
    let mut offense = None;
    for output in outputs {
        match output {
            Output::Send { to, session: s, bytes } if to == peer(1) && s == session => {
                if let Ok(SyncMessage::Error(reply)) = SyncMessage::decode(&bytes) {
                    code = Some(reply.code);
                }
            }
            Output::Penalize { offense: Offense::BadMessage(error), .. } => offense = Some(error),
            _ => {}
        }
    }
    (code.expect("an explicit error reply"), offense)
}

#[test]
fn unknown_message_tag_is_answered_with_an_explicit_error() {
    let (code, offense) = stream_refusal(vec![200, 1, 2, 3]);
    assert_eq!(code, ErrorCode::UnknownTag);
    assert_eq!(offense, Some(ProtocolError::UnknownTag { tag: 200 }));
}

#[test]
fn truncated_message_is_answered_as_malformed() {
    let request = SyncMessage::SyncRequest(SyncRequest {
        version: PROTOCOL_VERSION,
        context: Hash::of(b"test context"),
        summary: Summary::default(),
    });
    let bytes = request.encode();
    let (code, offense) = stream_refusal(bytes[..bytes.len() - 1].to_vec());
    assert_eq!(code, ErrorCode::Malformed);
    assert!(matches!(offense, Some(ProtocolError::Malformed { .. })));
}

#[test]
fn wrong_version_and_context_are_refused_without_penalty() {
    let request =
        |version, context| SyncMessage::GetDeltas(GetDeltas { version, context, ids: vec![Hash::of(b"x")] }).encode();
    let (code, offense) = stream_refusal(request(PROTOCOL_VERSION + 1, Hash::of(b"test context")));
    assert_eq!((code, offense), (ErrorCode::UnsupportedVersion, None));
    let (code, offense) = stream_refusal(request(PROTOCOL_VERSION, Hash::of(b"another context")));
    assert_eq!((code, offense), (ErrorCode::WrongContext, None));
}

fn open_request() -> Vec<u8> {
    SyncMessage::SyncRequest(SyncRequest {
        version: PROTOCOL_VERSION,
        context: Hash::of(b"test context"),
        // A head replica 0 does not hold: its stream waits for our push.
        summary: Summary { root_hash: Hash::ZERO, heads: vec![Hash::of(b"unknown head")], hints: Vec::new() },
    })
    .encode()
}

#[test]
fn message_out_of_place_in_a_live_session_is_refused() {
    let (code, offense) = stream_refusal_after(
        &[open_request()],
        SyncMessage::SyncReply(SyncReply { summary: Summary::default(), has_your_heads: false }).encode(),
    );
    assert_eq!(code, ErrorCode::Unexpected);
    assert_eq!(offense, Some(ProtocolError::Unexpected { what: "SyncReply" }));
}

#[test]
fn late_message_for_an_ended_session_is_dropped_quietly() {
    let mut cluster = Cluster::new(2, Config::default());
    let session = SessionId { opener: peer(1), n: 5 };
    let input = Input::StreamMessage { from: peer(1), session, bytes: SyncMessage::Continue.encode() };
    let outputs = cluster.replicas[0].handle(input, cluster.now);
    assert!(outputs.is_empty(), "{outputs:?}");
}

#[test]
fn bad_delta_in_a_sync_page_penalizes_and_ends_the_session() {
    let mut cluster = Cluster::new(2, Config::default());
    let session = SessionId { opener: peer(1), n: 3 };
    cluster.replicas[0].handle(Input::StreamMessage { from: peer(1), session, bytes: open_request() }, cluster.now);
    assert_eq!(cluster.replicas[0].session_count(), 1);
    let mut forged = delta_by(&key(1), Hlc::new(START_MS, 0));
    forged.signature = key(0).sign(forged.id.as_bytes());
    let page = SyncMessage::Deltas(weft_sync::protocol::DeltaPage {
        deltas: vec![forged.encode()],
        end: weft_sync::protocol::PageEnd::Done,
    });
    let outputs =
        cluster.replicas[0].handle(Input::StreamMessage { from: peer(1), session, bytes: page.encode() }, cluster.now);
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::Penalize { offense: Offense::BadDelta(DeltaRejection::BadSignature { .. }), .. }
    )));
    assert!(outputs.iter().any(|o| *o == Output::CloseSession { peer: peer(1), session }));
    assert_eq!(cluster.replicas[0].session_count(), 0);
}

/// Feed one page of `deltas` to a fresh replica 0 checking signatures on
/// `threads` threads: (heads, root hash, deltas applied, penalties).
fn page_outcome(deltas: &[SignedDelta], threads: usize) -> (Vec<Hash>, Hash, usize, Vec<Offense>) {
    let mut cluster = Cluster::new(2, Config { verify_threads: threads, ..Config::default() });
    let session = SessionId { opener: peer(1), n: 3 };
    cluster.replicas[0].handle(Input::StreamMessage { from: peer(1), session, bytes: open_request() }, cluster.now);
    let page = SyncMessage::Deltas(weft_sync::protocol::DeltaPage {
        deltas: deltas.iter().map(SignedDelta::encode).collect(),
        end: weft_sync::protocol::PageEnd::Done,
    });
    let outputs =
        cluster.replicas[0].handle(Input::StreamMessage { from: peer(1), session, bytes: page.encode() }, cluster.now);
    let applied = outputs.iter().filter(|o| matches!(o, Output::Applied { .. })).count();
    let penalties = outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::Penalize { offense, .. } => Some(offense),
            _ => None,
        })
        .collect();
    let mut heads = cluster.replicas[0].heads();
    heads.sort();
    (heads, cluster.replicas[0].root_hash(), applied, penalties)
}

#[test]
fn a_page_checked_on_threads_gets_the_verdicts_of_one_checked_delta_by_delta() {
    // A chain of a member's deltas, one of them signed by another key.
    let forged_at = 2 * weft_sync::replica::PARALLEL_VERIFY_MIN / 3;
    let mut parent = genesis();
    let mut deltas: Vec<SignedDelta> = (0..2 * weft_sync::replica::PARALLEL_VERIFY_MIN as u64)
        .map(|n| {
            let event = Event { kind: "Ping".into(), data: n.to_le_bytes().to_vec(), handler: None };
            let delta = SignedDelta::sign(
                &key(1),
                &common::context(),
                vec![parent],
                Hlc::new(START_MS, n as u32),
                Vec::new(),
                vec![event],
            );
            parent = delta.id;
            delta
        })
        .collect();
    deltas[forged_at].signature = key(0).sign(deltas[forged_at].id.as_bytes());
    let one_by_one = page_outcome(&deltas, 1);
    assert_eq!(one_by_one.2, forged_at, "the deltas before the forged one apply, then the page stops");
    assert_eq!(
        one_by_one.3,
        vec![Offense::BadDelta(DeltaRejection::BadSignature { author: key(1).public_key() })],
        "the forged delta is refused for its signature"
    );
    for threads in [2, 3, 8] {
        assert_eq!(page_outcome(&deltas, threads), one_by_one, "{threads} threads decided differently");
    }
}

#[test]
fn a_timestamp_counter_above_its_maximum_is_rejected() {
    let delta = delta_by(&key(1), Hlc::new(START_MS, Hlc::COUNTER_MAX + 1));
    assert_eq!(
        gossip_rejection(delta.encode()),
        DeltaRejection::ClockCounter { counter: Hlc::COUNTER_MAX + 1, max: Hlc::COUNTER_MAX }
    );
}

/// A member's delta stamped at the edge of the drift bound with a counter
/// at (or past) its maximum used to be absorbed and make every later local
/// write fail (the clock's counter overflowed).
#[test]
fn one_delta_cannot_freeze_the_writers() {
    for counter in [u32::MAX, Hlc::COUNTER_MAX] {
        let mut cluster = Cluster::connected(2, Config::default());
        let edge = Hlc::new(START_MS + 59_000, counter);
        let delta = delta_by(&key(1), edge);
        cluster.input(0, Input::GossipReceived { from: peer(1), message: 1, bytes: delta.encode() });
        for n in 0..3u8 {
            // `write` panics if the write is refused.
            let (_, bytes) = cluster.write(0, &[n], b"v");
            let stamped = SignedDelta::decode(&bytes).unwrap().hlc;
            if counter <= Hlc::COUNTER_MAX {
                assert!(stamped > edge, "a later write stamps after what it saw");
            }
        }
    }
}

/// A delta whose author cannot be vetted yet (its parents are missing)
/// waits; its timestamp must not move our clock until it applies.
#[test]
fn an_unvetted_delta_does_not_move_the_clock() {
    let mut cluster = Cluster::connected(2, Config::default());
    let outsider = SigningKey::from_seed([42; 32]);
    let ahead = Hlc::new(START_MS + 50_000, 0);
    let event = Event { kind: "Ping".into(), data: b"{}".to_vec(), handler: None };
    let orphan = SignedDelta::sign(
        &outsider,
        &common::context(),
        vec![Hash::of(b"a parent nobody has")],
        ahead,
        Vec::new(),
        vec![event],
    );
    cluster.input(0, Input::GossipReceived { from: peer(1), message: 1, bytes: orphan.encode() });
    assert_eq!(cluster.replicas[0].dag().pending_count(), 1, "the orphan waits for its parents");
    let (_, bytes) = cluster.write(0, b"k", b"v");
    let stamped = SignedDelta::decode(&bytes).unwrap().hlc;
    assert!(stamped < ahead, "the unvetted stamp {ahead:?} moved the clock to {stamped:?}");
}

/// Gossip `delta` from replica `from` to replica 0; the verdict given.
fn gossip_verdict(cluster: &mut Cluster, from: usize, message: u64, delta: &SignedDelta) -> Verdict {
    let traffic = cluster.input(0, Input::GossipReceived { from: peer(from), message, bytes: delta.encode() });
    let verdicts: Vec<Verdict> = traffic
        .outputs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::GossipVerdict { message: m, verdict } if *m == message => Some(*verdict),
            _ => None,
        })
        .collect();
    assert!(!traffic.outputs.iter().any(|(_, o)| matches!(o, Output::Penalize { .. })), "nobody is penalized");
    verdicts[0]
}

#[test]
fn one_member_flooding_deltas_on_a_missing_parent_is_held_to_its_share() {
    let mut cluster = Cluster::connected(3, Config::default());
    let nowhere = Hash::of(b"a parent nobody has");
    let over = 20;
    for n in 0..PENDING_AUTHOR_DELTAS_MAX + over {
        let hlc = Hlc::new(START_MS, n as u32);
        let delta = SignedDelta::sign(&key(1), &common::context(), vec![nowhere], hlc, Vec::new(), Vec::new());
        let verdict = gossip_verdict(&mut cluster, 1, n as u64, &delta);
        let expected = if n < PENDING_AUTHOR_DELTAS_MAX { Verdict::Accept } else { Verdict::Ignore };
        assert_eq!(verdict, expected, "delta {n}");
    }
    assert_eq!(cluster.replicas[0].dag().pending_count(), PENDING_AUTHOR_DELTAS_MAX);
    assert_eq!(cluster.replicas[0].stats().pending_refused, over as u64);

    // Another member's delta on a parent not received yet still waits, and
    // applies with it.
    let parent = delta_by(&key(2), Hlc::new(START_MS, 0));
    let child =
        SignedDelta::sign(&key(2), &common::context(), vec![parent.id], Hlc::new(START_MS, 1), Vec::new(), Vec::new());
    assert_eq!(gossip_verdict(&mut cluster, 2, 1_000_000, &child), Verdict::Accept);
    assert_eq!(cluster.replicas[0].dag().pending_count(), PENDING_AUTHOR_DELTAS_MAX + 1);
    assert_eq!(gossip_verdict(&mut cluster, 2, 1_000_001, &parent), Verdict::Accept);
    assert!(cluster.replicas[0].dag().is_applied(&child.id));
    assert_eq!(cluster.replicas[0].stats().pending_refused, over as u64);
}

#[test]
fn pending_bytes_of_one_member_are_bounded() {
    let mut cluster = Cluster::connected(2, Config::default());
    let nowhere = Hash::of(b"a parent nobody has");
    let chunk = DELTA_BYTES_MAX - 4096;
    let fit = PENDING_AUTHOR_BYTES_MAX / chunk;
    for n in 0..=fit {
        let event = Event { kind: "Big".into(), data: vec![n as u8; chunk - 200], handler: None };
        let hlc = Hlc::new(START_MS, n as u32);
        let delta = SignedDelta::sign(&key(1), &common::context(), vec![nowhere], hlc, Vec::new(), vec![event]);
        let expected = if n < fit { Verdict::Accept } else { Verdict::Ignore };
        assert_eq!(gossip_verdict(&mut cluster, 1, n as u64, &delta), expected, "delta {n}");
    }
    assert_eq!(cluster.replicas[0].dag().pending_count(), fit);
    assert_eq!(cluster.replicas[0].stats().pending_refused, 1);
}
