//! What `Database` asks of its engine beyond transactions: counters and file summary,
//! the history window, checkpoints, compaction, garbage collection and closing.

use super::Engine;
use crate::checkpoint::CheckpointReport;
use crate::error::Result;
use crate::mvcc::history_directory::HistoryIndex;
use std::sync::atomic::Ordering;

/// Counters describing the engine's state, for tests, benchmarks and the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Last allocated commit sequence.
    pub tip_seq: u64,
    /// Largest sequence visible to new snapshots.
    pub visible_seq: u64,
    /// Versions held in the version store.
    pub versions: u64,
    /// Approximate bytes held in the version store.
    pub version_bytes: u64,
    /// Live snapshots (open transactions).
    pub live_snapshots: usize,
    /// Recent commits kept by the commit index for validation.
    pub commit_index_records: usize,
    /// Transactions admitted by validation.
    pub admitted: u64,
    /// Transactions refused by first-committer-wins.
    pub write_conflicts: u64,
    /// Transactions refused by SSI.
    pub ssi_conflicts: u64,
    /// Stays in the serialized section.
    pub section_count: u64,
    /// Total nanoseconds in the serialized section.
    pub section_ns_total: u64,
    /// Longest stay in the serialized section, in nanoseconds.
    pub section_ns_max: u64,
    /// Highest sequence on stable storage.
    pub durable_seq: u64,
    /// Commit groups flushed. Each group's commits are made durable by two `fdatasync`s,
    /// but under load each sync serves two groups (the second of one, the first of the
    /// next): about one sync per group, two for a lone commit.
    pub groups: u64,
    /// Commits flushed by those groups.
    pub group_commits: u64,
    /// `fdatasync` calls made by commit groups.
    pub group_syncs: u64,
    /// Every `fdatasync` of the database file that succeeded, as its storage counts them
    /// (a file: since this process opened it): the groups', and those of tree commits,
    /// checkpoints, compactions and opens.
    pub file_syncs: u64,
    /// Bytes of capsules written by committers.
    pub capsule_bytes: u64,
    /// Bytes of proofs and markers written by commit groups.
    pub log_bytes: u64,
    /// Commits replayed by recovery when the database was opened.
    pub recovered_commits: u64,
    /// Log records and page headers recovery rebuilt from redundancy when the database
    /// was opened (`format-spec/log.md`, "Repairs from redundancy"); a read-write open
    /// wrote them back.
    pub repaired_log_records: u64,
    /// Pages in the free set.
    pub free_pages: u64,
    /// First page never allocated.
    pub high_water_page: u64,
    /// Last commit sequence folded into the checkpointed tree.
    pub checkpoint_seq: u64,
    /// Checkpoints run since the database was opened (a compaction runs three).
    pub checkpoints: u64,
    /// Transactions committed straight into the tree, written once (counted in
    /// `checkpoints` too; `format-spec/btree.md`, "Tree commits").
    pub tree_commits: u64,
    /// Commits held back because the version store was over twice its budget while a
    /// checkpoint folded it (or something else held the checkpointer).
    pub throttled_commits: u64,
    /// History entries of the checkpointed tree, as its in-memory history index counts
    /// them (0 until the index is built).
    pub history_keys: u64,
    /// Whether that index is a directory (time-travel reads of those keys need no tree
    /// descent; `Options::history_directory_keys`), not a Bloom filter.
    pub history_directory: bool,
    /// Bytes of memory that index takes.
    pub history_index_bytes: u64,
}

/// A summary of an open database, as the CLI's `info` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbInfo {
    /// The format version the file needs to be read.
    pub format_version: u32,
    /// Bytes per page.
    pub page_size: u32,
    /// Length of the file in bytes.
    pub file_len: u64,
    /// Pages accounted for by the checkpointed state.
    pub page_count: u64,
    /// Last commit sequence folded into the checkpointed state.
    pub checkpoint_seq: u64,
    /// Header generation (incremented on every checkpoint).
    pub header_generation: u64,
    /// Which header copy is current (0 = A, 1 = B).
    pub header_copy: u32,
    /// Random id given to the database at creation.
    pub database_id: u64,
    /// Opened read-only: a live reader, which follows another process's commits.
    pub read_only: bool,
    /// The newest commit this handle sees.
    pub visible_seq: u64,
    /// Whether a live reader (of any process) pins a header generation older than the
    /// current one (`format-spec/locking.md`): pages that generation reaches are then
    /// held out of reuse and compaction cannot cut them off.
    pub older_generations_pinned: bool,
    /// Pages this writer holds out of reuse for pinned older generations.
    pub held_pages: u64,
    /// The durable bound: the header proves every commit up to it was durable.
    pub log_durable_seq: u64,
    /// Damage to the log a read-only open stopped at: the commits from its `seq` on
    /// cannot be read (a read-write open refuses such a file).
    pub log_damage: Option<crate::commit::LogDamage>,
    /// A header copy damaged beyond repair beside the one read (only a read-only open
    /// reads such a file): the damaged copy may have held a newer state, so what this
    /// handle reads may be an earlier one, and a writer may have reused pages only that
    /// earlier state reached: its reads may then fail as damage, or (a page rewritten
    /// as a node of a later tree) show keys and values of another state.
    pub header_damage: Option<String>,
}

