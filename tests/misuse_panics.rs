//! Panics in user code while a transaction or a scan is open, on this thread and on
//! another: nothing of the panicking transactions is visible, no snapshot leaks, and
//! the database goes on committing, checkpointing, compacting and reopening.

mod misuse_support;

use capsuledb::{Database, Durability};
use misuse_support::{TABLE, assert_clean, create_table, scan};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, which must panic; the panic is caught and its message checked.
fn must_panic(f: impl FnOnce()) {
    let caught = catch_unwind(AssertUnwindSafe(f));
    let payload = caught.expect_err("the closure was meant to panic");
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert!(
        msg.contains("user code panicked"),
        "unexpected panic: {msg}"
    );
}

#[test]
fn a_panic_with_an_open_transaction_or_scan_leaves_the_database_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("panic.db");
    let db = Database::open(&path).unwrap();
    create_table(&db, TABLE);
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    for i in 0..500u32 {
        tx.put(TABLE, &i.to_be_bytes(), &[b'c'; 100]).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let committed = scan(&db, TABLE);

    // A read-write transaction with writes, panicking before commit.
    must_panic(|| {
        let mut tx = conn.begin().unwrap();
        for i in 0..200u32 {
            tx.put(TABLE, format!("panic{i}").as_bytes(), b"never")
                .unwrap();
        }
        tx.delete(TABLE, &7u32.to_be_bytes()).unwrap();
        panic!("user code panicked with an open transaction");
    });
    // A scan half consumed, holding a zero-copy value from the tree.
    must_panic(|| {
        let tx = conn.begin_read().unwrap();
        let held = tx.get_ref(TABLE, &3u32.to_be_bytes()).unwrap().unwrap();
        let mut range = tx.iter(TABLE).unwrap();
        for _ in 0..100 {
            range.next().unwrap().unwrap();
        }
        assert_eq!(held.len(), 100);
        panic!("user code panicked with a scan open");
    });
    // A read-write transaction with a scan open and writes, on another thread.
    let db2 = db.clone();
    let joined = std::thread::spawn(move || {
        let mut conn = db2.connect();
        let mut tx = conn.begin().unwrap();
        tx.put(TABLE, b"thread", b"never").unwrap();
        let mut range = tx.iter(TABLE).unwrap();
        range.next_back().unwrap().unwrap();
        panic!("user code panicked on another thread");
    })
    .join();
    assert!(joined.is_err());
    assert_eq!(db.stats().live_snapshots, 0, "a panic leaked a snapshot");

    // Nothing of the panicking transactions is visible; the same connection and other
    // threads commit; checkpoints and compaction (which wait for old readers) run.
    assert_eq!(scan(&db, TABLE), committed);
    let mut tx = conn.begin().unwrap();
    tx.put(TABLE, b"after", b"1").unwrap();
    tx.commit().unwrap();
    let workers: Vec<_> = (0..4u32)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut conn = db.connect();
                for i in 0..50u32 {
                    let mut tx = conn.begin().unwrap();
                    tx.put(TABLE, format!("w{t}-{i}").as_bytes(), b"ok")
                        .unwrap();
                    tx.commit_with(Durability::Applied).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let state = scan(&db, TABLE);
    assert_eq!(state.len(), committed.len() + 1 + 200);
    assert!(
        !state
            .keys()
            .any(|k| k.starts_with(b"panic") || k == b"thread")
    );
    assert_clean(&db, "after the panics");
    drop(conn);
    drop(db);

    let db = Database::open(&path).unwrap();
    assert_eq!(scan(&db, TABLE), state);
    assert_clean(&db, "reopened after the panics");
}

/// A [`SimStorage`] whose `sync` panics once armed: a storage the application plugged in
/// (`Options::open_storage`) with a bug.
struct PanickingSync {
    inner: capsuledb::storage::SimStorage,
    armed: std::sync::atomic::AtomicBool,
}

impl capsuledb::storage::Storage for PanickingSync {
    fn len(&self) -> capsuledb::Result<u64> {
        self.inner.len()
    }
    fn view(&self) -> capsuledb::Result<capsuledb::storage::View> {
        self.inner.view()
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> capsuledb::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn sync(&self) -> capsuledb::Result<()> {
        if self.armed.load(std::sync::atomic::Ordering::Acquire) {
            panic!("the storage's sync panicked");
        }
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> capsuledb::Result<()> {
        self.inner.set_len(len)
    }
}

/// A database with `options` on a [`PanickingSync`] (not armed yet) holding `TABLE`.
fn panicking_db(options: capsuledb::Options) -> (std::sync::Arc<PanickingSync>, Database) {
    use std::sync::Arc;
    let storage = Arc::new(PanickingSync {
        inner: capsuledb::storage::SimStorage::new(),
        armed: false.into(),
    });
    let db = options
        .open_storage(Arc::clone(&storage) as Arc<dyn capsuledb::storage::Storage>)
        .unwrap();
    create_table(&db, TABLE);
    (storage, db)
}

/// A group commit's step panics (here in the storage's `sync`): every committer of the
/// group, and every later one, gets an error instead of waiting forever on a leader that
/// will never finish, and `close` returns. A watchdog fails the test instead of hanging.
#[test]
fn a_panic_in_a_group_commit_step_poisons_instead_of_hanging() {
    use std::sync::atomic::Ordering;
    let (storage, db) = panicking_db(capsuledb::Options::new());
    storage.armed.store(true, Ordering::Release);
    let (done, finished) = std::sync::mpsc::channel();
    for t in 0..4u64 {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            tx.put(TABLE, &t.to_be_bytes(), b"v").unwrap();
            let committed = tx.commit_with(Durability::Durable);
            let _ = done.send(committed.err());
        });
    }
    let mut caught = 0;
    for _ in 0..4 {
        let failed = finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a committer waited forever on a panicked group step");
        match failed {
            Some(capsuledb::Error::Poisoned { cause }) => {
                caught += usize::from(cause.contains("panicked"));
            }
            other => panic!("a commit whose group step panicked returned {other:?}"),
        }
    }
    assert!(caught > 0, "no committer was told the step panicked");
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.put(TABLE, b"later", b"v").unwrap();
    let later = tx.commit_with(Durability::Durable);
    assert!(
        matches!(later, Err(capsuledb::Error::Poisoned { .. })),
        "{later:?}"
    );
    drop(c);
    assert!(db.close().is_err(), "close reports the poisoned state");
}

/// A tree commit (a transaction over half the version-store budget) whose storage
/// panics in its sync: its sequence was taken and would never be visible, so a later
/// `Applied` commit waited for ever (nothing poisoned, and `close` did not end it). The
/// panic now poisons: the later commit is refused. A watchdog fails the test instead of
/// hanging.
#[test]
fn a_panic_in_a_tree_commit_poisons_instead_of_hanging_later_commits() {
    use std::sync::atomic::Ordering;
    let (storage, db) = panicking_db(capsuledb::Options::new().version_store_budget(64 * 1024));
    storage.armed.store(true, Ordering::Release);
    let large = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            for i in 0..1500u32 {
                tx.put(TABLE, &i.to_be_bytes(), &[7u8; 80]).unwrap();
            }
            tx.commit_with(Durability::Durable)
        })
    };
    let panicked = large.join();
    assert!(
        panicked.is_err(),
        "the tree commit's sync panicked: {panicked:?}"
    );
    let (done, finished) = std::sync::mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            tx.put(TABLE, b"after", b"v").unwrap();
            let _ = done.send(tx.commit_with(Durability::Applied).err());
        });
    }
    let after = finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("a commit after a panicked tree commit waited forever");
    assert!(
        matches!(&after, Some(capsuledb::Error::Poisoned { cause }) if cause.contains("panicked")),
        "{after:?}"
    );
    // The floor the tree commit's fold raised came back below the stall: the newest
    // state is readable as of (it read `(seq, seq - 1)`, every state refused).
    let (oldest, newest) = db.history_window();
    assert!(oldest <= newest, "window ({oldest}, {newest})");
    drop(db.begin_read_at(newest).unwrap());
    assert!(db.close().is_err(), "close reports the poisoned state");
}

/// A checkpoint's sync panics (the application's storage): what reached the disk is
/// unknown, as after a failed sync, so the database is poisoned and no later group's
/// sync acknowledges commits over it. It went on committing, as if nothing happened.
#[test]
fn a_panic_in_a_checkpoints_sync_poisons() {
    use std::sync::atomic::Ordering;
    let (storage, db) = panicking_db(capsuledb::Options::new());
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.put(TABLE, b"before", b"v").unwrap();
    tx.commit_with(Durability::Durable).unwrap();
    storage.armed.store(true, Ordering::Release);
    let checkpoint = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.checkpoint()));
    storage.armed.store(false, Ordering::Release);
    assert!(checkpoint.is_err(), "the checkpoint's sync panicked");
    let mut tx = c.begin().unwrap();
    tx.put(TABLE, b"after", b"v").unwrap();
    let after = tx.commit_with(Durability::Durable);
    assert!(
        matches!(&after, Err(capsuledb::Error::Poisoned { cause }) if cause.contains("checkpoint")),
        "{after:?}"
    );
    drop(c);
    assert!(db.close().is_err(), "close reports the poisoned state");
}
