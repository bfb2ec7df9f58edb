//! Reading the persisted free list (`format-spec/btree.md`).

use crate::btree::run::read_run;
use crate::error::{Error, Result};
use crate::format::PageKind;
use std::collections::BTreeSet;

/// The page numbers of the free-list run at `first`, and the run's extent. Entries must
/// be strictly increasing, inside `[first_data, page_count)`. Before the first
/// checkpoint (`first` is 0) there is no tree, so every page below `page_count` is in
/// the list.
pub fn read_free_list(
    file: &[u8],
    page_size: u32,
    first: u64,
    first_data: u64,
    page_count: u64,
) -> Result<(BTreeSet<u64>, (u64, u64))> {
    if first == 0 {
        return Ok(((first_data..page_count).collect(), (0, 0)));
    }
    let run = read_run(file, PageKind::FreeList, first, page_size)?;
    if run.value_len != 0 {
        return Err(Error::corrupted(first, "free-list run has a value length"));
    }
    let count = usize::try_from(run.entry_count).unwrap_or(usize::MAX);
    let bytes = count
        .checked_mul(8)
        .and_then(|n| run.payload.get(..n))
        .ok_or_else(|| Error::corrupted(first, "free-list entries run past the run"))?;
    let mut set = BTreeSet::new();
    let mut prev = None;
    for chunk in bytes.chunks_exact(8) {
        let p = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        if prev.is_some_and(|q| q >= p) || p < first_data || p >= page_count {
            return Err(Error::corrupted(
                first,
                format!("free-list entry {p} out of order or range"),
            ));
        }
        prev = Some(p);
        set.insert(p);
    }
    Ok((set, (first, run.pages)))
}
