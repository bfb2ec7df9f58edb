//! The copy-on-write B+tree holding the checkpointed state of every table
//! (`format-spec/btree.md`): one tree keyed by `table id (8 bytes BE) ‖ key`.
//!
//! Readers walk it zero-copy through the file mapping. Pages are never modified while
//! reachable: a checkpoint writes a new tree that shares untouched leaves with the old
//! one ([`build`]).

pub mod build;
pub mod cursor;
mod estimate;
#[cfg(test)]
mod hostile_rebuild_tests;
#[cfg(test)]
mod hostile_tests;
pub mod key;
#[cfg(test)]
mod multi_page_leaf_tests;
mod node_builder;
mod old_tree;
pub mod page;
pub mod run;
pub mod salvage;
mod walk;

use crate::error::{Error, Result};
use crate::format::PageKind;
use crate::pager::{ValueTag, Verified};
use page::{CellValue, NodeRef, TreeKey, cmp_keys};
use std::ops::Bound;
#[cfg(test)]
pub use walk::walk;
pub use walk::walk_reporting;

/// Deepest tree accepted; a deeper one is corrupt (or a cycle).
pub const DEPTH_MAX: usize = 32;

/// The composite key of `key` in table `table`.
pub fn composite(table: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&table.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// A composite key split into its table (0 when it is shorter than a table id) and the
/// key within the table: the inverse of [`composite`].
pub fn split_composite(composite: &[u8]) -> (u64, &[u8]) {
    let table = composite
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes);
    (table, composite.get(8..).unwrap_or(&[]))
}

/// The bytes of the tree page `page` in `file`: one page, or every page of a multi-page leaf
/// (its length read from its first page, and checked by its checksum when parsed).
#[inline]
pub fn page_bytes(file: &[u8], page: u64, page_size: u32) -> Result<&[u8]> {
    let ps = page_size as usize;
    let start = usize::try_from(page).ok().and_then(|p| p.checked_mul(ps));
    let first = start
        .and_then(|start| file.get(start..start.checked_add(ps)?))
        .ok_or_else(|| Error::corrupted(page, "page lies past the end of the file"))?;
    let pages = page::node_pages(first);
    if pages == 1 {
        return Ok(first);
    }
    start
        .and_then(|start| file.get(start..start.checked_add(ps.checked_mul(pages)?)?))
        .ok_or_else(|| Error::corrupted(page, "multi-page leaf lies past the end of the file"))
}

/// The page a parent names for the node holding `page`: `page` itself, or the first
/// page of a multi-page leaf reaching over it (one whose checksum is right, starting at
/// most [`page::LEAF_PAGES_MAX`] pages before it). An error about bytes inside a leaf's
/// later page (a damaged version list) names that first page, as every other error
/// about the leaf does: the later pages have no header of their own.
pub fn node_first_page(file: &[u8], page_size: u32, page: u64) -> u64 {
    (1..page::LEAF_PAGES_MAX as u64)
        .filter_map(|back| page.checked_sub(back))
        .find(|&first| {
            page_bytes(file, first, page_size).is_ok_and(|bytes| {
                let pages = (bytes.len() / page_size.max(1) as usize) as u64;
                pages > 1
                    && first.saturating_add(pages) > page
                    && NodeRef::parse(bytes, first).is_ok()
            })
        })
        .unwrap_or(page)
}

/// Names the tree node holding some bytes in an error about them.
pub(crate) trait OnNodePage {
    /// [`Error::on_page`] for an error about `part`, bytes of a tree node in the mapped
    /// `file` (a value read in place) from a decoder that could not know where they lay:
    /// the page a parent names for that node ([`node_first_page`]: a multi-page leaf's
    /// first page, when the bytes lie in a later one); unchanged when `part` lies
    /// elsewhere.
    fn on_node_page_of(self, file: &[u8], part: &[u8], page_size: u32) -> Error;
}

impl OnNodePage for Error {
    fn on_node_page_of(self, file: &[u8], part: &[u8], page_size: u32) -> Error {
        match crate::util::offset_in(file, part) {
            Some(offset) if offset < file.len() && page_size > 0 => match self {
                Error::Corrupted { page: 0, .. } => {
                    let page = offset as u64 / u64::from(page_size);
                    self.on_page(node_first_page(file, page_size, page))
                }
                other => other,
            },
            _ => self,
        }
    }
}

