//! Phantoms: a scanned range is validated even when it returned nothing, or met only
//! deleted keys. T1 checks range B is empty and inserts into range C; T2 checks C is
//! empty and inserts into B.
//!
//! Also write skew through deletes, and `reinsert_after_delete_sequential`: the smallest
//! schedule (put, delete, put again) that met a version-store counting bug, now fixed.

mod isolation_support;

use capsuledb::Database;
use capsuledb::Isolation::{self, Serializable, Snapshot};
use isolation_support::*;

fn cross_insert_into_scanned_ranges(
    db: &Database,
    iso: Isolation,
    reverse: bool,
    b_key: &str,
    c_key: &str,
) {
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    let read = |tx: &capsuledb::Transaction<'_>, lo: &str, hi: &str| {
        if reverse {
            scan_rev(tx, IDX, lo, hi)
        } else {
            scan(tx, IDX, lo, hi)
        }
    };
    assert_eq!(read(&t1, "b/", "b0"), vec![], "T1: range B is empty");
    assert_eq!(read(&t2, "c/", "c0"), vec![], "T2: range C is empty");
    put_int(&mut t1, IDX, c_key, 1); // T1 inserts into C
    put_int(&mut t2, IDX, b_key, 1); // T2 inserts into B
    let s1 = ok(t1.commit());
    match iso {
        Serializable => {
            assert_conflict(t2.commit(), IDX, &[b_key, c_key], &[s1]);
            let mut c = db.connect();
            let t = c.begin_read().unwrap();
            assert_eq!(scan(&t, IDX, "b/", "b0"), vec![]);
            assert_eq!(scan(&t, IDX, "c/", "c0"), rows(&[(c_key, 1)]));
        }
        Snapshot => {
            ok(t2.commit());
            let mut c = db.connect();
            let t = c.begin_read().unwrap();
            assert_eq!(scan(&t, IDX, "b/", "b0"), rows(&[(b_key, 1)]));
            assert_eq!(scan(&t, IDX, "c/", "c0"), rows(&[(c_key, 1)]));
        }
    }
}

fn phantom_empty_range(iso: Isolation) {
    let (_d, db) = idx_db();
    cross_insert_into_scanned_ranges(&db, iso, false, "b/1", "c/1");
}

#[test]
fn phantom_empty_range_serializable() {
    phantom_empty_range(Serializable);
}

#[test]
fn phantom_empty_range_snapshot() {
    phantom_empty_range(Snapshot);
}

fn phantom_empty_range_reverse(iso: Isolation) {
    let (_d, db) = idx_db();
    cross_insert_into_scanned_ranges(&db, iso, true, "b/1", "c/1");
}

#[test]
fn phantom_empty_range_reverse_serializable() {
    phantom_empty_range_reverse(Serializable);
}

#[test]
fn phantom_empty_range_reverse_snapshot() {
    phantom_empty_range_reverse(Snapshot);
}

/// Inserts `n` keys `<prefix>NNN` into both ranges and deletes them again, in two
/// committed transactions, leaving ranges that hold only tombstones (or nothing, once
/// the versions are collected).
fn fill_and_delete(db: &Database, n: u32) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for i in 0..n {
        put_int(&mut tx, IDX, &format!("b/{i:03}"), 1);
        put_int(&mut tx, IDX, &format!("c/{i:03}"), 1);
    }
    tx.commit().unwrap();
    let mut tx = c.begin().unwrap();
    for i in 0..n {
        del(&mut tx, IDX, &format!("b/{i:03}"));
        del(&mut tx, IDX, &format!("c/{i:03}"));
    }
    tx.commit().unwrap();
}

// The ranges met only deleted keys; T2 re-inserts a deleted key of B.
fn phantom_tombstone_range(iso: Isolation) {
    let (_d, db) = idx_db();
    fill_and_delete(&db, 3);
    cross_insert_into_scanned_ranges(&db, iso, false, "b/001", "c/001");
}

#[test]
fn phantom_tombstone_range_serializable() {
    phantom_tombstone_range(Serializable);
}

#[test]
fn phantom_tombstone_range_snapshot() {
    phantom_tombstone_range(Snapshot);
}

// The same ranges, T2 inserting a key of B that never existed.
fn phantom_tombstone_range_new_key(iso: Isolation) {
    let (_d, db) = idx_db();
    fill_and_delete(&db, 3);
    cross_insert_into_scanned_ranges(&db, iso, false, "b/0015", "c/0015");
}

#[test]
fn phantom_tombstone_range_new_key_serializable() {
    phantom_tombstone_range_new_key(Serializable);
}

#[test]
fn phantom_tombstone_range_new_key_snapshot() {
    phantom_tombstone_range_new_key(Snapshot);
}

// The smallest schedule that meets the bug above, on one connection: put k, delete k,
// put k again. Debug builds panic with "attempt to subtract with overflow" at
// `added_versions -= n` in `VersionStore::apply`: the re-put prunes the two older
// versions (value and tombstone, both at or below the horizon) from a per-commit count
// that only holds the one version just added.
#[test]
fn reinsert_after_delete_sequential() {
    let (_d, db) = db_with(IDX, &[("k", 1)]);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    del(&mut tx, IDX, "k");
    ok(tx.commit());
    let mut tx = c.begin().unwrap();
    put_int(&mut tx, IDX, "k", 2);
    ok(tx.commit());
    assert_eq!(committed(&db, IDX), rows(&[("k", 2)]));
}

