//! The pager: page allocation, freeing and file growth.
//!
//! Pages are handed out from a free set (smallest first) or from the high-water mark,
//! which grows the file in steps. A run of contiguous pages (an overflow value, a
//! multi-page leaf, a capsule larger than a page) comes from the lowest run of free
//! pages that long, else from the high-water mark.

use crate::error::{Error, Result};
use crate::storage::Storage;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;

mod verified;
pub use verified::{ValueTag, Verified};

/// The file grows by at least this many bytes at a time…
pub const GROW_STEP_MIN: u64 = 1 << 20;
/// …or by this fraction (1/N) of its size, whichever is larger…
pub const GROW_FRACTION: u64 = 16;
/// …but by at most this many bytes (more only when one allocation needs it): the
/// file's unused tail stays under 64 MiB, and under 1/16 of a file of 16 MiB or more
/// (a smaller file grows by 1 MiB at once).
pub const GROW_STEP_MAX: u64 = 64 << 20;

/// Pages the log takes from the file's end at a time when no free page is left
/// ([`Pager::alloc_log`]): all but the first (handed out at once) written with zeros at
/// once, so the first sync after has the
/// file system allocate all of them together, not one page (and one journal commit)
/// per later sync of the group commit. The sync that carries the zeros takes longer:
/// 16 pages kept 16 writers' p99 where it was (32 raised it by 15%, 512 tripled the
/// p99.9) for nearly all of the gain.
pub const LOG_RESERVE_PAGES: u64 = 16;

/// Allocates and frees pages of one database file.
pub struct Pager {
    storage: Arc<dyn Storage>,
    page_size: u32,
    state: Mutex<PagerState>,
    verified: Verified,
}

struct PagerState {
    /// First page never handed out.
    high_water: u64,
    free: BTreeSet<u64>,
    file_len: u64,
    /// Freed pages kept out of reuse while a reader in another process may pin a
    /// generation that reaches them: `(generation, pages)`, the pages being
    /// unreachable from `generation` on (`format-spec/locking.md`).
    held: Vec<(u64, Vec<u64>)>,
    /// `(n, from)`: no run of `n` free pages starts below page `from`, so
    /// [`Pager::alloc_run`] resumes its search there (a checkpoint writing many multi-page leaves
    /// into a free set without such runs would otherwise search the whole set each
    /// time). Cleared whenever a page joins the free set.
    run_hint: Option<(u64, u64)>,
    /// Pages taken from the end for the log, below `high_water`, already written with
    /// zeros (pages taken from the end later lie past them), that [`Pager::alloc_log`]
    /// hands out next. Nothing references them: a
    /// checkpoint's free list and an open count them free.
    reserve: std::ops::Range<u64>,
}

impl PagerState {
    /// Puts `page` in the free set; a run may now start below the hint, so it goes. A
    /// page never handed out (a damaged file's reference) is not made free: a later
    /// allocation would take it past the end of what is in use.
    fn insert_free(&mut self, page: u64) {
        debug_assert!(
            page < self.high_water,
            "freeing page {page} that was never allocated"
        );
        if page < self.high_water {
            self.free.insert(page);
            self.run_hint = None;
        }
    }
}

impl Pager {
    /// A pager whose pages below `high_water` are in use except `free`.
    pub fn new(
        storage: Arc<dyn Storage>,
        page_size: u32,
        high_water: u64,
        free: BTreeSet<u64>,
    ) -> Result<Pager> {
        let file_len = storage.len()?;
        Ok(Pager {
            storage,
            page_size,
            state: Mutex::new(PagerState {
                high_water,
                free,
                file_len,
                held: Vec::new(),
                run_hint: None,
                reserve: 0..0,
            }),
            verified: Verified::default(),
        })
    }

    /// Bytes per page.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// Byte offset of page `page`.
    pub fn offset_of(&self, page: u64) -> u64 {
        page * u64::from(self.page_size)
    }

    /// Allocates one page.
    pub fn alloc(&self) -> Result<u64> {
        let mut st = self.state.lock();
        let grows = self.would_grow(&st, 1);
        if let Some(page) = self.pop_free(&mut st, grows) {
            return Ok(page);
        }
        self.alloc_from_end(&mut st, 1)
    }

