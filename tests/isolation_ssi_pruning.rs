//! Long-lived transactions: the conflict information they need survives the commit
//! index's pruning and version GC while many other transactions commit.

mod isolation_support;

use capsuledb::Isolation::{self, Serializable, Snapshot};
use capsuledb::{Database, Durability};
use isolation_support::*;

const FILLER_COMMITS: u32 = 300;

fn filler(db: &Database) {
    let mut c = db.connect();
    for i in 0..FILLER_COMMITS {
        let mut tx = c.begin().unwrap();
        put_int(&mut tx, IDX, &format!("f/{i:04}"), i64::from(i));
        tx.commit_with(Durability::Applied).unwrap();
    }
}

// Write skew whose two halves are separated by hundreds of unrelated commits.
fn write_skew_across_pruning(iso: Isolation) {
    let (_d, db) = db_with(IDX, &[("x", 0), ("y", 0)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    assert_eq!(get_int(&t1, IDX, "x"), Some(0)); // T1 reads x
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(get_int(&t2, IDX, "y"), Some(0)); // T2 reads y
    put_int(&mut t2, IDX, "x", 2); // T2 writes x
    let s2 = ok(t2.commit());
    filler(&db);
    assert_eq!(get_int(&t1, IDX, "y"), Some(0), "T1's snapshot survives GC");
    assert_eq!(get_int(&t1, IDX, "x"), Some(0), "T1's snapshot survives GC");
    put_int(&mut t1, IDX, "y", 1); // T1 writes y
    match iso {
        Serializable => assert_conflict(t1.commit(), IDX, &["x", "y"], &[s2]),
        Snapshot => drop(ok(t1.commit())),
    }
}

#[test]
fn write_skew_across_pruning_serializable() {
    write_skew_across_pruning(Serializable);
}

#[test]
fn write_skew_across_pruning_snapshot() {
    write_skew_across_pruning(Snapshot);
}

// Lost update whose two halves are separated by hundreds of unrelated commits.
fn lost_update_across_pruning(iso: Isolation) {
    let (_d, db) = db_with(IDX, &[("x", 0)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    put_int(&mut t2, IDX, "x", 2);
    let s2 = ok(t2.commit());
    filler(&db);
    let v = get_int(&t1, IDX, "x").unwrap();
    assert_eq!(v, 0);
    put_int(&mut t1, IDX, "x", v + 1);
    assert_write_conflict(t1.commit(), IDX, "x", s2);
}

#[test]
fn lost_update_across_pruning_serializable() {
    lost_update_across_pruning(Serializable);
}

#[test]
fn lost_update_across_pruning_snapshot() {
    lost_update_across_pruning(Snapshot);
}

// The read-only anomaly's report (T_in) after the pivot's out-edge target committed
// long before, with pruning in between.
#[test]
fn read_only_t_in_across_pruning_serializable() {
    let (_d, db) = db_with(IDX, &[("x", 0), ("y", 0)]);
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut pivot = c2.begin().unwrap();
    assert_eq!(get_int(&pivot, IDX, "y"), Some(0)); // pivot reads y
    let mut t_out = c1.begin().unwrap();
    put_int(&mut t_out, IDX, "y", 20);
    ok(t_out.commit()); // T_out commits first
    let t_in = c3.begin().unwrap();
    assert_eq!(get_int(&t_in, IDX, "y"), Some(20)); // T_in sees T_out ...
    assert_eq!(get_int(&t_in, IDX, "x"), Some(0)); // ... but not the pivot
    put_int(&mut pivot, IDX, "x", -11);
    let s_pivot = ok(pivot.commit());
    filler(&db);
    assert_conflict(t_in.commit(), IDX, &["x"], &[s_pivot]);
}

// A read-only snapshot never validates, so a long one (a backup) holds back none of the
// commit index's pruning: the index forgets the commits after it, while the snapshot
// still reads its own state. A read-write transaction of the same age keeps them.
#[test]
fn a_long_read_only_snapshot_holds_back_no_pruning() {
    let (_d, db) = db_with(IDX, &[("x", 0)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let reader = c1.begin_read().unwrap();
    filler(&db);
    let records = db.stats().commit_index_records;
    assert!(
        records < FILLER_COMMITS as usize / 2,
        "{records} records kept for a snapshot that never validates"
    );
    assert_eq!(get_int(&reader, IDX, "x"), Some(0));
    assert_eq!(get_int(&reader, IDX, "f/0000"), None, "its own state");
    drop(reader);
    let writer = c2.begin().unwrap();
    filler(&db);
    let records = db.stats().commit_index_records;
    assert!(
        records >= FILLER_COMMITS as usize,
        "{records} records kept for a transaction that may commit"
    );
    drop(writer);
}
