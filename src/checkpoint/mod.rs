//! Checkpoints: fold committed versions at or below a horizon into the B+tree, write
//! the new header, then free what the old state used (`format-spec/btree.md`,
//! "Checkpoint ordering").
//!
//! Committers keep committing while a checkpoint runs: it holds no lock a committer
//! waits on for long, but the group steps' sync lock across its own syncs
//! (`Committer::serialize_syncs`), and the marker writer's, the group state's and the
//! commit index's for a moment each (where the stream restarts, a step in flight, the
//! tip).

mod bound;
mod folded;
mod freelist;
mod retained;
mod tree_commit;

pub use bound::{bound_needs_write, write_durable_bound};
use folded::{FoldChanges, FoldMerge};
pub use freelist::read_free_list;
use retained::history_changes;
pub use retained::read_floor_and_drops;

use crate::Result;
use crate::btree::{self, build::rebuild_from, run::run_pages};
use crate::commit::Committer;
use crate::format::{HEADER_COPY_OFFSETS, Header, PageKind};
use crate::mvcc::history_directory::HistoryIndex;
use crate::mvcc::{HistoryRetention, SnapshotRegistry, VersionStore};
use crate::pager::Pager;
use crate::storage::{GenerationPin, Storage};
use crate::types::WriteSet;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Pages a checkpoint took out of a tree, freed when no reader may walk that tree or
/// any older one (untouched leaves are shared across trees, so a page the next tree
/// dropped may still be read through an older root).
///
/// Each guard holds the next newer one, so a guard is released only after every older
/// guard is.
pub struct TreeGuard {
    /// The pages, and the header generation from which on none of them is reachable.
    freed: Mutex<(u64, Vec<u64>)>,
    pager: Arc<Pager>,
    next: Mutex<Option<Arc<TreeGuard>>>,
    /// A live reader's pin on the generation this tree belongs to, released with the
    /// last reader of the tree (`format-spec/locking.md`).
    pin: Mutex<Option<GenerationPin>>,
}

impl TreeGuard {
    fn new(pager: &Arc<Pager>) -> Arc<TreeGuard> {
        Arc::new(TreeGuard {
            freed: Mutex::new((0, Vec::new())),
            pager: Arc::clone(pager),
            next: Mutex::new(None),
            pin: Mutex::new(None),
        })
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        let (generation, pages) = std::mem::take(&mut *self.freed.lock());
        self.pager.free_after(generation, pages);
        // The newer guards this one was the last to hold go too, oldest first, in a
        // loop: a reader that outlived thousands of checkpoints (a `ValueRef` kept
        // through a bulk load of many tree commits) would otherwise drop them nested,
        // one stack frame each, and could overflow its thread's stack.
        let mut next = self.next.get_mut().take();
        while let Some(guard) = next {
            match Arc::try_unwrap(guard) {
                Ok(mut guard) => {
                    next = guard.next.get_mut().take();
                    drop(guard);
                }
                Err(_) => break,
            }
        }
    }
}

/// The current checkpointed tree. Readers clone it (holding the guard) for one walk.
#[derive(Clone)]
pub struct TreeState {
    /// Root page (`0` = empty).
    pub root: u64,
    /// The checkpoint sequence the tree holds the state of.
    pub checkpoint_seq: u64,
    guard: Arc<TreeGuard>,
    /// Which keys this tree holds history entries for, and where, once built
    /// ([`Checkpointer::index_history`]). Held by the tree's readers, not its guard: a
    /// guard lives while any older tree is read, and every newer tree's index with it
    /// (a reader held through many checkpoints kept each one's, tens of MiB apiece).
    history: Arc<OnceLock<HistoryIndex>>,
}

impl TreeState {
    /// Which keys this tree holds history entries for, and where: `None` until
    /// [`Checkpointer::index_history`] has built it (a reader then looks every key up).
    pub fn history_index(&self) -> Option<&HistoryIndex> {
        self.history.get()
    }
}

