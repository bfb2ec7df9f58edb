//! A transaction's writes to one table, kept compact. Each put appends its key and value
//! to one byte buffer; sorted runs of 8-byte handles index the buffer. A million 24-byte
//! keys with 150-byte values take 177 MB of buffer and 8 MB of handles, where a
//! `BTreeMap<Vec<u8>, Arc<[u8]>>` took about 280 MB in separate allocations, and a put
//! is an append instead of a tree insertion.
//!
//! Layout of one put in the buffer: the key's length and a tag as LEB128 varints (the tag
//! is 0 for a tombstone, else the value's length plus one), then the key, then the value.
//! A handle is the key's first four bytes (big-endian, zero-padded) in its high 32 bits and
//! the put's offset in the buffer in its low 32, so most comparisons between handles never
//! touch the buffer. The newest puts sit in a short tail kept sorted, one handle per key
//! (a put of a key already there replaces its handle); a full tail becomes a sorted run,
//! and runs are merged so that each is
//! at least twice the next newer one: about `log2(puts / TAIL_MAX)` runs, each put merged
//! that many times. Overwritten puts stay in the buffer until it is rewritten: each time it
//! doubles past 16 MiB, if most puts since the last rewrite were overwrites, only each
//! key's newest put is kept.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Bound;

/// Keys kept in the tail before it becomes a run.
const TAIL_MAX: usize = 32;

/// Most bytes one table's buffer holds: handles address it with 32 bits.
pub const TABLE_WRITES_BYTES_MAX: usize = u32::MAX as usize;

/// Buffer length from which overwritten puts are dropped (see
/// [`TableWrites::drop_overwritten`]).
const REWRITE_BYTES_MIN: usize = 16 << 20;

/// Room a put's two varints may take.
const VARINTS_LEN_MAX: usize = 20;

/// A transaction's writes to one table: key → new value, or `None` for a tombstone. Reads
/// and iteration see the newest put of each key, in key order.
#[derive(Clone, Default)]
pub struct TableWrites {
    /// Every put, in order (layout in the module doc).
    data: Vec<u8>,
    /// Sorted runs, oldest first, one handle per key; a newer run's handle wins.
    runs: Vec<Vec<u64>>,
    /// The newest puts, sorted, one handle per key (fewer than `TAIL_MAX`); newer than
    /// every run.
    tail: Vec<u64>,
    /// Puts since the buffer was last rewritten (each takes at least two of the buffer's
    /// at most 2^32 bytes, so 32 bits hold it).
    puts: u32,
    /// The buffer's length when it was last rewritten or checked for it.
    checked_len: u32,
}

/// The buffer of one table's writes is full ([`TABLE_WRITES_BYTES_MAX`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritesFull;

