//! The integrity walk over a whole tree ([`walk_reporting`], for `check_integrity`):
//! every page verified, every invariant checked, every damaged page it can reach named.

use super::page::{CellValue, NodeRef};
use super::{DEPTH_MAX, overflow_run, page_bytes, run, value_bytes_checked};
use crate::error::{Error, Result};
use crate::format::PageKind;

/// A node still to visit in a walk: page, depth, and the bounds its parent gives it.
type PendingNode = (u64, usize, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every page of the tree rooted at `root` (branches, leaves, overflow runs), verified,
/// with the tree's invariants checked: key order, bounds, equal leaf depth, and no page
/// used twice (a node reached twice, two cells naming one value, a value over a node).
/// Answers with the first problem [`walk_reporting`] reports, if any.
#[cfg(test)]
pub fn walk(
    file: &[u8],
    page_size: u32,
    root: u64,
    visit: impl FnMut(u64, PageKind, u64),
) -> Result<u64> {
    let mut first = None;
    let keys = walk_reporting(file, page_size, root, visit, |e| {
        first.get_or_insert(e);
    });
    // `walk_reporting` goes on after a problem; the first one ends this walk's answer.
    match first {
        Some(e) => Err(e),
        None => Ok(keys),
    }
}

/// [`walk`], telling `problem` of each problem and going on past it: a node that fails
/// its checks is reported and its subtree skipped, and every value of a leaf is checked
/// (each damaged one reported; a leaf at another depth than the first leaf met is
/// reported and its values still checked), so every damaged page the walk can reach is
/// named. Returns the keys of the leaves it parsed.
pub fn walk_reporting(
    file: &[u8],
    page_size: u32,
    root: u64,
    visit: impl FnMut(u64, PageKind, u64),
    mut problem: impl FnMut(Error),
) -> u64 {
    if root == 0 {
        return 0;
    }
    let mut w = Walker {
        file,
        page_size,
        root,
        visit,
        leaf_depth: None,
        keys: 0,
        used: std::collections::HashSet::new(),
        stack: vec![(root, 0, None, None)],
        value_problems: Vec::new(),
    };
    while let Some(pending) = w.stack.pop() {
        if let Err(e) = w.node(pending) {
            problem(e);
        }
        w.value_problems.drain(..).for_each(&mut problem);
    }
    w.keys
}

/// The state of one [`walk_reporting`].
struct Walker<'f, V> {
    file: &'f [u8],
    page_size: u32,
    root: u64,
    visit: V,
    leaf_depth: Option<usize>,
    keys: u64,
    /// Every page the tree uses (nodes, a multi-page leaf's later pages, values): each
    /// once, or a later free would free it twice.
    used: std::collections::HashSet<u64>,
    stack: Vec<PendingNode>,
    /// Problems of a leaf's values: each value is checked, however many fail before it.
    value_problems: Vec<Error>,
}

impl<V: FnMut(u64, PageKind, u64)> Walker<'_, V> {
    /// Records `pages` pages from `first` as the tree's.
    fn claim(&mut self, first: u64, pages: u64) -> Result<()> {
        for p in first..first.saturating_add(pages) {
            if !self.used.insert(p) {
                return Err(Error::corrupted(
                    p,
                    "page used twice in the tree (a value named by two cells, or overlapping another page of the tree)",
                ));
            }
        }
        Ok(())
    }

    /// Checks one value of a leaf as a read of it does, and claims its pages.
    fn value(&mut self, v: CellValue<'_>) -> Result<()> {
        let (file, page_size) = (self.file, self.page_size);
        match v {
            CellValue::Inline(_) => {}
            CellValue::Overflow {
                page: run_page,
                len,
            } => {
                let (r, _) = overflow_run(file, page_size, run_page, len)?;
                self.claim(run_page, r.pages)?;
                (self.visit)(run_page, PageKind::Overflow, r.pages);
            }
            CellValue::Extent {
                page: first, len, ..
            } => {
                value_bytes_checked(file, page_size, v, None)?;
                let pages = run::extent_pages(page_size, len as usize);
                self.claim(first, pages)?;
                (self.visit)(first, PageKind::Overflow, pages);
            }
        }
        Ok(())
    }

    /// Checks one node, visits its pages and values, and queues its children.
    fn node(&mut self, (page, depth, low, high): PendingNode) -> Result<()> {
        let file = self.file;
        let page_size = self.page_size;
        if depth >= DEPTH_MAX {
            return Err(Error::corrupted(page, "tree deeper than the limit"));
        }
        self.claim(page, 1)
            .map_err(|_| Error::corrupted(page, "page reachable twice in the tree"))?;
        let node = NodeRef::parse(page_bytes(file, page, page_size)?, page)?;
        self.claim(page + 1, node.pages().saturating_sub(1))?;
        let n = node.count();
        // `NodeRef::parse` refused keys out of order, so the first and last keys hold the
        // node to the bounds its parent gives.
        if n > 0 {
            let (first, last) = (node.key(0)?, node.key(n - 1)?);
            if low.as_deref().is_some_and(|l| first.cmp_bytes(l).is_lt())
                || high.as_deref().is_some_and(|h| last.cmp_bytes(h).is_ge())
            {
                return Err(Error::corrupted(
                    page,
                    "key outside the bounds its parent gives",
                ));
            }
        }
        if node.is_leaf() {
            (self.visit)(page, PageKind::Leaf, node.pages());
            if n == 0 && page != self.root {
                return Err(Error::corrupted(page, "empty leaf"));
            }
            // A leaf at another depth is named, and its values still checked.
            if *self.leaf_depth.get_or_insert(depth) != depth {
                let e = Error::corrupted(page, "leaves at different depths");
                self.value_problems.push(e);
            }
            self.keys += n as u64;
            for i in 0..n {
                if let Err(e) = self.value(node.value(i)?) {
                    self.value_problems.push(e);
                }
            }
        } else {
            (self.visit)(page, PageKind::Branch, 1);
            for i in 0..=n {
                let lo = if i == 0 {
                    low.clone()
                } else {
                    Some(node.separator(i - 1)?.to_vec())
                };
                let hi = if i == n {
                    high.clone()
                } else {
                    Some(node.separator(i)?.to_vec())
                };
                self.stack.push((node.child(i)?, depth + 1, lo, hi));
            }
        }
        Ok(())
    }
}
