//! Short-lived processes do not bloat the file (issue 14): each open continues the
//! last capsule and proof pages instead of starting new ones, so 1000 open-commit-close
//! cycles use at most twice the pages 1000 commits from one process use.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Options};
use std::sync::Arc;

const COMMITS: u64 = 1000;
const PAGE_SIZE: u64 = 4096;

fn open(sim: &SimStorage) -> Database {
    Options::new()
        .random_seed(3)
        .open_storage(Arc::new(sim.clone()))
        .unwrap()
}

fn commit(db: &Database, i: u64) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    if i == 1 {
        tx.create_table("t").unwrap();
    }
    tx.put("t", format!("key{i:05}").as_bytes(), b"a small value")
        .unwrap();
    assert_eq!(tx.commit().unwrap().seq, i);
}

/// Pages in the file after `COMMITS` commits, `per_open` per open.
fn pages_used(per_open: u64) -> u64 {
    let sim = SimStorage::new();
    let mut i = 1;
    while i <= COMMITS {
        let db = open(&sim);
        for _ in 0..per_open {
            commit(&db, i);
            i += 1;
        }
        db.close().unwrap();
    }
    let db = open(&sim);
    assert_eq!(db.stats().visible_seq, COMMITS);
    let mut c = db.connect();
    assert_eq!(c.begin_read().unwrap().len("t").unwrap(), COMMITS);
    // The file grows in steps ahead of use; the high-water page is what was used.
    assert!(db.stats().high_water_page <= sim.live_bytes().len() as u64 / PAGE_SIZE);
    db.stats().high_water_page
}

#[test]
fn open_commit_close_cycles_reuse_log_pages() {
    let one_process = pages_used(COMMITS);
    let cycles = pages_used(1);
    println!(
        "{COMMITS} commits: {one_process} pages from one process, {cycles} pages from {COMMITS} open-commit-close cycles"
    );
    assert!(
        cycles <= 2 * one_process,
        "{cycles} pages against {one_process}"
    );
}
