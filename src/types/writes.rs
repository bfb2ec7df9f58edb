//! A transaction's writes to one table, kept compact. The newest puts are appended to a
//! short tail buffer, indexed by sorted 8-byte handles; a full tail becomes a sorted run
//! ([`super::write_runs`]): its records copied out in key order, one per key, with a
//! fence every 32 records or 2 KiB and a Bloom filter of its keys. Runs are merged four at
//! a time (a run made by `n` merges is merged only with three others made by `n` merges),
//! so a put is copied about `log4(puts / TAIL_MAX)` times (a large one, which gets a
//! chunk of its own, twice: into the tail and into its first run), reads search about
//! `3 × log4(puts / TAIL_MAX)` + 1 runs (a few more when tails seal on their byte limit,
//! large values; most of them turned away by their filter), and a
//! merge drops each input chunk as soon as it has read past it. Keys put in key order
//! are neither searched nor merged: a put after the tail's last key is appended to it,
//! and a sealed run whose keys all lie above the newest run's is appended to that run
//! (its chunks move; [`Run::try_append`]), so an ascending load ends as one run, each
//! record copied once.
//!
//! A million 24-byte keys with 16-byte values take 40 MB of records (a run leaves out
//! the lengths all its records share) and about 1.5 MB of fences and filters; with an
//! 8-byte handle per put, as before, they took 50 MB, and a
//! `BTreeMap<Vec<u8>, Arc<[u8]>>` several times that in separate allocations. An
//! overwritten put stays in its run until a merge meets the newer one.
//!
//! Layout of one record: the key's length and a tag as LEB128 varints (the tag is 0 for
//! a tombstone, else the value's length plus one), then the key, then the value. A tail
//! handle is the key's first four bytes (big-endian, zero-padded) in its high 32 bits and
//! the record's offset in the tail buffer in its low 32, so most comparisons between
//! handles never touch the buffer.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Bound;

use super::write_runs::{self, MERGE_MAX, Pos, Run, RunBuilder, Shape, VARINTS_LEN_MAX};
use super::{cmp_keys, first_word};

/// Keys kept in the tail before it becomes a run.
#[cfg(not(test))]
const TAIL_MAX: usize = 64;
/// Small in unit tests, so a few hundred puts make and merge many runs.
#[cfg(test)]
const TAIL_MAX: usize = 4;

/// Tail bytes from which it becomes a run whatever its keys (overwrites of a few keys
/// would otherwise grow it without bound).
#[cfg(not(test))]
const TAIL_BYTES: usize = 32 << 10;
#[cfg(test)]
const TAIL_BYTES: usize = 48;

/// Runs made by the same number of merges that are merged into one.
const FAN_IN: usize = 4;

// A merge takes at most `MERGE_MAX` runs.
const _: () = assert!(FAN_IN <= MERGE_MAX);

/// The level merges would have given a run of `records` records: tail runs of
/// [`TAIL_MAX`] records merged [`FAN_IN`] at a time.
fn level_of(records: usize) -> u8 {
    let (mut level, mut size) = (0u8, TAIL_MAX);
    while size < records && level < u8::MAX {
        size = size.saturating_mul(FAN_IN);
        level += 1;
    }
    level
}

/// Most bytes one table's writes hold.
pub const TABLE_WRITES_BYTES_MAX: usize = u32::MAX as usize;

/// A transaction's writes to one table: key → new value, or `None` for a tombstone. Reads
/// and iteration see the newest put of each key, in key order.
#[derive(Clone, Default)]
pub struct TableWrites {
    /// Sorted runs, oldest first; a newer run's record of a key wins.
    runs: Vec<Run>,
    /// The newest puts, as records, in the order they came.
    tail_data: Vec<u8>,
    /// Handles of the tail's newest record of each key, sorted by key (fewer than
    /// `TAIL_MAX`); newer than every run.
    tail: Vec<u64>,
    /// Bytes of records in the runs and the tail (at most [`TABLE_WRITES_BYTES_MAX`];
    /// `u32` keeps the struct small, see the test `table_writes_stay_small`).
    bytes: u32,
    /// Bytes of the keys and values of those records ([`TableWrites::payload`]).
    payload: u32,
}

/// The buffer of one table's writes is full ([`TABLE_WRITES_BYTES_MAX`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritesFull;

/// The first four bytes of `key`, big-endian, zero-padded: ordering by it and then by the
/// whole key is the keys' byte order.
fn prefix(key: &[u8]) -> u32 {
    (first_word(key) >> 32) as u32
}

