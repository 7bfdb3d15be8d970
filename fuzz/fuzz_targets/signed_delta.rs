//! Signed deltas from gossip, a sync page or a stored row
//! (`weft_sync::SignedDelta::decode`), the membership changes their events
//! carry (`MembershipChange::decode`, `membership_changes`), and the
//! handler jobs a node derives from them. Asserts: no panic; both decoders
//! are canonical (an accepted input re-encodes to itself); verification
//! refuses with an error, never a panic; the DAG's form of a delta
//! (`encode_causal`) encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_sync::delta::encode_causal;
use weft_sync::membership::membership_changes;
use weft_sync::{MembershipChange, SignedDelta};

fuzz_target!(|data: &[u8]| {
    if let Ok(change) = MembershipChange::decode(data) {
        weft_fuzz::canonical("MembershipChange", data, &change, &change.encode());
    }
    let Ok(delta) = SignedDelta::decode(data) else { return };
    weft_fuzz::canonical("SignedDelta", data, &delta, &delta.encode());
    let _ = delta.verify(&weft_primitives::Hash::ZERO);
    let _ = membership_changes(&delta.author, &delta.events);
    for event in &delta.events {
        if let Ok(change) = MembershipChange::decode(&event.data) {
            weft_fuzz::canonical("MembershipChange in an event", &event.data, &change, &change.encode());
        }
    }
    let causal = delta.into_causal();
    weft_fuzz::canonical("SignedDelta from the DAG", data, &causal.id, &encode_causal(&causal));
});
