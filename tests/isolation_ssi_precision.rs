//! Precision: SSI must not abort where no dangerous structure exists.
//!
//! One rw edge, or two that form no dangerous structure: every transaction commits.

mod isolation_support;

use capsuledb::Isolation::{self, Serializable, Snapshot};
use isolation_support::*;

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
