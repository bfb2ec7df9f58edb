//! Typed tables over the byte API: get, put, delete, range (both directions), first,
//! last, count and len; ordered tuple keys; values of another type are a typed error;
//! prefix scans and first/last/count on the byte API.

use capsuledb::{Database, Error, TableDef};

const USERS: TableDef<u64, &str> = TableDef::new("users");
const EVENTS: TableDef<(&str, i64), Vec<u8>> = TableDef::new("events");
const WRONG: TableDef<u64, u64> = TableDef::new("users");

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("typed.db")).unwrap();
    (dir, db)
}

#[test]
fn typed_get_put_delete_and_ordered_scans() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| {
        tx.create_table(USERS.name())?;
        let mut users = tx.table_mut(USERS);
        for (id, name) in [(300, "c"), (2, "a"), (70_000, "d"), (10, "b")] {
            users.put(id, name)?;
        }
        users.delete(10)?;
        // The transaction reads its own typed writes.
        assert_eq!(users.get(2)?.as_deref(), Some("a"));
        assert!(!users.contains_key(10)?);
        Ok::<_, Error>(())
    })
    .unwrap();
    conn.read(|tx| {
        let users = tx.table(USERS);
        assert_eq!(users.get(300)?.as_deref(), Some("c"));
        assert_eq!(users.get(10)?, None);
        let ids: Vec<u64> = users
            .iter()?
            .map(|e| e.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(ids, [2, 300, 70_000], "numeric order, not text order");
        let desc: Vec<u64> = users
            .range(3..)?
            .rev()
            .map(|e| e.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(desc, [70_000, 300]);
        assert_eq!(users.first()?, Some((2, "a".to_string())));
        assert_eq!(users.last()?, Some((70_000, "d".to_string())));
        assert_eq!(users.count(2..=300)?, 2);
        assert_eq!(users.len()?, 3);
        assert!(!users.is_empty()?);
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn tuple_keys_scan_in_tuple_order() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| {
        tx.create_table(EVENTS.name())?;
        let mut events = tx.table_mut(EVENTS);
        for (who, t) in [("bob", 5), ("al", -3), ("al", 7), ("al\0x", 0), ("bo", 1)] {
            events.put((who, t), &[t as u8])?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    let keys = conn
        .read(|tx| {
            tx.table(EVENTS)
                .iter()?
                .map(|e| e.map(|(k, _)| k))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    let expected: Vec<(String, i64)> = [("al", -3), ("al", 7), ("al\0x", 0), ("bo", 1), ("bob", 5)]
        .into_iter()
        .map(|(s, t)| (s.to_string(), t))
        .collect();
    assert_eq!(keys, expected);
    // Every event of "al": from ("al", MIN) up to ("al", MAX).
    let al = conn
        .read(|tx| tx.table(EVENTS).count(("al", i64::MIN)..=("al", i64::MAX)))
        .unwrap();
    assert_eq!(al, 2);
}

#[test]
fn reading_with_the_wrong_types_is_a_decode_error() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| {
        tx.create_table(USERS.name())?;
        tx.table_mut(USERS).put(1, "ada")
    })
    .unwrap();
    let got = conn.read(|tx| tx.table(WRONG).get(1));
    assert!(
        matches!(got, Err(Error::Decode { ty: "u64", .. })),
        "{got:?}"
    );
    conn.run(|tx| tx.put(USERS.name(), b"raw", b"bytes"))
        .unwrap();
    let scan = conn.read(|tx| tx.table(USERS).iter()?.collect::<Result<Vec<_>, _>>());
    assert!(matches!(scan, Err(Error::Decode { .. })), "{scan:?}");
}

#[test]
fn prefix_first_last_and_count_on_the_byte_api() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| {
        tx.create_table("t")?;
        for k in [&b"a"[..], b"ab", b"ab\xff", b"ab\xff\xff", b"ac", b"b"] {
            tx.put("t", k, k)?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    // Committed data, then the transaction's own writes on top.
    conn.run(|tx| {
        tx.put("t", b"ab0", b"own")?;
        tx.delete("t", b"ab")?;
        let under_ab: Vec<Vec<u8>> = tx
            .prefix("t", b"ab")?
            .map(|e| e.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(
            under_ab,
            [b"ab0".to_vec(), b"ab\xff".to_vec(), b"ab\xff\xff".to_vec()]
        );
        let under_ff: Vec<Vec<u8>> = tx
            .prefix("t", b"ab\xff")?
            .rev()
            .map(|e| e.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(under_ff, [b"ab\xff\xff".to_vec(), b"ab\xff".to_vec()]);
        assert_eq!(tx.count::<&[u8], _>("t", ..)?, 6);
        assert_eq!(tx.prefix("t", b"")?.count(), 6);
        assert_eq!(tx.first("t")?.map(|(k, _)| k), Some(b"a".to_vec()));
        assert_eq!(
            tx.last("t")?.map(|(k, v)| (k, v.to_vec())),
            Some((b"b".to_vec(), b"b".to_vec()))
        );
        Ok::<_, Error>(())
    })
    .unwrap();
    conn.read(|tx| {
        assert_eq!(tx.first("t")?.map(|(k, _)| k), Some(b"a".to_vec()));
        assert_eq!(tx.count("t", b"ab".as_slice()..b"b".as_slice())?, 4);
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn first_and_last_pass_long_runs_of_deleted_keys() {
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| {
        tx.create_table("t")?;
        for i in 0..3000u32 {
            tx.put("t", &i.to_be_bytes(), b"v")?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    // Committed deletes at both ends, then the transaction's own deletes further in.
    conn.run(|tx| {
        for i in (0..1200u32).chain(1800..3000) {
            tx.delete("t", &i.to_be_bytes())?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    conn.run(|tx| {
        let key = |e: Option<(Vec<u8>, capsuledb::ValueRef)>| e.map(|(k, _)| k);
        assert_eq!(key(tx.first("t")?), Some(1200u32.to_be_bytes().to_vec()));
        assert_eq!(key(tx.last("t")?), Some(1799u32.to_be_bytes().to_vec()));
        for i in (1200..1500u32).chain(1550..1800) {
            tx.delete("t", &i.to_be_bytes())?;
        }
        assert_eq!(key(tx.first("t")?), Some(1500u32.to_be_bytes().to_vec()));
        assert_eq!(key(tx.last("t")?), Some(1549u32.to_be_bytes().to_vec()));
        for i in 1500..1550u32 {
            tx.delete("t", &i.to_be_bytes())?;
        }
        assert_eq!(key(tx.first("t")?), None);
        assert_eq!(key(tx.last("t")?), None);
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[cfg(feature = "serde")]
#[test]
fn serde_values_round_trip() {
    use capsuledb::Serde;
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Account {
        owner: String,
        balance: i64,
        tags: Vec<String>,
    }
    const ACCOUNTS: TableDef<(&str, u32), Serde<Account>> = TableDef::new("accounts");
    let (_dir, db) = open();
    let mut conn = db.connect();
    let account = Account {
        owner: "ada".into(),
        balance: -5,
        tags: vec!["x".into()],
    };
    conn.run(|tx| {
        tx.create_table(ACCOUNTS.name())?;
        tx.table_mut(ACCOUNTS).put(("eu", 1), &account)
    })
    .unwrap();
    let back = conn.read(|tx| tx.table(ACCOUNTS).get(("eu", 1))).unwrap();
    assert_eq!(back, Some(account));
    conn.run(|tx| {
        tx.put(
            ACCOUNTS.name(),
            &capsuledb::encode_key::<(&str, u32)>(&("eu", 2)),
            &[0xFF; 3],
        )
    })
    .unwrap();
    let bad = conn.read(|tx| tx.table(ACCOUNTS).get(("eu", 2)));
    assert!(matches!(bad, Err(Error::Decode { .. })), "{bad:?}");
}

/// A `Serde<T>` value followed by extra bytes is not a value of `T` (`format-spec/keys.md`,
/// "Validation" 5): postcard alone would read the value and ignore the rest.
#[cfg(feature = "serde")]
#[test]
fn serde_values_with_trailing_bytes_are_refused() {
    use capsuledb::Serde;
    const POINTS: TableDef<u32, Serde<(i32, i32)>> = TableDef::new("points");
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| {
        tx.create_table(POINTS.name())?;
        tx.table_mut(POINTS).put(1, &(3, -4))
    })
    .unwrap();
    let key = capsuledb::encode_key::<u32>(&1);
    let mut stored = conn
        .read(|tx| tx.get(POINTS.name(), &key))
        .unwrap()
        .expect("stored");
    assert_eq!(
        conn.read(|tx| tx.table(POINTS).get(1)).unwrap(),
        Some((3, -4))
    );
    stored.push(0);
    conn.run(|tx| tx.put(POINTS.name(), &key, &stored)).unwrap();
    let bad = conn.read(|tx| tx.table(POINTS).get(1));
    assert!(
        matches!(&bad, Err(Error::Decode { what, .. }) if what.contains("1 bytes after")),
        "{bad:?}"
    );
}

/// postcard cannot read what needs `deserialize_any` (an internally tagged enum): such a
/// value is refused at `put`, where it used to be stored and then refused by every read.
#[cfg(feature = "serde")]
#[test]
fn a_serde_value_postcard_cannot_read_back_is_refused_at_put() {
    use capsuledb::Serde;
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    #[serde(tag = "kind")]
    enum Event {
        Open { at: u64 },
    }
    const EVENTS: TableDef<u32, Serde<Event>> = TableDef::new("events");
    let (_dir, db) = open();
    let mut conn = db.connect();
    conn.run(|tx| tx.create_table(EVENTS.name())).unwrap();
    let put = conn.run(|tx| tx.table_mut(EVENTS).put(1, &Event::Open { at: 5 }));
    assert!(matches!(put, Err(Error::Encode { .. })), "{put:?}");
    assert_eq!(conn.read(|tx| tx.table(EVENTS).len()).unwrap(), 0);
}