/// Resolves a stored value to its bytes: an overflow extent or run in `verified` is
/// located from its cell alone, else read, checked and added to `verified`
/// ([`value_bytes_read`]). Always inlined: a scan's step calls it for every entry (out
/// of line, the call cost a scan of large values 5% of its time).
///
/// A value in `verified` was checked once: an extent's checksum matched its cell's, a
/// run's header and checksum were checked and its `value_len` matched the cell's `len`
/// (a cell and what it names are written together and never change while reachable; a
/// freed page leaves the set). Its value is then located where the spec places it (the
/// extent's first byte, or offset 32 of the run), without touching its pages: a read
/// that only hands the value out, or a scan that passes it by, costs no cache or TLB
/// miss on them.
#[inline(always)]
fn value_bytes_cached<'a>(
    file: &'a [u8],
    page_size: u32,
    v: CellValue<'a>,
    verified: Option<&Verified>,
) -> Result<&'a [u8]> {
    let (page, len, skip, tag) = match v {
        CellValue::Inline(b) => return Ok(b),
        CellValue::Overflow { page, len } => (
            page,
            len,
            crate::format::LOG_PAGE_HEADER_LEN,
            ValueTag::run(len),
        ),
        // An extent of no bytes is never verified: it goes to the error below.
        CellValue::Extent { page, len, crc } if len > 0 => {
            (page, len, 0, ValueTag::extent(len, crc))
        }
        CellValue::Extent { .. } => {
            return value_bytes_read(file, page_size, v, verified).map_err(|e| *e);
        }
    };
    if let Some(set) = verified
        && set.contains_value(page, tag)
    {
        let value = page
            .checked_mul(u64::from(page_size))
            .and_then(|s| s.checked_add(skip as u64))
            .and_then(|s| usize::try_from(s).ok())
            .and_then(|start| file.get(start..start.checked_add(len as usize)?));
        if let Some(value) = value {
            return Ok(value);
        }
    }
    value_bytes_read(file, page_size, v, verified).map_err(|e| *e)
}

/// [`value_bytes_cached`] of an overflow extent or run not yet verified (or lying past
/// the end of the file): read whole and checked, then added to `verified`. Its error is
/// boxed so that its result comes back in two registers: one returned through memory
/// keeps the inlined caller's value in memory on its common path too.
#[inline(never)]
fn value_bytes_read<'a>(
    file: &'a [u8],
    page_size: u32,
    v: CellValue<'a>,
    verified: Option<&Verified>,
) -> std::result::Result<&'a [u8], Box<Error>> {
    value_bytes_checked(file, page_size, v, verified).map_err(Box::new)
}

/// [`value_bytes_read`]'s work.
fn value_bytes_checked<'a>(
    file: &'a [u8],
    page_size: u32,
    v: CellValue<'a>,
    verified: Option<&Verified>,
) -> Result<&'a [u8]> {
    let (page, tag, value) = match v {
        CellValue::Inline(b) => return Ok(b),
        CellValue::Extent { page, len, crc } => (
            page,
            ValueTag::extent(len, crc),
            run::read_extent(file, page, page_size, len, crc)?,
        ),
        CellValue::Overflow { page, len } => (
            page,
            ValueTag::run(len),
            overflow_run(file, page_size, page, len)?.1,
        ),
    };
    if let Some(set) = verified {
        set.insert_value(page, tag);
    }
    Ok(value)
}

/// The overflow run at `page` holding a value of `len` bytes by its leaf cell, verified
/// and checked against the cell: the run and the value.
fn overflow_run(
    file: &[u8],
    page_size: u32,
    page: u64,
    len: u32,
) -> Result<(run::RunRef<'_>, &[u8])> {
    let bad = |what: &str| Error::corrupted(page, what.to_string());
    let r = run::read_run(file, PageKind::Overflow, page, page_size)?;
    if r.entry_count != 0 {
        return Err(bad("an overflow run with an entry count"));
    }
    if r.value_len != len {
        return Err(bad("overflow length does not match its leaf cell"));
    }
    let value = r
        .payload
        .get(..len as usize)
        .ok_or_else(|| bad("overflow value longer than its run"))?;
    Ok((r, value))
}

