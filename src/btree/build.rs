//! Building the next tree at a checkpoint.
//!
//! The old tree's leaves are listed in key order from its branches, each with the key
//! range they give it, and only the leaves a rebuild rewrites are read. A leaf whose
//! range holds no change (and no dropped table) is kept as it is; runs of changed
//! leaves are merged with their changes and packed into new leaves. All branch levels
//! are rebuilt over the resulting leaves as they come: each level holds the one node it
//! is filling, and a full node is written and becomes a child of the level above (the
//! new leaves are not listed in memory; the old ones are, a page number and a
//! separator borrowed from the mapping each). New pages come
//! from the pager; pages of the old tree that the new one no longer uses are returned
//! in `freed` (to be freed once the new header is durable and no reader walks the
//! old tree).

use super::old_tree::{LeafList, NodePages, leaves_of};
use super::page::{
    CellValue, EXTENT_CELL_BODY, LEAF_PAGES_MAX, NodeBuilder, NodeRef, OVERFLOW_CELL_BODY, TreeKey,
    branch_cell, branch_cell_into, stored_inline,
};
use super::page_bytes;
use super::run::{encode_extent_into, extent_checksum, extent_pages};
use crate::error::{Error, Result};
use crate::pager::Pager;
use crate::storage::Storage;
use std::sync::Arc;

/// One change to fold: a composite key and its new value (`None` deletes).
pub type Change = (Vec<u8>, Option<Arc<[u8]>>);

/// The changes a rebuild applies, in key order, one per composite key: read one at a
/// time, so that a large fold need not hold them all as [`Change`]s.
/// A change lent by a [`ChangeSource`]: a composite key and its new value (`None`: a
/// delete).
pub type ChangeRef<'c> = (&'c [u8], Option<&'c [u8]>);

pub trait ChangeSource {
    /// The next change (composite key, new value or `None` to delete), not consumed; an
    /// error making it (a history entry that does not decode) ends the rebuild.
    fn peek(&mut self) -> Result<Option<ChangeRef<'_>>>;
    /// Moves past the change [`ChangeSource::peek`] gave.
    fn advance(&mut self);
}

/// A slice of [`Change`]s as a [`ChangeSource`].
#[cfg(test)]
pub struct SliceChanges<'a> {
    changes: &'a [Change],
    at: usize,
}

#[cfg(test)]
impl<'a> SliceChanges<'a> {
    /// The changes of `changes`, from the first.
    pub fn new(changes: &'a [Change]) -> Self {
        SliceChanges { changes, at: 0 }
    }
}

#[cfg(test)]
impl ChangeSource for SliceChanges<'_> {
    fn peek(&mut self) -> Result<Option<ChangeRef<'_>>> {
        Ok(self
            .changes
            .get(self.at)
            .map(|(k, v)| (k.as_slice(), v.as_deref())))
    }

    fn advance(&mut self) {
        self.at += 1;
    }
}

/// A put of every key of `model`, in key order: the changes that build it from nothing.
#[cfg(test)]
pub fn puts(model: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<Change> {
    model
        .iter()
        .map(|(k, v)| (k.clone(), Some(Arc::from(&v[..]))))
        .collect()
}

/// What a rebuild produced.
pub struct Built {
    /// The new root (`0` = empty tree).
    pub root: u64,
    /// Pages the new tree uses that the old one did not.
    pub new_pages: Vec<u64>,
    /// Pages of the old tree the new one does not use.
    pub freed: Vec<u64>,
}

struct Builder<'a> {
    storage: &'a dyn Storage,
    pager: &'a Pager,
    page_size: u32,
    file: &'a [u8],
    new_pages: Vec<u64>,
    freed: Vec<u64>,
    /// The branch levels being built, the leaves' parents first.
    levels: Vec<Level>,
    pending: NodeBuilder,
    pending_first: Option<Vec<u8>>,
    /// Bytes written since the last [`Storage::write_behind`].
    unflushed: usize,
    /// New pages written but not yet handed to the storage: consecutive pages gathered
    /// into one write of up to [`COALESCE_BYTES`], starting at `coalesced_at`.
    coalesced: Vec<u8>,
    coalesced_at: u64,
    /// A branch cell being put together ([`Builder::add_leaf`]), its room kept.
    cell: Vec<u8>,
    /// Values whose pages reach this page are copied to new pages (`u64::MAX`: none).
    relocate_from: u64,
    /// The fewest pages a relocation found no run for below `relocate_from`: the free
    /// pages there only get fewer during a build, so no larger value is tried again.
    relocate_failed: u64,
}

