//! A version store left well filled by a burst of commits is folded into the tree once
//! commits stop, without another commit to start the checkpoint, and the commit index
//! forgets those commits; the watcher that does it never keeps a dropped database open.

use capsuledb::{Database, Durability, Options};
use std::time::{Duration, Instant};

/// Generous: the fold starts within about 100 ms of the last commit on an idle machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// A burst of durable commits of `keys` keys each (`rounds` of them), all under the
/// store's budget, so no commit starts a checkpoint. Returns whether a checkpoint ran
/// before the last commit: the idle watcher folds once it sees no commit for 50 to
/// 100 ms, which a thread descheduled that long between two commits on a loaded
/// machine gives it; the commits after such a fold may leave less than the sixteenth
/// that starts a watcher, and then, by design, nothing folds them.
fn burst(db: &Database, rounds: u64, keys: u64) -> bool {
    let mut c = db.connect();
    let checkpoints = db.stats().checkpoints;
    let mut folded_before_last = false;
    for r in 0..rounds {
        if r + 1 == rounds {
            folded_before_last = db.stats().checkpoints != checkpoints;
        }
        let mut tx = c.begin().unwrap();
        for k in 0..keys {
            let key = (r * keys + k).to_be_bytes();
            tx.put("t", &key, &[r as u8; 100]).unwrap();
        }
        tx.commit_with(Durability::Durable).unwrap();
    }
    folded_before_last
}

fn open(path: &std::path::Path) -> Database {
    Options::new()
        .version_store_budget(4 << 20)
        .open(path)
        .unwrap()
}

/// Creates the table `t` the bursts write.
fn create_table(db: &Database) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_filled_store_is_folded_once_commits_stop() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("idle.db"));
    create_table(&db);
    let before = db.stats();
    // One commit of 2,000 keys of about 110 bytes: 220 KB, over a sixteenth of the
    // 4 MiB budget (one commit, so no fold can come between two of the burst's).
    burst(&db, 1, 2_000);
    // The fold may already have run (it starts 50 to 100 ms after the commit).
    let tip = db.stats().tip_seq;
    let start = Instant::now();
    while db.stats().version_bytes > 0 {
        assert!(
            start.elapsed() < PATIENCE,
            "the store was never folded: {:?}",
            db.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let after = db.stats();
    assert_eq!(after.tip_seq, tip, "folded without a commit");
    assert!(after.checkpoints > before.checkpoints);
    // Every key reads back from the tree.
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    for k in 0..2000u64 {
        let v = tx.get("t", &k.to_be_bytes()).unwrap().unwrap();
        assert_eq!(v, vec![0u8; 100]);
    }
    assert!(db.check_integrity().unwrap().problems.is_empty());
}

/// A load in batches of thousands of keys: each batch forgets its predecessor's
/// commit-index record as it commits (with a fresh horizon, not one up to 64 commits
/// old), and once commits stop the watcher forgets the last one, so the small commits
/// after the load find no backlog of the load's keys to prune. Before, the index kept up
/// to 64 batches' keys and the next commits paid for them, a thousand keys each.
#[test]
fn a_load_in_batches_leaves_the_commit_index_no_backlog() {
    let dir = tempfile::tempdir().unwrap();
    // A fold between two batches (see `burst`) is tried again on a fresh file: five
    // such stalls in a row are not the scheduling this test is about.
    let mut tries = 0;
    let db = loop {
        let db = Options::new()
            .version_store_budget(32 << 20)
            .open(dir.path().join(format!("batches{tries}.db")))
            .unwrap();
        create_table(&db);
        // 40 batches of 1,100 keys (more than the 1,024 a commit prunes besides its
        // own share): about 5 MB, over the watcher's sixteenth of the budget, under the
        // budget.
        if !burst(&db, 40, 1_100) {
            break db;
        }
        tries += 1;
        assert!(tries < 5, "a fold came between two batches five times");
    };
    let loaded = db.stats();
    assert!(
        loaded.commit_index_records <= 2,
        "each batch forgets the one before it: {loaded:?}"
    );
    let start = Instant::now();
    while db.stats().commit_index_records > 0 || db.stats().version_bytes > 0 {
        assert!(
            start.elapsed() < PATIENCE,
            "the load's last records were never forgotten: {:?}",
            db.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(db.stats().tip_seq, loaded.tip_seq, "without a commit");
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.iter("t").unwrap().count(), 44_000);
}

#[test]
fn a_small_store_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("small.db"));
    create_table(&db);
    assert!(!burst(&db, 3, 10));
    let before = db.stats();
    std::thread::sleep(Duration::from_millis(400));
    let after = db.stats();
    assert_eq!(after.checkpoints, before.checkpoints);
    assert_eq!(after.version_bytes, before.version_bytes);
}

#[test]
fn a_watching_database_reopens_at_once_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reopen.db");
    for round in 0..5u64 {
        let db = open(&path);
        if round == 0 {
            create_table(&db);
        }
        // A watcher is started by this burst and is still waiting when the database
        // is dropped; the next open must not find the file held.
        burst(&db, 20, 100);
        drop(db);
    }
    let db = open(&path);
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.iter("t").unwrap().count(), 2000);
}

/// A load over the whole budget sent through the log by a live snapshot, that snapshot
/// ended soon after: folded once commits stop. Its commit started the budget's
/// checkpoint (which could fold nothing past the snapshot) and so no idle watcher, and
/// the load stayed in the store until some later commit.
#[test]
fn a_load_over_the_budget_held_back_by_a_snapshot_is_folded_once_idle() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("over.db"));
    create_table(&db);
    let mut reader = db.connect();
    let held = reader.begin_read().unwrap();
    // 50,000 keys of about 110 bytes: over 5 MiB, over the 4 MiB budget.
    burst(&db, 1, 50_000);
    assert!(
        db.stats().version_bytes > 0,
        "the snapshot held the load back"
    );
    drop(held);
    // A deadline for a liveness check, not a measure: the watcher looks every 50 ms.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db.stats().version_bytes > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the load stayed in the store: {} bytes",
            db.stats().version_bytes
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
