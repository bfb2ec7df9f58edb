//! Classic serializable-snapshot-isolation cases (PostgreSQL's `src/test/isolation/specs`
//! and Ports & Grittner, VLDB 2012), phantoms through empty and tombstone-only ranges,
//! and the precision cases where SSI must *not* abort.
//!
//! Each transaction has its own `Connection`; statements run on one thread in the order
//! written. Snapshots are taken at `begin`, so `begin` stands where PostgreSQL's first
//! statement would take the snapshot.

mod isolation_support;

use capsuledb::Isolation::{self, Serializable, Snapshot};
use capsuledb::{Database, Durability};
use isolation_support::*;

// ---------------------------------------------------------------------------------------
// Receipt report (receipt-report.spec): T1 inserts a receipt dated with the current
// deposit date, T2 closes the day (moves the deposit date on), T3 reports the receipts
// of the closed day. T3 ->rw T1 ->rw T2 with T2 ->wr T3: the report misses a receipt of
// a day it saw closed. T3 is a read-only Serializable transaction (`begin()`).

const CTL: &str = "ctl";
const RECEIPT: &str = "receipt";
const DAY_1: i64 = 20081222;
const DAY_2: i64 = 20081223;

fn receipt_key(day: i64, no: u32) -> String {
    format!("{day}/{no:04}")
}

fn receipts_db() -> (tempfile::TempDir, Database) {
    let (d, db) = db_with(CTL, &[("receipt", DAY_1)]);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table(RECEIPT).unwrap();
    put_int(&mut tx, RECEIPT, &receipt_key(DAY_1, 1), 100);
    put_int(&mut tx, RECEIPT, &receipt_key(DAY_1, 2), 200);
    tx.commit().unwrap();
    drop(c);
    (d, db)
}

/// The receipts of `day`: a range scan over the day's key prefix.
fn receipts_of(tx: &capsuledb::Transaction<'_>, day: i64) -> Vec<(String, i64)> {
    // '/' < '0', so "DAY/" .. "DAY0" is exactly the keys with prefix "DAY/".
    scan(tx, RECEIPT, &format!("{day}/"), &format!("{day}0"))
}

/// T3 reads the date, then reports the day before it; returns (date, receipts).
fn report(tx: &capsuledb::Transaction<'_>) -> (i64, Vec<(String, i64)>) {
    let date = get_int(tx, CTL, "receipt").unwrap();
    assert_eq!(date, DAY_2, "the report runs after the day was closed");
    (date, receipts_of(tx, DAY_1))
}

fn all_day_1() -> Vec<(String, i64)> {
    rows(&[
        (&receipt_key(DAY_1, 1), 100),
        (&receipt_key(DAY_1, 2), 200),
        (&receipt_key(DAY_1, 3), 400),
    ])
}

// rx1, wx2, c2, rx3, ry3, c3, wy1, c1: the pivot T1 commits last and is refused.
fn receipt_report_pivot_commits_last(iso: Isolation) {
    let (_d, db) = receipts_db();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    let day = get_int(&t1, CTL, "receipt").unwrap(); // rx1
    assert_eq!(day, DAY_1);
    put_int(&mut t2, CTL, "receipt", DAY_2); // wx2
    let s2 = ok(t2.commit()); // c2
    let t3 = c3.begin_with(iso).unwrap();
    let (_, seen) = report(&t3); // rx3, ry3
    assert_eq!(seen, all_day_1()[..2].to_vec());
    ok(t3.commit()); // c3
    put_int(&mut t1, RECEIPT, &receipt_key(day, 3), 400); // wy1
    match iso {
        Serializable => {
            assert_conflict(t1.commit(), CTL, &["receipt"], &[s2]); // c1
            let tx = c3.begin_read().unwrap();
            assert_eq!(receipts_of(&tx, DAY_1), seen, "the report stays true");
        }
        Snapshot => {
            ok(t1.commit()); // c1
            let tx = c3.begin_read().unwrap();
            assert_eq!(
                receipts_of(&tx, DAY_1),
                all_day_1(),
                "the closed day gained a receipt its report missed"
            );
        }
    }
}

#[test]
fn receipt_report_pivot_commits_last_serializable() {
    receipt_report_pivot_commits_last(Serializable);
}

#[test]
fn receipt_report_pivot_commits_last_snapshot() {
    receipt_report_pivot_commits_last(Snapshot);
}

