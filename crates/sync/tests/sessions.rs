//! Session rules: crossing sessions, one bulk inflow at a time, silent
//! peers, retries after a refusal, bursts paced by `Continue`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, index, peer};
use weft_sync::protocol::{ErrorCode, SyncMessage, error_reply};
use weft_sync::replica::{RETRY_BACKOFF_MIN_MS, RETRY_BACKOFF_SPREAD_MS};
use weft_sync::sim::measure_catch_up;
use weft_sync::{Config, Input, Output};

fn quiet() -> Config {
    Config { sync_frequency_ms: 3_600_000, ..Config::default() }
}

/// The stream messages in `outputs`, with their destination.
fn sends(outputs: &[Output]) -> Vec<(usize, weft_sync::SessionId, Vec<u8>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, session, bytes } => Some((index(to), *session, bytes.clone())),
            _ => None,
        })
        .collect()
}

fn busy(bytes: &[u8]) -> bool {
    matches!(SyncMessage::decode(bytes), Ok(SyncMessage::Error(reply)) if reply.code == ErrorCode::Busy)
}

#[test]
fn crossing_sessions_keep_the_one_opened_by_the_smaller_peer() {
    let mut cluster = Cluster::new(2, quiet());
    let (_, _) = cluster.write(0, b"a", b"1");
    let (_, _) = cluster.write(1, b"b", b"2");
    // Both see each other connect at once: both open a session.
    let from_0 = sends(&cluster.replicas[0].handle(Input::PeerUp { peer: peer(1) }, cluster.now));
    let from_1 = sends(&cluster.replicas[1].handle(Input::PeerUp { peer: peer(0) }, cluster.now));
    assert_eq!((from_0.len(), from_1.len()), (1, 1));
    // Each request reaches the other side.
    let at_0 = cluster.replicas[0]
        .handle(Input::StreamMessage { from: peer(1), session: from_1[0].1, bytes: from_1[0].2.clone() }, cluster.now);
    let at_1 = cluster.replicas[1]
        .handle(Input::StreamMessage { from: peer(0), session: from_0[0].1, bytes: from_0[0].2.clone() }, cluster.now);
    // Peer 0 (the smaller id) refuses peer 1's; peer 1 drops its own and
    // answers peer 0's.
    assert!(sends(&at_0).iter().any(|(to, s, bytes)| *to == 1 && *s == from_1[0].1 && busy(bytes)));
    assert!(at_1.iter().any(|o| matches!(o, Output::CloseSession { session, .. } if *session == from_1[0].1)));
    assert!(
        sends(&at_1)
            .iter()
            .any(|(_, s, bytes)| *s == from_0[0].1
                && matches!(SyncMessage::decode(bytes), Ok(SyncMessage::SyncReply(_))))
    );
}

#[test]
fn a_second_push_while_receiving_is_refused_busy() {
    let mut cluster = Cluster::new(3, quiet());
    cluster.write(1, b"b", b"1");
    cluster.write(2, b"c", b"2");
    // Replica 0 opens a session with 1 (not answered yet: it is receiving).
    let opened = sends(&cluster.replicas[0].handle(Input::PeerUp { peer: peer(1) }, cluster.now));
    assert_eq!(opened.len(), 1);
    // Replica 2, which holds deltas 0 lacks, opens a session with 0.
    let request = sends(&cluster.replicas[2].handle(Input::PeerUp { peer: peer(0) }, cluster.now));
    let answer = cluster.replicas[0].handle(
        Input::StreamMessage { from: peer(2), session: request[0].1, bytes: request[0].2.clone() },
        cluster.now,
    );
    assert!(sends(&answer).iter().any(|(to, _, bytes)| *to == 2 && busy(bytes)), "{answer:?}");
}

#[test]
fn a_silent_peer_is_dropped_after_the_idle_timeout_and_sync_is_retried() {
    let mut cluster = Cluster::new(2, quiet());
    let opened = cluster.replicas[0].handle(Input::PeerUp { peer: peer(1) }, cluster.now);
    assert_eq!(sends(&opened).len(), 1);
    assert_eq!(cluster.replicas[0].session_count(), 1);
    // Nothing ever comes back.
    let idle = Config::default().session_idle_ms;
    assert!(cluster.replicas[0].next_timer_ms() <= cluster.now + idle);
    cluster.now += idle;
    let outputs = cluster.replicas[0].handle(Input::Tick, cluster.now);
    assert!(outputs.iter().any(|o| matches!(o, Output::CloseSession { .. })));
    assert_eq!(cluster.replicas[0].stats().sessions_timed_out, 1);
    // A retry is scheduled within the backoff (and the interval).
    let retry_by = cluster.now + Config::default().sync_interval_ms;
    assert!(cluster.replicas[0].next_timer_ms() <= retry_by);
    cluster.now = retry_by;
    let outputs = cluster.replicas[0].handle(Input::Tick, cluster.now);
    assert_eq!(sends(&outputs).len(), 1, "a new session opened: {outputs:?}");
}

#[test]
fn large_transfers_go_in_bursts_paced_by_continue() {
    let config = Config { burst_pages_max: 2, ..quiet() };
    let mut cluster = Cluster::new(2, config);
    // About 3 MiB of deltas: more than one burst of two 1 MiB pages.
    let value = vec![7u8; 200 * 1024];
    for i in 0..16u32 {
        cluster.write(0, &i.to_le_bytes(), &value);
    }
    let traffic = cluster.connect(1);
    let continues = traffic.messages_from(1).iter().filter(|m| matches!(m, SyncMessage::Continue)).count();
    assert!(continues >= 1, "the receiver paced the sender");
    assert!(cluster.same(0, 1));
    assert_eq!(cluster.replicas[1].stats().duplicates, 0);
}

