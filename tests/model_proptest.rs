//! The engine against a `BTreeMap` model: random single-threaded operation sequences
//! (tables, puts, deletes, gets, ranges with every kind of bound, commits, rollbacks,
//! and `begin_read` snapshots held across later commits), plus the version store's
//! garbage collection over many commits.

use capsuledb::rng::Rng;
use capsuledb::{Connection, Database, Durability, Error, Isolation, Transaction};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;

type Key = Vec<u8>;
type Table = BTreeMap<Key, Vec<u8>>;
type Model = BTreeMap<String, Table>;

const TABLE_NAMES: [&str; 3] = ["t0", "t1", "t2"];
/// Live `begin_read` snapshots held at once, at most.
const READERS_MAX: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// Begins a transaction (Snapshot if `true`) when none is open.
    Begin(bool),
    CreateTable(usize),
    DropTable(usize),
    Put(usize, Key, Vec<u8>),
    Delete(usize, Key),
    Get(usize, Key),
    Range(usize, Bound<Key>, Bound<Key>, bool),
    ListTables,
    Commit,
    Rollback,
    OpenReader,
    CheckReader(usize),
    CloseReader(usize),
}

/// Keys from a three-letter alphabet, one or two letters long, so they collide often.
fn key() -> impl Strategy<Value = Key> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 1..=2)
}

fn all_keys() -> Vec<Key> {
    let letters = [b'a', b'b', b'c'];
    let mut keys: Vec<Key> = letters.iter().map(|&a| vec![a]).collect();
    for &a in &letters {
        for &b in &letters {
            keys.push(vec![a, b]);
        }
    }
    keys
}

