//! Building leaf and branch pages (`format-spec/btree.md`): cells accumulated for one
//! page, then sealed.

use super::estimate::common_prefix;
use super::page::BRANCH_CELL_HEAD;
#[cfg(test)]
use super::page::LEAF_CELL_HEAD;
use super::page::{
    COMPACT_CELL_HEAD, EXTENT_BODY, EXTENT_MARK, LEAF_BYTES_MAX, OFFSETS_AT, OVERFLOW_BODY,
    OVERFLOW_MARK, PREFIX_LEN, TreeKey,
};
use crate::error::{Error, Result};
use crate::format::{PageKind, seal_page};
use crate::util::u16_at;

/// Accumulates cells for one page: a branch, or a leaf whose keys share its prefix,
/// written as a uniform leaf when its cells all hold inline values of one key length
/// (after the prefix) and one value length, else as a compact leaf. Cells are kept in
/// the compact encoding until the page is finished.
pub struct NodeBuilder {
    leaf: bool,
    page_size: usize,
    /// Pages the node may fill: 1, or more for a leaf of large cells grown by
    /// [`NodeBuilder::admit`] (a multi-page leaf).
    room_pages: usize,
    /// Where each cell starts in `cells`. 32 bits: a uniform leaf is counted at its
    /// uniform size, so the compact encoding it is staged in may pass 65,535 bytes (64
    /// KiB pages of small cells).
    offsets: Vec<u32>,
    cells: Vec<u8>,
    first_child: u64,
    /// A leaf's key prefix (its first `prefix_len` bytes; the rest zero), set by its
    /// first cell and shortened by [`NodeBuilder::admit`].
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// A leaf's `(rest_len, value_len)` while every cell so far is inline with these
    /// lengths (it is then written as a uniform leaf); `None` when it has no cells or a
    /// cell broke the uniformity.
    uniform: Option<(usize, usize)>,
}

impl NodeBuilder {
    /// An empty leaf (`leaf`) or branch builder.
    pub fn new(leaf: bool, page_size: u32) -> NodeBuilder {
        NodeBuilder {
            leaf,
            page_size: page_size as usize,
            room_pages: 1,
            offsets: Vec::new(),
            cells: Vec::new(),
            first_child: 0,
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            uniform: None,
        }
    }

    /// Cells added.
    pub fn count(&self) -> usize {
        self.offsets.len()
    }

    /// Bytes the node takes in the form it would be written in now.
    fn used(&self) -> usize {
        match self.uniform {
            Some((rest, value)) if self.leaf => OFFSETS_AT + self.offsets.len() * (rest + value),
            _ => self.compact_used(),
        }
    }

    /// Bytes the node takes as a compact leaf (or a branch).
    fn compact_used(&self) -> usize {
        OFFSETS_AT + 2 * self.offsets.len() + self.cells.len()
    }

    /// Bytes the leaf takes once a cell of `rest` key bytes (after the prefix) and `body`
    /// bytes after them joins it, after its prefix gives back `grow` bytes to each cell
    /// it has; `inline`: `body` is an inline value (the cell may keep the leaf uniform).
    fn used_with(&self, rest: usize, body: usize, inline: bool, grow: usize) -> usize {
        let count = self.offsets.len();
        let stays_uniform = inline
            && (count == 0 || self.uniform.map(|(r, v)| (r + grow, v)) == Some((rest, body)));
        if stays_uniform {
            OFFSETS_AT + (count + 1) * (rest + body)
        } else {
            self.compact_used() + grow * count + 2 + COMPACT_CELL_HEAD + rest + body
        }
    }

    /// Bytes the node may fill.
    fn room(&self) -> usize {
        self.page_size * self.room_pages
    }

    /// Whether a cell of `len` bytes still fits.
    pub fn fits(&self, len: usize) -> bool {
        self.used() + 2 + len <= self.room() && self.offsets.len() < usize::from(u16::MAX)
    }

    /// Whether the leaf still fits once it takes `after` bytes (with one more cell),
    /// growing it by a page at a time while it does not, more than an eighth of the leaf
    /// is unused and the leaf has fewer than [`LEAF_GROW_PAGES`] pages
    /// (`format-spec/btree.md`, "How a checkpoint fills leaves").
    fn fits_or_grows(&mut self, after: usize) -> bool {
        while after > self.room() || self.offsets.len() >= usize::from(u16::MAX) {
            let unused = self.room().saturating_sub(self.used());
            if !self.leaf
                || self.room_pages >= LEAF_GROW_PAGES
                || self.room() + self.page_size > LEAF_BYTES_MAX
                || unused <= self.room() / 8
            {
                return false;
            }
            self.room_pages += 1;
        }
        true
    }

