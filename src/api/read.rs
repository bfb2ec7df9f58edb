//! The committed read path: the version store over the checkpointed tree.
//!
//! A read at snapshot `S` sees the newest version at or below `S` in the version store,
//! else the tree. The tree is always the *current* one: its checkpoint sequence is at
//! or below every live snapshot. The store is consulted first and the tree's root
//! loaded after, so a version folded into a new tree and then dropped from the store
//! is always found in that new tree.

use super::engine::Engine;
use super::types::ValueRef;
use crate::Result;
use crate::btree;
use crate::mvcc::{SCAN_BATCH_MAX, TableId};
use crate::util::bound_slice;
use std::cmp::Ordering;
use std::ops::Bound;

/// A batch of committed entries from one end of a scan.
pub struct CommittedBatch {
    /// Entries in scan order; `None` values are tombstones.
    pub entries: Vec<(Vec<u8>, Option<ValueRef>)>,
    /// How far the batch covered: forward, an upper bound; reverse, a lower bound.
    pub covered: Bound<Vec<u8>>,
    /// Whether the batch covered the whole remaining range.
    pub done: bool,
}

fn table_bounds(
    table: TableId,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let clo = match lo {
        Bound::Included(k) => Bound::Included(btree::composite(table, k)),
        Bound::Excluded(k) => Bound::Excluded(btree::composite(table, k)),
        Bound::Unbounded => Bound::Included(table.to_be_bytes().to_vec()),
    };
    let chi = match hi {
        Bound::Included(k) => Bound::Included(btree::composite(table, k)),
        Bound::Excluded(k) => Bound::Excluded(btree::composite(table, k)),
        Bound::Unbounded => match table.checked_add(1) {
            Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
            None => Bound::Unbounded,
        },
    };
    (clo, chi)
}

/// Orders two upper bounds (forward) or two lower bounds (reverse) by how much they
/// cover: `Less` covers less.
fn cover_cmp(a: &Bound<Vec<u8>>, b: &Bound<Vec<u8>>, reverse: bool) -> Ordering {
    use Bound::*;
    match (a, b) {
        (Unbounded, Unbounded) => Ordering::Equal,
        (Unbounded, _) => Ordering::Greater,
        (_, Unbounded) => Ordering::Less,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) if x != y => {
            if reverse {
                y.cmp(x)
            } else {
                x.cmp(y)
            }
        }
        (Included(_), Excluded(_)) => Ordering::Greater,
        (Excluded(_), Included(_)) => Ordering::Less,
        _ => Ordering::Equal,
    }
}

fn within(key: &[u8], covered: &Bound<Vec<u8>>, reverse: bool) -> bool {
    match (covered, reverse) {
        (Bound::Unbounded, _) => true,
        (Bound::Included(c), false) => key <= c.as_slice(),
        (Bound::Excluded(c), false) => key < c.as_slice(),
        (Bound::Included(c), true) => key >= c.as_slice(),
        (Bound::Excluded(c), true) => key > c.as_slice(),
    }
}

impl Engine {
    /// The committed value of `key` in `table` at `snapshot`.
    pub(crate) fn committed_get(
        &self,
        table: TableId,
        key: &[u8],
        snapshot: u64,
    ) -> Result<Option<ValueRef>> {
        if let Some(v) = self.versions.get(table, key, snapshot) {
            return Ok(v.map(ValueRef::shared));
        }
        let tree = self.current_tree();
        if tree.root == 0 {
            return Ok(None);
        }
        let view = self.storage.view()?;
        let found = btree::get(
            &view,
            self.page_size,
            tree.root,
            &btree::composite(table, key),
            Some(self.pager.verified()),
        )?;
        let Some(v) = found else { return Ok(None) };
        let (offset, len) = ValueRef::locate(&view, v);
        Ok(Some(ValueRef::mapped_owned(
            view,
            offset,
            len,
            tree.into_keepalive(),
        )))
    }

    /// One batch of committed entries in `(lo, hi)` at `snapshot`, from the low end
    /// (or, with `reverse`, the high end).
    pub(crate) fn committed_scan(
        &self,
        table: TableId,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        snapshot: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<CommittedBatch> {
        let store = self
            .versions
            .scan(table, lo, hi, snapshot, reverse, limit.min(SCAN_BATCH_MAX));
        let own_end = if reverse { lo } else { hi };
        let owned = |b: Bound<&[u8]>| b.map(<[u8]>::to_vec);
        let mut covered = match &store.resume_after {
            Some(k) => Bound::Included(k.clone()),
            None => owned(own_end),
        };
        let tree = self.current_tree();
        let mut tree_entries = Vec::new();
        let view;
        if tree.root != 0 {
            view = self.storage.view()?;
            let (mut clo, mut chi) = table_bounds(table, lo, hi);
            let prefix = table.to_be_bytes();
            let pages = tree.keepalive();
            // Leaf after leaf until the batch is full, the table ends, or the tree has
            // passed what the store batch covered.
            loop {
                let batch = btree::scan_leaf(
                    &view,
                    self.page_size,
                    tree.root,
                    bound_slice(&clo),
                    bound_slice(&chi),
                    reverse,
                    Some(self.pager.verified()),
                )?;
                for (k, v) in batch.entries {
                    tree_entries.push((
                        k.get(8..).unwrap_or(&[]).to_vec(),
                        ValueRef::mapped(&view, v, &pages),
                    ));
                }
                // The leaf's edge, in this table's key space; an edge outside the table
                // means the tree has nothing more for this range.
                let Some(edge) = batch.leaf_edge.filter(|e| e.get(..8) == Some(&prefix[..])) else {
                    break;
                };
                let k = edge.get(8..).unwrap_or(&[]).to_vec();
                let tree_cover = if reverse {
                    Bound::Included(k)
                } else {
                    Bound::Excluded(k)
                };
                if cover_cmp(&tree_cover, &covered, reverse) != Ordering::Less {
                    break;
                }
                if tree_entries.len() >= limit {
                    covered = tree_cover;
                    break;
                }
                if reverse {
                    chi = Bound::Excluded(edge);
                } else {
                    clo = Bound::Included(edge);
                }
            }
        }
        let done = cover_cmp(&covered, &owned(own_end), reverse) != Ordering::Less;
        // Merge: the store's versions are newer than the tree's state.
        let mut entries = Vec::with_capacity(store.entries.len() + tree_entries.len());
        let mut s = store
            .entries
            .into_iter()
            .filter(|(k, _)| within(k, &covered, reverse))
            .peekable();
        let mut t = tree_entries
            .into_iter()
            .filter(|(k, _)| within(k, &covered, reverse))
            .peekable();
        loop {
            let order = match (s.peek(), t.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((a, _)), Some((b, _))) => {
                    if reverse {
                        b.cmp(a)
                    } else {
                        a.cmp(b)
                    }
                }
            };
            match order {
                Ordering::Less => {
                    if let Some((k, v)) = s.next() {
                        entries.push((k, v.map(ValueRef::shared)));
                    }
                }
                Ordering::Greater => {
                    if let Some((k, v)) = t.next() {
                        entries.push((k, Some(v)));
                    }
                }
                Ordering::Equal => {
                    t.next();
                    if let Some((k, v)) = s.next() {
                        entries.push((k, v.map(ValueRef::shared)));
                    }
                }
            }
        }
        Ok(CommittedBatch {
            entries,
            covered,
            done,
        })
    }
}
