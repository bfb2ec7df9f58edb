//! The sorted runs of one table's writes ([`super::TableWrites`]): each run holds its
//! records in key order, one per key, in chunks of about [`CHUNK`] bytes (a record never
//! spans two chunks); a fence (the key's first eight bytes and the position) for every
//! [`SPARSE`]-th record; and a blocked Bloom filter of its keys, [`FILTER_BITS`] bits a
//! key, so a read skips most runs that lack its key without touching their records. A
//! run keeps no index entry per record: a million puts of 24-byte keys and 16-byte
//! values take 40 MB of records, 0.5 MB of fences and at most 1 MB of filter.
//!
//! A record is the key's length and a tag as LEB128 varints (the tag is 0 for a
//! tombstone, else the value's length plus one), then the key, then the value. A run
//! whose records all have the same key length, or the same tag, leaves that varint out
//! of every record and keeps it once, in its [`Shape`] (a bulk load of fixed-size keys
//! and values saves two bytes a put: 5% of a 40-byte pair).
//!
//! Runs are merged by [`merge`], which drops each input chunk as soon as it has read past
//! it: merging runs that hold most of a transaction's writes costs a few chunks of memory
//! beyond its output, not a second copy. A record of [`OWN_CHUNK_MIN`] bytes or more has
//! a chunk of its own, which a merge moves to its output instead of copying it.

use std::cmp::Ordering;
use std::ops::Range;

use super::{cmp_keys, first_word};

mod merge;
pub(super) use merge::{MERGE_MAX, merge};

/// Bytes a chunk is allocated with (a record of more than a quarter of it gets a chunk of
/// its own size).
#[cfg(not(test))]
const CHUNK: usize = 64 << 10;
/// Small in unit tests, so records cross chunk boundaries often.
#[cfg(test)]
const CHUNK: usize = 64;

/// Bytes from which a record gets a chunk of its own size, which merges then move from
/// run to run instead of copying the record: a large value is copied into the first
/// run it joins, and after that only its chunk's place moves (a merge of records of
/// 4 KB values no longer copies each of them at every level). Below it, records share
/// chunks (one allocation each would cost more than the copies it saves).
#[cfg(not(test))]
const OWN_CHUNK_MIN: usize = 2048;
#[cfg(test)]
const OWN_CHUNK_MIN: usize = CHUNK / 4;

/// A record gets a fence when this many records, or [`FENCE_BYTES`] bytes of them, have
/// passed since the last fence.
#[cfg(not(test))]
const SPARSE: usize = 32;
#[cfg(test)]
const SPARSE: usize = 3;

/// See [`SPARSE`]: a read walks at most about this many bytes of records from a fence.
#[cfg(not(test))]
const FENCE_BYTES: usize = 2048;
#[cfg(test)]
const FENCE_BYTES: usize = 40;

/// How many chunks ahead a walk over a run asks for ([`Run::prefetch_ahead`]).
const PREFETCH_CHUNKS: usize = 4;

/// Bits of a run's filter per key it holds.
const FILTER_BITS: usize = 8;

/// Bits a key sets in its filter block.
const FILTER_PROBES: u32 = 4;

/// Room a record's two varints may take.
pub(super) const VARINTS_LEN_MAX: usize = 20;

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

/// Appends the record of `key = value` (`None`: a tombstone), with both varints, to `out`.
pub(super) fn push_record(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    // One growth for the whole record.
    out.reserve(VARINTS_LEN_MAX + key.len() + value.map_or(0, <[u8]>::len));
    Shape::FULL.encode(out, key, value);
}

/// What every record of a run shares and therefore leaves out: the key's length, the tag
/// (see the module doc). [`Shape::FULL`] leaves out nothing; the tail's records have it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Shape {
    key_len: Option<u64>,
    tag: Option<u64>,
}

