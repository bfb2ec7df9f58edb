//! Values too large for a leaf live in overflow extents (`format-spec/btree.md`, "Overflow
//! extent"): the value's bytes alone, so a value of a whole number of pages takes exactly
//! that many pages, and a rewritten or deleted value gives its pages back.

use capsuledb::{Database, Options};
use std::collections::BTreeMap;

const PAGE: u64 = 4096;

fn value(i: u32, len: usize, round: u8) -> Vec<u8> {
    (0..len)
        .map(|j| (i as usize * 31 + j) as u8 ^ round)
        .collect()
}

fn check(db: &Database, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let report = db.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let scanned: BTreeMap<Vec<u8>, Vec<u8>> = tx
        .iter("t")
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k, v.to_vec())
        })
        .collect();
    assert_eq!(&scanned, model);
    for (k, v) in model {
        assert_eq!(tx.get("t", k).unwrap().as_deref(), Some(&v[..]));
    }
}

#[test]
fn whole_page_values_take_one_page_each_and_give_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Options::new().open(dir.path().join("x.db")).unwrap();
    let mut model = BTreeMap::new();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..300u32 {
        let (k, v) = (i.to_be_bytes().to_vec(), value(i, 4096, 0));
        tx.put("t", &k, &v).unwrap();
        model.insert(k, v);
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    db.compact().unwrap();
    check(&db, &model);
    let report = db.check_integrity().unwrap();
    // 300 one-page extents and a handful of leaves and branches (an overflow run's
    // header would have made each value two pages).
    assert!(
        (300..320).contains(&report.tree_pages),
        "tree pages {}",
        report.tree_pages
    );

    // Rewrite half the values (some at 8,192 bytes: two pages) and delete a third: the
    // tree keeps only the live values' pages (the old extents are freed).
    for round in 1..=3u8 {
        let mut tx = c.begin().unwrap();
        for i in (0..300u32).filter(|i| i % 2 == u32::from(round) % 2) {
            let k = i.to_be_bytes().to_vec();
            if i % 3 == 0 {
                tx.delete("t", &k).unwrap();
                model.remove(&k);
            } else {
                let len = if i % 5 == 0 { 8192 } else { 4096 };
                let v = value(i, len, round);
                tx.put("t", &k, &v).unwrap();
                model.insert(k, v);
            }
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        check(&db, &model);
    }
    db.compact().unwrap();
    check(&db, &model);
    let r = db.check_integrity().unwrap();
    let live: u64 = model.values().map(|v| v.len() as u64 / PAGE).sum();
    assert!(
        (live..live + 20).contains(&r.tree_pages),
        "tree pages {} for {live} pages of values",
        r.tree_pages
    );

    // Reopened, the extents read back the same.
    drop(c);
    db.close().unwrap();
    let db = Options::new().open(dir.path().join("x.db")).unwrap();
    check(&db, &model);
}
