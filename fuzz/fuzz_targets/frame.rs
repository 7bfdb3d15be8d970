//! Length-prefixed frames: splitting and whole-frame decoding never panic,
//! and an accepted frame re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_primitives::encoding::{FRAME_BYTES_MAX, decode_frame, encode_frame, split_frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((payload, rest))) = split_frame(data, FRAME_BYTES_MAX) {
        let again = encode_frame(payload).unwrap_or_default();
        assert_eq!(&again[..], &data[..data.len() - rest.len()]);
    }
    let _ = decode_frame(data, 1024);
});
