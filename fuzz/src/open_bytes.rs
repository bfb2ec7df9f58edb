//! The `open_bytes` harness: arbitrary file bytes opened as a database, then read,
//! checked, committed to, checkpointed and closed: errors allowed, panics not. The
//! in-database `decode` modes use the same exercise on the files they damage.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Options, Transaction};
use std::sync::Arc;

/// Entries read from one scan of an arbitrary file, at most: a bound so a damaged tree
/// that loops cannot keep the harness busy (the engine's own bounds are what is tested).
const SCAN_ENTRIES_MAX: usize = 100_000;
/// Tables of an arbitrary file scanned, at most.
const SCAN_TABLES_MAX: usize = 64;
/// Keys of each scanned table read back with `get`, at most.
const GETS_PER_TABLE_MAX: usize = 64;

pub(super) fn open_sim(sim: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(1)
        .open_storage(Arc::new(sim.clone()))
}

/// Opens arbitrary file bytes as a database. If that works: lists the tables, scans
/// each forwards and backwards, reads keys back, runs `check_integrity()`, commits
/// once, checkpoints and closes. Every step may fail with an error; none may panic,
/// hang or allocate without bound.
pub fn fuzz_open_bytes(data: &[u8]) {
    exercise_bytes(data.to_vec());
}

/// Opens `file` read-only and exercises it (the lenient paths a salvage relies on; it
/// writes nothing), then read-write and exercises that: `fuzz_open_bytes`'s work, also
/// done by the in-database `decode` modes on the files they damage.
pub(super) fn exercise_bytes(file: Vec<u8>) {
    let sim = SimStorage::from_bytes(file.clone());
    if let Ok(db) = Options::new()
        .random_seed(1)
        .read_only(true)
        .open_storage(Arc::new(sim))
    {
        exercise_read_only(&db);
    }
    let sim = SimStorage::from_bytes(file);
    if let Ok(db) = open_sim(&sim) {
        exercise(db);
    }
}

/// What a read-only open of arbitrary bytes is asked: its reports, every table read,
/// the integrity check. Errors are fine; panics are not.
fn exercise_read_only(db: &Database) {
    let _ = db.info();
    let _ = db.stats();
    let mut conn = db.connect();
    if let Ok(tx) = conn.begin_read() {
        if let Ok(names) = tx.tables() {
            for name in names.iter().take(SCAN_TABLES_MAX) {
                read_table(&tx, name);
                salvage_table(&tx, name);
            }
        }
        salvage_catalog(&tx);
    }
    let _ = db.check_integrity();
}

/// The salvage of a damaged catalog (what the CLI's `salvage` runs): the names it
/// gives, the tables whose names were lost found by their keys, and each of those
/// copied. Ids come sorted and once each, and each table's keys in increasing order.
fn salvage_catalog(tx: &capsuledb::Transaction<'_>) {
    if let Ok((names, _)) = tx.salvage_tables() {
        for name in names.iter().take(SCAN_TABLES_MAX) {
            salvage_table(tx, name);
        }
    }
    let Ok((ids, _)) = tx.salvage_unnamed_tables() else {
        return;
    };
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "unnamed table ids out of order or repeated: {ids:?}"
    );
    for &id in ids.iter().take(SCAN_TABLES_MAX) {
        let mut last = None;
        let _ = tx.salvage_table_id(id, |k, _| increasing(&mut last, k));
    }
}

/// A salvage's callback: `key` comes after the last one handed over (`last`).
fn increasing(last: &mut Option<Vec<u8>>, key: &[u8]) -> capsuledb::Result<()> {
    assert!(
        last.as_deref().is_none_or(|l| l < key),
        "salvage handed {key:?} after {last:?}"
    );
    *last = Some(key.to_vec());
    Ok(())
}

/// Salvages `name` (the walk past damaged pages and values): keys come in strictly
/// increasing order, and the losses in key order, each ending after it starts.
fn salvage_table(tx: &capsuledb::Transaction<'_>, name: &str) {
    let mut last = None;
    let salvaged = tx.salvage_table(name, |k, _| increasing(&mut last, k));
    if let Ok(report) = salvaged {
        for loss in &report.losses {
            assert!(
                loss.until.as_ref().is_none_or(|u| loss.from < *u),
                "an empty or reversed loss: {loss:?}"
            );
        }
        assert!(
            report.losses.windows(2).all(|w| w[0].from <= w[1].from),
            "losses out of key order: {:?}",
            report.losses
        );
    }
}