    /// Pages the finished node takes: as many as its cells need.
    pub fn pages(&self) -> u64 {
        self.used().div_ceil(self.page_size).max(1) as u64
    }

    /// The leaf's key prefix as it stands.
    pub fn prefix(&self) -> &[u8] {
        self.prefix.get(..self.prefix_len).unwrap_or(&[])
    }

    /// Whether a leaf cell of the key `key` with `body` bytes after the key (an overflow
    /// reference, or an inline value counted as if it broke a uniform leaf: see
    /// [`NodeBuilder::admit_inline`]) joins this leaf (`format-spec/btree.md`, "How a
    /// checkpoint fills leaves"): an empty leaf takes the key's first 8 bytes as its
    /// prefix; a key that does not start with the prefix joins only a leaf less than
    /// half full, whose prefix then shrinks to what the keys share. `false`: start a
    /// new leaf.
    pub fn admit(&mut self, key: &TreeKey<'_>, body: usize) -> bool {
        self.admit_as(key, body, false)
    }

    /// [`NodeBuilder::admit`] for a cell with an inline value of `value_len` bytes: one
    /// that keeps a uniform leaf uniform is counted at its uniform size.
    pub fn admit_inline(&mut self, key: &TreeKey<'_>, value_len: usize) -> bool {
        self.admit_as(key, value_len, true)
    }

    fn admit_as(&mut self, key: &TreeKey<'_>, body: usize, inline: bool) -> bool {
        let (start, start_len) = key.first_bytes();
        if self.offsets.is_empty() {
            self.prefix = start;
            self.prefix_len = start_len;
            let after = self.used_with(key.len() - start_len, body, inline, 0);
            return self.fits_or_grows(after);
        }
        let common = common_prefix(self.prefix(), start.get(..start_len).unwrap_or(&[]));
        if common == self.prefix_len {
            let after = self.used_with(key.len() - common, body, inline, 0);
            return self.fits_or_grows(after);
        }
        let after = self.used_with(key.len() - common, body, inline, self.prefix_len - common);
        if self.used() >= self.room() / 2
            || after > self.room()
            || self.offsets.len() >= usize::from(u16::MAX)
        {
            return false;
        }
        self.shrink_prefix(common);
        true
    }

    /// Shortens the prefix to `len` bytes: each cell's key gives back the bytes the
    /// prefix no longer holds.
    fn shrink_prefix(&mut self, len: usize) {
        let gone = self
            .prefix
            .get(len..self.prefix_len)
            .unwrap_or(&[])
            .to_vec();
        let mut cells = Vec::with_capacity(self.cells.len() + gone.len() * self.offsets.len());
        let mut offsets = Vec::with_capacity(self.offsets.len());
        for (i, &off) in self.offsets.iter().enumerate() {
            let end = self
                .offsets
                .get(i + 1)
                .map_or(self.cells.len(), |&o| o as usize);
            let cell = self.cells.get(off as usize..end).unwrap_or(&[]);
            let rest_len = u16_at(cell, 0).unwrap_or(0);
            offsets.push(cells.len() as u32);
            cells.extend_from_slice(&(rest_len + gone.len() as u16).to_le_bytes());
            cells.extend_from_slice(cell.get(2..4).unwrap_or(&[0, 0]));
            cells.extend_from_slice(&gone);
            cells.extend_from_slice(cell.get(4..).unwrap_or(&[]));
        }
        self.cells = cells;
        self.offsets = offsets;
        self.uniform = self.uniform.map(|(rest, value)| (rest + gone.len(), value));
        for b in self.prefix.iter_mut().skip(len) {
            *b = 0;
        }
        self.prefix_len = len;
    }

    /// Sets a branch's first child.
    pub fn set_first_child(&mut self, child: u64) {
        self.first_child = child;
    }

    /// A branch's first child (`0` until set).
    pub fn first_child(&self) -> u64 {
        self.first_child
    }

    /// Adds a raw cell (the caller checked `fits`; for a leaf, the cell of a compact
    /// leaf with the same prefix, admitted).
    pub fn push_raw(&mut self, cell: &[u8]) {
        self.offsets.push(self.cells.len() as u32);
        self.cells.extend_from_slice(cell);
        let rest = usize::from(u16_at(cell, 0).unwrap_or(0));
        match u16_at(cell, 2) {
            Some(word) if self.leaf && word < EXTENT_MARK => {
                self.note_inline(rest, usize::from(word));
            }
            _ => self.uniform = None,
        }
    }

