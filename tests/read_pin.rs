//! A transaction pins the checkpointed tree at `begin`; a checkpoint that publishes a
//! newer tree and drops the versions it folded from the store must not hide them from
//! a transaction still holding the older tree, and values handed out stay valid.

use capsuledb::{Database, Options};

fn db(dir: &tempfile::TempDir) -> Database {
    Options::new()
        .version_store_budget(u64::MAX / 4)
        .checkpoint_log_commits(u64::MAX / 4)
        .open(dir.path().join("pin.db"))
        .expect("open")
}

#[test]
fn a_reader_finds_versions_folded_by_a_checkpoint_after_its_begin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("begin");
    tx.create_table("t").expect("create");
    for i in 0u32..200 {
        tx.put("t", &i.to_be_bytes(), format!("v{i}").as_bytes())
            .expect("put");
    }
    tx.commit().expect("commit");

    // The reader pins the empty tree; its snapshot includes the 200 keys (in the store).
    let mut reader_conn = db.connect();
    let reader = reader_conn.begin_read().expect("begin_read");
    let held = reader.get_ref("t", &7u32.to_be_bytes()).expect("get_ref");
    // The checkpoint folds them into a new tree and drops them from the store.
    let report = db.checkpoint().expect("checkpoint").expect("folded");
    assert!(report.keys_folded >= 200);
    assert_eq!(db.stats().versions, 0, "folded versions left the store");
    for i in 0u32..200 {
        let v = reader.get("t", &i.to_be_bytes()).expect("get");
        assert_eq!(v, Some(format!("v{i}").into_bytes()), "key {i}");
    }
    let scanned: Vec<_> = reader
        .iter("t")
        .expect("iter")
        .map(|r| r.expect("item").0)
        .collect();
    assert_eq!(scanned.len(), 200);
    assert_eq!(held.as_deref(), Some(&b"v7"[..]));
}

#[test]
fn values_handed_out_outlive_later_checkpoints_and_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("begin");
    tx.create_table("t").expect("create");
    let big = vec![0xAB; 10_000];
    tx.put("t", b"big", &big).expect("put");
    tx.put("t", b"small", b"s").expect("put");
    tx.commit().expect("commit");
    db.checkpoint().expect("checkpoint");

    let mut reader_conn = db.connect();
    let reader = reader_conn.begin_read().expect("begin_read");
    let v_big = reader.get_ref("t", b"big").expect("get").expect("present");
    let v_small = reader
        .get_ref("t", b"small")
        .expect("get")
        .expect("present");
    drop(reader);
    // Rewrite both keys and fold twice, so the pages the values lie on are freed and
    // reused; then compact. The values still hold their tree.
    for round in 0u8..3 {
        let mut tx = conn.begin().expect("begin");
        tx.put("t", b"big", &vec![round; 10_000]).expect("put");
        tx.put("t", b"small", &[round]).expect("put");
        tx.commit().expect("commit");
        db.checkpoint().expect("checkpoint");
    }
    db.compact().expect("compact");
    assert_eq!(&*v_big, big.as_slice());
    assert_eq!(&*v_small, b"s");
    let now = conn.begin_read().expect("begin_read");
    assert_eq!(now.get("t", b"small").expect("get"), Some(vec![2]));
    drop(now);
    assert!(db.check_integrity().expect("check").is_ok());
}

#[test]
fn a_reader_sees_nothing_newer_than_its_snapshot_after_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("begin");
    tx.create_table("t").expect("create");
    tx.put("t", b"k", b"old").expect("put");
    tx.commit().expect("commit");
    db.checkpoint().expect("checkpoint");

    let mut reader_conn = db.connect();
    let reader = reader_conn.begin_read().expect("begin_read");
    let mut tx = conn.begin().expect("begin");
    tx.put("t", b"k", b"new").expect("put");
    tx.put("t", b"k2", b"new").expect("put");
    tx.commit().expect("commit");
    // The live reader holds the horizon: this checkpoint cannot fold the new commit.
    db.checkpoint().expect("checkpoint");
    assert_eq!(reader.get("t", b"k").expect("get"), Some(b"old".to_vec()));
    assert_eq!(reader.get("t", b"k2").expect("get"), None);
    assert_eq!(reader.len("t").expect("len"), 1);
}
