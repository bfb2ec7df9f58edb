//! Leaf and branch pages (`format-spec/btree.md`): parsing with bounds checks, and
//! reading cells. Searching them is in `page_search.rs`, building them in
//! `node_builder.rs`, the search's estimate in `estimate.rs`.

use crate::error::{Error, Result};
use crate::format::{LOG_PAGE_HEADER_LEN, PageKind, verify_sealed_page};
use crate::util::{u16_at, u32_at, u64_at};

/// Bytes of a version-3 (kind 5) leaf cell's fixed head.
pub const LEAF_CELL_HEAD: usize = 8;
/// Bytes of a compact leaf cell's fixed head.
pub const COMPACT_CELL_HEAD: usize = 4;
/// Bytes of the key prefix a compact leaf stores once.
pub const PREFIX_LEN: usize = 8;
/// A compact cell's `value_len` when the value is in an overflow run.
pub(super) const OVERFLOW_MARK: u16 = 0xFFFF;
/// Bytes after a compact overflow cell's key: the run's first page and the value's length.
pub(super) const OVERFLOW_BODY: usize = 12;
/// A compact cell's `value_len` when the value is in an overflow extent (version 6).
pub(super) const EXTENT_MARK: u16 = 0xFFFE;
/// Bytes after a compact extent cell's key: the extent's first page, the value's length
/// and its checksum (`format-spec/btree.md`, "Extent reference").
pub(super) const EXTENT_BODY: usize = 16;
/// Bytes of a branch cell's fixed head.
pub const BRANCH_CELL_HEAD: usize = 16;

/// Longest key the tree holds: a history key, 16 bytes before a table's longest key.
pub const TREE_KEY_MAX: usize = 16 + crate::types::MAX_KEY_LEN;
/// Offset of the cell offset array.
pub(super) const OFFSETS_AT: usize = LOG_PAGE_HEADER_LEN;
/// Bytes per CPU cache line (64 on the targets that matter; a wrong guess costs only
/// speed).
const CACHE_LINE: usize = 64;
/// Bytes of each cell a descending walk over large cells touches ahead
/// ([`NodeRef::touch_cells`]).
pub const TOUCH_CELL_MAX: usize = 4 * CACHE_LINE;

/// Cells larger than this on average make a search start at its estimate
/// ([`NodeRef::search_near`]).
const LARGE_CELL: usize = TOUCH_CELL_MAX;

/// Most pages a leaf may have (`format-spec/btree.md`).
pub const LEAF_PAGES_MAX: usize = 16;
/// Most bytes a multi-page leaf may have: its cell offsets are `u16`s.
pub const LEAF_BYTES_MAX: usize = 1 << 16;

/// Pages of the tree page whose first page is `first`, as its header states (unverified):
/// a compact or uniform leaf's `pages` byte when it is 2 or more, else 1.
#[inline]
pub fn node_pages(first: &[u8]) -> usize {
    match (first.get(4), first.get(19)) {
        (Some(&kind), Some(&n)) if Form::of(kind).prefixed() && n > 1 => usize::from(n),
        _ => 1,
    }
}

/// Largest value always stored inline in a leaf.
pub fn inline_value_max(page_size: u32) -> usize {
    page_size as usize / 4
}

/// Whether a value is stored inline: at most a quarter page, or key and value together
/// at most half a page (such a cell always fits a leaf page).
pub fn stored_inline(page_size: u32, key_len: usize, value_len: usize) -> bool {
    value_len <= inline_value_max(page_size) || key_len + value_len <= page_size as usize / 2
}

pub use super::key::TreeKey;
pub use super::node_builder::{
    EXTENT_CELL_BODY, NodeBuilder, OVERFLOW_CELL_BODY, branch_cell, branch_cell_into,
};
#[cfg(test)]
pub use super::node_builder::{v3_leaf_cell_inline, v3_leaf_cell_overflow};
pub use crate::types::cmp_keys;