    /// Keeps the leaf uniform after an inline cell of these lengths was pushed when it
    /// is the first cell or matches the others.
    fn note_inline(&mut self, rest: usize, value_len: usize) {
        self.uniform = match self.uniform {
            _ if self.offsets.len() == 1 => Some((rest, value_len)),
            Some(u) if u == (rest, value_len) => Some(u),
            _ => None,
        };
    }

    /// Starts a compact cell for `key` (admitted) whose value word is `value_word`.
    fn push_head(&mut self, key: &TreeKey<'_>, value_word: u16) {
        self.offsets.push(self.cells.len() as u32);
        let rest_len = key.len() - self.prefix_len;
        self.cells
            .extend_from_slice(&(rest_len as u16).to_le_bytes());
        self.cells.extend_from_slice(&value_word.to_le_bytes());
        key.extend_from(self.prefix_len, &mut self.cells);
    }

    /// Adds an inline leaf cell, written in place (the caller had it
    /// [`NodeBuilder::admit`]ted with the value's length).
    pub fn push_leaf_inline(&mut self, key: &TreeKey<'_>, value: &[u8]) {
        self.push_head(key, value.len() as u16);
        self.cells.extend_from_slice(value);
        self.note_inline(key.len() - self.prefix_len, value.len());
    }

    /// Adds a leaf cell whose value is in the overflow run `run` (the caller had it
    /// [`NodeBuilder::admit`]ted with [`OVERFLOW_BODY`]).
    pub fn push_leaf_overflow(&mut self, key: &TreeKey<'_>, run: u64, len: u32) {
        self.push_head(key, OVERFLOW_MARK);
        self.uniform = None;
        self.cells.extend_from_slice(&run.to_le_bytes());
        self.cells.extend_from_slice(&len.to_le_bytes());
    }

    /// Adds a leaf cell whose value is in the overflow extent at `page` (the caller had it
    /// [`NodeBuilder::admit`]ted with [`EXTENT_CELL_BODY`]).
    pub fn push_leaf_extent(&mut self, key: &TreeKey<'_>, page: u64, len: u32, crc: u32) {
        self.push_head(key, EXTENT_MARK);
        self.uniform = None;
        self.cells.extend_from_slice(&page.to_le_bytes());
        self.cells.extend_from_slice(&len.to_le_bytes());
        self.cells.extend_from_slice(&crc.to_le_bytes());
    }

    /// The bytes of the finished page, numbered `page`.
    pub fn finish(&self, page: u64) -> Result<Vec<u8>> {
        if self.leaf
            && let Some((rest, value)) = self.uniform
            && !self.offsets.is_empty()
        {
            self.finish_uniform(page, rest, value)
        } else if self.leaf {
            self.finish_as(page, PageKind::CompactLeaf, self.prefix_len, self.prefix)
        } else {
            self.finish_as(page, PageKind::Branch, 0, self.first_child.to_le_bytes())
        }
    }

    /// The finished page as a version-3 leaf (kind 5) of the raw cells pushed, for tests
    /// of reading such leaves.
    #[cfg(test)]
    pub fn finish_v3_leaf(&self, page: u64) -> Result<Vec<u8>> {
        self.finish_as(page, PageKind::Leaf, 0, [0; 8])
    }

    /// The finished page as a uniform leaf whose cells have keys of `rest` bytes after
    /// the prefix and values of `value` bytes: each compact cell without its head, the
    /// two lengths at bytes 20..24.
    fn finish_uniform(&self, page: u64, rest: usize, value: usize) -> Result<Vec<u8>> {
        let short = || Error::corrupted(page, "cells do not fit the page");
        let mut lengths = [0u8; 4];
        lengths[..2].copy_from_slice(&(rest as u16).to_le_bytes());
        lengths[2..].copy_from_slice(&(value as u16).to_le_bytes());
        let mut buf = self.kind_header(page, self.prefix_len, lengths, self.prefix)?;
        let stride = rest + value;
        for (i, &off) in self.offsets.iter().enumerate() {
            let from = off as usize + COMPACT_CELL_HEAD;
            let body = self.cells.get(from..from + stride).ok_or_else(short)?;
            let at = OFFSETS_AT + i * stride;
            buf.get_mut(at..at + stride)
                .ok_or_else(short)?
                .copy_from_slice(body);
        }
        seal_page(&mut buf, PageKind::UniformLeaf, page)?;
        Ok(buf)
    }

