//! A connection keeps the table names its transactions resolved for its next ones, until
//! the catalog changes: these tests change the catalog from another connection (and, for
//! a live reader, from the writer it follows) between two transactions of one connection,
//! and check that the second sees the change, never the name's old table.

use capsuledb::{Connection, Database, Error, Options};

/// `k` of table `t`, read in a new read transaction of `c`.
fn read_k(c: &mut Connection) -> Option<Vec<u8>> {
    c.begin_read().unwrap().get("t", b"k").unwrap()
}

fn put(db: &Database, table: &str, key: &[u8], value: &[u8]) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.put(table, key, value).unwrap();
    tx.commit().unwrap();
}

fn recreate(db: &Database, table: &str) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.drop_table(table).unwrap();
    tx.create_table(table).unwrap();
    tx.commit().unwrap();
}

fn setup() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("names.db")).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"k", b"old").unwrap();
    tx.commit().unwrap();
    (dir, db)
}

#[test]
fn a_table_recreated_by_another_connection_is_seen_by_the_next_transaction() {
    let (_dir, db) = setup();
    let mut reader = db.connect();
    for _ in 0..3 {
        assert_eq!(read_k(&mut reader).as_deref(), Some(&b"old"[..]));
    }
    recreate(&db, "t");
    assert_eq!(read_k(&mut reader), None, "the new table is empty");
    put(&db, "t", b"k", b"new");
    assert_eq!(read_k(&mut reader).as_deref(), Some(&b"new"[..]));
}

#[test]
fn a_table_dropped_by_another_connection_is_gone_for_the_next_transaction() {
    let (_dir, db) = setup();
    let mut reader = db.connect();
    assert!(read_k(&mut reader).is_some());
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.drop_table("t").unwrap();
    tx.commit().unwrap();
    let tx = reader.begin_read().unwrap();
    assert!(matches!(
        tx.get("t", b"k"),
        Err(Error::TableNotFound { .. })
    ));
    assert!(!tx.table_exists("t").unwrap());
}

#[test]
fn a_transaction_that_drops_its_table_leaves_no_stale_name_behind() {
    let (_dir, db) = setup();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    assert!(tx.get("t", b"k").unwrap().is_some());
    tx.drop_table("t").unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"k", b"mine").unwrap();
    tx.commit().unwrap();
    assert_eq!(read_k(&mut c).as_deref(), Some(&b"mine"[..]));
    // Rolled back: the names it resolved still hold.
    let mut tx = c.begin().unwrap();
    tx.drop_table("t").unwrap();
    drop(tx);
    assert_eq!(read_k(&mut c).as_deref(), Some(&b"mine"[..]));
}

#[test]
fn a_snapshot_older_than_a_catalog_change_resolves_names_as_of_itself() {
    let (_dir, db) = setup();
    let mut a = db.connect();
    let mut b = db.connect();
    // `old` is taken before the table is recreated and reads after it.
    let old = b.begin_read().unwrap();
    recreate(&db, "t");
    put(&db, "t", b"k", b"new");
    assert_eq!(old.get("t", b"k").unwrap().as_deref(), Some(&b"old"[..]));
    drop(old);
    assert_eq!(read_k(&mut b).as_deref(), Some(&b"new"[..]));
    assert_eq!(read_k(&mut a).as_deref(), Some(&b"new"[..]));
}

#[test]
fn a_live_reader_sees_a_table_its_writer_recreated() {
    let (dir, writer) = setup();
    let reader = Options::new()
        .read_only(true)
        .open(dir.path().join("names.db"))
        .unwrap();
    let mut rc = reader.connect();
    for _ in 0..3 {
        assert_eq!(read_k(&mut rc).as_deref(), Some(&b"old"[..]));
    }
    recreate(&writer, "t");
    put(&writer, "t", b"k", b"new");
    assert_eq!(read_k(&mut rc).as_deref(), Some(&b"new"[..]));
    // Again across a checkpoint, which gives the reader a new engine.
    recreate(&writer, "t");
    put(&writer, "t", b"k", b"newer");
    writer.checkpoint().unwrap();
    assert_eq!(read_k(&mut rc).as_deref(), Some(&b"newer"[..]));
}

/// Under Serializable a table name from the connection's cache is still a read of the
/// catalog: a transaction that read `t` through a cached name and writes what a
/// concurrent transaction that dropped `t` read is a write skew (each read what the other
/// changed), and one of them must fail. `drop_table` and `clear_table` both.
#[test]
fn a_cached_table_name_is_a_catalog_read_under_serializable() {
    for clear in [false, true] {
        let (_dir, db) = setup();
        let mut c0 = db.connect();
        let mut tx = c0.begin().unwrap();
        tx.create_table("u").unwrap();
        tx.put("u", b"x", b"0").unwrap();
        tx.commit().unwrap();
        let mut c1 = db.connect();
        // Resolves both names, which the connection keeps for its next transaction.
        {
            let tx = c1.begin().unwrap();
            tx.get("t", b"k").unwrap();
            tx.get("u", b"x").unwrap();
        }
        let mut c2 = db.connect();
        let mut t = c1.begin().unwrap();
        assert_eq!(t.get("t", b"k").unwrap().as_deref(), Some(&b"old"[..]));
        let mut d = c2.begin().unwrap();
        assert_eq!(d.get("u", b"x").unwrap().as_deref(), Some(&b"0"[..]));
        if clear {
            d.clear_table("t").unwrap();
        } else {
            d.drop_table("t").unwrap();
        }
        d.commit().unwrap();
        t.put("u", b"x", b"1").unwrap();
        assert!(
            matches!(t.commit(), Err(Error::Conflict { .. })),
            "write skew through a cached table name (clear: {clear})"
        );
    }
}
