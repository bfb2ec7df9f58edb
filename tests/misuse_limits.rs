//! Keys, values and table names at their limits and one past them: the largest ones
//! work through the version store, checkpoints and reopens; one byte more is a typed
//! error that leaves the transaction usable. An engine bug found here is fixed and its
//! test kept: `the_catalog_name_is_reserved`.

mod misuse_support;

use capsuledb::storage::SimStorage;
use capsuledb::{
    CATALOG_NAME, Database, Error, MAX_KEY_LEN, MAX_TABLE_NAME_LEN, MAX_TRANSACTION_BYTES,
    MAX_VALUE_LEN,
};
use misuse_support::{TABLE, assert_clean, create_table, open_sim, scan};

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

/// The transaction's size limit counts what its write buffer holds, not every put: a
/// counter-like key overwritten with a 1 KiB value 1.1 million times (1.1 GiB of puts,
/// over [`MAX_TRANSACTION_BYTES`]) commits, and its last value is what reads see. (Each
/// put used to add to the total for good: `TransactionTooLarge` after about a million.)
#[test]
fn overwriting_one_key_many_times_stays_within_the_transaction_limit() {
    const PUTS: u32 = 1_100_000;
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    let mut value = vec![0u8; 1024];
    assert!(PUTS as usize * (value.len() + 7) > MAX_TRANSACTION_BYTES);
    for i in 0..PUTS {
        value[..4].copy_from_slice(&i.to_le_bytes());
        tx.put(TABLE, b"counter", &value).unwrap();
        if i % 100_000 == 0 {
            // Other keys around it, overwritten less often.
            tx.put(TABLE, &i.to_be_bytes(), &value).unwrap();
        }
    }
    tx.commit().unwrap();
    let tx = conn.begin_read().unwrap();
    let got = tx.get(TABLE, b"counter").unwrap().expect("counter");
    assert_eq!(&got[..4], &(PUTS - 1).to_le_bytes());
    assert_eq!(tx.iter(TABLE).unwrap().count(), 12);
    drop(tx);
    assert_clean(&db, "after a transaction of many overwrites");
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
