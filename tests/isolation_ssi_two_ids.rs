//! A classic serializable-snapshot-isolation case from PostgreSQL's
//! `src/test/isolation/specs`.
//!
//! Two IDs (two-ids.spec): T1 increments D1; T2 sets D2 = D1 + 1; T3 reads D2. The spec's
//! required failures: T2 overlaps T1 and T3, and T1 commits before T3 reads. T3 ->rw T2
//! ->rw T1 with T1 committed first.
//!
//! Each transaction has its own `Connection`; statements run on one thread in the order
//! written. Snapshots are taken at `begin`, so `begin` stands where PostgreSQL's first
//! statement would take the snapshot.

mod isolation_support;

use capsuledb::Database;
use capsuledb::Isolation::{self, Serializable, Snapshot};
use isolation_support::*;

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
