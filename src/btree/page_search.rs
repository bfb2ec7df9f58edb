//! Searching a leaf or branch page (`NodeRef::search`, `NodeRef::search_near`): the key's
//! prefix compared once, then the cells by a binary search or from an interpolated
//! estimate, with a probe loop specialised for uniform leaves. A child module of
//! `page.rs`, so it reads the page's fields directly.

use super::{Form, LARGE_CELL, NodeRef, cmp_keys};
use crate::btree::estimate::{HINT_MIN_CELLS, interpolate};
use crate::error::Result;

impl NodeRef<'_> {
    /// Whether the node has at least 3 cells of [`LARGE_CELL`] bytes or more on average
    /// (the distance from its first cell to its last, per cell): each probe of a search
    /// then reads its own cache line, so a search starts at the estimate even below
    /// [`HINT_MIN_CELLS`] cells (a leaf of seven 1,000-byte values: one or two probes
    /// instead of three).
    #[inline]
    fn large_cells(&self) -> bool {
        self.count >= 3
            && match (self.offset(0), self.offset(self.count - 1)) {
                (Ok(first), Ok(last)) => {
                    last.saturating_sub(first) >= LARGE_CELL * (self.count - 1)
                }
                _ => false,
            }
    }

    /// Leaf: `Ok(i)` when key `i` equals `key`, else `Err(insertion point)`. A compact
    /// leaf compares the key's first 8 bytes with its prefix once, then searches the
    /// rest of the key among its cells.
    #[inline]
    pub fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        match self.past_prefix(key) {
            Ok(rest) if self.form == Form::Uniform => self.bisect::<true>(0, self.count, 0, rest),
            Ok(rest) => self.bisect::<false>(0, self.count, self.cell_head(), rest),
            Err(at) => Ok(Err(at)),
        }
    }

    /// [`NodeRef::search`], starting where `key` falls between `bounds` (the keys the
    /// parent branch puts around this page: every key here is at or above the first and
    /// below the second) by interpolation: the cell at the estimated index is compared
    /// first, then cells at distances growing fourfold from it until the key is
    /// bracketed, then a binary search of the bracket. Keys spread evenly over the range
    /// (random keys, counters) are found within a few neighbouring cells, where a binary
    /// search from the middle touches a line in every part of the page. The answer is
    /// the same for any estimate: only the order of the probes changes.
    #[inline]
    pub fn search_near(
        &self,
        key: &[u8],
        bounds: (Option<&[u8]>, Option<&[u8]>),
    ) -> Result<std::result::Result<usize, usize>> {
        let estimate = match bounds {
            (Some(lo), Some(hi)) if self.count >= HINT_MIN_CELLS || self.large_cells() => {
                interpolate(key, lo, hi, self.count)
            }
            _ => None,
        };
        match estimate {
            None => self.search(key),
            Some(at) if self.form == Form::Uniform => self.search_from::<true>(at, key),
            Some(at) => self.search_from::<false>(at, key),
        }
    }

    /// [`NodeRef::search_near`] from the estimate `at`, in a page known to be a uniform
    /// leaf (`UNIFORM`) or known not to be one.
    #[inline(always)]
    fn search_from<const UNIFORM: bool>(
        &self,
        at: usize,
        key: &[u8],
    ) -> Result<std::result::Result<usize, usize>> {
        let key = match self.past_prefix(key) {
            Ok(rest) => rest,
            Err(at) => return Ok(Err(at)),
        };
        let cell = self.cell_head();
        // Cells below `lo` are below the key, cells at and above `hi` above it.
        let (mut lo, mut hi) = (0usize, self.count);
        let at = at.min(self.count - 1);
        // About the spread of the estimate's error for evenly spread keys (half the
        // square root of the count).
        let first_step = (self.count.isqrt() / 2).max(1);
        match self.probe::<UNIFORM>(at, cell, key)? {
            std::cmp::Ordering::Equal => return Ok(Ok(at)),
            std::cmp::Ordering::Less => {
                lo = at + 1;
                let mut step = first_step;
                while at + step < hi {
                    match self.probe::<UNIFORM>(at + step, cell, key)? {
                        std::cmp::Ordering::Less => lo = at + step + 1,
                        std::cmp::Ordering::Greater => {
                            hi = at + step;
                            break;
                        }
                        std::cmp::Ordering::Equal => return Ok(Ok(at + step)),
                    }
                    step *= 4;
                }
            }
            std::cmp::Ordering::Greater => {
                hi = at;
                let mut step = first_step;
                while step <= at && at - step >= lo {
                    match self.probe::<UNIFORM>(at - step, cell, key)? {
                        std::cmp::Ordering::Greater => hi = at - step,
                        std::cmp::Ordering::Less => {
                            lo = at - step + 1;
                            break;
                        }
                        std::cmp::Ordering::Equal => return Ok(Ok(at - step)),
                    }
                    step *= 4;
                }
            }
        }
        self.bisect::<UNIFORM>(lo, hi, cell, key)
    }

    /// `key` without this page's prefix; or, when the prefix puts the key before or after
    /// every cell, the insertion point that says so.
    #[inline(always)]
    fn past_prefix<'k>(&self, key: &'k [u8]) -> std::result::Result<&'k [u8], usize> {
        let (head, rest) = key.split_at(key.len().min(self.prefix.len()));
        match cmp_keys(self.prefix, head) {
            std::cmp::Ordering::Less => Err(self.count),
            std::cmp::Ordering::Greater => Err(0),
            std::cmp::Ordering::Equal => Ok(rest),
        }
    }

    /// Binary search for `key` (past the prefix) among cells `lo..hi`, every cell below
    /// `lo` being below it and every cell from `hi` on above it.
    #[inline(always)]
    fn bisect<const UNIFORM: bool>(
        &self,
        mut lo: usize,
        mut hi: usize,
        cell: usize,
        key: &[u8],
    ) -> Result<std::result::Result<usize, usize>> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.probe::<UNIFORM>(mid, cell, key)? {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    /// The order of cell `i`'s key (behind a cell head of `cell` bytes, after the page's
    /// prefix) against `key`.
    #[inline(always)]
    fn probe<const UNIFORM: bool>(
        &self,
        i: usize,
        cell: usize,
        key: &[u8],
    ) -> Result<std::cmp::Ordering> {
        Ok(cmp_keys(self.tail_in::<UNIFORM>(i, cell)?, key))
    }

    /// Branch: the index of the child whose range holds `key`.
    pub fn child_index_for(&self, key: &[u8]) -> Result<usize> {
        Ok(match self.search(key)? {
            Ok(i) => i + 1,
            Err(i) => i,
        })
    }
}
