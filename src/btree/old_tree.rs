//! The old tree as a checkpoint's rebuild sees it: its leaves listed in key order from
//! its branches, each with the key range they give it, without reading the leaves
//! (`build::merge_into` reads only those it rewrites).

use super::page::NodeRef;
use super::{DEPTH_MAX, page_bytes};
use crate::error::{Error, Result};

/// Leaves with the lower bound of their range (`None` for the leftmost), borrowed from
/// the branch that names it.
pub(super) type LeafList<'f> = Vec<(Option<&'f [u8]>, u64)>;

/// The tree at `root` as a rebuild sees it: its leaves in key order, each with the lower
/// bound of its range (`None` for the leftmost), every branch page, and every node's
/// first page.
pub(super) struct OldTree<'f> {
    pub(super) leaves: LeafList<'f>,
    pub(super) branches: Vec<u64>,
    pub(super) nodes: NodePages,
}

/// Every node's first page: the branches in a set as the walk meets them (a branch
/// reached twice would multiply the walk), the leaves' sorted once at its end (a hash
/// of each cost a checkpoint more than the rest of its walk).
#[derive(Default)]
pub(super) struct NodePages {
    branches: std::collections::HashSet<u64>,
    leaves: Vec<u64>,
}

impl NodePages {
    /// Whether a node starts at `page`.
    pub(super) fn contains(&self, page: u64) -> bool {
        self.branches.contains(&page) || self.leaves.binary_search(&page).is_ok()
    }
}

/// The leaves of the tree at `root`, listed from its branches alone: the leaf level's
/// depth is that of the leftmost leaf, and a node at that depth is taken for a leaf
/// without being read (a rebuild reads only the leaves it rewrites: reading and
/// checking every leaf made each checkpoint cost the size of the tree, 99 ms for one
/// changed key among 4 million). A node the rebuild rewrites is checked then
/// (`build::merge_into`): a leaf, of its range, its pages no other node's.
///
/// Every node must start within `data_pages` (the file's data pages handed out so far):
/// a hostile tree naming a page past them would have it freed (a page the pager never
/// handed out) or handed out while the tree still uses it.
pub(super) fn leaves_of(
    file: &[u8],
    page_size: u32,
    root: u64,
    data_pages: std::ops::Range<u64>,
) -> Result<OldTree<'_>> {
    let mut tree = OldTree {
        leaves: Vec::new(),
        branches: Vec::new(),
        nodes: NodePages::default(),
    };
    if root == 0 {
        return Ok(tree);
    }
    let within = |page: u64, end: u64| {
        if page < data_pages.start || end > data_pages.end {
            return Err(Error::corrupted(
                page,
                "tree page outside the file's data pages",
            ));
        }
        Ok(())
    };
    // The leaf level: the leftmost path's.
    let mut leaf_depth = 0usize;
    let mut page = root;
    loop {
        if leaf_depth >= DEPTH_MAX {
            return Err(Error::corrupted(page, "tree deeper than the limit"));
        }
        within(page, page.saturating_add(1))?;
        let node = NodeRef::parse(page_bytes(file, page, page_size)?, page)?;
        if node.is_leaf() {
            break;
        }
        page = node.child(0)?;
        leaf_depth += 1;
    }
    // Depth-first, left to right: push children right to left. A page reached twice (a
    // damaged or hostile file) would be freed or linked twice, and a branch whose
    // children all name one subtree multiplies the walk: refused.
    let mut stack = vec![(root, None::<&[u8]>, 0usize)];
    while let Some((page, low, depth)) = stack.pop() {
        if depth == leaf_depth {
            within(page, page.saturating_add(1))?;
            tree.leaves.push((low, page));
            tree.nodes.leaves.push(page);
            continue;
        }
        if !tree.nodes.branches.insert(page) {
            return Err(Error::corrupted(page, "tree page reachable twice"));
        }
        let node = NodeRef::parse(page_bytes(file, page, page_size)?, page)?;
        within(page, page.saturating_add(node.pages().max(1)))?;
        if node.is_leaf() {
            return Err(Error::corrupted(
                page,
                "a leaf above the tree's leaf level (leaves at different depths)",
            ));
        }
        tree.branches.push(page);
        for i in (0..=node.count()).rev() {
            let lo = if i == 0 {
                low
            } else {
                Some(node.separator(i - 1)?)
            };
            stack.push((node.child(i)?, lo, depth + 1));
        }
    }
    let nodes = &mut tree.nodes;
    nodes.leaves.sort_unstable();
    let twice = nodes
        .leaves
        .windows(2)
        .find_map(|w| matches!(w, [a, b] if a == b).then(|| w.first().copied())?);
    let twice = twice.or_else(|| {
        nodes
            .leaves
            .iter()
            .copied()
            .find(|p| nodes.branches.contains(p))
    });
    if let Some(page) = twice {
        return Err(Error::corrupted(page, "tree page reachable twice"));
    }
    Ok(tree)
}
