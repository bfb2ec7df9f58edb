//! The Hermitage isolation tests (github.com/ept/hermitage, the PostgreSQL list), each run
//! at both isolation levels.
//!
//! Setup for every case: table `test` holds `1 => 10, 2 => 20`. Each transaction has its
//! own `Connection`; the statements run on one thread in the order written, so each test
//! is exactly one schedule. Snapshots are taken at `begin` (PostgreSQL takes them at the
//! first statement), so where Hermitage's result depends on that, the `begin` is placed
//! where PostgreSQL's snapshot would be.
//!
//! capsuledb buffers writes in the transaction until commit, so nothing blocks: where
//! PostgreSQL blocks a second writer and then aborts it, capsuledb lets it run and
//! refuses its commit (first-committer-wins).
//!
//! Expected: Serializable prevents every anomaly; Snapshot prevents all but G2-item and
//! G2 (and the read-only anomaly, which is a G2 cycle), where both commit and the write
//! skew is visible.

mod isolation_support;

use capsuledb::Isolation::{self, Serializable, Snapshot};
use isolation_support::*;

// ---------------------------------------------------------------------------------------
// G0: write cycles (dirty writes).

fn g0_write_cycles(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    put_int(&mut t1, TEST, "1", 11); // T1
    put_int(&mut t2, TEST, "1", 12); // T2: buffered, does not block
    put_int(&mut t1, TEST, "2", 21); // T1
    assert_eq!(get_int(&t1, TEST, "1"), Some(11), "T1 sees its own write");
    assert_eq!(get_int(&t2, TEST, "1"), Some(12), "T2 sees its own write");
    let s1 = ok(t1.commit()); // T1
    assert_eq!(committed(&db, TEST), rows(&[("1", 11), ("2", 21)]));
    put_int(&mut t2, TEST, "2", 22); // T2
    assert_write_conflict(t2.commit(), TEST, "1", s1); // T2: first committer won
    assert_eq!(
        committed(&db, TEST),
        rows(&[("1", 11), ("2", 21)]),
        "no interleaving of T1's and T2's writes"
    );
}

#[test]
fn g0_write_cycles_serializable() {
    g0_write_cycles(Serializable);
}

#[test]
fn g0_write_cycles_snapshot() {
    g0_write_cycles(Snapshot);
}

// ---------------------------------------------------------------------------------------
// G1a: aborted reads.

fn g1a_aborted_reads(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let t2 = c2.begin_with(iso).unwrap();
    put_int(&mut t1, TEST, "1", 101); // T1
    assert_eq!(select_all(&t2, TEST), rows(&[("1", 10), ("2", 20)])); // T2
    t1.rollback(); // T1 aborts
    assert_eq!(select_all(&t2, TEST), rows(&[("1", 10), ("2", 20)])); // T2
    ok(t2.commit()); // T2
    assert_eq!(committed(&db, TEST), rows(&[("1", 10), ("2", 20)]));
}

#[test]
fn g1a_aborted_reads_serializable() {
    g1a_aborted_reads(Serializable);
}

#[test]
fn g1a_aborted_reads_snapshot() {
    g1a_aborted_reads(Snapshot);
}

// ---------------------------------------------------------------------------------------
// G1b: intermediate reads.

fn g1b_intermediate_reads(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let t2 = c2.begin_with(iso).unwrap();
    put_int(&mut t1, TEST, "1", 101); // T1
    assert_eq!(select_all(&t2, TEST), rows(&[("1", 10), ("2", 20)])); // T2
    put_int(&mut t1, TEST, "1", 11); // T1
    ok(t1.commit()); // T1
    // T2's snapshot predates T1: it sees neither the intermediate 101 nor the final 11.
    assert_eq!(select_all(&t2, TEST), rows(&[("1", 10), ("2", 20)])); // T2
    ok(t2.commit()); // T2
    assert_eq!(committed(&db, TEST), rows(&[("1", 11), ("2", 20)]));
}

#[test]
fn g1b_intermediate_reads_serializable() {
    g1b_intermediate_reads(Serializable);
}