/// Bytes of consecutive new pages gathered into one write: a bulk load writes its leaves
/// and overflow runs in allocation order, mostly one after another, and one system call
/// per 4 KiB page cost more than the copy into this buffer (small enough to stay in a
/// core's second-level cache).
const COALESCE_BYTES: usize = 256 << 10;

/// One branch level while a rebuild streams children into it: the node being filled, the
/// separator of its first child, and the children the level has taken in all. A rebuild
/// holds one node per level, never a list of every leaf.
struct Level {
    node: NodeBuilder,
    first: Option<Vec<u8>>,
    children: u64,
}

/// Bytes a rebuild writes between two [`Storage::write_behind`] calls: what it leaves
/// dirty for a concurrent group commit's `fdatasync` stays about twice this.
const WRITE_BEHIND_BYTES: usize = 4 << 20;

impl Builder<'_> {
    fn alloc_write(
        &mut self,
        bytes_for: impl FnOnce(u64) -> Result<Vec<u8>>,
        pages: u64,
    ) -> Result<u64> {
        let page = self.alloc(pages)?;
        let bytes = bytes_for(page)?;
        self.write_new(page, pages, &bytes)?;
        Ok(page)
    }

    /// `pages` free pages in a row, counted among the build's new pages at once (a
    /// build that fails hands them all back, written or not).
    fn alloc(&mut self, pages: u64) -> Result<u64> {
        let page = if pages == 1 {
            self.pager.alloc()?
        } else {
            self.pager.alloc_run(pages)?
        };
        self.new_pages.extend(page..page + pages);
        Ok(page)
    }

    /// Writes the `pages` pages just allocated at `page`: gathered with the new pages
    /// just before them when they follow on, else after those are written.
    fn write_new(&mut self, page: u64, pages: u64, bytes: &[u8]) -> Result<()> {
        self.write_new_with(page, pages, |buf| buf.extend_from_slice(bytes))
    }

    /// [`Builder::write_new`] of the bytes `encode` appends to the buffer (an overflow
    /// run is encoded straight into it).
    fn write_new_with(
        &mut self,
        page: u64,
        pages: u64,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        let len = pages as usize * self.page_size as usize;
        let follows = self.pager.offset_of(self.coalesced_at) + self.coalesced.len() as u64
            == self.pager.offset_of(page);
        if !self.coalesced.is_empty() && (!follows || self.coalesced.len() + len > COALESCE_BYTES) {
            self.write_coalesced()?;
        }
        if self.coalesced.is_empty() {
            self.coalesced_at = page;
        }
        encode(&mut self.coalesced);
        if self.coalesced.len() >= COALESCE_BYTES {
            self.write_coalesced()?;
        }
        Ok(())
    }

    /// Hands the gathered pages to the storage (see [`Builder::write_new`]); every
    /// page of the build is written once this returns after its last `write_new`.
    fn write_coalesced(&mut self) -> Result<()> {
        if self.coalesced.is_empty() {
            return Ok(());
        }
        self.storage
            .write_at(self.pager.offset_of(self.coalesced_at), &self.coalesced)?;
        self.unflushed += self.coalesced.len();
        if self.coalesced.capacity() > 2 * COALESCE_BYTES {
            // One run of a very large value grew it: not kept for the rest of the build.
            self.coalesced = Vec::new();
        } else {
            self.coalesced.clear();
        }
        if self.unflushed >= WRITE_BEHIND_BYTES {
            self.storage.write_behind();
            self.unflushed = 0;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending.count() == 0 {
            return Ok(());
        }
        let builder = std::mem::replace(&mut self.pending, NodeBuilder::new(true, self.page_size));
        let page = self.alloc_write(|p| builder.finish(p), builder.pages())?;
        let first = self.pending_first.take().unwrap_or_default();
        self.add_child(0, first, page)
    }

    /// [`Builder::add_child`] of a leaf at level 0, copying nothing when the cell fits
    /// the node being filled (the common case: a rebuild adds every kept leaf).
    fn add_leaf(&mut self, separator: &[u8], child: u64) -> Result<()> {
        let Builder { levels, cell, .. } = self;
        if let Some(level) = levels.first_mut().filter(|l| l.first.is_some()) {
            cell.clear();
            branch_cell_into(cell, separator, child);
            if level.node.fits(cell.len()) {
                level.children += 1;
                level.node.push_raw(cell);
                return Ok(());
            }
        }
        self.add_child(0, separator.to_vec(), child)
    }

    /// Adds `child`, whose keys start at `separator`, to the branch level at `depth`
    /// (0: the leaves' parents); a full node is written and added to the level above.
    fn add_child(
        &mut self,
        mut depth: usize,
        mut separator: Vec<u8>,
        mut child: u64,
    ) -> Result<()> {
        loop {
            // Never reached by keys a read lets through (`NodeRef`'s first read refuses
            // one too long for any branch, which went up a level at a time for ever).
            if depth >= super::DEPTH_MAX {
                return Err(crate::error::Error::corrupted(
                    child,
                    "a tree built deeper than the limit",
                ));
            }
            if self.levels.len() <= depth {
                self.levels.push(Level {
                    node: NodeBuilder::new(false, self.page_size),
                    first: None,
                    children: 0,
                });
            }
            let page_size = self.page_size;
            let Some(level) = self.levels.get_mut(depth) else {
                return Ok(());
            };
            level.children += 1;
            if level.first.is_none() {
                level.node.set_first_child(child);
                level.first = Some(separator);
                return Ok(());
            }
            let cell = branch_cell(&separator, child);
            if level.node.fits(cell.len()) {
                level.node.push_raw(&cell);
                return Ok(());
            }
            let full = std::mem::replace(&mut level.node, NodeBuilder::new(false, page_size));
            let full_first = level.first.replace(separator).unwrap_or_default();
            level.node.set_first_child(child);
            let page = self.alloc_write(|p| full.finish(p), 1)?;
            depth += 1;
            separator = full_first;
            child = page;
        }
    }

    /// Writes the nodes still being filled, level by level, and returns the root: the
    /// only child of the first level that took one child in all (`0`: no leaves).
    fn finish_levels(&mut self) -> Result<u64> {
        let mut depth = 0;
        loop {
            let page_size = self.page_size;
            let Some(level) = self.levels.get_mut(depth) else {
                return Ok(0);
            };
            if level.children <= 1 {
                return Ok(level.node.first_child());
            }
            let node = std::mem::replace(&mut level.node, NodeBuilder::new(false, page_size));
            let first = level.first.take().unwrap_or_default();
            let page = self.alloc_write(|p| node.finish(p), 1)?;
            self.add_child(depth + 1, first, page)?;
            depth += 1;
        }
    }

    /// Makes room in the pending leaf for a cell with key `key` and `body` bytes after
    /// it (`inline`: an inline value of `body` bytes), starting a new leaf when
    /// [`NodeBuilder::admit`] says so.
    fn room_for(&mut self, key: &TreeKey<'_>, body: usize, inline: bool) -> Result<()> {
        let admit = |b: &mut NodeBuilder| {
            if inline {
                b.admit_inline(key, body)
            } else {
                b.admit(key, body)
            }
        };
        if !admit(&mut self.pending) {
            self.flush_pending()?;
            admit(&mut self.pending);
        }
        if self.pending.count() == 0 {
            self.pending_first = Some(key.to_vec());
        }
        Ok(())
    }

    /// Copies cell `j` of the old leaf `node` (key `key`, value `value`): unchanged from
    /// a compact leaf with the pending leaf's prefix, else re-encoded.
    fn copy_cell(
        &mut self,
        node: &NodeRef<'_>,
        j: usize,
        key: &TreeKey<'_>,
        value: CellValue<'_>,
    ) -> Result<()> {
        if self.relocate_from != u64::MAX
            && value_end(self.file, self.page_size, value)? > self.relocate_from
            && let Some(moved) = self.relocate_value(key, value)?
        {
            return Ok(moved);
        }
        let (body, inline) = match value {
            CellValue::Inline(v) => (v.len(), true),
            CellValue::Overflow { .. } => (OVERFLOW_CELL_BODY, false),
            CellValue::Extent { .. } => (EXTENT_CELL_BODY, false),
        };
        self.room_for(key, body, inline)?;
        if node.is_compact() && node.prefix() == self.pending.prefix() {
            self.pending.push_raw(node.raw_cell(j)?);
            return Ok(());
        }
        match value {
            CellValue::Inline(v) => self.pending.push_leaf_inline(key, v),
            CellValue::Overflow { page, len } => self.pending.push_leaf_overflow(key, page, len),
            CellValue::Extent { page, len, crc } => {
                self.pending.push_leaf_extent(key, page, len, crc);
            }
        }
        Ok(())
    }

    /// Copies a value in the file's tail (`compact`) to free pages below the mark, so
    /// the tail can be cut; its checksum is checked as it is read. `None` (nothing done)
    /// when no run of free pages below the mark holds it: moved elsewhere, it could
    /// land in the tail again or grow the file.
    fn relocate_value(&mut self, key: &TreeKey<'_>, value: CellValue<'_>) -> Result<Option<()>> {
        let ps = self.page_size;
        let value_len = match value {
            CellValue::Inline(_) => return Ok(None),
            CellValue::Extent { len, .. } | CellValue::Overflow { len, .. } => len as usize,
        };
        let pages = extent_pages(ps, value_len);
        // An out-of-line value of no bytes (a crafted cell: the writer stores such a
        // value inline) is left for the read below it to refuse: a run of no pages
        // still takes one page, which the build would not give back.
        if pages == 0 || pages >= self.relocate_failed {
            return Ok(None);
        }
        // The run first (a value that cannot move is not read); once taken, its pages
        // are the build's, given back if the read below fails.
        let Some(first) = self.pager.alloc_run_below(pages, self.relocate_from) else {
            self.relocate_failed = pages;
            return Ok(None);
        };
        self.new_pages.extend(first..first + pages);
        let bytes = super::value_bytes_checked(self.file, ps, value, None)?;
        if bytes.len() != value_len {
            return Err(Error::corrupted(
                first,
                "an overflow value's length does not match its cell",
            ));
        }
        let whole = key.to_vec();
        self.free_value(value)?;
        let len = u32::try_from(bytes.len()).map_err(|_| Error::corrupted(0, "value too large"))?;
        self.write_new_with(first, pages, |buf| encode_extent_into(buf, ps, bytes))?;
        let tkey = TreeKey::whole(&whole);
        self.room_for(&tkey, EXTENT_CELL_BODY, false)?;
        self.pending
            .push_leaf_extent(&tkey, first, len, extent_checksum(first, bytes));
        Ok(Some(()))
    }

    fn push_value(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let tkey = TreeKey::whole(key);
        if stored_inline(self.page_size, key.len(), value.len()) {
            self.room_for(&tkey, value.len(), true)?;
            self.pending.push_leaf_inline(&tkey, value);
            return Ok(());
        }
        let ps = self.page_size;
        let len = u32::try_from(value.len()).map_err(|_| Error::corrupted(0, "value too large"))?;
        let pages = extent_pages(ps, value.len());
        let first = self.alloc(pages)?;
        self.write_new_with(first, pages, |buf| encode_extent_into(buf, ps, value))?;
        self.room_for(&tkey, EXTENT_CELL_BODY, false)?;
        self.pending
            .push_leaf_extent(&tkey, first, len, extent_checksum(first, value));
        Ok(())
    }

    fn free_value(&mut self, v: CellValue<'_>) -> Result<()> {
        match v {
            CellValue::Inline(_) => {}
            CellValue::Overflow { page, len } => {
                // Checked against its cell as a read checks it (`btree.md`: the run's
                // length is the cell's, its entry count zero): a run that does not match
                // is freed by no claim of its own.
                let (r, _) = super::overflow_run(self.file, self.page_size, page, len)?;
                // As for an extent below: never the headers, never past the pages ever
                // handed out (a hostile run there checks out by itself).
                let first_data = crate::format::first_data_page(self.page_size);
                let end = page
                    .checked_add(r.pages)
                    .filter(|&end| page >= first_data && end <= self.pager.high_water())
                    .ok_or_else(|| {
                        Error::corrupted(page, "overflow run outside the file's data pages")
                    })?;
                self.freed.extend(page..end);
            }
            CellValue::Extent { page, len, .. } => {
                // The cell comes from a checksummed leaf, but its extent is only read
                // (and checked) when its value is: one outside the file is not freed.
                // Nor is one over the file's headers (a hostile cell): freed, the next
                // checkpoint would write a leaf over a header copy; nor one past the
                // pages ever handed out (the file's unused tail).
                let file_pages = (self.file.len() as u64 / u64::from(self.page_size))
                    .min(self.pager.high_water());
                let first_data = crate::format::first_data_page(self.page_size);
                let end = page
                    .checked_add(extent_pages(self.page_size, len as usize))
                    .filter(|&end| page >= first_data && end <= file_pages)
                    .ok_or_else(|| {
                        Error::corrupted(page, "overflow extent outside the file's data pages")
                    })?;
                self.freed.extend(page..end);
            }
        }
        Ok(())
    }
}