/// A tree page's first read: its checksum and kind checked.
#[cold]
#[inline(never)]
fn verify_first_read(bytes: &[u8], form: Form, page: u64) -> Result<()> {
    let expected = match form {
        Form::Compact => PageKind::CompactLeaf,
        Form::Uniform => PageKind::UniformLeaf,
        Form::Leaf => PageKind::Leaf,
        Form::Branch => PageKind::Branch,
    };
    verify_sealed_page(bytes, expected, page)
}

/// A leaf value as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellValue<'a> {
    /// The value's bytes, in the page.
    Inline(&'a [u8]),
    /// The value lives in an overflow run starting at `page` (written by version 5 and
    /// earlier).
    Overflow {
        /// First page of the run.
        page: u64,
        /// The value's length.
        len: u32,
    },
    /// The value's bytes alone fill the pages of an overflow extent starting at `page`
    /// (version 6), checked by `crc`.
    Extent {
        /// First page of the extent.
        page: u64,
        /// The value's length.
        len: u32,
        /// CRC-32 of the page number (8 bytes, little-endian) and the value.
        crc: u32,
    },
}

/// [`NodeRef::header`]'s problem for a kind byte that is no tree page's.
const NOT_A_TREE_PAGE: &str = "not a tree page";

/// The error for a problem [`NodeRef::header`] found in page `page`.
#[cold]
#[inline(never)]
fn header_error(bytes: &[u8], page: u64, what: &'static str) -> Error {
    if what == NOT_A_TREE_PAGE {
        let kind = bytes.get(4).copied().unwrap_or(0);
        return Error::corrupted(
            page,
            format!("expected a tree page, found kind byte {kind}"),
        );
    }
    Error::corrupted(page, what.to_string())
}

/// What a tree page is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Branch,
    /// A version-3 leaf (kind 5): whole keys in its cells.
    Leaf,
    /// A compact leaf (kind 8): one key prefix (up to 8 bytes) for the page.
    Compact,
    /// A uniform leaf (kind 9): a compact leaf's prefix, and cells of one size without
    /// heads or offsets.
    Uniform,
}

impl Form {
    fn of(kind: u8) -> Form {
        if kind == PageKind::CompactLeaf as u8 {
            Form::Compact
        } else if kind == PageKind::UniformLeaf as u8 {
            Form::Uniform
        } else if kind == PageKind::Leaf as u8 {
            Form::Leaf
        } else {
            Form::Branch
        }
    }

    /// Whether pages of this form are compact or uniform leaves: a key prefix, and a
    /// page count (multi-page leaves) at byte 19.
    fn prefixed(self) -> bool {
        matches!(self, Form::Compact | Form::Uniform)
    }
}

/// What a cursor keeps of a leaf it parsed (and verified) when it entered it
/// ([`NodeRef::shape`]), to take the leaf again per cell without its header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeafShape {
    /// The leaf's bytes (its pages' bytes: more than one page for a multi-page leaf).
    len: usize,
    count: usize,
    form: Form,
    prefix_len: usize,
    rest_len: usize,
    stride: usize,
}

impl LeafShape {
    /// The shape of no leaf (a cursor not on one).
    pub(crate) const NONE: LeafShape = LeafShape {
        len: 0,
        count: 0,
        form: Form::Leaf,
        prefix_len: 0,
        rest_len: 0,
        stride: 0,
    };

    /// Cells in the leaf.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The bytes of leaf `page` in `file` (pages of `page_size` bytes), where the
    /// cursor found them when it entered the leaf.
    #[inline(always)]
    pub(crate) fn bytes<'a>(&self, file: &'a [u8], page: u64, page_size: u32) -> Result<&'a [u8]> {
        usize::try_from(page)
            .ok()
            .and_then(|p| p.checked_mul(page_size as usize))
            .and_then(|start| file.get(start..start.checked_add(self.len)?))
            .ok_or_else(|| Error::corrupted(page, "page lies past the end of the file"))
    }
}