fn tag_of(value: Option<&[u8]>) -> u64 {
    value.map_or(0, |v| v.len() as u64 + 1)
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

impl Shape {
    pub(super) const FULL: Shape = Shape {
        key_len: None,
        tag: None,
    };

    /// The shape of the one record `key = value`. The empty key keeps its length's
    /// varint: a record must take at least one byte (a run of only the empty key, with
    /// no value, would otherwise hold a record of no bytes, which reads cannot find).
    pub(super) fn of(key: &[u8], value: Option<&[u8]>) -> Shape {
        Shape {
            key_len: (!key.is_empty()).then_some(key.len() as u64),
            tag: Some(tag_of(value)),
        }
    }

    /// What records of either shape share.
    pub(super) fn meet(self, other: Shape) -> Shape {
        let same = |a: Option<u64>, b: Option<u64>| if a == b { a } else { None };
        Shape {
            key_len: same(self.key_len, other.key_len),
            tag: same(self.tag, other.tag),
        }
    }

    /// Bytes a record of `self` takes in a run of `out`, beyond its bytes here.
    fn growth_into(self, out: Shape) -> usize {
        let grown = |here: Option<u64>, there: Option<u64>| match (here, there) {
            (Some(v), None) => varint_len(v),
            _ => 0,
        };
        grown(self.key_len, out.key_len) + grown(self.tag, out.tag)
    }

    /// Bytes of the record `key = value` in this shape.
    fn encoded_len(self, key: &[u8], value: Option<&[u8]>) -> usize {
        let key_len = match self.key_len {
            Some(_) => 0,
            None => varint_len(key.len() as u64),
        };
        let tag = match self.tag {
            Some(_) => 0,
            None => varint_len(tag_of(value)),
        };
        key_len + tag + key.len() + value.map_or(0, <[u8]>::len)
    }

    /// Appends the record `key = value`, of this shape, to `out`.
    fn encode(self, out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
        if self.key_len.is_none() {
            push_varint(out, key.len() as u64);
        }
        if self.tag.is_none() {
            push_varint(out, tag_of(value));
        }
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(v);
        }
    }

    /// Where the record at `at` of `data` keeps its key and value, and where it ends.
    /// `None` past the data's end.
    fn parse(self, data: &[u8], at: usize) -> Option<(Range<usize>, Option<Range<usize>>, usize)> {
        if at >= data.len() {
            return None;
        }
        let mut p = at;
        let key_len = match self.key_len {
            Some(k) => k,
            None => read_varint(data, &mut p),
        } as usize;
        let tag = match self.tag {
            Some(t) => t,
            None => read_varint(data, &mut p),
        } as usize;
        let key = p..p + key_len;
        let (value, end) = match tag {
            0 => (None, key.end),
            t => (Some(key.end..key.end + (t - 1)), key.end + (t - 1)),
        };
        debug_assert!(end <= data.len(), "a record lies within its chunk");
        Some((key, value, end))
    }

    /// The record at `at` of `data`: key, value (`None` for a tombstone), and the offset
    /// where the next record starts.
    pub(super) fn record(self, data: &[u8], at: usize) -> Option<Record<'_>> {
        let (key, value, end) = self.parse(data, at)?;
        let value = match value {
            Some(v) => Some(data.get(v)?),
            None => None,
        };
        Some((data.get(key)?, value, end))
    }
}

/// A record read from its bytes: key, value (`None` for a tombstone), and the offset
/// where the next record starts.
pub(super) type Record<'a> = (&'a [u8], Option<&'a [u8]>, usize);

/// Whether `key` lies below `bound`: before it, or equal to it when `inclusive`.
#[inline]
pub(super) fn below(key: &[u8], bound: &[u8], inclusive: bool) -> bool {
    match cmp_keys(key, bound) {
        Ordering::Less => true,
        Ordering::Equal => inclusive,
        Ordering::Greater => false,
    }
}

/// A record's place in a run: its chunk and its offset there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    chunk: u32,
    off: u32,
}

/// The first record of a block of records (at most [`SPARSE`], or about
/// [`FENCE_BYTES`]): its key's first eight bytes ([`first_word`]) and its position.
#[derive(Clone, Copy, Debug, Default)]
struct Fence {
    word: u64,
    pos: Pos,
}

