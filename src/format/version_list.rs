//! The encoded version list of a history entry (`format-spec/btree.md`, "Version list"):
//! a count and an index of `(seq, offset)` entries, newest first, then one record per
//! element (a flag byte and the value). A read at `S` binary-searches the index and
//! touches one record. Lists written by version-2 builds have no index (each element
//! carries its own sequence and length); they are told apart by their first four bytes
//! (`0` here, the count there) and still read.

use crate::error::{Error, Result};
use crate::types::Value;
use crate::util::{u32_at, u64_at};
use std::sync::Arc;

/// Versions of one key, newest first.
pub type VersionList = Vec<(u64, Value)>;

/// One decoded element: its seq and its value (`None`: deleted), borrowed.
type Element<'a> = (u64, Option<&'a [u8]>);

/// Bytes before the index: the tag and the count.
const HEAD: usize = 8;

/// Bytes of one index entry: seq (8), record offset (4).
const ENTRY: usize = 12;

/// Byte length of a version-2 element's head: seq (8), flag (1), length (4).
const V2_ELEMENT_HEAD: usize = 13;

fn corrupt(what: &str) -> Error {
    Error::corrupted(0, format!("history entry: {what}"))
}

/// Encodes a version list, newest first, with its index. A list past 4 GiB (record
/// offsets are 32-bit) is [`Error::ValueTooLarge`]; a history entry is one tree value,
/// far below that.
pub fn encode_list(list: &[(u64, Value)]) -> Result<Vec<u8>> {
    let index_end = HEAD + ENTRY * list.len();
    let records: usize = list
        .iter()
        .map(|(_, v)| 1 + v.as_ref().map_or(0, |b| b.len()))
        .sum();
    let len = index_end + records;
    let too_large = || Error::ValueTooLarge {
        len,
        max: u32::MAX as usize,
    };
    let count = u32::try_from(list.len()).map_err(|_| too_large())?;
    if u32::try_from(len).is_err() {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    let mut offset = index_end;
    for (seq, v) in list {
        out.extend_from_slice(&seq.to_le_bytes());
        // Below `len`, checked above.
        out.extend_from_slice(&(offset as u32).to_le_bytes());
        offset += 1 + v.as_ref().map_or(0, |b| b.len());
    }
    for (_, v) in list {
        out.push(u8::from(v.is_some()));
        out.extend_from_slice(v.as_deref().unwrap_or(&[]));
    }
    Ok(out)
}

/// An indexed list's parts, checked to fit: its count and its bytes.
struct Indexed<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Indexed<'a> {
    /// `None` when `bytes` is a version-2 list.
    fn parse(bytes: &'a [u8]) -> Result<Option<Self>> {
        match u32_at(bytes, 0) {
            None => Err(corrupt("shorter than its count")),
            Some(0) => {
                let count = u32_at(bytes, 4).ok_or_else(|| corrupt("shorter than its count"))?;
                let count = count as usize;
                // Each element takes an index entry and at least its flag byte.
                if count == 0 || count > (bytes.len() - HEAD) / (ENTRY + 1) {
                    return Err(corrupt("element count does not fit its length"));
                }
                Ok(Some(Indexed { bytes, count }))
            }
            Some(_) => Ok(None),
        }
    }

    fn seq(&self, i: usize) -> u64 {
        u64_at(self.bytes, HEAD + ENTRY * i).unwrap_or(0)
    }

    fn offset(&self, i: usize) -> usize {
        u32_at(self.bytes, HEAD + ENTRY * i + 8).unwrap_or(0) as usize
    }

    /// The bytes of element `i`'s record (flag and value), its offsets checked against
    /// the index and the bytes. Slicing reads none of them.
    fn record(&self, i: usize) -> Result<&'a [u8]> {
        let start = self.offset(i);
        let end = if i + 1 < self.count {
            self.offset(i + 1)
        } else {
            self.bytes.len()
        };
        if start < HEAD + ENTRY * self.count || start >= end {
            return Err(corrupt("record offsets out of order"));
        }
        self.bytes
            .get(start..end)
            .ok_or_else(|| corrupt("record past its end"))
    }

    /// Element `i`, its record checked against the index and the bytes.
    fn element(&self, i: usize) -> Result<Element<'a>> {
        Ok((self.seq(i), flagged(self.record(i)?)?))
    }

    /// What a read sees in element `i`: its record checked against the index, and its
    /// flag (`btree.md`): a record whose flag is neither `1` nor a lone `0` is damage,
    /// as [`decode_list`] (and so `check_integrity`) says, never served as a value. The
    /// flag shares its cache line with the value's first bytes, which the reader reads.
    fn seen(&self, i: usize) -> Result<Option<&'a [u8]>> {
        flagged(self.record(i)?)
    }
}

