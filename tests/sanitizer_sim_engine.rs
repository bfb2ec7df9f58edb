//! A small engine run on the simulated storage, sized for Miri (`.ci/sanitizers`).
//!
//! Miri cannot map a real file (file-backed `mmap` is unsupported there), so the
//! engine tests that open a path cannot run under it. These two tests drive the same
//! layers above `storage` (format decoders, pager, B+tree, version store, commit and
//! checkpoint threads, zero-copy `ValueRef`s over a `View`) through `SimStorage`, with
//! few enough operations that Miri finishes them in minutes. They are ordinary tests
//! too: `cargo test --release` runs them in milliseconds.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Isolation, Options};
use std::sync::Arc;

const TABLE: &str = "t";
/// Big enough to need several overflow pages.
const BIG_LEN: usize = 20 << 10;

fn open(sim: &SimStorage) -> Database {
    Options::new()
        .random_seed(7)
        .open_storage(Arc::new(sim.clone()))
        .unwrap()
}

fn big(tag: u8) -> Vec<u8> {
    (0..BIG_LEN)
        .map(|i| (i as u8).wrapping_mul(31) ^ tag)
        .collect()
}

#[test]
fn sanitizer_engine_round_trip_on_sim_storage() {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table(TABLE).unwrap();
    for i in 0..16u32 {
        tx.put(TABLE, &i.to_be_bytes(), &i.to_le_bytes()).unwrap();
    }
    tx.put(TABLE, b"big", &big(1)).unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();

    // A zero-copy value read from the mapped tree stays right while a new version is
    // committed, checkpointed and the old pages are freed and compacted away.
    let held = {
        let tx = c.begin_read().unwrap();
        tx.get_ref(TABLE, b"big").unwrap().unwrap()
    };
    let mut tx = c.begin().unwrap();
    tx.put(TABLE, b"big", &big(2)).unwrap();
    for i in 0..8u32 {
        tx.delete(TABLE, &i.to_be_bytes()).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    db.compact().unwrap();
    assert!(*held == *big(1));
    drop(held);

    let tx = c.begin_read().unwrap();
    let keys: Vec<Vec<u8>> = tx.iter(TABLE).unwrap().map(|e| e.unwrap().0).collect();
    assert_eq!(keys.len(), 9);
    assert_eq!(tx.get(TABLE, b"big").unwrap(), Some(big(2)));
    drop(tx);
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    drop(c);
    db.close().unwrap();

    // Recovery reads the durable image back through the format decoders.
    sim.crash_losing_unsynced();
    let db = open(&sim);
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.get(TABLE, b"big").unwrap(), Some(big(2)));
    assert_eq!(
        tx.get(TABLE, &9u32.to_be_bytes()).unwrap(),
        Some(9u32.to_le_bytes().to_vec())
    );
    assert_eq!(tx.get(TABLE, &3u32.to_be_bytes()).unwrap(), None);
}

#[test]
fn sanitizer_threads_commit_and_read_on_sim_storage() {
    const WRITERS: u32 = 2;
    const COMMITS: u32 = 4;
    let sim = SimStorage::new();
    let db = open(&sim);
    {
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table(TABLE).unwrap();
        tx.put(TABLE, b"big", &big(0)).unwrap();
        tx.commit().unwrap();
    }
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let db = db.clone();
            s.spawn(move || {
                let mut c = db.connect();
                for i in 0..COMMITS {
                    let mut tx = c.begin_with(Isolation::Snapshot).unwrap();
                    tx.put(TABLE, &[w as u8, i as u8], &[w as u8; 100]).unwrap();
                    tx.commit_with(Durability::Applied).unwrap();
                }
            });
        }
        let db2 = db.clone();
        s.spawn(move || {
            let mut c = db2.connect();
            let held = c
                .begin_read()
                .unwrap()
                .get_ref(TABLE, b"big")
                .unwrap()
                .unwrap();
            db2.checkpoint().unwrap();
            assert!(*held == *big(0));
        });
    });
    db.checkpoint().unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.len(TABLE).unwrap(), u64::from(WRITERS * COMMITS) + 1);
    drop(tx);
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
