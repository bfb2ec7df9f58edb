//! Resource limits and misuse: a disk that fills up during commits and checkpoints,
//! keys, values and table names at their limits and one past them, thousands of tables,
//! transactions used wrongly, panics while a transaction or a scan is open, many opens of
//! one file in one process, handles and values outliving `close`, and commits after the
//! database is poisoned. Each ends in a typed error or correct data, never a panic, a lost
//! acknowledged commit or a partly visible one. Three engine bugs found here are fixed,
//! their tests kept: `opening_while_the_last_handle_closes_never_reports_locked`,
//! `open_after_close_gives_a_working_database_or_an_error` and
//! `the_catalog_name_is_reserved`.

use capsuledb::storage::{SimStorage, Storage};
use capsuledb::{
    CATALOG_NAME, Database, Durability, Error, Isolation, MAX_KEY_LEN, MAX_TABLE_NAME_LEN,
    MAX_VALUE_LEN, Options,
};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Barrier};

const TABLE: &str = "t";
const SEED: u64 = 0x5EED_0015;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn open_sim(sim: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(SEED)
        .open_storage(Arc::new(sim.clone()))
}

fn create_table(db: &Database, name: &str) {
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.create_table(name).unwrap();
    tx.commit().unwrap();
}

/// Everything in `table`, by a full scan.
fn scan(db: &Database, table: &str) -> State {
    let mut conn = db.connect();
    let tx = conn.begin_read().unwrap();
    tx.iter(table)
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k, v.to_vec())
        })
        .collect()
}

fn assert_clean(db: &Database, when: &str) {
    let report = db.check_integrity().unwrap();
    assert!(
        report.is_ok(),
        "check_integrity {when}: {:?}",
        report.problems
    );
}

fn is_io_or_poisoned(e: &Error) -> bool {
    matches!(e, Error::Io { .. } | Error::Poisoned { .. })
}

// ---------------------------------------------------------------------------------------
// A disk that fills up.

/// Data keys per commit of the full-disk workload (plus the shared `last` key).
const FULL_KEYS_PER_COMMIT: u32 = 3;
const FULL_COMMITS: u32 = 120;

fn full_key(i: u32, j: u32) -> Vec<u8> {
    format!("k{i:04}-{j}").into_bytes()
}

/// Mostly small values; every third commit carries one that needs pages of its own.
fn full_value(i: u32, j: u32) -> Vec<u8> {
    let len = if j == 0 && i % 3 == 2 {
        96 << 10
    } else {
        20 + (i as usize * 7 + j as usize) % 300
    };
    (0..len).map(|b| (b as u32 ^ (i * 31 + j)) as u8).collect()
}

fn full_commit_kvs(i: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut kvs: Vec<_> = (0..FULL_KEYS_PER_COMMIT)
        .map(|j| (full_key(i, j), full_value(i, j)))
        .collect();
    kvs.push((b"last".to_vec(), i.to_string().into_bytes()));
    kvs
}

fn full_model(commits: &[u32]) -> State {
    let mut m = State::new();
    for &i in commits {
        m.extend(full_commit_kvs(i));
    }
    m
}

fn full_try_commit(db: &Database, i: u32) -> capsuledb::Result<u64> {
    let mut conn = db.connect();
    let mut tx = conn.begin()?;
    for (k, v) in full_commit_kvs(i) {
        tx.put(TABLE, &k, &v)?;
    }
    Ok(tx.commit_with(Durability::Durable)?.seq)
}

/// Checks `state` holds exactly the acknowledged commits plus at most one failed commit,
/// whole, and one that came after every acknowledged commit.
fn check_full_state(state: &State, acked: &[u32], failed: &[u32], when: &str) {
    let mut survivors = Vec::new();
    for &f in failed {
        let present = (0..FULL_KEYS_PER_COMMIT)
            .filter(|&j| state.contains_key(&full_key(f, j)))
            .count() as u32;
        assert!(
            present == 0 || present == FULL_KEYS_PER_COMMIT,
            "{when}: failed commit {f} is half there ({present} of {FULL_KEYS_PER_COMMIT} keys)"
        );
        if present > 0 {
            survivors.push(f);
        }
    }
    assert!(
        survivors.len() <= 1,
        "{when}: several failed commits survived: {survivors:?}"
    );
    if let Some(&s) = survivors.first() {
        assert!(
            acked.iter().all(|&a| a < s),
            "{when}: failed commit {s} survived but later ones were acknowledged"
        );
    }
    let mut present = acked.to_vec();
    present.extend(&survivors);
    present.sort_unstable();
    assert!(
        *state == full_model(&present),
        "{when}: the state is not the acknowledged commits {present:?}"
    );
}

#[derive(Default, Debug)]
struct FullRun {
    acked: Vec<u32>,
    failed: Vec<u32>,
    poisoned: bool,
    checkpoint_errors: u32,
    compact_errors: u32,
}

/// Commits with checkpoints and compactions between them on a disk that fills at
/// `max_len`; every error is `Io` or `Poisoned` and poisoning is sticky.
fn full_disk_workload(db: &Database, sim: &SimStorage, max_len: u64) -> FullRun {
    sim.set_max_len(Some(max_len));
    let mut run = FullRun::default();
    let mut poisoned = false;
    for i in 0..FULL_COMMITS {
        match full_try_commit(db, i) {
            Ok(_) => {
                assert!(!poisoned, "commit {i} succeeded after Poisoned");
                run.acked.push(i);
            }
            Err(e) => {
                assert!(is_io_or_poisoned(&e), "commit {i}: {e:?}");
                assert!(!poisoned || matches!(e, Error::Poisoned { .. }), "{e:?}");
                poisoned |= matches!(e, Error::Poisoned { .. });
                run.failed.push(i);
            }
        }
        if i % 10 == 9
            && let Err(e) = db.checkpoint()
        {
            assert!(is_io_or_poisoned(&e), "checkpoint after {i}: {e:?}");
            run.checkpoint_errors += 1;
        }
        if i % 25 == 24
            && let Err(e) = db.compact()
        {
            assert!(is_io_or_poisoned(&e), "compact after {i}: {e:?}");
            run.compact_errors += 1;
        }
        assert!(
            sim.len().unwrap() <= max_len,
            "the file passed the disk's size"
        );
    }
    run.poisoned = poisoned;
    run
}

