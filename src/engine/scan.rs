//! The borrowing scan: one tree cursor walking leaf to leaf over the pinned tree,
//! merged with the version store (only when it may hold the table, fetched in bounded
//! batches) and the transaction's own writes. Keys and values are lent from the
//! mapping, the store's shared values or the write set: no allocation per entry.

use super::Engine;
use super::read::within;
use super::value::ReadPin;
use crate::btree::cursor::{Cursor, LeafRun};
use crate::error::Result;
use crate::mvcc::{FlatBatch, SCAN_BATCH_MAX};
use crate::types::TableId;
use crate::util::bound_slice;
use std::ops::Bound;
use std::sync::Arc;

/// The transaction's own writes in a scan's range, in scan order.
pub(crate) type OwnWrites<'t> = crate::types::WritesIter<'t>;

/// Where a key lies in a buffer: `(start, end)`.
type KeyRange = (usize, usize);

/// What a step taken out of line found, handed back to the inlined step that called it.
/// Not the entry's `Option<Result<..>>` itself: a call returning that writes it through
/// a pointer to the caller's entry, which keeps the entry in memory in the caller's loop
/// (the inlined common step then stores it field by field and the caller reloads it
/// wider, a stalled load per entry). Returned in its own slot, the entry comes out in
/// registers; the rare error is boxed to keep the step small.
pub(crate) enum Step<'a> {
    /// The next entry.
    Entry(&'a [u8], &'a [u8]),
    /// The scan is done.
    End,
    /// The step failed.
    Failed(Box<crate::error::Error>),
}

impl<'a> Step<'a> {
    /// The step as the entry a scan hands out.
    #[inline(always)]
    pub(crate) fn into_item(self) -> Option<Result<(&'a [u8], &'a [u8])>> {
        match self {
            Step::Entry(key, value) => Some(Ok((key, value))),
            Step::End => None,
            Step::Failed(e) => Some(Err(*e)),
        }
    }
}

impl<'a> From<Option<Result<(&'a [u8], &'a [u8])>>> for Step<'a> {
    fn from(item: Option<Result<(&'a [u8], &'a [u8])>>) -> Step<'a> {
        match item {
            Some(Ok((key, value))) => Step::Entry(key, value),
            None => Step::End,
            Some(Err(e)) => Step::Failed(Box::new(e)),
        }
    }
}

/// Where a source's next entry comes from, for the merge.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Own,
    Store,
    Tree,
}

/// The lent entry: where its key and value live until the next step.
enum Lent<'t> {
    Own(&'t [u8], &'t [u8]),
    Store,
    Tree {
        key: (usize, usize),
        value: (usize, usize),
    },
}

/// A merged scan of one table at one snapshot (see the module doc).
pub(crate) struct ScanMerge<'t> {
    engine: &'t Engine,
    table: TableId,
    snapshot: u64,
    reverse: bool,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    pin: Arc<ReadPin>,
    tree: Cursor,
    /// The scan's far end as a tree key: a leaf wholly past it is never read.
    tree_end: Bound<Vec<u8>>,
    tree_done: bool,
    /// The tree's next entry: offsets of its key (without the table prefix) and value.
    tree_head: Option<((usize, usize), (usize, usize))>,
    use_store: bool,
    /// The store's batch, its buffers reused from batch to batch.
    store: FlatBatch,
    /// Where the next store batch starts (`None`: the store's range is done).
    store_next: Option<Bound<Vec<u8>>>,
    own: std::iter::Peekable<OwnWrites<'t>>,
    /// The last key merged (handed out or a tombstone), kept to re-seek the cursor on
    /// a newer tree; meaningful once `started`.
    last: Vec<u8>,
    started: bool,
    /// The lent store entry: its key's range in `store`, and its value.
    store_value: Option<(KeyRange, Arc<[u8]>)>,
    lent: Option<Lent<'t>>,
    /// Only the tree is left (no store batch to come, no own write, no tree head
    /// taken): entries come straight from leaf runs, with no merge and no key kept for
    /// a re-seek (which only a store batch still to read can ask for). Once set, it
    /// stays set.
    tree_only: bool,
    /// The leaf run being handed out (cells known to lie inside the scan) and the
    /// next cell (forward) or one past it (reverse).
    run: Option<(LeafRun, usize)>,
    /// The run was cut at the scan's end: nothing after it.
    run_cut: bool,
    /// While the merge still has store or own entries: where the run's cells stop
    /// coming before the first of them (`None`: not yet found for this run and front).
    run_stop: Option<usize>,
    /// The last key merged is the store batch's key at this range, not yet copied into
    /// `last` (copied before the batch's buffer is reused).
    last_in_store: Option<KeyRange>,
}

