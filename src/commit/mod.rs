//! Commit: the commit index, the group-commit coordinator, the log and recovery.
//!
//! A commit runs in these steps (`ARCHITECTURE.md`, "The life of a commit"):
//! 1. outside any lock: encode the write set as a capsule and write it to freshly
//!    allocated capsule space;
//! 2. the serialized section (one mutex): validate against the commit index
//!    (first-committer-wins, and SSI under `Serializable`), allocate `seq`, record the
//!    transaction, and queue its proof for the next group — no I/O;
//! 3. outside the lock: insert the versions into the version store under `seq`
//!    (invisible until published: snapshots read only at or below `visible`);
//! 4. mark `seq` applied at its durability level, then for `Written`/`Durable` wait
//!    for (or lead) the group flush: proofs, FSYNC_1, markers, FSYNC_2; the group
//!    tells the snapshot registry each level it reaches, which makes `seq` ready then
//!    (whether or not its committer is running);
//! 5. `visible` advances over the gap-free ready prefix, and the committer waits until
//!    its own `seq` is visible.

mod arena;
mod doorbells;
mod evidence;
mod feed;
mod group;
mod index;
mod marker_writer;
mod recovery;
mod repair;
mod replay;

pub use arena::LogArena;
pub use feed::{CommitEvent, Feed, Received, Subscription, Touched};
pub use group::{GroupCommit, GroupStats, Pending, QUEUE_COMMITS_MAX};
pub use index::{Admitted, CommitIndex, IndexStats, Prepared, Refusal};
pub use marker_writer::MarkerWriter;
pub use marker_writer::StreamTail;
pub use recovery::{
    LogDamage, Recovered, StreamStart, apply_repairs, recover, recover_from, rewrite_log_pages,
    scrub_tail,
};

use crate::Error;
use crate::format::{Proof, encode_capsule};
use crate::mvcc::{History, SnapshotRegistry, VersionStore};
use crate::types::{CATALOG_TABLE, Durability, Isolation, TableId, WriteSet};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// What the proof needs of a capsule once its bytes are written.
struct EncodedCapsule {
    checksum: u32,
    entry_count: u32,
    write_digest: u32,
    len: u32,
}

/// Commits between two prunes of the commit index and the version store.
const MAINTENANCE_INTERVAL: u64 = 64;
/// Keys of commit-index records a commit forgets besides twice its own
/// (`CommitIndex::prune_some`).
const PRUNE_STEP_KEYS: usize = 1024;
/// Keys from which a commit prunes the commit index below a fresh horizon rather than
/// the most recent one (`Committer::commit`).
const PRUNE_FRESH_HORIZON_KEYS: usize = 64;
/// Keys of commit-index records one maintenance pass forgets at most.
const PRUNE_MAINTAIN_KEYS: usize = 1_024;

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

/// Why a commit did not happen.
#[derive(Debug)]
pub enum CommitError {
    /// Validation refused it (retryable).
    Refused(Refusal),
    /// Something else failed (I/O, poisoned, closed).
    Failed(Error),
}

impl From<Error> for CommitError {
    fn from(e: Error) -> CommitError {
        CommitError::Failed(e)
    }
}

/// An admitted tree commit (`format-spec/btree.md`, "Tree commits"): every commit below
/// `seq` is durable and visible, and the serialized section stays closed to every other
/// commit while this lives. [`Committer::finish_tree`] or [`Committer::fail_tree`] ends it.
/// Dropped without either (a panic in the tree commit's I/O, say in an application's
/// `Storage`), it poisons the database: its sequence was taken and will never be
/// visible nor have a marker, so every later commit would otherwise wait for ever.
pub struct TreeAdmission<'a> {
    _section: parking_lot::MutexGuard<'a, CommitIndex>,
    committer: &'a Committer,
    /// Ended by `finish_tree` or `fail_tree`.
    ended: bool,
    /// The tree commit's sequence.
    pub seq: u64,
}

