//! A classic serializable-snapshot-isolation case from PostgreSQL's
//! `src/test/isolation/specs`.
//!
//! Classroom scheduling (classroom-scheduling.spec): room 101 is booked 10:00-11:00 by
//! Bob. Keys are "101/<start>", values the end time. T1 checks 13:00-14:00 is free and
//! books it; T2 checks 13:30-14:30 is free and moves Bob there. Each scan covers the
//! other's insert (and T1's covers Bob's deleted key): write skew through ranges. The
//! check scans every reservation starting before the requested end.
//!
//! Each transaction has its own `Connection`; statements run on one thread in the order
//! written. Snapshots are taken at `begin`, so `begin` stands where PostgreSQL's first
//! statement would take the snapshot.

mod isolation_support;

use capsuledb::Database;
use capsuledb::Isolation::{self, Serializable, Snapshot};
use isolation_support::*;

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
