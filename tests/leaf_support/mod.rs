//! Shared by the tests of leaf layouts (`multi_page_leaves.rs`, `uniform_leaves.rs`,
//! `v3_leaves_file.rs`, `v6_file.rs`): whole-table scans, a file fixture put back to its
//! length, the kind bytes of a file's pages, and a crash at every I/O point of a
//! workload of durable commits and checkpoints.

#![allow(dead_code, reason = "each test binary uses a part of it")]

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Options, Transaction};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every entry of `table`, by a forward scan, in the order it gives them.
pub fn scan_all(tx: &Transaction<'_>, table: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    tx.iter(table)
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Every entry of `table`, by a reverse scan, put back in ascending order.
pub fn scan_all_reversed(tx: &Transaction<'_>, table: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = tx
        .iter(table)
        .unwrap()
        .rev()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    entries.reverse();
    entries
}

/// Writes a fixture (a file's first bytes, the rest of it zero) to `path`, and puts
/// back its length `file_len`.
pub fn restore_fixture(path: &std::path::Path, bytes: &[u8], file_len: u64) {
    std::fs::write(path, bytes).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(file_len).unwrap();
}

/// The kind byte of every 4 KiB page of `file` after the header region.
pub fn page_kinds(file: &[u8]) -> Vec<u8> {
    file.chunks(4096).skip(2).map(|p| p[4]).collect()
}

/// The writes of commit `n` of a crash workload (0: the initial load), each given to
/// the function: a key and its value, or `None` for a delete.
pub type Apply = fn(u32, &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>));

/// Table `t` after commits `0..=commits` of `apply`.
pub fn state_after(apply: Apply, commits: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for n in 0..=commits {
        apply(n, &mut |k, v| match v {
            Some(v) => {
                m.insert(k, v);
            }
            None => {
                m.remove(&k);
            }
        });
    }
    m
}

/// A database holding table `t` with commit 0 of `apply`, checkpointed and closed.
fn crash_setup(open: fn(&SimStorage) -> Database, apply: Apply) -> SimStorage {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    apply(0, &mut |k, v| {
        tx.put("t", &k, &v.unwrap_or_default()).unwrap()
    });
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    drop(c);
    db.close().unwrap();
    sim
}

/// Commits 1 to 6 of `apply`, durable, a checkpoint after every second; stops at the
/// first failure (the storage lost power). `acked`: the commits acknowledged.
fn crash_workload(db: &Database, apply: Apply, acked: &mut u32) {
    let mut c = db.connect();
    for n in 1..=6u32 {
        let mut tx = c.begin().unwrap();
        apply(n, &mut |k, v| match v {
            Some(v) => tx.put("t", &k, &v).unwrap(),
            None => tx.delete("t", &k).unwrap(),
        });
        if tx.commit_with(Durability::Durable).is_err() {
            return;
        }
        *acked = n;
        if n % 2 == 0 && db.checkpoint().is_err() {
            return;
        }
    }
}

/// Runs the crash workload of `apply` once whole (`check` sees the database after it,
/// and the storage), then again with the power cut after each of its I/O operations
/// (every third under `CI`), each cut image crashed two ways: every reopen must pass
/// `check_integrity` and hold the state of a commit at or after the last acknowledged
/// one. `reopen_seed` seeds the reopening database. Returns the I/O points.
pub fn crash_at_every_io_point(
    open: fn(&SimStorage) -> Database,
    reopen_seed: u64,
    apply: Apply,
    check: impl Fn(&Database, &SimStorage),
) -> u64 {
    let sim = crash_setup(open, apply);
    let base = sim.counts();
    let db = open(&sim);
    let mut acked = 0;
    crash_workload(&db, apply, &mut acked);
    assert_eq!(acked, 6);
    check(&db, &sim);
    drop(db);
    let c = sim.counts();
    let total = (c.writes + c.syncs + c.set_lens) - (base.writes + base.syncs + base.set_lens);
    let states: Vec<_> = (0..=6).map(|n| state_after(apply, n)).collect();
    for n in (0..total + 3).step_by(if std::env::var("CI").is_ok() { 3 } else { 1 }) {
        let sim = crash_setup(open, apply);
        let db = open(&sim);
        sim.power_off_after(n);
        let mut acked = 0;
        crash_workload(&db, apply, &mut acked);
        drop(db);
        for seed in 0..2 {
            let image = sim.fork();
            image.crash(n * 7 + seed);
            let context = format!("power off after {n} of {total} ops, crash seed {seed}");
            let db = Options::new()
                .random_seed(reopen_seed)
                .open_storage(Arc::new(image))
                .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
            let report = db.check_integrity().unwrap();
            assert!(report.is_ok(), "{context}: {:?}", report.problems);
            let mut c = db.connect();
            let tx = c.begin_read().unwrap();
            let now: BTreeMap<Vec<u8>, Vec<u8>> = scan_all(&tx, "t").into_iter().collect();
            match states.iter().position(|s| *s == now) {
                Some(k) => assert!(
                    k as u32 >= acked,
                    "{context}: state after commit {k}, {acked} acknowledged"
                ),
                None => panic!("{context}: the state is no commit's"),
            }
        }
    }
    total
}

/// The contents of tables `a` and `b`, keyed by `(table letter, key)`.
pub type TwoTables = BTreeMap<(u8, Vec<u8>), Vec<u8>>;

/// Tables `a` and `b` holding the 4-byte big-endian keys `0..a_keys` and `0..b_keys`,
/// each with `value(table letter, key)`.
pub fn two_tables(a_keys: u32, b_keys: u32, value: fn(u8, u32) -> Vec<u8>) -> TwoTables {
    let mut m = BTreeMap::new();
    for (t, keys) in [(b'a', a_keys), (b'b', b_keys)] {
        for k in 0..keys {
            m.insert((t, k.to_be_bytes().to_vec()), value(t, k));
        }
    }
    m
}

/// Checks table `t` of `want` in `tx`: every entry by a point read, key `missing` absent,
/// and a forward scan. Returns the table's entries in key order.
pub fn assert_table(
    tx: &Transaction<'_>,
    want: &TwoTables,
    t: u8,
    missing: u32,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let name = (t as char).to_string();
    let table: Vec<(Vec<u8>, Vec<u8>)> = want
        .iter()
        .filter(|((tt, _), _)| *tt == t)
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &table {
        assert_eq!(tx.get(&name, k).unwrap().as_deref(), Some(&v[..]));
    }
    assert_eq!(tx.get(&name, &missing.to_be_bytes()).unwrap(), None);
    assert_eq!(scan_all(tx, &name), table, "forward scan of {name}");
    table
}