/// A record's value by its flag: `Some(bytes)` for `1`, `None` for a lone `0`.
fn flagged(record: &[u8]) -> Result<Option<&[u8]>> {
    match record.split_first() {
        Some((1, value)) => Ok(Some(value)),
        Some((0, [])) => Ok(None),
        _ => Err(corrupt("bad element flag")),
    }
}

/// A version-2 list's elements in order, each checked as it is read: every length
/// against the bytes present (so a damaged entry is an error, never a large allocation),
/// the flag, and strictly decreasing sequences. After the last element, the list's
/// bytes must be used up exactly.
struct V2Elements<'a> {
    bytes: &'a [u8],
    at: usize,
    left: usize,
    last_seq: Option<u64>,
}

impl<'a> V2Elements<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self> {
        let count = u32_at(bytes, 0).ok_or_else(|| corrupt("shorter than its count"))? as usize;
        if count == 0 || count > bytes.len() / V2_ELEMENT_HEAD {
            return Err(corrupt("element count does not fit its length"));
        }
        Ok(V2Elements {
            bytes,
            at: 4,
            left: count,
            last_seq: None,
        })
    }

    fn next_element(&mut self) -> Result<Option<Element<'a>>> {
        if self.left == 0 {
            if self.at != self.bytes.len() {
                return Err(corrupt("trailing bytes"));
            }
            return Ok(None);
        }
        self.left -= 1;
        let at = self.at;
        let seq = u64_at(self.bytes, at).ok_or_else(|| corrupt("element past its end"))?;
        let flag = self.bytes.get(at + 8).copied();
        let len = u32_at(self.bytes, at + 9).ok_or_else(|| corrupt("element past its end"))?;
        let len = len as usize;
        let body_at = at + V2_ELEMENT_HEAD;
        let body = self
            .bytes
            .get(body_at..body_at.saturating_add(len))
            .ok_or_else(|| corrupt("value past its end"))?;
        self.at = body_at + len;
        if self.last_seq.is_some_and(|last| seq >= last) {
            return Err(corrupt("sequences not newest first"));
        }
        self.last_seq = Some(seq);
        match (flag, len) {
            (Some(0), 0) => Ok(Some((seq, None))),
            (Some(1), _) => Ok(Some((seq, Some(body)))),
            _ => Err(corrupt("bad element flag")),
        }
    }
}

/// Decodes a version list of either version, checking all of it: sequences strictly
/// decreasing, records in order and using the bytes up exactly, flags valid.
pub fn decode_list(bytes: &[u8]) -> Result<VersionList> {
    let Some(list) = Indexed::parse(bytes)? else {
        let mut it = V2Elements::parse(bytes)?;
        let mut out = Vec::with_capacity(it.left);
        while let Some((seq, value)) = it.next_element()? {
            out.push((seq, value.map(Arc::from)));
        }
        return Ok(out);
    };
    let mut out = Vec::with_capacity(list.count);
    for i in 0..list.count {
        let (seq, value) = list.element(i)?;
        if out.last().is_some_and(|&(last, _)| seq >= last) {
            return Err(corrupt("sequences not newest first"));
        }
        out.push((seq, value.map(Arc::from)));
    }
    if list.offset(0) != HEAD + ENTRY * list.count {
        return Err(corrupt("the first record does not follow the index"));
    }
    Ok(out)
}

/// Longest index [`find_in_list`] counts through instead of binary-searching (32 entries:
/// six cache lines).
const LINEAR_INDEX_MAX: usize = 32;