#[test]
fn a_full_disk_is_an_error_and_loses_no_acknowledged_commit() {
    // The file's length after creating the table, then limits from "no room at all" to
    // "room for most of the workload". The file grows in steps of at least 1 MiB, so
    // the limits are spread over several steps, some between them.
    let base = {
        let sim = SimStorage::new();
        let db = open_sim(&sim).unwrap();
        create_table(&db, TABLE);
        drop(db);
        sim.len().unwrap()
    };
    let mut limits_hit = 0;
    for extra in [
        0u64,
        1 << 20,
        (3 << 20) / 2,
        2 << 20,
        3 << 20,
        (9 << 20) / 2,
    ] {
        let max_len = base + extra;
        let sim = SimStorage::new();
        let db = open_sim(&sim).unwrap();
        create_table(&db, TABLE);
        let mut run = full_disk_workload(&db, &sim, max_len);
        let errors = run.failed.len() as u32 + run.checkpoint_errors + run.compact_errors;
        if errors > 0 {
            limits_hit += 1;
        }
        println!(
            "disk of {max_len} bytes: {} commits acknowledged, {} refused, {} checkpoint and \
             {} compact errors",
            run.acked.len(),
            run.failed.len(),
            run.checkpoint_errors,
            run.compact_errors
        );
        // Live: a failed commit is invisible, reads work on the full disk.
        assert!(
            scan(&db, TABLE) == full_model(&run.acked),
            "disk of {max_len}: live state is not the acknowledged commits"
        );
        assert_clean(&db, &format!("on the full disk of {max_len} bytes"));
        // Power lost while the disk is still full, keeping a seeded part of what was not
        // synced (torn at sectors): the Durable acknowledgements all survive.
        let torn = sim.fork();
        torn.crash(max_len ^ 0xF011);
        {
            let when = format!("disk of {max_len} bytes, torn crash while full");
            let db = open_sim(&torn).unwrap_or_else(|e| panic!("{when}: reopen: {e}"));
            check_full_state(&scan(&db, TABLE), &run.acked, &run.failed, &when);
            assert_clean(&db, &when);
        }
        // Lifting the limit: the same handle reads the same and, unless a commit's I/O
        // failed past the point of no return (Poisoned), commits again.
        sim.set_max_len(None);
        assert!(scan(&db, TABLE) == full_model(&run.acked));
        match full_try_commit(&db, FULL_COMMITS) {
            Ok(_) => {
                assert!(!run.poisoned, "a commit succeeded after Poisoned");
                run.acked.push(FULL_COMMITS);
            }
            Err(e) => {
                assert!(matches!(e, Error::Poisoned { .. }), "after lifting: {e:?}");
                run.failed.push(FULL_COMMITS);
            }
        }
        println!(
            "  after lifting the limit: {}",
            if run.failed.last() == Some(&FULL_COMMITS) {
                "poisoned until reopened"
            } else {
                "commits again"
            }
        );
        assert!(scan(&db, TABLE) == full_model(&run.acked));
        drop(db);

        // A power loss that keeps nothing unsynced: every Durable ack survives.
        let crashed = sim.fork();
        crashed.crash_losing_unsynced();
        for (image, what) in [(crashed, "after a crash"), (sim, "after a clean reopen")] {
            let when = format!("disk of {max_len} bytes, {what}");
            let db = open_sim(&image).unwrap_or_else(|e| panic!("{when}: reopen: {e}"));
            check_full_state(&scan(&db, TABLE), &run.acked, &run.failed, &when);
            assert_clean(&db, &when);
            // It takes new commits and checkpoints again, and stays sound.
            full_try_commit(&db, FULL_COMMITS + 1).unwrap();
            db.checkpoint().unwrap();
            db.compact().unwrap();
            assert_clean(&db, &format!("{when}, after a new commit"));
            let state = scan(&db, TABLE);
            let last = (FULL_COMMITS + 1).to_string().into_bytes();
            assert_eq!(state.get(b"last".as_slice()), Some(&last));
        }
    }
    assert!(limits_hit >= 4, "the disk filled only {limits_hit} times");
}

