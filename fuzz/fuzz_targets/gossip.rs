//! Sealed gossip from a context's topic (`weft_membership::open_gossip`),
//! its gossipsub message id (`weft_net::message_id`), and the node's check
//! of what opens (`SignedDelta::decode`, claimed id = real id). Asserts: no
//! panic; raw bytes (a stranger's forgery) never open under the group key;
//! the same bytes sealed by a member open to exactly what was sealed, a
//! flipped byte makes them fail, and sealing is deterministic (so the
//! message id names the delta).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_membership::{GroupKey, open_gossip, seal_gossip};
use weft_net::message_id;
use weft_primitives::Hash;
use weft_sync::SignedDelta;

const CONTEXT: Hash = Hash([3; 32]);

fuzz_target!(|data: &[u8]| {
    weft_fuzz::init();
    let key = GroupKey::from_bytes([5; 32]);
    let _ = message_id(data);
    assert!(open_gossip(&key, &CONTEXT, data).is_err(), "unsealed bytes opened under the group key");

    let id = SignedDelta::decode(data).map(|delta| delta.id).unwrap_or_else(|_| Hash::of(data));
    let Ok(sealed) = seal_gossip(&key, &CONTEXT, &id, data) else { return };
    assert_eq!(seal_gossip(&key, &CONTEXT, &id, data).ok().map(|again| message_id(&again)), Some(message_id(&sealed)));
    let Ok((claimed, plain)) = open_gossip(&key, &CONTEXT, &sealed) else {
        panic!("a sealed message does not open");
    };
    assert_eq!((claimed, &plain[..]), (id, data));
    // What the node accepts: a delta whose real id is the claimed one.
    let _ = SignedDelta::decode(&plain).is_ok_and(|delta| delta.id == claimed);
    let mut tampered = sealed;
    let at = usize::from(data.first().copied().unwrap_or(0)) % tampered.len();
    tampered[at] ^= 1;
    assert!(open_gossip(&key, &CONTEXT, &tampered).is_err(), "a tampered message opened");
});