impl Engine {
    pub(crate) fn stats(&self) -> Stats {
        let index = self.committer.index_stats();
        let section = self.committer.section_stats();
        let group = self.committer.group_stats();
        let tree = self.current_tree();
        let history = tree.history_index();
        Stats {
            // A live reader sequences nothing: its tip is what it has followed.
            tip_seq: if self.read_only {
                self.registry.visible()
            } else {
                self.committer.tip()
            },
            visible_seq: self.registry.visible(),
            versions: self.versions.version_count(),
            version_bytes: self.versions.byte_count(),
            live_snapshots: self.registry.live_count(),
            commit_index_records: self.committer.index_records(),
            admitted: index.admitted,
            write_conflicts: index.write_conflicts,
            ssi_conflicts: index.ssi_conflicts,
            section_count: section.count,
            section_ns_total: section.total_ns,
            section_ns_max: section.max_ns,
            durable_seq: self.committer.durable_seq(),
            groups: group.groups,
            group_commits: group.commits,
            group_syncs: group.syncs,
            file_syncs: self.storage.sync_count(),
            capsule_bytes: self.committer.capsule_bytes(),
            log_bytes: group.log_bytes,
            recovered_commits: self.recovered_commits,
            repaired_log_records: self.repaired_log_records,
            free_pages: self.pager.free_count(),
            high_water_page: self.pager.high_water(),
            checkpoint_seq: tree.checkpoint_seq,
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            tree_commits: self.tree_commits.load(Ordering::Relaxed),
            throttled_commits: self.throttled_commits.load(Ordering::Relaxed),
            history_keys: history.map_or(0, |h| h.keys() as u64),
            history_directory: matches!(history, Some(HistoryIndex::Directory(_))),
            history_index_bytes: history.map_or(0, |h| h.bytes() as u64),
        }
    }

    pub(crate) fn history_window(&self) -> (u64, u64) {
        // As `Transaction::begin_at`: a tree commit in progress has raised the floor
        // above `visible`, and the window would read inverted.
        let _registered = self.registry.begin();
        (self.committer.history().floor(), self.registry.visible())
    }

    /// Runs a checkpoint (waiting for one in progress when `wait`; one even with
    /// nothing to fold when `force`).
    pub(crate) fn run_checkpoint(
        &self,
        wait: bool,
        force: bool,
    ) -> Result<Option<CheckpointReport>> {
        let result = self.checkpointer.run(wait, force);
        match &result {
            Ok(Some(r)) => {
                log::info!(
                    "checkpoint to seq {} in {} ms: {} keys folded, {} pages written, {} pages freed",
                    r.checkpoint_seq,
                    r.duration.as_millis(),
                    r.keys_folded,
                    r.pages_written,
                    r.pages_freed
                );
                self.checkpoints.fetch_add(1, Ordering::Relaxed);
                *self.last_checkpoint_error.lock() = None;
            }
            Ok(None) => {}
            Err(e) => {
                log::warn!("checkpoint failed: {e}");
                *self.last_checkpoint_error.lock() = Some(e.to_string());
            }
        }
        result
    }

    pub(crate) fn drop_history_before(&self, seq: u64) -> Result<u64> {
        self.check_writable()?;
        // Up to what is queued now: `drain` would go on while other threads commit.
        self.committer.flush_queued()?;
        let history = self.committer.history();
        // Never past the newest state: the request is for history older than `seq`
        // now, and a larger value would stay in force and keep no history of the commits
        // after it (the window the database was opened with switched off).
        history.drop_before(seq.min(self.registry.visible()));
        self.committer.maintain();
        // Counted and logged as every checkpoint is (`Stats::checkpoints`).
        self.run_checkpoint(true, true)?;
        Ok(history.floor())
    }

    pub(crate) fn close(&self) -> Result<()> {
        self.close_then(|| {})
    }