fn bound() -> impl Strategy<Value = Bound<Key>> {
    prop_oneof![
        Just(Bound::Unbounded),
        key().prop_map(Bound::Included),
        key().prop_map(Bound::Excluded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let table = 0..TABLE_NAMES.len();
    prop_oneof![
        2 => any::<bool>().prop_map(Op::Begin),
        3 => table.clone().prop_map(Op::CreateTable),
        1 => table.clone().prop_map(Op::DropTable),
        10 => (table.clone(), key(), prop::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(t, k, v)| Op::Put(t, k, v)),
        4 => (table.clone(), key()).prop_map(|(t, k)| Op::Delete(t, k)),
        4 => (table.clone(), key()).prop_map(|(t, k)| Op::Get(t, k)),
        5 => (table, bound(), bound(), any::<bool>())
            .prop_map(|(t, lo, hi, rev)| Op::Range(t, lo, hi, rev)),
        1 => Just(Op::ListTables),
        4 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        2 => Just(Op::OpenReader),
        2 => any::<usize>().prop_map(Op::CheckReader),
        1 => any::<usize>().prop_map(Op::CloseReader),
    ]
}

fn in_range(lo: &Bound<Key>, hi: &Bound<Key>, k: &[u8]) -> bool {
    std::ops::RangeBounds::<[u8]>::contains(
        &(
            lo.as_ref().map(Vec::as_slice),
            hi.as_ref().map(Vec::as_slice),
        ),
        k,
    )
}

fn not_found(r: &capsuledb::Result<impl std::fmt::Debug>, name: &str) -> bool {
    matches!(r, Err(Error::TableNotFound { table }) if table == name)
}

/// The open read-write transaction and the model of what it sees.
struct Open<'c> {
    tx: Transaction<'c>,
    view: Model,
    wrote: bool,
}

/// Checks everything a transaction sees against a model: tables, scans, point reads.
fn check_view(tx: &Transaction<'_>, model: &Model) -> Result<(), TestCaseError> {
    let names: Vec<String> = model.keys().cloned().collect();
    prop_assert_eq!(tx.tables().unwrap(), names);
    for name in TABLE_NAMES {
        match model.get(name) {
            None => prop_assert!(not_found(&tx.get(name, b"a"), name)),
            Some(table) => {
                let got: Vec<(Key, Vec<u8>)> = tx
                    .iter(name)
                    .unwrap()
                    .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
                    .collect();
                let want: Vec<(Key, Vec<u8>)> =
                    table.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                prop_assert_eq!(got, want, "scan of {}", name);
                for k in all_keys() {
                    prop_assert_eq!(tx.get(name, &k).unwrap(), table.get(&k).cloned());
                }
            }
        }
    }
    Ok(())
}

fn run_ops(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("model.db")).unwrap();
    // Each operation begins at most one transaction, each on a fresh connection.
    let mut conns: Vec<Connection> = (0..ops.len() + 2).map(|_| db.connect()).collect();
    let mut pool = conns.iter_mut();
    let mut committed: Model = BTreeMap::new();
    let mut open: Option<Open<'_>> = None;
    let mut readers: Vec<(Transaction<'_>, Model)> = Vec::new();

    for op in ops {
        if open.is_none()
            && !matches!(
                op,
                Op::Commit
                    | Op::Rollback
                    | Op::OpenReader
                    | Op::CheckReader(_)
                    | Op::CloseReader(_)
            )
        {
            let iso = match op {
                Op::Begin(true) => Isolation::Snapshot,
                _ => Isolation::Serializable,
            };
            let tx = pool.next().unwrap().begin_with(iso).unwrap();
            prop_assert_eq!(tx.snapshot_seq(), db.stats().tip_seq);
            open = Some(Open {
                tx,
                view: committed.clone(),
                wrote: false,
            });
        }
        match op {
            Op::Begin(_) => {}
            Op::CreateTable(t) => {
                let o = open.as_mut().unwrap();
                let name = TABLE_NAMES[*t];
                let r = o.tx.create_table(name);
                if o.view.contains_key(name) {
                    prop_assert!(
                        matches!(&r, Err(Error::TableExists { table }) if table == name),
                        "create_table({}) gave {:?}",
                        name,
                        r
                    );
                } else {
                    prop_assert!(r.is_ok(), "create_table({}) gave {:?}", name, r);
                    o.view.insert(name.to_string(), BTreeMap::new());
                    o.wrote = true;
                }
            }
            Op::DropTable(t) => {
                let o = open.as_mut().unwrap();
                let name = TABLE_NAMES[*t];
                let r = o.tx.drop_table(name);
                if o.view.remove(name).is_some() {
                    prop_assert!(r.is_ok(), "drop_table({}) gave {:?}", name, r);
                    o.wrote = true;
                } else {
                    prop_assert!(not_found(&r, name), "drop_table({}) gave {:?}", name, r);
                }
            }
            Op::Put(t, k, v) => {
                let o = open.as_mut().unwrap();
                let name = TABLE_NAMES[*t];
                let r = o.tx.put(name, k, v);
                match o.view.get_mut(name) {
                    Some(table) => {
                        prop_assert!(r.is_ok(), "put gave {:?}", r);
                        table.insert(k.clone(), v.clone());
                        o.wrote = true;
                    }
                    None => prop_assert!(not_found(&r, name), "put gave {:?}", r),
                }
            }
            Op::Delete(t, k) => {
                let o = open.as_mut().unwrap();
                let name = TABLE_NAMES[*t];
                let r = o.tx.delete(name, k);
                match o.view.get_mut(name) {
                    Some(table) => {
                        prop_assert!(r.is_ok(), "delete gave {:?}", r);
                        table.remove(k);
                        o.wrote = true;
                    }
                    None => prop_assert!(not_found(&r, name), "delete gave {:?}", r),
                }
            }
            Op::Get(t, k) => {
                let o = open.as_ref().unwrap();
                let name = TABLE_NAMES[*t];
                let r = o.tx.get(name, k);
                match o.view.get(name) {
                    Some(table) => prop_assert_eq!(r.unwrap(), table.get(k).cloned()),
                    None => prop_assert!(not_found(&r, name), "get gave {:?}", r),
                }
            }
            Op::Range(t, lo, hi, rev) => {
                let o = open.as_ref().unwrap();
                let name = TABLE_NAMES[*t];
                let r = o.tx.range(name, (lo.clone(), hi.clone()));
                match o.view.get(name) {
                    Some(table) => {
                        let it = r.unwrap();
                        let got: Vec<(Key, Vec<u8>)> = if *rev {
                            it.rev()
                                .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
                                .collect()
                        } else {
                            it.map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
                                .collect()
                        };
                        let mut want: Vec<(Key, Vec<u8>)> = table
                            .iter()
                            .filter(|(k, _)| in_range(lo, hi, k))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        if *rev {
                            want.reverse();
                        }
                        prop_assert_eq!(got, want, "range {:?}..{:?} rev={}", lo, hi, rev);
                    }
                    None => prop_assert!(r.is_err() && not_found(&r.map(|_| ()), name)),
                }
            }
            Op::ListTables => {
                let o = open.as_ref().unwrap();
                let names: Vec<String> = o.view.keys().cloned().collect();
                prop_assert_eq!(o.tx.tables().unwrap(), names);
            }
            Op::Commit => {
                if let Some(o) = open.take() {
                    let snapshot = o.tx.snapshot_seq();
                    let tip = db.stats().tip_seq;
                    let info = o.tx.commit_with(Durability::Applied);
                    prop_assert!(info.is_ok(), "a lone commit failed: {:?}", info);
                    let seq = info.unwrap().seq;
                    if o.wrote {
                        prop_assert_eq!(seq, tip + 1, "a writing commit takes the next seq");
                    } else {
                        prop_assert_eq!(
                            seq,
                            snapshot,
                            "a commit without writes keeps its snapshot"
                        );
                    }
                    committed = o.view;
                }
            }
            Op::Rollback => {
                if let Some(o) = open.take() {
                    o.tx.rollback();
                }
            }
            Op::OpenReader => {
                if readers.len() < READERS_MAX {
                    let tx = pool.next().unwrap().begin_read().unwrap();
                    readers.push((tx, committed.clone()));
                }
            }
            Op::CheckReader(i) => {
                if !readers.is_empty() {
                    let n = i % readers.len();
                    let (tx, model) = &mut readers[n];
                    check_view(tx, model)?;
                    let r = tx.put("t0", b"a", b"x");
                    prop_assert!(
                        matches!(r, Err(Error::ReadOnly)),
                        "put in begin_read gave {:?}",
                        r
                    );
                }
            }
            Op::CloseReader(i) => {
                if !readers.is_empty() {
                    let n = i % readers.len();
                    let (tx, model) = readers.swap_remove(n);
                    check_view(&tx, &model)?;
                }
            }
        }
    }
    if let Some(o) = open.take() {
        check_view(&o.tx, &o.view)?;
        drop(o);
    }
    for (tx, model) in &readers {
        check_view(tx, model)?;
    }
    let tx = pool.next().unwrap().begin_read().unwrap();
    check_view(&tx, &committed)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/model_proptest.txt"
            ),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_btreemap_model(ops in prop::collection::vec(op(), 1..120)) {
        run_ops(&ops)?;
    }
}

