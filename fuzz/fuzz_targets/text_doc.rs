//! Persisted text documents (`weft_text::TextDoc::decode`, state rows on
//! disk). Asserts: no panic; the decoder accepts exactly canonical
//! encodings, so an accepted input re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_text::TextDoc;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = TextDoc::decode(data) {
        weft_fuzz::canonical("TextDoc", data, &doc.content_hash(), &doc.encode());
    }
});