#[test]
fn g1b_intermediate_reads_snapshot() {
    g1b_intermediate_reads(Snapshot);
}

// ---------------------------------------------------------------------------------------
// G1c: circular information flow. Neither transaction sees the other's write, so no
// information flows in a circle at either level. The same schedule is also a write skew
// (each read a row the other wrote), so Serializable refuses the second commit.

fn g1c_circular_information_flow(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    put_int(&mut t1, TEST, "1", 11); // T1
    put_int(&mut t2, TEST, "2", 22); // T2
    assert_eq!(
        get_int(&t1, TEST, "2"),
        Some(20),
        "T1 does not see T2's write"
    ); // T1
    assert_eq!(
        get_int(&t2, TEST, "1"),
        Some(10),
        "T2 does not see T1's write"
    ); // T2
    let s1 = ok(t1.commit()); // T1
    match iso {
        Serializable => {
            // T2 ->rw T1 (read 1) and T1 ->rw T2 (read 2): a cycle; T2 closes it.
            assert_conflict(t2.commit(), TEST, &["1", "2"], &[s1]);
            assert_eq!(committed(&db, TEST), rows(&[("1", 11), ("2", 20)]));
        }
        Snapshot => {
            ok(t2.commit());
            assert_eq!(committed(&db, TEST), rows(&[("1", 11), ("2", 22)]));
        }
    }
}

#[test]
fn g1c_circular_information_flow_serializable() {
    g1c_circular_information_flow(Serializable);
}

#[test]
fn g1c_circular_information_flow_snapshot() {
    g1c_circular_information_flow(Snapshot);
}

// ---------------------------------------------------------------------------------------
// OTV: observed transaction vanishes.

fn otv_observed_transaction_vanishes(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    // A T3 whose snapshot predates T1's commit.
    let mut c0 = db.connect();
    let t0 = c0.begin_with(iso).unwrap();
    put_int(&mut t1, TEST, "1", 11); // T1
    put_int(&mut t1, TEST, "2", 19); // T1
    put_int(&mut t2, TEST, "1", 12); // T2: buffered, does not block
    let s1 = ok(t1.commit()); // T1
    let t3 = c3.begin_with(iso).unwrap(); // T3: PostgreSQL's snapshot is taken here
    assert_eq!(get_int(&t3, TEST, "1"), Some(11)); // T3
    put_int(&mut t2, TEST, "2", 18); // T2
    assert_eq!(get_int(&t3, TEST, "2"), Some(19)); // T3
    assert_write_conflict(t2.commit(), TEST, "1", s1); // T2
    assert_eq!(get_int(&t3, TEST, "2"), Some(19), "T1 does not vanish"); // T3
    assert_eq!(get_int(&t3, TEST, "1"), Some(11), "T1 does not vanish"); // T3
    ok(t3.commit()); // T3
    assert_eq!(
        select_all(&t0, TEST),
        rows(&[("1", 10), ("2", 20)]),
        "an older snapshot sees none of T1"
    );
    ok(t0.commit());
    assert_eq!(committed(&db, TEST), rows(&[("1", 11), ("2", 19)]));
}

#[test]
fn otv_observed_transaction_vanishes_serializable() {
    otv_observed_transaction_vanishes(Serializable);
}

#[test]
fn otv_observed_transaction_vanishes_snapshot() {
    otv_observed_transaction_vanishes(Snapshot);
}

// ---------------------------------------------------------------------------------------
// PMP: predicate-many-preceders, with predicate reads (whole-table scans).

fn pmp_predicate_many_preceders(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(select_where(&t1, TEST, |v| v == 30), vec![]); // T1
    put_int(&mut t2, TEST, "3", 30); // T2
    let s2 = ok(t2.commit()); // T2
    assert_eq!(
        select_where(&t1, TEST, |v| v % 3 == 0),
        vec![],
        "T1 does not see T2's insert"
    ); // T1
    assert_eq!(scan(&t1, TEST, "3", "4"), vec![], "nor by key range"); // T1
    // Only T1 ->rw T2: no cycle, so both commit at both levels.
    let s1 = ok(t1.commit()); // T1
    assert!(s1 <= s2, "a read-only commit takes no new sequence");
    assert_eq!(
        committed(&db, TEST),
        rows(&[("1", 10), ("2", 20), ("3", 30)])
    );
}

