//! The read side of the version store: point reads, pinned tables, and bounded scan
//! steps (owned batches, and flat batches whose buffers a borrowing scan reuses).

use super::{Chain, Chains, VersionStore};
use crate::types::{TableId, Value};
use crate::util::HeadKey;
use parking_lot::RwLock;
use std::ops::Bound;
use std::sync::Arc;

/// Entries (visible versions, tombstones included) one [`VersionStore::scan`] call
/// returns at most.
pub const SCAN_BATCH_MAX: usize = 512;

/// Keys one scan call examines at most, visible at its snapshot or not (a bound on the
/// time a table lock is held): a call past many keys committed after its snapshot
/// returns with fewer entries than asked, or none, and a resume point. Larger than a
/// batch, so that a read of one entry (`first`, `last`) past such keys takes a call per
/// 4,096 of them, not one per key.
pub const SCAN_EXAMINE_MAX: usize = 4096;

/// One entry of a scan: a key and its visible value or tombstone.
pub type ScanEntry = (Vec<u8>, Value);

/// The result of one bounded scan step.
#[derive(Default)]
pub struct ScanBatch {
    /// Visible entries in scan order, tombstones included.
    pub entries: Vec<ScanEntry>,
    /// The last key examined when the batch stopped early; `None` when the range is done.
    pub resume_after: Option<Vec<u8>>,
}

/// One table's chains, taken once by a reader: a table's chains stay the same object
/// while the table lives, so a transaction that keeps the pin reads them without the
/// map's lock or a reference count per read (shared writes that two reading threads
/// would pass back and forth).
pub struct TablePin {
    table: TableId,
    chains: Arc<RwLock<Chains>>,
}

impl TablePin {
    /// The table pinned.
    pub fn table(&self) -> TableId {
        self.table
    }

    /// [`VersionStore::get`] in the pinned table.
    pub fn get(&self, key: &[u8], snapshot: u64) -> Option<Value> {
        let chains = self.chains.read();
        let chain = chains.get(&HeadKey::new(key))?;
        chain
            .iter()
            .rev()
            .find(|v| v.seq <= snapshot)
            .map(|v| v.value.clone())
    }
}

/// Scan entries with their keys back to back in one buffer, front first
/// ([`VersionStore::scan_into`]).
#[derive(Default)]
pub struct FlatBatch {
    keys: Vec<u8>,
    /// Each entry's key range in `keys`, and its value or tombstone.
    entries: std::collections::VecDeque<(usize, usize, Value)>,
}

impl FlatBatch {
    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.entries.clear();
    }

    fn push(&mut self, key: &[u8], value: Value) {
        let start = self.keys.len();
        self.keys.extend_from_slice(key);
        self.entries.push_back((start, self.keys.len(), value));
    }

    /// Whether no entry is left.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The front entry's key.
    pub fn front_key(&self) -> Option<&[u8]> {
        let &(start, end, _) = self.entries.front()?;
        self.keys.get(start..end)
    }

    /// Removes the front entry: its key's range (see [`FlatBatch::key`]) and value.
    pub fn pop_front(&mut self) -> Option<((usize, usize), Value)> {
        self.entries.pop_front().map(|(s, e, v)| ((s, e), v))
    }

    /// A key by its range, valid until the next [`VersionStore::scan_into`].
    pub fn key(&self, (start, end): (usize, usize)) -> &[u8] {
        self.keys.get(start..end).unwrap_or(&[])
    }
}

/// Hands each chain's version visible at `snapshot` to `push`, at most `limit` of them
/// and examining at most `examine` chains; returns the last key examined when it
/// stopped early.
fn scan_chains<'c>(
    chains: impl Iterator<Item = (&'c HeadKey, &'c Chain)>,
    snapshot: u64,
    (limit, examine): (usize, usize),
    mut push: impl FnMut(&[u8], &Value),
) -> Option<Vec<u8>> {
    let mut last: Option<&HeadKey> = None;
    let mut pushed = 0usize;
    for (examined, (key, chain)) in chains.enumerate() {
        if pushed == limit || examined == examine {
            return last.map(|k| k.to_vec());
        }
        last = Some(key);
        if let Some(v) = chain.iter().rev().find(|v| v.seq <= snapshot) {
            push(key, &v.value);
            pushed += 1;
        }
    }
    None
}

impl VersionStore {
    /// The newest version of `key` at or below `snapshot`: `None` when the store has
    /// none (look further down), `Some(None)` for a tombstone.
    pub fn get(&self, table: TableId, key: &[u8], snapshot: u64) -> Option<Value> {
        self.pin_table(table)?.get(key, snapshot)
    }

    /// `table`'s chains, for a reader to keep ([`TablePin`]); `None` while the store
    /// never held the table.
    pub fn pin_table(&self, table: TableId) -> Option<TablePin> {
        Some(TablePin {
            table,
            chains: self.table(table)?,
        })
    }

    /// Visible versions of the keys in `(lo, hi)`, ascending or (with `reverse`)
    /// descending: at most `limit` of them, examining at most `limit` keys, or 64
    /// (a caller merging the batch with the tree drops what lies past the tree's own
    /// `limit` entries: a larger budget would be examined again by its next call), or
    /// for a batch of one ([`crate::Transaction::first`]) [`SCAN_EXAMINE_MAX`].
    pub fn scan(
        &self,
        table: TableId,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        snapshot: u64,
        reverse: bool,
        limit: usize,
    ) -> ScanBatch {
        let mut entries = Vec::new();
        let examine = if limit <= 1 {
            SCAN_EXAMINE_MAX
        } else {
            limit.max(64)
        };
        let resume_after = self.scan_with(
            table,
            lo,
            hi,
            (snapshot, reverse),
            (limit, examine),
            |k, v| entries.push((k.to_vec(), v.clone())),
        );
        ScanBatch {
            entries,
            resume_after,
        }
    }

