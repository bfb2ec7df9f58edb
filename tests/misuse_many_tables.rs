//! Thousands of tables: created in batches across checkpoints, listed, read, reopened,
//! then dropped half at a time, leaving a sound, empty catalog.

mod misuse_support;

use capsuledb::{Database, Error};
use misuse_support::assert_clean;

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
