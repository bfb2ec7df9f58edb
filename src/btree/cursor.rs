//! A cursor that walks the tree's leaves in key order, forward or in reverse, from a
//! starting bound: one descent from the root to place it, then leaf to leaf through
//! the path it keeps (the tree's leaves have no sibling links; the path is what LMDB's
//! cursors keep too). The cursor holds page numbers and indices, not borrowed pages:
//! each step takes the file's bytes again, so the caller may keep the mapping in an
//! `Arc` beside the cursor. A page is parsed and verified once, when the cursor enters
//! it (a reachable page never changes); entering a leaf also touches its cells ahead
//! of the walk, so their cache misses overlap.

use super::page::{LeafShape, NodeRef, TreeKey};
use super::{DEPTH_MAX, page_bytes, value_bytes_cached};
use crate::error::{Error, Result};
use crate::pager::Verified;
use std::ops::Bound;

/// Where a cursor stands: the branches above its leaf (page, child index taken, the
/// bounds that child gets), its leaf, and the next cell of the leaf to hand out.
#[derive(Clone, Debug)]
pub struct Cursor {
    page_size: u32,
    reverse: bool,
    /// The steps down to the leaf: each branch, the child taken there, and the bounds
    /// its ancestors give that child ([`Bounds`]: every node entered below it must
    /// hold keys within them).
    path: Vec<(u64, usize, Bounds)>,
    leaf: u64,
    /// What the cursor keeps of `leaf`, which was parsed (and verified) when it entered
    /// it: its cells and how to find them.
    shape: LeafShape,
    /// Forward: the next cell to hand out. Reverse: one past it (0 = this leaf is done).
    next: usize,
    /// The tree is empty or the cursor walked off its end.
    done: bool,
}

/// A byte range of the file a cursor walks (a separator of a branch on its path): its
/// offset and length. Offsets, not borrows: the cursor holds no pages.
type Span = (usize, usize);

/// The bounds the branches above a child give it: its keys lie at or above `lo` and
/// below `hi` (`None`: no bound on that side).
#[derive(Clone, Copy, Debug, Default)]
struct Bounds {
    lo: Option<Span>,
    hi: Option<Span>,
}

/// Where `part`, a slice of `file`, lies in it.
fn span_of(file: &[u8], part: &[u8]) -> Option<Span> {
    crate::util::offset_in(file, part).map(|at| (at, part.len()))
}

/// Cells of one leaf a cursor handed over at once ([`Cursor::take_run`]): indices
/// `lo..hi`, ascending for a forward cursor, descending for a reverse one.
#[derive(Clone, Copy, Debug)]
pub struct LeafRun {
    leaf: u64,
    page_size: u32,
    shape: LeafShape,
    /// First cell of the run (in index order).
    pub lo: usize,
    /// One past its last cell.
    pub hi: usize,
}

impl LeafRun {
    /// The page of the run's leaf.
    pub fn leaf_page(&self) -> u64 {
        self.leaf
    }