// rx1, wx2, c2, rx3, ry3, wy1, c1, c3: T1 is admitted (T3 has not committed), and the
// read-only report T3 closes the cycle and is refused.
fn receipt_report_read_only_commits_last(iso: Isolation) {
    let (_d, db) = receipts_db();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    let day = get_int(&t1, CTL, "receipt").unwrap(); // rx1
    put_int(&mut t2, CTL, "receipt", DAY_2); // wx2
    ok(t2.commit()); // c2
    let t3 = c3.begin_with(iso).unwrap();
    let (_, seen) = report(&t3); // rx3, ry3
    assert_eq!(seen.len(), 2);
    put_int(&mut t1, RECEIPT, &receipt_key(day, 3), 400); // wy1
    let s1 = ok(t1.commit()); // c1
    match iso {
        Serializable => {
            let k3 = receipt_key(DAY_1, 3);
            assert_conflict(t3.commit(), RECEIPT, &[k3.as_str()], &[s1]); // c3
        }
        Snapshot => {
            ok(t3.commit()); // c3: a report that missed receipt 3 of a closed day
        }
    }
    let tx = c3.begin_read().unwrap();
    assert_eq!(receipts_of(&tx, DAY_1), all_day_1());
}

#[test]
fn receipt_report_read_only_commits_last_serializable() {
    receipt_report_read_only_commits_last(Serializable);
}

#[test]
fn receipt_report_read_only_commits_last_snapshot() {
    receipt_report_read_only_commits_last(Snapshot);
}

// A serial schedule of the same three transactions: every commit succeeds and the
// report includes the receipt.
fn receipt_report_serial(iso: Isolation) {
    let (_d, db) = receipts_db();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let day = get_int(&t1, CTL, "receipt").unwrap();
    put_int(&mut t1, RECEIPT, &receipt_key(day, 3), 400);
    ok(t1.commit());
    let mut t2 = c2.begin_with(iso).unwrap();
    put_int(&mut t2, CTL, "receipt", DAY_2);
    ok(t2.commit());
    let t3 = c3.begin_with(iso).unwrap();
    assert_eq!(report(&t3).1, all_day_1());
    ok(t3.commit());
}

#[test]
fn receipt_report_serial_serializable() {
    receipt_report_serial(Serializable);
}

#[test]
fn receipt_report_serial_snapshot() {
    receipt_report_serial(Snapshot);
}

// ---------------------------------------------------------------------------------------
// Two IDs (two-ids.spec): T1 increments D1; T2 sets D2 = D1 + 1; T3 reads D2. The spec's
// required failures: T2 overlaps T1 and T3, and T1 commits before T3 reads. T3 ->rw T2
// ->rw T1 with T1 committed first.

const D1: &str = "d1";
const D2: &str = "d2";

fn two_ids_db() -> (tempfile::TempDir, Database) {
    let (d, db) = db_with(D1, &[("id", 1)]);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table(D2).unwrap();
    put_int(&mut tx, D2, "id", 1);
    tx.commit().unwrap();
    drop(c);
    (d, db)
}

/// rxwy2, wx1, c1, ry3, then c2 and c3 in the given order.
fn two_ids(iso: Isolation, t3_commits_first: bool) {
    let (_d, db) = two_ids_db();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t2 = c2.begin_with(iso).unwrap();
    let x2 = get_int(&t2, D1, "id").unwrap();
    put_int(&mut t2, D2, "id", x2 + 1); // rxwy2: D2 = 2
    let mut t1 = c1.begin_with(iso).unwrap();
    let x1 = get_int(&t1, D1, "id").unwrap();
    put_int(&mut t1, D1, "id", x1 + 1); // wx1: D1 = 2
    let s1 = ok(t1.commit()); // c1
    let t3 = c3.begin_with(iso).unwrap();
    assert_eq!(get_int(&t3, D2, "id"), Some(1)); // ry3
    if t3_commits_first {
        ok(t3.commit()); // c3
        match iso {
            Serializable => assert_conflict(t2.commit(), D1, &["id"], &[s1]), // c2
            Snapshot => drop(ok(t2.commit())),
        }
    } else {
        let s2 = ok(t2.commit()); // c2
        match iso {
            Serializable => assert_conflict(t3.commit(), D2, &["id"], &[s2]), // c3
            Snapshot => drop(ok(t3.commit())),
        }
    }
}

#[test]
fn two_ids_t3_commits_first_serializable() {
    two_ids(Serializable, true);
}

#[test]
fn two_ids_t3_commits_first_snapshot() {
    two_ids(Snapshot, true);
}

#[test]
fn two_ids_t2_commits_first_serializable() {
    two_ids(Serializable, false);
}