/// What one checkpoint did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointReport {
    /// The sequence folded up to.
    pub checkpoint_seq: u64,
    /// Entries the fold wrote or removed in the tree: the keys folded (puts and
    /// deletions) and, with a history window, the history records they changed (version
    /// lists, the floor, the kept drops).
    pub keys_folded: u64,
    /// Tree, overflow and free-list pages written.
    pub pages_written: u64,
    /// Pages the checkpoint made free (old tree pages once unused, log pages).
    pub pages_freed: u64,
    /// How long it took.
    pub duration: Duration,
}

struct State {
    /// Every page below `page_count` the tree does not use (format-spec "What the free
    /// list means").
    non_tree: BTreeSet<u64>,
    free_list_run: (u64, u64),
    /// Set at shutdown: no checkpoint starts after it.
    shut: bool,
}

/// Runs checkpoints for one database.
pub struct Checkpointer {
    storage: Arc<dyn Storage>,
    pager: Arc<Pager>,
    versions: Arc<VersionStore>,
    registry: Arc<SnapshotRegistry>,
    committer: Arc<Committer>,
    header: Mutex<(Header, u32)>,
    tree: RwLock<TreeState>,
    /// Bumped each time a new tree is published, before the versions it folded leave
    /// the store: a reader holding an older tree reloads it when this moved.
    generation: AtomicU64,
    /// Leaves at or above this page are rewritten by the next fold (`compact`).
    relocate_from: AtomicU64,
    state: Mutex<State>,
    /// Runs each time a new tree is published, right after `generation` moves.
    publish_hook: std::sync::OnceLock<PublishHook>,
    /// Most history keys a tree gets a directory of (`Options::history_directory_keys`).
    directory_keys: usize,
}

/// What runs when a new tree is published ([`Checkpointer::on_publish`]).
pub type PublishHook = Box<dyn Fn() + Send + Sync>;

impl Checkpointer {
    /// A checkpointer for the state named by `header` (the copy in slot `copy`), whose
    /// free list holds `non_tree`.
    #[expect(clippy::too_many_arguments, reason = "the layers a checkpoint joins")]
    pub fn new(
        storage: Arc<dyn Storage>,
        pager: Arc<Pager>,
        versions: Arc<VersionStore>,
        registry: Arc<SnapshotRegistry>,
        committer: Arc<Committer>,
        header: Header,
        copy: u32,
        non_tree: BTreeSet<u64>,
        free_list_run: (u64, u64),
    ) -> Checkpointer {
        let guard = TreeGuard::new(&pager);
        Checkpointer {
            tree: RwLock::new(TreeState {
                root: header.catalog_root,
                checkpoint_seq: header.checkpoint_seq,
                guard,
                history: Arc::new(OnceLock::new()),
            }),
            generation: AtomicU64::new(0),
            relocate_from: AtomicU64::new(u64::MAX),
            storage,
            pager,
            versions,
            registry,
            committer,
            header: Mutex::new((header, copy)),
            state: Mutex::new(State {
                non_tree,
                free_list_run,
                shut: false,
            }),
            publish_hook: std::sync::OnceLock::new(),
            directory_keys: crate::mvcc::history_directory::DIRECTORY_KEYS_DEFAULT,
        }
    }

    /// The checkpointer, giving trees a history directory of at most `keys` keys
    /// (`Options::history_directory_keys`).
    pub fn with_directory_keys(mut self, keys: usize) -> Checkpointer {
        self.directory_keys = keys;
        self
    }

    /// Sets what runs each time a new tree is published, right after
    /// [`Checkpointer::generation`] moves (the engine empties its kept read pins there).
    /// Set once; a second hook is ignored.
    pub fn on_publish(&self, hook: PublishHook) {
        let _ = self.publish_hook.set(hook);
    }

    /// Ties a live reader's pin on the header generation to the current tree: it is
    /// released when the last reader of the tree is gone.
    pub fn attach_pin(&self, pin: GenerationPin) {
        *self.tree.read().guard.pin.lock() = Some(pin);
    }

