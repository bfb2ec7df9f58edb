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
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// What the tree holds besides the tables' current state.
#[derive(Default)]
pub struct Retained<'a> {
    /// History entries by tree key: each version list's bytes in the file, decoded
    /// where it is used (a checkpoint holds one decoded list at a time, not the whole
    /// history's values: a long window's history is many times the version store).
    pub entries: BTreeMap<Vec<u8>, &'a [u8]>,
    /// The persisted floor.
    pub floor: Option<u64>,
    /// Drops whose data is still kept.
    pub drops: Option<KeptDrops>,
}

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
    let mut lo = Bound::Included(HISTORY_PREFIX.to_vec());
    let mut key = Vec::new();
    loop {
        let batch = btree::scan_leaf(
            file,
            page_size,
            root,
            lo.as_ref().map(Vec::as_slice),
            hi,
            false,
            None,
        )?;
        for &(k, v) in &batch.entries {
            key.clear();
            k.extend_into(&mut key);
            f(k, &key, v)?;
        }
        match batch.leaf_edge {
            Some(edge) => lo = Bound::Included(edge),
            None => return Ok(()),
        }
    }
}

/// Every history entry in the tree rooted at `root`, the persisted floor and drops.
pub fn read_history(file: &[u8], page_size: u32, root: u64) -> Result<Retained<'_>> {
    let mut r = Retained::default();
    let fk = floor_key();
    let dk = drops_key();
    walk_history(file, page_size, root, Bound::Unbounded, |_, k, v| {
        if k == fk.as_slice() {
            r.floor = Some(decode_floor(file, page_size, v, root)?);
        } else if k == dk.as_slice() {
            r.drops = Some(decode_drops(v).map_err(|e| e.on_node_page_of(file, v, page_size))?);
        } else {
            r.entries.insert(k.to_vec(), v);
        }
        Ok(())
    })?;
    Ok(r)
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
#[expect(
    clippy::too_many_arguments,
    reason = "the old tree, the fold and the window"
)]
pub(super) fn history_changes(
    file: &[u8],
    page_size: u32,
    root: u64,
    folded: FoldMerge<'_>,
    newest: u64,
    floor: u64,
    dropped: &[TableId],
    kept_drops: &[(TableId, u64)],
    keep_floor: bool,
) -> Result<Vec<btree::build::Change>> {
    let Retained {
        entries: mut old,
        floor: persisted,
        drops: persisted_drops,
    } = read_history(file, page_size, root)?;
    let decode = |v: &[u8]| -> Result<VersionList> {
        decode_list(v).map_err(|e| e.on_node_page_of(file, v, page_size))
    };
    // (The catalog, table 0, which a short key would give, is never dropped.)
    let is_dropped = |composite: &[u8]| dropped.contains(&btree::split_composite(composite).0);
    let nothing_kept = old.is_empty();
    let mut out: BTreeMap<Vec<u8>, Option<Arc<[u8]>>> = BTreeMap::new();
    let mut live = 0usize;
    // Nothing kept and nothing to keep: every key of the fold would be passed over.
    let folded = (!nothing_kept || newest > floor).then_some(folded);
    for (table, key, versions) in folded.into_iter().flatten() {
        let above = versions.newest_seq() > floor;
        // Most folds of a large load: nothing kept, nothing to keep (no key to build).
        if (nothing_kept && !above) || dropped.contains(&table) {
            continue;
        }
        let hk = history_key(table, key);
        let existing = old.remove(&hk).map(decode).transpose()?;
        if existing.is_none() && !above {
            continue;
        }
        let existed = existing.is_some();
        let mut merged = versions.to_list();
        match existing {
            Some(e) => merged.extend(e),
            // The key's state before these versions: its value in the old tree, at a
            // seq at or below the floor (it has no entry, so it did not change above).
            None => {
                let composite = btree::composite(table, key);
                let base = btree::get(file, page_size, root, &composite, None)?;
                merged.push((0, base.map(Arc::from)));
            }
        }
        newest_first(&mut merged);
        prune_list(&mut merged, floor);
        if merged.len() > 1 {
            live += 1;
            out.insert(hk, Some(Arc::from(encode_list(&merged)?)));
        } else if existed {
            out.insert(hk, None);
        }
    }
    for (hk, bytes) in old {
        if history_owner(&hk).is_some_and(is_dropped) {
            out.insert(hk, None);
            continue;
        }
        let mut list = decode(bytes)?;
        let n = list.len();
        prune_list(&mut list, floor);
        if list.len() <= 1 {
            out.insert(hk, None);
        } else {
            live += 1;
            if list.len() != n {
                out.insert(hk, Some(Arc::from(encode_list(&list)?)));
            }
        }
    }
    let fk = floor_key();
    if live > 0 || keep_floor {
        if persisted != Some(floor) {
            out.insert(fk, Some(Arc::from(&floor.to_le_bytes()[..])));
        }
    } else if persisted.is_some() {
        out.insert(fk, None);
    }
    if persisted_drops.as_deref().unwrap_or(&[]) != kept_drops {
        let value = (!kept_drops.is_empty()).then(|| Arc::from(encode_drops(kept_drops)));
        out.insert(drops_key(), value);
    }
    Ok(out.into_iter().collect())
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
        assert!(read_history(&file, 4096, built.root).is_err());
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
