//! Canonical encoding: borsh values, and u32-BE length-prefixed frames.
//!
//! Guarantees: [`decode`] accepts exactly the bytes [`encode`] produces for
//! some value (trailing bytes, truncation and unknown enum tags are errors,
//! never panics), and a frame never exceeds [`FRAME_BYTES_MAX`].

use borsh::{BorshDeserialize, BorshSerialize};

/// The largest frame on the wire or on disk: 8 MiB (docs/design.md decision 4).
pub const FRAME_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The type being decoded.
        what: &'static str,
        /// What the decoder objected to.
        reason: String,
    },
    /// A frame announces more bytes than the limit allows.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame ends before its announced length.
    #[error("truncated frame: announced {announced} bytes, {available} present")]
    Truncated {
        /// The announced length.
        announced: usize,
        /// The bytes actually present.
        available: usize,
    },
}

/// The canonical encoding of `value`.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail; borsh only errors on I/O writers.
    borsh::to_vec(value).unwrap_or_default()
}

/// Decode exactly one `T` from `bytes`, rejecting trailing bytes.
pub fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, DecodeError> {
    borsh::from_slice(bytes)
        .map_err(|e| DecodeError::Malformed { what: std::any::type_name::<T>(), reason: e.to_string() })
}

/// `payload` prefixed with its length as u32 big-endian.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(DecodeError::FrameTooLarge { len: payload.len(), max: FRAME_BYTES_MAX });
    }
    let mut out = Vec::with_capacity(4 + payload.len());
    // The check above keeps the length within u32.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// One frame's payload and the bytes after it.
pub type FrameSplit<'a> = (&'a [u8], &'a [u8]);

/// Split one frame off the front of `bytes`: `Ok(Some((payload, rest)))`,
/// `Ok(None)` when more bytes are needed, or an error for an oversize length.
pub fn split_frame(bytes: &[u8], max: usize) -> Result<Option<FrameSplit<'_>>, DecodeError> {
    let Some(header) = bytes.get(..4) else { return Ok(None) };
    let mut len_bytes = [0u8; 4];
    len_bytes.copy_from_slice(header);
    let len = u32::from_be_bytes(len_bytes) as usize;
    if len > max {
        return Err(DecodeError::FrameTooLarge { len, max });
    }
    match bytes.get(4..4 + len) {
        Some(payload) => Ok(Some((payload, &bytes[4 + len..]))),
        None => Ok(None),
    }
}

/// Decode one complete frame that must span all of `bytes`.
pub fn decode_frame(bytes: &[u8], max: usize) -> Result<&[u8], DecodeError> {
    match split_frame(bytes, max)? {
        Some((payload, [])) => Ok(payload),
        Some((_, rest)) => Err(DecodeError::Malformed {
            what: "frame",
            reason: format!("{} trailing bytes after the frame", rest.len()),
        }),
        None => Err(DecodeError::Truncated {
            announced: bytes.get(..4).map_or(0, |h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize),
            available: bytes.len().saturating_sub(4),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&(7u32, String::from("x")));
        bytes.push(0);
        assert!(decode::<(u32, String)>(&bytes).is_err());
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
        assert_eq!(
            split_frame(&bytes, FRAME_BYTES_MAX),
            Err(DecodeError::FrameTooLarge { len: u32::MAX as usize, max: FRAME_BYTES_MAX })
        );
    }

    #[test]
    fn truncated_frame_is_reported() {
        let frame = encode_frame(b"hello").unwrap();
        assert_eq!(split_frame(&frame[..6], 64), Ok(None));
        assert!(matches!(decode_frame(&frame[..6], 64), Err(DecodeError::Truncated { .. })));
    }

    proptest! {
        #[test]
        fn frame_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..512), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut bytes = encode_frame(&payload).unwrap();
            bytes.extend_from_slice(&tail);
            let (got, rest) = split_frame(&bytes, FRAME_BYTES_MAX).unwrap().unwrap();
            prop_assert_eq!(got, &payload[..]);
            prop_assert_eq!(rest, &tail[..]);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<(u8, Vec<u16>, Option<String>)>(&bytes);
            let _ = split_frame(&bytes, 16);
        }
    }
}
