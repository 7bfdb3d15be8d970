//! Persisted text documents: the whole-document encoding
//! (`weft_text::TextDoc::decode`) and the chunk rows a text is stored as
//! (`TextDoc::from_rows`). Asserts: no panic; the decoder accepts exactly
//! canonical encodings, so an accepted input re-encodes to itself; an
//! accepted document's rows load back to the same document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_text::TextDoc;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut doc) = TextDoc::decode(data) {
        weft_fuzz::canonical("TextDoc", data, &doc.content_hash(), &doc.encode());
        doc.track_rows();
        let rows = doc.take_rows();
        let groups: std::collections::HashMap<_, _> = rows.group_rows.into_iter().collect();
        let chunks: std::collections::HashMap<_, _> = rows.chunk_rows.into_iter().collect();
        let lists: Vec<Vec<_>> = rows.groups.iter().filter_map(|g| groups.get(g).cloned().flatten()).collect();
        let bytes: Vec<Vec<u8>> = lists.iter().flatten().filter_map(|c| chunks.get(c).cloned().flatten()).collect();
        match TextDoc::from_rows(&rows.groups, &lists, &bytes) {
            Ok(loaded) => assert_eq!(loaded.content_hash(), doc.content_hash(), "rows load another document"),
            Err(error) => panic!("a document's own rows do not load: {error}"),
        }
    }
    // The same bytes as chunk rows (split at 0xff bytes): an error or a
    // document, never a panic.
    let pieces: Vec<Vec<u8>> = data.split(|b| *b == 0xff).map(<[u8]>::to_vec).collect();
    let _ = TextDoc::from_rows(&[], &[], &pieces);
});