/// The first four bytes of `key`, big-endian, zero-padded: ordering by it and then by the
/// whole key is the keys' byte order.
fn prefix(key: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    for (d, s) in b.iter_mut().zip(key) {
        *d = *s;
    }
    u32::from_be_bytes(b)
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*at`, moving `*at` past it.
fn read_varint(data: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = data.get(*at) {
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 || shift >= 63 {
            break;
        }
        shift += 7;
    }
    v
}

/// Appends one put to `data` (the caller checked it fits 32-bit offsets) and returns its
/// handle.
fn append_entry(data: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) -> u64 {
    let offset = data.len() as u64;
    // One growth for the whole put (a small transaction's buffer is allocated once).
    data.reserve(VARINTS_LEN_MAX + key.len() + value.map_or(0, <[u8]>::len));
    push_varint(data, key.len() as u64);
    push_varint(data, value.map_or(0, |v| v.len() as u64 + 1));
    data.extend_from_slice(key);
    if let Some(v) = value {
        data.extend_from_slice(v);
    }
    (u64::from(prefix(key)) << 32) | offset
}

fn handle_prefix(h: u64) -> u32 {
    (h >> 32) as u32
}

fn handle_offset(h: u64) -> usize {
    (h & 0xffff_ffff) as usize
}

impl TableWrites {
    /// No writes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `key = value` (`None`: a tombstone), replacing an earlier put of `key`.
    pub fn insert(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), WritesFull> {
        let need = VARINTS_LEN_MAX + key.len() + value.map_or(0, <[u8]>::len);
        if self.data.len().saturating_add(need) > TABLE_WRITES_BYTES_MAX {
            return Err(WritesFull);
        }
        let handle = append_entry(&mut self.data, key, value);
        let p = prefix(key);
        match self.tail.binary_search_by(|&h| self.cmp_probe(h, p, key)) {
            Ok(i) => {
                if let Some(slot) = self.tail.get_mut(i) {
                    *slot = handle;
                }
            }
            Err(i) => self.tail.insert(i, handle),
        }
        self.puts = self.puts.saturating_add(1);
        if self.tail.len() >= TAIL_MAX {
            self.seal_tail();
        }
        self.drop_overwritten();
        Ok(())
    }

    /// Rewrites the buffer with only each key's newest put when more than half the puts
    /// since the last rewrite were overwritten (a transaction updating a few keys many
    /// times would otherwise keep every value it ever wrote). Checked each time the
    /// buffer doubles past [`REWRITE_BYTES_MIN`], so a load of distinct keys pays a sum,
    /// not a walk; the new buffer is at most half the old one.
    fn drop_overwritten(&mut self) {
        let checked = self.checked_len as usize;
        if self.data.len() < REWRITE_BYTES_MIN.max(checked.saturating_mul(2)) {
            return;
        }
        self.checked_len = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        // Merges keep one handle per key: few handles for many puts means overwrites.
        let handles = self.tail.len() + self.runs.iter().map(Vec::len).sum::<usize>();
        if handles.saturating_mul(2) > self.puts as usize {
            return;
        }
        let mut data = Vec::new();
        let mut run = Vec::new();
        for (key, value) in self.iter() {
            run.push(append_entry(&mut data, key, value));
        }
        self.puts = u32::try_from(run.len()).unwrap_or(u32::MAX);
        self.checked_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.data = data;
        self.runs = vec![run];
        self.tail.clear();
    }

    /// The newest put of `key`: `Some(None)` for a tombstone, `None` when not written.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let p = prefix(key);
        for run in std::iter::once(&self.tail).chain(self.runs.iter().rev()) {
            if let Ok(i) = run.binary_search_by(|&h| self.cmp_probe(h, p, key)) {
                return run.get(i).map(|&h| self.value(h));
            }
        }
        None
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Keys written (each counted once). Walks every run: O(keys).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Bytes the buffer holds (every put, overwritten ones included).
    pub fn buffer_len(&self) -> usize {
        self.data.len()
    }

    /// Every written key with its newest value, in key order.
    pub fn iter(&self) -> Iter<'_> {
        self.range(Bound::Unbounded, Bound::Unbounded, false)
    }

    /// The keys written, in order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> + Clone {
        self.iter().map(|(k, _)| k)
    }

    /// Written keys in `(lo, hi)` with their newest values, in key order, or in reverse
    /// order when `reverse`.
    pub fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>, reverse: bool) -> Iter<'_> {
        let below = |h: u64| match lo {
            Bound::Included(k) => self.key(h) < k,
            Bound::Excluded(k) => self.key(h) <= k,
            Bound::Unbounded => false,
        };
        let within = |h: u64| match hi {
            Bound::Included(k) => self.key(h) <= k,
            Bound::Excluded(k) => self.key(h) < k,
            Bound::Unbounded => true,
        };
        let span = |run: &[u64]| {
            let start = match lo {
                Bound::Unbounded => 0,
                _ => run.partition_point(|&h| below(h)),
            };
            let end = match hi {
                Bound::Unbounded => run.len(),
                _ => run.partition_point(|&h| within(h)).max(start),
            };
            (start, end)
        };
        Iter {
            writes: self,
            tail: span(&self.tail),
            spans: self.runs.iter().map(|run| span(run)).collect(),
            reverse,
        }
    }

    fn key(&self, h: u64) -> &[u8] {
        self.entry(h).0
    }

    fn value(&self, h: u64) -> Option<&[u8]> {
        self.entry(h).1
    }

    fn entry(&self, h: u64) -> (&[u8], Option<&[u8]>) {
        let mut at = handle_offset(h);
        let key_len = read_varint(&self.data, &mut at) as usize;
        let tag = read_varint(&self.data, &mut at) as usize;
        let key_end = at + key_len;
        let key = self.data.get(at..key_end).unwrap_or(&[]);
        let value = match tag {
            0 => None,
            t => Some(self.data.get(key_end..key_end + (t - 1)).unwrap_or(&[])),
        };
        debug_assert!(key.len() == key_len, "a handle points into its buffer");
        (key, value)
    }

    fn cmp_handles(&self, a: u64, b: u64) -> Ordering {
        match handle_prefix(a).cmp(&handle_prefix(b)) {
            Ordering::Equal if a == b => Ordering::Equal,
            Ordering::Equal => self.key(a).cmp(self.key(b)),
            other => other,
        }
    }

    /// A handle against a probe key whose prefix is `p`.
    fn cmp_probe(&self, h: u64, p: u32, key: &[u8]) -> Ordering {
        match handle_prefix(h).cmp(&p) {
            Ordering::Equal => self.key(h).cmp(key),
            other => other,
        }
    }

    /// Turns the tail into a run, then merges runs until each is at least twice the
    /// next newer one.
    fn seal_tail(&mut self) {
        let run = std::mem::replace(&mut self.tail, Vec::with_capacity(TAIL_MAX));
        self.runs.push(run);
        while let [.., older, newer] = self.runs.as_slice() {
            if newer.len() * 2 < older.len() {
                break;
            }
            let (Some(newer), Some(older)) = (self.runs.pop(), self.runs.pop()) else {
                break;
            };
            let merged = self.merge(older, &newer);
            self.runs.push(merged);
        }
    }

    /// Merges two runs in `older`'s buffer, from the back (no second buffer: the last
    /// merges of a large load would otherwise briefly hold every handle twice); on a key
    /// in both, `newer`'s handle wins.
    fn merge(&self, mut older: Vec<u64>, newer: &[u64]) -> Vec<u64> {
        let kept = older.len();
        older.resize(kept + newer.len(), 0);
        // Unread older handles lie below `i`; the merged tail starts at `w >= i`.
        let (mut i, mut j, mut w) = (kept, newer.len(), older.len());
        while let Some(&b) = j.checked_sub(1).and_then(|at| newer.get(at)) {
            let a = i.checked_sub(1).and_then(|at| older.get(at)).copied();
            let take = match a.map(|a| self.cmp_handles(a, b)) {
                Some(Ordering::Greater) => {
                    i -= 1;
                    a
                }
                Some(Ordering::Equal) => {
                    i -= 1;
                    j -= 1;
                    Some(b)
                }
                _ => {
                    j -= 1;
                    Some(b)
                }
            };
            w -= 1;
            if let (Some(h), Some(slot)) = (take, older.get_mut(w)) {
                *slot = h;
            }
        }
        // Older handles below `i` are already in place; close the gap duplicates left.
        let end = older.len();
        older.copy_within(w..end, i);
        older.truncate(i + (end - w));
        older
    }
}

impl fmt::Debug for TableWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for TableWrites {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for TableWrites {}

/// Written keys with their newest values, in key order or reversed
/// ([`TableWrites::range`]): a merge of the runs and the sorted tail.
#[derive(Clone)]
pub struct Iter<'a> {
    writes: &'a TableWrites,
    /// The part of the tail not yet yielded.
    tail: (usize, usize),
    /// Per run, oldest first: the part not yet yielded (empty, unallocated, when the
    /// writes fit the tail).
    spans: Vec<(usize, usize)>,
    reverse: bool,
}

impl Iter<'_> {
    /// An iteration over nothing.
    pub fn empty() -> Iter<'static> {
        static NOTHING: TableWrites = TableWrites {
            data: Vec::new(),
            runs: Vec::new(),
            tail: Vec::new(),
            puts: 0,
            checked_len: 0,
        };
        Iter {
            writes: &NOTHING,
            tail: (0, 0),
            spans: Vec::new(),
            reverse: false,
        }
    }

    /// The next handle of source `i` (each run, oldest first, then the tail) in the
    /// iteration's direction.
    fn head(&self, i: usize) -> Option<u64> {
        let ((start, end), source) = match self.spans.get(i) {
            Some(&span) => (span, self.writes.runs.get(i)?.as_slice()),
            None => (self.tail, self.writes.tail.as_slice()),
        };
        if start >= end {
            return None;
        }
        let at = if self.reverse { end - 1 } else { start };
        source.get(at).copied()
    }

    fn advance(&mut self, i: usize) {
        let span = if i < self.spans.len() {
            self.spans.get_mut(i)
        } else {
            Some(&mut self.tail)
        };
        if let Some((start, end)) = span {
            if self.reverse {
                *end -= 1;
            } else {
                *start += 1;
            }
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let w = self.writes;
        let wanted = if self.reverse {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        // The first key in the direction; on a tie the later (newer) source wins.
        if self.spans.is_empty() {
            let h = self.head(0)?;
            self.advance(0);
            return Some(w.entry(h));
        }
        let mut best: Option<u64> = None;
        for i in 0..=self.spans.len() {
            let Some(h) = self.head(i) else { continue };
            let o = best.map_or(wanted, |b| w.cmp_handles(h, b));
            if o == wanted || o == Ordering::Equal {
                best = Some(h);
            }
        }
        let best = best?;
        for i in 0..=self.spans.len() {
            if self
                .head(i)
                .is_some_and(|h| w.cmp_handles(h, best) == Ordering::Equal)
            {
                self.advance(i);
            }
        }
        Some(w.entry(best))
    }
}

impl<'a> IntoIterator for &'a TableWrites {
    type Item = (&'a [u8], Option<&'a [u8]>);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, Option<V>)> for TableWrites {
    /// Writes in order, later ones replacing earlier ones of the same key.
    ///
    /// # Panics
    /// When one table's writes pass 4 GiB (the buffer's 32-bit addressing).
    fn from_iter<T: IntoIterator<Item = (K, Option<V>)>>(iter: T) -> Self {
        let mut w = TableWrites::new();
        for (k, v) in iter {
            let inserted = w.insert(k.as_ref(), v.as_ref().map(AsRef::as_ref));
            assert!(
                inserted.is_ok(),
                "write set over {TABLE_WRITES_BYTES_MAX} bytes"
            );
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Put(Vec<u8>, Option<Vec<u8>>),
        Get(Vec<u8>),
        Range(Vec<u8>, Vec<u8>, bool, bool),
    }

    fn small_key() -> impl Strategy<Value = Vec<u8>> {
        // Few distinct keys, many sharing a prefix: overwrites and prefix ties.
        prop_oneof![
            prop::collection::vec(0u8..3, 0..7),
            prop::collection::vec(any::<u8>(), 0..3),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (small_key(), prop::option::of(prop::collection::vec(any::<u8>(), 0..5)))
                .prop_map(|(k, v)| Op::Put(k, v)),
            1 => small_key().prop_map(Op::Get),
            1 => (small_key(), small_key(), any::<bool>(), any::<bool>())
                .prop_map(|(a, b, inc, rev)| Op::Range(a, b, inc, rev)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Against a `BTreeMap`: every get, range (both directions) and full iteration.
        #[test]
        fn behaves_as_a_sorted_map(ops in prop::collection::vec(op(), 0..600)) {
            let mut w = TableWrites::new();
            let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        w.insert(&k, v.as_deref()).unwrap();
                        model.insert(k, v);
                    }
                    Op::Get(k) => {
                        let got = w.get(&k).map(|v| v.map(<[u8]>::to_vec));
                        prop_assert_eq!(got, model.get(&k).cloned());
                    }
                    Op::Range(a, b, inclusive, reverse) => {
                        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                        let hi_bound = if inclusive {
                            Bound::Included(hi.as_slice())
                        } else {
                            Bound::Excluded(hi.as_slice())
                        };
                        let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = w
                            .range(Bound::Included(lo.as_slice()), hi_bound, reverse)
                            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                            .collect();
                        let mut want: Vec<(Vec<u8>, Option<Vec<u8>>)> = if !inclusive && lo == hi {
                            Vec::new()
                        } else {
                            model
                                .range::<[u8], _>((Bound::Included(lo.as_slice()), hi_bound))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        };
                        if reverse {
                            want.reverse();
                        }
                        prop_assert_eq!(got, want);
                    }
                }
            }
            let all: Vec<(Vec<u8>, Option<Vec<u8>>)> = w
                .iter()
                .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                .collect();
            let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = model.into_iter().collect();
            prop_assert_eq!(w.len(), want.len());
            prop_assert_eq!(all, want);
        }
    }

    /// A `WriteSet` leaf node holds 11 of these: at 80 bytes it stays within the
    /// allocator's small-size cache (at 88 every transaction's first write paid for a
    /// large-block allocation).
    #[test]
    fn table_writes_stay_small() {
        assert!(std::mem::size_of::<TableWrites>() <= 80);
    }

    #[test]
    fn runs_stay_few_over_many_puts() {
        let mut w = TableWrites::new();
        for i in 0..100_000u32 {
            let key = (i.wrapping_mul(2_654_435_761)).to_be_bytes();
            w.insert(&key, Some(b"v")).unwrap();
        }
        assert!(w.runs.len() <= 13, "{} runs", w.runs.len());
        assert_eq!(w.len(), 100_000);
        assert!(w.keys().zip(w.keys().skip(1)).all(|(a, b)| a < b));
    }

    /// A few keys overwritten many times: the buffer keeps about their newest puts, not
    /// every put (here 400,000 puts of 100-byte values, 40 MB in all).
    #[test]
    fn overwrites_do_not_pile_up() {
        let mut w = TableWrites::new();
        for i in 0..400_000u32 {
            let key = (i % 10).to_be_bytes();
            let mut value = [0u8; 100];
            value[..4].copy_from_slice(&i.to_le_bytes());
            w.insert(&key, Some(&value)).unwrap();
        }
        assert!(
            w.buffer_len() <= 2 * REWRITE_BYTES_MIN,
            "{}",
            w.buffer_len()
        );
        assert_eq!(w.len(), 10);
        for k in 0..10u32 {
            let last = 400_000 - 10 + k;
            let v = w.get(&k.to_be_bytes()).unwrap().unwrap();
            assert_eq!(&v[..4], &last.to_le_bytes());
        }
    }

    #[test]
    fn long_values_and_keys_round_trip() {
        let mut w = TableWrites::new();
        let key = vec![7u8; 2048];
        let value = vec![9u8; 70_000];
        w.insert(&key, Some(&value)).unwrap();
        w.insert(b"", None).unwrap();
        assert_eq!(w.get(&key), Some(Some(value.as_slice())));
        assert_eq!(w.get(b""), Some(None));
        assert_eq!(w.get(b"x"), None);
    }
}