    /// The smallest free page; when there is none and the allocation would otherwise
    /// grow the file (`grows`), held pages no pinned generation reaches are released
    /// first.
    fn pop_free(&self, st: &mut PagerState, grows: bool) -> Option<u64> {
        if st.free.is_empty() && grows {
            self.release_held_locked(st);
        }
        st.free.pop_first()
    }

    /// Allocates one page for the log (a capsule, proof or marker page): a free page
    /// (its blocks mostly on disk already: some free pages were never written, a
    /// growth step's unused pages found free at open or pages given back unwritten),
    /// else the next of the reserve, else a fresh
    /// reserve of [`LOG_RESERVE_PAGES`] from the end, whose pages after the first are
    /// written with zeros now. A page in a hole would have the file system allocate
    /// its block at the sync after its first write, a journal commit inside each group
    /// commit's sync; zeros written for a run of pages have it allocate the run at one
    /// sync. The zeros need no sync of their own: the group's next sync carries them,
    /// and a failure of that sync fails that group.
    pub fn alloc_log(&self) -> Result<u64> {
        let mut st = self.state.lock();
        // A fresh reserve takes `LOG_RESERVE_PAGES` from the end: held pages are tested
        // whenever that would grow the file.
        let grows = st.reserve.is_empty() && self.would_grow(&st, LOG_RESERVE_PAGES);
        if let Some(page) = self.pop_free(&mut st, grows) {
            return Ok(page);
        }
        if let Some(page) = st.reserve.next() {
            return Ok(page);
        }
        let first = self.alloc_from_end(&mut st, LOG_RESERVE_PAGES)?;
        let rest = first + 1..first + LOG_RESERVE_PAGES;
        let zeros = vec![0u8; (rest.end - rest.start) as usize * self.page_size as usize];
        if let Err(e) = self.storage.write_at(self.offset_of(rest.start), &zeros) {
            // Nothing was handed out: every page goes back.
            for p in first..rest.end {
                st.insert_free(p);
            }
            return Err(e);
        }
        st.reserve = rest;
        Ok(first)
    }

    /// Returns the log's reserve to the free set (before `compact`, so its pages at
    /// the end do not keep the file from being cut).
    pub fn release_reserve(&self) {
        let mut st = self.state.lock();
        let reserve = std::mem::replace(&mut st.reserve, 0..0);
        for p in reserve {
            st.insert_free(p);
        }
    }

    /// Whether handing out `n` pages from the end grows the file: the moment to ask
    /// whether held pages may be reused instead (one lock test per growth, not per
    /// allocation).
    fn would_grow(&self, st: &PagerState, n: u64) -> bool {
        !st.held.is_empty() && self.offset_of(st.high_water.saturating_add(n)) > st.file_len
    }

    /// Returns `pages`, unreachable from header generation `generation` on, to the
    /// free set, or holds them while a reader of another handle pins an older
    /// generation.
    pub fn free_after(&self, generation: u64, pages: impl IntoIterator<Item = u64>) {
        let pages: Vec<u64> = pages.into_iter().collect();
        if pages.is_empty() {
            return;
        }
        let mut st = self.state.lock();
        for &p in &pages {
            self.verified.remove(p);
        }
        st.held.push((generation, pages));
        self.release_held_locked(&mut st);
    }

    /// Holds every page of the free set as unreachable from `generation` on (the
    /// writer at open: an older generation may still be pinned).
    pub fn hold_free_set(&self, generation: u64) {
        let mut st = self.state.lock();
        let pages: Vec<u64> = std::mem::take(&mut st.free).into_iter().collect();
        if !pages.is_empty() {
            st.held.push((generation, pages));
        }
        self.release_held_locked(&mut st);
    }

    /// Moves held pages no pinned generation reaches into the free set.
    pub fn release_held(&self) {
        let mut st = self.state.lock();
        self.release_held_locked(&mut st);
    }

