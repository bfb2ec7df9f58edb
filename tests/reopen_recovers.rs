//! Committed data survives closing and reopening; recovery replays the marker stream.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Options};
use std::sync::Arc;

#[test]
fn data_survives_reopen_on_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    {
        let db = Database::open(&path).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.create_table("gone").unwrap();
        tx.commit().unwrap();
        for i in 0..300u32 {
            let mut tx = c.begin().unwrap();
            tx.put(
                "t",
                &i.to_be_bytes(),
                &vec![i as u8; (i as usize) * 37 % 9000],
            )
            .unwrap();
            if i % 7 == 0 {
                tx.delete("t", &(i / 2).to_be_bytes()).unwrap();
            }
            let level = [
                Durability::Applied,
                Durability::Written,
                Durability::Durable,
            ][i as usize % 3];
            tx.commit_with(level).unwrap();
        }
        let mut tx = c.begin().unwrap();
        tx.drop_table("gone").unwrap();
        tx.commit().unwrap();
        db.close().unwrap();
    }
    let db = Database::open(&path).unwrap();
    assert_eq!(db.stats().recovered_commits, 302);
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.tables().unwrap(), vec!["t".to_string()]);
    for i in 0..300u32 {
        let deleted = (0..300u32).any(|j| j % 7 == 0 && j / 2 == i && j >= i);
        let got = tx.get("t", &i.to_be_bytes()).unwrap();
        if deleted {
            assert_eq!(got, None, "key {i}");
        } else {
            assert_eq!(
                got,
                Some(vec![i as u8; (i as usize) * 37 % 9000]),
                "key {i}"
            );
        }
    }
    drop(tx);
    // The next sequence continues after the recovered tip, and new tables get new ids.
    let mut tx = c.begin().unwrap();
    tx.create_table("new").unwrap();
    tx.put("new", b"k", b"v").unwrap();
    assert_eq!(tx.commit().unwrap().seq, 303);
}

#[test]
fn applied_commits_are_written_at_close() {
    let sim = SimStorage::new();
    {
        let db = Options::new()
            .random_seed(1)
            .open_storage(Arc::new(sim.clone()))
            .unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit_with(Durability::Applied).unwrap();
        let mut tx = c.begin().unwrap();
        tx.put("t", b"k", b"v").unwrap();
        tx.commit_with(Durability::Applied).unwrap();
        assert_eq!(db.stats().durable_seq, 0);
    } // drop drains
    sim.crash_losing_unsynced();
    let db = Options::new().open_storage(Arc::new(sim)).unwrap();
    let mut c = db.connect();
    assert_eq!(
        c.begin_read().unwrap().get("t", b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

#[test]
fn commits_after_close_are_refused() {
    let sim = SimStorage::new();
    let db = Options::new().open_storage(Arc::new(sim)).unwrap();
    let db2 = db.clone();
    db.close().unwrap();
    let mut c = db2.connect();
    assert!(matches!(c.begin(), Err(capsuledb::Error::Closed)));
}
