//! The transaction API's basic behaviour: tables, own writes, snapshots, ranges, limits.

use capsuledb::{
    Database, Durability, Error, Isolation, MAX_KEY_LEN, MAX_TABLE_NAME_LEN, MAX_VALUE_LEN,
};

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("t.db")).unwrap();
    (dir, db)
}

fn keys(
    it: impl Iterator<Item = capsuledb::Result<(Vec<u8>, capsuledb::ValueRef)>>,
) -> Vec<Vec<u8>> {
    it.map(|r| r.unwrap().0).collect()
}

#[test]
fn own_writes_then_snapshot() {
    let (_d, db) = db();
    let mut c1 = db.connect();
    let mut tx = c1.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"a", b"1").unwrap();
    assert_eq!(tx.get("t", b"a").unwrap().as_deref(), Some(&b"1"[..]));
    let info = tx.commit().unwrap();
    assert_eq!(info.seq, 1);

    let mut c2 = db.connect();
    let reader = c2.begin_read().unwrap();
    let mut tx = c1.begin().unwrap();
    tx.put("t", b"a", b"2").unwrap();
    tx.commit_with(Durability::Applied).unwrap();
    assert_eq!(
        reader.get("t", b"a").unwrap().as_deref(),
        Some(&b"1"[..]),
        "snapshot is stable"
    );
    drop(reader);
    let reader = c2.begin_read().unwrap();
    assert_eq!(reader.get("t", b"a").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn rollback_on_drop() {
    let (_d, db) = db();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    let mut tx = c.begin().unwrap();
    tx.put("t", b"k", b"v").unwrap();
    drop(tx);
    assert_eq!(c.begin_read().unwrap().get("t", b"k").unwrap(), None);
}

#[test]
fn tables_lifecycle() {
    let (_d, db) = db();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    assert!(matches!(
        tx.put("nope", b"k", b"v"),
        Err(Error::TableNotFound { .. })
    ));
    tx.create_table("a").unwrap();
    tx.create_table("b").unwrap();
    assert!(matches!(
        tx.create_table("a"),
        Err(Error::TableExists { .. })
    ));
    tx.put("a", b"k", b"v").unwrap();
    tx.commit().unwrap();
    let mut tx = c.begin().unwrap();
    assert_eq!(tx.tables().unwrap(), vec!["a".to_string(), "b".to_string()]);
    tx.drop_table("a").unwrap();
    assert!(matches!(
        tx.get("a", b"k"),
        Err(Error::TableNotFound { .. })
    ));
    tx.create_table("a").unwrap();
    assert_eq!(
        tx.get("a", b"k").unwrap(),
        None,
        "a re-created table starts empty"
    );
    tx.commit().unwrap();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.get("a", b"k").unwrap(), None);
    assert_eq!(tx.len("a").unwrap(), 0);
}

#[test]
fn ranges_forward_reverse_and_both_ends() {
    let (_d, db) = db();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..100u8 {
        tx.put("t", &[i], &[i]).unwrap();
    }
    tx.commit().unwrap();
    let mut tx = c.begin().unwrap();
    tx.delete("t", &[5]).unwrap();
    tx.put("t", &[200], b"x").unwrap();
    let fwd = keys(tx.range("t", [3u8].as_slice()..[8u8].as_slice()).unwrap());
    assert_eq!(fwd, vec![vec![3], vec![4], vec![6], vec![7]]);
    let rev = keys(tx.range_rev("t", [95u8].as_slice()..).unwrap());
    assert_eq!(
        rev,
        vec![vec![200], vec![99], vec![98], vec![97], vec![96], vec![95]]
    );
    let mut both = tx.iter("t").unwrap();
    let mut seen = Vec::new();
    loop {
        let a = both.next();
        let b = both.next_back();
        if a.is_none() && b.is_none() {
            break;
        }
        seen.extend(a.map(|r| r.unwrap().0));
        seen.extend(b.map(|r| r.unwrap().0));
    }
    seen.sort();
    let mut expected: Vec<Vec<u8>> = (0..100u8).filter(|&i| i != 5).map(|i| vec![i]).collect();
    expected.push(vec![200]);
    assert_eq!(seen, expected, "both ends meet without loss or duplicates");
    assert_eq!(tx.len("t").unwrap(), 100);
    let empty = keys(tx.range("t", [9u8].as_slice()..[3u8].as_slice()).unwrap());
    assert!(empty.is_empty());
}

#[test]
fn limits_give_typed_errors() {
    let (_d, db) = db();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", &vec![1; MAX_KEY_LEN], b"").unwrap();
    assert!(matches!(
        tx.put("t", &vec![1; MAX_KEY_LEN + 1], b""),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        tx.put("t", b"k", &vec![0; MAX_VALUE_LEN + 1]),
        Err(Error::ValueTooLarge { .. })
    ));
    let long = "x".repeat(MAX_TABLE_NAME_LEN + 1);
    assert!(matches!(
        tx.create_table(&long),
        Err(Error::InvalidTableName { .. })
    ));
    assert!(matches!(
        tx.create_table(""),
        Err(Error::InvalidTableName { .. })
    ));
    tx.create_table(&"y".repeat(MAX_TABLE_NAME_LEN)).unwrap();
    tx.commit().unwrap();
    let mut r = c.begin_read().unwrap();
    assert!(matches!(r.put("t", b"k", b"v"), Err(Error::ReadOnly)));
    assert!(matches!(r.create_table("u"), Err(Error::ReadOnly)));
    let _ = &mut r;
}

#[test]
fn first_committer_wins_names_the_key() {
    let (_d, db) = db();
    let mut c1 = db.connect();
    let mut c2 = db.connect();
    let mut tx = c1.begin().unwrap();
    tx.create_table("acc").unwrap();
    tx.put("acc", b"alice", b"100").unwrap();
    tx.commit().unwrap();
    for iso in [Isolation::Snapshot, Isolation::Serializable] {
        let mut t1 = c1.begin_with(iso).unwrap();
        let mut t2 = c2.begin_with(iso).unwrap();
        t1.put("acc", b"alice", b"1").unwrap();
        t2.put("acc", b"alice", b"2").unwrap();
        let s1 = t1.commit().unwrap().seq;
        match t2.commit() {
            Err(Error::Conflict {
                table,
                key,
                committed_seq,
            }) => {
                assert_eq!(
                    (table.as_str(), key.as_slice(), committed_seq),
                    ("acc", &b"alice"[..], s1)
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
}

/// The empty key deleted many times in one transaction (its buffer's tail turned into a
/// run holding only that delete, whose record took no bytes): the transaction read the
/// old value back and the commit left the delete out, so the key came back.
#[test]
fn the_empty_key_deleted_many_times_stays_deleted() {
    let (_dir, db) = db();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"", b"old").unwrap();
    tx.commit().unwrap();
    let mut tx = c.begin().unwrap();
    for _ in 0..20_000 {
        tx.delete("t", b"").unwrap();
    }
    assert_eq!(tx.get("t", b"").unwrap(), None);
    tx.commit().unwrap();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.get("t", b"").unwrap(), None);
    assert_eq!(tx.iter("t").unwrap().count(), 0);
}
