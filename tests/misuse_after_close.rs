//! Handles and values outliving `close`: a closed database refuses everything and
//! reopens with its commits, an open after a close gives a working database or an
//! error, and a zero-copy value held past every handle stays intact. An engine bug found
//! here is fixed and its test kept: `open_after_close_gives_a_working_database_or_an_error`.

mod misuse_support;

use capsuledb::{Database, Durability, Error};
use misuse_support::{TABLE, assert_clean, create_table, scan};

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

/// `wait_for` a commit no one has made yet (the next sequence) ends with `Closed` when
/// the database closes; it waited for ever, keeping the engine and its file lock.
#[test]
fn waiting_for_a_commit_that_never_comes_ends_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("w.db")).unwrap();
    create_table(&db, TABLE);
    let next = db.stats().tip_seq + 1;
    let waiters: Vec<_> = [Durability::Applied, Durability::Durable]
        .into_iter()
        .map(|level| {
            let db = db.clone();
            std::thread::spawn(move || db.wait_for(next, level))
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    db.close().unwrap();
    for w in waiters {
        let waited = w.join().unwrap();
        assert!(matches!(waited, Err(Error::Closed)), "{waited:?}");
    }
}
