//! Leaves of large cells span several pages (multi-page leaves, `format-spec/btree.md`, "Leaf
//! page"): a table of 1,000-byte values takes at most 1.2x its raw bytes of tree, reads
//! back by point reads and scans both ways through loads, updates, checkpoints, reopen
//! and compaction, and a crash at any I/O point of checkpoints that rewrite runs loses
//! no acknowledged commit and leaves no earlier state.

mod leaf_support;

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Options};
use leaf_support::{crash_at_every_io_point, scan_all};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Values of 1,003 to 1,010 bytes: three cells to a 4 KiB page, seven to a leaf of two.
const VALUE: usize = 1010;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:011}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    let mut v = format!("{i}:{round}:").into_bytes();
    v.resize(VALUE - (i as usize % 8), b'a' + (round % 26) as u8);
    v
}

fn open(sim: &SimStorage) -> Database {
    Options::new()
        .random_seed(3)
        .open_storage(Arc::new(sim.clone()))
        .unwrap()
}

fn assert_reads(db: &Database, want: &BTreeMap<Vec<u8>, Vec<u8>>, context: &str) {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    for (k, v) in want {
        assert_eq!(
            tx.get("t", k).unwrap().as_deref(),
            Some(&v[..]),
            "{context}"
        );
    }
    assert_eq!(tx.get("t", b"key-missing").unwrap(), None, "{context}");
    let forward = scan_all(&tx, "t");
    let all: Vec<(Vec<u8>, Vec<u8>)> = want.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(forward, all, "{context}: forward scan");
    let reverse: Vec<Vec<u8>> = tx
        .range::<&[u8], _>("t", ..)
        .unwrap()
        .rev()
        .map(|r| r.unwrap().0)
        .collect();
    let want_rev: Vec<Vec<u8>> = want.keys().rev().cloned().collect();
    assert_eq!(reverse, want_rev, "{context}: reverse scan");
    let from = key(777);
    let middle: Vec<Vec<u8>> = tx
        .range("t", from.as_slice()..key(1_234).as_slice())
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    let want_mid: Vec<Vec<u8>> = want
        .range(from.clone()..key(1_234))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(middle, want_mid, "{context}: range scan");
}

fn assert_integrity(db: &Database, context: &str) -> u64 {
    let r = db.check_integrity().unwrap();
    assert!(r.is_ok(), "{context}: {:?}", r.problems);
    r.tree_pages
}

#[test]
fn large_values_fill_leaf_runs_and_read_back_everywhere() {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut model = BTreeMap::new();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..2_000u32 {
        tx.put("t", &key(i), &value(i, 0)).unwrap();
        model.insert(key(i), value(i, 0));
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let raw: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
    let tree_pages = assert_integrity(&db, "after the load");
    assert!(
        tree_pages as usize * 4096 * 10 <= raw * 12,
        "{tree_pages} tree pages for {raw} raw bytes"
    );
    assert_reads(&db, &model, "after the load");

    // Updates of every seventh key and deletes of every eleventh, over several commits
    // with a checkpoint between them: the runs that held them are rewritten.
    for round in 1..=3u32 {
        let mut tx = c.begin().unwrap();
        for i in (round..2_000).step_by(7) {
            tx.put("t", &key(i), &value(i, round)).unwrap();
            model.insert(key(i), value(i, round));
        }
        for i in (round..2_000).step_by(11 * round as usize) {
            tx.delete("t", &key(i)).unwrap();
            model.remove(&key(i));
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        assert_integrity(&db, &format!("round {round}"));
        assert_reads(&db, &model, &format!("round {round}"));
    }
    drop(c);
    db.close().unwrap();

    let db = open(&sim);
    assert_integrity(&db, "reopened");
    assert_reads(&db, &model, "reopened");
    db.compact().unwrap();
    assert_integrity(&db, "compacted");
    assert_reads(&db, &model, "compacted");
    db.close().unwrap();
    let db = open(&sim);
    assert_reads(&db, &model, "compacted and reopened");
}

/// The writes of commit `n` (0: the initial load of 600 keys).
fn apply(n: u32, f: &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>)) {
    if n == 0 {
        (0..600).for_each(|i| f(key(i), Some(value(i, 0))));
        return;
    }
    for j in 0..40u32 {
        let i = (j * 15 + n * 7) % 600;
        f(key(i), Some(value(i, n)));
    }
    for j in 0..5u32 {
        f(key((j * 113 + n * 31) % 600), None);
    }
}

/// A workload that rewrites multi-page leaves (commits of 40 updates and 5 deletes, a
/// checkpoint after every second): a crash at any of its I/O points loses nothing.
#[test]
fn crashes_inside_checkpoints_of_leaf_runs_lose_nothing() {
    crash_at_every_io_point(open, 3, apply, |db, _| {
        assert!(
            assert_integrity(db, "uninterrupted") > 0,
            "the workload has a tree"
        );
    });
}
