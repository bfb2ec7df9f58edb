//! Named regression tests of the copy-on-write rebuild (`super`).

use super::*;
use crate::btree::{composite, get};
use crate::format::PageKind;
use crate::rng::Rng;
use crate::storage::{SimStorage, Storage};
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn repeated_small_updates_keep_every_key_current() {
    for seed in 0..200 {
        let sim = SimStorage::new();
        let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
        let mut rng = Rng::new(seed);
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut root = 0;
        model.insert(composite(0, b"t"), 1u64.to_le_bytes().to_vec());
        let mut first = vec![(composite(0, b"t"), Some(Arc::from(&1u64.to_le_bytes()[..])))];
        for round in 0..30u64 {
            let mut changes: BTreeMap<Vec<u8>, Option<Arc<[u8]>>> = first.drain(..).collect();
            for _ in 0..rng.below(6) {
                let t = rng.below(3);
                changes.insert(
                    composite(1, format!("ctr/{t}").as_bytes()),
                    Some(Arc::from(&round.to_le_bytes()[..])),
                );
                let k = composite(1, format!("d/{t}/{}", rng.below(5)).as_bytes());
                let v = if rng.chance(1, 6) {
                    None
                } else {
                    let len = if rng.chance(1, 10) {
                        5000
                    } else {
                        1 + rng.below(200) as usize
                    };
                    Some(Arc::from(vec![round as u8; len]))
                };
                changes.insert(k, v);
            }
            let changes: Vec<Change> = changes.into_iter().collect();
            let file = sim.view().unwrap();
            let built = rebuild(&sim, &pager, &file, root, &changes, &[], u64::MAX).unwrap();
            pager.free(built.freed);
            root = built.root;
            for (k, v) in changes {
                match v {
                    Some(v) => model.insert(k, v.to_vec()),
                    None => model.remove(&k),
                };
            }
            let file = sim.view().unwrap();
            for (k, v) in &model {
                assert_eq!(
                    get(&file, 4096, root, k, None).unwrap(),
                    Some(&v[..]),
                    "seed {seed} round {round} key {:?}",
                    String::from_utf8_lossy(k)
                );
            }
        }
    }
}

/// Many small tables share leaves (`format-spec/btree.md`, "How a checkpoint fills
/// leaves"): found when the first compact-leaf build gave every table a leaf of its
/// own, 5,067 tree pages for 5,000 one-key tables. Large tables still get leaves of
/// their own, and every key reads back, in a first build and after a change to a
/// few of the tables.
#[test]
fn small_tables_share_leaves_and_large_ones_keep_their_own() {
    let sim = SimStorage::new();
    let pager = Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for t in 1..=2_000u64 {
        model.insert(composite(t, b"k"), vec![t as u8; 20]);
    }
    for i in 0..400u32 {
        model.insert(composite(5_000, &i.to_be_bytes()), vec![7; 60]);
    }
    let file = sim.view().unwrap();
    let built = rebuild(&sim, &pager, &file, 0, &puts(&model), &[], u64::MAX).unwrap();
    let file = sim.view().unwrap();
    let mut leaves = Vec::new();
    crate::btree::walk(&file, 4096, built.root, |p, kind, _| {
        if kind == PageKind::Leaf {
            leaves.push(p);
        }
    })
    .unwrap();
    // 2,000 cells of 33 bytes and 400 of 72: about 25 full leaves' worth.
    assert!(leaves.len() < 40, "{} leaves", leaves.len());
    let big_table = 5_000u64.to_be_bytes();
    let big_leaves = leaves
        .iter()
        .map(|&p| NodeRef::parse(page_bytes(&file, p, 4096).unwrap(), p).unwrap())
        .filter(|n| n.key(0).unwrap().table_bytes() == Some(big_table))
        .count();
    assert!(
        big_leaves >= 6,
        "the large table starts {big_leaves} leaves"
    );
    for (k, v) in &model {
        assert_eq!(get(&file, 4096, built.root, k, None).unwrap(), Some(&v[..]));
    }

    // Change every hundredth small table: the merged leaves mix cells copied
    // unchanged with re-encoded ones and may shrink their prefix again.
    pager.free(built.freed);
    let changes: Vec<Change> = (1..=2_000u64)
        .step_by(100)
        .map(|t| (composite(t, b"j"), Some(Arc::from(&b"new"[..]))))
        .collect();
    for (k, v) in &changes {
        model.insert(k.clone(), v.as_deref().unwrap_or(&[]).to_vec());
    }
    let built = rebuild(&sim, &pager, &file, built.root, &changes, &[], u64::MAX).unwrap();
    let file = sim.view().unwrap();
    let keys = crate::btree::walk(&file, 4096, built.root, |_, _, _| {}).unwrap();
    assert_eq!(keys, model.len() as u64);
    for (k, v) in &model {
        assert_eq!(get(&file, 4096, built.root, k, None).unwrap(), Some(&v[..]));
    }
}