/// Writes one key of a small key set per commit, 100 000 times: after garbage
/// collection the version store holds about one version per key, a snapshot keeps the
/// versions it reads, and dropping it lets them go.
#[test]
fn version_store_stays_bounded_over_many_commits() {
    const KEYS: u64 = 10;
    const COMMITS: u64 = 100_000;
    const COMMITS_WHILE_READING: u64 = 2_000;
    // One version per key, the catalog entry, and slack for the newest few commits.
    const VERSIONS_MAX: u64 = 4 * KEYS;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("gc.db")).unwrap();
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    let key = |i: u64| format!("key{i}").into_bytes();
    let mut rng = Rng::new(0x6c);
    let churn = |conn: &mut Connection, commits: u64, rng: &mut Rng| {
        for i in 0..commits {
            let mut tx = conn.begin().unwrap();
            let k = key(rng.below(KEYS));
            if rng.chance(1, 10) {
                tx.delete("t", &k).unwrap();
            } else {
                tx.put("t", &k, &i.to_le_bytes()).unwrap();
            }
            tx.commit_with(Durability::Applied).unwrap();
        }
    };
    let mut peak = 0;
    for _ in 0..COMMITS / 1000 {
        churn(&mut conn, 1000, &mut rng);
        peak = peak.max(db.stats().versions);
    }
    // A checkpoint running beside the collection holds the history floor at its
    // horizon while it gathers what it folds (so a loaded machine can leave more for a
    // moment): the store settles once none runs.
    let mut settled = u64::MAX;
    // A liveness guard, not a measure: a checkpoint on a slow disk may take seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        db.collect_garbage().unwrap();
        settled = db.stats().versions;
        if settled <= VERSIONS_MAX {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        settled <= VERSIONS_MAX,
        "{settled} versions after {COMMITS} commits over {KEYS} keys"
    );

    // A snapshot keeps what it reads.
    let mut reader_conn = db.connect();
    let reader = reader_conn.begin_read().unwrap();
    let seen: Vec<(Key, Vec<u8>)> = reader
        .iter("t")
        .unwrap()
        .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
        .collect();
    churn(&mut conn, COMMITS_WHILE_READING, &mut rng);
    db.collect_garbage().unwrap();
    let during = db.stats().versions;
    let again: Vec<(Key, Vec<u8>)> = reader
        .iter("t")
        .unwrap()
        .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
        .collect();
    assert_eq!(again, seen, "a live snapshot lost versions it reads");
    for (k, v) in &seen {
        assert_eq!(reader.get("t", k).unwrap().as_deref(), Some(v.as_slice()));
    }
    let now: Vec<(Key, Vec<u8>)> = conn
        .begin_read()
        .unwrap()
        .iter("t")
        .unwrap()
        .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
        .collect();
    // Every value the snapshot sees and every current value that differs from it is a
    // distinct version the store must still hold.
    let changed = now.iter().filter(|kv| !seen.contains(kv)).count() as u64;
    assert!(
        during >= seen.len() as u64 + changed,
        "{during} versions cannot hold {} old and {changed} new values",
        seen.len()
    );

    drop(reader);
    let mut after = u64::MAX;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        db.collect_garbage().unwrap();
        after = db.stats().versions;
        if after <= VERSIONS_MAX && after <= during {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        after <= VERSIONS_MAX && after <= during,
        "{after} versions after the snapshot ended (was {during} while it lived)"
    );
    println!(
        "versions: peak {peak} during churn, {settled} settled, {during} with a snapshot, {after} after it"
    );
}

