//! What the tree holds besides the tables' current state: history entries, the
//! persisted floor and the kept drops (`format-spec/btree.md`, "History"), read back
//! and rewritten by each checkpoint.

use super::folded::FoldMerge;
use crate::Result;
use crate::btree;
use crate::btree::OnNodePage;
use crate::btree::page::TreeKey;
use crate::mvcc::history::{
    HISTORY_PREFIX, KeptDrops, VersionList, decode_drops, decode_list, drops_key, encode_drops,
    encode_list, floor_key, history_key, history_owner, newest_first, prune_list,
};
use crate::mvcc::history_directory::{HistoryIndex, IndexBuilder};
use crate::types::TableId;
use std::ops::Bound;
use std::sync::Arc;

/// The persisted floor and kept drops alone (two point lookups): what an open needs,
/// without reading every history entry.
pub fn read_floor_and_drops(
    file: &[u8],
    page_size: u32,
    root: u64,
) -> Result<(Option<u64>, Option<KeptDrops>)> {
    let floor = btree::get(file, page_size, root, &floor_key(), None)?
        .map(|v| decode_floor(file, page_size, v, root))
        .transpose()?;
    let drops = btree::get(file, page_size, root, &drops_key(), None)?
        .map(|v| decode_drops(v).map_err(|e| e.on_node_page_of(file, v, page_size)))
        .transpose()?;
    Ok((floor, drops))
}

/// The persisted floor record's value: 8 bytes. Any other length is damage (read as no
/// floor, the window would start at the checkpoint's sequence, below a floor the tree
/// may have been written above); the error names the page the record's bytes lie on,
/// or the tree's root, under which the record sits, when they lie outside the file.
fn decode_floor(file: &[u8], page_size: u32, v: &[u8], root: u64) -> Result<u64> {
    <[u8; 8]>::try_from(v).map(u64::from_le_bytes).map_err(|_| {
        crate::error::Error::corrupted(
            0,
            format!("the history floor record holds {} bytes, not 8", v.len()),
        )
        .on_node_page_of(file, v, page_size)
        .on_page(root)
    })
}

/// Calls `f` on every entry from the first history key up to `hi`, leaf after leaf, with
/// its key as the page holds it and whole (copied into one reused buffer).
fn walk_history<'a>(
    file: &'a [u8],
    page_size: u32,
    root: u64,
    hi: Bound<&[u8]>,
    mut f: impl FnMut(TreeKey<'a>, &[u8], &'a [u8]) -> Result<()>,
) -> Result<()> {
    let mut leaves = HistoryLeaves::new(file, page_size, root);
    let mut key = Vec::new();
    while let Some(leaf) = leaves.next_leaf(hi)? {
        for (k, v) in leaf.entries {
            key.clear();
            k.extend_into(&mut key);
            f(k, &key, v)?;
        }
    }
    Ok(())
}

/// The tree's leaves from the first history key on, one leaf's entries at a time.
struct HistoryLeaves<'a> {
    file: &'a [u8],
    page_size: u32,
    root: u64,
    /// Where the next leaf starts; `None` once the last was read.
    lo: Option<Vec<u8>>,
}

impl<'a> HistoryLeaves<'a> {
    fn new(file: &'a [u8], page_size: u32, root: u64) -> Self {
        HistoryLeaves {
            file,
            page_size,
            root,
            lo: Some(HISTORY_PREFIX.to_vec()),
        }
    }

    /// The next leaf's entries below `hi` (its `leaf_edge` taken); `None` past the last.
    fn next_leaf(&mut self, hi: Bound<&[u8]>) -> Result<Option<btree::TreeBatch<'a>>> {
        let Some(lo) = self.lo.take() else {
            return Ok(None);
        };
        let mut batch = btree::scan_leaf(
            self.file,
            self.page_size,
            self.root,
            Bound::Included(&lo),
            hi,
            false,
            None,
        )?;
        self.lo = batch.leaf_edge.take();
        Ok(Some(batch))
    }
}

