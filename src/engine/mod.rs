//! The engine behind a `Database`: opening (with recovery), committing, the committed
//! read path, checkpoint triggering and integrity checks. The public face (`crate::api`)
//! holds an `Arc<Engine>` and hands every piece of work to it.

mod config;
mod control;
mod create;
pub(crate) mod files;
mod flush;
mod follow;
mod idle;
mod integrity;
mod pin_cache;
mod pressure;
mod read;
mod salvage;
mod scan;
mod value;

pub(crate) use config::Config;
pub use control::{DbInfo, Stats};
pub(crate) use files::open_path;
pub(crate) use follow::Follower;
pub use integrity::IntegrityReport;
pub(crate) use read::Committed;
pub(crate) use salvage::EntrySink;
pub use salvage::{SalvageLoss, SalvageReport};
pub(crate) use scan::{OwnWrites, ScanMerge, Step};
pub(crate) use value::ReadPin;
pub use value::ValueRef;

use crate::checkpoint::{
    Checkpointer, TreeState, bound_needs_write, read_free_list, write_durable_bound,
};
use crate::commit::{
    CommitError, Committer, Feed, GroupCommit, LogArena, LogDamage, MarkerWriter, ReadSet,
    StreamStart, StreamTail, apply_repairs, recover, rewrite_log_pages, scrub_tail,
};
use crate::error::{Error, Result};
use crate::format::{PageKind, first_data_page};
use crate::mvcc::{History, SnapshotRegistry, VersionStore};
use crate::pager::Pager;
use crate::storage::Storage;
use crate::types::{Durability, Isolation, TABLE_ID_MAX, TableId, WriteSet};
use create::{create, interrupted_creation, read_header};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Bytes of keys and values above which a durable commit goes straight into the tree
/// when it can ([`Engine::commit`]): below, a capsule and the version store cost less
/// than rewriting the leaves its keys fall in.
const TREE_COMMIT_DURABLE_BYTES_MIN: u64 = 1 << 20;

/// A durable commit of [`TREE_COMMIT_DURABLE_BYTES_MIN`] bytes or more (not large) goes
/// into the tree only while the file's pages in use are at most this many times its
/// bytes ([`Engine::tree_sized`]).
const TREE_COMMIT_FILE_RATIO: u64 = 8;

/// Commits between two automatic checkpoint attempts.
const CHECKPOINT_RETRY_COMMITS: u64 = 256;
/// Generations above the recovered one a read-write open looks for readers' pins on (a
/// writer poisons itself at its first failed header sync: one is the most expected).
const GHOST_GENERATIONS: u64 = 64;
/// Commits between two attempts while the version store is more than twice over budget.
const CHECKPOINT_RETRY_COMMITS_OVER_BUDGET: u64 = 8;