#[test]
fn pmp_predicate_many_preceders_serializable() {
    pmp_predicate_many_preceders(Serializable);
}

#[test]
fn pmp_predicate_many_preceders_snapshot() {
    pmp_predicate_many_preceders(Snapshot);
}

// ---------------------------------------------------------------------------------------
// PMP-write: predicate-many-preceders for write predicates.

fn pmp_write_predicates(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    // T1: update test set value = value + 10
    for (k, v) in select_all(&t1, TEST) {
        put_int(&mut t1, TEST, &k, v + 10);
    }
    // T2: delete from test where value = 20 (PostgreSQL blocks here)
    let doomed = select_where(&t2, TEST, |v| v == 20);
    assert_eq!(doomed, rows(&[("2", 20)]), "T2 sees its snapshot");
    for (k, _) in &doomed {
        del(&mut t2, TEST, k);
    }
    let s1 = ok(t1.commit()); // T1
    assert_write_conflict(t2.commit(), TEST, "2", s1); // T2
    assert_eq!(
        committed(&db, TEST),
        rows(&[("1", 20), ("2", 30)]),
        "row 1 (now 20) survives: T2's predicate was never applied to it"
    );
}

#[test]
fn pmp_write_predicates_serializable() {
    pmp_write_predicates(Serializable);
}

#[test]
fn pmp_write_predicates_snapshot() {
    pmp_write_predicates(Snapshot);
}

// ---------------------------------------------------------------------------------------
// P4: lost update.

fn p4_lost_update(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    let v1 = get_int(&t1, TEST, "1").unwrap(); // T1
    let v2 = get_int(&t2, TEST, "1").unwrap(); // T2
    assert_eq!((v1, v2), (10, 10));
    put_int(&mut t1, TEST, "1", v1 + 1); // T1
    put_int(&mut t2, TEST, "1", v2 + 1); // T2
    let s1 = ok(t1.commit()); // T1
    assert_write_conflict(t2.commit(), TEST, "1", s1); // T2
    // The retry sees T1's increment, so neither update is lost.
    let mut t2 = c2.begin_with(iso).unwrap();
    let v2 = get_int(&t2, TEST, "1").unwrap();
    assert_eq!(v2, 11);
    put_int(&mut t2, TEST, "1", v2 + 1);
    ok(t2.commit());
    assert_eq!(committed(&db, TEST), rows(&[("1", 12), ("2", 20)]));
}

#[test]
fn p4_lost_update_serializable() {
    p4_lost_update(Serializable);
}

#[test]
fn p4_lost_update_snapshot() {
    p4_lost_update(Snapshot);
}

// ---------------------------------------------------------------------------------------
// G-single: single anti-dependency cycles (read skew).

fn g_single_read_skew(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(get_int(&t1, TEST, "1"), Some(10)); // T1
    assert_eq!(get_int(&t2, TEST, "1"), Some(10)); // T2
    assert_eq!(get_int(&t2, TEST, "2"), Some(20)); // T2
    put_int(&mut t2, TEST, "1", 12); // T2
    put_int(&mut t2, TEST, "2", 18); // T2
    ok(t2.commit()); // T2
    assert_eq!(
        get_int(&t1, TEST, "2"),
        Some(20),
        "T1 sees 10 + 20, never 10 + 18"
    ); // T1
    ok(t1.commit()); // T1: only T1 ->rw T2, no cycle
    assert_eq!(committed(&db, TEST), rows(&[("1", 12), ("2", 18)]));
}

#[test]
fn g_single_read_skew_serializable() {
    g_single_read_skew(Serializable);
}

#[test]
fn g_single_read_skew_snapshot() {
    g_single_read_skew(Snapshot);
}

// G-single with predicate dependencies.

