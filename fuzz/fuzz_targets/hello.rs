//! What a node reads on a `/weft/sync/1` stream before the sync protocol
//! (`weft_node::wire`): the first frame of any stream (`StreamHello`,
//! including a `JoinHello` with its invitation), a responder's `SyncAccept`,
//! and the answers a joiner or an asker reads (`JoinChallenge`, `JoinReply`,
//! `DirectoryReply`), with a granted directory merged into a peer book as
//! the node does. Asserts: no panic; every decoder is canonical (an
//! accepted input re-encodes to itself); a decoded directory is within its
//! bounds and merging it keeps the book's bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_node::peers::{DIRECTORY_ENTRIES_MAX, PEER_ADDRS_KEPT_MAX, PeerBook};
use weft_node::wire::{DirectoryReply, JoinChallenge, JoinReply, StreamHello, SyncAccept};
use weft_primitives::Hash;

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = StreamHello::decode(data) {
        weft_fuzz::canonical("StreamHello", data, &hello, &hello.encode());
    }
    if let Ok(accept) = SyncAccept::decode(data) {
        weft_fuzz::canonical("SyncAccept", data, &accept, &accept.encode());
    }
    if let Ok(challenge) = JoinChallenge::decode(data) {
        weft_fuzz::canonical("JoinChallenge", data, &challenge, &challenge.encode());
    }
    if let Ok(reply) = JoinReply::decode(data) {
        weft_fuzz::canonical("JoinReply", data, &reply, &reply.encode());
    }
    if let Ok(reply) = DirectoryReply::decode(data) {
        weft_fuzz::canonical("DirectoryReply", data, &reply, &reply.encode());
        if let DirectoryReply::Granted { entries, .. } = &reply {
            assert!(entries.len() <= DIRECTORY_ENTRIES_MAX);
            let context = Hash([3; 32]);
            let mut book = PeerBook::default();
            book.merge_directory(context, entries, &[1; 32]);
            for entry in book.directory(&context, &[1; 32]) {
                let record = book.get(&entry.node).map(|r| r.addrs.len());
                assert!(record.is_some_and(|n| n <= PEER_ADDRS_KEPT_MAX));
            }
        }
    }
});
