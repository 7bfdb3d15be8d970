//! State actions from a delta payload (`weft_state::Action::decode`).
//! Asserts: no panic; decoding is canonical (an accepted input re-encodes
//! to itself, as `Action::decode` promises); applying a decoded action to
//! an empty state either merges or fails with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_primitives::kv::MemoryKv;
use weft_state::{Action, apply_actions};

fuzz_target!(|data: &[u8]| {
    let Ok(action) = Action::decode(data) else { return };
    weft_fuzz::canonical("Action", data, &action, &action.encode());
    let kv = MemoryKv::new();
    let author = action.stamp.author;
    let _ = apply_actions(&kv, &weft_primitives::Hash::ZERO, &author, &[action]);
});
