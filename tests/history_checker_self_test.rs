//! The history checker of `history_checker_support` checked itself on hand-made
//! histories: it finds the cycle of a write skew (on point reads and, through scans, a
//! phantom), of the read-only anomaly (a read-only commit in the cycle), of a cycle
//! that needs a write-write edge, and of one that needs the real-time order; it refuses
//! a lost update, a read of a write that never committed, and a point read of a key
//! nobody wrote that did not read it absent; and it passes a serial history. A green
//! randomized run then means something.

mod history_checker_support;

use capsuledb::Isolation;
use history_checker_support::check::check;
use history_checker_support::record::{
    Dir, History, Key, Kind, Outcome, Read, SETUP_UID, Txn, Uid,
};
use std::ops::Bound;

/// A read-write transaction of table 0 that committed at `seq` (a read-only one commits
/// at its snapshot).
fn txn(uid: Uid, snapshot: u64, seq: u64, reads: Vec<Read>, writes: &[&[u8]]) -> Txn {
    Txn {
        uid,
        thread: 0,
        kind: Kind::ReadWrite,
        snapshot,
        tip_before: seq,
        tip_after: seq,
        began_at: 0,
        acked_at: 0,
        reads,
        writes: writes
            .iter()
            .map(|k| ((0, k.to_vec()), Some(uid)))
            .collect(),
        outcome: Outcome::Committed { seq },
    }
}

fn get(key: &[u8], got: Option<Uid>) -> Read {
    Read::Point {
        tbl: 0,
        key: key.to_vec(),
        own: None,
        got,
    }
}

fn scan(lo: &[u8], hi: &[u8], got: &[(&[u8], Uid)]) -> Read {
    Read::Scan {
        tbl: 0,
        lo: Bound::Included(lo.to_vec()),
        hi: Bound::Excluded(hi.to_vec()),
        dir: Dir::Forward,
        own: Vec::new(),
        got: got.iter().map(|(k, u)| (k.to_vec(), *u)).collect(),
    }
}

/// The setup transaction (seq 1) writing `keys`, then `txns`; the final state of table
/// 0 is `last` (key, writer).
fn history(iso: Isolation, keys: &[&[u8]], txns: Vec<Txn>, last: &[(&[u8], Uid)]) -> History {
    let mut all = vec![txn(SETUP_UID, 0, 1, Vec::new(), keys)];
    all.extend(txns);
    let final_tip = all.iter().filter_map(|t| match t.outcome {
        Outcome::Committed { seq } if !t.writes.is_empty() => Some(seq),
        _ => None,
    });
    let final_tip = final_tip.max().unwrap_or(0);
    let mut state: Vec<(Key, Uid)> = last.iter().map(|(k, u)| (k.to_vec(), *u)).collect();
    state.sort();
    History {
        seed: 0,
        profile: "hand-made",
        iso,
        txns: all,
        final_tip,
        final_state: vec![state, Vec::new(), Vec::new()],
        engine_refusals: (0, 0),
    }
}

/// `check` refuses `h` with a message holding `needle`.
fn refuses(h: &History, needle: &str) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(h)));
    let Err(panic) = outcome else {
        panic!("the checker passed a history it must refuse ({needle})");
    };
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains(needle),
        "refused for another reason: {message}"
    );
}

/// T1 reads x and writes y, T2 reads y and writes x, both from the setup's snapshot.
fn write_skew(iso: Isolation) -> History {
    history(
        iso,
        &[b"x", b"y"],
        vec![
            txn(1, 1, 2, vec![get(b"x", Some(SETUP_UID))], &[b"y"]),
            txn(2, 1, 3, vec![get(b"y", Some(SETUP_UID))], &[b"x"]),
        ],
        &[(b"x", 2), (b"y", 1)],
    )
}

#[test]
fn checker_finds_write_skew_cycle() {
    assert!(check(&write_skew(Isolation::Snapshot)).graph_has_cycle);
    refuses(&write_skew(Isolation::Serializable), "dependency cycle");
}

/// A read that finds its key absent is a read too: T1 reads x (absent) and writes y,
/// T2 reads y and inserts x, both from the setup's snapshot: T1 →rw(x) T2 →rw(y) T1.
/// Every other hand-made history reads values that exist; a checker drawing no edge
/// for a read of nothing passed them all.
#[test]
fn checker_finds_a_cycle_through_a_read_of_an_absent_key() {
    let h = history(
        Isolation::Serializable,
        &[b"y"],
        vec![
            txn(1, 1, 2, vec![get(b"x", None)], &[b"y"]),
            txn(2, 1, 3, vec![get(b"y", Some(SETUP_UID))], &[b"x"]),
        ],
        &[(b"x", 2), (b"y", 1)],
    );
    refuses(&h, "dependency cycle");
}

/// Each scans the range the other writes into and sees it empty: a cycle through rw
/// edges on keys neither read by name.
#[test]
fn checker_finds_a_phantom_through_scans() {
    let h = history(
        Isolation::Serializable,
        &[b"k00", b"k02"],
        vec![
            txn(
                1,
                1,
                2,
                vec![scan(
                    b"k00",
                    b"k04",
                    &[(b"k00", SETUP_UID), (b"k02", SETUP_UID)],
                )],
                &[b"k05"],
            ),
            txn(2, 1, 3, vec![scan(b"k04", b"k08", &[])], &[b"k01"]),
        ],
        &[
            (b"k00", SETUP_UID),
            (b"k01", 2),
            (b"k02", SETUP_UID),
            (b"k05", 1),
        ],
    );
    refuses(&h, "dependency cycle");
}

