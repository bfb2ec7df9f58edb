//! The commit index: what recent commits wrote and read, for validation.
//!
//! Validation runs inside the serialized section, against the commits that are
//! *concurrent* with the committing transaction `T` (those with `cseq > T.snapshot`):
//!
//! - **First-committer-wins**: `T` aborts if a concurrent commit wrote a key `T` writes.
//! - **SSI** (Serializable only; Cahill, Röhm, Fekete 2008; Ports and Grittner 2012):
//!   `T ->rw U` when a concurrent `U` wrote a key `T` read (or a key inside a range `T`
//!   scanned); `U ->rw T` when a concurrent, committed `U` read a key `T` writes. `T`
//!   aborts only when it would complete a dangerous structure
//!   `T_in ->rw T_pivot ->rw T_out` in which `T_out` committed first:
//!   - `T` as pivot: an out-edge to `U_out` and an in-edge from `U_in` where `U_out`
//!     committed no later than `U_in` (the same transaction counts: write skew);
//!   - `T` as `T_in`: an out-edge to a committed pivot that itself has an out-edge to a
//!     transaction that committed before it (`out_earliest`).
//!
//! `T` cannot be `T_out`: it commits last.
//!
//! Records are kept until no live read-write snapshot is older than them (`prune_some`,
//! to the validation horizon): a `begin_read` snapshot never validates, so it holds no
//! record back.

use super::{ReadSet, TableRange};
use crate::types::{Isolation, TableId, WriteSet};
use crate::util::{bound_slice, in_bounds};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Entries of the per-table maps (drops, latest writes) below which a prune leaves
/// them alone.
const TABLE_SWEEP_MIN: usize = 64;

/// A key shared by a record and the indexes that point at it.
type Key = crate::util::SharedKey;

/// What the index's maps are looked up by: a plain slice, or a [`Key`] (whose own
/// comparison is the faster one).
trait LookupKey: Ord + std::hash::Hash + AsRef<[u8]> {}
impl<Q: Ord + std::hash::Hash + AsRef<[u8]> + ?Sized> LookupKey for Q {}

/// One index entry: the commit's order number and its concurrency sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    ord: u64,
    cseq: u64,
}

/// The entries of one key, oldest first: most keys have one, held without an
/// allocation of its own (a large commit's record otherwise cost a queue per key to
/// build and to free).
#[derive(Default)]
enum Entries {
    #[default]
    Empty,
    One(Entry),
    Many(VecDeque<Entry>),
}

impl Entries {
    fn push_back(&mut self, e: Entry) {
        match self {
            Entries::Empty => *self = Entries::One(e),
            Entries::One(first) => *self = Entries::Many(VecDeque::from([*first, e])),
            Entries::Many(q) => q.push_back(e),
        }
    }

    fn front(&self) -> Option<&Entry> {
        match self {
            Entries::Empty => None,
            Entries::One(e) => Some(e),
            Entries::Many(q) => q.front(),
        }
    }

    fn back(&self) -> Option<&Entry> {
        match self {
            Entries::Empty => None,
            Entries::One(e) => Some(e),
            Entries::Many(q) => q.back(),
        }
    }