/// Point lookup of a composite key; pages in `verified` skip their checksum.
pub fn get<'a>(
    file: &'a [u8],
    page_size: u32,
    root: u64,
    key: &[u8],
    verified: Option<&Verified>,
) -> Result<Option<&'a [u8]>> {
    if root == 0 {
        return Ok(None);
    }
    let mut page = root;
    // The separators around the page being searched, taken from branches below the
    // root: a tree of two levels is small enough to stay in the caches, where a binary
    // search costs less than the estimate that spares cache misses in a larger one.
    let mut bounds: (Option<&[u8]>, Option<&[u8]>) = (None, None);
    for level in 0..DEPTH_MAX {
        let node = NodeRef::parse_cached(page_bytes(file, page, page_size)?, page, verified)?;
        let found = node.search_near(key, bounds)?;
        if node.is_leaf() {
            return match found {
                Ok(i) => Ok(Some(value_bytes_cached(
                    file,
                    page_size,
                    node.value(i)?,
                    verified,
                )?)),
                // A miss at the leaf's edge is what a leaf of another part of the tree
                // (a lost or misdirected write at this page number) answers for every
                // key: a read (whose pages the pager's set marks verified, so the second
                // walk checksums nothing again) walks the descent again with every bound
                // checked. A hit, or a miss between two of the leaf's keys, costs
                // nothing more.
                Err(i) if verified.is_some() && (i == 0 || i == node.count()) => {
                    check_descent(file, page_size, root, key, verified).map(|()| None)
                }
                Err(_) => Ok(None),
            };
        }
        let idx = match found {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        if level > 0 {
            if idx > 0 {
                bounds.0 = Some(node.separator(idx - 1)?);
            }
            if idx < node.count() {
                bounds.1 = Some(node.separator(idx)?);
            }
        }
        page = node.child(idx)?;
    }
    Err(Error::corrupted(root, "tree deeper than the limit"))
}

/// Descends from `root` towards `key` checking each node against the bounds its parent
/// branches give ([`check_within`]).
fn check_descent(
    file: &[u8],
    page_size: u32,
    root: u64,
    key: &[u8],
    verified: Option<&Verified>,
) -> Result<()> {
    let mut page = root;
    let (mut lo, mut hi): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    for _ in 0..DEPTH_MAX {
        let node = NodeRef::parse_cached(page_bytes(file, page, page_size)?, page, verified)?;
        check_within(&node, page, lo, hi)?;
        if node.is_leaf() {
            return Ok(());
        }
        let idx = match node.search_near(key, (None, None))? {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        if idx > 0 {
            lo = Some(node.separator(idx - 1)?);
        }
        if idx < node.count() {
            hi = Some(node.separator(idx)?);
        }
        page = node.child(idx)?;
    }
    Err(Error::corrupted(root, "tree deeper than the limit"))
}

/// One leaf's worth of a scan.
pub struct TreeBatch<'a> {
    /// Entries inside the requested bounds, in scan order.
    pub entries: Vec<(TreeKey<'a>, &'a [u8])>,
    /// Forward: the exclusive upper end of the leaf scanned (`None`: end of tree).
    /// Reverse: the inclusive lower end (`None`: start of tree).
    pub leaf_edge: Option<Vec<u8>>,
}

impl TreeBatch<'_> {
    /// Calls `f` on each entry with its key whole (copied into one reused buffer: a
    /// compact leaf holds a key's prefix apart from the rest).
    pub fn try_for_each_whole(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        let mut key = Vec::new();
        for (k, v) in &self.entries {
            key.clear();
            k.extend_into(&mut key);
            f(&key, v)?;
        }
        Ok(())
    }
}

/// Refuses `node` (at `page`) when its keys (a branch: its separators) leave the bounds
/// the branches above give it: at or above `lo`, below `hi` (`None`: no bound). Checked
/// at every node a walk enters (cursors, [`scan_leaf`]), so a walk hands out only keys a
/// lookup, descending by the same separators, finds, and a page reached twice or a
/// branch cycle is refused. A branch's last separator may equal `hi` (its last child
/// then holds nothing; the leaves below are checked exactly).
pub(crate) fn check_within(
    node: &NodeRef<'_>,
    page: u64,
    lo: Option<&[u8]>,
    hi: Option<&[u8]>,
) -> Result<()> {
    let Some(last) = node.count().checked_sub(1) else {
        return Ok(());
    };
    let outside = if node.is_leaf() {
        let (first, last) = (node.key(0)?, node.key(last)?);
        lo.is_some_and(|lo| first.cmp_bytes(lo).is_lt())
            || hi.is_some_and(|hi| last.cmp_bytes(hi).is_ge())
    } else {
        let (first, last) = (node.separator(0)?, node.separator(last)?);
        lo.is_some_and(|lo| first < lo) || hi.is_some_and(|hi| last > hi)
    };
    if outside {
        return Err(Error::corrupted(
            page,
            "a node whose keys lie outside the bounds its parent branches give",
        ));
    }
    Ok(())
}