/// A sequenced commit whose versions are not yet marked applied: dropped armed (a panic
/// on the way), it poisons the database and stalls visibility at its sequence, as a
/// failed I/O does, so nobody waits for it for ever.
struct Unapplied<'a> {
    committer: &'a Committer,
    seq: u64,
    /// What the commit was doing: said in the poisoning's cause.
    when: &'static str,
}

impl Drop for Unapplied<'_> {
    fn drop(&mut self) {
        let cause = format!("commit {} panicked {}", self.seq, self.when);
        self.committer.poison_at(self.seq, cause.clone());
        log::error!("{cause}; the database refuses commits until reopened");
    }
}

impl Drop for TreeAdmission<'_> {
    fn drop(&mut self) {
        if !self.ended {
            // Poisoned before anything is logged: a logger that panics too must not
            // leave the sequence taken and the database open to commits.
            let cause = format!(
                "the tree commit of sequence {} never ended (a panic)",
                self.seq
            );
            self.committer.poison_at(self.seq, cause.clone());
            // As `fail_tree`: visibility stalls below `seq`, and the floor the fold
            // raised comes back to it.
            self.committer
                .history
                .lower_after_failed_tree_commit(self.seq.saturating_sub(1));
            log::error!("{cause}; the database refuses commits until reopened");
        }
    }
}

/// The commit coordinator.
pub struct Committer {
    index: Mutex<CommitIndex>,
    registry: Arc<SnapshotRegistry>,
    versions: Arc<VersionStore>,
    capsules: LogArena,
    group: GroupCommit,
    history: Arc<History>,
    feed: Arc<Feed>,
    commits: AtomicU64,
    capsule_bytes: AtomicU64,
    section_count: AtomicU64,
    section_ns: AtomicU64,
    section_max_ns: AtomicU64,
    /// The newest sequence that may have changed the catalog: raised when such a
    /// commit is admitted, before it can become visible (see
    /// [`Committer::catalog_changed_at`]).
    catalog_seq: AtomicU64,
    /// Set by [`Committer::stop_admission`]: no commit is admitted any more.
    stopped: AtomicBool,
}

impl Committer {
    /// A coordinator whose last allocated (and durable) sequence is `tip`.
    pub fn new(
        tip: u64,
        registry: Arc<SnapshotRegistry>,
        versions: Arc<VersionStore>,
        history: Arc<History>,
        feed: Arc<Feed>,
        capsules: LogArena,
        group: GroupCommit,
    ) -> Committer {
        Committer {
            feed,
            history,
            index: Mutex::new(CommitIndex::new(tip)),
            registry,
            versions,
            capsules,
            group,
            commits: AtomicU64::new(0),
            capsule_bytes: AtomicU64::new(0),
            section_count: AtomicU64::new(0),
            section_ns: AtomicU64::new(0),
            section_max_ns: AtomicU64::new(0),
            catalog_seq: AtomicU64::new(tip),
            stopped: AtomicBool::new(false),
        }
    }

    /// Admits no commit from now on ([`Error::Closed`]), and returns once every commit
    /// admitted before is queued for its group: a close's drain that follows makes
    /// each of them durable, and the feed, closed after it, has told each. (A commit
    /// that passed the engine's open check before the close began would otherwise be
    /// admitted after the drain, made durable and acknowledged by its own committer,
    /// and told to no subscriber.) The flag is read under the index's lock, which a
    /// commit holds from its admission to its proof's enqueueing; taking that lock
    /// once after setting it is the barrier.
    pub fn stop_admission(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        drop(self.index.lock());
    }

    /// The newest sequence that may have changed the catalog (table names): every
    /// commit that creates or drops a table raises it when it is admitted, before it can
    /// become visible, and it starts at the tip the database opened at. A snapshot at
    /// `S >= catalog_changed_at()` therefore sees the same catalog as any other such
    /// snapshot for as long as this value stays the same: what lets a connection keep
    /// the table names it resolved between its transactions.
    pub fn catalog_changed_at(&self) -> u64 {
        self.catalog_seq.load(Ordering::SeqCst)
    }

