//! Commits after the database is poisoned by a failed sync: refused at every durability
//! level, on every connection, thread and handle, also after maintenance; reads go on,
//! and a reopen takes commits again.

mod misuse_support;

use capsuledb::storage::SimStorage;
use capsuledb::{Durability, Error};
use misuse_support::{TABLE, assert_clean, create_table, is_io_or_poisoned, open_sim, scan};
use std::sync::Arc;

#[test]
fn a_poisoned_database_refuses_commits_until_reopened() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let put = |conn: &mut capsuledb::Connection, key: &[u8], level: Durability| {
        let mut tx = conn.begin()?;
        tx.put(TABLE, key, b"v")?;
        tx.commit_with(level)
    };
    put(&mut conn, b"before", Durability::Durable).unwrap();
    sim.fail_nth_sync(1);
    let e = put(&mut conn, b"failed", Durability::Durable).expect_err("the sync failed");
    assert!(is_io_or_poisoned(&e), "{e:?}");

    // Every later commit is refused: each level, each connection, other threads and
    // other handles, also after waiting.
    for level in [
        Durability::Applied,
        Durability::Written,
        Durability::Durable,
    ] {
        let e = put(&mut conn, b"later", level).expect_err("poisoned");
        assert!(matches!(e, Error::Poisoned { .. }), "{level:?}: {e:?}");
    }
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut conn = db.connect();
                for i in 0..5 {
                    let mut tx = conn.begin().unwrap();
                    tx.put(TABLE, format!("t{t}-{i}").as_bytes(), b"v").unwrap();
                    let e = tx.commit().expect_err("poisoned");
                    assert!(matches!(e, Error::Poisoned { .. }), "{e:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let e = put(&mut conn, b"much later", Durability::Durable).expect_err("still poisoned");
    assert!(matches!(e, Error::Poisoned { .. }), "{e:?}");
    // Creating a table is a commit too.
    let mut tx = conn.begin().unwrap();
    tx.create_table("new").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Poisoned { .. })));
    // Checkpoints and compaction do not clear it (they may refuse as well).
    for r in [db.checkpoint().map(drop), db.compact().map(drop)] {
        if let Err(e) = r {
            assert!(is_io_or_poisoned(&e), "{e:?}");
        }
    }
    let e = put(&mut conn, b"after maintenance", Durability::Applied).expect_err("poisoned");
    assert!(matches!(e, Error::Poisoned { .. }), "{e:?}");
    // Reads go on and show only the acknowledged commit; read-only commits succeed.
    let tx = conn.begin_read().unwrap();
    assert_eq!(
        tx.get(TABLE, b"before").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(tx.get(TABLE, b"failed").unwrap(), None);
    tx.commit().unwrap();
    drop(conn);
    drop(db);

    // Reopened, it takes commits again; the failed commit is whole or absent.
    let db = open_sim(&sim).unwrap();
    let state = scan(&db, TABLE);
    assert_eq!(
        state.get(b"before".as_slice()).map(Vec::as_slice),
        Some(&b"v"[..])
    );
    assert!(
        state.keys().all(|k| k == b"before" || k == b"failed"),
        "{state:?}"
    );
    let mut conn = db.connect();
    put(&mut conn, b"after reopen", Durability::Durable).unwrap();
    assert_clean(&db, "reopened after poisoning");
}

/// A `Written` commit whose own thread led the step: its marker was written (the commit
/// reached `Written` and became visible) before the step's second sync failed. It is
/// answered `Ok`, as the group's other `Written` waiters are; it was answered with the
/// step's error while other transactions already read it.
#[test]
fn a_written_commit_that_led_a_failing_step_is_answered_ok() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"before", b"v").unwrap();
    tx.commit().unwrap();
    // The step of its proof syncs (1), the step of its marker fails its sync (2).
    sim.fail_nth_sync(2);
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"w", b"v").unwrap();
    let answer = tx.commit_with(Durability::Written);
    let tx = conn.begin_read().unwrap();
    let visible = tx.get(TABLE, b"w").unwrap().is_some();
    drop(tx);
    assert!(visible, "the commit reached Written");
    answer.expect("a commit that reached Written is answered Ok");
    // The group is poisoned all the same.
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"later", b"v").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Poisoned { .. })));
}

