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
//! Records are kept until no live snapshot is older than them (`prune`).

use super::{ReadSet, TableRange};
use crate::api::Isolation;
use crate::mvcc::{TableId, WriteSet};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;

/// One index entry: the commit's order number and its concurrency sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    ord: u64,
    cseq: u64,
}

/// A scanned range in the index: bounds and the reader.
type RangeEntry = (Bound<Vec<u8>>, Bound<Vec<u8>>, Entry);

struct Record {
    ord: u64,
    /// The commit's sequence, or for a read-only commit the tip when it committed.
    cseq: u64,
    /// Order number of the earliest-committed transaction this one has an rw edge to.
    out_earliest: Option<u64>,
    writes: Vec<(TableId, Vec<u8>)>,
    read_points: Vec<(TableId, Vec<u8>)>,
    read_ranges: Vec<TableRange>,
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
    writers: HashMap<TableId, BTreeMap<Vec<u8>, VecDeque<Entry>>>,
    point_readers: HashMap<(TableId, Vec<u8>), VecDeque<Entry>>,
    range_readers: HashMap<TableId, VecDeque<RangeEntry>>,
    stats: IndexStats,
}

fn in_range(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    let above = match lo {
        Bound::Included(l) => key >= l.as_slice(),
        Bound::Excluded(l) => key > l.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(h) => key <= h.as_slice(),
        Bound::Excluded(h) => key < h.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

fn as_ref_bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// An rw edge found during validation.
struct Edge {
    ord: u64,
    cseq: u64,
    table: TableId,
    key: Vec<u8>,
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

    fn record(&self, ord: u64) -> Option<&Record> {
        let front = self.records.front()?.ord;
        self.records
            .get(usize::try_from(ord.checked_sub(front)?).ok()?)
    }

    /// Validates a transaction and, if admitted, allocates its sequence and records it.
    pub fn admit(
        &mut self,
        snapshot: u64,
        isolation: Isolation,
        writes: &WriteSet,
        reads: &ReadSet,
    ) -> Result<Admitted, Refusal> {
        let result = self.validate(snapshot, isolation, writes, reads);
        let out_earliest = match result {
            Ok(o) => o,
            Err(refusal) => {
                if refusal.write_write {
                    self.stats.write_conflicts += 1;
                } else {
                    self.stats.ssi_conflicts += 1;
                }
                return Err(refusal);
            }
        };
        self.stats.admitted += 1;
        let has_writes = writes.values().any(|m| !m.is_empty());
        let seq = if has_writes {
            self.tip += 1;
            Some(self.tip)
        } else {
            None
        };
        let serializable = isolation == Isolation::Serializable;
        let tracks_reads = serializable && !reads.is_empty();
        if has_writes || tracks_reads {
            let entry = Entry {
                ord: self.next_ord,
                cseq: self.tip,
            };
            self.next_ord += 1;
            let mut record = Record {
                ord: entry.ord,
                cseq: entry.cseq,
                out_earliest,
                writes: Vec::new(),
                read_points: Vec::new(),
                read_ranges: Vec::new(),
            };
            for (&table, keys) in writes {
                let index = self.writers.entry(table).or_default();
                for key in keys.keys() {
                    index.entry(key.clone()).or_default().push_back(entry);
                    record.writes.push((table, key.clone()));
                }
            }
            if tracks_reads {
                for (table, key) in &reads.points {
                    self.point_readers
                        .entry((*table, key.clone()))
                        .or_default()
                        .push_back(entry);
                    record.read_points.push((*table, key.clone()));
                }
                for r in &reads.ranges {
                    self.range_readers.entry(r.table).or_default().push_back((
                        r.lo.clone(),
                        r.hi.clone(),
                        entry,
                    ));
                    record.read_ranges.push(r.clone());
                }
            }
            self.records.push_back(record);
        }
        Ok(Admitted { seq })
    }

    /// Returns the transaction's `out_earliest` when it may commit.
    fn validate(
        &self,
        snapshot: u64,
        isolation: Isolation,
        writes: &WriteSet,
        reads: &ReadSet,
    ) -> Result<Option<u64>, Refusal> {
        // First-committer-wins.
        for (&table, keys) in writes {
            let Some(index) = self.writers.get(&table) else {
                continue;
            };
            for key in keys.keys() {
                if let Some(last) = index
                    .get(key)
                    .and_then(|l| l.back())
                    .filter(|l| l.cseq > snapshot)
                {
                    return Err(Refusal {
                        table,
                        key: key.clone(),
                        committed_seq: last.cseq,
                        write_write: true,
                    });
                }
            }
        }
        if isolation != Isolation::Serializable {
            return Ok(None);
        }
        let outs = self.out_edges(snapshot, reads);
        // T as T_in: an out-edge to a pivot whose own out-edge met an earlier commit.
        for e in &outs {
            if self.record(e.ord).is_some_and(|r| r.out_earliest.is_some()) {
                return Err(Refusal {
                    table: e.table,
                    key: e.key.clone(),
                    committed_seq: e.cseq,
                    write_write: false,
                });
            }
        }
        let Some(first_out) = outs.iter().min_by_key(|e| e.ord) else {
            return Ok(None);
        };
        // T as pivot: an in-edge from a commit no earlier than the earliest out-target.
        if self
            .latest_in_edge(snapshot, writes)
            .is_some_and(|last_in| first_out.ord <= last_in)
        {
            return Err(Refusal {
                table: first_out.table,
                key: first_out.key.clone(),
                committed_seq: first_out.cseq,
                write_write: false,
            });
        }
        Ok(Some(first_out.ord))
    }

    /// Concurrent commits that wrote something `T` read: `T ->rw U`.
    fn out_edges(&self, snapshot: u64, reads: &ReadSet) -> Vec<Edge> {
        let mut outs = Vec::new();
        let mut push_concurrent = |table: TableId, key: &[u8], list: &VecDeque<Entry>| {
            for e in list.iter().rev().take_while(|e| e.cseq > snapshot) {
                outs.push(Edge {
                    ord: e.ord,
                    cseq: e.cseq,
                    table,
                    key: key.to_vec(),
                });
            }
        };
        for (table, key) in &reads.points {
            if let Some(list) = self.writers.get(table).and_then(|w| w.get(key)) {
                push_concurrent(*table, key, list);
            }
        }
        for r in &reads.ranges {
            let Some(index) = self.writers.get(&r.table) else {
                continue;
            };
            if !crate::mvcc::bounds_nonempty(as_ref_bound(&r.lo), as_ref_bound(&r.hi)) {
                continue;
            }
            for (key, list) in index.range::<[u8], _>((as_ref_bound(&r.lo), as_ref_bound(&r.hi))) {
                push_concurrent(r.table, key, list);
            }
        }
        outs
    }

    /// The latest order number of a concurrent, committed reader of something `T`
    /// writes: `U ->rw T`.
    fn latest_in_edge(&self, snapshot: u64, writes: &WriteSet) -> Option<u64> {
        let mut latest: Option<u64> = None;
        let mut see = |e: &Entry| {
            if e.cseq > snapshot {
                latest = Some(latest.map_or(e.ord, |l| l.max(e.ord)));
            }
        };
        for (&table, keys) in writes {
            let ranges = self.range_readers.get(&table);
            for key in keys.keys() {
                if let Some(e) = self
                    .point_readers
                    .get(&(table, key.clone()))
                    .and_then(|l| l.back())
                {
                    see(e);
                }
                for (lo, hi, e) in ranges.into_iter().flatten() {
                    if e.cseq > snapshot && in_range(lo, hi, key) {
                        see(e);
                    }
                }
            }
        }
        latest
    }

    /// Forgets commits that no live or future transaction is concurrent with: those
    /// with `cseq <= horizon`, the oldest live snapshot.
    pub fn prune(&mut self, horizon: u64) {
        while self.records.front().is_some_and(|r| r.cseq <= horizon) {
            let Some(r) = self.records.pop_front() else {
                break;
            };
            for (table, key) in &r.writes {
                if let Some(index) = self.writers.get_mut(table) {
                    if let Some(list) = index.get_mut(key) {
                        debug_assert_eq!(list.front().map(|e| e.ord), Some(r.ord));
                        list.pop_front();
                        if list.is_empty() {
                            index.remove(key);
                        }
                    }
                    if index.is_empty() {
                        self.writers.remove(table);
                    }
                }
            }
            for (table, key) in r.read_points {
                let k = (table, key);
                if let Some(list) = self.point_readers.get_mut(&k) {
                    list.pop_front();
                    if list.is_empty() {
                        self.point_readers.remove(&k);
                    }
                }
            }
            for range in &r.read_ranges {
                if let Some(list) = self.range_readers.get_mut(&range.table) {
                    while list.front().is_some_and(|f| f.2.ord == r.ord) {
                        list.pop_front();
                    }
                    if list.is_empty() {
                        self.range_readers.remove(&range.table);
                    }
                }
            }
        }
    }
}