    /// [`VersionStore::scan`] into `out`, whose buffers are reused from batch to batch:
    /// no allocation per key; it examines up to [`SCAN_EXAMINE_MAX`] keys (a borrowing
    /// scan keeps its whole batch). Returns the batch's `resume_after`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one scan step's full description"
    )]
    pub fn scan_into(
        &self,
        table: TableId,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        snapshot: u64,
        reverse: bool,
        limit: usize,
        out: &mut FlatBatch,
    ) -> Option<Vec<u8>> {
        out.clear();
        self.scan_with(
            table,
            lo,
            hi,
            (snapshot, reverse),
            (limit, SCAN_EXAMINE_MAX),
            |k, v| out.push(k, v.clone()),
        )
    }

    /// The scan itself: hands each visible entry to `push` under the table's read
    /// lock; returns the last key examined when it stopped early.
    /// `at` is the snapshot and the direction (`reverse`), `budget` the most entries
    /// returned and the most keys examined.
    fn scan_with(
        &self,
        table: TableId,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        (snapshot, reverse): (u64, bool),
        (limit, examine): (usize, usize),
        push: impl FnMut(&[u8], &Value),
    ) -> Option<Vec<u8>> {
        let t = self.table(table)?;
        if !bounds_nonempty(lo, hi) {
            return None;
        }
        let chains = t.read();
        let owned = |b: Bound<&[u8]>| b.map(HeadKey::new);
        let range = chains.range((owned(lo), owned(hi)));
        let limit = limit.clamp(1, SCAN_BATCH_MAX);
        let examine = examine.clamp(limit, SCAN_EXAMINE_MAX);
        // One loop per direction (no dynamic call per key).
        if reverse {
            scan_chains(range.rev(), snapshot, (limit, examine), push)
        } else {
            scan_chains(range, snapshot, (limit, examine), push)
        }
    }
}

/// Whether `(lo, hi)` can contain any key (`BTreeMap::range` panics on inverted bounds).
pub fn bounds_nonempty(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a < b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::WriteSet;

    fn ws(table: TableId, kvs: &[(&[u8], Option<&[u8]>)]) -> WriteSet {
        let mut w = WriteSet::new();
        for (k, v) in kvs {
            w.entry(table).or_default().insert(k, *v).unwrap();
        }
        w
    }

    #[test]
    fn scan_is_bounded_and_resumable() {
        let s = VersionStore::new();
        for i in 0..1000u32 {
            s.apply(
                u64::from(i) + 1,
                &ws(1, &[(&i.to_be_bytes(), Some(b"v"))]),
                0,
            );
        }
        // At snapshot 10 only the first ten keys are visible; a batch of 512 finds them
        // and stops after 512 keys examined, with a resume point.
        let b = s.scan(1, Bound::Unbounded, Bound::Unbounded, 10, false, 512);
        assert_eq!(b.entries.len(), 10);
        assert_eq!(b.resume_after, Some(511u32.to_be_bytes().to_vec()));
        // A batch of one returns the first visible key, resuming after it.
        let b = s.scan(1, Bound::Unbounded, Bound::Unbounded, 10, false, 1);
        assert_eq!(b.entries.len(), 1);
        assert_eq!(b.resume_after, Some(0u32.to_be_bytes().to_vec()));
        // In reverse, past the 990 keys committed after snapshot 10, in one call.
        let b = s.scan(1, Bound::Unbounded, Bound::Unbounded, 10, true, 1);
        assert_eq!(b.entries[0].0, 9u32.to_be_bytes().to_vec());
        let b = s.scan(1, Bound::Unbounded, Bound::Unbounded, 1000, true, 3);
        let keys: Vec<_> = b.entries.iter().map(|e| e.0.clone()).collect();
        assert_eq!(
            keys,
            vec![
                999u32.to_be_bytes().to_vec(),
                998u32.to_be_bytes().to_vec(),
                997u32.to_be_bytes().to_vec()
            ]
        );
        let lo = 5u32.to_be_bytes();
        let hi = 2u32.to_be_bytes();
        let b = s.scan(
            1,
            Bound::Included(&lo[..]),
            Bound::Excluded(&hi[..]),
            1000,
            false,
            10,
        );
        assert!(b.entries.is_empty() && b.resume_after.is_none());
    }

    /// A call examines at most `SCAN_EXAMINE_MAX` keys, visible or not: past more keys
    /// than that which its snapshot cannot see, it returns no entry and a resume point.
    #[test]
    fn a_scan_call_examines_a_bounded_number_of_keys() {
        let s = VersionStore::new();
        let mut w = WriteSet::new();
        for i in 0..10_000u32 {
            w.entry(1)
                .or_default()
                .insert(&i.to_be_bytes(), Some(b"v"))
                .unwrap();
        }
        s.apply(5, &w, 0);
        s.apply(6, &ws(1, &[(&20_000u32.to_be_bytes(), Some(b"v"))]), 0);
        let b = s.scan(1, Bound::Unbounded, Bound::Unbounded, 6, false, 1);
        assert_eq!(b.entries.len(), 1);
        let b = s.scan(1, Bound::Unbounded, Bound::Unbounded, 1, false, 1);
        assert!(b.entries.is_empty());
        let at = u32::try_from(SCAN_EXAMINE_MAX - 1).unwrap().to_be_bytes();
        assert_eq!(b.resume_after, Some(at.to_vec()));
    }
}