    fn release_held_locked(&self, st: &mut PagerState) {
        if st.held.is_empty() {
            return;
        }
        st.held.sort_by_key(|(g, _)| *g);
        // Batches of one generation are one: while a reader keeps an old generation,
        // every checkpoint holds two or three more.
        let mut merged: Vec<(u64, Vec<u64>)> = Vec::with_capacity(st.held.len());
        for (g, pages) in st.held.drain(..) {
            match merged.last_mut() {
                Some((last, held)) if *last == g => held.extend(pages),
                _ => merged.push((g, pages)),
            }
        }
        st.held = merged;
        // `pinned_below` is monotone in the generation (a pin below `g` is below every
        // later one): the newest batch is tested first (nothing pinned, the usual case:
        // one test), then the first pinned one is found by halving, one test (a lock
        // call) per halving where one per batch made a long-lived reader's cost grow
        // with every checkpoint. That batch and the newer ones stay held, the older
        // ones are released. An error counts as pinned: holding longer is always safe.
        let unpinned = |g: u64| !self.storage.pinned_below(g).unwrap_or(true);
        let newest = st.held.last().map_or(0, |(g, _)| *g);
        let free_upto = if unpinned(newest) {
            st.held.len()
        } else {
            let older = st.held.len() - 1;
            st.held
                .get(..older)
                .map_or(0, |h| h.partition_point(|(g, _)| unpinned(*g)))
        };
        for (_, pages) in st.held.drain(..free_upto).collect::<Vec<_>>() {
            for p in pages {
                // A reader of the generation that still reached it may have verified it
                // while it was held: forgotten again, as it may be rewritten now.
                self.verified.remove(p);
                st.insert_free(p);
            }
        }
    }

    /// Pages held out of reuse for readers of other processes.
    pub fn held_count(&self) -> u64 {
        self.state
            .lock()
            .held
            .iter()
            .map(|(_, p)| p.len() as u64)
            .sum()
    }

    /// Allocates `n` contiguous pages and returns the first: the lowest run of free
    /// pages that long, else from the high-water mark. Pages held for readers of other
    /// processes are tested before the file grows, and a run they free is taken.
    pub fn alloc_run(&self, n: u64) -> Result<u64> {
        let n = n.max(1);
        let mut st = self.state.lock();
        if let Some(first) = Self::take_run(&mut st, n) {
            return Ok(first);
        }
        if self.would_grow(&st, n) {
            let held = st.held.len();
            self.release_held_locked(&mut st);
            if st.held.len() != held
                && let Some(first) = Self::take_run(&mut st, n)
            {
                return Ok(first);
            }
        }
        self.alloc_from_end(&mut st, n)
    }

    /// The lowest run of `n` free pages, taken out of the free set, if there is one.
    fn take_run(st: &mut PagerState, n: u64) -> Option<u64> {
        let from = match st.run_hint {
            Some((m, from)) if m == n => from,
            _ => 0,
        };
        let mut start = None;
        let mut len = 0u64;
        let mut prev = None;
        for &p in st.free.range(from..) {
            if prev.is_some_and(|q: u64| q + 1 == p) {
                len += 1;
            } else {
                start = Some(p);
                len = 1;
            }
            prev = Some(p);
            if len == n {
                break;
            }
        }
        if let (Some(first), true) = (start, len == n) {
            for p in first..first + n {
                st.free.remove(&p);
            }
            st.run_hint = Some((n, first));
            return Some(first);
        }
        // The pages from `start` on may yet become a run when pages join the set; none
        // before it can (and a page joining clears the hint).
        st.run_hint = Some((n, start.unwrap_or(from)));
        None
    }

    /// `n` free pages in a row that all lie below page `mark`, if the free set holds
    /// such a run; never grows the file (compaction moving data out of the tail).
    pub fn alloc_run_below(&self, n: u64, mark: u64) -> Option<u64> {
        let n = n.max(1);
        let mut st = self.state.lock();
        let mut start = 0u64;
        let mut len = 0u64;
        let mut prev = None;
        for &p in st.free.range(..mark) {
            if prev.is_some_and(|q: u64| q + 1 == p) {
                len += 1;
            } else {
                start = p;
                len = 1;
            }
            prev = Some(p);
            if len == n {
                for q in start..start + n {
                    st.free.remove(&q);
                }
                return Some(start);
            }
        }
        None
    }

