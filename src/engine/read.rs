//! The committed read path: the version store over the checkpointed tree.
//!
//! A read at snapshot `S` sees the newest version at or below `S` in the version store,
//! else the tree. The tree is always the *current* one: its checkpoint sequence is at
//! or below every live (registered) snapshot. The store is consulted first and the
//! tree's root loaded after, so a version folded into a new tree and then dropped from
//! the store is always found in that new tree. A time-travel read (`begin_read_at`) at
//! `S` below the tree's checkpoint sequence reads the tree's history entries first: a
//! key's version list gives its value at `S` there.

use super::Engine;
use super::value::{ReadPin, ValueRef};
use crate::btree;
use crate::btree::OnNodePage;
use crate::btree::cursor::Cursor;
use crate::btree::page::TreeKey;
use crate::error::Result;
use crate::mvcc::history::{
    HISTORY_PREFIX, decode_list, find_in_list, history_key, newest_first, prune_list,
};
use crate::mvcc::history_directory::{HistoryIndex, Lookup};
use crate::mvcc::{SCAN_BATCH_MAX, ScanBatch};
use crate::types::TableId;
use crate::util::bound_slice;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

/// A batch of committed entries from one end of a scan.
pub struct CommittedBatch {
    /// Entries in scan order; `None` values are tombstones.
    pub entries: Vec<(Vec<u8>, Option<ValueRef>)>,
    /// How far the batch covered: forward, an upper bound; reverse, a lower bound.
    pub covered: Bound<Vec<u8>>,
    /// Whether the batch covered the whole remaining range.
    pub done: bool,
}

/// A committed value as found: shared from the version store, or `(offset, len)` in
/// the read pin's view.
pub(crate) enum Committed {
    Shared(Arc<[u8]>),
    Mapped((usize, usize)),
}

/// Longest user key whose composite tree key is built on the stack.
const STACK_KEY_MAX: usize = 120;

/// Runs `f` on the tree key `head ++ table ++ key` (`head` empty: the composite key;
/// [`HISTORY_PREFIX`]: the history key), built without an allocation for keys up to
/// [`STACK_KEY_MAX`] bytes.
fn with_tree_key<T>(head: &[u8], table: TableId, key: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    let mut buf = [0u8; 16 + STACK_KEY_MAX];
    let len = head.len() + 8 + key.len();
    match buf.get_mut(..len) {
        Some(out) if head.len() <= 8 => {
            let (h, rest) = out.split_at_mut(head.len());
            let (id, tail) = rest.split_at_mut(8);
            h.copy_from_slice(head);
            id.copy_from_slice(&table.to_be_bytes());
            tail.copy_from_slice(key);
            f(out)
        }
        _ => f(&[head, &btree::composite(table, key)].concat()),
    }
}

/// Tree bounds for the keys under `prefix` whose rest lies in `(lo, hi)`.
fn prefix_bounds(
    prefix: &[u8],
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let join = |k: &[u8]| [prefix, k].concat();
    let clo = match lo {
        Bound::Included(k) => Bound::Included(join(k)),
        Bound::Excluded(k) => Bound::Excluded(join(k)),
        Bound::Unbounded => Bound::Included(prefix.to_vec()),
    };
    let chi = match hi {
        Bound::Included(k) => Bound::Included(join(k)),
        Bound::Excluded(k) => Bound::Excluded(join(k)),
        Bound::Unbounded => match next_prefix(prefix) {
            Some(next) => Bound::Excluded(next),
            None => Bound::Unbounded,
        },
    };
    (clo, chi)
}