#[test]
fn two_ids_t2_commits_first_snapshot() {
    two_ids(Snapshot, false);
}

// ---------------------------------------------------------------------------------------
// Classroom scheduling (classroom-scheduling.spec): room 101 is booked 10:00-11:00 by
// Bob. Keys are "101/<start>", values the end time. T1 checks 13:00-14:00 is free and
// books it; T2 checks 13:30-14:30 is free and moves Bob there. Each scan covers the
// other's insert (and T1's covers Bob's deleted key): write skew through ranges. The
// check scans every reservation starting before the requested end.

const ROOMS: &str = "rooms";

fn rooms_db() -> (tempfile::TempDir, Database) {
    db_with(ROOMS, &[("101/1000", 1100)])
}

/// Reservations of room 101 overlapping `[start, end)`, except `skip`.
fn overlapping(
    tx: &capsuledb::Transaction<'_>,
    start: i64,
    end: i64,
    skip: &str,
) -> Vec<(String, i64)> {
    // Every reservation starting before `end`; keep those ending after `start`.
    scan(tx, ROOMS, "101/", &format!("101/{end:04}"))
        .into_iter()
        .filter(|(k, v)| *v > start && k != skip)
        .collect()
}

fn classroom_scheduling(iso: Isolation, t2_commits_first: bool) {
    let (_d, db) = rooms_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(overlapping(&t1, 1300, 1400, ""), vec![]); // rx1
    assert_eq!(overlapping(&t2, 1330, 1430, "101/1000"), vec![]); // ry2
    put_int(&mut t1, ROOMS, "101/1300", 1400); // wy1: Carol
    del(&mut t2, ROOMS, "101/1000"); // wx2: Bob moves
    put_int(&mut t2, ROOMS, "101/1330", 1430);
    let (first, second) = if t2_commits_first {
        (t2.commit(), t1.commit())
    } else {
        (t1.commit(), t2.commit())
    };
    let s_first = ok(first);
    match iso {
        Serializable => {
            assert_conflict(
                second,
                ROOMS,
                &["101/1000", "101/1300", "101/1330"],
                &[s_first],
            );
            assert_eq!(
                committed(&db, ROOMS).len(),
                if t2_commits_first { 1 } else { 2 }
            );
        }
        Snapshot => {
            ok(second);
            // Double-booked: 13:00-14:00 and 13:30-14:30.
            assert_eq!(
                committed(&db, ROOMS),
                rows(&[("101/1300", 1400), ("101/1330", 1430)])
            );
        }
    }
}

#[test]
fn classroom_scheduling_serializable() {
    classroom_scheduling(Serializable, false);
}

#[test]
fn classroom_scheduling_snapshot() {
    classroom_scheduling(Snapshot, false);
}

#[test]
fn classroom_scheduling_t2_first_serializable() {
    classroom_scheduling(Serializable, true);
}

#[test]
fn classroom_scheduling_t2_first_snapshot() {
    classroom_scheduling(Snapshot, true);
}

// Disjoint bookings: T1's check (every start before 14:00) covers T2's 08:00 insert,
// but T2's check (starts before 09:00) does not cover T1's 13:00: a single rw edge,
// so both commit even at Serializable.
#[test]
fn classroom_disjoint_bookings_both_commit_serializable() {
    let (_d, db) = rooms_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin().unwrap();
    let mut t2 = c2.begin().unwrap();
    assert_eq!(overlapping(&t1, 1300, 1400, ""), vec![]);
    assert_eq!(overlapping(&t2, 800, 900, ""), vec![]);
    put_int(&mut t1, ROOMS, "101/1300", 1400);
    put_int(&mut t2, ROOMS, "101/0800", 900);
    ok(t2.commit());
    ok(t1.commit());
    assert_eq!(
        committed(&db, ROOMS),
        rows(&[("101/0800", 900), ("101/1000", 1100), ("101/1300", 1400)])
    );
}

// ---------------------------------------------------------------------------------------
// Phantoms: a scanned range is validated even when it returned nothing, or met only
// deleted keys. T1 checks range B is empty and inserts into range C; T2 checks C is
// empty and inserts into B.

const IDX: &str = "idx";

/// `a/1` and `d/1` bracket the (empty) ranges `b/..b0` and `c/..c0`.
fn idx_db() -> (tempfile::TempDir, Database) {
    db_with(IDX, &[("a/1", 1), ("d/1", 1)])
}

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

// ---------------------------------------------------------------------------------------
// Precision: SSI must not abort where no dangerous structure exists.