/// Scans the one leaf where a forward scan from `lo` (or a reverse scan from `hi`)
/// starts, returning its entries inside `(lo, hi)` and the leaf's edge.
pub fn scan_leaf<'a>(
    file: &'a [u8],
    page_size: u32,
    root: u64,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    reverse: bool,
    verified: Option<&Verified>,
) -> Result<TreeBatch<'a>> {
    let mut batch = TreeBatch {
        entries: Vec::new(),
        leaf_edge: None,
    };
    if root == 0 {
        return Ok(batch);
    }
    let mut page = root;
    let (mut low, mut high): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    for _ in 0..DEPTH_MAX {
        let node = NodeRef::parse_cached(page_bytes(file, page, page_size)?, page, verified)?;
        check_within(&node, page, low, high)?;
        if node.is_leaf() {
            // Keys are sorted: find where the range starts by binary search, then
            // compare each key with the far bound only, stopping at the first outside.
            let n = node.count();
            let first = match lo {
                Bound::Unbounded => 0,
                Bound::Included(k) => node.search(k)?.unwrap_or_else(|i| i),
                Bound::Excluded(k) => node.search(k)?.map_or_else(|i| i, |i| i + 1),
            };
            let end = match hi {
                Bound::Unbounded => n,
                Bound::Included(k) => node.search(k)?.map_or_else(|i| i, |i| i + 1),
                Bound::Excluded(k) => node.search(k)?.unwrap_or_else(|i| i),
            };
            let span = first..end.max(first);
            let order: Box<dyn Iterator<Item = usize>> = if reverse {
                Box::new(span.rev())
            } else {
                Box::new(span)
            };
            for i in order {
                let k = node.key(i)?;
                batch.entries.push((
                    k,
                    value_bytes_cached(file, page_size, node.value(i)?, verified)?,
                ));
            }
            // The next leaf's bound must lie past where this scan started, else a caller
            // that resumes from it (separators out of order in a damaged or hostile
            // file) would scan this leaf again and again.
            let edge = if reverse { low } else { high };
            // (A reverse scan resumes below the edge, excluding it: an edge equal to an
            // included start is progress.)
            let advances = match (edge, if reverse { hi } else { lo }) {
                (None, _) | (_, Bound::Unbounded) => true,
                (Some(e), Bound::Included(b)) if reverse => cmp_keys(e, b).is_le(),
                (Some(e), Bound::Excluded(b)) if reverse => cmp_keys(e, b).is_lt(),
                (Some(e), Bound::Included(b) | Bound::Excluded(b)) => cmp_keys(e, b).is_gt(),
            };
            if !advances {
                return Err(Error::corrupted(
                    page,
                    "a separator above this leaf does not move past the scan's start (keys out of order)",
                ));
            }
            batch.leaf_edge = edge.map(<[u8]>::to_vec);
            return Ok(batch);
        }
        let idx = if reverse {
            match hi {
                Bound::Unbounded => node.count(),
                Bound::Included(k) => node.child_index_for(k)?,
                Bound::Excluded(k) => match node.search(k)? {
                    Ok(i) | Err(i) => i,
                },
            }
        } else {
            match lo {
                Bound::Unbounded => 0,
                Bound::Included(k) | Bound::Excluded(k) => node.child_index_for(k)?,
            }
        };
        if idx > 0 {
            low = Some(node.separator(idx - 1)?);
        }
        if idx < node.count() {
            high = Some(node.separator(idx)?);
        }
        page = node.child(idx)?;
    }
    Err(Error::corrupted(root, "tree deeper than the limit"))
}

#[cfg(test)]
mod overflow_tests {
    use super::*;

    /// A file of two 4 KiB pages before an overflow run at page 2 carrying `value`, whose
    /// header states `value_len`.
    fn file_with_run(value: &[u8], value_len: u32) -> Vec<u8> {
        let mut file = vec![0u8; 2 * 4096];
        file.extend(run::encode_run(
            PageKind::Overflow,
            2,
            4096,
            value,
            value_len,
            0,
        ));
        file
    }