/// The smallest key above every key starting with `prefix` (`None`: no such key).
fn next_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < u8::MAX {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
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

/// Whether `key` lies on the near side of `covered`: an upper bound for a forward scan,
/// a lower bound for a reverse one.
#[inline]
pub(crate) fn within(key: &[u8], covered: Bound<&[u8]>, reverse: bool) -> bool {
    within_by(|c| key.cmp(c), covered, reverse)
}

/// [`within`] for a key as a tree page holds it.
#[inline]
pub(crate) fn within_key(key: &TreeKey<'_>, covered: Bound<&[u8]>, reverse: bool) -> bool {
    within_by(|c| key.cmp_bytes(c), covered, reverse)
}

/// [`within`] for a key given by its order against the bound's bytes.
#[inline(always)]
fn within_by(order: impl Fn(&[u8]) -> Ordering, covered: Bound<&[u8]>, reverse: bool) -> bool {
    match (covered, reverse) {
        (Bound::Unbounded, _) => true,
        (Bound::Included(c), false) => order(c).is_le(),
        (Bound::Excluded(c), false) => order(c).is_lt(),
        (Bound::Included(c), true) => order(c).is_ge(),
        (Bound::Excluded(c), true) => order(c).is_gt(),
    }
}

impl Engine {
    /// Point lookup of a tree key (composite or history) in the tree rooted at `root`.
    pub(crate) fn tree_get<'v>(
        &self,
        view: &'v [u8],
        root: u64,
        key: &[u8],
    ) -> Result<Option<&'v [u8]>> {
        btree::get(view, self.page_size, root, key, Some(self.pager.verified()))
    }

    /// The retained versions of `key` in `table` at or below `seq`, newest first
    /// (`Transaction::versions` documents them).
    pub(crate) fn committed_versions(
        &self,
        id: TableId,
        key: &[u8],
        seq: u64,
    ) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        let mut list = self.versions.chain(id, key, seq);
        let tree = self.current_tree();
        if tree.root != 0 {
            let view = self.storage.view()?;
            match self.tree_get(&view, tree.root, &history_key(id, key))? {
                Some(bytes) => {
                    let decoded = decode_list(bytes)
                        .map_err(|e| e.on_node_page_of(&view, bytes, self.page_size))?;
                    list.extend(decoded.into_iter().filter(|(s, _)| *s <= seq))
                }
                None => {
                    let v = self.tree_get(&view, tree.root, &crate::btree::composite(id, key))?;
                    list.push((0, v.map(Arc::from)));
                }
            }
        }
        newest_first(&mut list);
        let floor = self.committer.history().floor().min(seq);
        prune_list(&mut list, floor);
        if let Some(last) = list.last_mut()
            && last.0 < floor
        {
            last.0 = floor;
        }
        if list.last().is_some_and(|(s, v)| *s <= floor && v.is_none()) {
            list.pop();
        }
        Ok(list
            .into_iter()
            .map(|(s, v)| (s, v.map(|b| b.to_vec())))
            .collect())
    }

    /// A read pin on the current tree ([`ReadPin`]).
    pub(crate) fn pin(&self) -> Result<Arc<ReadPin>> {
        // The generation first: a tree published in between makes the pin look older
        // than it is, which costs one needless reload, never a missed version.
        let generation = self.checkpointer.generation();
        let tree = self.current_tree();
        // A live reader's close takes the generation pin off the current tree
        // (`Checkpointer::detach_pin`) after it marks the engine closing: a tree taken
        // since may hold no pin, and the writer may reuse its pages. Refused then.
        if self.read_only {
            self.check_open()?;
        }
        let view = self.storage.view()?;
        Ok(Arc::new(ReadPin {
            view,
            tree,
            generation,
            tables: Default::default(),
            filter_use: Default::default(),
        }))
    }

    /// A read pin on the current tree for a new transaction: the one kept for this
    /// thread's shard when it is still current, else a new one, then kept
    /// ([`pin_cache`](super::pin_cache)).
    pub(crate) fn shared_pin(&self) -> Result<Arc<ReadPin>> {
        let generation = self.checkpointer.generation();
        if let Some(pin) = self.pins.get(generation) {
            return Ok(pin);
        }
        let pin = self.pin()?;
        self.pins.offer(&pin, || self.checkpointer.generation());
        if self.read_only && self.check_open().is_err() {
            // Kept after the close emptied the cache: the closed handle would pin its
            // generation for as long as a clone of it lives.
            self.pins.clear();
            return Err(crate::error::Error::Closed);
        }
        Ok(pin)
    }

    /// Replaces `pin` when a checkpoint published a newer tree since it was taken: the
    /// versions that tree folded may have left the store, so only it has them. One
    /// atomic load when nothing changed.
    pub(crate) fn refresh(&self, pin: &mut Arc<ReadPin>) -> Result<()> {
        if self.checkpointer.generation() != pin.generation {
            *pin = self.pin()?;
        }
        Ok(())
    }

    /// The committed value of `key` in `table` at `snapshot`: the store when it may
    /// hold the table, else (or when it has no version) the pinned tree.
    pub(crate) fn committed_get(
        &self,
        pin: &mut Arc<ReadPin>,
        table: TableId,
        key: &[u8],
        snapshot: u64,
        history: bool,
    ) -> Result<Option<Committed>> {
        if self.versions.may_have_key(table, key)
            && let Some(v) = pin.store_get(&self.versions, table, key, snapshot)
        {
            return Ok(v.map(Committed::Shared));
        }
        self.refresh(pin)?;
        let p: &ReadPin = pin;
        let root = p.tree.root;
        if root == 0 {
            return Ok(None);
        }
        // The tree's ordinary entries are its state at `checkpoint_seq`: a snapshot at or
        // above it needs no history entry, and neither does a key the tree's history
        // index says has none.
        if history
            && snapshot < p.tree.checkpoint_seq
            && let Some(bytes) = with_tree_key(&HISTORY_PREFIX, table, key, |k| {
                match p.tree.history_index() {
                    Some(HistoryIndex::Directory(d)) => match d.get(&p.view, k) {
                        Lookup::Found(list) => Ok(Some(list)),
                        Lookup::Absent => Ok(None),
                        Lookup::Unknown => self.tree_get(&p.view, root, k),
                    },
                    Some(HistoryIndex::Filter(f)) if p.filter_use.worth_asking() => {
                        let spared = !f.may_contain(k);
                        p.filter_use.note(spared);
                        if spared {
                            Ok(None)
                        } else {
                            self.tree_get(&p.view, root, k)
                        }
                    }
                    _ => self.tree_get(&p.view, root, k),
                }
            })?
        {
            let found = version_at(bytes, snapshot)
                .map_err(|e| e.on_node_page_of(&p.view, bytes, self.page_size))?;
            return Ok(found.map(|v| Committed::Mapped(p.locate(v))));
        }
        let found = with_tree_key(&[], table, key, |k| self.tree_get(&p.view, root, k))?;
        Ok(found.map(|v| Committed::Mapped(p.locate(v))))
    }

    /// One batch of committed entries in `(lo, hi)` at `snapshot`, from the low end
    /// (or, with `reverse`, the high end). With `history`, a time-travel read: the
    /// tree's history entries override its current values.
    #[expect(
        clippy::too_many_arguments,
        reason = "one scan step's full description"
    )]
    pub(crate) fn committed_scan(
        &self,
        pin: &mut Arc<ReadPin>,
        table: TableId,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        snapshot: u64,
        reverse: bool,
        limit: usize,
        history: bool,
    ) -> Result<CommittedBatch> {
        let store = if self.versions.may_have(table) {
            self.versions
                .scan(table, lo, hi, snapshot, reverse, limit.min(SCAN_BATCH_MAX))
        } else {
            ScanBatch::default()
        };
        let own_end = if reverse { lo } else { hi };
        let owned = |b: Bound<&[u8]>| b.map(<[u8]>::to_vec);
        let mut covered = match &store.resume_after {
            Some(k) => Bound::Included(k.clone()),
            None => owned(own_end),
        };
        self.refresh(pin)?;
        let p: &ReadPin = pin;
        let mapped = |v: &[u8]| {
            let (offset, len) = p.locate(v);
            ValueRef::pinned(pin, offset, len)
        };
        let root = p.tree.root;
        let mut tree_entries = Vec::new();
        if root != 0 {
            let view: &[u8] = &p.view;
            let prefix = table.to_be_bytes();
            // One scan step over the tree keys under a prefix (a table, or its history).
            let scan = |prefix: &[u8], covered: &mut Bound<Vec<u8>>| {
                self.tree_entries(view, root, prefix, lo, hi, reverse, limit, covered)
            };
            for (k, v) in scan(&prefix, &mut covered)? {
                tree_entries.push((k, Some(mapped(v))));
            }
            if history && snapshot < p.tree.checkpoint_seq {
                let prefix = history_key(table, &[]);
                let mut hist = Vec::new();
                for (k, v) in scan(&prefix, &mut covered)? {
                    let value = version_at(v, snapshot)
                        .map_err(|e| e.on_node_page_of(view, v, self.page_size))?;
                    hist.push((k, value.map(mapped)));
                }
                tree_entries = merge_prefer(hist, tree_entries, &covered, reverse);
            }
        }
        let done = cover_cmp(&covered, &owned(own_end), reverse) != Ordering::Less;
        // The store's versions are newer than the tree's state.
        let store_entries = store
            .entries
            .into_iter()
            .map(|(k, v)| (k, v.map(ValueRef::shared)))
            .collect();
        Ok(CommittedBatch {
            entries: merge_prefer(store_entries, tree_entries, &covered, reverse),
            covered,
            done,
        })
    }

    /// The tree's entries under `prefix` whose rest lies in `(lo, hi)`, leaf after leaf
    /// until `limit` entries, the prefix's end, or `covered` is passed; narrows
    /// `covered` when it stops early. Keys are returned without the prefix.
    #[expect(
        clippy::too_many_arguments,
        reason = "one scan step's full description"
    )]
    fn tree_entries<'v>(
        &self,
        view: &'v [u8],
        root: u64,
        prefix: &[u8],
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
        covered: &mut Bound<Vec<u8>>,
    ) -> Result<Vec<(Vec<u8>, &'v [u8])>> {
        let (clo, chi) = prefix_bounds(prefix, lo, hi);
        let (start, end) = if reverse { (&chi, &clo) } else { (&clo, &chi) };
        let verified = Some(self.pager.verified());
        let mut cursor = Cursor::seek(
            view,
            self.page_size,
            root,
            bound_slice(start),
            reverse,
            verified,
        )?;
        let n = prefix.len();
        let mut out = Vec::new();
        // One descent, then leaf to leaf, until the range's end, `covered`, or `limit`;
        // a leaf wholly past the end is never read.
        while !cursor.spent_before(view, bound_slice(end))
            && let Some((k, v)) = cursor.step(view, verified)?
        {
            let past_end = !within_key(&k, bound_slice(end), reverse);
            let rest = k.after(n).unwrap_or(&[]);
            if past_end || !k.starts_with(prefix) || !within(rest, bound_slice(covered), reverse) {
                break;
            }
            out.push((rest.to_vec(), v));
            if out.len() >= limit {
                *covered = Bound::Included(rest.to_vec());
                break;
            }
        }
        Ok(out)
    }
}