    /// The zeroed bytes of the finished node, its pages' worth, with its kind header
    /// (`format-spec/btree.md`): `count`, `prefix_len`, `pages` (for more than one),
    /// bytes 20..24 (`lengths`: a uniform leaf's, else zero) and the 8-byte `word`.
    fn kind_header(
        &self,
        page: u64,
        prefix_len: usize,
        lengths: [u8; 4],
        word: [u8; 8],
    ) -> Result<Vec<u8>> {
        let pages = self.pages();
        let mut buf = vec![0u8; self.page_size * pages as usize];
        let count = self.offsets.len() as u16;
        buf.get_mut(16..18)
            .ok_or_else(|| Error::corrupted(page, "page too small"))?
            .copy_from_slice(&count.to_le_bytes());
        if let Some(b) = buf.get_mut(18) {
            *b = prefix_len as u8;
        }
        if pages > 1
            && let Some(b) = buf.get_mut(19)
        {
            *b = pages as u8;
        }
        buf.get_mut(20..24)
            .ok_or_else(|| Error::corrupted(page, "page too small"))?
            .copy_from_slice(&lengths);
        buf.get_mut(24..32)
            .ok_or_else(|| Error::corrupted(page, "page too small"))?
            .copy_from_slice(&word);
        Ok(buf)
    }

    fn finish_as(
        &self,
        page: u64,
        kind: PageKind,
        prefix_len: usize,
        word: [u8; 8],
    ) -> Result<Vec<u8>> {
        let mut buf = self.kind_header(page, prefix_len, [0; 4], word)?;
        let base = OFFSETS_AT + 2 * self.offsets.len();
        for (i, off) in self.offsets.iter().enumerate() {
            let at = OFFSETS_AT + 2 * i;
            // A compact leaf fits its room (at most 65,536 bytes), so its offsets fit.
            let abs = u16::try_from(base + *off as usize)
                .map_err(|_| Error::corrupted(page, "cells do not fit the page"))?;
            buf.get_mut(at..at + 2)
                .ok_or_else(|| Error::corrupted(page, "page too small"))?
                .copy_from_slice(&abs.to_le_bytes());
        }
        buf.get_mut(base..base + self.cells.len())
            .ok_or_else(|| Error::corrupted(page, "cells do not fit the page"))?
            .copy_from_slice(&self.cells);
        seal_page(&mut buf, kind, page)?;
        Ok(buf)
    }
}

/// Most pages a checkpoint grows a leaf of large cells to (readers accept runs up to
/// [`super::page::LEAF_PAGES_MAX`]).
pub const LEAF_GROW_PAGES: usize = 4;

/// Bytes after a compact cell's key when its value is in an overflow run.
pub const OVERFLOW_CELL_BODY: usize = OVERFLOW_BODY;

/// Bytes after a compact cell's key when its value is in an overflow extent.
pub const EXTENT_CELL_BODY: usize = EXTENT_BODY;

/// Encodes a version-3 (kind 5) inline leaf cell, for tests that build such leaves.
#[cfg(test)]
pub fn v3_leaf_cell_inline(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(LEAF_CELL_HEAD + key.len() + value.len());
    c.extend_from_slice(&(key.len() as u16).to_le_bytes());
    c.extend_from_slice(&[0, 0]);
    c.extend_from_slice(&(value.len() as u32).to_le_bytes());
    c.extend_from_slice(key);
    c.extend_from_slice(value);
    c
}

/// Encodes a version-3 (kind 5) leaf cell pointing at an overflow run, for tests.
#[cfg(test)]
pub fn v3_leaf_cell_overflow(key: &[u8], run: u64, len: u32) -> Vec<u8> {
    let mut c = Vec::with_capacity(LEAF_CELL_HEAD + key.len() + 8);
    c.extend_from_slice(&(key.len() as u16).to_le_bytes());
    c.extend_from_slice(&[1, 0]);
    c.extend_from_slice(&len.to_le_bytes());
    c.extend_from_slice(key);
    c.extend_from_slice(&run.to_le_bytes());
    c
}

/// Encodes a branch cell.
pub fn branch_cell(separator: &[u8], child: u64) -> Vec<u8> {
    let mut c = Vec::with_capacity(BRANCH_CELL_HEAD + separator.len());
    branch_cell_into(&mut c, separator, child);
    c
}

/// [`branch_cell`] appended to `out`.
pub fn branch_cell_into(out: &mut Vec<u8>, separator: &[u8], child: u64) {
    out.extend_from_slice(&(separator.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&child.to_le_bytes());
    out.extend_from_slice(separator);
}