fn g_single_dependencies(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(
        select_where(&t1, TEST, |v| v % 5 == 0),
        rows(&[("1", 10), ("2", 20)])
    ); // T1
    // T2: update test set value = 12 where value = 10
    for (k, _) in select_where(&t2, TEST, |v| v == 10) {
        put_int(&mut t2, TEST, &k, 12);
    }
    ok(t2.commit()); // T2
    assert_eq!(
        select_where(&t1, TEST, |v| v % 3 == 0),
        vec![],
        "T1 does not see the 12"
    ); // T1
    ok(t1.commit()); // T1
    assert_eq!(committed(&db, TEST), rows(&[("1", 12), ("2", 20)]));
}

#[test]
fn g_single_dependencies_serializable() {
    g_single_dependencies(Serializable);
}

#[test]
fn g_single_dependencies_snapshot() {
    g_single_dependencies(Snapshot);
}

// G-single with a write predicate, T2 commits first (Hermitage's "G-single-write-1").

fn g_single_write_1(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(get_int(&t1, TEST, "1"), Some(10)); // T1
    assert_eq!(select_all(&t2, TEST), rows(&[("1", 10), ("2", 20)])); // T2
    put_int(&mut t2, TEST, "1", 12); // T2
    put_int(&mut t2, TEST, "2", 18); // T2
    let s2 = ok(t2.commit()); // T2
    // T1: delete from test where value = 20 (matches row 2 in T1's snapshot)
    let doomed = select_where(&t1, TEST, |v| v == 20);
    assert_eq!(doomed, rows(&[("2", 20)]));
    for (k, _) in &doomed {
        del(&mut t1, TEST, k);
    }
    assert_write_conflict(t1.commit(), TEST, "2", s2); // T1
    assert_eq!(committed(&db, TEST), rows(&[("1", 12), ("2", 18)]));
}

#[test]
fn g_single_write_1_serializable() {
    g_single_write_1(Serializable);
}

#[test]
fn g_single_write_1_snapshot() {
    g_single_write_1(Snapshot);
}

// G-single with a write predicate, T1 writes before T2 finishes ("G-single-write-2"):
// T1 rolls back and T2 commits.

fn g_single_write_2(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(get_int(&t1, TEST, "1"), Some(10)); // T1
    assert_eq!(select_all(&t2, TEST), rows(&[("1", 10), ("2", 20)])); // T2
    put_int(&mut t2, TEST, "1", 12); // T2
    for (k, _) in select_where(&t1, TEST, |v| v == 20) {
        del(&mut t1, TEST, &k); // T1: delete from test where value = 20
    }
    put_int(&mut t2, TEST, "2", 18); // T2 (PostgreSQL blocks here)
    t1.rollback(); // T1
    ok(t2.commit()); // T2
    assert_eq!(committed(&db, TEST), rows(&[("1", 12), ("2", 18)]));
}

#[test]
fn g_single_write_2_serializable() {
    g_single_write_2(Serializable);
}

#[test]
fn g_single_write_2_snapshot() {
    g_single_write_2(Snapshot);
}

// The same schedule with T1 committing instead: T2 loses on row 2.

fn g_single_write_2_t1_commits(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(get_int(&t1, TEST, "1"), Some(10)); // T1
    assert_eq!(select_all(&t2, TEST), rows(&[("1", 10), ("2", 20)])); // T2
    put_int(&mut t2, TEST, "1", 12); // T2
    for (k, _) in select_where(&t1, TEST, |v| v == 20) {
        del(&mut t1, TEST, &k); // T1
    }
    put_int(&mut t2, TEST, "2", 18); // T2
    let s1 = ok(t1.commit()); // T1
    assert_write_conflict(t2.commit(), TEST, "2", s1); // T2
    assert_eq!(committed(&db, TEST), rows(&[("1", 10)]));
}

#[test]
fn g_single_write_2_t1_commits_serializable() {
    g_single_write_2_t1_commits(Serializable);
}

#[test]
fn g_single_write_2_t1_commits_snapshot() {
    g_single_write_2_t1_commits(Snapshot);
}

