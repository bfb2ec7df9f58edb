//! Multi-page leaves (`format-spec/btree.md`, "Leaf page"): a leaf of large cells grows by a
//! page instead of leaving more than an eighth of it unused; its pages are used,
//! freed and verified as one.

use super::build::{Change, puts, rebuild};
use super::page::CellValue;
use super::page::{NodeBuilder, NodeRef, TreeKey};
use super::{OnNodePage, composite, get, node_first_page, page_bytes, walk};
use crate::error::Error;
use crate::format::PageKind;
use crate::pager::Pager;
use crate::storage::{SimStorage, Storage};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const PS: u32 = 4096;

/// Key `i` of table 1: 16 bytes after the table id (a leaf's cell holds them all).
fn key(i: u32) -> Vec<u8> {
    let mut k = [0u8; 16];
    k[12..].copy_from_slice(&i.to_be_bytes());
    composite(1, &k)
}

/// Cells admitted into one compact leaf builder before it asks for a new leaf, and the
/// pages the finished leaf takes: values of `value_len` and `value_len + 1` bytes in
/// turn (cells of one size would make a uniform leaf).
fn fill(value_len: usize) -> (usize, u64) {
    let mut b = NodeBuilder::new(true, PS);
    let mut n = 0u32;
    loop {
        let key = key(n);
        let tkey = TreeKey::whole(&key);
        let value = vec![7u8; value_len + n as usize % 2];
        if !b.admit_inline(&tkey, value.len()) {
            return (b.count(), b.pages());
        }
        b.push_leaf_inline(&tkey, &value);
        n += 1;
    }
}

/// [`fill`] with values of one size: a uniform leaf.
fn fill_uniform(value_len: usize) -> (usize, u64) {
    let mut b = NodeBuilder::new(true, PS);
    let value = vec![7u8; value_len];
    let mut n = 0u32;
    loop {
        let key = key(n);
        let tkey = TreeKey::whole(&key);
        if !b.admit_inline(&tkey, value.len()) {
            let page = b.finish(5).unwrap();
            assert_eq!(page[4], PageKind::UniformLeaf as u8);
            return (b.count(), b.pages());
        }
        b.push_leaf_inline(&tkey, &value);
        n += 1;
    }
}

#[test]
fn large_cells_grow_a_leaf_and_small_ones_never_do() {
    // 1,000-byte values with 16-byte keys (1,022-byte cells with their offsets): three
    // fit a page (a quarter of it left empty), so the leaf grows to two pages, which
    // hold seven.
    assert_eq!(fill(1000), (7, 2));
    // 1,400-byte values: two to a page (30% empty), five to two pages (13% empty),
    // eight to three (7%).
    assert_eq!(fill(1400), (8, 3));
    // Small cells leave less than an eighth of a page: one page.
    assert_eq!(fill(150).1, 1);
    assert_eq!(fill(16).1, 1);
    // Half-page values (stored inline up to key and value of half a page) fill a page
    // with two cells: no growth.
    assert_eq!(fill(2000), (2, 1));
}

#[test]
fn uniform_cells_fill_a_page_without_heads_or_offsets() {
    // 16-byte keys after the table id with 8-byte values: 24 bytes a cell, 169 to a page
    // (a compact leaf of 8- and 9-byte values in turn holds 133 cells of 30 and 31 bytes,
    // their heads and offsets included).
    assert_eq!(fill_uniform(8), (169, 1));
    assert_eq!(fill(8).0, 133);
    // 1,000-byte values: four cells of 1,016 bytes fill a page exactly, so it does not
    // grow.
    assert_eq!(fill_uniform(1000), (4, 1));
}

/// A tree of `n` keys with `value_len`-byte values built from nothing.
fn build(n: u32, value_len: usize) -> (SimStorage, Pager, u64, BTreeMap<Vec<u8>, Vec<u8>>) {
    let sim = SimStorage::new();
    let pager = Pager::new(Arc::new(sim.clone()), PS, 2, BTreeSet::new()).unwrap();
    // Values of two lengths in turn: compact leaves (cells of one size would make uniform
    // leaves, whose 1,000-byte values fill one page exactly).
    let model: BTreeMap<Vec<u8>, Vec<u8>> = (0..n)
        .map(|i| (key(i), vec![(i % 251) as u8; value_len + i as usize % 2]))
        .collect();
    let file = sim.view().unwrap();
    let built = rebuild(&sim, &pager, &file, 0, &puts(&model), &[], u64::MAX).unwrap();
    (sim, pager, built.root, model)
}