    /// Cell `i` of the run's leaf as `(key, value)`, borrowed from `file` (the bytes the
    /// cursor walks), the value resolved through its overflow run when it has one.
    #[inline(always)]
    pub fn entry<'a>(
        &self,
        file: &'a [u8],
        i: usize,
        verified: Option<&Verified>,
    ) -> Result<(TreeKey<'a>, &'a [u8])> {
        let bytes = self.shape.bytes(file, self.leaf, self.page_size)?;
        let (key, value) = NodeRef::parsed_leaf(bytes, self.leaf, self.shape).entry(i)?;
        Ok((
            key,
            value_bytes_cached(file, self.page_size, value, verified)?,
        ))
    }

    /// The key of cell `i` of the run's leaf alone, its value not read.
    pub fn key<'a>(&self, file: &'a [u8], i: usize) -> Result<TreeKey<'a>> {
        let bytes = self.shape.bytes(file, self.leaf, self.page_size)?;
        NodeRef::parsed_leaf(bytes, self.leaf, self.shape).key(i)
    }

    /// The run's cells `lo..hi` narrowed to those for which `inside(key)` holds, where
    /// `inside` holds for a prefix of the run in the cursor's direction (keys only move
    /// one way): one test of the far cell when the whole run is inside, else a binary
    /// search for the cut. Returns the narrowed run and whether it was cut.
    pub fn narrowed(
        mut self,
        file: &[u8],
        reverse: bool,
        inside: impl Fn(&TreeKey<'_>) -> bool,
    ) -> Result<(LeafRun, bool)> {
        let bytes = self.shape.bytes(file, self.leaf, self.page_size)?;
        let node = NodeRef::parsed_leaf(bytes, self.leaf, self.shape);
        let far = if reverse { self.lo } else { self.hi - 1 };
        if self.lo >= self.hi || inside(&node.key(far)?) {
            return Ok((self, false));
        }
        // `inside` holds for cells below the cut (forward) or at and above it (reverse).
        let cut = self.partition(file, self.lo, self.hi, |k| inside(k) != reverse)?;
        if reverse {
            self.lo = cut;
        } else {
            self.hi = cut;
        }
        Ok((self, true))
    }

    /// The first index in `lo..hi` (inside the run) whose key fails `before`, where
    /// `before` holds for a prefix of those cells in index order: a binary search.
    pub fn partition(
        &self,
        file: &[u8],
        mut lo: usize,
        mut hi: usize,
        before: impl Fn(&TreeKey<'_>) -> bool,
    ) -> Result<usize> {
        let bytes = self.shape.bytes(file, self.leaf, self.page_size)?;
        let node = NodeRef::parsed_leaf(bytes, self.leaf, self.shape);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before(&node.key(mid)?) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

impl Cursor {
    /// Hands the cells of `run` from `pos` on (forward), or below `pos` (reverse), back
    /// to the cursor it was taken from, which has not moved since: its next step starts
    /// there. Cells the run had cut off at the scan's end come back too (the next step
    /// tests them again).
    pub fn give_back(&mut self, run: &LeafRun, pos: usize) -> Result<()> {
        if self.done || self.leaf != run.leaf || pos > self.shape.count() {
            return Err(Error::corrupted(
                run.leaf,
                "a leaf run handed back to a cursor that moved on",
            ));
        }
        self.next = pos;
        Ok(())
    }

    /// A cursor on the tree rooted at `root` (0 = empty) at the first key inside
    /// `start` (forward: the smallest key at or after a lower bound; `reverse`: the
    /// largest key at or before an upper bound).
    pub fn seek(
        file: &[u8],
        page_size: u32,
        root: u64,
        start: Bound<&[u8]>,
        reverse: bool,
        verified: Option<&Verified>,
    ) -> Result<Cursor> {
        let mut c = Cursor {
            page_size,
            reverse,
            path: Vec::new(),
            leaf: 0,
            shape: LeafShape::NONE,
            next: 0,
            done: root == 0,
        };
        if c.done {
            return Ok(c);
        }
        let mut page = root;
        for _ in 0..DEPTH_MAX {
            let node = NodeRef::parse_cached(page_bytes(file, page, page_size)?, page, verified)?;
            c.check_bounds(file, &node, page)?;
            if node.is_leaf() {
                c.leaf = page;
                c.next = match (start, reverse) {
                    (Bound::Unbounded, false) => 0,
                    (Bound::Unbounded, true) => node.count(),
                    (Bound::Included(k), false) => node.search(k)?.unwrap_or_else(|i| i),
                    (Bound::Excluded(k), false) => node.search(k)?.map_or_else(|i| i, |i| i + 1),
                    (Bound::Included(k), true) => node.search(k)?.map_or_else(|i| i, |i| i + 1),
                    (Bound::Excluded(k), true) => node.search(k)?.unwrap_or_else(|i| i),
                };
                c.shape = node.shape();
                if reverse {
                    node.touch_cells(0, c.next, true);
                } else {
                    node.touch_cells(c.next, node.count(), false);
                }
                return Ok(c);
            }
            let idx = match start {
                Bound::Unbounded if reverse => node.count(),
                Bound::Unbounded => 0,
                Bound::Included(k) => node.child_index_for(k)?,
                // Reverse from an excluded key: the child holding keys just below it.
                Bound::Excluded(k) if reverse => match node.search(k)? {
                    Ok(i) | Err(i) => i,
                },
                Bound::Excluded(k) => node.child_index_for(k)?,
            };
            c.descend(file, &node, page, idx)?;
            page = node.child(idx)?;
        }
        Err(Error::corrupted(root, "tree deeper than the limit"))
    }

    /// The next `(key, value)` in the cursor's direction, borrowed from `file` (the
    /// same bytes the cursor was placed on, or a later view of the same tree), or
    /// `None` past the end of the tree.
    pub fn step<'a>(
        &mut self,
        file: &'a [u8],
        verified: Option<&Verified>,
    ) -> Result<Option<(TreeKey<'a>, &'a [u8])>> {
        for _ in 0..=DEPTH_MAX * 2 {
            if self.done {
                return Ok(None);
            }
            let at = if self.reverse {
                self.next.checked_sub(1)
            } else {
                Some(self.next).filter(|&i| i < self.shape.count())
            };
            if let Some(i) = at {
                let bytes = self.shape.bytes(file, self.leaf, self.page_size)?;
                let (key, value) = NodeRef::parsed_leaf(bytes, self.leaf, self.shape).entry(i)?;
                self.next = if self.reverse { i } else { i + 1 };
                let value = value_bytes_cached(file, self.page_size, value, verified)?;
                return Ok(Some((key, value)));
            }
            self.next_leaf(file, verified)?;
        }
        Err(Error::corrupted(
            self.leaf,
            "a cursor met more empty leaves than the tree can hold",
        ))
    }

    /// Whether the cursor has handed out its leaf and the next leaf in its direction can
    /// hold no key within `end` (a forward scan's upper bound, a reverse one's lower):
    /// the bound the branches above give that side lies at or past `end`. A scan then
    /// ends without reading that leaf: a damaged page past its range must not fail it.
    pub fn spent_before(&self, file: &[u8], end: Bound<&[u8]>) -> bool {
        if self.done {
            return true;
        }
        let handed_out = if self.reverse {
            self.next == 0
        } else {
            self.next >= self.shape.count()
        };
        if !handed_out {
            return false;
        }
        let bounds = self.path.last().map(|s| s.2).unwrap_or_default();
        let edge = if self.reverse { bounds.lo } else { bounds.hi };
        let Some(edge) = edge.and_then(|(at, len)| file.get(at..at + len)) else {
            return false;
        };
        // Forward, the next leaf's keys lie at or above `edge`; reverse, below it.
        match (end, self.reverse) {
            (Bound::Unbounded, _) => false,
            (Bound::Included(e), false) => edge > e,
            (Bound::Excluded(e), false) => edge >= e,
            (Bound::Included(e) | Bound::Excluded(e), true) => edge <= e,
        }
    }

    /// Every cell of the current leaf not yet handed out, at once (moving to the next
    /// leaf first when this one is done), marked handed out; `None` past the end of
    /// the tree. A scan that knows a whole run lies inside its range reads the cells
    /// with no per-cell bound checks ([`LeafRun::narrowed`]).
    pub fn take_run(
        &mut self,
        file: &[u8],
        verified: Option<&Verified>,
    ) -> Result<Option<LeafRun>> {
        for _ in 0..=DEPTH_MAX * 2 {
            if self.done {
                return Ok(None);
            }
            let (lo, hi) = if self.reverse {
                (0, self.next)
            } else {
                (self.next, self.shape.count())
            };
            if lo < hi {
                self.next = if self.reverse { 0 } else { self.shape.count() };
                return Ok(Some(LeafRun {
                    leaf: self.leaf,
                    page_size: self.page_size,
                    shape: self.shape,
                    lo,
                    hi,
                }));
            }
            self.next_leaf(file, verified)?;
        }
        Err(Error::corrupted(
            self.leaf,
            "a cursor met more empty leaves than the tree can hold",
        ))
    }

    /// Takes child `idx` of branch `node` (at `page`): a step of the path, with the
    /// bounds the child gets (the separators on either side of it, else the branch's
    /// own).
    fn descend(&mut self, file: &[u8], node: &NodeRef<'_>, page: u64, idx: usize) -> Result<()> {
        let inherited = self.path.last().map(|s| s.2).unwrap_or_default();
        let lo = match idx.checked_sub(1) {
            Some(i) => span_of(file, node.separator(i)?),
            None => inherited.lo,
        };
        let hi = if idx < node.count() {
            span_of(file, node.separator(idx)?)
        } else {
            inherited.hi
        };
        self.path.push((page, idx, Bounds { lo, hi }));
        Ok(())
    }

    /// [`super::check_within`] for `node` (at `page`), entered through the path: within
    /// the bounds the path's last step gives (none at the root).
    fn check_bounds(&self, file: &[u8], node: &NodeRef<'_>, page: u64) -> Result<()> {
        let b = self.path.last().map(|s| s.2).unwrap_or_default();
        let bound =
            |span: Option<Span>| span.map(|(at, len)| file.get(at..at + len).unwrap_or(&[]));
        super::check_within(node, page, bound(b.lo), bound(b.hi))
    }

    /// Moves to the first cell of the next leaf in the cursor's direction: up the path
    /// to the first branch with a child left on that side, then down its edge.
    /// Every node entered is checked against the bounds its ancestors give
    /// ([`super::check_within`]), which keeps the leaves' keys in strict order from one
    /// leaf to the next: a hostile tree naming a page twice, or a branch cycle, is
    /// refused instead of handing out the same keys again.
    fn next_leaf(&mut self, file: &[u8], verified: Option<&Verified>) -> Result<()> {
        let mut page = loop {
            let Some((branch, idx, _)) = self.path.pop() else {
                self.done = true;
                return Ok(());
            };
            let node =
                NodeRef::parse_cached(page_bytes(file, branch, self.page_size)?, branch, verified)?;
            let sibling = if self.reverse {
                idx.checked_sub(1)
            } else {
                Some(idx + 1).filter(|&i| i <= node.count())
            };
            if let Some(s) = sibling {
                self.descend(file, &node, branch, s)?;
                break node.child(s)?;
            }
        };
        while self.path.len() < DEPTH_MAX {
            let node =
                NodeRef::parse_cached(page_bytes(file, page, self.page_size)?, page, verified)?;
            self.check_bounds(file, &node, page)?;
            if node.is_leaf() {
                self.leaf = page;
                self.shape = node.shape();
                self.next = if self.reverse { node.count() } else { 0 };
                node.touch_cells(0, node.count(), self.reverse);
                return Ok(());
            }
            let edge = if self.reverse { node.count() } else { 0 };
            self.descend(file, &node, page, edge)?;
            page = node.child(edge)?;
        }
        Err(Error::corrupted(page, "tree deeper than the limit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::build::{Change, rebuild};
    use crate::pager::Pager;
    use crate::storage::{SimStorage, Storage};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    fn bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        b.as_ref().map(Vec::as_slice)
    }

    /// A tree key (keys start with a table id) in one of two tables; a short key's
    /// table bytes cut short (`cut`), for bounds that fall between tables.
    fn tree_key(k: Vec<u8>, cut: bool) -> Vec<u8> {
        let table = u64::from(k.first().copied().unwrap_or(0) % 2);
        let mut key = crate::btree::composite(table, &k);
        if cut && k.len() == 1 {
            key.truncate(7);
        }
        key
    }

    fn any_bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
        let key = || proptest::collection::vec(0u8..4, 0..4).prop_map(|k| tree_key(k, true));
        prop_oneof![
            Just(Bound::Unbounded),
            key().prop_map(Bound::Included),
            key().prop_map(Bound::Excluded),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A cursor from any bound, either way, hands out exactly the model's keys on
        /// that side of the bound, in order, with their values (inline and overflow);
        /// so do its leaf runs, narrowed to an end bound. With `fixed`, keys and values
        /// of one size each (uniform leaves).
        #[test]
        fn cursor_walks_like_the_model(
            entries in proptest::collection::btree_map(
                proptest::collection::vec(0u8..4, 0..6).prop_map(|k| tree_key(k, false)), 0usize..2500, 0..400),
            start in any_bound(),
            end in any_bound(),
            reverse in any::<bool>(),
            fixed in any::<bool>(),
        ) {
            let sim = SimStorage::new();
            let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
            let sized: BTreeMap<Vec<u8>, Vec<u8>> = entries
                .iter()
                .map(|(k, len)| {
                    if fixed {
                        let mut k = k.clone();
                        k.resize(14, 0);
                        let v = vec![k[8]; 20];
                        (k, v)
                    } else {
                        (k.clone(), vec![k.len() as u8; *len])
                    }
                })
                .collect();
            let changes: Vec<Change> = sized
                .iter()
                .map(|(k, v)| (k.clone(), Some(Arc::from(&v[..]))))
                .collect();
            let file = sim.view().unwrap();
            let root = rebuild(&sim, &pager, &file, 0, &changes, &[], u64::MAX).unwrap().root;
            let file = sim.view().unwrap();
            let model: BTreeMap<Vec<u8>, Vec<u8>> =
                changes.iter().map(|(k, v)| (k.clone(), v.as_deref().unwrap_or(&[]).to_vec())).collect();
            let expected: Vec<(&Vec<u8>, &Vec<u8>)> = if reverse {
                model.range::<[u8], _>((Bound::Unbounded, bound(&start))).rev().collect()
            } else {
                model.range::<[u8], _>((bound(&start), Bound::Unbounded)).collect()
            };
            let verified = Verified::default();
            let mut c = Cursor::seek(&file, 4096, root, bound(&start), reverse, Some(&verified)).unwrap();
            let mut got = Vec::new();
            while let Some((k, v)) = c.step(&file, Some(&verified)).unwrap() {
                got.push((k.to_vec(), v.to_vec()));
            }
            prop_assert_eq!(got.len(), expected.len());
            for ((k, v), (ek, ev)) in got.iter().zip(expected.iter().copied()) {
                prop_assert_eq!(k, ek);
                prop_assert_eq!(v, ev);
            }
            // Past the end it stays at the end.
            prop_assert!(c.step(&file, None).unwrap().is_none());

            // Leaf runs, each narrowed to the keys on the near side of `end`, hand out
            // the same keys up to `end`, and stop at the first cut.
            let near = |k: &[u8]| match (bound(&end), reverse) {
                (Bound::Unbounded, _) => true,
                (Bound::Included(e), false) => k <= e,
                (Bound::Excluded(e), false) => k < e,
                (Bound::Included(e), true) => k >= e,
                (Bound::Excluded(e), true) => k > e,
            };
            let want: Vec<_> = expected.iter().take_while(|(k, _)| near(k)).collect();
            let mut c = Cursor::seek(&file, 4096, root, bound(&start), reverse, Some(&verified)).unwrap();
            let mut got = Vec::new();
            while let Some(run) = c.take_run(&file, Some(&verified)).unwrap() {
                let (run, cut) = run.narrowed(&file, reverse, |k| near(&k.to_vec())).unwrap();
                let cells: Vec<usize> = if reverse {
                    (run.lo..run.hi).rev().collect()
                } else {
                    (run.lo..run.hi).collect()
                };
                for i in cells {
                    let (k, v) = run.entry(&file, i, Some(&verified)).unwrap();
                    got.push((k.to_vec(), v.to_vec()));
                }
                if cut {
                    break;
                }
            }
            prop_assert_eq!(got.len(), want.len());
            for ((k, v), (ek, ev)) in got.iter().zip(want) {
                prop_assert_eq!(k, *ek);
                prop_assert_eq!(v, *ev);
            }
        }
    }
}
