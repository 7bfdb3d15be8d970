//! Text ops from the wire (`weft_text::TextOp`, strict borsh). Asserts: no
//! panic; decoding is canonical; applying an op to a small document either
//! succeeds or errors without changing the document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_primitives::{PublicKey, encoding};
use weft_text::{TextDoc, TextOp};

fuzz_target!(|data: &[u8]| {
    let Ok(op) = encoding::decode::<TextOp>(data) else { return };
    weft_fuzz::canonical("TextOp", data, &op, &encoding::encode(&op));
    let mut doc = TextDoc::new();
    let _ = doc.insert(PublicKey([1; 32]), 0, "hello");
    let before = doc.content_hash();
    if doc.apply(&op).is_err() {
        assert_eq!(doc.content_hash(), before, "a rejected op changes nothing");
    }
});