/// A key's hash for the runs' filters (a multiply-xorshift over its 8-byte words).
pub(super) fn key_hash(key: &[u8]) -> u64 {
    const M: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (key.len() as u64).wrapping_mul(M);
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(M);
        h ^= h >> 29;
    }
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(words.remainder()) {
        *d = *s;
    }
    h = (h ^ u64::from_le_bytes(b)).wrapping_mul(M);
    h ^= h >> 32;
    h = h.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^ (h >> 32)
}

/// A blocked Bloom filter: a key sets [`FILTER_PROBES`] bits of one 512-bit block, so a
/// lookup touches one cache line. With no blocks it holds nothing and answers "maybe".
#[derive(Clone, Default)]
struct Filter {
    blocks: Vec<[u64; 8]>,
}

impl Filter {
    fn with_keys(keys: usize) -> Self {
        let blocks = (keys * FILTER_BITS).div_ceil(512).max(1);
        Self {
            blocks: vec![[0u64; 8]; blocks],
        }
    }

    /// The block of a hash and its bits: (word, bit) pairs.
    fn place(&self, h: u64) -> (usize, impl Iterator<Item = (usize, u64)> + use<>) {
        let block = ((u128::from(h) * self.blocks.len() as u128) >> 64) as usize;
        let bits = (0..FILTER_PROBES).map(move |i| {
            let bit = (h >> (i * 9)) & 511;
            ((bit >> 6) as usize, 1u64 << (bit & 63))
        });
        (block, bits)
    }

    fn insert(&mut self, h: u64) {
        let (block, bits) = self.place(h);
        if let Some(b) = self.blocks.get_mut(block) {
            for (w, m) in bits {
                if let Some(word) = b.get_mut(w) {
                    *word |= m;
                }
            }
        }
    }

    /// Whether a key of hash `h` may be in the run (false: it is not).
    fn may_hold(&self, h: u64) -> bool {
        let (block, mut bits) = self.place(h);
        self.blocks
            .get(block)
            .is_none_or(|b| bits.all(|(w, m)| b.get(w).is_some_and(|&x| x & m != 0)))
    }
}

/// Records in key order, one per key (see the module doc).
#[derive(Clone, Default)]
pub(super) struct Run {
    chunks: Vec<Vec<u8>>,
    /// Fences, the first record's included, in order.
    fences: Vec<Fence>,
    filter: Filter,
    len: usize,
    bytes: usize,
    /// Bytes of its records' keys and values (what a transaction's size limit counts).
    payload: usize,
    /// How many merges made this run (0: a sealed tail), or the level its size stands
    /// for after runs were appended to it ([`Run::try_append`]).
    level: u8,
    /// What its records leave out.
    shape: Shape,
    /// Where its last record starts (meaningless while it has none).
    last: Pos,
}

/// Where a record keeps its key and value in its chunk, and the position of the record
/// after it ([`Run::locate`]).
type Located = (Range<usize>, Option<Range<usize>>, Pos);

/// A record read in place: key, value (`None` for a tombstone), and the position of the
/// record after it.
pub(super) type Entry<'a> = (&'a [u8], Option<&'a [u8]>, Pos);

impl Run {
    /// Records held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of records held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes of the keys and values its records hold.
    pub(super) fn payload(&self) -> usize {
        self.payload
    }

    pub(super) fn level(&self) -> u8 {
        self.level
    }

    /// Raises the run's level to `level` (a run appended to stands for the level its size
    /// would have reached by merges, so the leveling keeps merging like with like; the
    /// caller caps it at the level of the run before).
    pub(super) fn raise_level(&mut self, level: u8) {
        self.level = self.level.max(level);
    }