    #[test]
    fn a_verified_run_is_read_from_the_cell_alone_and_gives_the_same_bytes() {
        let value: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let file = file_with_run(&value, 10_000);
        let verified = Verified::default();
        let first = run_value(&file, 10_000, Some(&verified)).unwrap();
        assert_eq!(first, &value[..]);
        assert!(
            verified.contains_value(2, ValueTag::run(10_000)),
            "a run read whole is verified"
        );
        let again = run_value(&file, 10_000, Some(&verified)).unwrap();
        assert_eq!(again, &value[..]);
        // Past the end of the file: an error, not a short slice.
        assert!(run_value(&file[..3 * 4096], 10_000, Some(&verified)).is_err());
    }

    /// The value of the overflow run at page 2, `len` bytes long by its cell.
    fn run_value<'a>(file: &'a [u8], len: u32, verified: Option<&Verified>) -> Result<&'a [u8]> {
        let v = CellValue::Overflow { page: 2, len };
        value_bytes_cached(file, 4096, v, verified)
    }

    /// The value of the overflow extent at `page` named by a cell of `len` and `crc`.
    fn extent_value<'a>(
        file: &'a [u8],
        page: u64,
        len: u32,
        crc: u32,
        verified: Option<&Verified>,
    ) -> Result<&'a [u8]> {
        value_bytes_cached(file, 4096, CellValue::Extent { page, len, crc }, verified)
    }

    /// A file of two 4 KiB pages before an overflow extent at page 2 holding `value`, and
    /// the checksum its cell carries.
    fn file_with_extent(value: &[u8]) -> (Vec<u8>, u32) {
        let mut file = vec![0u8; 2 * 4096];
        run::encode_extent_into(&mut file, 4096, value);
        (file, run::extent_checksum(2, value))
    }

    #[test]
    fn a_value_of_a_whole_page_takes_one_extent_page() {
        let value = vec![7u8; 4096];
        let (file, crc) = file_with_extent(&value);
        assert_eq!(file.len(), 3 * 4096);
        assert_eq!(run::extent_pages(4096, 4096), 1);
        assert_eq!(run::extent_pages(4096, 4097), 2);
        let verified = Verified::default();
        let got = extent_value(&file, 2, 4096, crc, Some(&verified)).unwrap();
        assert_eq!(got, &value[..]);
        assert!(
            verified.contains_value(2, ValueTag::extent(4096, crc)),
            "an extent checked once is verified"
        );
        let again = extent_value(&file, 2, 4096, crc, Some(&verified)).unwrap();
        assert_eq!(again, &value[..]);
    }

    /// A flipped value bit, a value read at another page (a misdirected write), a cell
    /// whose length or checksum disagrees, or an extent past the end of the file: each is
    /// an error naming the extent's first page, on every read.
    #[test]
    fn a_damaged_or_misplaced_extent_is_refused_naming_its_page() {
        let value: Vec<u8> = (0..6_000u32).map(|i| (i * 7) as u8).collect();
        let (file, crc) = file_with_extent(&value);
        let verified = Verified::default();
        let mut flipped = file.clone();
        flipped[2 * 4096 + 5_999] ^= 0x10;
        let mut moved = vec![0u8; 4096];
        moved.extend_from_slice(&file[2 * 4096..]);
        let cases: [(&[u8], u64, u32, u32); 5] = [
            (&flipped, 2, 6_000, crc),
            (&moved, 1, 6_000, crc),
            (&file, 2, 5_999, crc),
            (&file, 2, 6_000, crc ^ 1),
            (&file[..3 * 4096], 2, 6_000, crc),
        ];
        for (bytes, page, len, sum) in cases {
            for _ in 0..2 {
                let e = extent_value(bytes, page, len, sum, Some(&verified)).unwrap_err();
                assert!(e.to_string().contains(&format!("page {page}")), "{e}");
                assert!(!verified.contains_value(page, ValueTag::extent(len, sum)));
            }
        }
        // The zeros after the value are not covered: the value still reads back.
        let mut tail = file.clone();
        tail[2 * 4096 + 7_000] ^= 1;
        assert_eq!(
            extent_value(&tail, 2, 6_000, crc, None).unwrap(),
            &value[..]
        );
    }

    /// A cell whose length disagrees with its run's header is an error on every read:
    /// the run is only trusted once it matched.
    #[test]
    fn a_length_mismatch_is_refused_every_time() {
        let value = vec![9u8; 6_000];
        let file = file_with_run(&value, 6_000);
        let verified = Verified::default();
        for _ in 0..3 {
            let e = run_value(&file, 5_000, Some(&verified)).unwrap_err();
            assert!(e.to_string().contains("page 2"), "{e}");
            assert!(!verified.contains_value(2, ValueTag::run(5_000)));
        }
        let mut damaged = file.clone();
        damaged[2 * 4096 + 100] ^= 1;
        assert!(run_value(&damaged, 6_000, Some(&verified)).is_err());
        assert!(!verified.contains_value(2, ValueTag::run(6_000)));
    }

    /// A leaf page `page` of one cell, sealed, with its cell's value byte changed after
    /// sealing when `damaged` (so its checksum fails).
    fn leaf_page(page: u64, damaged: bool) -> Vec<u8> {
        let key = composite(3, b"a");
        let mut b = page::NodeBuilder::new(true, 4096);
        assert!(b.admit(&TreeKey::whole(&key), 1));
        b.push_leaf_inline(&TreeKey::whole(&key), b"1");
        let mut bytes = b.finish(page).unwrap();
        if damaged {
            let at = bytes.iter().rposition(|&b| b == b'1').unwrap();
            bytes[at] = b'2';
        }
        bytes
    }

    /// A page verified as a value is never trusted as a tree page, nor a tree page as a
    /// value: each is checked as what it is read as (a hostile cell or child pointer
    /// naming the other kind's page).
    #[test]
    fn a_page_verified_as_one_kind_is_checked_again_as_the_other() {
        // An extent whose bytes are a damaged leaf page, its cell's checksum matching.
        let damaged = leaf_page(2, true);
        let (file, crc) = file_with_extent(&damaged);
        let verified = Verified::default();
        assert_eq!(
            extent_value(&file, 2, 4096, crc, Some(&verified)).unwrap(),
            &damaged[..]
        );
        assert!(verified.contains_value(2, ValueTag::extent(4096, crc)) && !verified.contains(2));
        let e = page::NodeRef::parse_cached(&damaged, 2, Some(&verified))
            .err()
            .unwrap();
        assert!(e.to_string().contains("page 2"), "{e}");
        // A tree page verified as one, then named by a cell whose checksum is not its.
        let leaf = leaf_page(2, false);
        let mut file = vec![0u8; 2 * 4096];
        file.extend_from_slice(&leaf);
        let verified = Verified::default();
        assert!(page::NodeRef::parse_cached(&leaf, 2, Some(&verified)).is_ok());
        assert!(verified.contains(2));
        let wrong = run::extent_checksum(2, &leaf) ^ 1;
        let e = extent_value(&file, 2, 4096, wrong, Some(&verified)).unwrap_err();
        assert!(e.to_string().contains("page 2"), "{e}");
    }

    /// Two cells naming one extent page, the second with another length or checksum (a
    /// hostile file): once the first verified, the second was served the page's bytes
    /// for its own length unchecked (running into the pages after it), or the first's
    /// bytes under another checksum. Each cell is checked as what it says; an overflow
    /// run and an extent at one page are checked each as its own kind.
    #[test]
    fn a_verified_value_is_trusted_only_as_its_cell_described_it() {
        let value: Vec<u8> = (0..100u32).map(|i| i as u8).collect();
        let (mut file, crc) = file_with_extent(&value);
        file.resize(8 * 4096, 0xAB);
        let verified = Verified::default();
        assert_eq!(
            extent_value(&file, 2, 100, crc, Some(&verified)).unwrap(),
            &value[..]
        );
        for (len, sum) in [(9_000, 0xdead), (9_000, crc), (100, crc ^ 1), (99, crc)] {
            assert!(
                extent_value(&file, 2, len, sum, Some(&verified)).is_err(),
                "len {len} crc {sum:#x}"
            );
        }
        assert!(run_value(&file, 100, Some(&verified)).is_err());
        // A length past 2^31 never shares a tag with a short one.
        assert_ne!(
            ValueTag::extent(100, crc),
            ValueTag::extent((1 << 31) + 100, crc)
        );
        assert_ne!(ValueTag::run(100), ValueTag::run((1 << 31) + 100));
        verified.insert_value(5, ValueTag::run((1 << 31) + 100));
        assert!(!verified.contains_value(5, ValueTag::run((1 << 31) + 100)));
        // The verified cell still reads from the cache.
        assert_eq!(
            extent_value(&file, 2, 100, crc, Some(&verified)).unwrap(),
            &value[..]
        );
    }
}