    fn alloc_from_end(&self, st: &mut PagerState, n: u64) -> Result<u64> {
        let first = st.high_water;
        let end = first
            .checked_add(n)
            .ok_or_else(|| Error::corrupted(first, "page numbers exhausted"))?;
        let needed = self.offset_of(end);
        if needed > st.file_len {
            let step = (st.file_len / GROW_FRACTION).clamp(GROW_STEP_MIN, GROW_STEP_MAX);
            let exact = needed.next_multiple_of(u64::from(self.page_size));
            let target = needed
                .max(st.file_len + step)
                .next_multiple_of(u64::from(self.page_size));
            // A step the storage refuses is tried again at the size this allocation
            // needs: the step saves resizes, it is not worth failing a commit there is
            // room for. (A storage plugged in may refuse growth when full; a Linux file
            // grows sparse, its full disk shows at a write, and a file size limit
            // raises SIGXFSZ, which ends the process unless the application handles it.)
            let grown = match self.storage.set_len(target) {
                Err(_) if exact < target => self.storage.set_len(exact).map(|()| exact),
                r => r.map(|()| target),
            }?;
            st.file_len = grown;
        }
        st.high_water = end;
        Ok(first)
    }

    /// Pages verified since last written (see [`Verified`]).
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// Returns pages to the free set.
    pub fn free(&self, pages: impl IntoIterator<Item = u64>) {
        let mut st = self.state.lock();
        for p in pages {
            self.verified.remove(p);
            st.insert_free(p);
        }
    }

    /// First page never handed out.
    pub fn high_water(&self) -> u64 {
        self.state.lock().high_water
    }

    /// Lowers the high-water mark over free pages at the end and returns it. The file
    /// keeps its length; pages past the mark are handed out again from the end.
    pub fn truncate_free_tail(&self) -> u64 {
        let mut st = self.state.lock();
        Self::lower_high_water(&mut st, 0);
        st.high_water
    }

    fn lower_high_water(st: &mut PagerState, floor: u64) {
        while st.high_water > floor && st.free.contains(&(st.high_water - 1)) {
            let p = st.high_water - 1;
            st.free.remove(&p);
            st.high_water = p;
        }
    }

    /// Cuts the file after its last used page, never below `floor` pages, unless a
    /// reader in another process pins a generation (then the file keeps its length and
    /// the pages past the mark are handed out again from the end). Returns the new
    /// length in bytes.
    pub fn cut_file(&self, floor: u64) -> Result<u64> {
        let mut st = self.state.lock();
        Self::lower_high_water(&mut st, floor);
        let len = self.offset_of(st.high_water.max(floor));
        if len < st.file_len && self.storage.cut_len(len)? {
            st.file_len = len;
        }
        Ok(st.file_len)
    }

    /// A copy of the free set and the held pages, for integrity checks.
    pub fn free_pages(&self) -> BTreeSet<u64> {
        let st = self.state.lock();
        let mut all = st.free.clone();
        all.extend(st.held.iter().flat_map(|(_, p)| p.iter().copied()));
        all
    }

    /// Pages in the free set.
    pub fn free_count(&self) -> u64 {
        self.state.lock().free.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SimStorage;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn grows_in_steps_and_reuses_freed_pages() {
        let sim = SimStorage::new();
        let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
        assert_eq!(pager.alloc().unwrap(), 2);
        assert_eq!(sim.len().unwrap(), GROW_STEP_MIN);
        assert_eq!(pager.alloc_run(3).unwrap(), 3);
        assert_eq!(pager.alloc().unwrap(), 6);
        pager.free([3, 4]);
        assert_eq!(pager.alloc_run(2).unwrap(), 3, "a free run is reused");
        pager.free([3, 5]);
        assert_eq!(pager.alloc().unwrap(), 3);
        assert_eq!(pager.alloc().unwrap(), 5);
        assert_eq!(pager.alloc().unwrap(), 7);
        assert_eq!(
            sim.counts().set_lens,
            1,
            "one growth step covers many pages"
        );
    }

    /// A simulated file whose readers pin generation `pinned` (0: none).
    struct Pinned {
        sim: SimStorage,
        pinned: AtomicU64,
        /// `pinned_below` calls (each a lock call on a file).
        tests: AtomicU64,
    }

    impl Storage for Pinned {
        fn len(&self) -> Result<u64> {
            self.sim.len()
        }
        fn view(&self) -> Result<crate::storage::View> {
            self.sim.view()
        }
        fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
            self.sim.write_at(offset, data)
        }
        fn sync(&self) -> Result<()> {
            self.sim.sync()
        }
        fn set_len(&self, len: u64) -> Result<()> {
            self.sim.set_len(len)
        }
        fn pinned_below(&self, generation: u64) -> Result<bool> {
            self.tests.fetch_add(1, Ordering::Relaxed);
            let p = self.pinned.load(Ordering::Acquire);
            Ok(p != 0 && p < generation)
        }
    }