/// The composite tree bound of a table-relative bound on the cursor's starting side.
fn tree_start(table: TableId, start: Bound<&[u8]>, reverse: bool) -> Bound<Vec<u8>> {
    let prefix = table.to_be_bytes();
    match start {
        Bound::Included(k) => Bound::Included(crate::btree::composite(table, k)),
        Bound::Excluded(k) => Bound::Excluded(crate::btree::composite(table, k)),
        Bound::Unbounded if reverse => Bound::Excluded((table + 1).to_be_bytes().to_vec()),
        Bound::Unbounded => Bound::Included(prefix.to_vec()),
    }
}

impl<'t> ScanMerge<'t> {
    #[expect(clippy::too_many_arguments, reason = "one scan's full description")]
    pub(crate) fn new(
        engine: &'t Engine,
        pin: &mut Arc<ReadPin>,
        table: TableId,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
        snapshot: u64,
        reverse: bool,
        own: OwnWrites<'t>,
    ) -> Result<ScanMerge<'t>> {
        // The store is looked at before the tree is (re)loaded, as for point reads.
        let use_store = engine.versions.may_have(table);
        let start = if reverse {
            bound_slice(&hi)
        } else {
            bound_slice(&lo)
        }
        .map(<[u8]>::to_vec);
        engine.refresh(pin)?;
        let tree = Self::seek(engine, pin, table, bound_slice(&start), reverse)?;
        let end = if reverse {
            bound_slice(&lo)
        } else {
            bound_slice(&hi)
        };
        let tree_end = tree_start(table, end, !reverse);
        Ok(ScanMerge {
            engine,
            table,
            snapshot,
            reverse,
            store_next: use_store.then(|| start.clone()),
            lo,
            hi,
            pin: Arc::clone(pin),
            tree,
            tree_end,
            tree_done: false,
            tree_head: None,
            use_store,
            store: FlatBatch::default(),
            own: own.peekable(),
            last: Vec::new(),
            started: false,
            store_value: None,
            lent: None,
            tree_only: false,
            run: None,
            run_cut: false,
            run_stop: None,
            last_in_store: None,
        })
    }

    fn seek(
        engine: &Engine,
        pin: &ReadPin,
        table: TableId,
        start: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<Cursor> {
        let from = tree_start(table, start, reverse);
        Cursor::seek(
            &pin.view,
            engine.page_size,
            pin.tree.root,
            bound_slice(&from),
            reverse,
            Some(engine.pager.verified()),
        )
    }

    /// The far end of the scan, table-relative.
    fn end(&self) -> Bound<&[u8]> {
        if self.reverse {
            bound_slice(&self.lo)
        } else {
            bound_slice(&self.hi)
        }
    }

    /// Fills the tree's head entry, if the tree has one left inside the range.
    fn fill_tree(&mut self) -> Result<()> {
        if self.tree_head.is_some() || self.tree_done {
            return Ok(());
        }
        let prefix = self.table.to_be_bytes();
        let view: &[u8] = &self.pin.view;
        if self.tree.spent_before(view, bound_slice(&self.tree_end)) {
            self.tree_done = true;
            return Ok(());
        }
        match self.tree.step(view, Some(self.engine.pager.verified()))? {
            Some((k, v)) if k.table_bytes() == Some(prefix) => {
                let key = k.user();
                if within(key, self.end(), self.reverse) {
                    self.tree_head = Some((self.pin.locate(key), self.pin.locate(v)));
                } else {
                    self.tree_done = true;
                }
            }
            _ => self.tree_done = true,
        }
        Ok(())
    }

    /// Refills the store's batch when it ran empty; on a newer tree (a checkpoint may
    /// have moved the versions still to come from the store into it) re-pins and
    /// re-seeks the cursor just past the last key handed out.
    fn fill_store(&mut self) -> Result<()> {
        if !self.use_store {
            return Ok(());
        }
        // A batch examines at most `SCAN_EXAMINE_MAX` keys, visible at the snapshot or
        // not: one of keys committed after it comes back empty with more to come, and
        // the next is fetched (an empty batch taken for the store's end lost every key
        // after it, or let a tree key past store keys still to come).
        while self.store.is_empty() {
            self.fetch_store()?;
            if self.store_next.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// One batch of [`ScanMerge::fill_store`].
    fn fetch_store(&mut self) -> Result<()> {
        let Some(next) = self.store_next.take() else {
            return Ok(());
        };
        if let Some(range) = self.last_in_store.take() {
            self.last.clear();
            self.last.extend_from_slice(self.store.key(range));
        }
        let (lo, hi) = if self.reverse {
            (bound_slice(&self.lo), bound_slice(&next))
        } else {
            (bound_slice(&next), bound_slice(&self.hi))
        };
        let resume_after = self.engine.versions.scan_into(
            self.table,
            lo,
            hi,
            self.snapshot,
            self.reverse,
            SCAN_BATCH_MAX,
            &mut self.store,
        );
        if self.engine.checkpointer.generation() != self.pin.generation
            && let Err(e) = self.repin()
        {
            // The batch was fetched after the versions a checkpoint folded left the
            // store: it is merged with the new tree or not at all. The next call fetches
            // it again (a scan the caller goes on with after the error stays exact).
            self.store.clear();
            self.store_next = Some(next);
            return Err(e);
        }
        self.store_next = resume_after.map(Bound::Excluded);
        Ok(())
    }

    /// Moves the scan to the newest tree, its cursor just past the last key handed out
    /// (or at the range's start); nothing changes when it fails.
    fn repin(&mut self) -> Result<()> {
        let mut pin = Arc::clone(&self.pin);
        self.engine.refresh(&mut pin)?;
        let resume = if self.started {
            Bound::Excluded(self.last.clone())
        } else if self.reverse {
            self.hi.clone()
        } else {
            self.lo.clone()
        };
        self.tree = Self::seek(
            self.engine,
            &pin,
            self.table,
            bound_slice(&resume),
            self.reverse,
        )?;
        self.pin = pin;
        self.tree_head = None;
        self.tree_done = false;
        Ok(())
    }

    /// The next live entry in scan order, or `None` at the end. The common step, a
    /// cell of the leaf run being handed out when only the tree is left, is inlined
    /// into the caller: its result stays in registers instead of going through memory
    /// at each call level.
    #[inline(always)]
    pub(crate) fn next(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if self.tree_only
            && let Some(i) = self.next_cell()
            && let Some((run, _)) = &self.run
        {
            return Some(self.run_entry(run, i));
        }
        self.next_slow().into_item()
    }

    /// The held run's next cell in scan order (moving past it), or `None` when the run
    /// is done or none is held.
    #[inline(always)]
    fn next_cell(&mut self) -> Option<usize> {
        let (run, pos) = self.run.as_mut()?;
        let i = if self.reverse {
            (*pos > run.lo).then(|| {
                *pos -= 1;
                *pos
            })
        } else {
            (*pos < run.hi).then(|| {
                *pos += 1;
                *pos - 1
            })
        }?;
        Some(i)
    }

    /// Cell `i` of `run` as the scan hands it out.
    #[inline(always)]
    fn run_entry(&self, run: &LeafRun, i: usize) -> Result<(&[u8], &[u8])> {
        let verified = Some(self.engine.pager.verified());
        let (key, value) = run.entry(&self.pin.view, i, verified)?;
        Ok((key.user(), value))
    }

    /// [`ScanMerge::next`] past its inlined step.
    #[inline(never)]
    fn next_slow(&mut self) -> Step<'_> {
        Step::from(self.next_merged())
    }

    /// [`ScanMerge::next_slow`]'s step.
    fn next_merged(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if !self.tree_only {
            let store_pending =
                self.use_store && (!self.store.is_empty() || self.store_next.is_some());
            if !store_pending && self.own.peek().is_none() {
                // Only the tree left: a head the merge already took goes out first.
                match self.tree_head.take() {
                    Some((key, value)) => {
                        self.lent = Some(Lent::Tree { key, value });
                        return Some(Ok(self.current()));
                    }
                    None => self.tree_only = true,
                }
            }
        }
        if self.tree_only {
            return self.next_in_run().transpose();
        }
        match self.run_before_front() {
            Ok(true) => return self.next_in_run().transpose(),
            Ok(false) => {}
            Err(e) => return Some(Err(e)),
        }
        self.run_stop = None;
        match self.advance() {
            Ok(true) => Some(Ok(self.current())),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Whether the tree's next entry comes before the first entry the store batch and
    /// the transaction's own writes still hold, so it can be handed out from a leaf run
    /// with no merge: a scan of a table the store holds a few versions of merges only
    /// at their keys. `false` (the merge takes the next step) when the tree is done, its
    /// head already taken, or the store batch empty with more to fetch (the refill may
    /// re-seek the cursor past the last merged key). Before returning `false` with a run
    /// held, the run's remaining cells go back to the cursor.
    fn run_before_front(&mut self) -> Result<bool> {
        if self.tree_done
            || self.tree_head.is_some()
            || (self.use_store && self.store.is_empty() && self.store_next.is_some())
        {
            return Ok(false);
        }
        let reverse = self.reverse;
        loop {
            if self.run.is_none() {
                if !self.load_run()? {
                    return Ok(false);
                }
                self.run_stop = None;
            }
            let Some((run, pos)) = self.run else {
                return Ok(false);
            };
            let stop = match self.run_stop {
                Some(stop) => stop,
                None => {
                    let own_key = self.own.peek().map(|(k, _)| *k);
                    let front = match (own_key, self.store.front_key()) {
                        (Some(a), Some(b)) if reverse => Some(a.max(b)),
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let Some(front) = front else {
                        // Nothing left to merge with (the caller's tree-only path
                        // takes over): the run goes back to the cursor all the same.
                        self.tree.give_back(&run, pos)?;
                        self.run = None;
                        return Ok(false);
                    };
                    let view: &[u8] = &self.pin.view;
                    // Forward: cells `pos..stop` lie below the front; reverse: cells
                    // `stop..pos` lie above it.
                    let stop = if reverse {
                        run.partition(view, run.lo, pos, |k| k.user() <= front)?
                    } else {
                        run.partition(view, pos, run.hi, |k| k.user() < front)?
                    };
                    self.run_stop = Some(stop);
                    stop
                }
            };
            let more = if reverse { pos > stop } else { pos < stop };
            if more {
                return Ok(true);
            }
            let at_end = if reverse {
                pos == run.lo
            } else {
                pos == run.hi
            };
            if !at_end {
                // The front comes next: the rest of the leaf goes back to the cursor.
                self.tree.give_back(&run, pos)?;
                self.run = None;
                return Ok(false);
            }
            self.run = None;
            if self.run_cut {
                self.tree_done = true;
                return Ok(false);
            }
        }
    }

    /// Takes the cursor's next leaf run, narrowed to the table and the scan's end;
    /// `false` when the tree has none left (and marks it done).
    fn load_run(&mut self) -> Result<bool> {
        let verified = Some(self.engine.pager.verified());
        let reverse = self.reverse;
        let view: &[u8] = &self.pin.view;
        if self.tree.spent_before(view, bound_slice(&self.tree_end)) {
            self.tree_done = true;
            return Ok(false);
        }
        let Some(run) = self.tree.take_run(view, verified)? else {
            self.tree_done = true;
            return Ok(false);
        };
        let prefix = self.table.to_be_bytes();
        let end = self.end();
        let (run, cut) = run.narrowed(view, reverse, |k| {
            k.table_bytes() == Some(prefix) && within(k.user(), end, reverse)
        })?;
        self.run_cut = cut;
        self.run = Some((run, if reverse { run.hi } else { run.lo }));
        Ok(true)
    }

    /// The next tree entry when only the tree is left: a whole leaf's cells are taken
    /// from the cursor at once and checked against the table and the scan's end by
    /// their far cell, so each entry costs one cell read.
    fn next_in_run(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        loop {
            if let Some(i) = self.next_cell()
                && let Some((run, _)) = &self.run
            {
                return self.run_entry(run, i).map(Some);
            }
            if self.run.take().is_some() {
                self.tree_done |= self.run_cut;
            }
            if self.tree_done || !self.load_run()? {
                return Ok(None);
            }
        }
    }

    fn current(&self) -> (&[u8], &[u8]) {
        match &self.lent {
            Some(Lent::Own(k, v)) => (k, v),
            Some(Lent::Store) => match &self.store_value {
                Some((k, v)) => (self.store.key(*k), v),
                None => (&[], &[]),
            },
            Some(Lent::Tree { key, value }) => (
                self.pin.bytes(key.0, key.1),
                self.pin.bytes(value.0, value.1),
            ),
            None => (&[], &[]),
        }
    }

    /// Moves to the next live entry; `false` at the end.
    fn advance(&mut self) -> Result<bool> {
        // Only the store left (the tree's range done, no own write to come): entries
        // come straight from its batches, and the last key is copied only when a
        // batch is refilled (for a re-seek on a newer tree, which ends this path).
        while self.tree_done && self.tree_head.is_none() && self.own.peek().is_none() {
            self.fill_store()?;
            if !self.tree_done {
                break;
            }
            let Some((key, value)) = self.store.pop_front() else {
                self.lent = None;
                return Ok(false);
            };
            self.started = true;
            self.last_in_store = Some(key);
            if let Some(v) = value {
                self.store_value = Some((key, v));
                self.lent = Some(Lent::Store);
                return Ok(true);
            }
        }
        loop {
            self.fill_store()?;
            self.fill_tree()?;
            let reverse = self.reverse;
            let own_key = self.own.peek().map(|(k, _)| *k);
            let store_key = self.store.front_key();
            let tree_key = self.tree_head.map(|(k, _)| self.pin.bytes(k.0, k.1));
            // The first key in scan order; on a tie the own write, then the store wins.
            let mut pick: Option<(Source, &[u8])> = None;
            for (source, key) in [
                (Source::Own, own_key),
                (Source::Store, store_key),
                (Source::Tree, tree_key),
            ] {
                if let Some(k) = key
                    && pick.is_none_or(|(_, p)| if reverse { k > p } else { k < p })
                {
                    pick = Some((source, k));
                }
            }
            let Some((source, key)) = pick else {
                self.lent = None;
                return Ok(false);
            };
            // Every source holding the picked key moves past it; the key is kept (in a
            // buffer reused from step to step) to re-seek the cursor on a newer tree.
            let same = |k: Option<&[u8]>| k == Some(key);
            let (own_same, store_same, tree_same) =
                (same(own_key), same(store_key), same(tree_key));
            self.last.clear();
            self.last.extend_from_slice(key);
            self.started = true;
            self.last_in_store = None;
            let own = if own_same { self.own.next() } else { None };
            let store = if store_same {
                self.store.pop_front()
            } else {
                None
            };
            let tree = if tree_same {
                self.tree_head.take()
            } else {
                None
            };
            let lent = match source {
                Source::Own => match own {
                    Some((k, Some(v))) => Some(Lent::Own(k, v)),
                    _ => None,
                },
                Source::Store => match store {
                    Some((k, Some(v))) => {
                        self.store_value = Some((k, v));
                        Some(Lent::Store)
                    }
                    _ => None,
                },
                Source::Tree => tree.map(|(key, value)| Lent::Tree { key, value }),
            };
            if lent.is_some() {
                self.lent = lent;
                return Ok(true);
            }
        }
    }
}
