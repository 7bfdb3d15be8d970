//! Persisted or snapshotted text documents: decoding never panics, and a
//! decoded document re-encodes canonically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_text::TextDoc;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = TextDoc::decode(data) {
        let again = TextDoc::decode(&doc.encode()).map(|d| d.content_hash());
        assert_eq!(again.ok(), Some(doc.content_hash()));
    }
});