    fn pop_front(&mut self) {
        match self {
            Entries::Empty => {}
            Entries::One(_) => *self = Entries::Empty,
            Entries::Many(q) => {
                q.pop_front();
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Entries::Empty => true,
            Entries::One(_) => false,
            Entries::Many(q) => q.is_empty(),
        }
    }

    /// The entries, newest first.
    fn newest_first(&self) -> impl Iterator<Item = &Entry> {
        let (one, many) = match self {
            Entries::Empty => (None, None),
            Entries::One(e) => (Some(e), None),
            Entries::Many(q) => (None, Some(q.iter().rev())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// A transaction's write and read sets in the shape the index keeps, built before
/// the serialized section so that no key is copied inside it.
pub struct Prepared {
    isolation: Isolation,
    /// Written keys, sorted by table and key.
    writes: Vec<(TableId, Key)>,
    read_points: Vec<(TableId, Key)>,
    read_ranges: Vec<Arc<TableRange>>,
    /// Tables it drops (or clears): a write to every key of each, for
    /// first-committer-wins against commits writing into them.
    dropped: Vec<TableId>,
}

impl Prepared {
    /// Keys written and read (points), and ranges read: what pruning its record costs.
    pub fn size(&self) -> usize {
        self.writes.len() + self.read_points.len() + self.read_ranges.len()
    }

    /// Prepares a transaction's sets; reads are kept only under `Serializable`.
    pub fn new(isolation: Isolation, writes: &WriteSet, reads: ReadSet) -> Prepared {
        let serializable = isolation == Isolation::Serializable;
        Prepared {
            isolation,
            writes: writes
                .iter()
                .flat_map(|(&t, keys)| keys.keys().map(move |k| (t, Key::from(k))))
                .collect(),
            read_points: if serializable {
                reads
                    .points
                    .into_iter()
                    .map(|(t, k)| (t, Key::from(&*k)))
                    .collect()
            } else {
                Vec::new()
            },
            read_ranges: if serializable {
                reads.ranges.into_iter().map(Arc::new).collect()
            } else {
                Vec::new()
            },
            dropped: Vec::new(),
        }
    }

    /// The same sets, for a transaction that also drops (or clears) `tables`.
    pub fn dropping(mut self, tables: &[TableId]) -> Prepared {
        self.dropped = tables.to_vec();
        self
    }

    fn reads_anything(&self) -> bool {
        !self.read_points.is_empty() || !self.read_ranges.is_empty()
    }
}

struct Record {
    ord: u64,
    /// The commit's sequence, or for a read-only commit the tip when it committed.
    cseq: u64,
    /// Order number of the earliest-committed transaction this one has an rw edge to.
    out_earliest: Option<u64>,
    sets: Prepared,
    /// Items of `sets` already forgotten (its writes, then its point reads, then its
    /// ranges, in that order): a large record is pruned over several calls.
    pruned: usize,
}

/// Why validation refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Table of the conflicting key.
    pub table: TableId,
    /// The conflicting key.
    pub key: Vec<u8>,
    /// Sequence of the committed transaction met.
    pub committed_seq: u64,
    /// First-committer-wins (`true`) or SSI (`false`).
    pub write_write: bool,
}

/// What a successful validation assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// The new commit sequence, `None` for a transaction that wrote nothing.
    pub seq: Option<u64>,
}

/// Counters for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Transactions admitted.
    pub admitted: u64,
    /// Refused by first-committer-wins.
    pub write_conflicts: u64,
    /// Refused by SSI.
    pub ssi_conflicts: u64,
}

/// Recent commits' write and read sets with the indexes validation needs.
pub struct CommitIndex {
    tip: u64,
    next_ord: u64,
    records: VecDeque<Record>,
    writers: HashMap<TableId, BTreeMap<Key, Entries>>,
    point_readers: HashMap<TableId, HashMap<Key, Entries>>,
    /// Per table, the ranges read by recorded commits, in commit order (`cseq` never
    /// decreases from front to back).
    range_readers: HashMap<TableId, VecDeque<(Arc<TableRange>, Entry)>>,
    /// Tables dropped by recorded commits: the sequence of the drop (an id is dropped
    /// once; a cleared table gets a new one).
    table_drops: HashMap<TableId, u64>,
    /// The sequence of the newest of them (0: none): a commit whose snapshot is at or
    /// past it skips the look at its written tables.
    newest_drop: u64,
    /// The sequence of the latest recorded commit writing into each table.
    table_writes: HashMap<TableId, u64>,
    /// Entries of the two maps above from which a prune sweeps them (entries at or
    /// below the horizon are harmless, only memory): amortized over the commits, with
    /// thousands of tables.
    table_sweep_at: usize,
    stats: IndexStats,
}

/// An rw edge found during validation.
struct Edge {
    ord: u64,
    cseq: u64,
    table: TableId,
    key: Key,
}

impl Edge {
    fn refusal(&self) -> Refusal {
        Refusal {
            table: self.table,
            key: self.key.to_vec(),
            committed_seq: self.cseq,
            write_write: false,
        }
    }
}

impl CommitIndex {
    /// An empty index whose last allocated sequence is `tip`.
    pub fn new(tip: u64) -> CommitIndex {
        CommitIndex {
            tip,
            next_ord: 1,
            records: VecDeque::new(),
            writers: HashMap::new(),
            point_readers: HashMap::new(),
            range_readers: HashMap::new(),
            table_drops: HashMap::new(),
            newest_drop: 0,
            table_writes: HashMap::new(),
            table_sweep_at: TABLE_SWEEP_MIN,
            stats: IndexStats::default(),
        }
    }

    /// The last allocated sequence.
    pub fn tip(&self) -> u64 {
        self.tip
    }

    /// Counters so far.
    pub fn stats(&self) -> IndexStats {
        self.stats
    }

    /// Records held (for tests of pruning).
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Whether [`CommitIndex::prune_some`] with `horizon` has anything left to forget.
    pub fn prunable(&self, horizon: u64) -> bool {
        self.records.front().is_some_and(|r| r.cseq <= horizon)
    }

    fn record(&self, ord: u64) -> Option<&Record> {
        let front = self.records.front()?.ord;
        self.records
            .get(usize::try_from(ord.checked_sub(front)?).ok()?)
    }

    /// Validates a transaction and, if admitted, allocates its sequence and records it.
    pub fn admit(&mut self, snapshot: u64, sets: Prepared) -> Result<Admitted, Refusal> {
        let out_earliest = match self.validate(snapshot, &sets) {
            Ok(o) => o,
            Err(refusal) => return Err(self.refused(refusal)),
        };
        self.stats.admitted += 1;
        let seq = if sets.writes.is_empty() {
            None
        } else {
            self.tip += 1;
            Some(self.tip)
        };
        if sets.writes.is_empty() && !sets.reads_anything() {
            return Ok(Admitted { seq });
        }
        let entry = Entry {
            ord: self.next_ord,
            cseq: self.tip,
        };
        self.next_ord += 1;
        let mut last_table = None;
        for (table, key) in &sets.writes {
            if last_table != Some(*table) {
                // Sorted by table: once per table written.
                last_table = Some(*table);
                self.table_writes.insert(*table, entry.cseq);
            }
            let index = self.writers.entry(*table).or_default();
            index.entry(key.clone()).or_default().push_back(entry);
        }
        for &table in &sets.dropped {
            self.table_drops.insert(table, entry.cseq);
            self.newest_drop = entry.cseq;
        }
        for (table, key) in &sets.read_points {
            let index = self.point_readers.entry(*table).or_default();
            index.entry(key.clone()).or_default().push_back(entry);
        }
        for r in &sets.read_ranges {
            self.range_readers
                .entry(r.table)
                .or_default()
                .push_back((Arc::clone(r), entry));
        }
        self.records.push_back(Record {
            ord: entry.ord,
            cseq: entry.cseq,
            out_earliest,
            sets,
            pruned: 0,
        });
        Ok(Admitted { seq })
    }

    /// Validates a tree commit and allocates its sequence without recording it. Sound
    /// only while no other snapshot is live and none is taken below the new sequence
    /// (the caller's exclusive hold): no later transaction is concurrent with it, so no
    /// later validation needs its sets. Writes are checked in place (no copy of a large
    /// write set); with reads under `Serializable`, the full SSI check runs, unless no
    /// commit was sequenced after the snapshot (then there is nothing to check).
    pub fn admit_unrecorded(
        &mut self,
        snapshot: u64,
        isolation: Isolation,
        writes: &WriteSet,
        reads: ReadSet,
    ) -> Result<Admitted, Refusal> {
        let serializable_reads = isolation == Isolation::Serializable
            && (!reads.points.is_empty() || !reads.ranges.is_empty());
        let checked = if serializable_reads {
            // The reads prepared, the writes read in place (no copy of a large write set).
            let reads = Prepared::new(isolation, &WriteSet::new(), reads);
            let keys = writes
                .iter()
                .flat_map(|(&t, keys)| keys.keys().map(move |k| (t, k)));
            self.validate_keys(snapshot, &reads, keys).map(|_| ())
        } else {
            // Without reads, SSI has no out-edge to find: first-committer-wins decides.
            self.first_committer_wins(snapshot, writes)
        };
        if let Err(refusal) = checked {
            return Err(self.refused(refusal));
        }
        self.stats.admitted += 1;
        if writes.values().all(crate::types::TableWrites::is_empty) {
            return Ok(Admitted { seq: None });
        }
        self.tip += 1;
        Ok(Admitted {
            seq: Some(self.tip),
        })
    }

    /// Counts a refusal by its kind and returns it.
    fn refused(&mut self, refusal: Refusal) -> Refusal {
        if refusal.write_write {
            self.stats.write_conflicts += 1;
        } else {
            self.stats.ssi_conflicts += 1;
        }
        refusal
    }

    /// First-committer-wins over a write set, in place.
    fn first_committer_wins(&self, snapshot: u64, writes: &WriteSet) -> Result<(), Refusal> {
        if self.tip <= snapshot {
            return Ok(());
        }
        for (table, keys) in writes {
            if let Some(refusal) = keys
                .keys()
                .next()
                .and_then(|key| self.dropped_since(snapshot, *table, key))
            {
                return Err(refusal);
            }
            let Some(index) = self.writers.get(table) else {
                continue;
            };
            for key in keys.keys() {
                let last = index
                    .get(key)
                    .and_then(|l| l.back())
                    .filter(|l| l.cseq > snapshot);
                if let Some(last) = last {
                    return Err(Refusal {
                        table: *table,
                        key: key.to_vec(),
                        committed_seq: last.cseq,
                        write_write: true,
                    });
                }
            }
        }
        Ok(())
    }

    /// The refusal of a write of `key` into `table` when a commit after `snapshot`
    /// dropped the table.
    fn dropped_since(&self, snapshot: u64, table: TableId, key: &[u8]) -> Option<Refusal> {
        let &cseq = self.table_drops.get(&table).filter(|&&c| c > snapshot)?;
        Some(Refusal {
            table,
            key: key.to_vec(),
            committed_seq: cseq,
            write_write: true,
        })
    }

    /// Returns the transaction's `out_earliest` when it may commit.
    fn validate(&self, snapshot: u64, sets: &Prepared) -> Result<Option<u64>, Refusal> {
        // Looked up by their own keys: the maps then compare by words, not `memcmp`.
        let keys = sets.writes.iter().map(|(t, k)| (*t, k));
        self.validate_keys(snapshot, sets, keys)
    }

    /// [`CommitIndex::validate`] with the written keys given by `writes` (the reads and
    /// isolation still come from `sets`).
    fn validate_keys<'w, Q>(
        &self,
        snapshot: u64,
        sets: &Prepared,
        writes: impl Iterator<Item = (TableId, &'w Q)> + Clone,
    ) -> Result<Option<u64>, Refusal>
    where
        Q: LookupKey + ?Sized + 'w,
        Key: Borrow<Q>,
    {
        // No commit was sequenced after the snapshot: nothing can have written a key
        // first, and no read can have an out-edge (a tree commit of a million keys
        // looked each up for nothing).
        if self.tip <= snapshot {
            return Ok(None);
        }
        // First-committer-wins, a drop counting as a write to every key of its table.
        for &table in &sets.dropped {
            if let Some(&cseq) = self.table_writes.get(&table).filter(|&&c| c > snapshot) {
                return Err(Refusal {
                    table,
                    key: Vec::new(),
                    committed_seq: cseq,
                    write_write: true,
                });
            }
        }
        if self.newest_drop > snapshot {
            let mut last_table = None;
            for (table, key) in writes.clone() {
                if last_table == Some(table) {
                    continue;
                }
                last_table = Some(table);
                if let Some(refusal) = self.dropped_since(snapshot, table, key.as_ref()) {
                    return Err(refusal);
                }
            }
        }
        for (table, key) in writes.clone() {
            let last = self
                .writers
                .get(&table)
                .and_then(|index| index.get(key))
                .and_then(|l| l.back())
                .filter(|l| l.cseq > snapshot);
            if let Some(last) = last {
                return Err(Refusal {
                    table,
                    key: key.as_ref().to_vec(),
                    committed_seq: last.cseq,
                    write_write: true,
                });
            }
        }
        if sets.isolation != Isolation::Serializable {
            return Ok(None);
        }
        let outs = self.out_edges(snapshot, sets);
        // T as T_in: an out-edge to a pivot whose own out-edge met an earlier commit.
        if let Some(e) = outs
            .iter()
            .find(|e| self.record(e.ord).is_some_and(|r| r.out_earliest.is_some()))
        {
            return Err(e.refusal());
        }
        let Some(first_out) = outs.iter().min_by_key(|e| e.ord) else {
            return Ok(None);
        };
        // T as pivot: an in-edge from a commit no earlier than the earliest out-target.
        if self
            .latest_in_edge(snapshot, writes)
            .is_some_and(|last_in| first_out.ord <= last_in)
        {
            return Err(first_out.refusal());
        }
        Ok(Some(first_out.ord))
    }

    /// Concurrent commits that wrote something `T` read: `T ->rw U`.
    fn out_edges(&self, snapshot: u64, sets: &Prepared) -> Vec<Edge> {
        let mut outs = Vec::new();
        let mut push_concurrent = |table: TableId, key: &Key, list: &Entries| {
            for e in list.newest_first().take_while(|e| e.cseq > snapshot) {
                outs.push(Edge {
                    ord: e.ord,
                    cseq: e.cseq,
                    table,
                    key: key.clone(),
                });
            }
        };
        for (table, key) in &sets.read_points {
            if let Some(list) = self.writers.get(table).and_then(|w| w.get(key)) {
                push_concurrent(*table, key, list);
            }
        }
        for r in &sets.read_ranges {
            let Some(index) = self.writers.get(&r.table) else {
                continue;
            };
            let (lo, hi) = (bound_slice(&r.lo), bound_slice(&r.hi));
            if !crate::mvcc::bounds_nonempty(lo, hi) {
                continue;
            }
            for (key, list) in index.range::<[u8], _>((lo, hi)) {
                push_concurrent(r.table, key, list);
            }
        }
        outs
    }

    /// The latest order number of a concurrent, committed reader of something `T`
    /// writes: `U ->rw T`.
    fn latest_in_edge<'w, Q>(
        &self,
        snapshot: u64,
        writes: impl Iterator<Item = (TableId, &'w Q)>,
    ) -> Option<u64>
    where
        Q: LookupKey + ?Sized + 'w,
        Key: Borrow<Q>,
    {
        let mut latest: Option<u64> = None;
        let mut see = |e: &Entry| {
            if e.cseq > snapshot {
                latest = Some(latest.map_or(e.ord, |l| l.max(e.ord)));
            }
        };
        for (table, key) in writes {
            if let Some(e) = self
                .point_readers
                .get(&table)
                .and_then(|r| r.get(key))
                .and_then(|l| l.back())
            {
                see(e);
            }
            // Recorded in commit order: only the newest, those after the snapshot, are
            // concurrent (a walk of every range kept since the oldest live snapshot cost
            // each contended commit more the longer that snapshot lived).
            let readers = self.range_readers.get(&table).into_iter().flatten().rev();
            for (range, e) in readers.take_while(|(_, e)| e.cseq > snapshot) {
                if in_bounds(key.as_ref(), bound_slice(&range.lo), bound_slice(&range.hi)) {
                    see(e);
                }
            }
        }
        latest
    }

    /// Forgets what commits that no live or future transaction is concurrent with
    /// recorded: those with `cseq <= horizon`, the oldest live snapshot, oldest first;
    /// it stops once it forgot `budget` keys and ranges (at least one), even inside a
    /// commit's record, which the next call continues. A committer that prunes pays for
    /// about as many keys as it wrote: never for every commit since the last pruning
    /// (hundreds of thousands of keys after a burst of large commits took a committer
    /// half a second), nor for a whole large commit (10,000 keys took a one-key commit
    /// 9 ms). Forgetting part of such a record is as safe as forgetting all of it: no
    /// transaction it could conflict with is live.
    pub fn prune_some(&mut self, horizon: u64, budget: usize) {
        // No live snapshot is older than `horizon`: a drop or write at or below it is
        // concurrent with no transaction that can still commit.
        if self.table_drops.len() + self.table_writes.len() >= self.table_sweep_at {
            self.table_drops.retain(|_, c| *c > horizon);
            self.table_writes.retain(|_, c| *c > horizon);
            let left = self.table_drops.len() + self.table_writes.len();
            self.table_sweep_at = left.saturating_mul(2).max(TABLE_SWEEP_MIN);
        }
        let mut left = budget.max(1);
        while left > 0 {
            let Some(r) = self.records.front_mut().filter(|r| r.cseq <= horizon) else {
                break;
            };
            let (writes, points) = (r.sets.writes.len(), r.sets.read_points.len());
            let total = r.sets.size();
            let end = r.pruned.saturating_add(left).min(total);
            let part = |from: usize, to: usize, base: usize, len: usize| {
                from.clamp(base, base + len) - base..to.clamp(base, base + len) - base
            };
            let w = part(r.pruned, end, 0, writes);
            forget(
                &mut self.writers,
                r.sets.writes.get(w).unwrap_or(&[]),
                r.ord,
            );
            let p = part(r.pruned, end, writes, points);
            forget(
                &mut self.point_readers,
                r.sets.read_points.get(p).unwrap_or(&[]),
                r.ord,
            );
            let ranges = part(r.pruned, end, writes + points, total - writes - points);
            for range in r.sets.read_ranges.get(ranges).unwrap_or(&[]) {
                if let Some(list) = self.range_readers.get_mut(&range.table) {
                    while list.front().is_some_and(|f| f.1.ord == r.ord) {
                        list.pop_front();
                    }
                    if list.is_empty() {
                        self.range_readers.remove(&range.table);
                    }
                }
            }
            left -= (end - r.pruned).max(1).min(left);
            r.pruned = end;
            if end == total {
                self.records.pop_front();
            }
        }
    }
}

/// A per-table map from key to the entries of the commits that touched it.
trait KeyIndex: Default {
    /// Drops the oldest entry of `key` (the commit `ord`), and the key with its last
    /// entry: one search, by the key itself (the maps' own, faster comparison).
    fn forget_front(&mut self, key: &Key, ord: u64);
    fn is_empty(&self) -> bool;
}

impl KeyIndex for BTreeMap<Key, Entries> {
    fn forget_front(&mut self, key: &Key, ord: u64) {
        if let std::collections::btree_map::Entry::Occupied(mut e) = self.entry(key.clone()) {
            debug_assert_eq!(e.get().front().map(|e| e.ord), Some(ord));
            e.get_mut().pop_front();
            if e.get().is_empty() {
                e.remove();
            }
        }
    }
    fn is_empty(&self) -> bool {
        BTreeMap::is_empty(self)
    }
}

impl KeyIndex for HashMap<Key, Entries> {
    fn forget_front(&mut self, key: &Key, ord: u64) {
        if let std::collections::hash_map::Entry::Occupied(mut e) = self.entry(key.clone()) {
            debug_assert_eq!(e.get().front().map(|e| e.ord), Some(ord));
            e.get_mut().pop_front();
            if e.get().is_empty() {
                e.remove();
            }
        }
    }
    fn is_empty(&self) -> bool {
        HashMap::is_empty(self)
    }
}

/// Removes the entries of commit `ord` for `keys` (each the oldest of its key).
fn forget<I: KeyIndex>(index: &mut HashMap<TableId, I>, keys: &[(TableId, Key)], ord: u64) {
    for (table, key) in keys {
        let Some(per_table) = index.get_mut(table) else {
            continue;
        };
        per_table.forget_front(key, ord);
        if per_table.is_empty() {
            index.remove(table);
        }
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