/// A verified leaf or branch page.
pub struct NodeRef<'a> {
    bytes: &'a [u8],
    page: u64,
    count: usize,
    /// Branch: `c_0`; leaf: 0.
    first_child: u64,
    form: Form,
    /// A compact or uniform leaf's key prefix; empty otherwise.
    prefix: &'a [u8],
    /// A uniform leaf's bytes of each key after the prefix (0 for other pages).
    rest_len: usize,
    /// A uniform leaf's bytes per cell: `rest_len` and the value's length (0 for other
    /// pages).
    stride: usize,
}

impl<'a> NodeRef<'a> {
    /// Verifies and parses the page `page` (its full bytes).
    pub fn parse(bytes: &'a [u8], page: u64) -> Result<NodeRef<'a>> {
        Self::parse_cached(bytes, page, None)
    }

    /// Parses the page, verifying its checksum unless `verified` says it already was
    /// (and recording it there when it verifies). The structure is always checked.
    ///
    /// Inlined into the descents that call it per level: a parsed node returned through
    /// memory stalled the caller's first load of it.
    #[inline(always)]
    pub fn parse_cached(
        bytes: &'a [u8],
        page: u64,
        verified: Option<&crate::pager::Verified>,
    ) -> Result<NodeRef<'a>> {
        let trusted = verified.is_some_and(|v| v.contains(page));
        if !trusted {
            // The out-of-line check returns only its verdict, never the node: a node
            // returned from a call is written through a pointer to the caller's node,
            // which then lives in memory on the common path too (stored field by field,
            // reloaded wider: a stalled load per level).
            Self::check_first(bytes, page, verified)?;
        }
        // Its checksum and its cells were checked when it was first read, and it has
        // not been written since: only the header is parsed (and checked) again. The
        // header's problems are plain strings, so the node stays in registers.
        match Self::header(bytes, page) {
            Ok(node) => Ok(node),
            Err(what) => Err(header_error(bytes, page, what)),
        }
    }

    /// [`NodeRef::parse_cached`]'s checks of a page not yet verified: its checksum,
    /// header, cell offsets and key order; the page joins `verified` when they pass.
    #[inline(never)]
    fn check_first(
        bytes: &'a [u8],
        page: u64,
        verified: Option<&crate::pager::Verified>,
    ) -> Result<()> {
        let form = Form::of(bytes.get(4).copied().unwrap_or(0));
        verify_first_read(bytes, form, page)?;
        let node = Self::header(bytes, page).map_err(|what| header_error(bytes, page, what))?;
        let bad = |what: &str| Error::corrupted(page, what.to_string());
        let count = node.count;
        // Offsets strictly increasing, after the offset array, cells inside the page (a
        // uniform leaf has no offset array: its header check put its cells inside it).
        let cells_start = match node.form {
            Form::Uniform => OFFSETS_AT,
            _ => OFFSETS_AT + 2 * count,
        };
        let mut prev = cells_start;
        for i in 0..count {
            let off = node.offset(i)?;
            if off < prev {
                return Err(bad("cell offsets overlap or go backwards"));
            }
            let end = node.cell_end(off)?;
            if end > bytes.len() {
                return Err(bad("cell runs past the end of the page"));
            }
            prev = end;
        }
        // Keys (a branch's separators) strictly increasing: a search or a scan trusts
        // the order, and a page out of order would hand out keys outside a range. A
        // compact leaf's keys share its prefix, so their tails decide.
        // And no longer than a key can be: a checkpoint takes a leaf's first key for a
        // separator, and one too long for any branch was taken again into a new level
        // above, without end, until the disk was full.
        let mut last: Option<&[u8]> = None;
        for i in 0..count {
            let tail = node.tail(i)?;
            if last.is_some_and(|l| cmp_keys(l, tail).is_ge()) {
                return Err(bad("keys out of order"));
            }
            if node.prefix.len() + tail.len() > TREE_KEY_MAX {
                return Err(bad("a key longer than any key can be"));
            }
            last = Some(tail);
        }
        if let Some(v) = verified {
            v.insert(page);
        }
        Ok(())
    }