/// `n` as a `u32`, `u32::MAX` when larger.
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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
        let len = key.len() + value.map_or(0, <[u8]>::len);
        let need = VARINTS_LEN_MAX + len;
        if (self.bytes as usize).saturating_add(need) > TABLE_WRITES_BYTES_MAX {
            return Err(WritesFull);
        }
        let offset = self.tail_data.len();
        write_runs::push_record(&mut self.tail_data, key, value);
        self.bytes = saturate(self.bytes as usize + (self.tail_data.len() - offset));
        self.payload = saturate(self.payload as usize + len);
        let p = prefix(key);
        let handle = (u64::from(p) << 32) | offset as u64;
        // Keys put in order go after the tail's last without a search.
        let after_last = self
            .tail
            .last()
            .is_none_or(|&h| self.cmp_probe(h, p, key).is_lt());
        let found = if after_last {
            Err(self.tail.len())
        } else {
            self.tail.binary_search_by(|&h| self.cmp_probe(h, p, key))
        };
        match found {
            Ok(i) => {
                if let Some(slot) = self.tail.get_mut(i) {
                    *slot = handle;
                }
            }
            Err(i) => self.tail.insert(i, handle),
        }
        if self.tail.len() >= TAIL_MAX || self.tail_data.len() >= TAIL_BYTES {
            self.seal_tail();
        }
        Ok(())
    }

    /// The newest put of `key`: `Some(None)` for a tombstone, `None` when not written.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let p = prefix(key);
        if let Ok(i) = self.tail.binary_search_by(|&h| self.cmp_probe(h, p, key)) {
            return self.tail.get(i).map(|&h| self.tail_entry(h).1);
        }
        let hash = write_runs::key_hash(key);
        self.runs.iter().rev().find_map(|run| run.get(key, hash))
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.tail.is_empty() && self.runs.is_empty()
    }

    /// Keys written (each counted once). Walks every run: O(keys).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Bytes of records held (overwritten puts included until a merge drops them).
    pub fn buffer_len(&self) -> usize {
        self.bytes as usize
    }

    /// Bytes of the keys and values held: those of the newest put of each key, plus
    /// those of overwritten puts a merge has not yet dropped (the tail's, and fewer than
    /// four runs' at each level: for a working set rewritten pass after pass, up to
    /// about ten times its newest size, [`crate::MAX_TRANSACTION_BYTES`]). What a
    /// transaction's size limit counts, so overwriting one key a million times does not
    /// reach it.
    pub fn payload(&self) -> usize {
        self.payload as usize
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
        // Each bound as a partition: the key, and whether keys equal to it lie below.
        let lower = match lo {
            Bound::Included(b) => Some((b, false)),
            Bound::Excluded(b) => Some((b, true)),
            Bound::Unbounded => None,
        };
        let upper = match hi {
            Bound::Included(b) => Some((b, true)),
            Bound::Excluded(b) => Some((b, false)),
            Bound::Unbounded => None,
        };
        let tail_start = lower.map_or(0, |(b, inclusive)| self.tail_partition(b, inclusive));
        let tail_end = upper
            .map_or(self.tail.len(), |(b, inclusive)| {
                self.tail_partition(b, inclusive)
            })
            .max(tail_start);
        let spans = self
            .runs
            .iter()
            .map(|run| {
                let start = lower.map_or(run.start(), |(b, inclusive)| run.partition(b, inclusive));
                let end = upper
                    .map_or(run.end(), |(b, inclusive)| run.partition(b, inclusive))
                    .max(start);
                Span::new(run, start, end, reverse)
            })
            .collect();
        Iter {
            writes: self,
            tail: (tail_start, tail_end),
            spans,
            reverse,
        }
    }

    /// The index of the first tail handle whose key is not below `bound` (see
    /// [`write_runs::below`]).
    fn tail_partition(&self, bound: &[u8], inclusive: bool) -> usize {
        self.tail
            .partition_point(|&h| write_runs::below(self.tail_entry(h).0, bound, inclusive))
    }

    /// The tail record a handle points to.
    fn tail_entry(&self, h: u64) -> (&[u8], Option<&[u8]>) {
        Shape::FULL
            .record(&self.tail_data, handle_offset(h))
            .map_or((&[], None), |(k, v, _)| (k, v))
    }

    /// A tail handle against a probe key whose prefix is `p`.
    fn cmp_probe(&self, h: u64, p: u32, key: &[u8]) -> Ordering {
        match handle_prefix(h).cmp(&p) {
            Ordering::Equal => self.tail_entry(h).0.cmp(key),
            other => other,
        }
    }

    /// Turns the tail into a run, then merges the newest runs while [`FAN_IN`] of them
    /// were made by the same number of merges.
    fn seal_tail(&mut self) {
        let oldest = self.runs.is_empty();
        let shape = self
            .tail
            .iter()
            .map(|&h| {
                let (k, v) = self.tail_entry(h);
                Shape::of(k, v)
            })
            .reduce(Shape::meet)
            .unwrap_or(Shape::FULL);
        let bytes = self.tail_data.len();
        let mut run = RunBuilder::new(0, self.tail.len(), bytes, oldest, shape);
        for &h in &self.tail {
            let (key, value) = self.tail_entry(h);
            run.push(key, value);
        }
        let run = run.finish();
        // Keys put in order: the new run goes after the newest one without a copy. Its
        // level rises with its size, but never past the run before it: levels must
        // not rise from older runs to newer, or the older run could never again be one
        // of `FAN_IN` newest runs of one level, and runs would pile up unmerged (a load
        // in key order with an earlier key rewritten now and then made two a cycle).
        let cap = self
            .runs
            .len()
            .checked_sub(2)
            .and_then(|i| self.runs.get(i))
            .map_or(u8::MAX, Run::level);
        match self.runs.last_mut() {
            Some(newest) => match newest.try_append(run) {
                None => newest.raise_level(level_of(newest.len()).min(cap)),
                Some(run) => self.runs.push(run),
            },
            None => self.runs.push(run),
        }
        self.tail.clear();
        if self.tail_data.capacity() > 2 * TAIL_BYTES {
            self.tail_data = Vec::new();
        } else {
            self.tail_data.clear();
        }
        while let Some(first) = self.runs.len().checked_sub(FAN_IN) {
            let newest = self.runs.get(first..).unwrap_or(&[]);
            let level = newest.first().map_or(0, Run::level);
            if !newest.iter().all(|r| r.level() == level) {
                break;
            }
            let group = self.runs.split_off(first);
            self.runs.push(write_runs::merge(
                group,
                level.saturating_add(1),
                first == 0,
            ));
        }
        self.bytes = saturate(self.runs.iter().map(Run::bytes).sum());
        self.payload = saturate(self.runs.iter().map(Run::payload).sum());
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

/// The part of one run an iteration has not yet yielded, and its next record in the
/// iteration's direction.
#[derive(Clone)]
struct Span<'a> {
    run: &'a Run,
    /// Positions not yet yielded: `start..end`.
    start: Pos,
    end: Pos,
    /// The next record in the direction while `start < end`: key, value, the position
    /// after it; and its own position.
    head: Option<(write_runs::Entry<'a>, Pos)>,
}

impl<'a> Span<'a> {
    fn new(run: &'a Run, start: Pos, end: Pos, reverse: bool) -> Self {
        let mut span = Self {
            run,
            start,
            end,
            head: None,
        };
        span.load(reverse);
        span
    }

    fn load(&mut self, reverse: bool) {
        if self.start >= self.end {
            self.head = None;
            return;
        }
        let at = if reverse {
            self.run.before(self.end)
        } else {
            self.run.prefetch_ahead(self.start);
            Some(self.start)
        };
        self.head = at.and_then(|at| Some((self.run.entry(at)?, at)));
    }

    fn advance(&mut self, reverse: bool) {
        if let Some(((_, _, next), at)) = self.head {
            if reverse {
                self.end = at;
            } else {
                self.start = next;
            }
        }
        self.load(reverse);
    }
}

/// Written keys with their newest values, in key order or reversed
/// ([`TableWrites::range`]): a merge of the runs and the sorted tail.
#[derive(Clone)]
pub struct Iter<'a> {
    writes: &'a TableWrites,
    /// The part of the tail not yet yielded.
    tail: (usize, usize),
    /// Per run, oldest first (empty, unallocated, when the writes fit the tail).
    spans: Vec<Span<'a>>,
    reverse: bool,
}

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("runs", &self.spans.len())
            .field("reverse", &self.reverse)
            .finish_non_exhaustive()
    }
}

