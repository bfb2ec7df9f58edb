//! Rebuilds (a checkpoint's tree build) of trees whose pages are each well formed but
//! which together break the tree's invariants, as a writer's mistake or a hostile file
//! could make them: each is refused with an error naming a page, never frees a page the
//! tree still uses, and never builds without end.

use super::build::rebuild;
use super::hostile_tests::{PS, branch, file_of, leaf};
use super::page::{NodeBuilder, TreeKey};
use crate::pager::Pager;
use crate::storage::SimStorage;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A leaf cell naming an "extent" at page 1 (a header copy's page), its value never read:
/// a rebuild deleting the key refuses to free the page (it freed it, and the next
/// checkpoint wrote a leaf over the header copy). So is one in the file's unused tail,
/// past every page ever handed out (freeing it tripped the pager's debug assertion).
#[test]
fn a_rebuild_never_frees_a_header_page_a_cell_names() {
    use super::page::EXTENT_CELL_BODY;
    // The leaf at page 3 of a file of `pages` pages, its cell naming an extent at
    // `extent`; the pager's high-water mark is 4.
    let refusal = |extent: u64, pages: u64| {
        let key = crate::btree::composite(1, b"k");
        let mut b = NodeBuilder::new(true, PS);
        assert!(b.admit(&TreeKey::whole(&key), EXTENT_CELL_BODY));
        b.push_leaf_extent(&TreeKey::whole(&key), extent, 100, 0);
        let file = file_of(pages, vec![(3, b.finish(3).unwrap())]);
        let sim = SimStorage::from_bytes(file.clone());
        let pager = Pager::new(Arc::new(sim.clone()), PS, 4, BTreeSet::new()).unwrap();
        let changes = vec![(key, None)];
        rebuild(&sim, &pager, &file, 3, &changes, &[], u64::MAX)
            .err()
            .expect("refused")
            .to_string()
    };
    let e = refusal(1, 4);
    assert!(e.contains("page 1"), "{e}");
    let e = refusal(6, 8);
    assert!(e.contains("page 6"), "{e}");
    // An overflow run, whole and checksummed, in the unused tail: refused too.
    let key = crate::btree::composite(1, b"k");
    let value = vec![3u8; 5000];
    let run = super::run::encode_run(
        crate::format::PageKind::Overflow,
        6,
        PS,
        &value,
        value.len() as u32,
        0,
    );
    let mut b = NodeBuilder::new(true, PS);
    assert!(b.admit(&TreeKey::whole(&key), super::page::OVERFLOW_CELL_BODY));
    b.push_leaf_overflow(&TreeKey::whole(&key), 6, value.len() as u32);
    let file = file_of(9, vec![(3, b.finish(3).unwrap()), (6, run)]);
    let sim = SimStorage::from_bytes(file.clone());
    let pager = Pager::new(Arc::new(sim.clone()), PS, 4, BTreeSet::new()).unwrap();
    let e = rebuild(&sim, &pager, &file, 3, &[(key, None)], &[], u64::MAX)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("page 6"), "{e}");
}

/// A branch naming a leaf in the file's unused tail, past every page the pager handed
/// out (each page valid): a rebuild freed that page (the pager's debug assertion, or
/// nothing in a release build) and could hand it out while the tree still used it. The
/// rebuild now refuses the tree, naming the page.
#[test]
fn a_rebuild_refuses_a_tree_page_past_the_pages_handed_out() {
    let key = crate::btree::composite(1, b"aaaaaaaa");
    let far = crate::btree::composite(1, b"nnnnnnnn");
    let (_, left) = leaf(3, &[&key]);
    let (_, right) = leaf(6, &[&far]);
    let sep = crate::btree::composite(1, b"mmmmmmmm");
    let file = file_of(8, vec![branch(2, 3, &[(&sep, 6)]), (3, left), (6, right)]);
    // The pager's high-water mark is 4: page 6 was never handed out.
    let sim = SimStorage::from_bytes(file.clone());
    let pager = Pager::new(Arc::new(sim.clone()), PS, 4, BTreeSet::new()).unwrap();
    let changes = vec![(far.clone(), None)];
    let e = rebuild(&sim, &pager, &file, 2, &changes, &[], u64::MAX)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("page 6") && e.contains("outside"), "{e}");
    // Inside the pages handed out, the same tree rebuilds.
    let pager = Pager::new(Arc::new(sim.clone()), PS, 8, BTreeSet::new()).unwrap();
    assert!(rebuild(&sim, &pager, &file, 2, &changes, &[], u64::MAX).is_ok());
}

