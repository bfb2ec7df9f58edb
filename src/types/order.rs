//! Byte order of keys, for every layer: [`cmp_keys`] and the number a key's first eight
//! bytes make ([`first_word`]).

use std::cmp::Ordering;

/// The first eight bytes of `key` as a big-endian number, zero-padded. Ordering keys by
/// it and then by their bytes is their byte order (a shorter key pads with zeros, and
/// sorts first among keys it is a prefix of).
#[inline]
pub fn first_word(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(w) => u64::from_be_bytes(*w),
        None => {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(key) {
                *d = *s;
            }
            u64::from_be_bytes(w)
        }
    }
}

/// Byte order of two keys, comparing the first three 8-byte words as integers before
/// the rest: a table's composite keys all share their first word (the table id), and
/// its history keys their first two (`FF×8`, the table id), so a search would otherwise
/// call `memcmp` past them on every probe. Short keys (a Raft log's 8-byte indexes)
/// are decided by one word.
#[inline]
pub fn cmp_keys(a: &[u8], b: &[u8]) -> Ordering {
    let mut at = 0;
    while at < 24 {
        let (Some(x), Some(y)) = (a.get(at..at + 8), b.get(at..at + 8)) else {
            break;
        };
        let x = u64::from_be_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_be_bytes(y.try_into().unwrap_or([0; 8]));
        if x != y {
            return x.cmp(&y);
        }
        at += 8;
    }
    let (a, b) = (a.get(at..).unwrap_or(&[]), b.get(at..).unwrap_or(&[]));
    if a.is_empty() || b.is_empty() {
        return a.len().cmp(&b.len());
    }
    a.cmp(b)
}
