//! Length-prefixed frames (u32 BE), as `weft_primitives::encoding` splits
//! them and as a `/weft/sync/1` stream reader (`weft_net::read_frames`)
//! reads them from a peer. Asserts: no panic; an accepted frame re-encodes
//! to the same bytes; the stream reader delivers exactly the frames
//! `split_frame` finds, and ends with the error the leftover bytes call for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_net::{NetError, read_frames};
use weft_primitives::encoding::{DecodeError, FRAME_BYTES_MAX, decode_frame, encode_frame, split_frame};

fuzz_target!(|data: &[u8]| {
    let _ = decode_frame(data, 1024);
    // A small limit (as for a stranger's hello) and the real one.
    let small = usize::from(data.first().copied().unwrap_or(0));
    for max in [small, FRAME_BYTES_MAX] {
        let (frames, end) = read_frames(data, max);
        let mut rest = data;
        for frame in &frames {
            let Ok(Some((payload, after))) = split_frame(rest, max) else {
                panic!("the stream reader read a frame split_frame refuses");
            };
            assert_eq!(payload, &frame[..]);
            let again = encode_frame(payload).unwrap_or_default();
            weft_fuzz::canonical("frame", &rest[..rest.len() - after.len()], &payload.len(), &again);
            rest = after;
        }
        match (split_frame(rest, max), end) {
            (Ok(None), NetError::StreamClosed) => assert!(rest.is_empty()),
            (Ok(None), NetError::TruncatedFrame { .. }) => assert!(!rest.is_empty()),
            (Err(DecodeError::FrameTooLarge { len, .. }), NetError::FrameTooLarge { len: got, .. }) => {
                assert_eq!(len, got)
            }
            (split, end) => panic!("split_frame says {split:?} where the stream reader ends with {end}"),
        }
    }
});
