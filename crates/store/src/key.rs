//! How typed keys become the bytes redb orders.
//!
//! Every key encodes as the concatenation of its parts, fixed-width parts
//! first, so that (a) byte order equals the natural order of the typed key,
//! and (b) all keys of one context share the context id's 32 bytes as a
//! prefix, which is what prefix scans select on. Decoding checks the exact
//! width and never panics: a malformed stored key is reported as corrupt.

use weft_primitives::{Hash, PublicKey};

/// A key type of a [`crate::Table`].
pub trait StoreKey {
    /// The decoded form returned by scans.
    type Owned;

    /// Append the key's bytes to `out`.
    fn encode_key(&self, out: &mut Vec<u8>);

    /// Decode stored key bytes, or say why they are not a key of this type.
    fn decode_key(bytes: &[u8]) -> Result<Self::Owned, String>;

    /// The key's bytes.
    fn key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_key(&mut out);
        out
    }
}

fn array32(bytes: &[u8], what: &str) -> Result<[u8; 32], String> {
    <[u8; 32]>::try_from(bytes).map_err(|_| format!("{what} key must be 32 bytes, found {}", bytes.len()))
}

fn split32(bytes: &[u8], what: &str) -> Result<([u8; 32], [u8; 32]), String> {
    if bytes.len() != 64 {
        return Err(format!("{what} key must be 64 bytes, found {}", bytes.len()));
    }
    let (first, second) = bytes.split_at(32);
    Ok((array32(first, what)?, array32(second, what)?))
}

impl StoreKey for Hash {
    type Owned = Hash;

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Result<Hash, String> {
        array32(bytes, "hash").map(Hash)
    }
}

impl StoreKey for PublicKey {
    type Owned = PublicKey;

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    fn decode_key(bytes: &[u8]) -> Result<PublicKey, String> {
        array32(bytes, "public key").map(PublicKey)
    }
}

/// Two hashes: 64 bytes, e.g. (context id, delta id).
impl StoreKey for (Hash, Hash) {
    type Owned = (Hash, Hash);

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
        out.extend_from_slice(self.1.as_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Result<(Hash, Hash), String> {
        split32(bytes, "(hash, hash)").map(|(a, b)| (Hash(a), Hash(b)))
    }
}

/// A context id and a member key: 64 bytes.
impl StoreKey for (Hash, PublicKey) {
    type Owned = (Hash, PublicKey);

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
        out.extend_from_slice(&self.1.0);
    }

    fn decode_key(bytes: &[u8]) -> Result<(Hash, PublicKey), String> {
        split32(bytes, "(hash, public key)").map(|(a, b)| (Hash(a), PublicKey(b)))
    }
}

/// A context-scoped variable key: the 32-byte context id, then the key bytes
/// unprefixed, so keys order by context and then bytewise.
impl StoreKey for (Hash, Vec<u8>) {
    type Owned = (Hash, Vec<u8>);

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.reserve(32 + self.1.len());
        out.extend_from_slice(self.0.as_bytes());
        out.extend_from_slice(&self.1);
    }

    fn decode_key(bytes: &[u8]) -> Result<(Hash, Vec<u8>), String> {
        if bytes.len() < 32 {
            return Err(format!("context-scoped key must be at least 32 bytes, found {}", bytes.len()));
        }
        let (context, rest) = bytes.split_at(32);
        Ok((Hash(array32(context, "context")?), rest.to_vec()))
    }
}

/// A context id and a sequence number (big-endian, so byte order is numeric
/// order): 40 bytes, e.g. (context id, apply position).
impl StoreKey for (Hash, u64) {
    type Owned = (Hash, u64);

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
        out.extend_from_slice(&self.1.to_be_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Result<(Hash, u64), String> {
        if bytes.len() != 40 {
            return Err(format!("(hash, u64) key must be 40 bytes, found {}", bytes.len()));
        }
        let (context, sequence) = bytes.split_at(32);
        let sequence = <[u8; 8]>::try_from(sequence).map_err(|_| "sequence must be 8 bytes".to_string())?;
        Ok((Hash(array32(context, "context")?), u64::from_be_bytes(sequence)))
    }
}

/// UTF-8 names, for the `meta` table.
impl StoreKey for str {
    type Owned = String;

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("key is not UTF-8: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hash(bytes: [u8; 32]) -> Hash {
        Hash(bytes)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn scoped_key_byte_order_equals_typed_order(
            a in any::<[u8; 32]>(), ka in proptest::collection::vec(any::<u8>(), 0..6),
            b in any::<[u8; 32]>(), kb in proptest::collection::vec(any::<u8>(), 0..6),
            same_context in any::<bool>(),
        ) {
            let b = if same_context { a } else { b };
            let x = (hash(a), ka);
            let y = (hash(b), kb);
            prop_assert_eq!(x.key_bytes().cmp(&y.key_bytes()), x.cmp(&y));
            prop_assert_eq!(<(Hash, Vec<u8>)>::decode_key(&x.key_bytes()), Ok(x));
        }

        #[test]
        fn pair_key_byte_order_equals_typed_order(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), c in any::<[u8; 32]>(), d in any::<[u8; 32]>()) {
            let x = (hash(a), hash(b));
            let y = (hash(c), hash(d));
            prop_assert_eq!(x.key_bytes().cmp(&y.key_bytes()), x.cmp(&y));
            prop_assert_eq!(<(Hash, Hash)>::decode_key(&x.key_bytes()), Ok(x));
        }

        #[test]
        fn key_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Hash::decode_key(&bytes);
            let _ = PublicKey::decode_key(&bytes);
            let _ = <(Hash, Hash)>::decode_key(&bytes);
            let _ = <(Hash, PublicKey)>::decode_key(&bytes);
            let _ = <(Hash, Vec<u8>)>::decode_key(&bytes);
            let _ = str::decode_key(&bytes);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn sequence_key_byte_order_equals_typed_order(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), x in any::<u64>(), y in any::<u64>()) {
            let (left, right) = ((hash(a), x), (hash(b), y));
            prop_assert_eq!(left.key_bytes().cmp(&right.key_bytes()), left.cmp(&right));
            prop_assert_eq!(<(Hash, u64)>::decode_key(&left.key_bytes()), Ok(left));
        }
    }

    #[test]
    fn wrong_width_is_an_error() {
        assert!(Hash::decode_key(&[0; 31]).is_err());
        assert!(<(Hash, Hash)>::decode_key(&[0; 63]).is_err());
        assert!(<(Hash, Vec<u8>)>::decode_key(&[0; 31]).is_err());
        assert!(str::decode_key(&[0xff]).is_err());
    }
}