    /// The node's header fields, checked (a kind byte that is no tree page's is refused:
    /// an unverified page's checksum check refuses it first).
    #[inline(always)]
    fn header(bytes: &'a [u8], page: u64) -> std::result::Result<NodeRef<'a>, &'static str> {
        let kind = bytes.get(4).copied().unwrap_or(0);
        let form = Form::of(kind);
        if form == Form::Branch && kind != PageKind::Branch as u8 {
            return Err(NOT_A_TREE_PAGE);
        }
        let count = usize::from(u16_at(bytes, 16).ok_or("cut short")?);
        let prefixed = form.prefixed();
        let (rest_len, stride) = if form == Form::Uniform {
            // Bytes 20..24 hold the cells' two lengths; the cells must fit the leaf.
            let rest_len = usize::from(u16_at(bytes, 20).ok_or("cut short")?);
            let value_len = usize::from(u16_at(bytes, 22).ok_or("cut short")?);
            let stride = rest_len + value_len;
            let end = count
                .checked_mul(stride)
                .and_then(|b| b.checked_add(OFFSETS_AT));
            if count == 0 || end.is_none_or(|end| end > bytes.len()) {
                return Err("uniform cells do not fit the leaf");
            }
            (rest_len, stride)
        } else {
            if bytes.get(20..24).is_some_and(|r| r.iter().any(|&b| b != 0)) {
                return Err("reserved node header bytes are not zero");
            }
            (0, 0)
        };
        match bytes.get(19).copied().unwrap_or(0) {
            0 => {}
            _ if !prefixed => return Err("reserved node header bytes are not zero"),
            1 => return Err("a multi-page leaf of one page"),
            n if usize::from(n) > LEAF_PAGES_MAX || bytes.len() > LEAF_BYTES_MAX => {
                return Err("leaf longer than the limit");
            }
            _ => {}
        }
        let prefix_len = usize::from(bytes.get(18).copied().unwrap_or(0));
        if prefix_len > PREFIX_LEN || (!prefixed && prefix_len != 0) {
            return Err("bad key prefix length");
        }
        let first_child = u64_at(bytes, 24).ok_or("cut short")?;
        if form == Form::Leaf && first_child != 0 {
            return Err("leaf has a first child");
        }
        let (first_child, prefix) = match form {
            Form::Branch => (first_child, &[][..]),
            Form::Leaf => (0, &[][..]),
            Form::Compact | Form::Uniform => {
                if bytes
                    .get(24 + prefix_len..32)
                    .is_some_and(|r| r.iter().any(|&b| b != 0))
                {
                    return Err("bytes after the key prefix are not zero");
                }
                (0, bytes.get(24..24 + prefix_len).ok_or("cut short")?)
            }
        };
        Ok(NodeRef {
            bytes,
            page,
            count,
            first_child,
            form,
            prefix,
            rest_len,
            stride,
        })
    }

    /// Pages the node occupies: more than 1 for a multi-page leaf.
    pub fn pages(&self) -> u64 {
        node_pages(self.bytes) as u64
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.form != Form::Branch
    }

    /// Whether this is a compact leaf (its cells can be copied unchanged into another
    /// compact leaf of the same prefix; a uniform leaf's cells have no heads).
    pub fn is_compact(&self) -> bool {
        self.form == Form::Compact
    }