// ---------------------------------------------------------------------------------------
// G2-item: write skew.

fn g2_item_write_skew(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    let r1 = (get_int(&t1, TEST, "1"), get_int(&t1, TEST, "2")); // T1
    let r2 = (get_int(&t2, TEST, "1"), get_int(&t2, TEST, "2")); // T2
    assert_eq!((r1, r2), ((Some(10), Some(20)), (Some(10), Some(20))));
    put_int(&mut t1, TEST, "1", 11); // T1
    put_int(&mut t2, TEST, "2", 21); // T2
    let s1 = ok(t1.commit()); // T1
    match iso {
        Serializable => {
            assert_conflict(t2.commit(), TEST, &["1", "2"], &[s1]); // T2
            assert_eq!(committed(&db, TEST), rows(&[("1", 11), ("2", 20)]));
        }
        Snapshot => {
            ok(t2.commit()); // T2
            // Write skew: T2 decided on 1 => 10, yet 1 => 11 committed before it.
            assert_eq!(committed(&db, TEST), rows(&[("1", 11), ("2", 21)]));
        }
    }
}

#[test]
fn g2_item_write_skew_serializable() {
    g2_item_write_skew(Serializable);
}

#[test]
fn g2_item_write_skew_snapshot() {
    g2_item_write_skew(Snapshot);
}

// G2-item as an invariant: at least one doctor stays on call.

fn g2_item_doctors_on_call(iso: Isolation) {
    const ONCALL: &str = "oncall";
    let (_d, db) = db_with(ONCALL, &[("alice", 1), ("bob", 1)]);
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    // Each: if at least two are on call, take myself off.
    let on1: i64 = select_all(&t1, ONCALL).iter().map(|(_, v)| v).sum(); // T1
    let on2: i64 = select_all(&t2, ONCALL).iter().map(|(_, v)| v).sum(); // T2
    assert_eq!((on1, on2), (2, 2));
    put_int(&mut t1, ONCALL, "alice", 0); // T1
    put_int(&mut t2, ONCALL, "bob", 0); // T2
    let s1 = ok(t1.commit()); // T1
    let on_call = |db| -> i64 { committed(db, ONCALL).iter().map(|(_, v)| v).sum() };
    match iso {
        Serializable => {
            assert_conflict(t2.commit(), ONCALL, &["alice", "bob"], &[s1]);
            assert_eq!(on_call(&db), 1, "the invariant holds");
        }
        Snapshot => {
            ok(t2.commit());
            assert_eq!(on_call(&db), 0, "write skew broke the invariant");
        }
    }
}

#[test]
fn g2_item_doctors_on_call_serializable() {
    g2_item_doctors_on_call(Serializable);
}

#[test]
fn g2_item_doctors_on_call_snapshot() {
    g2_item_doctors_on_call(Snapshot);
}

// ---------------------------------------------------------------------------------------
// G2: anti-dependency cycles through predicate reads.

fn g2_anti_dependency_cycles(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2) = (db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    let mut t2 = c2.begin_with(iso).unwrap();
    assert_eq!(select_where(&t1, TEST, |v| v % 3 == 0), vec![]); // T1
    assert_eq!(select_where(&t2, TEST, |v| v % 3 == 0), vec![]); // T2
    put_int(&mut t1, TEST, "3", 30); // T1
    put_int(&mut t2, TEST, "4", 42); // T2
    let s1 = ok(t1.commit()); // T1
    match iso {
        Serializable => {
            assert_conflict(t2.commit(), TEST, &["3", "4"], &[s1]); // T2
            let mut c = db.connect();
            let t = c.begin_read().unwrap();
            assert_eq!(select_where(&t, TEST, |v| v % 3 == 0), rows(&[("3", 30)]));
        }
        Snapshot => {
            ok(t2.commit()); // T2
            // Each saw no multiple of 3 and added one: no serial order does that.
            let mut c = db.connect();
            let t = c.begin_read().unwrap();
            assert_eq!(
                select_where(&t, TEST, |v| v % 3 == 0),
                rows(&[("3", 30), ("4", 42)])
            );
        }
    }
}