    /// Closes, then calls `release` (which lets go of the closer's own handle) before
    /// the close is marked done: an open of this file meanwhile waited for that mark,
    /// and a handle still counted after it is one some other thread keeps
    /// (`files::open_registered`).
    pub(crate) fn close_then(&self, release: impl FnOnce()) -> Result<()> {
        let closed = self.close_inner();
        release();
        self.close_done.store(true, Ordering::Release);
        closed
    }

    fn close_inner(&self) -> Result<()> {
        self.closing.store(true, Ordering::SeqCst);
        // Wait for a checkpoint in progress; none starts after this.
        self.checkpointer.shut();
        self.pins.clear();
        // A commit that passed the open check before `closing` was set is admitted
        // before this returns (and drained below) or refused `Closed`.
        self.committer.stop_admission();
        let drained = self.committer.drain();
        // A step led by another thread (the flusher) may have made commits durable and
        // not yet told the feed when `drain` saw it end: told here, before the feed
        // closes, subscribers receive every commit this close leaves durable.
        // (Visible or not: nothing reads the database once it is closed.)
        let durable = self.committer.durable_seq();
        // A committer records its commit to the feed after taking its sequence, and
        // before it applies its versions: once every commit `drain` made durable is
        // visible, every one is recorded, and the feed publishes them all (it stops at
        // the first sequence not recorded). Not when poisoned: a commit stalled there
        // never becomes visible.
        if drained.is_ok() && self.committer.check_poisoned().is_ok() {
            let _ = self.registry.wait_visible(durable);
        }
        self.committer.feed().durable(durable);
        self.committer.feed().visible(durable);
        self.committer.feed().close();
        // `wait_for` a commit that will never come ends.
        self.committer.close_waits();
        drained?;
        if self.read_only {
            // A live reader's handle pins nothing once closed (a clone of it may live).
            self.checkpointer.detach_pin();
            return Ok(());
        }
        // Poisoned, nothing more is written, and commits acknowledged below `Durable`
        // (or sequenced) since the failed step may be lost: close says so, even when
        // the failed step had taken every queued commit and `drain` found none left.
        self.committer.check_poisoned()?;
        // A clean close: every marker written is durable, and the header says so.
        self.checkpointer
            .raise_durable_bound(self.committer.durable_seq())
    }

    /// A header copy damaged beyond repair beside the one read (`DbInfo::header_damage`),
    /// as `(page of the damaged copy, what)`.
    pub(crate) fn header_damage(&self) -> Result<Option<(u64, String)>> {
        super::create::header_damage(self.storage.as_ref())
    }

    /// The last `Database` handle is gone: every commit queued so far reaches the disk
    /// now (as the engine's own drop would do, which a background thread holding the
    /// engine may delay). Bounded: it flushes up to the last commit queued when it
    /// starts (`Committer::flush_queued`, as the flusher does), so a handle opened
    /// meanwhile that keeps committing cannot hold it. A failure was already reported
    /// to the committers that waited, and there is no one left to tell.
    pub(crate) fn flush_for_last_handle(&self) {
        if !self.read_only {
            let _ = self.committer.flush_queued();
        }
    }

    pub(crate) fn collect_garbage(&self) -> Result<()> {
        self.check_open()?;
        // Up to what is queued now: `drain` would go on while other threads commit.
        self.committer.flush_queued()?;
        self.committer.maintain();
        Ok(())
    }

    pub(crate) fn compact(&self) -> Result<u64> {
        self.check_writable()?;
        let (shrunk, passes) = self.checkpointer.compact()?;
        self.checkpoints.fetch_add(passes, Ordering::Relaxed);
        log::info!("compaction returned {shrunk} bytes at the end of the file");
        Ok(shrunk)
    }

    pub(crate) fn info(&self) -> Result<DbInfo> {
        // A clone of a closed handle is told so, as by every other call.
        self.check_open()?;
        let (h, copy) = self.checkpointer.header();
        Ok(DbInfo {
            format_version: h.read_version,
            page_size: h.page_size,
            file_len: self.storage.len()?,
            page_count: h.page_count,
            checkpoint_seq: h.checkpoint_seq,
            header_generation: h.generation,
            header_copy: copy,
            database_id: h.database_id,
            read_only: self.read_only,
            visible_seq: self.registry.visible(),
            older_generations_pinned: self.storage.pinned_below(h.generation)?,
            held_pages: self.pager.held_count(),
            log_durable_seq: h.log_durable_seq,
            log_damage: self.log_damage.clone(),
            header_damage: self.header_damage()?.map(|(_, what)| what),
        })
    }

    pub(crate) fn checkpoint(&self) -> Result<Option<CheckpointReport>> {
        self.check_writable()?;
        self.run_checkpoint(true, false)
    }
}
