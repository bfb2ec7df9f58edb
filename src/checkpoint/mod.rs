//! Checkpoints: fold committed versions at or below a horizon into the B+tree, write
//! the new header, then free what the old state used (`format-spec/btree.md`,
//! "Checkpoint ordering").
//!
//! Committers keep committing while a checkpoint runs: it takes no lock a committer
//! waits on, except the marker writer's for a moment to find where the stream restarts.

mod freelist;

pub use freelist::read_free_list;

use crate::Result;
use crate::btree::{self, build::rebuild, run::run_pages};
use crate::commit::Committer;
use crate::format::{HEADER_COPY_OFFSETS, Header, PageKind};
use crate::mvcc::{SnapshotRegistry, VersionStore};
use crate::pager::Pager;
use crate::storage::Storage;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pages a checkpoint took out of a tree, freed when no reader may walk that tree or
/// any older one (untouched leaves are shared across trees, so a page the next tree
/// dropped may still be read through an older root).
///
/// Each guard holds the next newer one, so a guard is released only after every older
/// guard is.
pub struct TreeGuard {
    freed: Mutex<Vec<u64>>,
    pager: Arc<Pager>,
    next: Mutex<Option<Arc<TreeGuard>>>,
}

impl TreeGuard {
    fn new(pager: &Arc<Pager>) -> Arc<TreeGuard> {
        Arc::new(TreeGuard {
            freed: Mutex::new(Vec::new()),
            pager: Arc::clone(pager),
            next: Mutex::new(None),
        })
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        self.pager.free(std::mem::take(&mut *self.freed.lock()));
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
}

impl TreeState {
    /// A handle that keeps this tree's pages from being freed while it lives.
    pub fn keepalive(&self) -> Arc<dyn std::any::Any + Send + Sync> {
        Arc::clone(&self.guard) as Arc<dyn std::any::Any + Send + Sync>
    }

    /// The same handle, taken from this state without touching the reference count.
    pub fn into_keepalive(self) -> Arc<dyn std::any::Any + Send + Sync> {
        self.guard as Arc<dyn std::any::Any + Send + Sync>
    }
}

/// What one checkpoint did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointReport {
    /// The sequence folded up to.
    pub checkpoint_seq: u64,
    /// Keys folded (puts and deletions).
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
    state: Mutex<State>,
}

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
            }),
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
        }
    }

    /// The current tree.
    pub fn tree(&self) -> TreeState {
        self.tree.read().clone()
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
        let start = Instant::now();
        let (old_header, old_copy) = self.header();
        let ps = old_header.page_size;
        let mut horizon = self.registry.horizon().min(self.committer.durable_seq());
        let file = self.storage.view()?;
        // The stream restarts at the slot of `horizon + 1`, which must be on a started page.
        let restart = if horizon > old_header.checkpoint_seq {
            match self.committer.marker_start_after(&file, horizon) {
                Some(r) => Some(r),
                None => {
                    horizon -= 1;
                    self.committer
                        .marker_start_after(&file, horizon)
                        .filter(|_| horizon > old_header.checkpoint_seq)
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
        let changes = self.versions.fold(horizon);
        let dropped: Vec<[u8; 8]> = self
            .versions
            .take_drops(horizon)
            .into_iter()
            .map(u64::to_be_bytes)
            .collect();
        let old_tree = self.tree();
        let built = rebuild(
            self.storage.as_ref(),
            &self.pager,
            &file,
            old_tree.root,
            &changes,
            &dropped,
        )?;
        drop(file);

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
            let first = self.pager.alloc_run(pages)?;
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
        self.storage
            .write_at(self.pager.offset_of(run_first), &run)?;
        self.storage.sync()?;

        let header = Header {
            generation: old_header.generation + 1,
            page_count,
            checkpoint_seq: horizon,
            catalog_root: built.root,
            freelist_root: run_first,
            marker_start_page: start_page,
            marker_chain_seed: chain,
            ..old_header
        };
        let copy = 1 - old_copy;
        let slot = HEADER_COPY_OFFSETS.get(copy as usize).copied().unwrap_or(0);
        self.storage.write_at(slot, &header.encode(copy))?;
        self.storage.sync()?;
        *self.header.lock() = (header, copy);

        // The new state is durable: publish the tree, then drop the folded versions (a
        // reader that misses a version in the store finds it in the new tree).
        let guard = TreeGuard::new(&self.pager);
        let old = std::mem::replace(
            &mut *self.tree.write(),
            TreeState {
                root: built.root,
                checkpoint_seq: horizon,
                guard: Arc::clone(&guard),
            },
        );
        *old.guard.next.lock() = Some(guard);
        old.guard.freed.lock().extend(
            built
                .freed
                .iter()
                .copied()
                .chain(old_run_first..old_run_first + old_run_pages),
        );
        drop(old);
        self.versions.remove_folded(horizon);
        let log_pages = self.committer.take_obsolete_log_pages(horizon, start_page);
        let log_freed = log_pages.len() as u64;
        self.pager.free(log_pages);
        st.non_tree = non_tree;
        st.free_list_run = (run_first, run_len);
        Ok(Some(CheckpointReport {
            checkpoint_seq: horizon,
            keys_folded: changes.len() as u64,
            pages_written: built.new_pages.len() as u64 + run_len,
            pages_freed: built.freed.len() as u64 + old_run_pages + log_freed,
            duration: start.elapsed(),
        }))
    }

    /// Folds everything, frees what that made obsolete, and cuts the free pages at the
    /// end of the file off. Returns the bytes returned to the operating system.
    pub fn compact(&self) -> Result<u64> {
        let mut st = self.state.lock();
        if st.shut {
            return Err(crate::Error::Closed);
        }
        let before = self.storage.len()?;
        // The first pass folds and frees the old tree and log; the second moves the
        // free list (and the tree's changed pages) into the space the first freed.
        self.checkpoint(&mut st, true)?;
        self.checkpoint(&mut st, true)?;
        let (header, _) = self.header();
        let after = self.pager.cut_file(header.page_count)?;
        self.storage.sync()?;
        Ok(before.saturating_sub(after))
    }
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
