//! Space and memory stay bounded under a steady update workload with automatic
//! checkpoints; `compact` returns the free tail of the file.

use capsuledb::storage::{SimStorage, Storage};
use capsuledb::{Database, Durability, Options};
use std::sync::Arc;

fn open(sim: &SimStorage) -> Database {
    Options::new()
        .random_seed(9)
        .version_store_budget(256 << 10)
        .checkpoint_log_commits(2_000)
        .open_storage(Arc::new(sim.clone()))
        .unwrap()
}

fn update_round(db: &Database, round: u64, keys: u64) {
    let mut c = db.connect();
    for k in 0..keys {
        let mut tx = c.begin().unwrap();
        let value = vec![(round + k) as u8; 300 + (k as usize * 37) % 2000];
        tx.put("t", &k.to_be_bytes(), &value).unwrap();
        tx.commit_with(Durability::Written).unwrap();
    }
}

#[test]
fn steady_updates_reuse_space_and_bound_memory() {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    const KEYS: u64 = 500;
    let mut sizes = Vec::new();
    for round in 0..24 {
        update_round(&db, round, KEYS);
        sizes.push(sim.len().unwrap());
    }
    let s = db.stats();
    assert!(s.checkpoints >= 5, "budgets trigger checkpoints: {s:?}");
    assert!(
        s.version_bytes < 4 << 20,
        "the version store stays near its budget: {s:?}"
    );
    // After warming up, the file stops growing: every update lands in reused pages.
    let warm = sizes[8];
    let last = *sizes.last().unwrap();
    assert!(
        last <= warm + (2 << 20),
        "file grew from {warm} to {last} bytes: {sizes:?}"
    );
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // Every key reads its last value, through the tree or the store.
    let tx = c.begin_read().unwrap();
    for k in 0..KEYS {
        let v = tx.get("t", &k.to_be_bytes()).unwrap().unwrap();
        assert_eq!(v, vec![(23 + k) as u8; 300 + (k as usize * 37) % 2000]);
    }
    drop(tx);
    drop(c);
    db.close().unwrap();
    sim.crash_losing_unsynced();
    let db = open(&sim);
    assert!(
        db.stats().recovered_commits <= 2_000 + 256,
        "reopen replays only the log after the checkpoint"
    );
    assert!(db.check_integrity().unwrap().is_ok());
}

#[test]
fn compact_returns_the_free_tail() {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for k in 0..3000u64 {
        tx.put("t", &k.to_be_bytes(), &[7u8; 900]).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let mut tx = c.begin().unwrap();
    tx.drop_table("t").unwrap();
    tx.create_table("small").unwrap();
    tx.put("small", b"k", b"v").unwrap();
    tx.commit().unwrap();
    let before = sim.len().unwrap();
    let returned = db.compact().unwrap();
    let after = sim.len().unwrap();
    assert!(
        returned > 0 && after < before / 2,
        "{before} -> {after} bytes ({returned} returned)"
    );
    assert!(db.check_integrity().unwrap().is_ok());
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.tables().unwrap(), vec!["small".to_string()]);
    assert_eq!(tx.get("small", b"k").unwrap(), Some(b"v".to_vec()));
    drop(tx);
    drop(c);
    db.close().unwrap();
    sim.crash_losing_unsynced();
    let db = open(&sim);
    assert!(db.check_integrity().unwrap().is_ok());
    let mut c = db.connect();
    assert_eq!(
        c.begin_read().unwrap().get("small", b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

/// `compact` moves overflow values out of the file's tail too: values written last (a
/// tree commit writes after the log) kept their pages where they were, so the file
/// could not be cut below the highest of them whatever lay free beneath. Here 1 MiB
/// of small pairs is deleted under 400 KiB of 4 KiB values written after it.
#[test]
fn compact_moves_overflow_values_out_of_the_tail() {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("small").unwrap();
    tx.create_table("big").unwrap();
    for k in 0..10_000u64 {
        tx.put("small", &k.to_be_bytes(), &[1u8; 100]).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let mut tx = c.begin().unwrap();
    for k in 0..100u64 {
        tx.put("big", &k.to_be_bytes(), &[k as u8; 4096]).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let mut tx = c.begin().unwrap();
    tx.clear_table("small").unwrap();
    tx.commit().unwrap();
    db.compact().unwrap();
    let after = sim.len().unwrap();
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // The 100 values take 100 pages; with the tree, the log and the header well under
    // 300 (the small pairs took over 250 pages below them).
    assert!(
        after < 300 * 4096,
        "{after} bytes after compaction: {} pages, {} free",
        report.page_count,
        report.free_pages
    );
    let tx = c.begin_read().unwrap();
    for k in 0..100u64 {
        assert_eq!(
            tx.get("big", &k.to_be_bytes()).unwrap(),
            Some(vec![k as u8; 4096])
        );
    }
    assert_eq!(tx.len("small").unwrap(), 0);
}

/// Many updates of a few keys, then a reopen before any checkpoint: the running engine
/// kept only each key's newest version, but the open replayed the whole log keeping
/// every version (the history window started at the checkpoint), far past the budget.
/// Under the default retention a reopen now keeps the newest; under `Commits(n)` the
/// last `n` commits' states, which time travel still reads.
#[test]
fn a_reopen_replays_the_log_within_the_history_window() {
    use capsuledb::HistoryRetention;
    let sim = SimStorage::new();
    let options = |retention| {
        Options::new()
            .random_seed(9)
            .version_store_budget(1 << 20)
            .checkpoint_log_commits(100_000)
            .history_retention(retention)
    };
    let db = options(HistoryRetention::Snapshots)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    for i in 0..4_000u64 {
        let mut tx = c.begin().unwrap();
        tx.put("t", &(i % 4).to_be_bytes(), &[i as u8; 200])
            .unwrap();
        tx.commit_with(Durability::Applied).unwrap();
    }
    let tip = db.stats().tip_seq;
    drop(c);
    db.close().unwrap();

    let db = options(HistoryRetention::Snapshots)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let stats = db.stats();
    assert_eq!(stats.tip_seq, tip);
    assert!(
        stats.versions <= 8 && stats.version_bytes < 64 << 10,
        "a reopen kept {} versions, {} bytes",
        stats.versions,
        stats.version_bytes
    );
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(
        tx.get("t", &3u64.to_be_bytes()).unwrap().as_deref(),
        Some(&[3999u64 as u8; 200][..])
    );
    drop(tx);
    drop(c);
    db.close().unwrap();

    // The last 100 commits' states are kept, and read.
    let db = options(HistoryRetention::Commits(100))
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let versions = db.stats().versions;
    assert!((100..=120).contains(&versions), "{versions}");
    let past = db.begin_read_at(tip - 90).unwrap();
    // Write `i` is commit `i + 2` (the table's creation is commit 1).
    assert_eq!(tip, 4_001);
    let newest_of_3 = (0..4_000u64)
        .filter(|i| i % 4 == 3 && i + 2 <= tip - 90)
        .max()
        .unwrap();
    assert_eq!(
        past.get("t", &3u64.to_be_bytes()).unwrap().as_deref(),
        Some(&[newest_of_3 as u8; 200][..])
    );
    drop(past);
    assert!(db.begin_read_at(tip - 200).is_err());
    db.close().unwrap();
}