    /// At a live reader's close: the current tree takes a fresh guard without the pin,
    /// so the pin goes with the last transaction still reading the tree (none begins on
    /// a closed handle) instead of staying while a clone of the handle lives.
    pub fn detach_pin(&self) {
        let mut tree = self.tree.write();
        if tree.guard.pin.lock().is_none() {
            return;
        }
        let fresh = TreeGuard::new(&self.pager);
        // Released after the old guard, as a newer one.
        *fresh.next.lock() = tree.guard.next.lock().take();
        *tree.guard.next.lock() = Some(Arc::clone(&fresh));
        tree.guard = fresh;
    }

    /// Gives the current tree its history index ([`TreeState::history_index`])
    /// if it has none: at open, before any checkpoint (every tree a checkpoint or a
    /// tree commit publishes has one from the start).
    pub fn index_history(&self) {
        let tree = self.tree();
        if tree.history.get().is_none()
            && let Some(index) = self.history_index_of(tree.root)
        {
            let _ = tree.history.set(index);
        }
    }

    /// The history index of the tree rooted at `root`: `None` when its history leaves
    /// cannot be read (readers then look every key up, and meet the damage).
    fn history_index_of(&self, root: u64) -> Option<HistoryIndex> {
        let view = self.storage.view().ok()?;
        let ps = self.pager.page_size();
        match retained::index_history(&view, ps, root, self.directory_keys) {
            Ok(index) => Some(index),
            Err(e) => {
                log::warn!("the history keys of the tree at page {root} could not be read: {e}");
                None
            }
        }
    }

    /// The current tree.
    pub fn tree(&self) -> TreeState {
        self.tree.read().clone()
    }

    /// How many trees were published since open: load it before [`Checkpointer::tree`]
    /// and compare later, to learn whether a newer tree replaced the one loaded.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current header and its slot.
    pub fn header(&self) -> (Header, u32) {
        *self.header.lock()
    }

    /// Waits for a checkpoint in progress and lets no other start (shutdown).
    pub fn shut(&self) {
        self.state.lock().shut = true;
    }

    /// Runs `f` with no checkpoint in progress, on the header, the pages below
    /// `page_count` outside the tree, and the free-list run.
    pub fn hold<T>(&self, f: impl FnOnce(&Header, &BTreeSet<u64>, (u64, u64)) -> T) -> T {
        let st = self.state.lock();
        let (header, _) = self.header();
        f(&header, &st.non_tree, st.free_list_run)
    }

    /// Whether a checkpoint, a tree commit or a compaction holds the checkpointer now.
    pub fn busy(&self) -> bool {
        self.state.is_locked()
    }