    /// Appends `next`, when every key of `next` is above every key of this run and its
    /// records can take this run's shape: chunks and fences move, no record is copied
    /// (one whose shape leaves out more than this run's is re-encoded into it). The run
    /// then has no filter: a read first checks that the key lies within the run's first
    /// and last keys (a load in key order leaves one run of disjoint stretches, which a
    /// filter of their union would not turn away any better). Gives `next` back when it
    /// cannot be appended.
    pub(super) fn try_append(&mut self, next: Run) -> Option<Run> {
        if self.len == 0 || next.len == 0 {
            return Some(next);
        }
        let ordered = match (self.entry(self.last), next.entry(next.start())) {
            (Some((last, _, _)), Some((first, _, _))) => cmp_keys(last, first).is_lt(),
            _ => false,
        };
        if !ordered || self.shape.meet(next.shape) != self.shape {
            return Some(next);
        }
        let next = if next.shape == self.shape {
            next
        } else {
            let mut b = RunBuilder::new(next.level, next.len, next.bytes, true, self.shape);
            let mut pos = next.start();
            while let Some((key, value, after)) = next.entry(pos) {
                b.push(key, value);
                pos = after;
            }
            b.finish()
        };
        let shift = self.chunks.len() as u32;
        let moved = |p: Pos| Pos {
            chunk: p.chunk + shift,
            off: p.off,
        };
        self.fences.extend(next.fences.iter().map(|f| Fence {
            word: f.word,
            pos: moved(f.pos),
        }));
        self.chunks.extend(next.chunks);
        self.last = moved(next.last);
        self.len += next.len;
        self.bytes += next.bytes;
        self.payload += next.payload;
        self.level = self.level.max(next.level);
        self.filter = Filter::default();
        None
    }

    /// Whether `key` lies within the run's first and last keys.
    fn spans_key(&self, key: &[u8]) -> bool {
        match (self.entry(self.start()), self.entry(self.last)) {
            (Some((first, _, _)), Some((last, _, _))) => {
                cmp_keys(first, key).is_le() && cmp_keys(key, last).is_le()
            }
            _ => false,
        }
    }

    /// At the first record of a chunk, asks for the first line of the chunk
    /// [`PREFETCH_CHUNKS`] chunks on: a walk front to back over records of large values
    /// (one chunk each) then finds each record's head in cache instead of missing on it
    /// (on small records it is one line per 64 KiB chunk).
    #[inline]
    pub(super) fn prefetch_ahead(&self, pos: Pos) {
        if pos.off == 0
            && let Some(chunk) = self.chunks.get(pos.chunk as usize + PREFETCH_CHUNKS)
        {
            super::prefetch(chunk, 64);
        }
    }

    /// The record at `pos`, or `None` at the run's end.
    pub(super) fn entry(&self, pos: Pos) -> Option<Entry<'_>> {
        let (key, value, next) = self.locate(pos)?;
        let data = self.chunks.get(pos.chunk as usize)?;
        let value = match value {
            Some(v) => Some(data.get(v)?),
            None => None,
        };
        Some((data.get(key)?, value, next))
    }

    /// Where the record at `pos` keeps its key and value in chunk `pos.chunk`, and the
    /// position of the record after it; `None` at the run's end.
    fn locate(&self, pos: Pos) -> Option<Located> {
        let data = self.chunks.get(pos.chunk as usize)?;
        let (key, value, end) = self.shape.parse(data, pos.off as usize)?;
        let next = if end >= data.len() {
            Pos {
                chunk: pos.chunk + 1,
                off: 0,
            }
        } else {
            Pos {
                chunk: pos.chunk,
                off: end as u32,
            }
        };
        Some((key, value, next))
    }

    /// Where the run starts.
    pub(super) fn start(&self) -> Pos {
        Pos::default()
    }

    /// Where the run ends: past its last record.
    pub(super) fn end(&self) -> Pos {
        Pos {
            chunk: self.chunks.len() as u32,
            off: 0,
        }
    }

    /// The position of the record just before `pos` (`None` at the run's start), found
    /// by walking from the fence before it.
    pub(super) fn before(&self, pos: Pos) -> Option<Pos> {
        let fences = self.fences.partition_point(|f| f.pos < pos);
        let mut at = self.fences.get(fences.checked_sub(1)?)?.pos;
        while let Some((_, _, next)) = self.entry(at) {
            if next >= pos {
                return Some(at);
            }
            at = next;
        }
        None
    }

    /// The position of the first record whose key is not below `bound` (below: less, or
    /// not greater when `inclusive`); the run's end when there is none.
    pub(super) fn partition(&self, bound: &[u8], inclusive: bool) -> Pos {
        let below = |k: &[u8]| below(k, bound, inclusive);
        let word = first_word(bound);
        // Blocks whose first key is below the bound: the answer is in the last of them.
        let blocks = self.fences.partition_point(|f| match f.word.cmp(&word) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.entry(f.pos).is_some_and(|(k, _, _)| below(k)),
        });
        let Some(fence) = blocks.checked_sub(1).and_then(|b| self.fences.get(b)) else {
            return self.start();
        };
        let mut pos = fence.pos;
        while let Some((key, _, next)) = self.entry(pos) {
            if !below(key) {
                break;
            }
            pos = next;
        }
        pos
    }

    /// The record of `key`, whose [`key_hash`] is `hash`: `Some(None)` for a tombstone,
    /// `None` when the run has none.
    pub(super) fn get(&self, key: &[u8], hash: u64) -> Option<Option<&[u8]>> {
        if !self.filter.may_hold(hash) {
            return None;
        }
        if self.filter.blocks.is_empty() && !self.spans_key(key) {
            return None;
        }
        match self.entry(self.partition(key, false)) {
            Some((k, value, _)) if cmp_keys(k, key).is_eq() => Some(value),
            _ => None,
        }
    }
}