#[test]
fn catch_up_after_a_restart_is_one_and_a_half_round_trips_and_one_copy() {
    let catch_up = measure_catch_up(300, 5);
    assert_eq!(catch_up.missing, 300);
    assert!(catch_up.round_trips <= 3.0, "{catch_up:?}");
    assert!(catch_up.ratio() <= 1.2, "{catch_up:?}");
}

#[test]
fn a_refused_session_with_the_only_peer_is_retried_after_the_backoff_not_the_interval() {
    let mut cluster = Cluster::new(2, quiet());
    cluster.write(1, b"b", b"1");
    let opened = sends(&cluster.replicas[0].handle(Input::PeerUp { peer: peer(1) }, cluster.now));
    assert_eq!(opened.len(), 1);
    // The peer is busy (say, receiving from someone else) and refuses.
    let refusal = error_reply(ErrorCode::Busy, "already syncing").encode();
    let outputs = cluster.replicas[0]
        .handle(Input::StreamMessage { from: peer(1), session: opened[0].1, bytes: refusal }, cluster.now);
    assert!(outputs.iter().any(|o| matches!(o, Output::CloseSession { .. })), "the refusal arrived: {outputs:?}");
    assert_eq!(cluster.replicas[0].session_count(), 0);
    // The retry comes within the backoff, well before `sync_interval_ms`:
    // an attempt the peer refused is not a sync with it.
    let retry_by = cluster.now + RETRY_BACKOFF_MIN_MS + RETRY_BACKOFF_SPREAD_MS;
    assert!(retry_by < cluster.now + Config::default().sync_interval_ms);
    assert!(cluster.replicas[0].next_timer_ms() <= retry_by);
    cluster.now = retry_by;
    let retried = sends(&cluster.replicas[0].handle(Input::Tick, cluster.now));
    assert_eq!(retried.len(), 1, "a new session opened within the backoff");
    assert_eq!(index(&peer(1)), retried[0].0);
}

/// Anti-entropy every 10 s, growing to 80 s while idle.
fn idling() -> Config {
    Config { sync_frequency_ms: 10_000, sync_idle_max_ms: 80_000, ..Config::default() }
}

/// Advance `cluster` by `ms` in steps of one second.
fn run_for(cluster: &mut Cluster, ms: u64) {
    for _ in 0..ms / 1_000 {
        cluster.advance(1_000);
    }
}

/// Advance in steps of one second until `a` and `b` match; the time taken.
fn ms_until_same(cluster: &mut Cluster, a: usize, b: usize, limit_ms: u64) -> Option<u64> {
    let mut waited = 0;
    while !cluster.same(a, b) {
        if waited >= limit_ms {
            return None;
        }
        cluster.advance(1_000);
        waited += 1_000;
    }
    Some(waited)
}

#[test]
fn an_idle_pair_syncs_at_the_idle_period_and_a_write_brings_the_base_period_back() {
    let mut cluster = Cluster::connected(2, idling());
    assert!(cluster.same(0, 1));
    // Settle: every session finds the two replicas matched.
    run_for(&mut cluster, 600_000);
    let before = cluster.replicas[0].stats().syncs_started + cluster.replicas[1].stats().syncs_started;
    run_for(&mut cluster, 800_000);
    let idle = cluster.replicas[0].stats().syncs_started + cluster.replicas[1].stats().syncs_started - before;
    // Two replicas at the base period would open 160 sessions in 800 s; at
    // 80 s, about 20.
    assert!(idle > 0, "idle replicas still sync now and then");
    assert!(idle <= 24, "{idle} sessions in 800 s of idling");

    // A write whose gossip is lost still reaches the peer within a few
    // base periods, in either direction.
    cluster.write(0, b"lost", b"1");
    assert!(!cluster.same(0, 1), "the write arrived");
    let waited = ms_until_same(&mut cluster, 0, 1, 200_000).expect("the lost write is repaired");
    assert!(waited <= 20_000, "repaired after {waited} ms");
    run_for(&mut cluster, 600_000);
    cluster.write(1, b"lost-too", b"2");
    assert!(!cluster.same(0, 1), "the write arrived");
    let waited = ms_until_same(&mut cluster, 0, 1, 200_000).expect("the lost write is repaired");
    assert!(waited <= 20_000, "repaired after {waited} ms");
}

/// Whatever the moment of the write within the idle replicas' periods.
#[test]
fn an_idle_replica_gets_what_it_missed_from_a_peer_that_applied_it() {
    let mut slowest = 0;
    for offset_s in [0, 7, 19, 31, 43, 59, 67, 73] {
        let mut cluster = Cluster::connected(3, idling());
        run_for(&mut cluster, 600_000 + offset_s * 1_000);
        // 2 writes; only 1 gets the gossip; 0 has idled for ten minutes.
        let (_, bytes) = cluster.write(2, b"k", b"v");
        cluster.gossip(2, 1, &bytes);
        assert!(cluster.same(1, 2) && !cluster.same(0, 2), "the gossip reached 1 only");
        let waited = ms_until_same(&mut cluster, 0, 2, 200_000).expect("0 catches up");
        slowest = slowest.max(waited);
    }
    assert!(slowest <= 30_000, "0 caught up after {slowest} ms at worst");
}