impl<'a> Iter<'a> {
    /// An iteration over nothing.
    pub fn empty() -> Iter<'static> {
        static NOTHING: TableWrites = TableWrites {
            runs: Vec::new(),
            tail_data: Vec::new(),
            tail: Vec::new(),
            bytes: 0,
            payload: 0,
        };
        Iter {
            writes: &NOTHING,
            tail: (0, 0),
            spans: Vec::new(),
            reverse: false,
        }
    }

    /// The tail's next entry in the iteration's direction.
    fn tail_head(&self) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        let (start, end) = self.tail;
        if start >= end {
            return None;
        }
        let at = if self.reverse { end - 1 } else { start };
        let w: &'a TableWrites = self.writes;
        w.tail.get(at).map(|&h| w.tail_entry(h))
    }

    fn advance_tail(&mut self) {
        if self.reverse {
            self.tail.1 -= 1;
        } else {
            self.tail.0 += 1;
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let wanted = if self.reverse {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        // The first key in the direction; on a tie the newer source (a later run, then
        // the tail) wins.
        let mut best: Option<Self::Item> = None;
        for span in &self.spans {
            let Some(((k, v, _), _)) = span.head else {
                continue;
            };
            if best.is_none_or(|(b, _)| cmp_keys(k, b) != wanted.reverse()) {
                best = Some((k, v));
            }
        }
        let tail = self.tail_head();
        if let Some((k, v)) = tail
            && best.is_none_or(|(b, _)| cmp_keys(k, b) != wanted.reverse())
        {
            best = Some((k, v));
        }
        let (key, value) = best?;
        let reverse = self.reverse;
        for span in &mut self.spans {
            if span
                .head
                .is_some_and(|((k, _, _), _)| cmp_keys(k, key).is_eq())
            {
                span.advance(reverse);
            }
        }
        if tail.is_some_and(|(k, _)| cmp_keys(k, key).is_eq()) {
            self.advance_tail();
        }
        Some((key, value))
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
    /// When one table's writes pass 4 GiB.
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
#[path = "writes_tests.rs"]
mod tests;
