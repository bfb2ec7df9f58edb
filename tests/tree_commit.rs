//! Tree commits (`format-spec/btree.md`, "Tree commits"): a transaction writing more
//! than half the version-store budget, with no other snapshot live, is committed straight
//! into the tree, written once. Checked here:
//! - it is one atomic commit among ordinary ones, validated like them (a conflict refuses
//!   it), and everything reads back the same before and after a reopen;
//! - it writes no capsule, and the version store holds nothing of it afterwards;
//! - another live snapshot sends it down the ordinary path, and that snapshot keeps
//!   reading its own state;
//! - history (time travel) keeps the values it overwrote;
//! - a crash at every I/O point of the tree commit (and of ordinary commits around it)
//!   recovers either the state before it or the state after it, and the state after it
//!   whenever it was acknowledged: never an earlier state, never part of it.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Error, HistoryRetention, Options};
use std::collections::BTreeMap;
use std::sync::Arc;

const TABLE: &str = "t";
/// The version-store budget of these tests: a transaction over half of it is large.
const BUDGET: u64 = 64 * 1024;
const BULK_KEYS: u64 = 1500;

type State = BTreeMap<Vec<u8>, Vec<u8>>;
/// One transaction's writes: key and new value, `None` deletes.
type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn options() -> Options {
    Options::new()
        .version_store_budget(BUDGET)
        .random_seed(0x0007_EEC0)
}

fn open(sim: &SimStorage) -> capsuledb::Result<Database> {
    options().open_storage(Arc::new(sim.clone()))
}

fn bulk_key(i: u64) -> Vec<u8> {
    format!("bulk/{:08}", i.wrapping_mul(0x9E37_79B9) % 1_000_000_007).into_bytes()
}

fn bulk_value(i: u64, round: u64) -> Vec<u8> {
    let mut v = format!("value {i} of round {round};").into_bytes();
    v.resize(60 + (i % 50) as usize, b'v');
    v
}

/// The writes of the bulk transaction of `round`: `BULK_KEYS` keys (about 130 KiB),
/// every seventh one deleted in rounds after the first.
fn bulk_writes(round: u64) -> Writes {
    (0..BULK_KEYS)
        .map(|i| {
            let v = (round == 0 || i % 7 != 0).then(|| bulk_value(i, round));
            (bulk_key(i), v)
        })
        .collect()
}

fn small_writes(n: u64) -> Writes {
    vec![
        (
            format!("small/{n}").into_bytes(),
            Some(n.to_le_bytes().to_vec()),
        ),
        // Overwrites a bulk key, so the order of small and bulk commits matters.
        (
            bulk_key(n % BULK_KEYS),
            Some(format!("small {n}").into_bytes()),
        ),
    ]
}

fn apply(state: &mut State, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for (k, v) in writes {
        match v {
            Some(v) => state.insert(k.clone(), v.clone()),
            None => state.remove(k),
        };
    }
}

fn commit(db: &Database, writes: &[(Vec<u8>, Option<Vec<u8>>)]) -> capsuledb::Result<u64> {
    let mut c = db.connect();
    let mut tx = c.begin()?;
    if !tx.table_exists(TABLE)? {
        tx.create_table(TABLE)?;
    }
    for (k, v) in writes {
        match v {
            Some(v) => tx.put(TABLE, k, v)?,
            None => tx.delete(TABLE, k)?,
        }
    }
    Ok(tx.commit_with(Durability::Durable)?.seq)
}

fn read_state(db: &Database) -> State {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    if !tx.table_exists(TABLE).unwrap() {
        return State::new();
    }
    let scanned: State = tx
        .iter(TABLE)
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k, v.to_vec())
        })
        .collect();
    for (k, v) in &scanned {
        assert_eq!(tx.get(TABLE, k).unwrap().as_ref(), Some(v), "point read");
    }
    scanned
}