/// Whether the leaf at `leaf` has a page at or above `mark` (a multi-page leaf may start
/// below it and reach past it). Reads the leaf's header only when it starts within
/// [`LEAF_PAGES_MAX`] pages below the mark.
pub(super) fn reaches(file: &[u8], page_size: u32, leaf: u64, mark: u64) -> Result<bool> {
    if leaf >= mark {
        return Ok(true);
    }
    if leaf.saturating_add(LEAF_PAGES_MAX as u64) <= mark {
        return Ok(false);
    }
    let pages = page_bytes(file, leaf, page_size)?.len() / page_size as usize;
    Ok(leaf + pages as u64 > mark)
}

/// The page after the last page of `v`'s own pages (0 for an inline value).
fn value_end(file: &[u8], page_size: u32, v: CellValue<'_>) -> Result<u64> {
    Ok(match v {
        CellValue::Inline(_) => 0,
        CellValue::Extent { page, len, .. } => {
            page.saturating_add(extent_pages(page_size, len as usize))
        }
        CellValue::Overflow { page, len } => {
            let (r, _) = super::overflow_run(file, page_size, page, len)?;
            page.saturating_add(r.pages)
        }
    })
}

/// Whether a value of `leaf` (not the leaf itself) has a page at or above `mark`: with
/// `compact`'s mark, the leaf is rewritten and the value copied out of the tail. No
/// leaf is read when nothing is relocated (`u64::MAX`).
fn values_reach(file: &[u8], page_size: u32, leaf: u64, mark: u64) -> Result<bool> {
    if mark == u64::MAX {
        return Ok(false);
    }
    let node = NodeRef::parse(page_bytes(file, leaf, page_size)?, leaf)?;
    for j in 0..node.count() {
        let (_, value) = node.entry(j)?;
        if value_end(file, page_size, value)? > mark {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether a table listed in `dropped` owns `key`.
fn dropped_owner(dropped: &[[u8; 8]], key: &TreeKey<'_>) -> bool {
    !dropped.is_empty() && key.table_bytes().is_some_and(|p| dropped.contains(&p))
}

/// Whether the range `[low, high)` may hold a key of a dropped table.
fn range_meets_dropped(dropped: &[[u8; 8]], low: Option<&[u8]>, high: Option<&[u8]>) -> bool {
    dropped.iter().any(|d| {
        let start = d.as_slice();
        let next = u64::from_be_bytes(*d).checked_add(1).map(u64::to_be_bytes);
        let ends_after_low = match (low, next) {
            (Some(l), Some(n)) => n.as_slice() > l,
            _ => true,
        };
        let starts_before_high = high.is_none_or(|h| start < h);
        ends_after_low && starts_before_high
    })
}

/// Builds the tree that is the old tree at `root` with `changes` (sorted by key, one
/// per key) applied and every key of the `dropped` tables (8-byte BE prefixes) removed.
/// Leaves at or above page `relocate_from` are rewritten even when unchanged, into the
/// lowest free pages (`compact` moves the tree out of the file's tail this way;
/// `u64::MAX` moves nothing).
#[cfg(test)]
pub fn rebuild(
    storage: &dyn Storage,
    pager: &Pager,
    file: &[u8],
    root: u64,
    changes: &[Change],
    dropped: &[[u8; 8]],
    relocate_from: u64,
) -> Result<Built> {
    let mut source = SliceChanges::new(changes);
    rebuild_from(
        storage,
        pager,
        file,
        root,
        &mut source,
        dropped,
        relocate_from,
    )
}

/// [`rebuild`] with its changes read from a [`ChangeSource`].
pub fn rebuild_from(
    storage: &dyn Storage,
    pager: &Pager,
    file: &[u8],
    root: u64,
    changes: &mut dyn ChangeSource,
    dropped: &[[u8; 8]],
    relocate_from: u64,
) -> Result<Built> {
    let page_size = pager.page_size();
    let data_pages = crate::format::first_data_page(page_size)..pager.high_water();
    let old = leaves_of(file, page_size, root, data_pages.clone())?;
    let mut b = Builder {
        storage,
        pager,
        page_size,
        file,
        new_pages: Vec::new(),
        freed: old.branches,
        levels: Vec::new(),
        pending: NodeBuilder::new(true, page_size),
        pending_first: None,
        unflushed: 0,
        coalesced: Vec::new(),
        coalesced_at: 0,
        cell: Vec::new(),
        relocate_from,
        relocate_failed: u64::MAX,
    };
    let old_tree = OldNodes {
        leaves: &old.leaves,
        nodes: &old.nodes,
        data_end: data_pages.end,
    };
    match merge_into(&mut b, &old_tree, changes, dropped, relocate_from) {
        Ok(root) => Ok(Built {
            root,
            new_pages: b.new_pages,
            freed: b.freed,
        }),
        Err(e) => {
            // Never reachable from a header: the pages the build took are free again (a
            // failed checkpoint on a nearly full disk would otherwise leak them until a
            // reopen, and each retry take more).
            pager.free(std::mem::take(&mut b.new_pages));
            Err(e)
        }
    }
}

/// What [`merge_into`] needs of the old tree.
struct OldNodes<'o> {
    leaves: &'o LeafList<'o>,
    /// Every node's first page.
    nodes: &'o NodePages,
    /// The end of the file's data pages handed out.
    data_end: u64,
}

/// [`rebuild_from`]'s merge of the old leaves with the changes into `b`; returns the
/// new root.
fn merge_into(
    b: &mut Builder<'_>,
    old: &OldNodes<'_>,
    changes: &mut dyn ChangeSource,
    dropped: &[[u8; 8]],
    relocate_from: u64,
) -> Result<u64> {
    let (file, page_size) = (b.file, b.page_size);
    let old_leaves = old.leaves;
    for (i, (low, leaf)) in old_leaves.iter().enumerate() {
        let high = old_leaves.get(i + 1).and_then(|&(l, _)| l);
        let below_high = |k: &[u8]| high.is_none_or(|h| k < h);
        let has_changes = changes.peek()?.is_some_and(|(k, _)| below_high(k));
        let touched = has_changes
            || reaches(file, page_size, *leaf, relocate_from)?
            || values_reach(file, page_size, *leaf, relocate_from)?
            || range_meets_dropped(dropped, low.as_deref(), high);
        if !touched {
            b.flush_pending()?;
            b.add_leaf(low.unwrap_or_default(), *leaf)?;
            continue;
        }
        let node = NodeRef::parse(page_bytes(file, *leaf, page_size)?, *leaf)?;
        // Listed from its branch without a read ([`leaves_of`]): a leaf, its pages the
        // file's and no other node's. A multi-page leaf over another node would be
        // freed with it while the new tree keeps that node.
        if !node.is_leaf() {
            return Err(Error::corrupted(
                *leaf,
                "a branch at the tree's leaf level (leaves at different depths)",
            ));
        }
        let end = leaf.saturating_add(node.pages().max(1));
        if end > old.data_end {
            return Err(Error::corrupted(
                *leaf,
                "tree page outside the file's data pages",
            ));
        }
        if (leaf + 1..end).any(|p| old.nodes.contains(p)) {
            return Err(Error::corrupted(*leaf, "tree page reachable twice"));
        }
        // A leaf of another range at this page (a lost or misdirected write) is refused,
        // as a read and a scan refuse it: merged, its keys would take the separator of
        // their own first key, and reads of this range and the one before would find
        // them absent without an error.
        super::check_within(&node, *leaf, low.as_deref(), high)?;
        b.freed.extend(*leaf..*leaf + node.pages());
        let mut j = 0usize;
        let n = node.count();
        // Merge the leaf's cells with the changes in its range.
        loop {
            let cell = if j < n { Some(node.entry(j)?) } else { None };
            let change = changes.peek()?.filter(|(k, _)| below_high(k));
            let order = match (&cell, change) {
                (Some((k, _)), Some((ck, _))) => k.cmp_bytes(ck),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => break,
            };
            if let Some((k, value)) = cell.filter(|_| order.is_le()) {
                // The cell goes: replaced by its change, or its table dropped.
                if order.is_eq() || dropped_owner(dropped, &k) {
                    b.free_value(value)?;
                } else {
                    b.copy_cell(&node, j, &k, value)?;
                }
                j += 1;
            }
            if let Some((ck, cv)) = change.filter(|_| order.is_ge()) {
                if let Some(v) = cv.filter(|_| !dropped_owner(dropped, &TreeKey::whole(ck))) {
                    b.push_value(ck, v)?;
                }
                changes.advance();
            }
        }
    }
    // An empty old tree: everything is new.
    if old_leaves.is_empty() {
        while let Some((ck, cv)) = changes.peek()? {
            if let Some(v) = cv.filter(|_| !dropped_owner(dropped, &TreeKey::whole(ck))) {
                b.push_value(ck, v)?;
            }
            changes.advance();
        }
    }
    b.flush_pending()?;
    let root = b.finish_levels()?;
    b.write_coalesced()?;
    Ok(root)
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "build_regression_tests.rs"]
mod regression;
