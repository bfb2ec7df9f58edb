//! Uniform leaves (`format-spec/btree.md`, "Uniform leaf"): a table of fixed-size pairs
//! takes leaves without cell heads or offsets, and reads back by point reads and scans
//! both ways through updates that break and restore the uniformity, deletes, checkpoints,
//! reopen and compaction, with `check_integrity` clean at each step.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Options};
use std::collections::BTreeMap;
use std::sync::Arc;

const PAIRS: u64 = 20_000;

fn open(sim: &SimStorage) -> Database {
    Options::new()
        .random_seed(5)
        .open_storage(Arc::new(sim.clone()))
        .unwrap()
}

/// Checks every pair by point reads and by scans both ways, and the integrity report;
/// returns the tree's pages.
fn check(db: &Database, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> u64 {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    for (k, v) in model {
        assert_eq!(tx.get("t", k).unwrap().as_deref(), Some(&v[..]));
    }
    let forward: Vec<(Vec<u8>, Vec<u8>)> = tx
        .iter("t")
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(forward, want);
    let mut backward: Vec<(Vec<u8>, Vec<u8>)> = tx
        .iter("t")
        .unwrap()
        .rev()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    backward.reverse();
    assert_eq!(backward, want);
    // A key between two stored ones, and past the last, is absent.
    assert_eq!(tx.get("t", &[0u8; 9]).unwrap(), None);
    assert_eq!(tx.get("t", &u64::MAX.to_be_bytes()).unwrap(), None);
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    report.tree_pages
}

#[test]
fn fixed_size_pairs_take_uniform_leaves_and_read_back_through_changes() {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut model = BTreeMap::new();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..PAIRS {
        // Keys spread over the u64 range, values of 8 bytes.
        let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec();
        let v = i.to_le_bytes().to_vec();
        tx.put("t", &k, &v).unwrap();
        model.insert(k, v);
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    let pages = check(&db, &model);
    // 20,000 pairs of 16 bytes: 254 cells to a uniform leaf (32 + 254 × 16 bytes of a
    // 4 KiB page), 79 full leaves; compact leaves of 22 bytes a cell would take 109.
    // Leaves are filled to where the next key lands, and there are branches: at most 100.
    assert!(pages <= 100, "{pages} tree pages");

    // Longer values on every 13th key break the uniformity of the leaves they land in;
    // every 11th key is deleted; then the long values are put back to 8 bytes.
    let mut tx = c.begin().unwrap();
    for (n, k) in model
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .enumerate()
    {
        if n % 11 == 0 {
            tx.delete("t", &k).unwrap();
            model.remove(&k);
        } else if n % 13 == 0 {
            let v = vec![n as u8; 9 + n % 30];
            tx.put("t", &k, &v).unwrap();
            model.insert(k, v);
        }
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    check(&db, &model);
    let mut tx = c.begin().unwrap();
    for (k, v) in model.iter_mut() {
        if v.len() != 8 {
            *v = vec![0xAB; 8];
            tx.put("t", k, v).unwrap();
        }
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    let after = check(&db, &model);
    assert!(after <= pages, "{after} tree pages after, {pages} before");
    db.compact().unwrap();
    check(&db, &model);
    drop(c);
    db.close().unwrap();

    let db = open(&sim);
    check(&db, &model);
}
