//! State actions from a delta payload: decoding never panics, and applying a
//! decoded action to an empty state either merges or fails with an error,
//! leaving nothing half-written (the result is a WriteSet or nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_primitives::kv::MemoryKv;
use weft_state::{Action, apply_actions};

fuzz_target!(|data: &[u8]| {
    let Ok(action) = Action::decode(data) else { return };
    let kv = MemoryKv::new();
    let author = action.stamp.author;
    let _ = apply_actions(&kv, &author, &[action]);
});
