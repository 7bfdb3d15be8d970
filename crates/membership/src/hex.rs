//! Lower-case hex for invitation text: canonical in both directions (one
//! spelling per byte string), so a text that parses re-prints identically.

use crate::MembershipError;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The bytes spelled by `text`; upper case, odd length or any other
/// character is [`MembershipError::BadHex`].
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, MembershipError> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(MembershipError::BadHex { position: digits.len() });
    }
    let mut out = Vec::with_capacity(digits.len() / 2);
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let hi = digit_value(pair[0]).ok_or(MembershipError::BadHex { position: 2 * i })?;
        let lo = digit_value(pair[1]).ok_or(MembershipError::BadHex { position: 2 * i + 1 })?;
        out.push((hi << 4) | lo);
    }
    Ok(out)
}

fn digit_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_every_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = encode(&bytes);
        assert_eq!(text.len(), 512);
        assert_eq!(decode(&text).unwrap(), bytes);
    }

    #[test]
    fn non_canonical_hex_is_refused() {
        assert_eq!(decode("abc"), Err(MembershipError::BadHex { position: 3 }));
        assert_eq!(decode("aB"), Err(MembershipError::BadHex { position: 1 }));
        assert_eq!(decode("0g"), Err(MembershipError::BadHex { position: 1 }));
        assert_eq!(decode(" 0"), Err(MembershipError::BadHex { position: 0 }));
        assert_eq!(decode("é"), Err(MembershipError::BadHex { position: 0 }));
        assert_eq!(decode(""), Ok(Vec::new()));
    }
}