    /// Tests: holds the checkpointer as a checkpoint in progress does, until the guard
    /// is dropped.
    #[cfg(test)]
    pub fn hold_for_test(&self) -> impl Drop + '_ {
        self.state.lock()
    }

    /// Runs a checkpoint now unless one is running and `wait` is false (the caller
    /// checks that the database is not closing). With `force`,
    /// rewrites the header even when there is nothing new to fold (after `compact`).
    pub fn run(&self, wait: bool, force: bool) -> Result<Option<CheckpointReport>> {
        let guard = if wait {
            Some(self.state.lock())
        } else {
            self.state.try_lock()
        };
        let Some(mut st) = guard else { return Ok(None) };
        if st.shut {
            return Ok(None);
        }
        self.checkpoint(&mut st, force)
    }

    /// Whether the log or the version store has outgrown its budget.
    pub fn due(&self, version_bytes_max: u64, log_commits_max: u64) -> bool {
        let since = self
            .committer
            .tip()
            .saturating_sub(self.tree.read().checkpoint_seq);
        self.versions.byte_count() > version_bytes_max || since > log_commits_max
    }

    fn checkpoint(&self, st: &mut State, force: bool) -> Result<Option<CheckpointReport>> {
        // After a failed commit I/O nothing more is written (`format-spec/log.md`): a
        // checkpoint's sync could make the failed group durable after its committers
        // were told it failed, and its header could name a marker page whose start
        // never reached the disk (every later open would then report damage).
        self.committer.check_poisoned()?;
        let start = Instant::now();
        // Pages held for readers of other processes whose pins are gone come back.
        self.pager.release_held();
        let (old_header, old_copy) = self.header();
        let mut horizon = self.registry.horizon().min(self.committer.durable_seq());
        let file = self.storage.view()?;
        // The stream restarts at the slot of `horizon + 1`, which must be on a started page.
        let seed = (old_header.checkpoint_seq, old_header.marker_chain_seed);
        // When the slot of `horizon + 1` is not started, or marker `horizon` fails its
        // chain check (damaged at rest: recovery repairs or reports it later), the
        // checkpoint stops one commit earlier.
        let restart = if horizon > old_header.checkpoint_seq {
            match self.committer.marker_start_after(&file, horizon, seed) {
                Ok(Some(r)) => Some(r),
                Ok(None) | Err(_) => {
                    horizon -= 1;
                    self.committer.marker_start_after(&file, horizon, seed)?
                }
            }
        } else {
            None
        };
        let (horizon, start_page, chain) = match restart {
            Some((page, chain)) => (horizon, page, chain),
            None if force => (
                old_header.checkpoint_seq,
                old_header.marker_start_page,
                old_header.marker_chain_seed,
            ),
            None => return Ok(None),
        };
        let old_tree = self.tree();
        let readers_from = self.registry.horizon().min(self.committer.durable_seq());
        let tip = self.committer.tip();
        let folded = self.fold(&file, old_tree.root, horizon, tip, readers_from, None)?;
        drop(file);
        self.install(
            st,
            Install {
                start,
                old_header,
                old_copy,
                built: folded.built,
                checkpoint_seq: horizon,
                start_page,
                chain,
                keys_folded: folded.keys,
                drops_bound: folded.drops_bound,
            },
            || {},
        )
    }

    /// Builds the next tree: the store's versions at or below `horizon`, and `extra`
    /// (a tree commit's writes at its sequence), over the tree at `root`, keeping the
    /// history readers at or above `readers_from` may need (`tip`: the last sequence
    /// taken). Returns the keys folded and what the build wrote.
    fn fold(
        &self,
        file: &[u8],
        root: u64,
        horizon: u64,
        tip: u64,
        readers_from: u64,
        extra: Option<(u64, &WriteSet)>,
    ) -> Result<Folded> {
        let ps = self.pager.page_size();
        let history = self.committer.history();
        // The chains are taken before the floor rises, and nothing raises it past
        // `horizon` meanwhile: commits and garbage collection prune chains to their
        // newest version at or below the floor (and the durable sequence and the
        // horizon), and a floor above `horizon` would let them drop the version at or
        // below `horizon` this fold must write (the tree would then be wrong at its own
        // checkpoint sequence, for time travel after a reopen). A floor already above it
        // (a horizon lowered by one to a started marker page, just after the floor rose
        // to the tip) may have let that happen to the keys written in between: the
        // tree is then persisted with the floor, above the horizon, so that no reader
        // reads the tree at its own sequence (a reopen would otherwise start the window
        // at the checkpoint's sequence when nothing else keeps the floor).
        let (chains, floor_above) = {
            let hold = history.hold_for_fold(horizon);
            (self.versions.fold_chains(horizon), hold.floor_above())
        };
        let floor = history.advance(tip, readers_from);
        // A dropped table's data stays while the drop is inside the history window.
        // Taken from the store's list only once the header is durable (`install`): a
        // checkpoint that fails leaves them for the next, which removes their data.
        let drops_bound = horizon.min(floor);
        let dropped_ids = self.versions.drops_at_or_below(drops_bound);
        let dropped: Vec<[u8; 8]> = dropped_ids.iter().map(|t| t.to_be_bytes()).collect();
        // The newest version folded: the store's are at or below the horizon, a tree
        // commit's at its own sequence.
        let newest = extra.map_or(horizon, |(seq, _)| seq.max(horizon));
        let retained = history_changes(
            file,
            ps,
            root,
            FoldMerge::new(&chains, extra),
            newest,
            floor,
            &dropped_ids,
            self.versions
                .pending_drops(horizon)
                .into_iter()
                .filter(|&(_, seq)| seq > drops_bound)
                .collect::<Vec<_>>(),
            history.retention() != HistoryRetention::Snapshots || floor_above,
        )?;
        // History keys sort after every table's keys, so the changes stay in order.
        let mut changes = FoldChanges::new(FoldMerge::new(&chains, extra), retained);
        let built = rebuild_from(
            self.storage.as_ref(),
            &self.pager,
            file,
            root,
            &mut changes,
            &dropped,
            self.relocate_from.load(Ordering::Acquire),
        )?;
        Ok(Folded {
            keys: changes.taken,
            built,
            drops_bound,
        })
    }

    /// After a checkpoint failed before its header was written: the pages its build and
    /// its free list took (`run`) were never reachable from a header and are free again
    /// (else a failed checkpoint on a nearly full disk leaked them until a reopen, and
    /// each retry took more). Returns `e`.
    fn give_back(
        &self,
        built: &btree::build::Built,
        run: Option<std::ops::Range<u64>>,
        e: crate::Error,
    ) -> crate::Error {
        self.pager.free(built.new_pages.iter().copied());
        if let Some(run) = run {
            self.pager.free(run);
        }
        e
    }

    /// Writes the free list and the new header for `built`, syncing before and after the
    /// header, then publishes the tree, drops the folded versions, runs `published`,
    /// and frees what the old state used.
    fn install(
        &self,
        st: &mut State,
        i: Install,
        published: impl FnOnce(),
    ) -> Result<Option<CheckpointReport>> {
        let Install {
            start,
            old_header,
            old_copy,
            built,
            checkpoint_seq: horizon,
            start_page,
            chain,
            keys_folded,
            drops_bound,
        } = i;
        let ps = old_header.page_size;
        // Before anything is written: the header this install ends with must be one a
        // reader accepts.
        if let Err(e) =
            crate::format::check_next_header(old_header.generation.saturating_add(1), horizon)
        {
            return Err(self.give_back(&built, None, e));
        }
        // The new free list: every page below the new page count outside the new tree.
        let (old_run_first, old_run_pages) = st.free_list_run;
        let new_tree: BTreeSet<u64> = built.new_pages.iter().copied().collect();
        let mut base: BTreeSet<u64> = st
            .non_tree
            .iter()
            .copied()
            .filter(|p| !new_tree.contains(p))
            .collect();
        base.extend(built.freed.iter().copied());
        base.extend(old_run_first..old_run_first + old_run_pages);
        let (run_first, run_len, non_tree, page_count) = loop {
            let estimate = base.len() as u64
                + self
                    .pager
                    .high_water()
                    .saturating_sub(old_header.page_count)
                + 64;
            let pages = run_pages(ps, (estimate * 8) as usize);
            let first = match self.pager.alloc_run(pages) {
                Ok(first) => first,
                Err(e) => return Err(self.give_back(&built, None, e)),
            };
            // Free pages at the end are not counted: `compact` can then cut them off.
            let page_count = self.pager.truncate_free_tail();
            let run: std::ops::Range<u64> = first..first + pages;
            let mut n = base.clone();
            n.extend((old_header.page_count..page_count).filter(|p| !new_tree.contains(p)));
            n.retain(|&p| p < page_count && !run.contains(&p));
            if run_pages(ps, n.len() * 8) <= pages {
                break (first, pages, n, page_count.max(first + pages));
            }
            self.pager.free(run);
        };
        let entries: Vec<u8> = non_tree.iter().flat_map(|p| p.to_le_bytes()).collect();
        let mut run = btree::run::encode_run(
            PageKind::FreeList,
            run_first,
            ps,
            &entries,
            0,
            non_tree.len() as u64,
        );
        run.resize((run_len * u64::from(ps)) as usize, 0);
        // A padded run: its checksum covers the padding too.
        let run = reseal_run(run, run_len);
        let run_pages_taken = run_first..run_first + run_len;
        let durable = self
            .storage
            .write_at(self.pager.offset_of(run_first), &run)
            .and_then(|()| self.synced())
            // A group's step may have failed meanwhile (poisoned only once it returns,
            // so a step in flight is waited for): the marker page this header would name
            // may never have been written.
            .and_then(|()| self.committer.check_poisoned_settled());
        if let Err(e) = durable {
            return Err(self.give_back(&built, Some(run_pages_taken), e));
        }

        let header = Header {
            generation: old_header.generation + 1,
            page_count,
            checkpoint_seq: horizon,
            catalog_root: built.root,
            freelist_root: run_first,
            marker_start_page: start_page,
            marker_chain_seed: chain,
            // The durable bound (format-spec/log.md, "Durable evidence"); writing it
            // upgrades a version-1 file.
            log_durable_seq: self
                .committer
                .durable_seq()
                .max(horizon)
                .max(old_header.log_durable_seq),
            read_version: crate::format::FORMAT_VERSION,
            write_version: crate::format::FORMAT_VERSION,
            ..old_header
        };
        let copy = 1 - old_copy;
        let slot = HEADER_COPY_OFFSETS.get(copy as usize).copied().unwrap_or(0);
        let unwinding = PoisonOnUnwind::new(&self.committer, "a checkpoint's header write");
        let written = self
            .storage
            .write_at(slot, &header.encode(copy))
            .and_then(|()| self.synced());
        unwinding.disarm();
        if let Err(e) = written {
            // Whether the header reached the disk is unknown, and another process may
            // already read it (and pin its generation): a later header written with
            // the same generation would let pages that reader reaches be reused. Nothing
            // more is written until the database is reopened (every later checkpoint,
            // compaction and commit is refused as poisoned); the reopen reads the header
            // if it reached the disk whole, else the other (a one-bit flip of it is
            // repaired; a copy damaged more refuses a read-write open).
            self.committer
                .poison(format!("a checkpoint's header write failed: {e}"));
            return Err(e);
        }
        *self.header.lock() = (header, copy);

        // The new state is durable: publish the tree, then drop the folded versions (a
        // reader that misses a version in the store finds it in the new tree).
        let guard = TreeGuard::new(&self.pager);
        let history = Arc::new(OnceLock::new());
        if let Some(index) = self.history_index_of(built.root) {
            let _ = history.set(index);
        }
        let old = std::mem::replace(
            &mut *self.tree.write(),
            TreeState {
                root: built.root,
                checkpoint_seq: horizon,
                guard: Arc::clone(&guard),
                history,
            },
        );
        // The free-list bookkeeping changes with the tree, at once: the next checkpoint
        // builds on the tree published and must start from that tree's non-tree pages.
        st.non_tree = non_tree;
        st.free_list_run = (run_first, run_len);
        // The dropped tables' data is out of the durable tree.
        self.versions.take_drops(drops_bound);
        *old.guard.next.lock() = Some(guard);
        {
            let mut freed = old.guard.freed.lock();
            freed.0 = header.generation;
            freed.1.extend(
                built
                    .freed
                    .iter()
                    .copied()
                    .chain(old_run_first..old_run_first + old_run_pages),
            );
        }
        drop(old);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(hook) = self.publish_hook.get() {
            hook();
        }
        self.versions.remove_folded(horizon);
        published();
        let log_pages = self.committer.take_obsolete_log_pages(horizon, start_page);
        let log_freed = log_pages.len() as u64;
        self.pager.free_after(header.generation, log_pages);
        Ok(Some(CheckpointReport {
            checkpoint_seq: horizon,
            keys_folded,
            pages_written: built.new_pages.len() as u64 + run_len,
            pages_freed: built.freed.len() as u64 + old_run_pages + log_freed,
            duration: start.elapsed(),
        }))
    }

    /// Folds everything, frees what that made obsolete, and cuts the free pages at the
    /// end of the file off. Returns the bytes returned to the operating system and the
    /// checkpoints it ran.
    pub fn compact(&self) -> Result<(u64, u64)> {
        let mut st = self.state.lock();
        if st.shut {
            return Err(crate::Error::Closed);
        }
        let before = self.storage.len()?;
        self.pager.release_reserve();
        // The first pass folds and frees the old tree and log; the second moves the
        // free list, the tree's changed pages and its leaves in the tail into the space
        // the first freed; the third counts the pages the second freed out.
        let mut passes = u64::from(self.checkpoint(&mut st, true)?.is_some());
        // Every page in use would fit below `in_use`: the second pass also moves the
        // tree's leaves that lie above it (a tree written after the log, as a tree
        // commit's is, would otherwise keep the tail).
        // Not while pages are held for a reader of an older state (a live reader in
        // another process): neither free for the moved leaves nor cut once moved out of,
        // they would have the leaves moved to the file's end, growing it.
        let (header, _) = self.header();
        let in_use = header
            .page_count
            .saturating_sub(self.pager.free_pages().len() as u64);
        if self.pager.held_count() == 0 {
            self.relocate_from.store(in_use, Ordering::Release);
        }
        let second = self.checkpoint(&mut st, true);
        self.relocate_from.store(u64::MAX, Ordering::Release);
        passes += u64::from(second?.is_some());
        // The pages the second pass moved out of are free only once its header is
        // durable: a third pass writes a header whose page count leaves them out.
        passes += u64::from(self.checkpoint(&mut st, true)?.is_some());
        let (header, _) = self.header();
        let after = self.pager.cut_file(header.page_count)?;
        self.synced()?;
        Ok((before.saturating_sub(after), passes))
    }

    /// Syncs the file, poisoning the database when that fails: a failed `fdatasync` may
    /// have dropped dirty pages of commits (capsules, proofs) along with the
    /// checkpoint's, and a later sync that succeeds would have their group acknowledged
    /// durable over them (the file storage fails every sync after a failed one; a
    /// storage plugged in through `Options::open_storage` need not).
    fn synced(&self) -> Result<()> {
        // A step's sync returning between this one's failure and the poisoning would
        // have its group acknowledged durable (a storage that fails only this sync).
        let _serial = self.committer.serialize_syncs();
        let unwinding = PoisonOnUnwind::new(&self.committer, "a checkpoint's sync");
        let synced = self.storage.sync().inspect_err(|e| {
            self.committer
                .poison_sync(format!("a checkpoint's sync failed: {e}"))
        });
        unwinding.disarm();
        synced
    }
}