/// Merges two lists in scan order, keeping only keys inside `covered`; on equal keys
/// the entry of `first` wins.
fn merge_prefer(
    first: Vec<(Vec<u8>, Option<ValueRef>)>,
    second: Vec<(Vec<u8>, Option<ValueRef>)>,
    covered: &Bound<Vec<u8>>,
    reverse: bool,
) -> Vec<(Vec<u8>, Option<ValueRef>)> {
    let mut out = Vec::with_capacity(first.len() + second.len());
    let mut a = first
        .into_iter()
        .filter(|(k, _)| within(k, bound_slice(covered), reverse))
        .peekable();
    let mut b = second
        .into_iter()
        .filter(|(k, _)| within(k, bound_slice(covered), reverse))
        .peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((x, _)), Some((y, _))) => {
                if reverse {
                    y.cmp(x)
                } else {
                    x.cmp(y)
                }
            }
        };
        if order == Ordering::Equal {
            b.next();
        }
        let next = if order == Ordering::Greater {
            b.next()
        } else {
            a.next()
        };
        out.extend(next);
    }
    out
}

/// The value a history entry's version list gives at `snapshot` (`None`: absent then).
/// A time-travel read is at or above the history floor, and every list keeps its newest
/// version at or below the floor (a key created later has a base version "absent" at
/// sequence 0): a list with none at or below `snapshot` is damage, never "absent".
fn version_at(list: &[u8], snapshot: u64) -> Result<Option<&[u8]>> {
    find_in_list(list, snapshot)?.ok_or_else(|| {
        crate::error::Error::corrupted(
            0,
            format!("history entry: no version at or below commit {snapshot}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::version_at;
    use crate::mvcc::history::encode_list;

    /// A list with no version at or below the read's sequence is damage (every list
    /// keeps one at or below the floor): it read as "absent" before.
    #[test]
    fn a_list_with_no_version_at_or_below_the_read_is_damage() {
        let value: crate::types::Value = Some(std::sync::Arc::from(&b"v"[..]));
        let list = encode_list(&[(10, value), (4, None)]).unwrap();
        assert_eq!(version_at(&list, 12).unwrap(), Some(&b"v"[..]));
        assert_eq!(version_at(&list, 5).unwrap(), None);
        let newer_only = encode_list(&[(10, Some(std::sync::Arc::from(&b"v"[..])))]).unwrap();
        let err = version_at(&newer_only, 5).unwrap_err();
        assert!(err.is_corruption(), "{err}");
    }
}