/// Fekete's read-only anomaly: T2 reads x and y and writes x; T1 writes y and commits
/// first; T3, a read-write transaction that only reads, sees T1's y and the old x and
/// commits; T2 commits last. T3 →rw T2 →rw T1 →wr T3.
#[test]
fn checker_finds_the_read_only_anomaly() {
    let h = history(
        Isolation::Serializable,
        &[b"x", b"y"],
        vec![
            txn(1, 1, 2, Vec::new(), &[b"y"]),
            txn(
                3,
                2,
                2,
                vec![get(b"x", Some(SETUP_UID)), get(b"y", Some(1))],
                &[],
            ),
            txn(
                2,
                1,
                3,
                vec![get(b"x", Some(SETUP_UID)), get(b"y", Some(SETUP_UID))],
                &[b"x"],
            ),
        ],
        &[(b"x", 2), (b"y", 1)],
    );
    refuses(&h, "dependency cycle");
}

/// T3 writes b and c; T2 (from the setup's snapshot) reads b and writes a; T1 (from
/// T3's) reads a and writes c. T1 →rw T2 →rw T3 →ww T1: the cycle needs the ww edge.
/// Serializable only against real time: W writes k and is acknowledged; T begins
/// after that, sees W, reads only j (the setup's); Y, from before W, read k's setup value
/// and writes j, committing last. T →rw(j) Y →rw(k) W, and W came before T began:
/// the serial order T, Y, W has T before a commit acknowledged before it began. With
/// the clock's ticks left out (0) the same history passes.
fn stale_in_real_time(ticks: bool) -> History {
    let at = |t: u64| if ticks { t } else { 0 };
    let timed = |mut t: Txn, thread, began, acked| {
        t.thread = thread;
        (t.began_at, t.acked_at) = (at(began), at(acked));
        t
    };
    history(
        Isolation::Serializable,
        &[b"j", b"k"],
        vec![
            timed(txn(1, 1, 2, Vec::new(), &[b"k"]), 1, 1, 2),
            timed(txn(2, 2, 2, vec![get(b"j", Some(SETUP_UID))], &[]), 2, 3, 5),
            timed(
                txn(3, 1, 3, vec![get(b"k", Some(SETUP_UID))], &[b"j"]),
                3,
                1,
                4,
            ),
        ],
        &[(b"j", 3), (b"k", 1)],
    )
}

#[test]
fn checker_finds_a_cycle_through_real_time() {
    check(&stale_in_real_time(false));
    refuses(&stale_in_real_time(true), "dependency cycle");
}

#[test]
fn checker_finds_a_cycle_through_a_write_write_edge() {
    let h = history(
        Isolation::Serializable,
        &[b"a", b"b", b"c"],
        vec![
            txn(3, 1, 2, Vec::new(), &[b"b", b"c"]),
            txn(2, 1, 3, vec![get(b"b", Some(SETUP_UID))], &[b"a"]),
            txn(1, 2, 4, vec![get(b"a", Some(SETUP_UID))], &[b"c"]),
        ],
        &[(b"a", 2), (b"b", 3), (b"c", 1)],
    );
    refuses(&h, "dependency cycle");
}

/// Two writers of x from one snapshot both committed.
#[test]
fn checker_refuses_a_lost_update() {
    let h = history(
        Isolation::Snapshot,
        &[b"x"],
        vec![
            txn(1, 1, 2, vec![get(b"x", Some(SETUP_UID))], &[b"x"]),
            txn(2, 1, 3, vec![get(b"x", Some(SETUP_UID))], &[b"x"]),
        ],
        &[(b"x", 2)],
    );
    refuses(&h, "lost update");
}

/// A read of a value whose writer rolled back, and a read of a key nobody wrote that
/// found a value.
#[test]
fn checker_refuses_reads_of_writes_that_never_committed() {
    let mut rolled_back = txn(9, 1, 2, Vec::new(), &[b"x"]);
    rolled_back.outcome = Outcome::RolledBack;
    let h = history(
        Isolation::Serializable,
        &[b"x"],
        vec![rolled_back, txn(1, 1, 2, vec![get(b"x", Some(9))], &[b"y"])],
        &[(b"x", SETUP_UID), (b"y", 1)],
    );
    refuses(&h, "the replay says Some(0)");
    let h = history(
        Isolation::Serializable,
        &[b"x"],
        vec![txn(1, 1, 2, vec![get(b"nobody", Some(7))], &[b"y"])],
        &[(b"x", SETUP_UID), (b"y", 1)],
    );
    refuses(&h, "the replay says None");
}

/// A serial history passes, including a read of a key nobody wrote (absent, no edge).
#[test]
fn checker_passes_a_serial_history() {
    let h = history(
        Isolation::Serializable,
        &[b"x", b"y"],
        vec![
            txn(
                1,
                1,
                2,
                vec![get(b"x", Some(SETUP_UID)), get(b"nobody", None)],
                &[b"y"],
            ),
            txn(2, 2, 3, vec![get(b"y", Some(1))], &[b"x"]),
        ],
        &[(b"x", 2), (b"y", 1)],
    );
    let report = check(&h);
    assert!(!report.graph_has_cycle);
}