#[test]
fn a_full_disk_under_concurrent_commits_loses_no_acknowledged_commit() {
    // Four threads commit (each its own keys, so no conflicts) while another one
    // checkpoints and compacts; the disk fills part way. Each thread's acknowledged
    // commits survive a crash; each failed one is whole or absent.
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 60;
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    sim.set_max_len(Some(sim.len().unwrap() + (3 << 20)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let maintenance = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut errors = 0;
            for round in 0u32.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let r = if round % 4 == 3 {
                    db.compact().map(drop)
                } else {
                    db.checkpoint().map(drop)
                };
                if let Err(e) = r {
                    assert!(is_io_or_poisoned(&e), "maintenance: {e:?}");
                    errors += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            errors
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let (mut acked, mut failed) = (Vec::new(), Vec::new());
                for n in 0..PER_THREAD {
                    // Commit numbers interleave the threads: i = n * THREADS + t.
                    let i = n * THREADS + t;
                    let mut conn = db.connect();
                    let result = (|| {
                        let mut tx = conn.begin()?;
                        for (k, v) in full_commit_kvs(i).into_iter().take(3) {
                            tx.put(TABLE, &k, &v)?;
                        }
                        tx.commit()
                    })();
                    match result {
                        Ok(_) => acked.push(i),
                        Err(e) => {
                            assert!(is_io_or_poisoned(&e), "thread {t} commit {i}: {e:?}");
                            failed.push(i);
                        }
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    for w in workers {
        let (a, f) = w.join().expect("a committer panicked");
        acked.extend(a);
        failed.extend(f);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let maintenance_errors = maintenance.join().expect("maintenance panicked");
    println!(
        "concurrent full disk: {} acknowledged, {} refused, {maintenance_errors} maintenance \
         errors",
        acked.len(),
        failed.len()
    );
    assert!(!failed.is_empty(), "the disk never filled");
    let model = |commits: &[u32]| {
        let mut m = State::new();
        for &i in commits {
            m.extend(full_commit_kvs(i).into_iter().take(3));
        }
        m
    };
    // Several failed commits may have been sequenced (a group of them) before a failure:
    // each failed one is whole or absent; every acknowledged one is there.
    let check = |state: &State, when: &str| {
        let mut present = acked.clone();
        for &f in &failed {
            let n = (0..FULL_KEYS_PER_COMMIT)
                .filter(|&j| state.contains_key(&full_key(f, j)))
                .count() as u32;
            assert!(
                n == 0 || n == FULL_KEYS_PER_COMMIT,
                "{when}: failed commit {f} is half there"
            );
            if n > 0 {
                present.push(f);
            }
        }
        assert!(*state == model(&present), "{when}: state");
    };
    let live = scan(&db, TABLE);
    assert!(live == model(&acked), "live: a refused commit is visible");
    drop(db);
    for (seed, what) in [(None, "losing everything unsynced"), (Some(7), "torn")] {
        let image = sim.fork();
        match seed {
            None => image.crash_losing_unsynced(),
            Some(s) => image.crash(s),
        }
        let db = open_sim(&image).unwrap();
        check(&scan(&db, TABLE), what);
        assert_clean(&db, what);
        full_try_commit(&db, 10_000).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Keys, values and table names at their limits.

fn max_key(tag: u32) -> Vec<u8> {
    let mut k = vec![b'k'; MAX_KEY_LEN];
    k[MAX_KEY_LEN - 4..].copy_from_slice(&tag.to_be_bytes());
    k
}

#[test]
fn keys_at_the_limit_work_and_one_byte_more_is_refused() {
    const KEYS: u32 = 120;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let db = Database::open(&path).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    // Half in one transaction, with the empty key (allowed) beside them.
    for i in (0..KEYS).step_by(2) {
        tx.put(TABLE, &max_key(i), &i.to_le_bytes()).unwrap();
    }
    tx.put(TABLE, b"", b"empty").unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    // The other half after the checkpoint, so the tree and the version store both hold
    // maximal keys.
    for i in (1..KEYS).step_by(2) {
        let mut tx = conn.begin().unwrap();
        tx.put(TABLE, &max_key(i), &i.to_le_bytes()).unwrap();
        tx.commit().unwrap();
    }
    let check = |db: &Database, when: &str| {
        let mut conn = db.connect();
        let tx = conn.begin_read().unwrap();
        for i in 0..KEYS {
            assert_eq!(
                tx.get(TABLE, &max_key(i)).unwrap(),
                Some(i.to_le_bytes().to_vec()),
                "{when}: key {i}"
            );
        }
        // The full scan: the empty key, then the maximal keys in order (key `KEYS` is
        // written later by the refusal check).
        let keys: Vec<Vec<u8>> = tx
            .iter(TABLE)
            .unwrap()
            .map(|r| r.unwrap().0)
            .filter(|k| *k != max_key(KEYS))
            .collect();
        let mut expected: Vec<Vec<u8>> = (0..KEYS).map(max_key).collect();
        expected.insert(0, Vec::new());
        assert!(keys == expected, "{when}: full scan: {} keys", keys.len());
        // A range bounded by maximal keys on both sides, both directions.
        let inner: Vec<Vec<u8>> = tx
            .range(TABLE, max_key(10)..=max_key(20))
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert!(
            inner == (10..=20).map(max_key).collect::<Vec<_>>(),
            "{when}"
        );
        let rev: Vec<Vec<u8>> = tx
            .range_rev(TABLE, max_key(10)..max_key(20))
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert!(
            rev == (10..20).rev().map(max_key).collect::<Vec<_>>(),
            "{when}"
        );
        assert_eq!(tx.get(TABLE, b"").unwrap().as_deref(), Some(&b"empty"[..]));
    };
    check(&db, "before the checkpoint");
    db.checkpoint().unwrap();
    check(&db, "after the checkpoint");
    assert_clean(&db, "with maximal keys");

    // One byte more is refused by every operation that takes a key, and the refusal
    // leaves the transaction usable.
    let long = vec![b'x'; MAX_KEY_LEN + 1];
    let too_large = |r: capsuledb::Result<()>| match r {
        Err(Error::KeyTooLarge { len, max }) => {
            assert_eq!((len, max), (MAX_KEY_LEN + 1, MAX_KEY_LEN));
        }
        other => panic!("expected KeyTooLarge, got {other:?}"),
    };
    let mut tx = conn.begin().unwrap();
    too_large(tx.put(TABLE, &long, b"v"));
    too_large(tx.delete(TABLE, &long));
    too_large(tx.get(TABLE, &long).map(drop));
    too_large(tx.get_ref(TABLE, &long).map(drop));
    // A range may be bounded by a longer key: nothing stored can equal it. Either
    // it scans correctly or it refuses the key; never a wrong answer.
    match tx.range(TABLE, max_key(KEYS - 2)..long.clone()) {
        Ok(r) => {
            let keys: Vec<Vec<u8>> = r.map(|r| r.unwrap().0).collect();
            assert!(keys == vec![max_key(KEYS - 2), max_key(KEYS - 1)]);
        }
        Err(e) => assert!(matches!(e, Error::KeyTooLarge { .. }), "{e:?}"),
    }
    tx.put(TABLE, &max_key(KEYS), b"after the refusals")
        .unwrap();
    tx.commit().unwrap();
    drop(conn);
    drop(db);

    let db = Database::open(&path).unwrap();
    check(&db, "after reopening");
    assert_eq!(
        scan(&db, TABLE).get(&max_key(KEYS)).map(Vec::as_slice),
        Some(&b"after the refusals"[..])
    );
    // Deleting them all leaves a sound, empty table.
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    for i in 0..=KEYS {
        tx.delete(TABLE, &max_key(i)).unwrap();
    }
    tx.delete(TABLE, b"").unwrap();
    tx.commit().unwrap();
    db.compact().unwrap();
    assert!(scan(&db, TABLE).is_empty());
    assert_clean(&db, "after deleting the maximal keys");
}

fn big_value(len: usize, tag: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ tag)
        .collect()
}

#[test]
fn values_at_the_limit_work_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.db");
    let db = Database::open(&path).unwrap();
    create_table(&db, TABLE);
    let a = big_value(MAX_VALUE_LEN, 1);
    let b = big_value(MAX_VALUE_LEN, 2);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"a", &a).unwrap();
    match tx.put(TABLE, b"c", &vec![0u8; MAX_VALUE_LEN + 1]) {
        Err(Error::ValueTooLarge { len, max }) => {
            assert_eq!((len, max), (MAX_VALUE_LEN + 1, MAX_VALUE_LEN));
        }
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    // The refused put left nothing behind and the transaction goes on.
    assert_eq!(tx.get(TABLE, b"c").unwrap(), None);
    tx.put(TABLE, b"b", &b).unwrap();
    tx.commit().unwrap();
    let check = |db: &Database, when: &str| {
        let mut conn = db.connect();
        let tx = conn.begin_read().unwrap();
        let va = tx.get_ref(TABLE, b"a").unwrap().expect("a");
        assert!(*va == *a.as_slice(), "{when}: value a");
        assert!(
            tx.get(TABLE, b"b").unwrap().as_deref() == Some(b.as_slice()),
            "{when}"
        );
        let scanned: Vec<(Vec<u8>, usize)> = tx
            .iter(TABLE)
            .unwrap()
            .map(|r| r.map(|(k, v)| (k, v.len())).unwrap())
            .collect();
        assert_eq!(
            scanned,
            vec![
                (b"a".to_vec(), MAX_VALUE_LEN),
                (b"b".to_vec(), MAX_VALUE_LEN)
            ],
            "{when}"
        );
    };
    check(&db, "in the version store");
    db.checkpoint().unwrap();
    check(&db, "after the checkpoint");
    assert_clean(&db, "with maximal values");
    drop(conn);
    drop(db);
    let db = Database::open(&path).unwrap();
    check(&db, "after reopening");
    // Overwrite one, delete the other; compaction gives the space back.
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"a", &b).unwrap();
    tx.delete(TABLE, b"b").unwrap();
    tx.commit().unwrap();
    db.compact().unwrap();
    let tx = conn.begin_read().unwrap();
    assert!(tx.get(TABLE, b"a").unwrap().as_deref() == Some(b.as_slice()));
    assert_eq!(tx.get(TABLE, b"b").unwrap(), None);
    drop(tx);
    assert_clean(&db, "after overwriting a maximal value");
    // Compaction cuts only a free tail; the space of the old values is reused instead.
    let after_compact = db.info().unwrap().file_len;
    for round in 0..3u8 {
        let mut tx = conn.begin().unwrap();
        tx.put(TABLE, b"a", &big_value(MAX_VALUE_LEN, 10 + round))
            .unwrap();
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        println!(
            "round {round}: file {} bytes (after compaction {after_compact}), {} free pages",
            db.info().unwrap().file_len,
            db.stats().free_pages
        );
    }
    assert_clean(&db, "after rewriting a maximal value");
}

#[test]
fn table_names_at_the_limit_work_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("names.db");
    let db = Database::open(&path).unwrap();
    let ascii = "n".repeat(MAX_TABLE_NAME_LEN);
    // 85 three-byte characters: the limit is in bytes.
    let wide = "€".repeat(MAX_TABLE_NAME_LEN / 3);
    assert_eq!(wide.len(), MAX_TABLE_NAME_LEN);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    for name in [&ascii, &wide] {
        tx.create_table(name).unwrap();
        tx.put(name, b"k", name.as_bytes()).unwrap();
    }
    tx.commit().unwrap();

    let invalid = |r: capsuledb::Result<()>, len: usize| match r {
        Err(Error::InvalidTableName { len: l, max }) => {
            assert_eq!((l, max), (len, MAX_TABLE_NAME_LEN));
        }
        other => panic!("expected InvalidTableName for {len} bytes, got {other:?}"),
    };
    let long = "n".repeat(MAX_TABLE_NAME_LEN + 1);
    let wide_long = format!("{wide}x");
    let mut tx = conn.begin().unwrap();
    for name in [long.as_str(), wide_long.as_str(), ""] {
        invalid(tx.create_table(name), name.len());
        invalid(tx.put(name, b"k", b"v"), name.len());
        invalid(tx.get(name, b"k").map(drop), name.len());
        invalid(tx.delete(name, b"k"), name.len());
        invalid(tx.drop_table(name), name.len());
        invalid(tx.range(name, ..b"z".as_slice()).map(drop), name.len());
        invalid(tx.table_exists(name).map(drop), name.len());
    }
    tx.put(&ascii, b"k2", b"after the refusals").unwrap();
    tx.commit().unwrap();

    // The name conflicts are reported under: whatever the engine does with it, it is
    // never confused with the catalog itself. Either it is refused, or it is an
    // ordinary table that does not touch the catalog's contents.
    let mut tx = conn.begin().unwrap();
    match tx.create_table(CATALOG_NAME) {
        Err(e) => assert!(
            matches!(
                e,
                Error::InvalidTableName { .. } | Error::TableExists { .. }
            ),
            "creating {CATALOG_NAME:?}: {e:?}"
        ),
        Ok(()) => {
            tx.put(CATALOG_NAME, &ascii.as_bytes()[..10], b"not a table id")
                .unwrap();
            tx.put(CATALOG_NAME, b"x", b"y").unwrap();
        }
    }
    tx.commit().unwrap();
    let catalog_is_table = conn
        .begin_read()
        .unwrap()
        .table_exists(CATALOG_NAME)
        .unwrap_or(false);
    println!("a table named {CATALOG_NAME:?} can be created: {catalog_is_table}");

    let check = |db: &Database, when: &str| {
        let mut conn = db.connect();
        let tx = conn.begin_read().unwrap();
        let mut expected = vec![ascii.clone(), wide.clone()];
        if catalog_is_table {
            expected.push(CATALOG_NAME.to_string());
        }
        expected.sort();
        assert_eq!(tx.tables().unwrap(), expected, "{when}");
        assert_eq!(
            tx.get(&wide, b"k").unwrap(),
            Some(wide.clone().into_bytes())
        );
        assert_eq!(
            tx.get(&ascii, b"k2").unwrap().as_deref(),
            Some(&b"after the refusals"[..])
        );
        for name in [long.as_str(), ""] {
            assert!(!tx.tables().unwrap().iter().any(|t| t == name));
        }
        if catalog_is_table {
            assert_eq!(tx.len(CATALOG_NAME).unwrap(), 2, "{when}");
        }
    };
    check(&db, "before the checkpoint");
    db.checkpoint().unwrap();
    check(&db, "after the checkpoint");
    drop(conn);
    drop(db);
    let db = Database::open(&path).unwrap();
    check(&db, "after reopening");
    assert_clean(&db, "with limit-length table names");
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    for name in [&ascii, &wide] {
        tx.drop_table(name).unwrap();
    }
    if catalog_is_table {
        tx.drop_table(CATALOG_NAME).unwrap();
    }
    tx.commit().unwrap();
    assert!(conn.begin_read().unwrap().tables().unwrap().is_empty());
    db.checkpoint().unwrap();
    assert_clean(&db, "after dropping them");
}

#[test]
fn the_catalog_name_is_reserved() {
    let db = open_sim(&SimStorage::new()).unwrap();
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    match tx.create_table(CATALOG_NAME) {
        Err(Error::InvalidTableName { .. }) => {}
        other => panic!("creating a table named {CATALOG_NAME:?}: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Thousands of tables.

fn table_name(i: u32) -> String {
    format!("table-{i:05}")
}

#[test]
fn thousands_of_tables_are_created_listed_reopened_and_dropped() {
    const TABLES: u32 = 3000;
    const PER_TX: u32 = 250;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tables.db");
    let db = Database::open(&path).unwrap();
    let mut conn = db.connect();
    for chunk in 0..TABLES / PER_TX {
        let mut tx = conn.begin().unwrap();
        for i in chunk * PER_TX..(chunk + 1) * PER_TX {
            let name = table_name(i);
            tx.create_table(&name).unwrap();
            for k in 0..(i % 3) {
                tx.put(&name, &k.to_le_bytes(), name.as_bytes()).unwrap();
            }
        }
        tx.commit().unwrap();
        if chunk % 4 == 1 {
            db.checkpoint().unwrap();
        }
    }
    let check = |db: &Database, when: &str| {
        let mut conn = db.connect();
        let tx = conn.begin_read().unwrap();
        let names = tx.tables().unwrap();
        assert_eq!(
            names,
            (0..TABLES).map(table_name).collect::<Vec<_>>(),
            "{when}"
        );
        for i in (0..TABLES).step_by(7) {
            let name = table_name(i);
            assert_eq!(tx.len(&name).unwrap(), u64::from(i % 3), "{when}: {name}");
            if i % 3 > 0 {
                assert_eq!(
                    tx.get(&name, &0u32.to_le_bytes()).unwrap(),
                    Some(name.clone().into_bytes())
                );
            }
        }
    };
    check(&db, "before the checkpoint");
    db.checkpoint().unwrap();
    check(&db, "after the checkpoint");
    drop(conn);
    drop(db);
    let db = Database::open(&path).unwrap();
    check(&db, "after reopening");
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.tables, u64::from(TABLES));

    // Drop every other table, then the rest in one transaction.
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    for i in (0..TABLES).step_by(2) {
        tx.drop_table(&table_name(i)).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let left = conn.begin_read().unwrap().tables().unwrap();
    assert_eq!(
        left,
        (1..TABLES).step_by(2).map(table_name).collect::<Vec<_>>()
    );
    let mut tx = conn.begin().unwrap();
    for name in &left {
        tx.drop_table(name).unwrap();
    }
    tx.commit().unwrap();
    db.compact().unwrap();
    assert!(conn.begin_read().unwrap().tables().unwrap().is_empty());
    assert_clean(&db, "after dropping every table");
    drop(conn);
    drop(db);
    let db = Database::open(&path).unwrap();
    let mut conn = db.connect();
    let tx = conn.begin_read().unwrap();
    assert!(tx.tables().unwrap().is_empty());
    assert!(matches!(
        tx.get(&table_name(5), b"k"),
        Err(Error::TableNotFound { .. })
    ));
    drop(tx);
    assert_clean(&db, "reopened after dropping every table");
}

// ---------------------------------------------------------------------------------------
// Transactions used wrongly.

#[test]
fn a_transaction_is_consumed_by_commit_and_survives_refused_operations() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();

    // `commit(self)` and `rollback(self)` take the transaction by value: using it after
    // either is "use of moved value", a compile error, so there is nothing to check at
    // run time. Likewise `Connection::begin(&mut self)` borrows the connection until the
    // transaction ends, so a second `begin` on it while one is open does not compile
    // (`Error::TransactionInProgress` cannot be reached through this API). Two
    // connections on one thread may each have a transaction open.
    let mut other = db.connect();
    let mut t1 = conn.begin().unwrap();
    let mut t2 = other.begin().unwrap();
    t1.put(TABLE, b"x", b"1").unwrap();
    t2.put(TABLE, b"x", b"2").unwrap();
    let seq1 = t1.commit().unwrap().seq;
    // The loser of first-committer-wins gets a Conflict; its transaction is gone.
    match t2.commit() {
        Err(Error::Conflict {
            table,
            key,
            committed_seq,
        }) => {
            assert_eq!((table.as_str(), key.as_slice()), (TABLE, &b"x"[..]));
            assert_eq!(committed_seq, seq1);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The connection of the refused transaction begins again at once and commits.
    let mut t2 = other.begin().unwrap();
    assert_eq!(t2.get(TABLE, b"x").unwrap().as_deref(), Some(&b"1"[..]));
    t2.put(TABLE, b"x", b"3").unwrap();
    t2.commit().unwrap();

    // Refused operations leave the transaction usable and leave nothing behind.
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"a", b"1").unwrap();
    assert!(matches!(
        tx.put(TABLE, &vec![0; MAX_KEY_LEN + 1], b"v"),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        tx.put("missing", b"k", b"v"),
        Err(Error::TableNotFound { .. })
    ));
    assert!(matches!(
        tx.create_table(TABLE),
        Err(Error::TableExists { .. })
    ));
    assert!(matches!(
        tx.drop_table("missing"),
        Err(Error::TableNotFound { .. })
    ));
    tx.put(TABLE, b"b", b"2").unwrap();
    tx.commit().unwrap();
    let state = scan(&db, TABLE);
    let expected: State = [("a", "1"), ("b", "2"), ("x", "3")]
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(state, expected);
    assert!(!conn.begin_read().unwrap().table_exists("missing").unwrap());

    // A transaction that wrote nothing, then one rolled back, then one dropped.
    conn.begin().unwrap().commit().unwrap();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"rolled back", b"v").unwrap();
    tx.rollback();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"dropped", b"v").unwrap();
    drop(tx);
    assert_eq!(scan(&db, TABLE), expected);
    assert_eq!(db.stats().live_snapshots, 0);
}

#[test]
fn a_dropped_table_is_not_found_by_any_operation() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"k", b"v").unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();

    let not_found = |r: capsuledb::Result<()>, what: &str| match r {
        Err(Error::TableNotFound { table }) => assert_eq!(table, TABLE, "{what}"),
        other => panic!("{what}: expected TableNotFound, got {other:?}"),
    };
    let all_refused = |tx: &mut capsuledb::Transaction<'_>, when: &str| {
        not_found(tx.get(TABLE, b"k").map(drop), when);
        not_found(tx.get_ref(TABLE, b"k").map(drop), when);
        not_found(tx.put(TABLE, b"k", b"v"), when);
        not_found(tx.delete(TABLE, b"k"), when);
        not_found(tx.range(TABLE, ..b"z".as_slice()).map(drop), when);
        not_found(tx.iter(TABLE).map(drop), when);
        not_found(tx.len(TABLE).map(drop), when);
        not_found(tx.drop_table(TABLE), when);
        assert!(!tx.table_exists(TABLE).unwrap(), "{when}");
    };
    // In the dropping transaction itself, then in later ones.
    let mut tx = conn.begin().unwrap();
    tx.drop_table(TABLE).unwrap();
    all_refused(&mut tx, "in the dropping transaction");
    tx.commit().unwrap();
    let mut tx = conn.begin().unwrap();
    all_refused(&mut tx, "after the drop");
    drop(tx);
    db.checkpoint().unwrap();
    let mut tx = conn.begin_with(Isolation::Snapshot).unwrap();
    all_refused(&mut tx, "after the drop was checkpointed");
    // Re-creating the table gives an empty one.
    tx.create_table(TABLE).unwrap();
    assert_eq!(tx.get(TABLE, b"k").unwrap(), None);
    tx.commit().unwrap();
    assert!(scan(&db, TABLE).is_empty());
    assert_clean(&db, "after dropping and re-creating");
}

#[test]
fn writes_to_a_table_dropped_by_a_concurrent_commit_are_refused_or_vanish() {
    for iso in [Isolation::Serializable, Isolation::Snapshot] {
        let sim = SimStorage::new();
        let db = open_sim(&sim).unwrap();
        create_table(&db, TABLE);
        let mut conn = db.connect();
        let mut other = db.connect();
        // The table has checkpointed data, so the drop has tree pages to free.
        let mut tx = conn.begin().unwrap();
        for i in 0..300u32 {
            tx.put(TABLE, &i.to_be_bytes(), &[1; 200]).unwrap();
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        let mut late = conn.begin_with(iso).unwrap();
        // The late transaction resolves the table at its snapshot...
        assert!(late.get(TABLE, &5u32.to_be_bytes()).unwrap().is_some());
        // ...then another drops it and commits...
        let mut dropper = other.begin().unwrap();
        dropper.drop_table(TABLE).unwrap();
        dropper.commit().unwrap();
        // ...and the late one writes to it.
        for i in 0..200u32 {
            late.put(TABLE, format!("orphan{i}").as_bytes(), &[2; 300])
                .unwrap();
        }
        let outcome = late.commit();
        println!("{iso:?}: writing to a concurrently dropped table: {outcome:?}");
        if let Err(e) = &outcome {
            assert!(matches!(e, Error::Conflict { .. }), "{iso:?}: {e:?}");
        }
        // Whatever the outcome, the table stays dropped, a new one of the same name is
        // empty, and the database is sound, also after a checkpoint and a reopen.
        let check = |db: &Database, when: &str| {
            let mut conn = db.connect();
            let tx = conn.begin_read().unwrap();
            assert!(!tx.table_exists(TABLE).unwrap(), "{iso:?} {when}");
        };
        check(&db, "live");
        db.checkpoint().unwrap();
        check(&db, "after the checkpoint");
        assert_clean(&db, &format!("{iso:?} after the orphaned write"));
        // No table is left, so the tree holds nothing: the orphaned rows did not leak
        // into it under the dead table's id.
        db.compact().unwrap();
        let report = db.check_integrity().unwrap();
        assert_eq!(
            (report.tables, report.tree_keys),
            (0, 0),
            "{iso:?}: rows of the dropped table stayed in the tree"
        );
        create_table(&db, TABLE);
        assert!(scan(&db, TABLE).is_empty(), "{iso:?}: the orphan came back");
        drop(conn);
        drop(other);
        drop(db);
        let db = open_sim(&sim).unwrap();
        assert!(scan(&db, TABLE).is_empty(), "{iso:?}: the orphan came back");
        assert_clean(&db, &format!("{iso:?} reopened after the orphaned write"));
    }
}

// ---------------------------------------------------------------------------------------
// Panics in user code.

/// Runs `f`, which must panic; the panic is caught and its message checked.
fn must_panic(f: impl FnOnce()) {
    let caught = catch_unwind(AssertUnwindSafe(f));
    let payload = caught.expect_err("the closure was meant to panic");
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert!(
        msg.contains("user code panicked"),
        "unexpected panic: {msg}"
    );
}

#[test]
fn a_panic_with_an_open_transaction_or_scan_leaves_the_database_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("panic.db");
    let db = Database::open(&path).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    for i in 0..500u32 {
        tx.put(TABLE, &i.to_be_bytes(), &[b'c'; 100]).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let committed = scan(&db, TABLE);

    // A read-write transaction with writes, panicking before commit.
    must_panic(|| {
        let mut tx = conn.begin().unwrap();
        for i in 0..200u32 {
            tx.put(TABLE, format!("panic{i}").as_bytes(), b"never")
                .unwrap();
        }
        tx.delete(TABLE, &7u32.to_be_bytes()).unwrap();
        panic!("user code panicked with an open transaction");
    });
    // A scan half consumed, holding a zero-copy value from the tree.
    must_panic(|| {
        let tx = conn.begin_read().unwrap();
        let held = tx.get_ref(TABLE, &3u32.to_be_bytes()).unwrap().unwrap();
        let mut range = tx.iter(TABLE).unwrap();
        for _ in 0..100 {
            range.next().unwrap().unwrap();
        }
        assert_eq!(held.len(), 100);
        panic!("user code panicked with a scan open");
    });
    // A read-write transaction with a scan open and writes, on another thread.
    let db2 = db.clone();
    let joined = std::thread::spawn(move || {
        let mut conn = db2.connect();
        let mut tx = conn.begin().unwrap();
        tx.put(TABLE, b"thread", b"never").unwrap();
        let mut range = tx.iter(TABLE).unwrap();
        range.next_back().unwrap().unwrap();
        panic!("user code panicked on another thread");
    })
    .join();
    assert!(joined.is_err());
    assert_eq!(db.stats().live_snapshots, 0, "a panic leaked a snapshot");

    // Nothing of the panicking transactions is visible; the same connection and other
    // threads commit; checkpoints and compaction (which wait for old readers) run.
    assert_eq!(scan(&db, TABLE), committed);
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"after", b"1").unwrap();
    tx.commit().unwrap();
    let workers: Vec<_> = (0..4u32)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut conn = db.connect();
                for i in 0..50u32 {
                    let mut tx = conn.begin().unwrap();
                    tx.put(TABLE, format!("w{t}-{i}").as_bytes(), b"ok")
                        .unwrap();
                    tx.commit_with(Durability::Applied).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let state = scan(&db, TABLE);
    assert_eq!(state.len(), committed.len() + 1 + 200);
    assert!(
        !state
            .keys()
            .any(|k| k.starts_with(b"panic") || k == b"thread")
    );
    assert_clean(&db, "after the panics");
    drop(conn);
    drop(db);

    let db = Database::open(&path).unwrap();
    assert_eq!(scan(&db, TABLE), state);
    assert_clean(&db, "reopened after the panics");
}

// ---------------------------------------------------------------------------------------
// Many opens of one file in one process.

#[test]
fn many_opens_of_one_path_share_one_engine() {
    const THREADS: u32 = 8;
    const OPENS_PER_THREAD: u32 = 25;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let first = Database::open(&path).unwrap();
    create_table(&first, TABLE);
    // Another spelling of the same file: a symbolic link and a `.` component.
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let dotted = dir.path().join(".").join("shared.db");

    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (path, link, dotted) = (path.clone(), link.clone(), dotted.clone());
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut handles = Vec::new();
                for i in 0..OPENS_PER_THREAD {
                    let p: &Path = match i % 3 {
                        0 => &path,
                        1 => &link,
                        _ => &dotted,
                    };
                    let db = Database::open(p).unwrap_or_else(|e| panic!("open {t}/{i}: {e}"));
                    let mut conn = db.connect();
                    let mut tx = conn.begin().unwrap();
                    tx.put(TABLE, format!("{t:02}/{i:02}").as_bytes(), b"v")
                        .unwrap();
                    let seq = tx.commit_with(Durability::Applied).unwrap().seq;
                    // The commit is visible through every handle opened so far.
                    for h in &handles {
                        let h: &Database = h;
                        let mut c = h.connect();
                        let tx = c.begin_read().unwrap();
                        assert!(tx.snapshot_seq() >= seq);
                        assert!(
                            tx.get(TABLE, format!("{t:02}/{i:02}").as_bytes())
                                .unwrap()
                                .is_some()
                        );
                    }
                    handles.push(db);
                }
                handles
            })
        })
        .collect();
    let handles: Vec<Database> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(handles.len(), (THREADS * OPENS_PER_THREAD) as usize);
    // Every handle sees every commit, at the same tip.
    let tip = first.stats().tip_seq;
    for h in &handles {
        assert_eq!(h.stats().tip_seq, tip);
        assert_eq!(scan(h, TABLE).len(), (THREADS * OPENS_PER_THREAD) as usize);
    }
    drop(handles);
    drop(first);

    // With every handle gone the file is closed and opens afresh.
    let db = Database::open(&path).unwrap();
    assert_eq!(
        scan(&db, TABLE).len(),
        (THREADS * OPENS_PER_THREAD) as usize
    );
    assert_clean(&db, "reopened after 200 handles");
}