/// Builds a run from records pushed in key order.
pub(super) struct RunBuilder {
    run: Run,
    /// Bytes the caller said it may still push: chunks are no longer than that.
    left: usize,
    /// Records and bytes pushed since the last fence.
    since_fence: (usize, usize),
}

impl RunBuilder {
    /// A builder for at most `records` records of `bytes` bytes in all; the run gets a
    /// filter unless it will be the oldest (a read searches that one last, when every
    /// newer run lacked its key, so a filter there would spare it little).
    pub(super) fn new(level: u8, records: usize, bytes: usize, oldest: bool, shape: Shape) -> Self {
        Self {
            run: Run {
                fences: Vec::with_capacity(
                    records
                        .div_ceil(SPARSE)
                        .max(bytes.div_ceil(FENCE_BYTES) + 1)
                        .min(records),
                ),
                filter: if oldest {
                    Filter::default()
                } else {
                    Filter::with_keys(records)
                },
                level,
                shape,
                ..Run::default()
            },
            left: bytes,
            since_fence: (SPARSE, 0),
        }
    }

    /// Appends the record `key = value`, which has the builder's shape, after every
    /// record pushed before it in key order.
    pub(super) fn push(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.run.filter.insert(key_hash(key));
        let shape = self.run.shape;
        let need = shape.encoded_len(key, value);
        let fits = self
            .run
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= need);
        let own = need >= OWN_CHUNK_MIN;
        if !fits || own {
            self.close_chunk();
            // A large record gets a chunk of its own size ([`OWN_CHUNK_MIN`]).
            let room = if own {
                need
            } else {
                CHUNK.min(self.left).max(need)
            };
            self.run.chunks.push(Vec::with_capacity(room));
        }
        let word = first_word(key);
        if let Some(data) = self.run.chunks.last_mut() {
            shape.encode(data, key, value);
        }
        self.run.payload += key.len() + value.map_or(0, <[u8]>::len);
        self.counted(word, need);
    }

    /// Appends a record that comes as a chunk of its own (see [`OWN_CHUNK_MIN`]),
    /// already encoded in the builder's shape, after every record pushed before it in
    /// key order; `hash` and `word` are its key's [`key_hash`] and [`first_word`],
    /// `payload` the bytes of its key and value.
    fn push_own_chunk(&mut self, hash: u64, word: u64, payload: usize, chunk: Vec<u8>) {
        self.run.filter.insert(hash);
        self.run.payload += payload;
        self.close_chunk();
        let need = chunk.len();
        self.run.chunks.push(chunk);
        self.counted(word, need);
    }

    /// Counts a record of `need` bytes just appended at the end of the last chunk,
    /// giving it a fence when one is due.
    fn counted(&mut self, word: u64, need: usize) {
        let (records, bytes) = self.since_fence;
        if records >= SPARSE || bytes >= FENCE_BYTES {
            self.since_fence = (0, 0);
            let chunk = self.run.chunks.len().saturating_sub(1);
            let end = self.run.chunks.last().map_or(0, Vec::len);
            self.run.fences.push(Fence {
                word,
                pos: Pos {
                    chunk: chunk as u32,
                    off: end.saturating_sub(need) as u32,
                },
            });
        }
        self.since_fence.0 += 1;
        self.since_fence.1 += need;
        let end = self.run.chunks.last().map_or(0, Vec::len);
        self.run.last = Pos {
            chunk: self.run.chunks.len().saturating_sub(1) as u32,
            off: end.saturating_sub(need) as u32,
        };
        self.run.len += 1;
        self.run.bytes += need;
        self.left = self.left.saturating_sub(need);
    }

    /// Gives back the room the last chunk will not use, when that is more than an
    /// eighth of it. A chunk keeps a smaller slack (less than one record): chunks of
    /// one size are what a merge frees and then allocates again, and a chunk shrunk by a
    /// few bytes would no longer fit the next allocation (with 1 KiB records that left
    /// a fifth of the heap free but unusable).
    fn close_chunk(&mut self) {
        if let Some(last) = self.run.chunks.last_mut()
            && last.capacity() - last.len() > last.capacity() / 8
        {
            last.shrink_to_fit();
        }
    }

    pub(super) fn finish(mut self) -> Run {
        self.close_chunk();
        self.run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> [u8; 12] {
        let mut k = [0u8; 12];
        k[..4].copy_from_slice(b"key:");
        k[4..8].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
        k[8..].copy_from_slice(&i.to_be_bytes());
        k
    }

    fn run_of(keys: &[[u8; 12]], oldest: bool) -> Run {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        let mut b = RunBuilder::new(1, sorted.len(), sorted.len() * 16, oldest, Shape::FULL);
        for k in &sorted {
            b.push(k, Some(b"v"));
        }
        b.finish()
    }

    /// Whether `run` finds none of the keys `key(i)` for `i` in `ids`.
    fn lacks(run: &Run, ids: std::ops::Range<u32>) -> bool {
        ids.map(key).all(|k| run.get(&k, key_hash(&k)).is_none())
    }

    /// Every key of a run is found (a filter never says no to a key it holds), and a
    /// filter turns away most absent keys: at 8 bits and 4 probes a key, about 3% of
    /// them get through.
    #[test]
    fn filter_finds_every_key_and_spares_most_misses() {
        let keys: Vec<[u8; 12]> = (0..20_000).map(key).collect();
        let run = run_of(&keys, false);
        for k in &keys {
            assert_eq!(run.get(k, key_hash(k)), Some(Some(&b"v"[..])));
        }
        let passed = (20_000..40_000)
            .map(key)
            .filter(|k| run.filter.may_hold(key_hash(k)))
            .count();
        assert!(passed < 20_000 / 15, "{passed} of 20000 absent keys passed");
        assert!(lacks(&run, 20_000..40_000));
    }

    /// The oldest run has no filter and is searched directly.
    #[test]
    fn oldest_run_is_searched_without_a_filter() {
        let keys: Vec<[u8; 12]> = (0..500).map(key).collect();
        let run = run_of(&keys, true);
        assert!(run.filter.blocks.is_empty());
        assert!(keys.iter().all(|k| run.get(k, key_hash(k)).is_some()));
        assert!(lacks(&run, 500..1_000));
    }

    /// `before` walks back through every record, across chunks and fences.
    #[test]
    fn before_steps_back_through_the_run() {
        let keys: Vec<[u8; 12]> = (0..300).map(key).collect();
        let run = run_of(&keys, true);
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        let mut at = run.end();
        for want in sorted.iter().rev() {
            at = run.before(at).unwrap();
            assert_eq!(run.entry(at).unwrap().0, &want[..]);
        }
        assert_eq!(run.before(at), None);
        assert_eq!(at, run.start());
    }
}