/// Poisons the database (as a failed sync does) when dropped armed by a panic: what a
/// sync or header write that panicked (in an application's `Storage`, say) left on disk
/// is unknown, as after a failure, and a later group's sync must not acknowledge commits
/// over it, nor a later checkpoint write a header of the same generation.
pub(crate) struct PoisonOnUnwind<'a> {
    committer: &'a Committer,
    what: &'static str,
    armed: bool,
}

impl<'a> PoisonOnUnwind<'a> {
    pub(crate) fn new(committer: &'a Committer, what: &'static str) -> Self {
        PoisonOnUnwind {
            committer,
            what,
            armed: true,
        }
    }

    /// The guarded call returned (its failure, if any, handled by the caller).
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.committer
                .poison_sync(format!("{} panicked", self.what));
        }
    }
}

/// What [`Checkpointer::install`] writes and publishes.
struct Install {
    start: Instant,
    old_header: Header,
    old_copy: u32,
    built: btree::build::Built,
    checkpoint_seq: u64,
    start_page: u64,
    chain: u32,
    keys_folded: u64,
    /// Tables dropped at or below this sequence had their data folded out of the tree:
    /// forgotten once the header is durable.
    drops_bound: u64,
}

/// What a fold built.
struct Folded {
    /// Keys folded.
    keys: u64,
    built: btree::build::Built,
    /// See [`Install::drops_bound`].
    drops_bound: u64,
}

/// Recomputes a run's checksum over its full (padded) length.
fn reseal_run(mut run: Vec<u8>, run_len: u64) -> Vec<u8> {
    let run_pages_field = (run_len as u32).to_le_bytes();
    if let Some(f) = run.get_mut(16..20) {
        f.copy_from_slice(&run_pages_field);
    }
    let sum = crate::format::checksum(&[run.get(4..).unwrap_or(&[])]);
    if let Some(f) = run.get_mut(..4) {
        f.copy_from_slice(&sum.to_le_bytes());
    }
    run
}