/// The element a read at `seq` sees, found without decoding the rest: `None` when no
/// element is at or below `seq`, `Some(None)` for a deletion, else the value's bytes (a
/// slice of `bytes`). An indexed list's index is searched; a version-2 list is walked.
pub fn find_in_list(bytes: &[u8], seq: u64) -> Result<Option<Option<&[u8]>>> {
    let Some(list) = Indexed::parse(bytes)? else {
        let mut it = V2Elements::parse(bytes)?;
        while let Some((s, value)) = it.next_element()? {
            if s <= seq {
                return Ok(Some(value));
            }
        }
        return Ok(None);
    };
    // Sequences decrease: the first index entry at or below `seq`, which is the number of
    // entries above it. A short index is counted without branches: its loads do not
    // depend on each other, so the index's cache lines (lists live in leaves that are
    // seldom cached) are fetched together instead of one probe after another.
    // The list comes from a checksummed page, but a writer's mistake or a hostile file
    // must not make a read see a version newer than its snapshot, or an older one than
    // it should: a short index, all of it loaded anyway, is checked to decrease; a long
    // one around the entry found.
    let lo = if list.count <= LINEAR_INDEX_MAX {
        let decreasing = (1..list.count).all(|i| list.seq(i - 1) > list.seq(i));
        if !decreasing {
            return Err(corrupt("index sequences do not decrease"));
        }
        (0..list.count)
            .map(|i| usize::from(list.seq(i) > seq))
            .sum()
    } else {
        let (mut lo, mut hi) = (0, list.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if list.seq(mid) > seq {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let above = lo.checked_sub(1).is_none_or(|i| list.seq(i) > seq);
        let at = lo == list.count || list.seq(lo) <= seq;
        let below = lo + 1 >= list.count || list.seq(lo) > list.seq(lo + 1);
        if !(above && at && below) {
            return Err(corrupt("index sequences do not decrease"));
        }
        lo
    };
    if lo == list.count {
        return Ok(None);
    }
    Ok(Some(list.seen(lo)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(b: &[u8]) -> Value {
        Some(Arc::from(b))
    }

    /// The element a read at `seq` sees in a decoded list.
    fn resolve(list: &[(u64, Value)], seq: u64) -> Option<&Value> {
        list.iter().find(|(s, _)| *s <= seq).map(|(_, v)| v)
    }

    /// A list as a version-2 build wrote it.
    fn encode_v2(list: &[(u64, Value)]) -> Vec<u8> {
        let mut out = (list.len() as u32).to_le_bytes().to_vec();
        for (seq, v) in list {
            out.extend_from_slice(&seq.to_le_bytes());
            out.push(u8::from(v.is_some()));
            let bytes = v.as_deref().unwrap_or(&[]);
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn layout_matches_the_spec() {
        use crate::format::spec_table;
        let md = include_str!("../../format-spec/btree.md");
        let rows = |h| spec_table::rows(md, h);
        spec_table::assert_layout(
            &rows("### Version list"),
            &[("tag", 0, 4), ("count", 4, 4), ("index", HEAD, 0)],
        );
        spec_table::assert_layout(
            &rows("Version list index entry"),
            &[("seq", 0, 8), ("offset", 8, 4)],
        );
        spec_table::assert_layout(
            &rows("Version list record"),
            &[("flag", 0, 1), ("value", 1, 0)],
        );
        spec_table::assert_layout(
            &rows("### Version-2 version list"),
            &[("count", 0, 4), ("elements", 4, 0)],
        );
        spec_table::assert_layout(
            &rows("Version-2 version list element"),
            &[
                ("seq", 0, 8),
                ("flag", 8, 1),
                ("len", 9, 4),
                ("value", V2_ELEMENT_HEAD, 0),
            ],
        );
        // Two elements, encoded, match the offsets.
        let bytes = encode_list(&[(0x0102, v(b"abc")), (7, None)]).unwrap();
        assert_eq!(&bytes[..4], &0u32.to_le_bytes());
        assert_eq!(&bytes[4..8], &2u32.to_le_bytes());
        assert_eq!(&bytes[8..16], &0x0102u64.to_le_bytes());
        assert_eq!(&bytes[16..20], &32u32.to_le_bytes());
        assert_eq!(&bytes[20..28], &7u64.to_le_bytes());
        assert_eq!(&bytes[28..32], &36u32.to_le_bytes());
        assert_eq!(&bytes[32..], &[1, b'a', b'b', b'c', 0]);
    }

    #[test]
    fn both_versions_round_trip_and_resolve() {
        let list = vec![(9, v(b"c")), (5, None), (2, v(b"a")), (0, v(b""))];
        for bytes in [encode_list(&list).unwrap(), encode_v2(&list)] {
            assert_eq!(decode_list(&bytes).unwrap(), list);
            for seq in 0..12 {
                let found = find_in_list(&bytes, seq).unwrap();
                assert_eq!(
                    found.map(|v| v.map(<[u8]>::to_vec)),
                    resolve(&list, seq).map(|v| v.as_deref().map(<[u8]>::to_vec)),
                    "at {seq}"
                );
            }
        }
        assert_eq!(
            find_in_list(&encode_list(&list[..3]).unwrap(), 1).unwrap(),
            None
        );
    }

    #[test]
    fn damaged_indexed_lists_are_errors() {
        let good = encode_list(&[(9, v(b"c")), (5, None)]).unwrap();
        let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            b
        };
        for (what, bytes) in [
            ("count 0", damaged(&|b| b[4] = 0)),
            ("count too large", damaged(&|b| b[4] = 9)),
            ("seqs increasing", damaged(&|b| b[8] = 1)),
            ("first record late", damaged(&|b| b[16] = 33)),
            ("offsets out of order", damaged(&|b| b[28] = 30)),
            ("last offset past the end", damaged(&|b| b[28] = 40)),
            ("bad flag", damaged(&|b| b[32] = 2)),
            ("deletion with bytes", damaged(&|b| b.push(7))),
            ("truncated", damaged(&|b| b.truncate(10))),
        ] {
            assert!(decode_list(&bytes).is_err(), "{what}");
        }
    }

    /// An index whose sequences do not decrease (a writer's mistake or a hostile file)
    /// is an error for a point read too, never a version the snapshot should not see.
    #[test]
    fn a_point_read_refuses_an_index_out_of_order() {
        let short = encode_list(&[(10, v(b"old")), (20, v(b"new"))]).unwrap();
        for at in [5, 15, 25] {
            assert!(
                find_in_list(&short, at).is_err(),
                "short index, read at {at}"
            );
        }
        // A long index (binary search) around the entry found.
        let mut long: Vec<(u64, Value)> =
            (0..40u64).rev().map(|s| (s * 10 + 10, v(b"x"))).collect();
        long.swap(20, 21);
        let bytes = encode_list(&long).unwrap();
        let (a, b) = (long[20].0, long[21].0);
        assert!(a < b);
        // At `b + 5` the newest version at or below is `b`, misplaced after `a`.
        assert!(
            find_in_list(&bytes, b + 5).is_err(),
            "long index, read at {}",
            b + 5
        );
        assert_eq!(find_in_list(&bytes, 1000).unwrap(), Some(Some(&b"x"[..])));
    }

    #[test]
    fn a_point_read_checks_every_flag() {
        let good = encode_list(&[(9, v(b"c")), (7, Some(Arc::from(&b""[..]))), (5, None)]).unwrap();
        // Records start after the 8-byte head and three 12-byte index entries.
        let (value_at, empty_at, deleted_at) = (44, 46, 47);
        assert_eq!(find_in_list(&good, 9).unwrap(), Some(Some(&b"c"[..])));
        assert_eq!(find_in_list(&good, 8).unwrap(), Some(Some(&b""[..])));
        assert_eq!(find_in_list(&good, 6).unwrap(), Some(None));
        // A one-byte record is a value or a deletion by its flag alone: a bad flag there
        // is an error on the read path too.
        for at in [empty_at, deleted_at] {
            let mut bad = good.clone();
            bad[at] = 2;
            assert!(find_in_list(&bad, 8).is_err() || find_in_list(&bad, 6).is_err());
        }
        // A longer record with a flag other than `1` is damage on the read path too,
        // as the full decode (integrity checks) says: it was served as a value.
        for flag in [0, 2, 255] {
            let mut bad = good.clone();
            bad[value_at] = flag;
            assert!(find_in_list(&bad, 9).is_err(), "flag {flag}");
            assert!(decode_list(&bad).is_err());
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), seq in any::<u64>()) {
            let _ = decode_list(&bytes);
            let _ = find_in_list(&bytes, seq);
        }

        #[test]
        fn round_trip_and_find(
            raw in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..20)), 1..40),
            seq in 0u64..90,
        ) {
            let n = raw.len() as u64;
            let list: VersionList = raw
                .into_iter()
                .enumerate()
                .map(|(i, (some, b))| (2 * (n - i as u64), some.then(|| Arc::from(b.as_slice()))))
                .collect();
            let bytes = encode_list(&list).unwrap();
            prop_assert_eq!(decode_list(&bytes).unwrap(), list.clone());
            let found = find_in_list(&bytes, seq).unwrap().map(|v| v.map(<[u8]>::to_vec));
            let want = resolve(&list, seq).map(|v| v.as_deref().map(<[u8]>::to_vec));
            prop_assert_eq!(found, want);
        }
    }
}
