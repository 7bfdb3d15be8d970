//! The signatures of a sync page, checked on several threads before the
//! page is applied.
//!
//! An Ed25519 check is most of what receiving a delta costs, and its
//! verdict depends on the (author, id, signature) triple alone, so the
//! checks of a page may run at once, in any order. The receive path then
//! skips the check of a delta whose exact triple was found valid here and
//! checks every other delta itself, as usual. So the verdict on every delta
//! is the one a lone check gives: threads change when a check runs, never
//! what it decides, and every replica decides alike.

use std::collections::HashSet;

use weft_primitives::{Hash, PublicKey};

use crate::delta::SignedDelta;

/// Below this many deltas to check, starting threads costs more than it
/// saves: the receive path checks them one by one.
pub const PARALLEL_VERIFY_MIN: usize = 64;

/// (author, id, signature) triples whose signature is valid.
pub(crate) type ValidSignatures = HashSet<(PublicKey, Hash, [u8; 64])>;

fn triple(delta: &SignedDelta) -> (PublicKey, Hash, [u8; 64]) {
    (delta.author, delta.id, delta.signature.0)
}

/// The triples of the deltas of `page` (encoded) whose signatures are
/// valid, checked on up to `threads` threads. A delta that does not decode
/// or that `known` holds is not checked; nothing is when there are fewer
/// than [`PARALLEL_VERIFY_MIN`] to check or one thread. A thread that cannot
/// start leaves its share unchecked (the receive path checks it).
pub(crate) fn valid_signatures(page: &[Vec<u8>], threads: usize, known: impl Fn(&Hash) -> bool) -> ValidSignatures {
    if threads <= 1 || page.len() < PARALLEL_VERIFY_MIN {
        return ValidSignatures::new();
    }
    let candidates: Vec<SignedDelta> =
        page.iter().filter_map(|bytes| SignedDelta::decode(bytes).ok()).filter(|delta| !known(&delta.id)).collect();
    if candidates.len() < PARALLEL_VERIFY_MIN {
        return ValidSignatures::new();
    }
    let check = |share: &[SignedDelta]| -> Vec<(PublicKey, Hash, [u8; 64])> {
        share.iter().filter(|delta| delta.check_signature().is_ok()).map(triple).collect()
    };
    let share_len = candidates.len().div_ceil(threads);
    let mut shares = candidates.chunks(share_len);
    let own = shares.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let spawned: Vec<_> = shares
            .filter_map(|share| std::thread::Builder::new().spawn_scoped(scope, move || check(share)).ok())
            .collect();
        let mut valid: ValidSignatures = check(own).into_iter().collect();
        for handle in spawned {
            // A share whose thread failed stays unchecked, not refused.
            valid.extend(handle.join().unwrap_or_default());
        }
        valid
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weft_primitives::{Hlc, SigningKey};

    use super::*;

    /// `count` deltas of `context`, each on the one before.
    fn signed_chain(context: &Hash, count: u64) -> Vec<SignedDelta> {
        let key = SigningKey::from_seed([4; 32]);
        let mut parent = Hash::of(b"genesis");
        (0..count)
            .map(|n| {
                let delta = SignedDelta::sign(&key, context, vec![parent], Hlc::new(10 + n, 0), Vec::new(), Vec::new());
                parent = delta.id;
                delta
            })
            .collect()
    }

    #[test]
    fn only_valid_triples_of_unknown_deltas_are_reported() {
        let context = Hash::of(b"context");
        let mut deltas = signed_chain(&context, 200);
        // A forged signature, and a delta the replica already holds.
        deltas[10].signature.0[0] ^= 1;
        let held = deltas[20].id;
        let page: Vec<Vec<u8>> = deltas.iter().map(SignedDelta::encode).collect();
        let valid = valid_signatures(&page, 2, |id| *id == held);
        assert_eq!(valid.len(), 198);
        assert!(!valid.contains(&triple(&deltas[10])), "a forged signature was found valid");
        assert!(!valid.contains(&triple(&deltas[20])), "a known delta was checked");
        assert!(valid.contains(&triple(&deltas[11])));
        // The same triple with the forged signature's bytes is not covered
        // by the genuine one: only the exact triple counts.
        let mut forged = deltas[11].clone();
        forged.signature.0[5] ^= 1;
        assert!(!valid.contains(&triple(&forged)));
    }

    #[test]
    fn small_pages_and_one_thread_check_nothing_here() {
        let context = Hash::of(b"context");
        let deltas = signed_chain(&context, 200);
        let page: Vec<Vec<u8>> = deltas.iter().map(SignedDelta::encode).collect();
        assert!(valid_signatures(&page, 1, |_| false).is_empty());
        assert!(valid_signatures(&page[..PARALLEL_VERIFY_MIN - 1], 2, |_| false).is_empty());
        assert_eq!(valid_signatures(&page, 3, |_| false).len(), 200);
    }
}
