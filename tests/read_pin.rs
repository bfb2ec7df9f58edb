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

/// Threads that read once and went idle (or ended) leave no pin of an old tree behind:
/// the pins kept for the next transactions are dropped when a newer tree is published,
/// so the pages each checkpoint frees are reused and the file stops growing.
#[test]
fn pins_kept_for_idle_threads_do_not_hold_old_trees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let rewrite = |round: u32| {
        let mut c = db.connect();
        let mut tx = c.begin().expect("begin");
        if round == 0 {
            tx.create_table("t").expect("create");
        }
        for i in 0u32..2_000 {
            tx.put("t", &i.to_be_bytes(), &[round as u8; 200])
                .expect("put");
        }
        tx.commit().expect("commit");
        db.checkpoint().expect("checkpoint");
    };
    rewrite(0);
    // Every shard gets a kept pin of the current tree.
    std::thread::scope(|s| {
        for _ in 0..32 {
            s.spawn(|| {
                let mut c = db.connect();
                let tx = c.begin_read().expect("begin_read");
                assert!(tx.get("t", &7u32.to_be_bytes()).expect("get").is_some());
            });
        }
    });
    let mut idle = db.connect();
    drop(idle.begin_read().expect("begin_read"));
    let mut lens = Vec::new();
    for round in 1..=30 {
        rewrite(round);
        lens.push(db.info().expect("info").file_len);
    }
    let (early, last) = (lens[2], lens[29]);
    assert!(
        last <= early + early / 4,
        "the file grew from {early} to {last} bytes over 27 rewrites: {lens:?}"
    );
    let tx = idle.begin_read().expect("begin_read");
    assert_eq!(
        tx.get("t", &7u32.to_be_bytes()).expect("get").as_deref(),
        Some(&[30u8; 200][..])
    );
}

/// A thread's transactions see every commit and checkpoint another thread made before
/// they began, through the pins kept between them.
#[test]
fn kept_pins_follow_commits_and_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(&dir);
    let mut c = db.connect();
    let mut tx = c.begin().expect("begin");
    tx.create_table("t").expect("create");
    tx.put("t", b"k", &0u32.to_be_bytes()).expect("put");
    tx.commit().expect("commit");
    let mut reader = db.connect();
    for round in 1u32..=200 {
        let mut tx = c.begin().expect("begin");
        tx.put("t", b"k", &round.to_be_bytes()).expect("put");
        tx.put("t", &round.to_be_bytes(), b"x").expect("put");
        tx.commit().expect("commit");
        if round % 7 == 0 {
            db.checkpoint().expect("checkpoint");
        }
        let tx = reader.begin_read().expect("begin_read");
        assert_eq!(
            tx.get("t", b"k").expect("get").as_deref(),
            Some(&round.to_be_bytes()[..]),
            "round {round}"
        );
        assert_eq!(tx.len("t").expect("len"), u64::from(round) + 1);
    }
}

const CHECKPOINTS: u32 = 800;

/// A value kept while hundreds of checkpoints publish newer trees holds each of them
/// (their pages may be shared with its tree); dropping it releases them one after the
/// other, not nested: on a thread with a small stack the drop returns.
#[test]
fn a_value_kept_through_hundreds_of_checkpoints_drops_on_a_small_stack() {
    let sim = capsuledb::storage::SimStorage::new();
    let db = Options::new()
        .open_storage(std::sync::Arc::new(sim))
        .expect("open");
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("begin");
    tx.create_table("t").expect("create");
    tx.put("t", b"kept", &[7u8; 100]).expect("put");
    tx.commit().expect("commit");
    db.checkpoint().expect("checkpoint");
    let kept = {
        let tx = conn.begin_read().expect("begin_read");
        tx.get_ref("t", b"kept").expect("get").expect("present")
    };
    for i in 0u32..CHECKPOINTS {
        let mut tx = conn.begin().expect("begin");
        tx.put("t", &i.to_be_bytes(), b"v").expect("put");
        tx.commit().expect("commit");
        db.checkpoint().expect("checkpoint");
    }
    assert_eq!(&kept[..], &[7u8; 100][..]);
    std::thread::Builder::new()
        .stack_size(16 << 10)
        .spawn(move || drop(kept))
        .expect("spawn")
        .join()
        .expect("the drop returns");
}