    /// Records that the commit at `seq` may change the catalog (before it is visible).
    pub fn catalog_changing(&self, seq: u64) {
        self.catalog_seq.fetch_max(seq, Ordering::SeqCst);
    }

    /// [`Committer::catalog_changing`] for an admitted commit that writes the catalog
    /// or drops a table.
    fn note_catalog_change(&self, seq: u64, writes: &WriteSet, dropped_tables: &[TableId]) {
        if writes.get(&CATALOG_TABLE).is_some() || !dropped_tables.is_empty() {
            self.catalog_changing(seq);
        }
    }

    /// Validates, logs and applies one transaction. Returns its new sequence (`None`
    /// when it wrote nothing) once that sequence has reached `durability` and is visible.
    #[expect(
        clippy::too_many_arguments,
        reason = "a transaction's parts, as it hands them over"
    )]
    pub fn commit(
        &self,
        snapshot: u64,
        isolation: Isolation,
        writes: &WriteSet,
        reads: ReadSet,
        dropped_tables: &[TableId],
        durability: Durability,
        touched: Touched<'_>,
    ) -> Result<Option<u64>, CommitError> {
        self.group.check()?;
        let has_writes = writes.values().any(|m| !m.is_empty()) || !dropped_tables.is_empty();
        // Step 1, outside any lock: the capsule.
        let capsule = if has_writes {
            let enc = encode_capsule(snapshot, writes, dropped_tables).ok_or_else(|| {
                Error::TransactionTooLarge {
                    what: "the write set does not fit one capsule".into(),
                }
            })?;
            let extent = self.capsules.append(&enc.bytes)?;
            self.capsule_bytes
                .fetch_add(enc.bytes.len() as u64, Ordering::Relaxed);
            // The bytes are on their way to the file; only their summary is needed
            // from here on (a bulk commit's capsule is as large as its data).
            let enc = EncodedCapsule {
                checksum: enc.checksum,
                entry_count: enc.entry_count,
                write_digest: enc.write_digest,
                len: enc.bytes.len() as u32,
            };
            if let Err(e) = self.group.wait_for_room() {
                // Refused before any proof names it: its space is the arena's again.
                self.capsules.release(extent);
                return Err(e.into());
            }
            Some((enc, extent))
        } else {
            None
        };
        let sets = Prepared::new(isolation, writes, reads).dropping(dropped_tables);
        let prune_budget = PRUNE_STEP_KEYS.saturating_add(sets.size().saturating_mul(2));
        // A commit of many keys prunes with a fresh horizon (a look at every shard of
        // live snapshots, small beside recording those keys): with the recent one, up
        // to MAINTENANCE_INTERVAL commits old, a load in batches of thousands of keys
        // could prune none of its predecessors, and the backlog fell on the small
        // commits after it, a thousand keys each. From 64 keys a batch, the backlog a
        // stale horizon leaves is at most 64 commits of fewer keys.
        let fresh_horizon = sets.size() >= PRUNE_FRESH_HORIZON_KEYS;
        // Step 2: the serialized section.
        let admitted = {
            let mut index = self.index.lock();
            // Refused when the database closed, or was poisoned since the check above
            // (a checkpoint's failed header write, while this commit wrote its capsule
            // or waited for room): admitted, an `Applied` commit would be acknowledged
            // and visible, and never written.
            let refused = if self.stopped.load(Ordering::SeqCst) {
                Err(Error::Closed)
            } else {
                self.group.check()
            };
            if let Err(e) = refused {
                drop(index);
                if let Some((_, extent)) = capsule {
                    self.capsules.release(extent);
                }
                return Err(e.into());
            }
            let start = Instant::now();
            let result = index.admit(snapshot, sets);
            if let (Ok(Admitted { seq: Some(seq) }), Some((enc, extent))) = (&result, &capsule) {
                self.group.enqueue(Pending {
                    proof: Proof {
                        seq: *seq,
                        snapshot,
                        capsule_offset: extent.offset,
                        capsule_len: enc.len,
                        capsule_checksum: enc.checksum,
                        write_digest: enc.write_digest,
                        entry_count: enc.entry_count,
                    },
                });
            }
            self.record_section(start);
            result
        };
        let admitted = match admitted {
            Ok(a) => a,
            Err(refusal) => {
                if let Some((_, extent)) = capsule {
                    self.capsules.release(extent);
                }
                return Err(CommitError::Refused(refusal));
            }
        };
        // From here until the versions are marked applied, a panic would leave the
        // sequence taken and never visible, and every later commit and reader waiting on
        // it for ever: it poisons the database instead.
        let mut unapplied = admitted.seq.map(|seq| Unapplied {
            committer: self,
            seq,
            when: "before its versions were applied",
        });
        match (&capsule, admitted.seq) {
            (Some((_, extent)), Some(seq)) => self.capsules.settle(extent, seq),
            // Admitted without a sequence (nothing it wrote needs one): no marker will
            // name the capsule, so its space goes back now, not never.
            (Some((_, extent)), None) => self.capsules.release(*extent),
            (None, _) => {}
        }
        if let Some(seq) = admitted.seq {
            self.note_catalog_change(seq, writes, dropped_tables);
            self.feed.record(seq, touched);
            // Step 3: versions, invisible until published.
            self.versions.apply(seq, writes, self.apply_horizon());
            for &table in dropped_tables {
                self.versions.drop_table_at(table, seq);
            }
            // Step 4: durability. The versions are applied: the commit becomes visible
            // once it reaches `durability`, whether or not this thread is running then
            // (the group commit tells the registry each level it reaches).
            self.registry.mark_applied(seq, durability);
            // The guard stays armed through the wait: a panic there (a logger's, after
            // the step this committer led failed) poisons and stalls `seq` as the
            // failure would; its `Applied` successors waited for its visibility for ever.
            if let Some(guard) = unapplied.as_mut() {
                guard.when = "while it waited for its durability";
            }
            let waited = match durability {
                Durability::Applied => Ok(()),
                _ => self.group.wait_for(seq, durability),
            };
            // Past the wait: nothing for the guard to do (it holds no resource).
            std::mem::forget(unapplied);
            if let Err(e) = waited {
                // This seq never becomes visible; nor does anything after it.
                self.registry.stall(seq, e.to_string());
                return Err(e.into());
            }
            // Step 5: visibility.
            self.registry
                .wait_visible(seq)
                .map_err(|cause| Error::Poisoned { cause })?;
            // The feed publishes a durable commit only once it is visible.
            self.feed.visible(self.registry.visible());
        }
        if self
            .commits
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(MAINTENANCE_INTERVAL)
        {
            self.maintain_up_to(PRUNE_MAINTAIN_KEYS);
        } else {
            // Each commit forgets about twice the keys it recorded (with the most recent
            // horizon): the index keeps up with its inflow, and no committer pays for a
            // whole interval's records at once. Skipped while another committer holds
            // the index: a later commit or pass prunes instead, and none queues for it.
            // The horizon is taken before the index's lock, so the look at every shard
            // of live snapshots is not made while other committers wait for the index.
            let horizon = if fresh_horizon {
                self.registry.validation_horizon()
            } else {
                self.registry.recent_validation_horizon()
            };
            if let Some(mut index) = self.index.try_lock() {
                index.prune_some(horizon, prune_budget);
            }
        }
        Ok(admitted.seq)
    }

    /// Counts one stay in the serialized section, begun at `start`.
    fn record_section(&self, start: Instant) {
        let ns = start.elapsed().as_nanos() as u64;
        self.section_count.fetch_add(1, Ordering::Relaxed);
        self.section_ns.fetch_add(ns, Ordering::Relaxed);
        self.section_max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Validates and sequences a tree commit (a large transaction written straight into
    /// the tree), then waits until every commit below it is durable and visible. `None`
    /// when the transaction wrote nothing. The caller holds the snapshot registry's
    /// exclusive hold, so the commit need not be recorded for later validations
    /// ([`CommitIndex::admit_unrecorded`]).
    pub fn admit_tree(
        &self,
        snapshot: u64,
        isolation: Isolation,
        writes: &WriteSet,
        reads: ReadSet,
        touched: Touched<'_>,
    ) -> Result<Option<TreeAdmission<'_>>, CommitError> {
        self.group.check()?;
        let mut index = self.index.lock();
        if self.stopped.load(Ordering::SeqCst) {
            return Err(Error::Closed.into());
        }
        let start = Instant::now();
        let result = index.admit_unrecorded(snapshot, isolation, writes, reads);
        self.record_section(start);
        let seq = match result {
            Ok(Admitted { seq: Some(seq) }) => seq,
            Ok(Admitted { seq: None }) => return Ok(None),
            Err(refusal) => return Err(CommitError::Refused(refusal)),
        };
        self.note_catalog_change(seq, writes, &[]);
        self.feed.record(seq, touched);
        let below = seq - 1;
        // `wait_for` answers from its fast path without looking at poisoning: a group
        // poisoned after it published `below` durable refuses the tree commit here.
        if let Err(e) = self
            .group
            .wait_for(below, Durability::Durable)
            .and_then(|()| self.group.check())
        {
            self.registry.stall(seq, e.to_string());
            return Err(e.into());
        }
        self.registry
            .wait_visible(below)
            .map_err(|cause| Error::Poisoned { cause })?;
        Ok(Some(TreeAdmission {
            _section: index,
            committer: self,
            ended: false,
            seq,
        }))
    }

    /// Ends a tree commit whose header is durable: the marker stream continues in the
    /// new stream `(page, next_page, first_seq, chain)`, the commit is durable and visible, and the
    /// serialized section reopens. Returns the old stream's reserved page, never used.
    pub fn finish_tree(
        &self,
        admission: TreeAdmission<'_>,
        page: u64,
        next_page: u64,
        first_seq: u64,
        chain: u32,
    ) -> u64 {
        let seq = admission.seq;
        let old_reserved = self.group.skip_to(seq, |m| {
            m.restart(page, next_page, first_seq, seq + 1, chain)
        });
        self.registry.mark_ready(seq);
        self.feed.visible(self.registry.visible());
        self.commits.fetch_add(1, Ordering::Relaxed);
        let mut admission = admission;
        admission.ended = true;
        drop(admission);
        old_reserved
    }

    /// Ends a tree commit that failed (its I/O, or damage its fold met in the tree):
    /// whether its header reached the disk is unknown, so nothing more is written until
    /// the database is reopened.
    pub fn fail_tree(&self, mut admission: TreeAdmission<'_>, cause: &Error) {
        let what = if matches!(cause, Error::Corrupted { .. }) {
            "met damage"
        } else {
            "failed"
        };
        let cause = format!("a tree commit {what}: {cause}");
        // Logged last: every waiter is told first, whatever the logger does.
        self.poison_at(admission.seq, cause.clone());
        // Visibility stalls below `seq`: the floor its fold raised comes back to it.
        self.history
            .lower_after_failed_tree_commit(admission.seq.saturating_sub(1));
        admission.ended = true;
        drop(admission);
        log::error!("{cause}; the database refuses commits until reopened");
    }

    /// Commit `seq` will never be visible (its I/O failed, or a panic cut it short):
    /// every waiting and later commit is refused with `cause`, and visibility stalls at
    /// `seq` (a commit below it still becomes visible).
    fn poison_at(&self, seq: u64, cause: String) {
        self.group.poison(cause.clone());
        self.registry.stall(seq, cause);
        // Nothing from `seq` on becomes visible, so the feed, which publishes what is
        // visible, closes once it has published what is before it (it waited for `seq`
        // for ever when a step had made it durable).
        self.feed.close_after(seq.saturating_sub(1));
    }

    /// Blocks until `seq` has reached `level` and is visible. A `seq` not allocated yet
    /// waits for a future commit.
    /// Once the database is poisoned, a `seq` no commit took gives [`Error::Poisoned`]
    /// (every later commit is refused); once it is closed, [`Error::Closed`].
    pub fn wait_for(&self, seq: u64, level: Durability) -> Result<(), Error> {
        if level > Durability::Applied {
            self.group.wait_for(seq, level)?;
        }
        let never_taken = || {
            self.group.closed_before(seq)
                || (self.group.is_poisoned() && seq > self.group.last_queued())
        };
        match self.registry.wait_visible_until(seq, never_taken) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.group.check()?;
                Err(Error::Closed)
            }
            Err(cause) => Err(Error::Poisoned { cause }),
        }
    }

    /// After a close drained every queued commit: ends the waits for sequences no
    /// commit took.
    pub fn close_waits(&self) {
        self.group.close_waits();
        self.registry.wake_all();
    }

    /// Writes every queued commit's proof and marker and syncs (shutdown).
    pub fn drain(&self) -> Result<(), Error> {
        self.group.drain()
    }

    /// Runs `f` while no group writes markers, so the marker stream read inside is not
    /// caught halfway through an append.
    pub fn with_markers_quiet<T>(&self, f: impl FnOnce() -> T) -> T {
        self.group.with_markers(|_| f())
    }

    /// Refuses every later commit with `cause`: a write whose outcome on disk is unknown
    /// failed outside a commit (a checkpoint's header).
    pub fn poison(&self, cause: String) {
        // Logged last: the database is poisoned whatever the logger does.
        self.group.poison(cause.clone());
        log::error!("{cause}; the database refuses commits until reopened");
    }

    /// Holds off the group steps' syncs while a sync outside them (a checkpoint's) runs
    /// and, if it fails, [`Committer::poison_sync`] is called: no step's sync returns
    /// between the failure and the poisoning to make its group durable.
    pub fn serialize_syncs(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.group.serialize_syncs()
    }

    /// [`Committer::poison`] for a failed sync: the group step in flight, whose own sync
    /// may not cover what the failed one dropped, makes nothing durable either.
    pub fn poison_sync(&self, cause: String) {
        self.group.poison_sync(cause.clone());
        log::error!("{cause}; the database refuses commits until reopened");
    }

    /// [`Committer::check_poisoned`] once the group step in flight (if any) returned:
    /// a step whose write or sync failed is poisoned only then.
    pub fn check_poisoned_settled(&self) -> crate::error::Result<()> {
        self.group.check_settled()
    }

    /// Fails with [`Error::Poisoned`] once a commit's I/O failed.
    pub fn check_poisoned(&self) -> crate::error::Result<()> {
        self.group.check()
    }

    /// Whether a commit's I/O failed: nothing more may be written then (a later sync
    /// could make a failed commit durable after its caller was told it failed).
    pub fn is_poisoned(&self) -> bool {
        self.group.check().is_err()
    }

    /// Where a checkpoint at `seq` starts the marker stream, the current stream starting
    /// after `seed` (see [`MarkerWriter::start_after`]).
    pub fn marker_start_after(
        &self,
        file: &[u8],
        seq: u64,
        seed: (u64, u32),
    ) -> crate::Result<Option<(u64, u32)>> {
        self.group.with_markers(|m| m.start_after(file, seq, seed))
    }

    /// After a checkpoint at `seq` whose stream starts at `start_page` is durable:
    /// removes and returns every log page it made obsolete.
    pub fn take_obsolete_log_pages(&self, seq: u64, start_page: u64) -> Vec<u64> {
        let mut pages = self.group.with_markers(|m| m.drop_pages_before(start_page));
        pages.extend(self.capsules.take_obsolete(seq));
        pages.extend(self.group.proofs().take_obsolete(seq));
        pages
    }

    /// Every page the log uses now (marker, proof and capsule pages).
    pub fn log_pages(&self) -> Vec<u64> {
        let mut pages = self.group.with_markers(|m| m.pages());
        pages.extend(self.capsules.pages());
        pages.extend(self.group.proofs().pages());
        pages
    }

    /// Group-commit counters.
    pub fn group_stats(&self) -> GroupStats {
        self.group.stats()
    }

    /// Capsule bytes written so far.
    pub fn capsule_bytes(&self) -> u64 {
        self.capsule_bytes.load(Ordering::Relaxed)
    }

    /// Highest sequence known durable.
    pub fn durable_seq(&self) -> u64 {
        self.group.durable_seq()
    }
    /// Prunes the commit index and the version store to the current horizon.
    pub fn maintain(&self) {
        self.maintain_up_to(usize::MAX);
    }

    /// One pass of the idle watcher's pruning, while the last sequence taken is still
    /// `tip` (no commit came): forgets up to [`PRUNE_MAINTAIN_KEYS`] keys of the commit
    /// index below the current horizon, and says whether any is left below it. The
    /// watcher runs passes once commits stopped, so the small commits after a load find
    /// no backlog of its keys to prune; a commit that came prunes its own share.
    pub fn prune_pass(&self, tip: u64) -> bool {
        let horizon = self.registry.validation_horizon();
        let mut index = self.index.lock();
        if index.tip() != tip {
            return false;
        }
        index.prune_some(horizon, PRUNE_MAINTAIN_KEYS);
        index.prunable(horizon)
    }

    /// [`Committer::maintain`], forgetting at most `prune_keys` keys of the commit
    /// index (the rest goes in later passes and commits' own steps).
    fn maintain_up_to(&self, prune_keys: usize) {
        // Both horizons from one look at the registry's shards (it was three).
        let (horizon, validation) = self.registry.horizons();
        self.index.lock().prune_some(validation, prune_keys);
        self.history
            .advance(self.tip(), horizon.min(self.durable_seq()));
        self.versions.gc(self.below_fold_and_window(horizon));
    }

    /// [`Committer::below_fold_and_window`] with the registry's most recent horizon
    /// instead of a fresh one (at most [`MAINTENANCE_INTERVAL`] commits old): what a
    /// commit prunes the chains it touches to, without locking every shard of live
    /// snapshots.
    fn apply_horizon(&self) -> u64 {
        self.below_fold_and_window(self.registry.recent_horizon())
    }

    /// The horizon below which old versions may go, from the registry's `horizon` (no
    /// live snapshot reads below it): lowered so that no future checkpoint folds below
    /// it (a checkpoint never passes the durable sequence, so versions it will need stay
    /// until it has run), and nothing inside the history window goes.
    fn below_fold_and_window(&self, horizon: u64) -> u64 {
        horizon
            .min(self.group.durable_seq())
            .min(self.history.floor())
    }

    /// The commit feed.
    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    /// The history window.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// The newest sequence queued for a group (the durable sequence at open before any).
    pub fn last_queued(&self) -> u64 {
        self.group.last_queued()
    }

    /// Makes every commit queued so far durable (nothing to do when they all are),
    /// leading the steps or waiting for the running one, as a durable committer does:
    /// for the flusher and the last handle's drop. Commits queued meanwhile are not
    /// waited for.
    pub fn flush_queued(&self) -> Result<(), Error> {
        let target = self.last_queued();
        if target <= self.durable_seq() {
            return Ok(());
        }
        self.group.wait_for(target, Durability::Durable)
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
