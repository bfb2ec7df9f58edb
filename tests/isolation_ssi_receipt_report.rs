//! A classic serializable-snapshot-isolation case from PostgreSQL's
//! `src/test/isolation/specs`, the read-only anomaly of Ports & Grittner (VLDB 2012).
//!
//! Receipt report (receipt-report.spec): T1 inserts a receipt dated with the current
//! deposit date, T2 closes the day (moves the deposit date on), T3 reports the receipts
//! of the closed day. T3 ->rw T1 ->rw T2 with T2 ->wr T3: the report misses a receipt of
//! a day it saw closed. T3 is a read-only Serializable transaction (`begin()`).
//!
//! Each transaction has its own `Connection`; statements run on one thread in the order
//! written. Snapshots are taken at `begin`, so `begin` stands where PostgreSQL's first
//! statement would take the snapshot.

mod isolation_support;

use capsuledb::Database;
use capsuledb::Isolation::{self, Serializable, Snapshot};
use isolation_support::*;

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
