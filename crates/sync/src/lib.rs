//! Weft's replication of one context, as a sans-IO state machine.
//!
//! A [`Replica`] is everything one node does to keep one context's replica in
//! step with the other members: it verifies and applies signed deltas
//! ([`delta`]), fetches missing parents, runs anti-entropy over the
//! `/weft/sync/1` stream protocol ([`protocol`]), and detects divergence. It
//! does no I/O: no sockets, no clocks, no threads, no unseeded randomness.
//! The node's driver feeds it [`Input`]s with the current time and carries
//! out its [`Output`]s; state and deltas persist through the
//! [`ReplicaStore`] seam. The `sim` feature adds a deterministic network
//! simulator (`sim` module) that drives many replicas through loss,
//! duplication, reordering, partitions and crashes.
//!
//! # The receive path
//!
//! A delta from gossip, a sync page or a parent answer is checked before the
//! DAG sees it: size (≤ [`DELTA_BYTES_MAX`]), strict decode, id = content
//! hash (a known id is then a free duplicate), parents, the membership
//! changes it carries, membership of the author (when its parents are all
//! applied; otherwise decided when it applies, see below), signature, clock
//! drift. Each failure is its own [`DeltaRejection`] variant and penalizes
//! the sender. The DAG applies a
//! delta whose parents are applied (natively: `weft_state::apply_actions`,
//! committed with the delta row in one store write; a delta whose actions
//! name an entity, element or text item not here yet waits for the delta
//! that creates it, see ARCHITECTURE.md "Validity rule") and cascades its waiting
//! children; otherwise the delta is buffered (and persisted as pending) and
//! its missing parents are requested **at once** from the peer that sent it,
//! then from other members: batched per peer, bounded in ids per request,
//! requests in flight, attempts and time; chains deeper than a few rounds,
//! and wants that failed everywhere, escalate to anti-entropy. A periodic
//! sweep evicts stale pending deltas, retries stalled ones and re-requests
//! any missing parent nobody is fetching: a pending delta is never a dead
//! end.
//!
//! # Local writes and restarts
//!
//! A write is prepared against the persisted state ([`Replica::prepare_write`]
//! runs a `StateTxn`; the node runs the WASM runtime over
//! [`Replica::write_base`]) and committed with [`Input::LocalWrite`]: if
//! the state moved in between it is refused as stale; otherwise it becomes
//! a signed delta whose parents are the heads (at most 64), its state
//! writes and delta row are committed in one store write *before* the DAG
//! records it, and only then come [`Output::WriteCommitted`] (acknowledge),
//! [`Output::Publish`] (always — never gated on gossip mesh peers; repair
//! does not depend on gossip) and [`Output::Applied`].
//!
//! A restart is [`Replica::new`] over the store a stopped or crashed replica
//! left: the DAG, apply order and clock are rebuilt from the applied rows
//! (without re-applying them: state and rows commit atomically), the
//! persisted pending deltas are buffered again, and anti-entropy starts as
//! soon as a peer connects.
//!
//! # Membership
//!
//! Who may write is part of the history: a membership change is a signed
//! delta whose events include a [`MembershipChange`] (kind
//! [`MEMBERSHIP_EVENT_KIND`], built with [`Event::membership`]), applied by
//! every replica in apply order ([`membership`] has the rules). The initial
//! members are [`ReplicaParams::members`]; any member may `Add` another
//! identity (with an invitation), a member may `Leave` by itself, an admin
//! (an initial member) may `Remove` a non-initial member, and any member may
//! `Rotate` the group key into a new epoch. A delta's author
//! must be a member at the delta's causal point: in the member set of its
//! causal past alone (the join of its parents' sets, kept per applied
//! delta), whatever else was applied first. A delta whose parents are all
//! applied is judged at once; one whose parents
//! are missing may be by an author admitted in a delta not seen yet, so it
//! waits (at most [`replica::UNVETTED_PENDING_MAX`] of them) and is judged
//! when it applies — refused for good (never retried) if the author is not
//! a member then. A write is refused unless the local identity is a member
//! now. [`Replica::members`] and [`Replica::is_member`] read the set;
//! [`Output::MembersChanged`] reports each change made by applying deltas
//! (not by restoring them: a restart rebuilds the same set silently from
//! the persisted rows).
//!
//! # Anti-entropy and reconciliation
//!
//! Every `sync_frequency_ms` (10 s) a replica opens a session with a random
//! connected member (never twice within `sync_interval_ms`, 5 s, with a
//! peer that answered; a refused or broken attempt is retried after 0.25 to
//! 2.25 s; each session bounded by `sync_timeout_ms`, 30 s). An idle
//! replica — every connected peer matched its heads and root since it last
//! applied anything — doubles its period up to `sync_idle_max_ms`, 160 s
//! (`replica/timers.rs` says why repair is not delayed). The goal is bytes
//! proportional to the difference between the two delta sets, not to the
//! history, in as few round trips as possible.
//!
//! **Summaries.** Each side describes what it has with a [`protocol::Summary`]:
//! its root hash, its heads, and its *have hints* — the ids of its deltas at
//! exponentially spaced positions back along its apply order (offsets 1, 2,
//! 3, 4, 6, 8, 12, 16, … from the end: about 2·log2(n) ids, at most
//! [`protocol::HINTS_MAX`]). Having a delta means having all its ancestors,
//! so every id of the summary that the other side also holds stands for a
//! whole down-closed part of the DAG.
//!
//! **What to send.** Given a peer's summary, a replica sends its applied
//! deltas that are neither in the peer's known heads and hints nor ancestors
//! of them (`DagStore::deltas_missing_for`, which walks down from both
//! frontiers at once and stops where they meet: its cost follows the
//! difference). They go in apply order, which is causal, so the receiver
//! never buffers them.
//!
//! **The exchange.**
//! 1. Initiator → `SyncRequest { version, context, summary }`.
//! 2. Responder → `SyncReply { summary, has_your_heads }`. If it holds all
//!    of the initiator's heads, the initiator has nothing it lacks: it says
//!    so (`has_your_heads`) and streams what the initiator lacks at once —
//!    exactly that, since the initiator's heads cover everything it has.
//!    Otherwise it *defers* its stream until step 3 is over.
//! 3. Initiator, on the reply, unless `has_your_heads` → streams what the
//!    responder lacks, computed from the responder's summary. If it holds
//!    the responder's heads this is exact; if not (both sides wrote
//!    concurrently), the known hints bound the overshoot: the extra deltas
//!    are those the responder already has that come after the newest hint
//!    the initiator knows — about 1.5 times the responder's own novel
//!    suffix at most, whatever the history length.
//! 4. Responder, once the initiator's last page is in and its stream was
//!    deferred → now holds the initiator's heads, so streams exactly what
//!    the initiator lacks.
//!
//! A replica that is simply behind (after a partition or a restart) gets
//! exactly what it lacks, nothing twice, in **one round trip** when it
//! initiates (request; reply and pages), and in one and a half when its
//! peer initiates (request; reply; pages). With concurrent writes on both
//! sides a session takes two round trips and only the initiator's push can
//! overshoot, bounded as above. Around the deltas travel a few hundred
//! bytes of summaries plus a 4-byte length per delta and per page, so the
//! wire cost of a catch-up is the missing deltas' own size plus about 1 %;
//! the simulator measures it.
//!
//! **One bulk inflow at a time.** When a replica reconnects, every peer may
//! open a session with it at once, and each would send it the same
//! deltas. So a replica refuses (`Busy`) a session in which the peer would
//! push to it while another session may still stream deltas to it, and
//! starts no session of its own meanwhile; two replicas that open sessions
//! with each other at the same moment keep the one opened by the smaller
//! peer id. Refused, broken and timed-out sessions are retried after a
//! random backoff of 0.25–2.25 s, with another peer if the interval
//! forbids the same one.
//!
//! **Pages and bursts.** Deltas travel in [`protocol::DeltaPage`]s of at
//! most [`protocol::PAGE_BYTES_MAX`] bytes (far below the 8 MiB frame); after
//! `burst_pages_max` pages the sender waits for the receiver's `Continue`,
//! so a session never buffers more than a burst.
//!
//! **Divergence.** The `SyncRequest` doubles as the heartbeat `(root hash,
//! heads)`: whenever a side sees the other's heads equal its own, it
//! compares root hashes. Equal heads mean equal applied sets, so a different
//! root hash is a bug in merge or hashing: [`Output::Diverged`] reports it
//! loudly (with our root recomputed from scratch, to tell which side is
//! off). A replica reports [`Output::InSync`] only when the root hash it
//! computed from its own state equals the peer's; it never adopts a peer's
//! hash.
//!
//! **Parent requests.** `GetDeltas { ids }` (at most
//! [`protocol::REQUEST_IDS_MAX`]) is answered by pages of the deltas held
//! (applied or pending), then `NotFound { ids }` for unknown ids. A delta
//! whose payload was pruned from memory ([`Config::history_kept_max`]) is
//! read back from the [`ReplicaStore`] and verified before it is sent;
//! only one the store cannot give back intact is answered
//! `PrunedHistory { ids }` (anti-entropy too), and the receiver reports
//! [`Output::SnapshotNeeded`]. A delta forgotten entirely
//! ([`Config::history_remembered_max`]: its id, links and row are gone,
//! the store keeps only its member point) is answered `PrunedHistory` at
//! once, and so is an anti-entropy peer that lacks any of the forgotten
//! part; a forgotten delta still counts as applied for everything else
//! (parents, duplicates, membership at its point).
//!
//! **Versioning.** The stream protocol id is [`protocol::PROTOCOL_ID`]
//! (`/weft/sync/1`); session-opening requests carry
//! [`protocol::PROTOCOL_VERSION`]; an unknown message tag is answered with
//! an explicit `Error { UnknownTag }`.
//!
//! # Limits
//!
//! | limit | value | constant |
//! |---|---|---|
//! | encoded delta | 1 MiB | [`DELTA_BYTES_MAX`] |
//! | parents per delta | 64 | [`delta::PARENTS_MAX`] |
//! | events per delta | 1 024 | [`delta::EVENTS_PER_DELTA_MAX`] |
//! | heads / hints in a summary | 4096 / 128 | [`protocol::HEADS_MAX`], [`protocol::HINTS_MAX`] |
//! | ids per parent request / answer | 256 | [`protocol::REQUEST_IDS_MAX`] |
//! | bytes of deltas per page | 1 MiB | [`protocol::PAGE_BYTES_MAX`] |
//! | pages per burst | 8 | [`Config::burst_pages_max`] |
//! | threads checking a page's signatures | 1 (the node: its cores) | [`Config::verify_threads`] |
//! | fewest deltas checked on threads | 64 | [`replica::PARALLEL_VERIFY_MIN`] |
//! | sessions opened by peers | 16 | [`Config::inbound_sessions_max`] |
//! | anti-entropy sessions we run | 1 | [`Config::outbound_syncs_max`] |
//! | sessions streaming bulk deltas to us | 1 | (rule: `Busy` refusals) |
//! | parent requests in flight | 8 | [`Config::parent_requests_in_flight_max`] |
//! | wanted parents | pending bound (10 000) | `Config::dag_limits.pending_max` |
//! | remembered unappliable ids | 1024 | [`replica::REJECTED_IDS_MAX`] |
//! | pending deltas by non-members | 1024 | [`replica::UNVETTED_PENDING_MAX`] |
//! | pending bytes, all authors | 64 MiB | [`replica::PENDING_BYTES_MAX`] |
//! | pending deltas / bytes of one author | 2,500 / 16 MiB | [`replica::PENDING_AUTHOR_DELTAS_MAX`], [`replica::PENDING_AUTHOR_BYTES_MAX`] |
//! | remembered ended sessions | 1024 | [`replica::ENDED_SESSIONS_MAX`] |
//! | session lifetime / silence | 30 s / 5 s | [`Config::sync_timeout_ms`], [`Config::session_idle_ms`] |
//! | parent request lifetime, attempts, depth | 5 s, 3, 3 | [`Config::parent_request_timeout_ms`], `…_attempts_max`, `…_depth_max` |
//!
//! # Driver loop
//!
//! Two replicas, one write, gossip lost: anti-entropy repairs it.
//!
//! ```
//! use weft_primitives::{Hash, SigningKey};
//! use weft_state::root_id;
//! use weft_sync::{Config, Input, MemoryStore, Output, PeerId, Replica, ReplicaParams};
//!
//! let keys = [SigningKey::from_seed([1; 32]), SigningKey::from_seed([2; 32])];
//! let members: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
//! let peer = |i: u8| PeerId([i; 32]);
//! let mut replicas: Vec<Replica<MemoryStore>> = (0..2u8)
//!     .map(|i| {
//!         let params = ReplicaParams {
//!             context: Hash::of(b"context"),
//!             genesis: Hash::of(b"genesis"),
//!             local_peer: peer(i),
//!             identity: keys[usize::from(i)].clone(),
//!             members: members.clone(),
//!             config: Config::default(),
//!             rng_seed: u64::from(i),
//!             store: MemoryStore::new(),
//!         };
//!         Replica::new(params, 0)
//!     })
//!     .collect::<Result<_, _>>()?;
//! let mut now = 1_000;
//! replicas[0].handle(Input::PeerUp { peer: peer(1) }, now);
//! replicas[1].handle(Input::PeerUp { peer: peer(0) }, now);
//!
//! // A local write: prepare against the state, commit as an input.
//! let write = replicas[0].prepare_write(7, now, |txn| {
//!     txn.map_insert(root_id(), b"greeting", b"hello")?;
//!     Ok(Vec::new())
//! })?;
//! let outputs = replicas[0].handle(Input::LocalWrite(write), now);
//! assert!(outputs.iter().any(|o| matches!(o, Output::WriteCommitted { token: 7, .. })));
//! // (The driver would publish `Output::Publish`; here gossip is lost.)
//!
//! // Time passes; timers open an anti-entropy session; the driver carries
//! // `Send` outputs to the other replica as `StreamMessage` inputs.
//! let mut inbox: Vec<(usize, Input)> = Vec::new();
//! for _ in 0..100 {
//!     now = replicas.iter().map(|r| r.next_timer_ms()).min().unwrap_or(now).max(now);
//!     for i in 0..2 {
//!         inbox.push((i, Input::Tick));
//!     }
//!     while let Some((i, input)) = inbox.pop() {
//!         for output in replicas[i].handle(input, now) {
//!             if let Output::Send { to, session, bytes } = output {
//!                 let from = replicas[i].local_peer();
//!                 inbox.push((usize::from(to.0[0]), Input::StreamMessage { from, session, bytes }));
//!             }
//!         }
//!     }
//!     if replicas[0].heads() == replicas[1].heads() {
//!         break;
//!     }
//! }
//! assert_eq!(replicas[0].heads(), replicas[1].heads());
//! assert_eq!(replicas[0].root_hash(), replicas[1].root_hash());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod delta;
pub mod membership;
pub mod protocol;
pub mod replica;
mod seeded_rng;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;

pub use config::{Config, HISTORY_KEPT_MAX_DEFAULT};
pub use delta::{DELTA_BYTES_MAX, DeltaPayload, DeltaRejection, Event, SignedDelta};
pub use membership::{
    InvitationUse, KeyEpoch, MEMBERSHIP_EVENT_KIND, MemberSet, MembershipChange, MembershipError,
    RESERVED_EVENT_KIND_PREFIX, ROTATION_WRAP_BYTES_MAX, is_reserved_event_kind,
};
pub use replica::{
    AppliedDelta, Input, Offense, Output, PeerId, PreparedWrite, Replica, ReplicaParams, ReplicaStats, RestoreError,
    SessionId, Verdict, WriteBase, WriteError,
};
pub use seeded_rng::SeededRng;
pub use store::{AppliedRow, ForgetStep, ForgottenHistory, MemoryStore, ReplicaStore, StoreError};
