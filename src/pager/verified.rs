//! The set of pages and values a reader has verified ([`Verified`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Pages whose checksum a reader has verified since they were last written: the tree's
/// pages never change while reachable, so each is verified once, not on every read. A
/// page leaves the set when it is freed (it may be rewritten).
///
/// Tree nodes and values (overflow runs and extents) are kept apart: a page verified as
/// one is never trusted as the other (a cell naming a tree page as its value, or a
/// branch naming an extent as its child, is checked as what it is read as).
///
/// A value is verified together with what its cell said of it ([`ValueTag`]: its kind,
/// length and, for an extent, checksum): a later cell naming the same first page with
/// another length or checksum (a hostile file) is checked, not served the verified
/// bytes.
///
/// A lookup is one atomic load: the bits and tags live in chunks allocated once and
/// never moved or freed while the set lives, so readers take no lock and write no
/// shared counter.
#[derive(Default)]
pub struct Verified {
    nodes: Bitmap,
    values: Tags,
}

/// What a leaf cell says of the value it names, as [`Verified`] keeps it: for an
/// extent its checksum (high 32 bits) and length; for an overflow run its length with
/// bit 31 set. A length of 2^31 or more (no valid cell's: values are at most 16 MiB)
/// gets the tag 0, which is never kept nor found: such a cell is checked on every read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueTag(u64);

/// Lengths a [`ValueTag`] holds exactly.
const TAG_LEN_MAX: u32 = 0x7fff_ffff;

impl ValueTag {
    /// An extent of `len` bytes (more than 0) with checksum `crc`.
    pub fn extent(len: u32, crc: u32) -> ValueTag {
        if len == 0 || len > TAG_LEN_MAX {
            return ValueTag(0);
        }
        ValueTag((u64::from(crc) << 32) | u64::from(len))
    }

    /// An overflow run holding a value of `len` bytes.
    pub fn run(len: u32) -> ValueTag {
        if len > TAG_LEN_MAX {
            return ValueTag(0);
        }
        ValueTag(1 << 31 | u64::from(len))
    }
}

/// Pages one chunk of [`Tags`] covers (8 bytes a page: 128 KiB, as a [`Bitmap`]'s
/// chunk, allocated only where values were read: 0.2% of the file's size there).
const TAG_CHUNK_PAGES: u64 = 1 << 14;
/// Chunks of [`Tags`] (384 KiB of empty slots a set): values starting above page 2^28
/// (1 TiB of 4 KiB pages) are simply verified on every read.
const TAG_CHUNKS: usize = 1 << 14;

/// The [`ValueTag`] of the value starting at each page (0: none verified).
struct Tags {
    chunks: Box<[std::sync::OnceLock<Box<[AtomicU64]>>]>,
}

impl Default for Tags {
    fn default() -> Tags {
        Tags {
            chunks: (0..TAG_CHUNKS)
                .map(|_| std::sync::OnceLock::new())
                .collect(),
        }
    }
}

impl Tags {
    /// The slot of `page`, allocating its chunk when `create`.
    #[inline]
    fn slot(&self, page: u64, create: bool) -> Option<&AtomicU64> {
        let chunk = self
            .chunks
            .get(usize::try_from(page / TAG_CHUNK_PAGES).ok()?)?;
        let slots = if create {
            chunk.get_or_init(|| (0..TAG_CHUNK_PAGES).map(|_| AtomicU64::new(0)).collect())
        } else {
            chunk.get()?
        };
        slots.get(usize::try_from(page % TAG_CHUNK_PAGES).ok()?)
    }

    #[inline]
    fn contains(&self, page: u64, tag: ValueTag) -> bool {
        tag.0 != 0
            && self
                .slot(page, false)
                .is_some_and(|s| s.load(Ordering::Acquire) == tag.0)
    }

    fn insert(&self, page: u64, tag: ValueTag) {
        if tag.0 == 0 {
            return;
        }
        if let Some(s) = self.slot(page, true) {
            s.store(tag.0, Ordering::Release);
        }
    }

    fn remove(&self, page: u64) {
        if let Some(s) = self.slot(page, false) {
            s.store(0, Ordering::Release);
        }
    }
}

/// One kind's bits of [`Verified`].
struct Bitmap {
    chunks: Box<[std::sync::OnceLock<Box<[AtomicU64]>>]>,
}

/// Pages one chunk of a [`Bitmap`] covers (a 128 KiB bitmap).
const VERIFIED_CHUNK_PAGES: u64 = 1 << 20;
/// Chunks of a [`Bitmap`]: pages above `VERIFIED_CHUNK_PAGES * VERIFIED_CHUNKS` (2^32,
/// 16 TiB of 4 KiB pages) are simply verified on every read.
const VERIFIED_CHUNKS: usize = 1 << 12;

impl Default for Bitmap {
    fn default() -> Bitmap {
        Bitmap {
            chunks: (0..VERIFIED_CHUNKS)
                .map(|_| std::sync::OnceLock::new())
                .collect(),
        }
    }
}

impl Bitmap {
    /// The word holding `page`'s bit, allocating its chunk when `create`.
    #[inline]
    fn word(&self, page: u64, create: bool) -> Option<(&AtomicU64, u64)> {
        let chunk = self
            .chunks
            .get(usize::try_from(page / VERIFIED_CHUNK_PAGES).ok()?)?;
        let bits = if create {
            chunk.get_or_init(|| {
                (0..VERIFIED_CHUNK_PAGES / 64)
                    .map(|_| AtomicU64::new(0))
                    .collect()
            })
        } else {
            chunk.get()?
        };
        let at = page % VERIFIED_CHUNK_PAGES;
        Some((bits.get(usize::try_from(at / 64).ok()?)?, 1 << (at % 64)))
    }

    #[inline]
    fn contains(&self, page: u64) -> bool {
        self.word(page, false)
            .is_some_and(|(w, bit)| w.load(Ordering::Acquire) & bit != 0)
    }

    fn insert(&self, page: u64) {
        if let Some((w, bit)) = self.word(page, true) {
            w.fetch_or(bit, Ordering::AcqRel);
        }
    }

    fn remove(&self, page: u64) {
        if let Some((w, bit)) = self.word(page, false) {
            w.fetch_and(!bit, Ordering::AcqRel);
        }
    }
}

impl Verified {
    /// Whether tree page `page` was verified (as a tree page) since it was last freed.
    #[inline]
    pub fn contains(&self, page: u64) -> bool {
        self.nodes.contains(page)
    }

    /// Records that tree page `page` verified.
    pub fn insert(&self, page: u64) {
        self.nodes.insert(page);
    }

    /// Whether the value (overflow run or extent) starting at `page`, as a cell saying
    /// `tag` of it names it, was verified since its first page was last freed.
    #[inline]
    pub fn contains_value(&self, page: u64, tag: ValueTag) -> bool {
        self.values.contains(page, tag)
    }

    /// Records that the value starting at `page`, as `tag` describes it, verified.
    pub fn insert_value(&self, page: u64, tag: ValueTag) {
        self.values.insert(page, tag);
    }

    pub(super) fn remove(&self, page: u64) {
        self.nodes.remove(page);
        self.values.remove(page);
    }
}