pub(crate) struct Engine {
    /// This engine, for the background thread of an automatic checkpoint.
    me: std::sync::Weak<Engine>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) path: Option<PathBuf>,
    pub(crate) page_size: u32,
    pub(crate) versions: Arc<VersionStore>,
    pub(crate) registry: Arc<SnapshotRegistry>,
    pub(crate) committer: Arc<Committer>,
    pub(crate) pager: Arc<Pager>,
    pub(crate) checkpointer: Checkpointer,
    /// Pins of the current tree kept for the next read transactions.
    pub(crate) pins: Arc<pin_cache::PinCache>,
    pub(crate) next_table_id: AtomicU64,
    pub(crate) closing: AtomicBool,
    /// Set once a `close` of it returned (whatever its result).
    pub(crate) close_done: AtomicBool,
    /// Opened read-only: nothing is written.
    pub(crate) read_only: bool,
    /// The settings it was opened with.
    pub(crate) config: Config,
    /// Commits replayed by recovery at open.
    pub(crate) recovered_commits: u64,
    /// Log records and headers recovery rebuilt from redundancy at open (rewritten by a
    /// read-write open).
    pub(crate) repaired_log_records: u64,
    /// Damage a read-only open stopped at (a read-write open refuses such a file).
    pub(crate) log_damage: Option<LogDamage>,
    /// `(page, what)`: a read-only open could not read the floor and the kept drops.
    pub(crate) drops_unread: Option<(u64, String)>,
    version_bytes_max: u64,
    log_commits_max: u64,
    pub(crate) checkpoints: AtomicU64,
    last_checkpoint_try: AtomicU64,
    /// The store's bytes at the last automatic checkpoint attempt.
    last_checkpoint_try_bytes: AtomicU64,
    checkpoint_running: AtomicBool,
    /// An idle watcher runs (`idle.rs`).
    idle_armed: AtomicBool,
    /// A flusher runs (`flush.rs`).
    flush_armed: AtomicBool,
    /// `Database` handles of this process on this engine, counted per open (each open
    /// of the same file shares the engine; its clones share one count): the last one's
    /// drop flushes (`Engine::flush_for_last_handle`).
    pub(crate) handles: AtomicUsize,
    /// Transactions committed straight into the tree.
    pub(crate) tree_commits: AtomicU64,
    pub(crate) throttled_commits: AtomicU64, // Commits `Engine::throttle` held back.
    pub(crate) last_checkpoint_error: Mutex<Option<String>>,
    /// A live reader's place in the marker stream (`None` for a writer).
    pub(crate) live_tail: Mutex<Option<StreamTail>>,
    /// Declared last so it drops after every other field (the storage included): then
    /// this process no longer holds the file's lock.
    pub(crate) lock_notice: Mutex<Option<files::LockNotice>>,
}

/// A database's path for log messages.
fn show_path(path: Option<&std::path::Path>) -> std::borrow::Cow<'_, str> {
    path.map_or("(storage)".into(), |p| p.to_string_lossy())
}

