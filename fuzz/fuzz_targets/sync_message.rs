//! `/weft/sync/1` protocol messages from a peer
//! (`weft_sync::protocol::SyncMessage::decode`), and the deltas a page
//! carries (`SignedDelta::decode`). Asserts: no panic; an accepted message
//! is a canonical encoding (re-encodes to the input) and keeps every bound
//! the decoder checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_sync::SignedDelta;
use weft_sync::protocol::{HEADS_MAX, HINTS_MAX, REQUEST_IDS_MAX, SyncMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = SyncMessage::decode(data) else { return };
    weft_fuzz::canonical("SyncMessage", data, &message, &message.encode());
    match &message {
        SyncMessage::SyncRequest(request) => {
            assert!(request.summary.heads.len() <= HEADS_MAX && request.summary.hints.len() <= HINTS_MAX)
        }
        SyncMessage::SyncReply(reply) => {
            assert!(reply.summary.heads.len() <= HEADS_MAX && reply.summary.hints.len() <= HINTS_MAX)
        }
        SyncMessage::GetDeltas(get) => assert!(get.ids.len() <= REQUEST_IDS_MAX),
        SyncMessage::Deltas(page) => {
            for bytes in &page.deltas {
                if let Ok(delta) = SignedDelta::decode(bytes) {
                    weft_fuzz::canonical("SignedDelta in a page", bytes, &delta, &delta.encode());
                }
            }
        }
        _ => {}
    }
});
