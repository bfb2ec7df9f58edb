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
    let sim = SimStorage::from_bytes(data.to_vec());
    if let Ok(db) = open_sim(&sim) {
        exercise(db);
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
    let mut keys = Vec::new();
    if let Ok(it) = tx.iter(name) {
        for item in it.take(SCAN_ENTRIES_MAX) {
            match item {
                Ok((k, v)) => {
                    let _ = v.len();
                    if keys.len() < GETS_PER_TABLE_MAX {
                        keys.push(k);
                    }
                }
                Err(_) => break,
            }
        }
    }
    if let Ok(it) = tx.range_rev::<&[u8], _>(name, ..) {
        for item in it.take(SCAN_ENTRIES_MAX) {
            if item.is_err() {
                break;
            }
        }
    }
    for k in &keys {
        let _ = tx.get(name, k);
        let _ = tx.get_ref(name, k);
    }
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