/// A checkpoint whose sync fails poisons the database: that `fdatasync` may have dropped
/// a commit's dirty capsule, and a later group's sync that succeeds (on a storage that
/// does not fail every sync after a failed one, as `SimStorage` does not) had that commit
/// acknowledged durable over a capsule a crash then lost.
#[test]
fn a_failed_checkpoint_sync_poisons() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"k1", b"v").unwrap();
    tx.commit_with(Durability::Durable).unwrap();
    sim.fail_nth_sync(1);
    let e = db.checkpoint().expect_err("the checkpoint's sync failed");
    assert!(is_io_or_poisoned(&e), "{e:?}");
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"k2", b"v").unwrap();
    let e = tx.commit_with(Durability::Durable).expect_err("poisoned");
    assert!(matches!(e, Error::Poisoned { .. }), "{e:?}");
}

/// A storage whose first sync on the checkpoint's thread fails, but only after a sync
/// on another thread (a group step's) has returned, if one can within half a second.
struct CheckpointSyncFailsLate {
    sim: SimStorage,
    checkpoint_thread: parking_lot::Mutex<Option<std::thread::ThreadId>>,
    /// (the checkpoint's sync began, another thread's sync returned)
    moments: parking_lot::Mutex<(bool, bool)>,
    changed: parking_lot::Condvar,
}

impl capsuledb::storage::Storage for CheckpointSyncFailsLate {
    fn len(&self) -> capsuledb::Result<u64> {
        self.sim.len()
    }
    fn view(&self) -> capsuledb::Result<capsuledb::storage::View> {
        self.sim.view()
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> capsuledb::Result<()> {
        self.sim.write_at(offset, data)
    }
    fn set_len(&self, len: u64) -> capsuledb::Result<()> {
        self.sim.set_len(len)
    }
    fn sync(&self) -> capsuledb::Result<()> {
        let me = std::thread::current().id();
        let mut checkpoint = self.checkpoint_thread.lock();
        if *checkpoint == Some(me) {
            *checkpoint = None;
            drop(checkpoint);
            let mut m = self.moments.lock();
            m.0 = true;
            self.changed.notify_all();
            if !m.1 {
                self.changed
                    .wait_for(&mut m, std::time::Duration::from_millis(500));
            }
            drop(m);
            // The step that synced looks at the failure flag before this sync reports.
            std::thread::sleep(std::time::Duration::from_millis(200));
            return Err(Error::Io {
                op: "sync the database file",
                source: std::io::Error::other("simulated failure of the checkpoint's sync"),
            });
        }
        drop(checkpoint);
        let r = self.sim.sync();
        if r.is_ok() {
            self.moments.lock().1 = true;
            self.changed.notify_all();
        }
        r
    }
}

/// A group step's sync that returns while a checkpoint's failed sync has not yet
/// poisoned the database makes nothing durable: the failed `fdatasync` may have dropped
/// the step's pages (a storage plugged in that, unlike the file storage, neither
/// serializes its syncs nor fails every sync after a failed one). The step's sync
/// waited for the checkpoint's and its outcome; it ran beside it, and the commit was
/// acknowledged durable.
#[test]
fn a_step_sync_beside_a_failing_checkpoint_sync_acknowledges_nothing() {
    use capsuledb::storage::Storage;
    let storage = Arc::new(CheckpointSyncFailsLate {
        sim: SimStorage::new(),
        checkpoint_thread: parking_lot::Mutex::new(None),
        moments: parking_lot::Mutex::new((false, false)),
        changed: parking_lot::Condvar::new(),
    });
    let db = capsuledb::Options::new()
        .random_seed(7)
        .open_storage(Arc::clone(&storage) as Arc<dyn Storage>)
        .unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"k1", b"v").unwrap();
    tx.commit_with(Durability::Durable).unwrap();
    *storage.checkpoint_thread.lock() = Some(std::thread::current().id());
    let committer = {
        let (db, storage) = (db.clone(), Arc::clone(&storage));
        std::thread::spawn(move || {
            let mut m = storage.moments.lock();
            while !m.0 {
                storage.changed.wait(&mut m);
            }
            drop(m);
            let mut conn = db.connect();
            let mut tx = conn.begin()?;
            tx.put(TABLE, b"k2", b"v")?;
            tx.commit_with(Durability::Durable)
        })
    };
    let e = db.checkpoint().expect_err("the checkpoint's sync failed");
    assert!(is_io_or_poisoned(&e), "{e:?}");
    let committed = committer.join().unwrap();
    assert!(
        matches!(committed, Err(Error::Poisoned { .. })),
        "acknowledged over a failed sync: {committed:?}"
    );
}