#[test]
fn g2_anti_dependency_cycles_serializable() {
    g2_anti_dependency_cycles(Serializable);
}

#[test]
fn g2_anti_dependency_cycles_snapshot() {
    g2_anti_dependency_cycles(Snapshot);
}

// G2 with two anti-dependency edges (Fekete et al.; Hermitage's last PostgreSQL case):
// T3 ->rw T1 ->rw T2, T2 ->wr T3, and T2 committed first.

fn g2_two_edges(iso: Isolation) {
    let (_d, db) = hermitage_db();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t1 = c1.begin_with(iso).unwrap();
    assert_eq!(select_all(&t1, TEST), rows(&[("1", 10), ("2", 20)])); // T1
    let mut t2 = c2.begin_with(iso).unwrap();
    let v = get_int(&t2, TEST, "2").unwrap();
    put_int(&mut t2, TEST, "2", v + 5); // T2
    let s2 = ok(t2.commit()); // T2
    let t3 = c3.begin_with(iso).unwrap();
    assert_eq!(select_all(&t3, TEST), rows(&[("1", 10), ("2", 25)])); // T3
    ok(t3.commit()); // T3
    put_int(&mut t1, TEST, "1", 0); // T1
    match iso {
        Serializable => {
            assert_conflict(t1.commit(), TEST, &["1", "2"], &[s2]); // T1
            assert_eq!(committed(&db, TEST), rows(&[("1", 10), ("2", 25)]));
        }
        Snapshot => {
            ok(t1.commit()); // T1
            // T3 saw T2 but not T1, and T1 did not see T2: no serial order.
            assert_eq!(committed(&db, TEST), rows(&[("1", 0), ("2", 25)]));
        }
    }
}

#[test]
fn g2_two_edges_serializable() {
    g2_two_edges(Serializable);
}

#[test]
fn g2_two_edges_snapshot() {
    g2_two_edges(Snapshot);
}

// ---------------------------------------------------------------------------------------
// The read-only transaction anomaly (Fekete, O'Neil, O'Neil 2004).
//
// Checking X and savings Y both start at 0. T1 deposits 20 into Y. T2 withdraws 10 from
// X, charging a penalty of 1 if X + Y would go negative. T3 is a read-only report of X
// and Y. At Serializable T3 is an ordinary `begin()` transaction that only reads.

const BANK: &str = "bank";

fn bank() -> (tempfile::TempDir, capsuledb::Database) {
    db_with(BANK, &[("x", 0), ("y", 0)])
}

/// T2's write: the withdrawal with its penalty, decided on what T2 read.
fn withdraw(x: i64, y: i64) -> i64 {
    if x + y - 10 < 0 { x - 11 } else { x - 10 }
}

// T3 commits before T2: T2 is the pivot and is refused.
fn read_only_anomaly(iso: Isolation) {
    let (_d, db) = bank();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t2 = c2.begin_with(iso).unwrap();
    let (x2, y2) = (
        get_int(&t2, BANK, "x").unwrap(),
        get_int(&t2, BANK, "y").unwrap(),
    ); // T2
    assert_eq!((x2, y2), (0, 0));
    let mut t1 = c1.begin_with(iso).unwrap();
    let y1 = get_int(&t1, BANK, "y").unwrap(); // T1
    put_int(&mut t1, BANK, "y", y1 + 20); // T1
    let s1 = ok(t1.commit()); // T1
    let t3 = c3.begin_with(iso).unwrap();
    let report = (get_int(&t3, BANK, "x"), get_int(&t3, BANK, "y")); // T3
    assert_eq!(report, (Some(0), Some(20)));
    ok(t3.commit()); // T3
    put_int(&mut t2, BANK, "x", withdraw(x2, y2)); // T2: X = -11
    match iso {
        Serializable => {
            // T3 ->rw T2 ->rw T1 with T1 committed first.
            assert_conflict(t2.commit(), BANK, &["x", "y"], &[s1]);
            assert_eq!(committed(&db, BANK), rows(&[("x", 0), ("y", 20)]));
            // The retry sees the deposit: no penalty, and T3's report fits T1, T3, T2.
            let mut t2 = c2.begin_with(iso).unwrap();
            let (x, y) = (
                get_int(&t2, BANK, "x").unwrap(),
                get_int(&t2, BANK, "y").unwrap(),
            );
            put_int(&mut t2, BANK, "x", withdraw(x, y));
            ok(t2.commit());
            assert_eq!(committed(&db, BANK), rows(&[("x", -10), ("y", 20)]));
        }
        Snapshot => {
            ok(t2.commit());
            // T3 saw the deposit but not the withdrawal, yet the withdrawal did not
            // see the deposit: consistent with no serial order.
            assert_eq!(committed(&db, BANK), rows(&[("x", -11), ("y", 20)]));
        }
    }
}