    #[test]
    fn pages_a_pinned_generation_reaches_are_held_until_the_pin_goes() {
        let storage = Arc::new(Pinned {
            sim: SimStorage::new(),
            pinned: AtomicU64::new(3),
            tests: AtomicU64::new(0),
        });
        let pager = Pager::new(storage.clone(), 4096, 2, BTreeSet::new()).unwrap();
        let pages: Vec<u64> = (0..4).map(|_| pager.alloc().unwrap()).collect();
        // Unreachable from generation 3 on: a reader of 3 does not read them.
        pager.free_after(3, [pages[0]]);
        assert_eq!(pager.free_count(), 1);
        // Unreachable from 4 on: the reader of 3 may read them.
        pager.free_after(4, [pages[1], pages[2]]);
        assert_eq!((pager.free_count(), pager.held_count()), (1, 2));
        assert_eq!(pager.alloc().unwrap(), pages[0]);
        let next = pager.alloc().unwrap();
        assert!(!pages.contains(&next), "a held page is never handed out");
        assert_eq!(
            pager.free_pages().len(),
            2,
            "held pages count as free for checks"
        );
        // The reader of 3 verifies a held page: freed, the page is no longer trusted (a
        // later write there would be read unchecked).
        pager.verified().insert(pages[1]);
        storage.pinned.store(0, Ordering::Release);
        pager.release_held();
        assert_eq!((pager.free_count(), pager.held_count()), (2, 0));
        assert!(!pager.verified().contains(pages[1]));
        assert_eq!(pager.alloc().unwrap(), pages[1]);
        // At open, the whole free set is held while an older generation is pinned.
        storage.pinned.store(5, Ordering::Release);
        pager.hold_free_set(6);
        assert_eq!((pager.free_count(), pager.held_count()), (0, 1));
        assert_eq!(pager.cut_file(0).unwrap() % 4096, 0);
        assert_eq!(pager.held_count(), 1, "compaction cuts no held page");
    }

    /// A reader keeping an old generation while the writer checkpoints: every release
    /// tested each held batch (a lock call each, under the pager's lock), so its cost
    /// grew with every checkpoint. Batches of one generation are one, and the first
    /// pinned batch is found by halving.
    #[test]
    fn releasing_held_pages_tests_few_generations() {
        let storage = Arc::new(Pinned {
            sim: SimStorage::new(),
            pinned: AtomicU64::new(3),
            tests: AtomicU64::new(0),
        });
        let pager = Pager::new(storage.clone(), 4096, 2, BTreeSet::new()).unwrap();
        for g in 4..1_004 {
            let (a, b) = (pager.alloc().unwrap(), pager.alloc().unwrap());
            pager.free_after(g, [a]);
            pager.free_after(g, [b]);
        }
        assert_eq!(pager.held_count(), 2_000);
        assert_eq!(
            pager.state.lock().held.len(),
            1_000,
            "one batch a generation"
        );
        storage.tests.store(0, Ordering::Relaxed);
        pager.release_held();
        assert_eq!(pager.held_count(), 2_000);
        let tests = storage.tests.swap(0, Ordering::Relaxed);
        assert!(tests <= 12, "{tests} generations tested");
        // The reader moves on to 500: what 4..=500 dropped is free, the rest held.
        storage.pinned.store(500, Ordering::Release);
        pager.release_held();
        assert_eq!(pager.held_count(), 2 * 503);
        let tests = storage.tests.swap(0, Ordering::Relaxed);
        assert!(tests <= 12, "{tests} generations tested");
    }

