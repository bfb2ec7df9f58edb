//! Commit: the commit index, the serialized section, and publishing versions.
//!
//! A commit runs in three steps:
//! 1. the serialized section (one mutex): validate against the commit index
//!    (first-committer-wins, and SSI under `Serializable`), allocate `seq`, record the
//!    transaction's write and read sets;
//! 2. outside the lock: insert the versions into the version store under `seq`
//!    (invisible until published, since snapshots read only at or below `visible`);
//! 3. mark `seq` ready; `visible` advances over the gap-free ready prefix, and the
//!    committer waits until its own `seq` is visible.

mod index;

pub use index::{CommitIndex, IndexStats, Refusal};

use crate::api::Isolation;
use crate::mvcc::{SnapshotRegistry, TableId, VersionStore, WriteSet};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Commits between two prunes of the commit index and the version store.
const MAINTENANCE_INTERVAL: u64 = 64;

/// A key range a transaction scanned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRange {
    /// The table scanned.
    pub table: TableId,
    /// Lower bound.
    pub lo: Bound<Vec<u8>>,
    /// Upper bound.
    pub hi: Bound<Vec<u8>>,
}

/// What a Serializable transaction read: point keys (found or not) and scanned ranges
/// (including empty ones and ones that met only tombstones).
#[derive(Clone, Debug, Default)]
pub struct ReadSet {
    /// Keys read by point lookups.
    pub points: BTreeSet<(TableId, Vec<u8>)>,
    /// Ranges scanned.
    pub ranges: Vec<TableRange>,
}

impl ReadSet {
    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.ranges.is_empty()
    }
}

/// Timing of the serialized section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionStats {
    /// Validations run (admitted or refused).
    pub count: u64,
    /// Total nanoseconds inside the serialized section.
    pub total_ns: u64,
    /// Longest single stay, in nanoseconds.
    pub max_ns: u64,
}

/// The commit coordinator for in-memory application of commits.
pub struct Committer {
    index: Mutex<CommitIndex>,
    registry: Arc<SnapshotRegistry>,
    versions: Arc<VersionStore>,
    commits: AtomicU64,
    section_count: AtomicU64,
    section_ns: AtomicU64,
    section_max_ns: AtomicU64,
}

impl Committer {
    /// A coordinator whose last allocated sequence is `tip`.
    pub fn new(
        tip: u64,
        registry: Arc<SnapshotRegistry>,
        versions: Arc<VersionStore>,
    ) -> Committer {
        Committer {
            index: Mutex::new(CommitIndex::new(tip)),
            registry,
            versions,
            commits: AtomicU64::new(0),
            section_count: AtomicU64::new(0),
            section_ns: AtomicU64::new(0),
            section_max_ns: AtomicU64::new(0),
        }
    }

    /// Validates and applies one transaction. Returns its new sequence (`None` when it
    /// wrote nothing) once that sequence is visible.
    pub fn commit(
        &self,
        snapshot: u64,
        isolation: Isolation,
        writes: &WriteSet,
        reads: &ReadSet,
        dropped_tables: &[TableId],
    ) -> Result<Option<u64>, Refusal> {
        let admitted = {
            let mut index = self.index.lock();
            let start = Instant::now();
            let result = index.admit(snapshot, isolation, writes, reads);
            let ns = start.elapsed().as_nanos() as u64;
            self.section_count.fetch_add(1, Ordering::Relaxed);
            self.section_ns.fetch_add(ns, Ordering::Relaxed);
            self.section_max_ns.fetch_max(ns, Ordering::Relaxed);
            result
        }?;
        if let Some(seq) = admitted.seq {
            self.versions.apply(seq, writes, self.registry.horizon());
            for &table in dropped_tables {
                self.versions.drop_table_at(table, seq);
            }
            self.registry.mark_ready(seq);
            self.registry.wait_visible(seq);
        }
        if self
            .commits
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(MAINTENANCE_INTERVAL)
        {
            self.maintain();
        }
        Ok(admitted.seq)
    }

    /// Prunes the commit index and the version store to the current horizon.
    pub fn maintain(&self) {
        let horizon = self.registry.horizon();
        self.index.lock().prune(horizon);
        self.versions.gc(horizon);
    }

    /// The last allocated sequence.
    pub fn tip(&self) -> u64 {
        self.index.lock().tip()
    }

    /// Validation counters.
    pub fn index_stats(&self) -> IndexStats {
        self.index.lock().stats()
    }

    /// Records held by the commit index.
    pub fn index_records(&self) -> usize {
        self.index.lock().record_count()
    }

    /// Timing of the serialized section so far.
    pub fn section_stats(&self) -> SectionStats {
        SectionStats {
            count: self.section_count.load(Ordering::Relaxed),
            total_ns: self.section_ns.load(Ordering::Relaxed),
            max_ns: self.section_max_ns.load(Ordering::Relaxed),
        }
    }
}