/// The index of the history keys of the tree rooted at `root` (not the floor's or the
/// kept drops' keys): a walk over the history leaves, every one verified as a first read
/// is, that locates each key's bytes and version list in `file` for a directory of at
/// most `directory_keys` keys ([`IndexBuilder`]).
pub fn index_history(
    file: &[u8],
    page_size: u32,
    root: u64,
    directory_keys: usize,
) -> Result<HistoryIndex> {
    let end = [HISTORY_PREFIX, HISTORY_PREFIX].concat();
    let offset = |s: &[u8]| crate::util::offset_in(file, s);
    let mut builder = IndexBuilder::new(directory_keys);
    walk_history(file, page_size, root, Bound::Excluded(&end), |k, key, v| {
        let (head, rest) = k.pieces();
        // The walk's keys lie at or above `HISTORY_PREFIX`, so they start with it, and so
        // does a leaf prefix of 8 bytes or fewer.
        let head_len = if HISTORY_PREFIX.starts_with(head) {
            head.len()
        } else {
            usize::MAX
        };
        builder.add(
            key,
            head_len,
            (offset(rest), rest.len()),
            (offset(v), v.len()),
        );
        Ok(())
    })?;
    Ok(builder.finish())
}

/// The history entries a checkpoint writes (`format-spec/btree.md`, "History"): each
/// folded key whose versions reach above `floor` gets (or updates) its entry, every
/// other entry is pruned to what reads at or above `floor` need, and entries of
/// `dropped` tables go. The floor is persisted while any entry exists or `keep_floor`.
/// `newest` bounds the folded versions' sequences: when no entry exists and none
/// reaches above `floor`, the fold is not walked (a large load's tree commit).
///
/// Produced one change at a time, in key order, as the rebuild takes them
/// ([`HistoryChanges`]): collected first, every rewritten list was held encoded at
/// once, and a floor passing a batch that rewrote a million keys under a long window
/// held them all (each list many versions long).
#[expect(
    clippy::too_many_arguments,
    reason = "the old tree, the fold and the window"
)]
pub(super) fn history_changes<'a>(
    file: &'a [u8],
    page_size: u32,
    root: u64,
    folded: FoldMerge<'a>,
    newest: u64,
    floor: u64,
    dropped: &'a [TableId],
    kept_drops: KeptDrops,
    keep_floor: bool,
) -> Result<HistoryChanges<'a>> {
    let (persisted, persisted_drops) = read_floor_and_drops(file, page_size, root)?;
    let mut old = OldEntries {
        leaves: HistoryLeaves::new(file, page_size, root),
        leaf: std::collections::VecDeque::new(),
    };
    let nothing_kept = old.peek_key()?.is_none();
    // Nothing kept and nothing to keep: every key of the fold would be passed over.
    let folded = (!nothing_kept || newest > floor).then(|| folded.peekable());
    Ok(HistoryChanges {
        file,
        page_size,
        root,
        folded,
        old,
        floor,
        dropped,
        nothing_kept,
        live: 0,
        persisted,
        persisted_drops,
        kept_drops,
        keep_floor,
        tail: None,
        failed: false,
    })
}

/// The old tree's history entries (not the floor's or the kept drops' records), in key
/// order, read a leaf at a time: a checkpoint holds one leaf's keys, not a copy of every
/// history key (a long window's history may hold many millions).
pub(super) struct OldEntries<'a> {
    leaves: HistoryLeaves<'a>,
    /// The rest of the leaf read last: each key whole, its value in the file.
    leaf: std::collections::VecDeque<(Vec<u8>, &'a [u8])>,
}

impl<'a> OldEntries<'a> {
    /// Reads leaves until one holds an entry, or none is left.
    fn fill(&mut self) -> Result<()> {
        let (fk, dk) = (floor_key(), drops_key());
        let second_prefix = [HISTORY_PREFIX, HISTORY_PREFIX].concat();
        while self.leaf.is_empty() {
            let Some(leaf) = self.leaves.next_leaf(Bound::Unbounded)? else {
                return Ok(());
            };
            for (k, v) in leaf.entries {
                let mut key = Vec::new();
                k.extend_into(&mut key);
                if key == fk || key == dk {
                    continue;
                }
                // Under `FF×8 ‖ FF×8` only the floor and the kept drops (`btree.md`):
                // another key there would follow the entries and come after the records
                // the changes end with, out of order.
                if key.starts_with(&second_prefix) {
                    return Err(crate::error::Error::corrupted(
                        0,
                        format!(
                            "tree key {} is neither the history floor nor the kept drops, \
                             under their prefix",
                            crate::util::show_bytes(&key)
                        ),
                    )
                    .on_node_page_of(self.leaves.file, v, self.leaves.page_size)
                    .on_page(self.leaves.root));
                }
                self.leaf.push_back((key, v));
            }
        }
        Ok(())
    }