/// Regression (found by the history tests in debug builds): a commit whose insert lets
/// the chain drop two old versions at once (their snapshot just ended) made
/// `VersionStore::apply` compute `1 - 2` in a `u64`. Release builds wrapped back to the
/// right count; debug builds panicked inside `commit`, after the sequence was allocated
/// and before it was made visible, so every later commit waited forever for it.
#[test]
fn regression_apply_prunes_more_versions_than_it_adds() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("underflow.db")).unwrap();
    let mut writer = db.connect();
    let mut reader_conn = db.connect();
    let put = |conn: &mut Connection, v: &[u8]| {
        let mut tx = conn.begin().unwrap();
        tx.put("t", b"k", v).unwrap();
        tx.commit_with(Durability::Applied).unwrap().seq
    };
    let mut tx = writer.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"k", b"v1").unwrap();
    assert_eq!(tx.commit_with(Durability::Applied).unwrap().seq, 1);
    let reader = reader_conn.begin_read().unwrap();
    assert_eq!(put(&mut writer, b"v2"), 2);
    assert_eq!(put(&mut writer, b"v3"), 3);
    assert_eq!(reader.get("t", b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    drop(reader);
    // Chain of k: seqs 1, 2, 3; horizon 3; inserting 4 prunes 1 and 2.
    assert_eq!(put(&mut writer, b"v4"), 4);
    db.collect_garbage().unwrap();
    // k's newest version and the catalog entry of "t".
    assert_eq!(db.stats().versions, 2);
    let tx = reader_conn.begin_read().unwrap();
    assert_eq!(tx.get("t", b"k").unwrap().as_deref(), Some(&b"v4"[..]));
}