fn assert_sound(db: &Database) {
    let report = db.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn a_large_transaction_is_written_once_into_the_tree() {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    let mut model = State::new();
    for n in 0..5 {
        let w = small_writes(n);
        commit(&db, &w).unwrap();
        apply(&mut model, &w);
    }
    let before = db.stats();
    let w = bulk_writes(0);
    let seq = commit(&db, &w).unwrap();
    apply(&mut model, &w);
    let after = db.stats();
    assert_eq!(after.tree_commits, before.tree_commits + 1);
    assert_eq!(after.capsule_bytes, before.capsule_bytes, "no capsule");
    // Its syncs are the file's, not a group's: `file_syncs` counts every one the
    // simulated file saw.
    assert_eq!(after.group_syncs, before.group_syncs, "no group");
    assert!(
        after.file_syncs > before.file_syncs,
        "a tree commit syncs the file"
    );
    assert_eq!(after.file_syncs, sim.counts().syncs);
    assert_eq!(after.checkpoint_seq, seq, "the tree holds it");
    assert_eq!(after.durable_seq, seq);
    assert_eq!(after.versions, 0, "the store holds nothing of it");
    assert_eq!(read_state(&db), model);
    assert_sound(&db);
    // Ordinary commits continue in the new marker stream, and a second bulk one
    // (overwriting and deleting) follows them.
    for n in 5..10 {
        let w = small_writes(n);
        commit(&db, &w).unwrap();
        apply(&mut model, &w);
    }
    let w = bulk_writes(1);
    commit(&db, &w).unwrap();
    apply(&mut model, &w);
    for n in 10..13 {
        let w = small_writes(n);
        commit(&db, &w).unwrap();
        apply(&mut model, &w);
    }
    assert_eq!(db.stats().tree_commits, before.tree_commits + 2);
    assert_eq!(read_state(&db), model);
    assert_sound(&db);
    drop(db);
    for crash in [false, true] {
        if crash {
            sim.crash_losing_unsynced();
        }
        let db = open(&sim).unwrap();
        assert_eq!(read_state(&db), model, "after reopen (crash: {crash})");
        assert_eq!(
            db.stats().recovered_commits,
            3,
            "the commits after the last bulk"
        );
        assert_sound(&db);
    }
}

#[test]
fn another_live_snapshot_takes_the_ordinary_path_and_keeps_its_state() {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    let first = small_writes(0);
    commit(&db, &first).unwrap();
    let mut c = db.connect();
    let reader = c.begin_read().unwrap();
    let w = bulk_writes(0);
    commit(&db, &w).unwrap();
    assert_eq!(
        db.stats().tree_commits,
        0,
        "a live snapshot: the ordinary path"
    );
    assert_eq!(reader.len(TABLE).unwrap(), 2, "the reader's own state");
    drop(reader);
    let mut model = State::new();
    apply(&mut model, &first);
    apply(&mut model, &w);
    assert_eq!(read_state(&db), model);
    // With the reader gone, the next large transaction is a tree commit.
    let w = bulk_writes(1);
    commit(&db, &w).unwrap();
    apply(&mut model, &w);
    assert_eq!(db.stats().tree_commits, 1);
    assert_eq!(read_state(&db), model);
    assert_sound(&db);
}

#[test]
fn a_conflicting_large_transaction_is_refused_and_writes_nothing() {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    commit(&db, &small_writes(0)).unwrap();
    let mut c = db.connect();
    let mut big = c.begin().unwrap();
    for (k, v) in bulk_writes(0) {
        big.put(TABLE, &k, &v.unwrap()).unwrap();
    }
    // A concurrent commit of one of its keys, after its snapshot.
    let mut other = db.connect();
    let mut tx = other.begin().unwrap();
    tx.put(TABLE, &bulk_key(3), b"first").unwrap();
    tx.commit().unwrap();
    let before = db.stats();
    let err = big.commit().expect_err("first committer wins");
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let after = db.stats();
    assert_eq!(after.tree_commits, 0);
    assert_eq!(after.tip_seq, before.tip_seq, "nothing sequenced");
    let mut model = State::new();
    apply(&mut model, &small_writes(0));
    model.insert(bulk_key(3), b"first".to_vec());
    assert_eq!(read_state(&db), model);
    // The database goes on normally.
    commit(&db, &small_writes(1)).unwrap();
    apply(&mut model, &small_writes(1));
    assert_eq!(read_state(&db), model);
}

#[test]
fn history_keeps_what_a_tree_commit_overwrote() {
    let sim = SimStorage::new();
    let db = options()
        .history_retention(HistoryRetention::Commits(1000))
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let old = commit(&db, &bulk_writes(0)).unwrap();
    let new = commit(&db, &bulk_writes(1)).unwrap();
    assert_eq!(db.stats().tree_commits, 2);
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    for i in [0u64, 1, 7, 100] {
        let versions = tx.versions(TABLE, &bulk_key(i)).unwrap();
        let now = (i % 7 != 0).then(|| bulk_value(i, 1));
        assert_eq!(versions.first(), Some(&(new, now)), "key {i}: newest");
        assert_eq!(
            versions.get(1),
            Some(&(old, Some(bulk_value(i, 0)))),
            "key {i}: the value the tree commit overwrote"
        );
    }
    drop(tx);
    let back = db.begin_read_at(old).unwrap();
    assert_eq!(
        back.get(TABLE, &bulk_key(7)).unwrap(),
        Some(bulk_value(7, 0))
    );
}

/// Runs small commits, a bulk commit and more small commits on `sim`, with the power
/// failing after `ops` storage operations; returns the model state after each
/// acknowledged commit (index 0: before any) and how many were acknowledged.
fn run_until_power_off(sim: &SimStorage, base: &State, ops: u64) -> (Vec<State>, usize) {
    let mut states = vec![base.clone()];
    let mut plan: Vec<Writes> = (20..22).map(small_writes).collect();
    plan.push(bulk_writes(1));
    plan.extend((22..24).map(small_writes));
    let Ok(db) = open(sim) else {
        return (states, 0);
    };
    sim.power_off_after(ops);
    let mut acked = 0;
    for w in &plan {
        let mut next = states.last().cloned().unwrap_or_default();
        apply(&mut next, w);
        states.push(next);
        if commit(&db, w).is_err() {
            break;
        }
        acked += 1;
    }
    drop(db);
    (states, acked)
}

#[test]
fn a_crash_at_every_io_point_recovers_before_or_after_never_earlier() {
    // The base: one bulk load and a few commits, durable.
    let base_sim = SimStorage::new();
    let mut base = State::new();
    {
        let db = open(&base_sim).unwrap();
        let w = bulk_writes(0);
        commit(&db, &w).unwrap();
        apply(&mut base, &w);
        for n in 0..3 {
            let w = small_writes(n);
            commit(&db, &w).unwrap();
            apply(&mut base, &w);
        }
        db.close().unwrap();
    }
    let image = base_sim.durable_bytes();
    // How many operations the whole plan takes without a crash.
    let total = {
        let sim = SimStorage::from_bytes(image.clone());
        let before = sim.counts();
        let (_, acked) = run_until_power_off(&sim, &base, u64::MAX / 4);
        assert_eq!(acked, 5);
        let after = sim.counts();
        (after.writes - before.writes)
            + (after.syncs - before.syncs)
            + (after.set_lens - before.set_lens)
            + 8
    };
    let mut tree_commit_crashes = 0;
    for ops in 0..total {
        for seed in [None, Some(ops * 31 + 7)] {
            let sim = SimStorage::from_bytes(image.clone());
            let (states, acked) = run_until_power_off(&sim, &base, ops);
            match seed {
                None => sim.crash_losing_unsynced(),
                Some(s) => sim.crash(s),
            }
            let db = open(&sim).unwrap_or_else(|e| panic!("ops {ops}: reopen: {e}"));
            let got = read_state(&db);
            // The recovered state is the one after some prefix of the attempted
            // commits, at least every acknowledged one.
            let at = states
                .iter()
                .position(|s| *s == got)
                .unwrap_or_else(|| panic!("ops {ops} seed {seed:?}: not a prefix state"));
            assert!(
                at >= acked,
                "ops {ops} seed {seed:?}: {acked} acknowledged, recovered only {at}"
            );
            assert!(at <= acked + 1, "ops {ops}: more than was attempted");
            if acked == 2 {
                tree_commit_crashes += 1;
            }
            assert_sound(&db);
            // And it takes new commits.
            commit(&db, &small_writes(99)).unwrap();
        }
    }
    assert!(
        tree_commit_crashes > 4,
        "some crashes fell inside the tree commit"
    );
}

/// A durable transaction of a few MiB (not large) is a tree commit while the file is
/// small next to it, and takes the log once the file's pages in use pass eight times
/// its bytes: in a large tree its keys could each fall in a leaf of their own, and
/// every such commit would rewrite much of the tree. Either way it reads back.
#[test]
fn a_mid_sized_durable_transaction_uses_the_tree_only_while_the_file_is_small() {
    let sim = SimStorage::new();
    let db = Options::new()
        .version_store_budget(256 << 20)
        .random_seed(0x0007_EEC1)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut model = State::new();
    // 2,000 keys of 1,000 bytes: about 2 MB, over the 1 MiB from which a durable
    // commit may go into the tree, far under half the budget.
    let batch = |round: u64| -> Writes {
        (0..2000u64)
            .map(|i| {
                let key = format!(
                    "mid/{:010}",
                    (round * 2000 + i).wrapping_mul(0x9E37_79B9) % 4_000_000_007
                );
                (key.into_bytes(), Some(vec![round as u8; 1000]))
            })
            .collect()
    };
    let mut tree_commits = Vec::new();
    for round in 0..14 {
        let w = batch(round);
        commit(&db, &w).unwrap();
        apply(&mut model, &w);
        tree_commits.push(db.stats().tree_commits);
    }
    assert_eq!(
        tree_commits[0], 1,
        "the first, into an empty file, is a tree commit"
    );
    let last = *tree_commits.last().unwrap();
    assert!(last < 14, "later ones take the log: {tree_commits:?}");
    assert_eq!(
        tree_commits[13], tree_commits[12],
        "once the file is large, no more tree commits: {tree_commits:?}"
    );
    assert!(db.stats().capsule_bytes > 0);
    assert_eq!(read_state(&db), model);
    assert_sound(&db);
}

/// While a tree commit is being written, time travel waits it out as a new snapshot
/// does: the commit raises the history floor to its own sequence before that is
/// visible, and every `begin_read_at` was refused meanwhile, the window inverted.
#[test]
fn time_travel_waits_out_a_tree_commit_in_progress() {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    for n in 0..3 {
        commit(&db, &small_writes(n)).unwrap();
    }
    let gate = sim.hold_nth_sync(1);
    let loader = {
        let db = db.clone();
        std::thread::spawn(move || commit(&db, &bulk_writes(0)).unwrap())
    };
    gate.wait_held();
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || {
            let (oldest, newest) = db.history_window();
            assert!(oldest <= newest, "window ({oldest}, {newest})");
            let tx = db.begin_read_at(newest).unwrap();
            tx.snapshot_seq()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    gate.release();
    let seq = loader.join().unwrap();
    assert_eq!(reader.join().unwrap(), seq, "read the tree commit's state");
    assert_eq!(db.stats().tree_commits, 1);
}

/// A tree commit whose I/O fails raised the history floor to its own sequence before
/// failing (its fold runs before the tree is written), and visibility stalls below it:
/// the window was `(seq, seq - 1)`, and `begin_read_at` refused every state, the one
/// `begin_read` reads included. The floor comes back to the newest visible state.
#[test]
fn a_failed_tree_commit_leaves_the_newest_state_readable_as_of() {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    for n in 0..3 {
        commit(&db, &small_writes(n)).unwrap();
    }
    let before = read_state(&db);
    sim.fail_nth_sync(1);
    assert!(commit(&db, &bulk_writes(0)).is_err());
    assert_eq!(db.stats().tree_commits, 0);
    let (oldest, newest) = db.history_window();
    assert!(oldest <= newest, "window ({oldest}, {newest})");
    let tx = db.begin_read_at(newest).unwrap();
    let mut conn = db.connect();
    assert_eq!(tx.snapshot_seq(), conn.begin_read().unwrap().snapshot_seq());
    drop(tx);
    assert_eq!(read_state(&db), before);
}