    /// Held pages a reader no longer pins are taken before the file grows: by the log
    /// when its fresh reserve would grow the file (it tested only whether one page
    /// would), and by a run (it released them and grew the file anyway).
    #[test]
    fn held_pages_are_taken_before_the_file_grows() {
        // A file of `len` pages, generation 3 pinned, pages 2.. handed out.
        let pinned_pager = |len: u64| {
            let storage = Arc::new(Pinned {
                sim: SimStorage::new(),
                pinned: AtomicU64::new(3),
                tests: AtomicU64::new(0),
            });
            storage.sim.set_len(len * 4096).unwrap();
            let pager = Pager::new(storage.clone(), 4096, 2, BTreeSet::new()).unwrap();
            (storage, pager)
        };
        let (storage, pager) = pinned_pager(10);
        let pages: Vec<u64> = (0..4).map(|_| pager.alloc().unwrap()).collect();
        pager.free_after(4, [pages[0], pages[1]]);
        assert_eq!(pager.held_count(), 2);
        storage.pinned.store(0, Ordering::Release);
        let resizes = storage.sim.counts().set_lens;
        assert_eq!(pager.alloc_log().unwrap(), pages[0]);
        assert_eq!(
            storage.sim.counts().set_lens,
            resizes,
            "the file did not grow"
        );

        let (storage, pager) = pinned_pager(8);
        let pages: Vec<u64> = (0..6).map(|_| pager.alloc().unwrap()).collect();
        pager.free_after(4, pages[..3].iter().copied());
        storage.pinned.store(0, Ordering::Release);
        let resizes = storage.sim.counts().set_lens;
        assert_eq!(pager.alloc_run(3).unwrap(), pages[0]);
        assert_eq!(
            storage.sim.counts().set_lens,
            resizes,
            "the file did not grow"
        );
    }

    #[test]
    fn the_log_takes_free_pages_then_a_reserve_written_with_zeros() {
        let sim = SimStorage::new();
        let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
        let a = pager.alloc().unwrap();
        pager.free([a]);
        assert_eq!(pager.alloc_log().unwrap(), a, "a free page first");
        let writes = sim.counts().writes;
        let first = pager.alloc_log().unwrap();
        assert_eq!(first, 3, "then a reserve from the end");
        assert_eq!(pager.high_water(), 3 + LOG_RESERVE_PAGES);
        assert_eq!(sim.counts().writes, writes + 1, "one write of zeros");
        for i in 1..LOG_RESERVE_PAGES {
            assert_eq!(pager.alloc_log().unwrap(), first + i);
        }
        assert_eq!(
            sim.counts().writes,
            writes + 1,
            "the reserve needs no writes"
        );
        assert_eq!(pager.alloc().unwrap(), first + LOG_RESERVE_PAGES);
        // Other allocations never take a reserve page; compaction returns the reserve.
        let next = pager.alloc_log().unwrap();
        assert_eq!(next, first + LOG_RESERVE_PAGES + 1);
        let run = pager.alloc_run(2).unwrap();
        assert!(
            run >= next + LOG_RESERVE_PAGES,
            "a run comes after the reserve"
        );
        pager.release_reserve();
        assert_eq!(pager.free_count(), LOG_RESERVE_PAGES - 1);
        assert_eq!(pager.alloc().unwrap(), next + 1);
    }

    #[test]
    fn a_failed_write_of_the_log_reserve_hands_out_nothing() {
        let sim = SimStorage::new();
        let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
        sim.fail_nth_write(1);
        assert!(pager.alloc_log().is_err());
        assert_eq!(
            pager.free_count(),
            LOG_RESERVE_PAGES,
            "every page went back"
        );
        assert_eq!(pager.alloc_log().unwrap(), 2);
    }

    #[test]
    fn a_refused_growth_step_is_retried_at_the_size_needed() {
        // Room for one more page, not for a growth step: the page is still handed out.
        let sim = SimStorage::new();
        let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
        sim.set_max_len(Some(3 * 4096));
        assert_eq!(pager.alloc().unwrap(), 2);
        assert_eq!(sim.len().unwrap(), 3 * 4096);
        assert!(pager.alloc().is_err(), "no room for a fourth page");
    }

    #[test]
    fn growth_failure_is_an_error() {
        let sim = SimStorage::new();
        sim.set_max_len(Some(8192));
        let pager = Pager::new(Arc::new(sim), 4096, 2, BTreeSet::new()).unwrap();
        assert!(pager.alloc().is_err());
    }
}