#[test]
fn read_only_anomaly_serializable() {
    read_only_anomaly(Serializable);
}

#[test]
fn read_only_anomaly_snapshot() {
    read_only_anomaly(Snapshot);
}

// T2 commits before T3: T2 is admitted, and the read-only T3 (T_in) is refused.
fn read_only_anomaly_report_commits_last(iso: Isolation) {
    let (_d, db) = bank();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t2 = c2.begin_with(iso).unwrap();
    let (x2, y2) = (
        get_int(&t2, BANK, "x").unwrap(),
        get_int(&t2, BANK, "y").unwrap(),
    ); // T2
    let mut t1 = c1.begin_with(iso).unwrap();
    let y1 = get_int(&t1, BANK, "y").unwrap(); // T1
    put_int(&mut t1, BANK, "y", y1 + 20); // T1
    ok(t1.commit()); // T1
    let t3 = c3.begin_with(iso).unwrap();
    let report = (get_int(&t3, BANK, "x"), get_int(&t3, BANK, "y")); // T3
    assert_eq!(report, (Some(0), Some(20)));
    put_int(&mut t2, BANK, "x", withdraw(x2, y2)); // T2
    let s2 = ok(t2.commit()); // T2: only T2 ->rw T1 so far
    assert_eq!(committed(&db, BANK), rows(&[("x", -11), ("y", 20)]));
    match iso {
        Serializable => {
            // T3 ->rw T2 ->rw T1, T1 first: the report is refused.
            assert_conflict(t3.commit(), BANK, &["x"], &[s2]);
        }
        Snapshot => {
            ok(t3.commit());
        }
    }
}

#[test]
fn read_only_anomaly_report_commits_last_serializable() {
    read_only_anomaly_report_commits_last(Serializable);
}

#[test]
fn read_only_anomaly_report_commits_last_snapshot() {
    read_only_anomaly_report_commits_last(Snapshot);
}

// By design a `begin_read()` snapshot is never validated: the same report through
// `begin_read()` commits (and may observe the anomaly), while the writers are still
// protected from each other.
#[test]
fn read_only_anomaly_begin_read_is_not_validated() {
    let (_d, db) = bank();
    let (mut c1, mut c2, mut c3) = (db.connect(), db.connect(), db.connect());
    let mut t2 = c2.begin().unwrap();
    let (x2, y2) = (
        get_int(&t2, BANK, "x").unwrap(),
        get_int(&t2, BANK, "y").unwrap(),
    );
    let mut t1 = c1.begin().unwrap();
    let y1 = get_int(&t1, BANK, "y").unwrap();
    put_int(&mut t1, BANK, "y", y1 + 20);
    ok(t1.commit());
    let t3 = c3.begin_read().unwrap();
    assert_eq!(
        (get_int(&t3, BANK, "x"), get_int(&t3, BANK, "y")),
        (Some(0), Some(20))
    );
    put_int(&mut t2, BANK, "x", withdraw(x2, y2));
    ok(t2.commit()); // T2 ->rw T1 only: no dangerous structure among validated ones
    ok(t3.commit()); // never aborts
    assert_eq!(committed(&db, BANK), rows(&[("x", -11), ("y", 20)]));
}