    /// Number of cells (leaf) or separators (branch).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The key prefix a compact leaf stores once (empty for other pages).
    pub fn prefix(&self) -> &'a [u8] {
        self.prefix
    }

    /// Where cell `i` starts: from the offset array, or a uniform leaf's arithmetic.
    #[inline]
    fn offset(&self, i: usize) -> Result<usize> {
        if self.form == Form::Uniform {
            self.offset_in::<true>(i)
        } else {
            self.offset_in::<false>(i)
        }
    }

    /// [`NodeRef::offset`] for a page known to be a uniform leaf (`UNIFORM`) or known
    /// not to be one.
    #[inline(always)]
    fn offset_in<const UNIFORM: bool>(&self, i: usize) -> Result<usize> {
        if UNIFORM {
            return Ok(OFFSETS_AT + i * self.stride);
        }
        u16_at(self.bytes, OFFSETS_AT + 2 * i)
            .map(usize::from)
            .ok_or_else(|| Error::corrupted(self.page, "cell offset array cut short"))
    }

    fn cell_end(&self, off: usize) -> Result<usize> {
        let bad = || Error::corrupted(self.page, "cell head cut short");
        let key_len = || u16_at(self.bytes, off).map(usize::from).ok_or_else(bad);
        match self.form {
            Form::Uniform => Ok(off + self.stride),
            Form::Compact => {
                let value_len = u16_at(self.bytes, off + 2).ok_or_else(bad)?;
                let body = match value_len {
                    OVERFLOW_MARK => OVERFLOW_BODY,
                    EXTENT_MARK => EXTENT_BODY,
                    _ => usize::from(value_len),
                };
                Ok(off + COMPACT_CELL_HEAD + key_len()? + body)
            }
            Form::Leaf => {
                let kind = *self.bytes.get(off + 2).ok_or_else(bad)?;
                let value_len = u32_at(self.bytes, off + 4).ok_or_else(bad)? as usize;
                let body = match kind {
                    0 => value_len,
                    1 => 8,
                    _ => {
                        return Err(Error::corrupted(
                            self.page,
                            format!("unknown value kind {kind}"),
                        ));
                    }
                };
                Ok(off + LEAF_CELL_HEAD + key_len()? + body)
            }
            Form::Branch => Ok(off + BRANCH_CELL_HEAD + key_len()?),
        }
    }

    /// Bytes before the key in one of this page's cells.
    #[inline(always)]
    fn cell_head(&self) -> usize {
        match self.form {
            Form::Compact => COMPACT_CELL_HEAD,
            Form::Leaf => LEAF_CELL_HEAD,
            Form::Branch => BRANCH_CELL_HEAD,
            Form::Uniform => 0,
        }
    }

    /// The bytes cell `i` holds of its key, behind a cell head of `head` bytes (a
    /// uniform leaf's cells have none, and one key length).
    #[inline(always)]
    fn tail_at(&self, i: usize, head: usize) -> Result<&'a [u8]> {
        if self.form == Form::Uniform {
            self.tail_in::<true>(i, 0)
        } else {
            self.tail_in::<false>(i, head)
        }
    }

    /// [`NodeRef::tail_at`] for a page known to be a uniform leaf (`UNIFORM`) or known
    /// not to be one: a search tells once, not at every probe.
    #[inline(always)]
    fn tail_in<const UNIFORM: bool>(&self, i: usize, head: usize) -> Result<&'a [u8]> {
        let off = self.offset_in::<UNIFORM>(i)?;
        let key_len = if UNIFORM {
            self.rest_len
        } else {
            usize::from(u16_at(self.bytes, off).unwrap_or(0))
        };
        self.bytes
            .get(off + head..off + head + key_len)
            .ok_or_else(|| Error::corrupted(self.page, "key runs past the page"))
    }

    /// The bytes cell `i` holds of its key: a compact leaf's key after the prefix, else
    /// the whole key (or separator).
    #[inline]
    fn tail(&self, i: usize) -> Result<&'a [u8]> {
        self.tail_at(i, self.cell_head())
    }

    /// Key `i` (leaf key or branch separator).
    #[inline]
    pub fn key(&self, i: usize) -> Result<TreeKey<'a>> {
        Ok(TreeKey::parts(self.prefix, self.tail(i)?))
    }

    /// Separator `i` of a branch, in one piece.
    pub fn separator(&self, i: usize) -> Result<&'a [u8]> {
        if self.form != Form::Branch {
            return Err(Error::corrupted(self.page, "a leaf has no separators"));
        }
        self.tail(i)
    }

    /// What a cursor keeps of this leaf to take it again per cell
    /// ([`NodeRef::parsed_leaf`]).
    pub(crate) fn shape(&self) -> LeafShape {
        LeafShape {
            len: self.bytes.len(),
            count: self.count,
            form: self.form,
            prefix_len: self.prefix.len(),
            rest_len: self.rest_len,
            stride: self.stride,
        }
    }

    /// A leaf page that [`NodeRef::parse_cached`] already accepted, taken again from its
    /// [`NodeRef::shape`] without reading or checking its header again: a reachable page
    /// never changes, so a cursor parses each leaf once when it enters it, not once per
    /// cell it hands out.
    #[inline(always)]
    pub(crate) fn parsed_leaf(bytes: &'a [u8], page: u64, shape: LeafShape) -> NodeRef<'a> {
        NodeRef {
            bytes,
            page,
            count: shape.count,
            first_child: 0,
            form: shape.form,
            prefix: bytes.get(24..24 + shape.prefix_len).unwrap_or(&[]),
            rest_len: shape.rest_len,
            stride: shape.stride,
        }
    }

    /// Key and value of leaf cell `i`, reading its offset and head once.
    #[inline(always)]
    pub fn entry(&self, i: usize) -> Result<(TreeKey<'a>, CellValue<'a>)> {
        let bad = || Error::corrupted(self.page, "cell runs past the page");
        let off = self.offset(i)?;
        if self.form == Form::Uniform {
            return self.uniform_entry(off);
        }
        let key_len = usize::from(u16_at(self.bytes, off).ok_or_else(bad)?);
        if self.form == Form::Compact {
            let value_len = u16_at(self.bytes, off + 2).ok_or_else(bad)?;
            let at = off + COMPACT_CELL_HEAD + key_len;
            let tail = self
                .bytes
                .get(off + COMPACT_CELL_HEAD..at)
                .ok_or_else(bad)?;
            let key = TreeKey::parts(self.prefix, tail);
            return Ok((key, self.compact_value(at, value_len)?));
        }
        let kind = *self.bytes.get(off + 2).ok_or_else(bad)?;
        let value_len = u32_at(self.bytes, off + 4).ok_or_else(bad)?;
        let at = off + LEAF_CELL_HEAD + key_len;
        let key = TreeKey::whole(self.bytes.get(off + LEAF_CELL_HEAD..at).ok_or_else(bad)?);
        let value = if kind == 0 {
            CellValue::Inline(
                self.bytes
                    .get(at..at + value_len as usize)
                    .ok_or_else(bad)?,
            )
        } else {
            CellValue::Overflow {
                page: u64_at(self.bytes, at).ok_or_else(bad)?,
                len: value_len,
            }
        };
        Ok((key, value))
    }

    /// Key and value of the uniform leaf cell at `off`.
    #[inline(always)]
    fn uniform_entry(&self, off: usize) -> Result<(TreeKey<'a>, CellValue<'a>)> {
        match (
            self.bytes.get(off..off + self.rest_len),
            self.bytes.get(off + self.rest_len..off + self.stride),
        ) {
            (Some(tail), Some(value)) => {
                Ok((TreeKey::parts(self.prefix, tail), CellValue::Inline(value)))
            }
            _ => Err(Error::corrupted(self.page, "cell runs past the page")),
        }
    }

    /// The value of a compact cell whose value (or overflow reference) starts at `at`.
    #[inline(always)]
    fn compact_value(&self, at: usize, value_len: u16) -> Result<CellValue<'a>> {
        let bad = || Error::corrupted(self.page, "value runs past the page");
        if value_len == OVERFLOW_MARK {
            Ok(CellValue::Overflow {
                page: u64_at(self.bytes, at).ok_or_else(bad)?,
                len: u32_at(self.bytes, at + 8).ok_or_else(bad)?,
            })
        } else if value_len == EXTENT_MARK {
            Ok(CellValue::Extent {
                page: u64_at(self.bytes, at).ok_or_else(bad)?,
                len: u32_at(self.bytes, at + 8).ok_or_else(bad)?,
                crc: u32_at(self.bytes, at + 12).ok_or_else(bad)?,
            })
        } else {
            Ok(CellValue::Inline(
                self.bytes
                    .get(at..at + usize::from(value_len))
                    .ok_or_else(bad)?,
            ))
        }
    }

    /// Reads one byte of every cache line where one of the cells `from..to` starts (its
    /// head and the start of its key: what a walk over the cells reads). The loads are
    /// independent, so their misses overlap, where a walk that meets each cell's miss in
    /// turn waits for them one by one. With `values`, for a walk in descending order
    /// (which the hardware prefetcher does not follow), the cells' lines up to
    /// [`TOUCH_CELL_MAX`] bytes into each: every line of small cells, values included, so
    /// a reader of the values does not meet their misses in turn; the head, key and first
    /// value bytes of large ones, whose later lines a reader reads in ascending order and
    /// a walk that reads no values does not read at all.
    pub fn touch_cells(&self, from: usize, to: usize, values: bool) {
        let mut acc = 0u8;
        let span = match (self.offset(from), to.checked_sub(1).map(|l| self.offset(l))) {
            (Ok(start), Some(Ok(last))) => Some((start, self.cell_end(last).unwrap_or(start))),
            _ => None,
        };
        match span {
            Some((start, end))
                if values && end.saturating_sub(start) <= TOUCH_CELL_MAX * (to - from) =>
            {
                for b in self
                    .bytes
                    .get(start..end)
                    .unwrap_or(&[])
                    .iter()
                    .step_by(CACHE_LINE)
                {
                    acc ^= *b;
                }
            }
            _ => {
                let reach = if values { TOUCH_CELL_MAX } else { 1 };
                let mut next_line = 0;
                for i in from..to {
                    let Ok(off) = self.offset(i) else { break };
                    let mut at = off.max(next_line);
                    while at < off + reach {
                        acc ^= self.bytes.get(at).copied().unwrap_or(0);
                        at = (at / CACHE_LINE + 1) * CACHE_LINE;
                    }
                    next_line = at;
                }
            }
        }
        std::hint::black_box(acc);
    }

    /// Value of leaf cell `i`. Inlined into the point read that calls it: a value
    /// returned from a call comes back through memory, reloaded wider than it was
    /// stored (a stalled load per read).
    #[inline(always)]
    pub fn value(&self, i: usize) -> Result<CellValue<'a>> {
        if self.form == Form::Uniform {
            return self.uniform_entry(self.offset(i)?).map(|(_, v)| v);
        }
        if self.form == Form::Compact {
            let off = self.offset(i)?;
            let key_len = usize::from(u16_at(self.bytes, off).unwrap_or(0));
            let value_len = u16_at(self.bytes, off + 2).unwrap_or(0);
            return self.compact_value(off + COMPACT_CELL_HEAD + key_len, value_len);
        }
        self.entry(i).map(|(_, v)| v)
    }

    /// The raw bytes of cell `i` (to copy it unchanged into a new page; a uniform leaf's
    /// cells have no heads, so they are never copied raw).
    pub fn raw_cell(&self, i: usize) -> Result<&'a [u8]> {
        if self.form == Form::Uniform {
            return Err(Error::corrupted(
                self.page,
                "a uniform leaf's cells are not copied raw",
            ));
        }
        let off = self.offset(i)?;
        let end = self.cell_end(off)?;
        self.bytes
            .get(off..end)
            .ok_or_else(|| Error::corrupted(self.page, "cell runs past the page"))
    }

    /// Child `i` of a branch, `0..=count`.
    pub fn child(&self, i: usize) -> Result<u64> {
        if i == 0 {
            return Ok(self.first_child);
        }
        let off = self.offset(i - 1)?;
        u64_at(self.bytes, off + 8).ok_or_else(|| Error::corrupted(self.page, "child cut short"))
    }
}

#[path = "page_search.rs"]
mod search;

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
