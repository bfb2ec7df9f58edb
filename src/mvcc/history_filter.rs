//! Which keys a checkpointed tree holds history entries for: a Bloom filter over the
//! tree's history keys, built once per published tree that has more of them than its
//! directory may hold ([`HistoryIndex`](super::history_directory::HistoryIndex)), in
//! memory only (nothing of it is in the file). Its hash also places keys in a directory.
//!
//! A time-travel point read asks it before descending into the history region: a key
//! the filter has never seen has no history entry in that tree, so its tree value is
//! its current entry and one descent is saved. The filter answers "maybe" for every key
//! it was built with (never a false "no"), and a false "maybe" (about 1 in 100) costs
//! only the descent it would have made anyway.

/// Filter bits per key.
const BITS_PER_KEY: usize = 10;
/// Probes per key (about `BITS_PER_KEY * ln 2`).
const PROBES: u32 = 7;
/// Smallest filter, in 64-bit words.
const WORDS_MIN: usize = 8;

/// A Bloom filter over byte keys.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    words: Vec<u64>,
    /// `words.len() * 64 - 1`; the word count is a power of two.
    mask: u64,
    keys: usize,
}

/// A 64-bit hash of `key`, eight bytes at a time, with a final avalanche.
fn hash(key: &[u8]) -> u64 {
    const M: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h ^ w).wrapping_mul(M).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    if let Some(t) = tail.get_mut(..rest.len()) {
        t.copy_from_slice(rest);
    }
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(M);
    crate::rng::mix64(h)
}

impl KeyFilter {
    /// A filter holding the keys whose [`KeyFilter::hash_of`] values are `hashes`.
    pub fn from_hashes(hashes: &[u64]) -> KeyFilter {
        let words = (hashes.len() * BITS_PER_KEY)
            .div_ceil(64)
            .max(WORDS_MIN)
            .next_power_of_two();
        let mut f = KeyFilter {
            words: vec![0; words],
            mask: (words as u64 * 64) - 1,
            keys: hashes.len(),
        };
        for &h in hashes {
            for bit in positions(h, f.mask) {
                if let Some(w) = f.words.get_mut((bit / 64) as usize) {
                    *w |= 1 << (bit % 64);
                }
            }
        }
        f
    }

    /// The hash a filter is built from, for a key.
    pub fn hash_of(key: &[u8]) -> u64 {
        hash(key)
    }

    /// Whether `key` may be one of the keys the filter was built with: `false` only
    /// when it certainly is not.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        positions(hash(key), self.mask).all(|bit| {
            self.words
                .get((bit / 64) as usize)
                .is_none_or(|w| w & (1 << (bit % 64)) != 0)
        })
    }

    /// Keys the filter was built with.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// Bytes of memory its bits take.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }
}

/// The bit positions of hash `h` (double hashing: `h`'s halves as start and step).
fn positions(h: u64, mask: u64) -> impl Iterator<Item = u64> {
    let step = h.rotate_left(32) | 1;
    (0..u64::from(PROBES)).map(move |i| h.wrapping_add(i.wrapping_mul(step)) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every key a filter was built with is reported as maybe there.
        #[test]
        fn no_key_it_holds_is_missed(
            keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..300),
        ) {
            let hashes: Vec<u64> = keys.iter().map(|k| KeyFilter::hash_of(k)).collect();
            let f = KeyFilter::from_hashes(&hashes);
            prop_assert_eq!(f.keys(), keys.len());
            for k in &keys {
                prop_assert!(f.may_contain(k));
            }
        }
    }

    #[test]
    fn few_false_hits() {
        let key = |i: u64| [&[0xFF; 8][..], &7u64.to_be_bytes(), &i.to_be_bytes()].concat();
        let hashes: Vec<u64> = (0..10_000).map(|i| KeyFilter::hash_of(&key(i))).collect();
        let f = KeyFilter::from_hashes(&hashes);
        let false_hits = (10_000..110_000)
            .filter(|&i| f.may_contain(&key(i)))
            .count();
        // About 1% at 10 bits a key; the power-of-two size gives a little more room.
        assert!(false_hits < 2_000, "{false_hits} false hits in 100,000");
        assert!(!KeyFilter::from_hashes(&[]).may_contain(b"anything"));
    }
}