#[test]
fn opening_while_the_last_handle_closes_never_reports_locked() {
    // Two threads open, commit `Applied` (so dropping the last handle has markers to
    // write and sync) and drop their handle, in a loop: one thread's open often lands
    // while the other one is dropping the engine's last handle.
    const THREADS: usize = 2;
    const ROUNDS: u32 = 100;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.db");
    create_table(&Database::open(&path).unwrap(), TABLE);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut refused = Vec::new();
                for i in 0..ROUNDS {
                    let db = match Database::open(&path) {
                        Ok(db) => db,
                        Err(e) => {
                            refused.push(format!("thread {t} round {i}: {e}"));
                            continue;
                        }
                    };
                    let mut conn = db.connect();
                    let mut tx = conn.begin().unwrap();
                    for k in 0..20u32 {
                        tx.put(TABLE, format!("{t}/{i}/{k}").as_bytes(), &[7; 3000])
                            .unwrap();
                    }
                    tx.commit_with(Durability::Applied).unwrap();
                }
                refused
            })
        })
        .collect();
    let refused: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a worker panicked"))
        .collect();
    // Whatever the opens did, the data is sound.
    let db = Database::open(&path).unwrap();
    assert_clean(&db, "after the open/close churn");
    assert!(
        refused.is_empty(),
        "{} of {} opens refused, first: {}",
        refused.len(),
        THREADS * ROUNDS as usize,
        refused[0]
    );
}