/// Every page of the tree at `root`, and its multi-page leaves (first page, pages).
fn pages_of(file: &[u8], root: u64) -> (BTreeSet<u64>, Vec<(u64, u64)>) {
    let mut pages = BTreeSet::new();
    let mut runs = Vec::new();
    walk(file, PS, root, |p, kind, n| {
        pages.extend(p..p + n);
        if kind == PageKind::Leaf && n > 1 {
            runs.push((p, n));
        }
    })
    .unwrap();
    (pages, runs)
}

#[test]
fn a_tree_of_large_values_fills_its_pages_and_frees_runs_whole() {
    let (sim, pager, root, mut model) = build(3_000, 1000);
    let file = sim.view().unwrap();
    let (pages, runs) = pages_of(&file, root);
    assert!(!runs.is_empty(), "no multi-page leaves");
    // 3,000 cells of 1,022 bytes (with the offset): 748 pages' worth of cells. One-page
    // leaves would take 1,000 pages (1.34x); leaves of seven cells in two pages, 858.
    let raw = 3_000 * 1_022 / PS as usize;
    assert!(
        pages.len() * 100 <= raw * 120,
        "{} pages for {raw} pages of cells",
        pages.len()
    );
    for (k, v) in &model {
        assert_eq!(get(&file, PS, root, k, None).unwrap(), Some(&v[..]));
    }

    // Change every seventh key and delete every eleventh: the leaves (runs among them)
    // that held them are freed whole, exactly the old pages the new tree does not use.
    let mut changes: Vec<Change> = Vec::new();
    for i in 0..3_000u32 {
        let k = key(i);
        if i % 11 == 0 {
            changes.push((k.clone(), None));
            model.remove(&k);
        } else if i % 7 == 0 {
            let v = vec![0xEE; 900 + (i as usize % 300)];
            changes.push((k.clone(), Some(Arc::from(&v[..]))));
            model.insert(k, v);
        }
    }
    let built = rebuild(&sim, &pager, &file, root, &changes, &[], u64::MAX).unwrap();
    let file = sim.view().unwrap();
    let (new_pages, _) = pages_of(&file, built.root);
    let freed: BTreeSet<u64> = built.freed.iter().copied().collect();
    let gone: BTreeSet<u64> = pages.difference(&new_pages).copied().collect();
    assert_eq!(freed, gone, "freed pages are the old pages no longer used");
    for (k, v) in &model {
        assert_eq!(get(&file, PS, built.root, k, None).unwrap(), Some(&v[..]));
    }

    // The freed pages are reused, runs included, by the next rebuild; nothing it uses is
    // still free.
    pager.free(built.freed);
    let changes: Vec<Change> = (0..3_000u32)
        .step_by(5)
        .map(|i| {
            let k = key(i);
            let v = vec![0x5A; 1000];
            model.insert(k.clone(), v.clone());
            (k, Some(Arc::from(&v[..])))
        })
        .collect();
    let before = pager.high_water();
    let again = rebuild(&sim, &pager, &file, built.root, &changes, &[], u64::MAX).unwrap();
    let file = sim.view().unwrap();
    let (used, _) = pages_of(&file, again.root);
    let free = pager.free_pages();
    assert!(used.is_disjoint(&free), "a page both used and free");
    assert!(
        pager.high_water() - before < again.new_pages.len() as u64,
        "freed pages were reused"
    );
    for (k, v) in &model {
        assert_eq!(get(&file, PS, again.root, k, None).unwrap(), Some(&v[..]));
    }
}

#[test]
fn a_damaged_leaf_run_is_an_error_naming_its_first_page() {
    let (sim, _pager, root, model) = build(400, 1000);
    let file = sim.view().unwrap().to_vec();
    let (_, runs) = pages_of(&file, root);
    let &(first, n) = runs.first().expect("a multi-page leaf");
    let at = (first * u64::from(PS)) as usize;
    let node = NodeRef::parse(page_bytes(&file, first, PS).unwrap(), first).unwrap();
    let key = node.key(0).unwrap().to_vec();
    assert_eq!(
        get(&file, PS, root, &key, None).unwrap(),
        model.get(&key).map(|v| &v[..])
    );
    // The leaf's length changed (to every other value, including "one page" and past
    // the end of the file), or a byte of its last page changed: an error naming the
    // leaf's first page, never a value.
    let mut damages: Vec<(usize, u8)> = [0u8, 1, 3, 4, 16, 17, 200, 255]
        .into_iter()
        .filter(|&len| u64::from(len) != n)
        .map(|len| (at + 19, len))
        .collect();
    let last = at + (n as usize) * PS as usize - 1;
    damages.push((last, file[last] ^ 1));
    for (offset, byte) in damages {
        let mut bad = file.clone();
        bad[offset] = byte;
        match get(&bad, PS, root, &key, None) {
            Err(Error::Corrupted { page, .. }) => assert_eq!(page, first),
            other => panic!("a damaged leaf read as {other:?}"),
        }
        assert!(walk(&bad, PS, root, |_, _, _| {}).is_err());
    }
}