/// A checksum-valid leaf of another range at the page a branch names (a lost write), in
/// the range of a change: a rebuild refuses it, naming the page. Merged, its keys took
/// their own first key as separator, and reads of the range before it (an intact leaf's)
/// found their keys absent without an error once the page was freed.
#[test]
fn a_rebuild_refuses_a_touched_leaf_of_another_range() {
    let k = |s: &[u8]| crate::btree::composite(1, s);
    let (a, b, sep) = (k(b"bbbbbbbb"), k(b"cccccccc"), k(b"mmmmmmmm"));
    // Leaf 4 (keys from "mmmmmmmm" on) holds keys below its range.
    let file = file_of(
        5,
        vec![branch(2, 3, &[(&sep, 4)]), leaf(3, &[&a]), leaf(4, &[&b])],
    );
    let sim = SimStorage::from_bytes(file.clone());
    let pager = Pager::new(Arc::new(sim.clone()), PS, 5, BTreeSet::new()).unwrap();
    let changes = vec![(k(b"nnnnnnnn"), Some(Arc::from(&b"v"[..])))];
    let e = rebuild(&sim, &pager, &file, 2, &changes, &[], u64::MAX)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("page 4") && e.contains("outside the bounds"),
        "{e}"
    );
}

/// A tree whose leaves lie at different depths (each page valid): a rebuild lists the
/// leaves from the branches at the leftmost leaf's depth without reading them, and
/// refuses a node it then finds is no leaf when it rewrites it, or a leaf above that
/// depth, naming the page.
#[test]
fn a_rebuild_refuses_leaves_at_different_depths() {
    let k = |s: &[u8]| crate::btree::composite(1, s);
    let (a, c, sep) = (k(b"bbbbbbbb"), k(b"nnnnnnnn"), k(b"mmmmmmmm"));
    let rebuild_of = |file: &[u8], change: &[u8]| {
        let sim = SimStorage::from_bytes(file.to_vec());
        let pager = Pager::new(Arc::new(sim.clone()), PS, 6, BTreeSet::new()).unwrap();
        let changes = vec![(change.to_vec(), Some(Arc::from(&b"v"[..])))];
        rebuild(&sim, &pager, file, 2, &changes, &[], u64::MAX).map(|_| ())
    };
    // Leaf 3 at depth 1, branch 4 (over leaf 5) beside it at the leaf level.
    let file = file_of(
        6,
        vec![
            branch(2, 3, &[(&sep, 4)]),
            leaf(3, &[&a]),
            branch(4, 5, &[]),
            leaf(5, &[&c]),
        ],
    );
    let e = rebuild_of(&file, &c).expect_err("refused").to_string();
    assert!(e.contains("page 4") && e.contains("leaf level"), "{e}");
    // Branch 4 over leaf 5 first: leaf 3 lies above the leaf level.
    let file = file_of(
        6,
        vec![
            branch(2, 4, &[(&sep, 3)]),
            leaf(3, &[&c]),
            branch(4, 5, &[]),
            leaf(5, &[&a]),
        ],
    );
    let e = rebuild_of(&file, &a).expect_err("refused").to_string();
    assert!(e.contains("page 3") && e.contains("leaf level"), "{e}");
}

/// A leaf whose checksum holds, with a key longer than any key can be (4,050 bytes at
/// 4 KiB pages): its first read refuses it. A checkpoint rewriting it took that key for
/// a separator, which fits no branch: each full node was pushed into a new level above
/// with it again, without end, until the disk was full (here: the 64 pages the test
/// allows).
#[test]
fn a_key_longer_than_any_key_is_refused() {
    let long = [vec![b'n'; 8], vec![7u8; 4042]].concat();
    let file = file_of(
        6,
        vec![
            branch(2, 3, &[(b"mmmmmmmm", 4)]),
            leaf(3, &[b"aaaaaaaa"]),
            leaf(4, &[&long]),
        ],
    );
    let verified = crate::pager::Verified::default();
    let err = super::get(&file, PS, 2, &long, Some(&verified))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("page 4") && err.contains("longer"), "{err}");
    let sim = SimStorage::from_bytes(file.clone());
    // Bounded, so the build fails rather than filling memory when the key is taken.
    sim.set_max_len(Some(64 * u64::from(PS)));
    let pager = Pager::new(Arc::new(sim.clone()), PS, 6, BTreeSet::new()).unwrap();
    let past = [long.clone(), vec![1]].concat();
    let changes = vec![(past, Some(Arc::from(&b"v"[..])))];
    let err = rebuild(&sim, &pager, &file, 2, &changes, &[], u64::MAX)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("page 4") && err.contains("longer"), "{err}");
}
