//! Transactions used wrongly: a conflict's loser, refused operations that leave the
//! transaction usable, empty, rolled-back and dropped transactions, a dropped table
//! that no operation finds, and writes to a table a concurrent commit dropped.

mod misuse_support;

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Error, Isolation, MAX_KEY_LEN};
use misuse_support::{State, TABLE, assert_clean, create_table, open_sim, scan};

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
fn writes_to_a_table_dropped_by_a_concurrent_commit_are_refused() {
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
        // A drop is a write to every key of the table: the late writer loses (under
        // `Snapshot` its rows used to vanish into the dead table).
        let outcome = late.commit();
        assert!(
            matches!(outcome, Err(Error::Conflict { .. })),
            "{iso:?}: {outcome:?}"
        );
        // The table stays dropped, a new one of the same name is
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