#[test]
fn a_closed_database_refuses_everything_and_reopens_with_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closed.db");
    let db = Database::open(&path).unwrap();
    let other = db.clone();
    create_table(&db, TABLE);
    let mut conn = other.connect();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"before", b"1").unwrap();
    tx.commit_with(Durability::Applied).unwrap();
    // A transaction open across the close, on another handle.
    let mut open_tx = conn.begin().unwrap();
    open_tx.put(TABLE, b"across", b"1").unwrap();
    db.close().unwrap();
    assert!(matches!(open_tx.commit(), Err(Error::Closed)));
    assert!(matches!(conn.begin(), Err(Error::Closed)));
    assert!(matches!(conn.begin_read(), Err(Error::Closed)));
    assert!(matches!(other.checkpoint(), Err(Error::Closed)));
    assert!(matches!(other.compact(), Err(Error::Closed)));
    drop(conn);
    drop(other);
    let db = Database::open(&path).unwrap();
    let state = scan(&db, TABLE);
    assert_eq!(state.len(), 1, "{state:?}");
    assert_eq!(
        state.get(b"before".as_slice()).map(Vec::as_slice),
        Some(&b"1"[..])
    );
    assert_clean(&db, "reopened after close");
}

#[test]
fn open_after_close_gives_a_working_database_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reopen.db");
    let db = Database::open(&path).unwrap();
    let still_held = db.clone();
    create_table(&db, TABLE);
    db.close().unwrap();
    if let Ok(db) = Database::open(&path) {
        let began = db.connect().begin().map(drop);
        assert!(began.is_ok(), "open returned a closed database: {began:?}");
    }
    drop(still_held);
}

