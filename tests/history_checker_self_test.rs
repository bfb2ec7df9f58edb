//! The history checker of `history_checker_support` checked itself: it finds the
//! write-skew cycle of a hand-made history.

mod history_checker_support;

use capsuledb::Isolation;
use history_checker_support::check::check;
use history_checker_support::record::{History, Kind, Outcome, Read, SETUP_UID, Txn};
use std::collections::BTreeMap;

/// The checker itself finds a write-skew cycle in a hand-made history, so a green run
/// means something.
#[test]
fn checker_finds_write_skew_cycle() {
    let mk = |uid, snapshot, seq, read: &[u8], write: &[u8]| Txn {
        uid,
        thread: 0,
        kind: Kind::ReadWrite,
        snapshot,
        tip_before: seq,
        tip_after: seq,
        reads: vec![Read::Point {
            tbl: 0,
            key: read.to_vec(),
            own: None,
            got: Some(SETUP_UID),
        }],
        writes: BTreeMap::from([((0, write.to_vec()), Some(uid))]),
        outcome: Outcome::Committed { seq },
    };
    let mut setup = mk(SETUP_UID, 0, 1, b"x", b"x");
    setup.reads.clear();
    setup.writes.insert((0, b"y".to_vec()), Some(SETUP_UID));
    let h = History {
        seed: 0,
        profile: "hand-made",
        iso: Isolation::Snapshot,
        txns: vec![setup, mk(1, 1, 2, b"x", b"y"), mk(2, 1, 3, b"y", b"x")],
        final_tip: 3,
        final_state: vec![vec![(b"x".to_vec(), 2), (b"y".to_vec(), 1)], vec![], vec![]],
        engine_refusals: (0, 0),
    };
    assert!(check(&h).graph_has_cycle);
}