// T1 reads x; T2 writes x and commits; T1 writes y and commits. One rw edge (T1 ->rw T2).
fn single_rw_edge(iso: Isolation) {
    let (_d, db) = db_with(IDX, &[("x", 0), ("y", 0)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(get_int(&t1, IDX, "x"), Some(0)); // T1 reads x
    put_int(&mut t2, IDX, "x", 2); // T2 writes x
    ok(t2.commit()); // T2 commits
    put_int(&mut t1, IDX, "y", 1); // T1 writes y
    ok(t1.commit()); // T1 commits: serial order T1, T2
    assert_eq!(committed(&db, IDX), rows(&[("x", 2), ("y", 1)]));
}

#[test]
fn single_rw_edge_commits_serializable() {
    single_rw_edge(Serializable);
}

#[test]
fn single_rw_edge_commits_snapshot() {
    single_rw_edge(Snapshot);
}

// T1 reads x and writes y, commits; then T2 writes x and commits. One rw edge into the
// later committer (T1 ->rw T2).
fn single_rw_edge_writer_commits_last(iso: Isolation) {
    let (_d, db) = db_with(IDX, &[("x", 0), ("y", 0)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(get_int(&t1, IDX, "x"), Some(0));
    put_int(&mut t1, IDX, "y", 1);
    ok(t1.commit());
    assert_eq!(get_int(&t2, IDX, "z"), None, "T2 reads something unrelated");
    put_int(&mut t2, IDX, "x", 2);
    ok(t2.commit());
    assert_eq!(committed(&db, IDX), rows(&[("x", 2), ("y", 1)]));
}

#[test]
fn single_rw_edge_writer_commits_last_serializable() {
    single_rw_edge_writer_commits_last(Serializable);
}

#[test]
fn single_rw_edge_writer_commits_last_snapshot() {
    single_rw_edge_writer_commits_last(Snapshot);
}

// A predicate read with one rw edge: T1 scans a range, T2 inserts into it and commits,
// T1 writes outside it and commits.
fn single_rw_edge_range(iso: Isolation) {
    let (_d, db) = idx_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(scan(&t1, IDX, "b/", "b0"), vec![]);
    put_int(&mut t2, IDX, "b/1", 1);
    ok(t2.commit());
    assert_eq!(scan(&t1, IDX, "b/", "b0"), vec![], "still T1's snapshot");
    put_int(&mut t1, IDX, "c/1", 1);
    ok(t1.commit());
    assert_eq!(
        committed(&db, IDX),
        rows(&[("a/1", 1), ("b/1", 1), ("c/1", 1), ("d/1", 1)])
    );
}

#[test]
fn single_rw_edge_range_commits_serializable() {
    single_rw_edge_range(Serializable);
}

#[test]
fn single_rw_edge_range_commits_snapshot() {
    single_rw_edge_range(Snapshot);
}

// Two rw edges T_in ->rw P ->rw T_out, but T_in commits first and T_out before P: T_out
// is not the first committer, so the structure is not dangerous (serial order
// T_in, P, T_out) and all three commit.
fn two_rw_edges_t_out_not_first(iso: Isolation) {
    let (_d, db) = db_with(IDX, &[("x", 0), ("y", 0)]);
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t_in = c1.begin_with(iso).unwrap();
    let mut p = c2.begin_with(iso).unwrap();
    let mut t_out = c3.begin_with(iso).unwrap();
    assert_eq!(get_int(&t_in, IDX, "x"), Some(0)); // T_in reads x
    assert_eq!(get_int(&p, IDX, "y"), Some(0)); // P reads y
    put_int(&mut t_in, IDX, "z", 1);
    ok(t_in.commit()); // T_in commits first
    put_int(&mut t_out, IDX, "y", 1);
    ok(t_out.commit()); // then T_out
    put_int(&mut p, IDX, "x", 1);
    ok(p.commit()); // P last: T_in ->rw P ->rw T_out, T_out not first
    assert_eq!(committed(&db, IDX), rows(&[("x", 1), ("y", 1), ("z", 1)]));
}

#[test]
fn two_rw_edges_t_out_not_first_commits_serializable() {
    two_rw_edges_t_out_not_first(Serializable);
}

#[test]
fn two_rw_edges_t_out_not_first_commits_snapshot() {
    two_rw_edges_t_out_not_first(Snapshot);
}

// ---------------------------------------------------------------------------------------
// Long-lived transactions: the conflict information they need survives the commit
// index's pruning and version GC while many other transactions commit.

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