// Same while an old snapshot keeps the deleted versions alive, so the scan really walks
// the tombstones rather than finding them collected.
fn phantom_tombstone_range_pinned(iso: Isolation) {
    let (_d, db) = idx_db();
    let mut c0 = db.connect();
    let pin = c0.begin_read().unwrap();
    fill_and_delete(&db, 3);
    cross_insert_into_scanned_ranges(&db, iso, false, "b/001", "c/001");
    assert_eq!(
        scan(&pin, IDX, "b/", "c0"),
        vec![],
        "the pin predates everything"
    );
}

#[test]
fn phantom_tombstone_range_pinned_serializable() {
    phantom_tombstone_range_pinned(Serializable);
}

#[test]
fn phantom_tombstone_range_pinned_snapshot() {
    phantom_tombstone_range_pinned(Snapshot);
}

// Many tombstones (more than one scan batch), forward and reverse, with the inserts at
// the start, in the middle and at the end of the ranges: every batch's span must be in
// the read set, not only the last one.
fn phantom_many_tombstones(iso: Isolation, reverse: bool) {
    for (b_key, c_key) in [("b/", "c/"), ("b/3505", "c/3505"), ("b/999", "c/999")] {
        let (_d, db) = idx_db();
        let mut c0 = db.connect();
        let _pin = c0.begin_read().unwrap();
        fill_and_delete(&db, 700);
        cross_insert_into_scanned_ranges(&db, iso, reverse, b_key, c_key);
    }
}

#[test]
fn phantom_many_tombstones_serializable() {
    phantom_many_tombstones(Serializable, false);
}

#[test]
fn phantom_many_tombstones_snapshot() {
    phantom_many_tombstones(Snapshot, false);
}

#[test]
fn phantom_many_tombstones_reverse_serializable() {
    phantom_many_tombstones(Serializable, true);
}

#[test]
fn phantom_many_tombstones_reverse_snapshot() {
    phantom_many_tombstones(Snapshot, true);
}

// The range met only the transaction's own deletes.
fn phantom_own_tombstones(iso: Isolation) {
    let (_d, db) = db_with(IDX, &[("a/1", 1), ("b/1", 1), ("d/1", 1)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    del(&mut t1, IDX, "b/1"); // T1 deletes the only key of B ...
    assert_eq!(scan(&t1, IDX, "b/", "b0"), vec![], "... then finds B empty");
    assert_eq!(scan(&t2, IDX, "c/", "c0"), vec![]); // T2: C is empty
    put_int(&mut t1, IDX, "c/1", 1); // T1 inserts into C
    put_int(&mut t2, IDX, "b/2", 1); // T2 inserts into B
    let s1 = ok(t1.commit());
    match iso {
        Serializable => {
            assert_conflict(t2.commit(), IDX, &["b/2", "c/1"], &[s1]);
            assert_eq!(
                committed(&db, IDX),
                rows(&[("a/1", 1), ("c/1", 1), ("d/1", 1)])
            );
        }
        Snapshot => {
            ok(t2.commit());
            assert_eq!(
                committed(&db, IDX),
                rows(&[("a/1", 1), ("b/2", 1), ("c/1", 1), ("d/1", 1)])
            );
        }
    }
}

#[test]
fn phantom_own_tombstones_serializable() {
    phantom_own_tombstones(Serializable);
}

#[test]
fn phantom_own_tombstones_snapshot() {
    phantom_own_tombstones(Snapshot);
}

// Write skew through deletes: each deletes its key if the other's is still there.
fn write_skew_by_delete(iso: Isolation) {
    let (_d, db) = db_with(IDX, &[("x", 1), ("y", 1)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(get_int(&t1, IDX, "y"), Some(1));
    del(&mut t1, IDX, "x");
    assert_eq!(get_int(&t2, IDX, "x"), Some(1));
    del(&mut t2, IDX, "y");
    let s1 = ok(t1.commit());
    match iso {
        Serializable => {
            assert_conflict(t2.commit(), IDX, &["x", "y"], &[s1]);
            assert_eq!(committed(&db, IDX), rows(&[("y", 1)]));
        }
        Snapshot => {
            ok(t2.commit());
            assert_eq!(committed(&db, IDX), vec![], "both deleted");
        }
    }
}

#[test]
fn write_skew_by_delete_serializable() {
    write_skew_by_delete(Serializable);
}

#[test]
fn write_skew_by_delete_snapshot() {
    write_skew_by_delete(Snapshot);
}

// Write skew through `Transaction::salvage_table`: T1 copies the table (reading x) and
// writes y; T2 reads y and writes x. The salvage recorded no read, so both committed.
// It now counts as a read of the whole table: the second committer is refused.
#[test]
fn a_salvage_through_a_transaction_is_a_read_of_the_whole_table() {
    let (_d, db) = db_with(IDX, &[("x", 0), ("y", 0)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(Serializable).unwrap();
    let mut t2 = c2.begin_with(Serializable).unwrap();
    let mut seen = 0;
    t1.salvage_table(IDX, |_, _| {
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 2);
    assert_eq!(get_int(&t2, IDX, "y"), Some(0));
    put_int(&mut t1, IDX, "y", 1);
    put_int(&mut t2, IDX, "x", 1);
    ok(t1.commit());
    assert!(
        matches!(t2.commit(), Err(capsuledb::Error::Conflict { .. })),
        "write skew through a salvage committed"
    );
}
