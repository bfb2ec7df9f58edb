//! Shared fixtures for the `isolation_*` tests: a fresh database, the Hermitage table,
//! the index table of the SSI cases, integer reads and writes, and conflict assertions.
//!
//! Keys and values are decimal strings so that failures print readably. Every schedule
//! runs on one thread through several `Connection`s, so the interleaving is exactly the
//! order of the statements in the test.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]

use capsuledb::{CommitInfo, Database, Error, Isolation, Result, Transaction};

/// The Hermitage table.
pub const TEST: &str = "test";

/// Both isolation levels, for loops and messages.
pub const LEVELS: [Isolation; 2] = [Isolation::Serializable, Isolation::Snapshot];

/// A fresh, empty database in a temporary directory (keep the `TempDir` alive).
pub fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("x.db")).unwrap();
    (dir, db)
}

/// A database holding `table` with `rows` committed, one committed transaction.
pub fn db_with(table: &str, rows: &[(&str, i64)]) -> (tempfile::TempDir, Database) {
    let (dir, db) = open();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table(table).unwrap();
    for &(k, v) in rows {
        put_int(&mut tx, table, k, v);
    }
    tx.commit().unwrap();
    drop(c);
    (dir, db)
}

/// Hermitage's setup: `test` holds `1 => 10, 2 => 20`.
pub fn hermitage_db() -> (tempfile::TempDir, Database) {
    db_with(TEST, &[("1", 10), ("2", 20)])
}

/// The table of the `isolation_ssi_*` phantom, precision and pruning cases.
pub const IDX: &str = "idx";

/// `a/1` and `d/1` bracket the (empty) ranges `b/..b0` and `c/..c0`.
pub fn idx_db() -> (tempfile::TempDir, Database) {
    db_with(IDX, &[("a/1", 1), ("d/1", 1)])
}

fn parse(bytes: &[u8]) -> i64 {
    std::str::from_utf8(bytes).unwrap().parse().unwrap()
}

/// Reads `key` of `table` as an integer.
pub fn get_int(tx: &Transaction<'_>, table: &str, key: &str) -> Option<i64> {
    tx.get(table, key.as_bytes()).unwrap().map(|v| parse(&v))
}

/// Writes `key = v` in `table`.
pub fn put_int(tx: &mut Transaction<'_>, table: &str, key: &str, v: i64) {
    tx.put(table, key.as_bytes(), v.to_string().as_bytes())
        .unwrap();
}

/// Deletes `key` of `table`.
pub fn del(tx: &mut Transaction<'_>, table: &str, key: &str) {
    tx.delete(table, key.as_bytes()).unwrap();
}

fn rows_of(it: impl Iterator<Item = Result<(Vec<u8>, capsuledb::ValueRef)>>) -> Vec<(String, i64)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (String::from_utf8(k).unwrap(), parse(&v))
    })
    .collect()
}

/// A predicate read over the whole table: every row whose value satisfies `pred`.
pub fn select_where(
    tx: &Transaction<'_>,
    table: &str,
    pred: impl Fn(i64) -> bool,
) -> Vec<(String, i64)> {
    rows_of(tx.iter(table).unwrap())
        .into_iter()
        .filter(|(_, v)| pred(*v))
        .collect()
}

/// Every row of the table.
pub fn select_all(tx: &Transaction<'_>, table: &str) -> Vec<(String, i64)> {
    select_where(tx, table, |_| true)
}

/// The rows with keys in `lo..hi`, ascending.
pub fn scan(tx: &Transaction<'_>, table: &str, lo: &str, hi: &str) -> Vec<(String, i64)> {
    rows_of(tx.range(table, lo.as_bytes()..hi.as_bytes()).unwrap())
}

/// The rows with keys in `lo..hi`, descending.
pub fn scan_rev(tx: &Transaction<'_>, table: &str, lo: &str, hi: &str) -> Vec<(String, i64)> {
    rows_of(tx.range_rev(table, lo.as_bytes()..hi.as_bytes()).unwrap())
}

/// What a fresh read-only snapshot sees in `table` now.
pub fn committed(db: &Database, table: &str) -> Vec<(String, i64)> {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    select_all(&tx, table)
}

/// Owned rows from literals, for comparisons.
pub fn rows(r: &[(&str, i64)]) -> Vec<(String, i64)> {
    r.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// The commit succeeded; returns its sequence.
pub fn ok(result: Result<CommitInfo>) -> u64 {
    match result {
        Ok(info) => info.seq,
        Err(e) => panic!("expected the commit to succeed, got {e:?}"),
    }
}

/// The commit failed first-committer-wins on exactly `table`/`key` against the commit
/// with sequence `seq`.
pub fn assert_write_conflict(result: Result<CommitInfo>, table: &str, key: &str, seq: u64) {
    match result {
        Err(Error::Conflict {
            table: t,
            key: k,
            committed_seq,
        }) => assert_eq!(
            (t.as_str(), k.as_slice(), committed_seq),
            (table, key.as_bytes(), seq),
            "write-write conflict names the key and the first committer"
        ),
        other => panic!("expected a write-write conflict on {table}/{key}, got {other:?}"),
    }
}

/// The commit failed with a (serialization) conflict in `table`, naming one of `keys`
/// and one of the concurrent commits `seqs`. Which edge of the dangerous structure the
/// engine reports is its choice; that it is one of these is the contract.
pub fn assert_conflict(result: Result<CommitInfo>, table: &str, keys: &[&str], seqs: &[u64]) {
    match result {
        Err(Error::Conflict {
            table: t,
            key,
            committed_seq,
        }) => {
            assert_eq!(t, table, "conflict names the table");
            let key = String::from_utf8_lossy(&key).into_owned();
            assert!(
                keys.contains(&key.as_str()),
                "conflict key {key:?} is not one of {keys:?}"
            );
            assert!(
                seqs.contains(&committed_seq),
                "conflict seq {committed_seq} is not one of the concurrent commits {seqs:?}"
            );
        }
        other => panic!("expected a conflict in {table}, got {other:?}"),
    }
}