#[test]
fn a_held_value_outlives_its_database_safely() {
    // A zero-copy value keeps its mapping (and the pages under it) alive after every
    // handle is gone. Reopening meanwhile may be refused (the file stays locked) but
    // never lets the held bytes change or vanish; once the value goes, the file opens.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.db");
    let db = Database::open(&path).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    for i in 0..200u32 {
        tx.put(TABLE, &i.to_be_bytes(), &vec![i as u8; 20_000])
            .unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let held = conn
        .begin_read()
        .unwrap()
        .get_ref(TABLE, &150u32.to_be_bytes())
        .unwrap()
        .unwrap();
    drop(conn);
    drop(db);
    let reopened = Database::open(&path);
    println!(
        "reopening while a value is held: {:?}",
        reopened.as_ref().map(drop)
    );
    match reopened {
        Ok(db) => {
            // If it opens, emptying and compacting the file must not pull the pages.
            let mut conn = db.connect();
            let mut tx = conn.begin().unwrap();
            for i in 0..200u32 {
                tx.delete(TABLE, &i.to_be_bytes()).unwrap();
            }
            tx.commit().unwrap();
            db.compact().unwrap();
        }
        Err(e) => assert!(matches!(e, Error::Locked { .. }), "{e:?}"),
    }
    assert!(held.len() == 20_000 && held.iter().all(|&b| b == 150));
    drop(held);
    let db = Database::open(&path).unwrap();
    assert_clean(&db, "reopened after the held value went");
}

// ---------------------------------------------------------------------------------------
// Poisoning.

#[test]
fn a_poisoned_database_refuses_commits_until_reopened() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let put = |conn: &mut capsuledb::Connection, key: &[u8], level: Durability| {
        let mut tx = conn.begin()?;
        tx.put(TABLE, key, b"v")?;
        tx.commit_with(level)
    };
    put(&mut conn, b"before", Durability::Durable).unwrap();
    sim.fail_nth_sync(1);
    let e = put(&mut conn, b"failed", Durability::Durable).expect_err("the sync failed");
    assert!(is_io_or_poisoned(&e), "{e:?}");

    // Every later commit is refused: each level, each connection, other threads and
    // other handles, also after waiting.
    for level in [
        Durability::Applied,
        Durability::Written,
        Durability::Durable,
    ] {
        let e = put(&mut conn, b"later", level).expect_err("poisoned");
        assert!(matches!(e, Error::Poisoned { .. }), "{level:?}: {e:?}");
    }
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut conn = db.connect();
                for i in 0..5 {
                    let mut tx = conn.begin().unwrap();
                    tx.put(TABLE, format!("t{t}-{i}").as_bytes(), b"v").unwrap();
                    let e = tx.commit().expect_err("poisoned");
                    assert!(matches!(e, Error::Poisoned { .. }), "{e:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let e = put(&mut conn, b"much later", Durability::Durable).expect_err("still poisoned");
    assert!(matches!(e, Error::Poisoned { .. }), "{e:?}");
    // Creating a table is a commit too.
    let mut tx = conn.begin().unwrap();
    tx.create_table("new").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Poisoned { .. })));
    // Checkpoints and compaction do not clear it (they may refuse as well).
    for r in [db.checkpoint().map(drop), db.compact().map(drop)] {
        if let Err(e) = r {
            assert!(is_io_or_poisoned(&e), "{e:?}");
        }
    }
    let e = put(&mut conn, b"after maintenance", Durability::Applied).expect_err("poisoned");
    assert!(matches!(e, Error::Poisoned { .. }), "{e:?}");
    // Reads go on and show only the acknowledged commit; read-only commits succeed.
    let tx = conn.begin_read().unwrap();
    assert_eq!(
        tx.get(TABLE, b"before").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(tx.get(TABLE, b"failed").unwrap(), None);
    tx.commit().unwrap();
    drop(conn);
    drop(db);

    // Reopened, it takes commits again; the failed commit is whole or absent.
    let db = open_sim(&sim).unwrap();
    let state = scan(&db, TABLE);
    assert_eq!(
        state.get(b"before".as_slice()).map(Vec::as_slice),
        Some(&b"v"[..])
    );
    assert!(
        state.keys().all(|k| k == b"before" || k == b"failed"),
        "{state:?}"
    );
    let mut conn = db.connect();
    put(&mut conn, b"after reopen", Durability::Durable).unwrap();
    assert_clean(&db, "reopened after poisoning");
}
