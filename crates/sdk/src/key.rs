//! Map keys and set elements as bytes.
//!
//! The host orders keys bytewise, so the encoding preserves the key type's
//! natural order: strings are their UTF-8 bytes, unsigned integers
//! big-endian, signed integers big-endian with the sign bit flipped, `bool`
//! one byte, byte strings themselves. Guarantee (property-tested):
//! `a < b` ⇔ `encode(a) < encode(b)`, and `decode(encode(a)) == a`.

/// A value that can be a map key or a set element (possibly unsized, like `str`).
pub trait EncodeKey {
    /// The key bytes.
    fn encode_key(&self) -> Vec<u8>;
}

/// A key type that can be read back from its bytes.
pub trait Key: EncodeKey + Sized {
    /// The key from its bytes; `None` if they are not an encoding of `Self`.
    fn decode_key(bytes: &[u8]) -> Option<Self>;
}

impl EncodeKey for str {
    fn encode_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl EncodeKey for String {
    fn encode_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl Key for String {
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl EncodeKey for [u8] {
    fn encode_key(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl EncodeKey for Vec<u8> {
    fn encode_key(&self) -> Vec<u8> {
        self.clone()
    }
}

impl Key for Vec<u8> {
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

impl<const N: usize> EncodeKey for [u8; N] {
    fn encode_key(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl<const N: usize> Key for [u8; N] {
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok()
    }
}

impl EncodeKey for bool {
    fn encode_key(&self) -> Vec<u8> {
        vec![u8::from(*self)]
    }
}

impl Key for bool {
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
}

impl EncodeKey for char {
    fn encode_key(&self) -> Vec<u8> {
        u32::from(*self).to_be_bytes().to_vec()
    }
}

impl Key for char {
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        char::from_u32(u32::decode_key(bytes)?)
    }
}

macro_rules! unsigned_key {
    ($($int:ty),*) => {$(
        impl EncodeKey for $int {
            fn encode_key(&self) -> Vec<u8> {
                self.to_be_bytes().to_vec()
            }
        }

        impl Key for $int {
            fn decode_key(bytes: &[u8]) -> Option<Self> {
                Some(<$int>::from_be_bytes(bytes.try_into().ok()?))
            }
        }
    )*};
}

unsigned_key!(u8, u16, u32, u64, u128);

macro_rules! signed_key {
    ($($int:ty => $unsigned:ty),*) => {$(
        impl EncodeKey for $int {
            fn encode_key(&self) -> Vec<u8> {
                // Flipping the sign bit maps MIN..=MAX onto 0..=MAX unsigned, in order.
                ((*self as $unsigned) ^ (1 << (<$unsigned>::BITS - 1))).to_be_bytes().to_vec()
            }
        }

        impl Key for $int {
            fn decode_key(bytes: &[u8]) -> Option<Self> {
                let flipped = <$unsigned>::from_be_bytes(bytes.try_into().ok()?);
                Some((flipped ^ (1 << (<$unsigned>::BITS - 1))) as $int)
            }
        }
    )*};
}

signed_key!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn order_and_round_trip<T: Key + Ord + Clone + std::fmt::Debug>(a: T, b: T) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.cmp(&b), a.encode_key().cmp(&b.encode_key()));
        prop_assert_eq!(T::decode_key(&a.encode_key()), Some(a));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn string_keys_keep_order_and_round_trip(a in ".{0,12}", b in ".{0,12}") {
            order_and_round_trip(a, b)?;
        }

        #[test]
        fn signed_keys_keep_order_and_round_trip(a: i64, b: i64, c: i8, d: i8, e: i128, f: i128) {
            order_and_round_trip(a, b)?;
            order_and_round_trip(c, d)?;
            order_and_round_trip(e, f)?;
        }

        #[test]
        fn unsigned_and_other_keys_keep_order_and_round_trip(a: u64, b: u64, c: char, d: char, e: bool, f: bool, g: [u8; 4], h: [u8; 4]) {
            order_and_round_trip(a, b)?;
            order_and_round_trip(c, d)?;
            order_and_round_trip(e, f)?;
            order_and_round_trip(g, h)?;
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = String::decode_key(&bytes);
            let _ = i64::decode_key(&bytes);
            let _ = u128::decode_key(&bytes);
            let _ = char::decode_key(&bytes);
            let _ = bool::decode_key(&bytes);
            let _ = <[u8; 4]>::decode_key(&bytes);
        }
    }

    #[test]
    fn str_and_string_encode_alike() {
        assert_eq!("abc".encode_key(), String::from("abc").encode_key());
        assert_eq!(b"ab"[..].encode_key(), vec![b'a', b'b']);
    }
}