/// Everything `fuzz_open_bytes` does with a database that opened.
pub(super) fn exercise(db: Database) {
    let _ = db.info();
    let _ = db.stats();
    let mut conn = db.connect();
    let mut before = Vec::new();
    if let Ok(tx) = conn.begin_read() {
        if let Ok(names) = tx.tables() {
            for name in names.iter().take(SCAN_TABLES_MAX) {
                read_table(&tx, name);
            }
            before = names;
        }
        let _ = tx.get("no such table", b"k");
    }
    let _ = db.check_integrity();
    // One commit: a new table with one key, and a write to the first existing table.
    // Whatever the file held, a commit that succeeded reads back.
    const FRESH: &str = "fuzz-new-table";
    let mut committed = false;
    if let Ok(mut tx) = conn.begin() {
        let created = !before.iter().any(|n| n == FRESH) && tx.create_table(FRESH).is_ok();
        let put = created && tx.put(FRESH, b"fuzz-key", b"fuzz-value").is_ok();
        if let Some(first) = before.first() {
            let _ = tx.put(first, b"fuzz-key", b"fuzz-value");
            let _ = tx.delete(first, b"");
        }
        committed = tx.commit_with(Durability::Durable).is_ok() && put;
    }
    if committed && let Ok(tx) = conn.begin_read() {
        if let Ok(names) = tx.tables() {
            assert!(
                names.iter().any(|n| n == FRESH),
                "a committed create_table is missing: {names:?}"
            );
            assert!(
                !names.iter().any(|n| n == "fuzz-key") || before.iter().any(|n| n == "fuzz-key"),
                "a key put into a new table shows up as a table name: the new table got \
                 the catalog's id"
            );
        }
        if let Ok(v) = tx.get(FRESH, b"fuzz-key") {
            assert_eq!(
                v.as_deref(),
                Some(&b"fuzz-value"[..]),
                "a committed put reads back wrong"
            );
        }
        if let Ok(n) = tx.len(FRESH) {
            assert_eq!(n, 1, "a new table holds more than what was put into it");
        }
    }
    drop(conn);
    let _ = db.checkpoint();
    let _ = db.close();
}

/// Scans `name` both ways and reads keys back; errors end a step, never the harness.
fn read_table(tx: &Transaction<'_>, name: &str) {
    // What the scans hand out is checked, not only that they end: keys in strict
    // order each way, and a key a scan handed out reads back with the same value
    // (a read may fail on damage the scan did not reach; it may not answer otherwise).
    let mut keys: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    if let Ok(it) = tx.iter(name) {
        for item in it.take(SCAN_ENTRIES_MAX) {
            match item {
                Ok((k, v)) => {
                    assert!(
                        last.as_ref().is_none_or(|l| *l < k),
                        "a forward scan of {name} handed out a key out of order"
                    );
                    if keys.len() < GETS_PER_TABLE_MAX {
                        keys.push((k.clone(), v.to_vec()));
                    }
                    last = Some(k);
                }
                Err(_) => break,
            }
        }
    }
    let mut last: Option<Vec<u8>> = None;
    if let Ok(it) = tx.range_rev::<&[u8], _>(name, ..) {
        for item in it.take(SCAN_ENTRIES_MAX) {
            match item {
                Ok((k, _)) => {
                    assert!(
                        last.as_ref().is_none_or(|l| *l > k),
                        "a reverse scan of {name} handed out a key out of order"
                    );
                    last = Some(k);
                }
                Err(_) => break,
            }
        }
    }
    for (k, v) in &keys {
        if let Ok(got) = tx.get(name, k) {
            assert_eq!(
                got.as_deref(),
                Some(v.as_slice()),
                "a key a scan of {name} handed out reads back otherwise"
            );
        }
        let _ = tx.get_ref(name, k);
    }
    let keys: Vec<Vec<u8>> = keys.into_iter().map(|(k, _)| k).collect();
    if let (Some(lo), Some(hi)) = (keys.first(), keys.last())
        && let Ok(mut it) = tx.range(name, lo.as_slice()..=hi.as_slice())
    {
        // Both ends, alternately.
        for i in 0..GETS_PER_TABLE_MAX {
            let step = if i % 2 == 0 {
                it.next()
            } else {
                it.next_back()
            };
            match step {
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    }
    let _ = tx.get(name, b"");
    let _ = tx.is_empty(name);
}
