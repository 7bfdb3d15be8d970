//! Local edits on one replica behave like edits of a plain `Vec<char>`.

use proptest::prelude::*;
use weft_primitives::PublicKey;

use crate::{TextDoc, TextOp};

const AUTHORS: [PublicKey; 2] = [PublicKey([9; 32]), PublicKey([4; 32])];

#[derive(Clone, Debug)]
enum Edit {
    Insert { author: usize, pos: usize, text: String },
    Delete { pos: usize, len: usize },
    Slice { pos: usize, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop::collection::vec(prop::sample::select(vec!['x', 'y', 'z', 'ß', '\n']), 1..5)
        .prop_map(|chars| chars.into_iter().collect::<String>());
    prop_oneof![
        5 => (0..2usize, any::<usize>(), text).prop_map(|(author, pos, text)| Edit::Insert { author, pos, text }),
        3 => (any::<usize>(), 1..6usize).prop_map(|(pos, len)| Edit::Delete { pos, len }),
        1 => (any::<usize>(), 0..8usize).prop_map(|(pos, len)| Edit::Slice { pos, len }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Inserts, deletes and slices at random positions match a `Vec<char>`; the
    /// ops they return rebuild the same document on a fresh replica; the final
    /// state survives encode/decode.
    #[test]
    fn local_edits_match_a_vec_of_chars(edits in prop::collection::vec(edit(), 1..200)) {
        let mut doc = TextDoc::new();
        let mut model: Vec<char> = Vec::new();
        let mut ops: Vec<TextOp> = Vec::new();
        for edit in edits {
            match edit {
                Edit::Insert { author, pos, text } => {
                    let pos = pos % (model.len() + 1);
                    ops.push(doc.insert(AUTHORS[author], pos, &text).unwrap());
                    model.splice(pos..pos, text.chars());
                }
                Edit::Delete { pos, len } => {
                    if model.is_empty() {
                        continue;
                    }
                    let pos = pos % model.len();
                    let len = len.min(model.len() - pos);
                    ops.push(doc.delete(AUTHORS[0], pos, len).unwrap());
                    model.drain(pos..pos + len);
                }
                Edit::Slice { pos, len } => {
                    let pos = pos % (model.len() + 1);
                    let len = len.min(model.len() - pos);
                    prop_assert_eq!(doc.slice(pos, len).unwrap(), model[pos..pos + len].iter().collect::<String>());
                }
            }
            prop_assert_eq!(doc.len_chars(), model.len());
        }
        let expected: String = model.iter().collect();
        prop_assert_eq!(doc.to_string(), expected.clone());

        let mut remote = TextDoc::new();
        for op in &ops {
            remote.apply(op).unwrap();
        }
        prop_assert_eq!(remote.to_string(), expected);
        prop_assert_eq!(remote.content_hash(), doc.content_hash());

        let decoded = TextDoc::decode(&doc.encode()).unwrap();
        prop_assert_eq!(decoded.content_hash(), doc.content_hash());
        prop_assert_eq!(decoded.encode(), doc.encode());
    }

    /// Decoding corrupted encodings returns an error or a valid document whose
    /// encoding is exactly the input; it never panics.
    #[test]
    fn decode_of_corrupted_bytes_never_panics(
        edits in prop::collection::vec(edit(), 1..30),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let mut doc = TextDoc::new();
        for edit in edits {
            match edit {
                Edit::Insert { author, pos, text } => {
                    let pos = pos % (doc.len_chars() + 1);
                    doc.insert(AUTHORS[author], pos, &text).unwrap();
                }
                Edit::Delete { pos, len } if doc.len_chars() > 0 => {
                    let pos = pos % doc.len_chars();
                    doc.delete(AUTHORS[1], pos, len.min(doc.len_chars() - pos)).unwrap();
                }
                _ => {}
            }
        }
        let mut bytes = doc.encode();
        for (at, xor) in flips {
            let at = at % bytes.len();
            bytes[at] ^= xor;
        }
        bytes.truncate(bytes.len() - cut % 3);
        if let Ok(decoded) = TextDoc::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }
}
