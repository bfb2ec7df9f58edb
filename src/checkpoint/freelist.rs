//! Reading the persisted free list (`format-spec/btree.md`).

use crate::btree::run::read_run;
use crate::error::{Error, Result};
use crate::format::PageKind;
use std::collections::BTreeSet;

/// Most data pages a header without a free list may name (`format-spec/btree.md`):
/// creation makes two.
pub const PAGES_WITHOUT_FREE_LIST_MAX: u64 = 64;

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
        // Creation makes two data pages, and only a checkpoint (which writes a free
        // list) raises `page_count`: a crafted header claiming millions of pages with
        // no list (a sparse file makes its length free) had the open build a set of
        // them all, gigabytes.
        if page_count.saturating_sub(first_data) > PAGES_WITHOUT_FREE_LIST_MAX {
            return Err(Error::corrupted(
                0,
                format!("the header names no free list (no checkpoint yet) but {page_count} pages"),
            ));
        }
        return Ok(((first_data..page_count).collect(), (0, 0)));
    }
    let run = read_run(file, PageKind::FreeList, first, page_size)?;
    if run.value_len != 0 {
        return Err(Error::corrupted(first, "free-list run has a value length"));
    }
    // Past `page_count` the writer takes pages for the log at open: a run reaching there
    // would be written over, and its pages freed again at the next checkpoint while the
    // log still used them.
    let run_end = first
        .checked_add(run.pages)
        .filter(|&end| first >= first_data && end <= page_count);
    let Some(run_end) = run_end else {
        return Err(Error::corrupted(
            first,
            format!(
                "free-list run of {} pages does not lie inside the data pages [{first_data}, {page_count})",
                run.pages
            ),
        ));
    };
    let count = usize::try_from(run.entry_count).unwrap_or(usize::MAX);
    let bytes = count
        .checked_mul(8)
        .and_then(|n| run.payload.get(..n))
        .ok_or_else(|| Error::corrupted(first, "free-list entries run past the run"))?;
    let mut set = BTreeSet::new();
    let mut prev = None;
    for chunk in bytes.chunks_exact(8) {
        let p = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        if prev.is_some_and(|q| q >= p)
            || p < first_data
            || p >= page_count
            || (first..run_end).contains(&p)
        {
            return Err(Error::corrupted(
                first,
                format!("free-list entry {p} out of order, out of range or in the run itself"),
            ));
        }
        prev = Some(p);
        set.insert(p);
    }
    Ok((set, (first, run.pages)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::run::encode_run;

    const PS: u32 = 4096;

    /// A file of `len` pages with a free-list run at `first` listing `entries`.
    fn file_with_run(len: u64, first: u64, entries: &[u64]) -> Vec<u8> {
        let payload: Vec<u8> = entries.iter().flat_map(|p| p.to_le_bytes()).collect();
        let run = encode_run(
            PageKind::FreeList,
            first,
            PS,
            &payload,
            0,
            entries.len() as u64,
        );
        let mut file = vec![0u8; (len * u64::from(PS)) as usize];
        let at = (first * u64::from(PS)) as usize;
        file[at..at + run.len()].copy_from_slice(&run);
        file
    }

    /// A run reaching past `page_count` (a crafted file: the file is longer, as files
    /// are) is refused, naming the run: the writer would take those pages for the log at
    /// open and free them again at the next checkpoint. So is an entry naming a page of
    /// the run itself. A run inside the data pages reads.
    #[test]
    fn a_run_past_page_count_or_listing_itself_is_refused() {
        // 600 entries take two pages: 749 and 750.
        let entries: Vec<u64> = (100..700).collect();
        let file = file_with_run(800, 749, &entries);
        let (set, run) = read_free_list(&file, PS, 749, 4, 751).unwrap();
        assert_eq!((set.len(), run), (600, (749, 2)));
        match read_free_list(&file, PS, 749, 4, 750) {
            Err(Error::Corrupted { page: 749, what }) => {
                assert!(what.contains("does not lie inside"), "{what}")
            }
            other => panic!("a run past page_count read as {other:?}"),
        }
        let file = file_with_run(800, 20, &[5, 20, 30]);
        match read_free_list(&file, PS, 20, 4, 800) {
            Err(Error::Corrupted { page: 20, what }) => {
                assert!(what.contains("in the run itself"), "{what}")
            }
            other => panic!("an entry in the run read as {other:?}"),
        }
        let file = file_with_run(800, 2, &[]);
        assert!(matches!(
            read_free_list(&file, PS, 2, 4, 800),
            Err(Error::Corrupted { page: 2, .. })
        ));
    }

    /// No free list (no checkpoint yet): every data page below `page_count` is free,
    /// and a header naming more than creation ever makes is refused, naming the header,
    /// before a set of them all is built (2^40 pages: a crafted sparse file's claim).
    #[test]
    fn no_free_list_with_pages_past_what_creation_makes_is_refused() {
        let (set, run) = read_free_list(&[], PS, 0, 4, 6).unwrap();
        assert_eq!(
            (set.into_iter().collect::<Vec<_>>(), run),
            (vec![4, 5], (0, 0))
        );
        match read_free_list(&[], PS, 0, 4, 1 << 40) {
            Err(Error::Corrupted { page: 0, what }) => {
                assert!(what.contains("no free list"), "{what}")
            }
            other => panic!("{:?}", other.map(|(s, r)| (s.len(), r))),
        }
    }
}
