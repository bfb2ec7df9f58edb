//! Tree keys as pages hold them (`format-spec/btree.md`): whole, or split into a compact
//! leaf's 8-byte prefix and the rest of the key.

use super::page::PREFIX_LEN;
use crate::types::cmp_keys;

/// A tree key as a page holds it: `head ‖ tail`, where `head` is a compact leaf's
/// 8-byte prefix (stored once per page) and empty for keys stored whole. Compares and
/// equals as its bytes, however they are split.
#[derive(Clone, Copy, Debug)]
pub struct TreeKey<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl<'a> TreeKey<'a> {
    /// A key held in one piece.
    pub fn whole(key: &'a [u8]) -> TreeKey<'a> {
        TreeKey {
            head: &[],
            tail: key,
        }
    }

    /// A key stored as `head ‖ tail`.
    #[inline]
    pub(crate) fn parts(head: &'a [u8], tail: &'a [u8]) -> TreeKey<'a> {
        TreeKey { head, tail }
    }

    /// Its part stored once per page (a compact or uniform leaf's prefix; empty for a
    /// key stored whole) and its part in the cell.
    pub(crate) fn pieces(&self) -> (&'a [u8], &'a [u8]) {
        (self.head, self.tail)
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Its order against the bytes `other`.
    #[inline]
    pub fn cmp_bytes(&self, other: &[u8]) -> std::cmp::Ordering {
        let (head, rest) = other.split_at(other.len().min(self.head.len()));
        match cmp_keys(self.head, head) {
            std::cmp::Ordering::Equal => cmp_keys(self.tail, rest),
            ord => ord,
        }
    }

    /// Whether its bytes are `other`.
    #[cfg(test)]
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        self.len() == other.len() && self.cmp_bytes(other).is_eq()
    }

    /// Its first 8 bytes (the table id of a composite key), if it has 8.
    #[inline]
    pub fn table_bytes(&self) -> Option<[u8; PREFIX_LEN]> {
        if self.head.len() == PREFIX_LEN {
            return self.head.try_into().ok();
        }
        if self.head.is_empty() {
            return self.tail.get(..PREFIX_LEN)?.try_into().ok();
        }
        match self.first_bytes() {
            (b, PREFIX_LEN) => Some(b),
            _ => None,
        }
    }

    /// Its first `min(8, len)` bytes (zero-padded) and how many there are.
    #[inline]
    pub fn first_bytes(&self) -> ([u8; PREFIX_LEN], usize) {
        let mut out = [0u8; PREFIX_LEN];
        let mut n = 0;
        for (d, s) in out.iter_mut().zip(self.head.iter().chain(self.tail)) {
            *d = *s;
            n += 1;
        }
        (out, n)
    }

    /// Its bytes after the first 8 (the key within its table), in one piece.
    #[inline]
    pub fn user(&self) -> &'a [u8] {
        let skip = PREFIX_LEN.saturating_sub(self.head.len());
        self.tail.get(skip..).unwrap_or(&[])
    }

    /// Appends its bytes from `n` on to `out`.
    pub fn extend_from(&self, n: usize, out: &mut Vec<u8>) {
        match n.checked_sub(self.head.len()) {
            Some(skip) => out.extend_from_slice(self.tail.get(skip..).unwrap_or(&[])),
            None => {
                out.extend_from_slice(self.head.get(n..).unwrap_or(&[]));
                out.extend_from_slice(self.tail);
            }
        }
    }

    /// Whether its bytes start with `p`.
    pub fn starts_with(&self, p: &[u8]) -> bool {
        if p.len() < self.head.len() {
            return self.head.starts_with(p);
        }
        let (head, rest) = p.split_at(self.head.len());
        head == self.head && self.tail.starts_with(rest)
    }

    /// Its bytes from `n` on, in one piece: `None` when `n` falls inside the part
    /// stored once per page (fewer than 8 bytes into a compact leaf's key) or past
    /// its end.
    pub fn after(&self, n: usize) -> Option<&'a [u8]> {
        self.tail.get(n.checked_sub(self.head.len())?..)
    }

    /// Appends its bytes to `out`.
    pub fn extend_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.head);
        out.extend_from_slice(self.tail);
    }

    /// Its bytes, copied.
    pub fn to_vec(self) -> Vec<u8> {
        [self.head, self.tail].concat()
    }

    fn bytes(&self) -> impl Iterator<Item = &'a u8> {
        self.head.iter().chain(self.tail)
    }
}

impl PartialEq for TreeKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.bytes().eq(other.bytes())
    }
}

impl Eq for TreeKey<'_> {}

impl PartialOrd for TreeKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TreeKey<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_keys_compare_as_their_bytes() {
        let whole = crate::btree::composite(5, b"xy");
        let split = TreeKey::parts(&whole[..8], &whole[8..]);
        assert_eq!(split, TreeKey::whole(&whole));
        for other in [
            crate::btree::composite(5, b"x"),
            crate::btree::composite(5, b"xy"),
            crate::btree::composite(5, b"xz"),
            crate::btree::composite(4, b"zz"),
            vec![0, 0],
            vec![],
        ] {
            assert_eq!(split.cmp_bytes(&other), whole.as_slice().cmp(&other[..]));
            assert_eq!(
                split.cmp(&TreeKey::whole(&other)),
                whole.as_slice().cmp(&other[..])
            );
            assert_eq!(split.eq_bytes(&other), whole == other);
        }
    }
}
