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
        let nodes: std::collections::HashMap<_, _> = rows.node_rows.into_iter().collect();
        let chunks: std::collections::HashMap<_, _> = rows.chunk_rows.into_iter().collect();
        let mut level = rows.top.clone();
        let mut lists: Vec<Vec<_>> = Vec::new();
        for _ in 0..weft_text::TEXT_NODE_LEVELS {
            let mut next = Vec::new();
            for hash in &level {
                let children = nodes.get(hash).cloned().flatten().expect("a node row of the document's own rows");
                next.extend(children.iter().copied());
                lists.push(children);
            }
            level = next;
        }
        let bytes: Vec<Vec<u8>> =
            level.iter().map(|h| chunks.get(h).cloned().flatten().expect("a chunk row of the document's own rows")).collect();
        match TextDoc::from_rows(&rows.top, &lists, &bytes) {
            Ok(loaded) => assert_eq!(loaded.content_hash(), doc.content_hash(), "rows load another document"),
            Err(error) => panic!("a document's own rows do not load: {error}"),
        }
    }
    // The same bytes as chunk rows (split at 0xff bytes): an error or a
    // document, never a panic.
    let pieces: Vec<Vec<u8>> = data.split(|b| *b == 0xff).map(<[u8]>::to_vec).collect();
    let _ = TextDoc::from_rows(&[], &[], &pieces);
});