impl Engine {
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        path: Option<PathBuf>,
        config: &Config,
    ) -> Result<Arc<Engine>> {
        let fresh = storage.is_empty()? || interrupted_creation(storage.as_ref())?;
        // A reader pins the header's generation before it reads what the header names.
        let mut pin = None;
        let (header, copy) = if fresh && config.read_only {
            return Err(Error::NotADatabase {
                what: "the file holds no created database, and a read-only open cannot create one"
                    .into(),
            });
        } else if fresh {
            log::info!("{}: creating a new database", show_path(path.as_deref()));
            create(storage.as_ref(), config)?
        } else if config.read_only {
            let (header, copy, p) = follow::read_header_pinned(&storage)?;
            pin = Some(p);
            (header, copy)
        } else {
            let read = read_header(storage.as_ref(), config.read_only)?;
            // The creation synced the file's name after its header: a creation stopped
            // between the two (killed, or the directory's sync failed) left a file this
            // open reads as created, whose name a power cut could still lose with every
            // commit made on it. One directory sync an open makes sure of it.
            storage.sync_name()?;
            read
        };
        let page_size = header.page_size;
        // Recovery only reads; nothing is written until it has succeeded.
        let versions = Arc::new(VersionStore::new());
        // A read-only open never allocates, creates a table or writes history: what
        // it reads only for those (the free list, the largest table id, the history
        // floor and kept drops) is read leniently, so one damaged page of them does not
        // keep `salvage` and reads from every other page; `check_integrity` reports it.
        let lenient = |what: &str, e: Error| -> Result<()> {
            if config.read_only {
                log::warn!(
                    "{}: read-only open: {what} could not be read ({e}); opened without it",
                    show_path(path.as_deref())
                );
                Ok(())
            } else {
                Err(e)
            }
        };
        let mut floor_unread = false;
        // `(page, what)` of the record of kept drops a read-only open read past.
        let mut drops_unread = None;
        let unread = |e: &Error| match e {
            Error::Corrupted { page, .. } => (*page, e.to_string()),
            _ => (header.catalog_root, e.to_string()),
        };
        let (floor, kept_drops, catalog_ids, refused) = {
            let file = storage.view()?;
            let catalog_ids = create::catalog_table_ids(&file, page_size, header.catalog_root);
            let (floor, drops) = match crate::checkpoint::read_floor_and_drops(
                &file,
                page_size,
                header.catalog_root,
            ) {
                Ok(found) => found,
                Err(e) => {
                    drops_unread = Some(unread(&e));
                    floor_unread = true;
                    lenient("the history floor and kept drops", e)?;
                    (None, None)
                }
            };
            let drops = drops.unwrap_or_default();
            let refused =
                create::refused_kept_drop(&file, &header, &drops, catalog_ids.as_ref().ok());
            (
                floor.unwrap_or(header.checkpoint_seq),
                drops,
                catalog_ids,
                refused,
            )
        };
        let mut kept_max_id = 0;
        let kept_drops = match refused {
            Some(e) => {
                drops_unread = Some(unread(&e));
                lenient("the tree's kept drops", e)?;
                Vec::new()
            }
            None => kept_drops,
        };
        for &(table, seq) in &kept_drops {
            versions.drop_table_at(table, seq);
            kept_max_id = kept_max_id.max(table);
        }
        // A read-only open reads up to damage; a read-write one refuses it, writing nothing.
        // A read-only open is a live reader: a writer in another process may be appending.
        // Only the states the history window will serve are kept (under the default
        // retention, the newest: a log of many commits since the checkpoint replayed
        // into memory whole). A read-only handle serves the file's whole window, to look
        // at its history without changing it (`Config::retention`).
        let window = crate::mvcc::ReplayWindow::at_open(config.retention(), floor);
        let rec = if config.read_only {
            let start = StreamStart::at_checkpoint(&header);
            follow::recover_live(storage.as_ref(), &header, start, &versions, window)?
        } else {
            recover(storage.as_ref(), &header, &versions, window, false)?
        };
        if !fresh {
            log::info!(
                "{}: checkpoint at seq {}, recovery replayed {} commits of the log up to seq {} ({} log pages in use)",
                show_path(path.as_deref()),
                header.checkpoint_seq,
                rec.replayed,
                rec.tip,
                rec.used_pages.len()
            );
        }
        let known_floor = (!floor_unread).then_some(floor);
        follow::damage_before_reads(&rec, known_floor, &show_path(path.as_deref()))?;
        // With its record unread, the window may have started anywhere after the
        // checkpoint (a tree written with the floor above it is wrong at its own
        // sequence): only the newest state is read.
        let floor = if floor_unread {
            rec.tip
        } else {
            window.floor_at(rec.tip)
        };
        let first_data = first_data_page(page_size);
        let (non_tree, free_list_run, tree_max_id) = {
            let file = storage.view()?;
            let (non_tree, run) = match read_free_list(
                &file,
                page_size,
                header.freelist_root,
                first_data,
                header.page_count,
            ) {
                Ok(found) => found,
                Err(e) => {
                    lenient("the free list", e)?;
                    (BTreeSet::new(), (header.freelist_root, 0))
                }
            };
            let max_id = match catalog_ids.and_then(|ids| {
                let named = ids.last().copied().unwrap_or(0);
                Ok(named.max(create::max_data_table_id(
                    &file,
                    page_size,
                    header.catalog_root,
                )?))
            }) {
                Ok(id) => id,
                Err(e) => {
                    lenient("the largest table id", e)?;
                    0
                }
            };
            (non_tree, run, max_id.max(kept_max_id))
        };
        // A reader pinning a generation above the recovered one read a header whose sync
        // failed, from the page cache: that tree's pages are free here, up to the file's
        // end (its checkpoint may have grown the file), and all are held below.
        let ghost = match config.read_only {
            true => None,
            false => storage.highest_pin_in(header.generation + 1, GHOST_GENERATIONS)?,
        };
        let used_end = rec.used_pages.last().map_or(0, |&p| p + 1);
        let file_end = match ghost {
            Some(_) => storage.len()? / u64::from(header.page_size),
            None => 0,
        };
        let high_water = used_end.max(file_end).max(header.page_count);
        // Free: outside the tree and unused by the log after the checkpoint.
        let free: BTreeSet<u64> = non_tree
            .iter()
            .copied()
            .chain(header.page_count..high_water)
            .filter(|p| !rec.used_pages.contains(p))
            .collect();
        let max_table_id = rec.max_table_id.max(tree_max_id);
        if max_table_id > TABLE_ID_MAX {
            return Err(Error::corrupted(
                header.catalog_root,
                format!(
                    "the tree names table id {max_table_id}, above the highest a table can have"
                ),
            ));
        }
        let next_table_id = max_table_id + 1;
        let pager = Arc::new(Pager::new(
            Arc::clone(&storage),
            page_size,
            high_water,
            free,
        )?);
        let mut tail = rec.tail;
        // A next page in the tree: only a crafted header names one; never zeroed.
        let rewrite_tail_header = (!config.read_only
            && tail.forget_next_page_in_tree(header.page_count, &non_tree)?)
            || rec.rewrite_tail_header;
        let (mut header, mut copy) = (header, copy);
        if !config.read_only {
            // Above a `ghost` generation: its reader sees a new one, not another tree
            // under the number it holds (`format-spec/locking.md`).
            if let Some(g) = ghost {
                log::warn!(
                    "{}: a reader pins generation {g}, above the file's {}: a header whose \
                     sync failed; this open writes generation {}",
                    show_path(path.as_deref()),
                    header.generation,
                    g + 1
                );
                header.generation = g;
            }
            // Readers of other processes may pin an older generation (or the ghost) that
            // reaches pages this open found free (`format-spec/locking.md`).
            pager.hold_free_set(ghost.map_or(header.generation, |g| g + 1));
            // The header this open recovered from is made durable before anything is
            // written to a page only it frees: read through the page cache, it may be a
            // header whose sync failed (the kernel then marks the page clean without
            // writing it) or one a kill cut off before its sync, and new commits on pages
            // only it names would vanish with it at a power cut. Its own bytes are
            // written again (a live reader reading them mid-write reads the same bytes);
            // a copy read repaired gets a new generation in the other copy instead.
            let mut repaired = create::repaired_header_copies(storage.as_ref())?;
            if ghost.is_some() || repaired.iter().any(|&(c, _)| c == copy) {
                (header, copy) =
                    write_durable_bound(storage.as_ref(), &header, copy, header.log_durable_seq)?;
            } else {
                create::rewrite_header_copy(storage.as_ref(), copy)?;
            }
            // The current copy is whole on disk now; a repaired older one is written back
            // below, once it is sure to stay the older.
            repaired.retain(|&(c, _)| c != copy);
            copy = create::fill_blank_copy_a(storage.as_ref(), &header, copy)?;
            // Recovery explained everything: rebuilt records go back, the torn tail is
            // scrubbed, and the recovered stream becomes the durable bound. A tail page
            // header the scrub writes (rebuilt with an unconfirmed next page, or a page
            // stopped at slot 0, written whole) is not written back: the scrub writes it
            // with a next page of its own choosing (made durable first, a crash before
            // the scrub would have the next open trust it).
            let (tail_header, whole) = (
                tail.page * u64::from(page_size),
                tail.next_seq == tail.first_seq,
            );
            let repairs: Vec<_> = rec
                .repairs
                .iter()
                .filter(|r| !((rewrite_tail_header || whole) && r.offset == tail_header))
                .cloned()
                .collect();
            apply_repairs(storage.as_ref(), &repairs)?;
            rewrite_log_pages(
                storage.as_ref(),
                page_size,
                rec.marker_pages.iter().map(|&(_, page)| page),
            )?;
            if tail.next_page == 0 {
                tail.next_page = pager.alloc()?;
                // The new next page may lie past the file's durable length (grown now,
                // or by the crashed process without a sync since): the length is made
                // durable before a header naming it is written over a page that may
                // hold durable markers. Otherwise a crash could keep the header and
                // lose the length, and the next open, finding a verified header
                // linking past the file, would take the page's durable markers for a
                // torn tail. Once per open that rewrites the tail page's header.
                storage.sync()?;
            }
            scrub_tail(storage.as_ref(), page_size, &tail, rewrite_tail_header)?;
            log::debug!(
                "cleared the marker stream after seq {} (page {}, next page {}) so no torn record can continue it",
                tail.next_seq.saturating_sub(1),
                tail.page,
                tail.next_page
            );
            // A header copy read repaired (one flipped bit) is written back whole, never
            // the current copy in place (a reader of another process reading it torn
            // would take the older one): a repaired current copy got a new generation
            // in the other copy above, and the repaired one is the older now.
            // A tail page header rewritten with a next page of this open's choosing gets
            // a new header generation too: a live reader of another process that
            // opened on the damaged header waits on the page it named, which no writer
            // starts now, and reopens only at a new generation.
            if bound_needs_write(&header, rec.tip) || rewrite_tail_header {
                (header, copy) = write_durable_bound(storage.as_ref(), &header, copy, rec.tip)?;
            }
            let older: Vec<_> = repaired.iter().filter(|&&(c, _)| c != copy).collect();
            for &&(c, h) in &older {
                let slot = crate::format::HEADER_COPY_OFFSETS
                    .get(c as usize)
                    .copied()
                    .unwrap_or(0);
                storage.write_at(slot, &h.encode(c))?;
            }
            if !older.is_empty() {
                storage.sync()?;
            }
        }
        let proof_resume = rec.log.resume_point(&rec.log.proofs);
        let capsule_resume = rec.log.resume_point(&rec.log.capsules);
        let registry = SnapshotRegistry::new(rec.tip);
        let feed = Arc::new(Feed::new(rec.tip));
        let group = GroupCommit::new(
            Arc::clone(&storage),
            LogArena::new(
                PageKind::Proof,
                Arc::clone(&pager),
                Arc::clone(&storage),
                rec.log.proofs,
                proof_resume,
            ),
            MarkerWriter::new(
                Arc::clone(&storage),
                Arc::clone(&pager),
                tail,
                rec.marker_pages,
            ),
            rec.tip,
            Arc::clone(&feed),
            Arc::clone(&registry),
        );
        let capsules = LogArena::new(
            PageKind::Capsule,
            Arc::clone(&pager),
            Arc::clone(&storage),
            rec.log.capsules,
            capsule_resume,
        );
        let committer = Arc::new(Committer::new(
            rec.tip,
            Arc::clone(&registry),
            Arc::clone(&versions),
            History::new(config.retention(), floor, rec.tip),
            feed,
            capsules,
            group,
        ));
        let checkpointer = Checkpointer::new(
            Arc::clone(&storage),
            Arc::clone(&pager),
            Arc::clone(&versions),
            Arc::clone(&registry),
            Arc::clone(&committer),
            header,
            copy,
            non_tree,
            free_list_run,
        )
        .with_directory_keys(config.history_directory_keys);
        checkpointer.index_history();
        if let Some(pin) = pin {
            checkpointer.attach_pin(pin);
        }
        let pins = Arc::new(pin_cache::PinCache::default());
        {
            let pins = Arc::clone(&pins);
            checkpointer.on_publish(Box::new(move || pins.clear()));
        }
        Ok(Arc::new_cyclic(|me| Engine {
            me: me.clone(),
            storage,
            path,
            page_size,
            versions,
            registry,
            committer,
            pager,
            checkpointer,
            pins,
            next_table_id: AtomicU64::new(next_table_id),
            closing: AtomicBool::new(false),
            close_done: AtomicBool::new(false),
            read_only: config.read_only,
            config: config.clone(),
            recovered_commits: rec.replayed,
            repaired_log_records: rec.repairs.len() as u64,
            log_damage: rec.damage,
            drops_unread,
            version_bytes_max: config.version_store_budget,
            log_commits_max: config.checkpoint_log_commits,
            checkpoints: AtomicU64::new(0),
            last_checkpoint_try: AtomicU64::new(0),
            last_checkpoint_try_bytes: AtomicU64::new(0),
            checkpoint_running: AtomicBool::new(false),
            idle_armed: AtomicBool::new(false),
            flush_armed: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
            tree_commits: AtomicU64::new(0),
            throttled_commits: AtomicU64::new(0),
            last_checkpoint_error: Mutex::new(None),
            live_tail: Mutex::new(config.read_only.then_some(tail)),
            lock_notice: Mutex::new(None),
        }))
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.read_only {
            return Err(Error::ReadOnlyDatabase);
        }
        Ok(())
    }

    /// A table id no table has had. None is left once the file names the largest,
    /// [`TABLE_ID_MAX`] (only a damaged or crafted file does: the ids
    /// above it are the history's prefix and the catalog's wrap-around, and a table
    /// given one would be refused by every later open).
    pub(crate) fn allocate_table_id(&self) -> Result<TableId> {
        self.next_table_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| {
                (id <= TABLE_ID_MAX).then(|| id + 1)
            })
            .map_err(|_| {
                Error::corrupted(
                    0,
                    format!(
                        "no table id is left: the file names table id {TABLE_ID_MAX}, the largest"
                    ),
                )
            })
    }

    /// The current checkpointed tree.
    pub(crate) fn current_tree(&self) -> TreeState {
        self.checkpointer.tree()
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "a transaction's parts, passed through"
    )]
    pub(crate) fn commit(
        &self,
        snapshot: u64,
        isolation: Isolation,
        writes: &WriteSet,
        reads: ReadSet,
        dropped: &[TableId],
        durability: Durability,
        touched: crate::commit::Touched<'_>,
        write_bytes: usize,
    ) -> Result<Option<u64>, CommitError> {
        self.check_open()?;
        // A large transaction goes straight into the tree when no other snapshot is
        // live (`format-spec/btree.md`, "Tree commits"); otherwise the ordinary path.
        let reads = if self.tree_sized(write_bytes, durability)
            && dropped.is_empty()
            && !self.read_only
            && self.alone_now(snapshot)
        {
            let registry = &self.registry;
            match self.checkpointer.tree_commit(
                snapshot,
                isolation,
                writes,
                reads,
                touched,
                || registry.try_exclusive(snapshot),
            )? {
                Ok(seq) => {
                    if seq.is_some() {
                        self.checkpoints.fetch_add(1, Ordering::Relaxed);
                        self.tree_commits.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(seq);
                }
                // Another snapshot is live: through the log.
                Err(reads) => reads,
            }
        } else {
            reads
        };
        let seq = self.committer.commit(
            snapshot, isolation, writes, reads, dropped, durability, touched,
        )?;
        if seq.is_none() {
            return Ok(seq);
        }
        self.arm_flush(durability);
        let bytes = self.versions.byte_count();
        // Over budget, a checkpoint is due as soon as none runs; otherwise at most once
        // per CHECKPOINT_RETRY_COMMITS commits (a budget exceeded by versions no
        // checkpoint can fold yet must not turn every commit into an attempt).
        let s = seq.unwrap_or(0);
        let last = self.last_checkpoint_try.load(Ordering::Relaxed);
        let retry_after = if bytes > self.version_bytes_max.saturating_mul(2) {
            CHECKPOINT_RETRY_COMMITS_OVER_BUDGET
        } else {
            CHECKPOINT_RETRY_COMMITS
        };
        // Over budget, a store that grew by a sixteenth of the budget since the last
        // attempt is due too, however few commits brought it: commits of thousands of
        // keys would otherwise fill it to twice the budget before the next attempt.
        // Grown from its low point since then: measured from its size when the attempt
        // began, which a fold then emptied, each attempt's mark stood a sixteenth above
        // the last, and after sixteen folds the store reached twice the budget again.
        let low = self.last_checkpoint_try_bytes.load(Ordering::Relaxed);
        if bytes < low {
            self.last_checkpoint_try_bytes
                .fetch_min(bytes, Ordering::Relaxed);
        }
        let grown = bytes > self.version_bytes_max
            && bytes
                >= self
                    .last_checkpoint_try_bytes
                    .load(Ordering::Relaxed)
                    .saturating_add(self.version_bytes_max / 16);
        // A look finding none due counts as a try (it takes the commit index's lock).
        // Not while the checkpointer is held: the thread would find it taken and end.
        let due = (s >= last + retry_after || grown)
            && !self.checkpoint_running.load(Ordering::Acquire)
            && !self.checkpointer.busy()
            && {
                let wanted = (self.checkpointer).due(self.version_bytes_max, self.log_commits_max);
                (self.last_checkpoint_try)
                    .compare_exchange(last, s, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                    && wanted
            }
            && !self.checkpoint_running.swap(true, Ordering::AcqRel);
        if due {
            self.last_checkpoint_try_bytes
                .store(bytes, Ordering::Relaxed);
            self.start_background_checkpoint();
        }
        // Armed beside a checkpoint too, which it waits out: that checkpoint folds only
        // up to the oldest live snapshot, and a load a snapshot held back (its one commit
        // started the checkpoint) is then folded once commits stop, not at some later
        // commit.
        self.arm_idle_fold(bytes);
        Ok(seq)
    }

    /// Whether `bytes` (of a transaction's writes, or in the store) pass half the
    /// version-store budget: what makes a transaction large.
    fn is_large(&self, bytes: impl TryInto<u64>) -> bool {
        bytes.try_into().unwrap_or(u64::MAX) > self.version_bytes_max / 2
    }

    /// Whether a commit writing `bytes` is worth a tree commit: a large one always; a
    /// durable one from [`TREE_COMMIT_DURABLE_BYTES_MIN`] (it pays two syncs anyway, and
    /// its readers then read the tree rather than the version store) while the file's
    /// pages in use are at most [`TREE_COMMIT_FILE_RATIO`] times its bytes. In a larger
    /// tree its keys may fall in a leaf each (a load in batches of random keys), and
    /// each such commit would rewrite much of the tree: the log and a later fold, which
    /// rewrites those leaves once for many commits, cost less. An `Applied` commit below
    /// large stays in memory, as asked.
    fn tree_sized(&self, bytes: usize, durability: Durability) -> bool {
        if self.is_large(bytes) {
            return true;
        }
        if durability != Durability::Durable || bytes as u64 <= TREE_COMMIT_DURABLE_BYTES_MIN {
            return false;
        }
        // Only now the pager's lock (a small commit takes none of it).
        let in_use = self
            .pager
            .high_water()
            .saturating_sub(self.pager.free_count())
            .saturating_mul(u64::from(self.page_size));
        in_use <= (bytes as u64).saturating_mul(TREE_COMMIT_FILE_RATIO)
    }

    /// Whether no snapshot but the committer's own (`snapshot`) is live now: the
    /// registry's exclusive hold, taken and let go at once. A cheap first look before a
    /// tree commit, which takes the hold for good only once it holds the checkpointer:
    /// with another snapshot live, a large commit goes through the log at once instead
    /// of waiting for a checkpoint in progress to find that out.
    fn alone_now(&self, snapshot: u64) -> bool {
        self.registry.try_exclusive(snapshot).is_some()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Every sequenced commit reaches the disk; a failure here was already
        // reported to the committers that waited, and there is no one left to tell.
        if self.committer.drain().is_ok() && !self.read_only && !self.committer.is_poisoned() {
            let _ = self
                .checkpointer
                .raise_durable_bound(self.committer.durable_seq());
        }
    }
}