    fn peek_key(&mut self) -> Result<Option<&[u8]>> {
        self.fill()?;
        Ok(self.leaf.front().map(|(k, _)| k.as_slice()))
    }

    fn next(&mut self) -> Result<Option<(Vec<u8>, &'a [u8])>> {
        self.fill()?;
        Ok(self.leaf.pop_front())
    }
}

/// [`history_changes`]' changes, in key order: the fold's keys merged with the old
/// tree's entries, then the kept drops' and the floor's records (whose keys sort last).
pub(super) struct HistoryChanges<'a> {
    file: &'a [u8],
    page_size: u32,
    root: u64,
    folded: Option<std::iter::Peekable<FoldMerge<'a>>>,
    old: OldEntries<'a>,
    floor: u64,
    dropped: &'a [TableId],
    nothing_kept: bool,
    /// Entries the new tree keeps so far: the floor is persisted while any exists.
    live: usize,
    persisted: Option<u64>,
    persisted_drops: Option<KeptDrops>,
    kept_drops: KeptDrops,
    keep_floor: bool,
    /// The records after every entry, once both inputs are done.
    tail: Option<std::vec::IntoIter<btree::build::Change>>,
    /// An error was returned: nothing follows it.
    failed: bool,
}

impl HistoryChanges<'_> {
    fn decode(&self, v: &[u8]) -> Result<VersionList> {
        decode_list(v).map_err(|e| e.on_node_page_of(self.file, v, self.page_size))
    }

    /// A folded key's entry, merged with its old one (`existing`), if it changes.
    fn fold_one(
        &mut self,
        hk: Vec<u8>,
        table: TableId,
        key: &[u8],
        versions: &super::folded::Versions<'_>,
        existing: Option<&[u8]>,
    ) -> Result<Option<btree::build::Change>> {
        let above = versions.newest_seq() > self.floor;
        let existing = existing.map(|v| self.decode(v)).transpose()?;
        if existing.is_none() && !above {
            return Ok(None);
        }
        let existed = existing.is_some();
        let mut merged = versions.to_list();
        match existing {
            Some(e) => merged.extend(e),
            // The key's state before these versions: its value in the old tree, at a
            // seq at or below the floor (it has no entry, so it did not change above).
            None => {
                let composite = btree::composite(table, key);
                let base = btree::get(self.file, self.page_size, self.root, &composite, None)?;
                merged.push((0, base.map(Arc::from)));
            }
        }
        newest_first(&mut merged);
        prune_list(&mut merged, self.floor);
        if merged.len() > 1 {
            self.live += 1;
            Ok(Some((hk, Some(Arc::from(encode_list(&merged)?)))))
        } else {
            Ok(existed.then_some((hk, None)))
        }
    }

    /// An old entry no folded key changes: pruned to the floor, or gone with its table.
    fn old_one(&mut self, hk: Vec<u8>, bytes: &[u8]) -> Result<Option<btree::build::Change>> {
        // (The catalog, table 0, which a short key would give, is never dropped.)
        let dropped = self.dropped;
        if history_owner(&hk).is_some_and(|c| dropped.contains(&btree::split_composite(c).0)) {
            return Ok(Some((hk, None)));
        }
        let mut list = self.decode(bytes)?;
        let n = list.len();
        prune_list(&mut list, self.floor);
        if list.len() <= 1 {
            return Ok(Some((hk, None)));
        }
        self.live += 1;
        if list.len() == n {
            return Ok(None);
        }
        Ok(Some((hk, Some(Arc::from(encode_list(&list)?)))))
    }

    /// The kept drops' and the floor's records, in key order.
    fn tail(&mut self) -> Vec<btree::build::Change> {
        let mut out = Vec::new();
        if self.persisted_drops.as_deref().unwrap_or(&[]) != self.kept_drops.as_slice() {
            let value =
                (!self.kept_drops.is_empty()).then(|| Arc::from(encode_drops(&self.kept_drops)));
            out.push((drops_key(), value));
        }
        if self.live > 0 || self.keep_floor {
            if self.persisted != Some(self.floor) {
                out.push((floor_key(), Some(Arc::from(&self.floor.to_le_bytes()[..]))));
            }
        } else if self.persisted.is_some() {
            out.push((floor_key(), None));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The next change, or `None` when there are none.
    fn next_change(&mut self) -> Result<Option<btree::build::Change>> {
        loop {
            if let Some(tail) = self.tail.as_mut() {
                return Ok(tail.next());
            }
            let next_folded = self
                .folded
                .as_mut()
                .and_then(|f| f.peek())
                .map(|(t, k, _)| history_key(*t, k));
            // How the fold's next key compares with the old tree's next entry (`None`:
            // both are done), without a copy of the entry's key.
            let order = match (&next_folded, self.old.peek_key()?) {
                (None, None) => None,
                (Some(_), None) => Some(std::cmp::Ordering::Less),
                (None, Some(_)) => Some(std::cmp::Ordering::Greater),
                (Some(hk), Some(old)) => Some(hk.as_slice().cmp(old)),
            };
            match (next_folded, order) {
                (_, None) => {
                    let tail = self.tail();
                    self.tail = Some(tail.into_iter());
                }
                (Some(hk), Some(order)) if order.is_le() => {
                    let Some((table, key, versions)) = self.folded.as_mut().and_then(|f| f.next())
                    else {
                        continue;
                    };
                    let above = versions.newest_seq() > self.floor;
                    // Most folds of a large load: nothing kept, nothing to keep. A
                    // dropped table's old entry, if any, goes as an old one.
                    if (self.nothing_kept && !above) || self.dropped.contains(&table) {
                        continue;
                    }
                    let existing = match order {
                        std::cmp::Ordering::Equal => self.old.next()?.map(|(_, v)| v),
                        _ => None,
                    };
                    if let Some(change) = self.fold_one(hk, table, key, &versions, existing)? {
                        return Ok(Some(change));
                    }
                }
                _ => {
                    let Some((hk, bytes)) = self.old.next()? else {
                        continue;
                    };
                    if let Some(change) = self.old_one(hk, bytes)? {
                        return Ok(Some(change));
                    }
                }
            }
        }
    }
}

impl Iterator for HistoryChanges<'_> {
    type Item = Result<btree::build::Change>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_change().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::build::rebuild;
    use crate::pager::Pager;
    use crate::storage::{SimStorage, Storage};
    use std::collections::BTreeSet;
    use std::sync::Arc;

    /// A floor record of 7 bytes is damage, not "no floor" (the window would have
    /// started at the checkpoint's sequence, below a floor the tree may sit above).
    #[test]
    fn a_floor_record_of_the_wrong_length_is_an_error() {
        let sim = SimStorage::new();
        let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
        let file = sim.view().unwrap();
        let changes = vec![(floor_key(), Some(Arc::from(&[1u8; 7][..])))];
        let built = rebuild(&sim, &pager, &file, 0, &changes, &[], u64::MAX).unwrap();
        let file = sim.view().unwrap();
        let e = read_floor_and_drops(&file, 4096, built.root).unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("7 bytes"),
            "{e}"
        );
        let changes = vec![(floor_key(), Some(Arc::from(&9u64.to_le_bytes()[..])))];
        let built = rebuild(&sim, &pager, &file, 0, &changes, &[], u64::MAX).unwrap();
        let file = sim.view().unwrap();
        let (floor, _) = read_floor_and_drops(&file, 4096, built.root).unwrap();
        assert_eq!(floor, Some(9));

        // In a tree of two levels, the error names the leaf holding the record (it
        // named the root, an intact branch).
        let mut changes: Vec<_> = (0..400)
            .map(|i| {
                (
                    format!("k{i:05}").into_bytes(),
                    Some(Arc::from(&[0u8; 40][..])),
                )
            })
            .collect();
        changes.push((floor_key(), Some(Arc::from(&[1u8; 7][..]))));
        let built = rebuild(&sim, &pager, &file, 0, &changes, &[], u64::MAX).unwrap();
        let file = sim.view().unwrap();
        let Err(crate::error::Error::Corrupted { page, .. }) =
            read_floor_and_drops(&file, 4096, built.root)
        else {
            panic!("the bad floor record is refused");
        };
        assert_ne!(page, built.root);
        let leaf = &file[page as usize * 4096..(page as usize + 1) * 4096];
        assert!(leaf.windows(5).any(|w| w == b"floor"), "page {page}");
    }
}