/// An error about bytes inside a multi-page leaf's later page (a value that does not
/// decode, a damaged version list) names the leaf's first page, the page its parent
/// names: it named the page the value started on, which has no header of its own.
#[test]
fn an_error_about_a_value_in_a_later_page_of_a_leaf_names_its_first_page() {
    let (sim, _pager, root, _) = build(400, 1000);
    let file = sim.view().unwrap().to_vec();
    let (_, runs) = pages_of(&file, root);
    let &(first, n) = runs.first().expect("a multi-page leaf");
    let node = NodeRef::parse(page_bytes(&file, first, PS).unwrap(), first).unwrap();
    let ps = u64::from(PS);
    let value_in_later_page = (0..node.count())
        .filter_map(|i| match node.value(i).ok()? {
            CellValue::Inline(v) => Some(v),
            _ => None,
        })
        .find(|v| crate::util::offset_in(&file, v).is_some_and(|o| o as u64 / ps > first))
        .expect("a value in a later page of the leaf");
    let named = Error::corrupted(0, "a value that does not decode").on_node_page_of(
        &file,
        value_in_later_page,
        PS,
    );
    assert!(
        matches!(named, Error::Corrupted { page, .. } if page == first),
        "{named}"
    );
    assert!(n > 1);
    // A page of no multi-page leaf keeps its own number.
    assert_eq!(node_first_page(&file, PS, first), first);
}

#[test]
fn runs_are_found_past_the_free_pages_that_cannot_hold_them() {
    let sim = SimStorage::new();
    let pager = Pager::new(Arc::new(sim.clone()), PS, 2, BTreeSet::new()).unwrap();
    let first = pager.alloc_run(40).unwrap();
    // Every other page free: no two free pages are adjacent.
    pager.free((first..first + 40).step_by(2));
    let end = pager.high_water();
    assert_eq!(pager.alloc_run(2).unwrap(), end, "no run in the free set");
    assert_eq!(
        pager.alloc_run(2).unwrap(),
        end + 2,
        "the search resumes, none found"
    );
    // A page joining the free set makes a run of two: found again from the start.
    pager.free([first + 1]);
    assert_eq!(pager.alloc_run(2).unwrap(), first);
    assert_eq!(pager.alloc_run(1).unwrap(), first + 2);
}

/// At 32 KiB pages a leaf grows to two pages, 64 KiB, the most a leaf may hold (its cell
/// offsets are `u16`s); at 64 KiB pages it never grows. Every cell reads back either way.
#[test]
fn the_largest_leaves_keep_every_offset_in_range() {
    for (page_size, value_len, want_pages) in [(32_768u32, 9_000usize, 2u64), (65_536, 17_000, 1)] {
        let mut b = NodeBuilder::new(true, page_size);
        let value = vec![3u8; value_len];
        let mut keys = Vec::new();
        loop {
            let k = key(keys.len() as u32);
            let tkey = TreeKey::whole(&k);
            if !b.admit(&tkey, value.len()) {
                break;
            }
            b.push_leaf_inline(&tkey, &value);
            keys.push(k);
        }
        assert_eq!(b.pages(), want_pages, "{page_size}-byte pages");
        let page = 1u64;
        let mut file = vec![0u8; page_size as usize];
        file.extend(b.finish(page).unwrap());
        let bytes = page_bytes(&file, page, page_size).unwrap();
        assert_eq!(bytes.len() as u64, want_pages * u64::from(page_size));
        let node = NodeRef::parse(bytes, page).unwrap();
        assert_eq!(node.count(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            let (got, value) = node.entry(i).unwrap();
            assert_eq!(got.to_vec(), *k);
            assert_eq!(
                value,
                super::page::CellValue::Inline(&vec![3u8; value_len][..])
            );
        }
    }
}

/// Compaction rewrites every leaf with a page at or above its mark, a multi-page leaf
/// that starts below the mark included, and no leaf that ends below it.
#[test]
fn a_leaf_reaching_past_the_compaction_mark_is_moved() {
    use super::build::reaches;
    let (sim, _pager, root, _) = build(400, 1000);
    let file = sim.view().unwrap();
    let (_, runs) = pages_of(&file, root);
    let &(first, n) = runs.first().expect("a multi-page leaf");
    for mark in first..=first + n {
        assert_eq!(
            reaches(&file, PS, first, mark).unwrap(),
            mark < first + n,
            "mark {mark}"
        );
    }
    assert!(!reaches(&file, PS, first, u64::MAX).unwrap());
    assert!(reaches(&file, PS, first, 0).unwrap());
}
