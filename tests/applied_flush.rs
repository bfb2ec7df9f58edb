//! `Applied` and `Written` commits that no durable commit follows become durable on their
//! own: a flusher started by such a commit makes the queued commits durable shortly after
//! (it does not wait for the next durable commit or for `close`), so the durable feed
//! and readers in other processes see them, and they survive a crash of the process once
//! durable.

use capsuledb::{Database, Durability, Received};
use std::time::Duration;

/// How long a test waits for the flusher before calling it lost (a liveness bound, far
/// above the flusher's 10 ms delay; no timing is asserted).
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn commits_that_return_before_durable_become_durable_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flush.db");
    let db = Database::open(&path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    let sub = db.subscribe();
    for (i, level) in [
        Durability::Applied,
        Durability::Written,
        Durability::Applied,
    ]
    .into_iter()
    .enumerate()
    {
        let mut tx = c.begin().unwrap();
        tx.put("t", &[i as u8], b"v").unwrap();
        let last = tx.commit_with(level).unwrap().seq;
        match sub.recv_timeout(PATIENCE) {
            Some(Received::Commit(e)) => assert_eq!(e.seq, last, "{level:?}"),
            other => panic!("{level:?} commit {last} never became durable: {other:?}"),
        }
        assert!(db.stats().durable_seq >= last);
    }
    // Durable, so a reopen without a clean close finds them: the process "crashes" by
    // leaking the handle (no close, no drain).
    drop(c);
    std::mem::forget(db);
    let again = capsuledb::Options::new()
        .read_only(true)
        .open(&path)
        .unwrap();
    let mut c = again.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.len("t").unwrap(), 3);
    assert!(again.info().unwrap().log_damage.is_none());
}

/// A burst of `Applied` commits from several threads: every one of them becomes durable
/// without a durable commit after them, and the database closes cleanly meanwhile.
#[test]
fn a_burst_of_applied_commits_is_flushed_and_close_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("burst.db")).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    let tip = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let db = db.clone();
                s.spawn(move || {
                    let mut c = db.connect();
                    let mut last = 0;
                    for i in 0..500u32 {
                        let mut tx = c.begin().unwrap();
                        let mut k = vec![t];
                        k.extend_from_slice(&i.to_be_bytes());
                        tx.put("t", &k, b"v").unwrap();
                        last = tx.commit_with(Durability::Applied).unwrap().seq;
                    }
                    last
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    });
    let waited = std::time::Instant::now();
    while db.stats().durable_seq < tip {
        assert!(
            waited.elapsed() < PATIENCE,
            "commit {tip} never became durable"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(c);
    db.close().unwrap();
}

/// A transaction that writes nothing and asks for `Durable` returns once the state it
/// read is durable: one that read an `Applied` commit not yet flushed was told it was
/// durable at once, and a crash could then lose what it had acted on. Read-only, and
/// Serializable read-write with reads and no writes, both.
#[test]
fn a_commit_that_writes_nothing_waits_until_what_it_read_is_durable() {
    for read_write in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("read.db")).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit().unwrap();
        let mut tx = c.begin().unwrap();
        tx.put("t", b"k", b"v").unwrap();
        let applied = tx.commit_with(Durability::Applied).unwrap().seq;
        let mut reader = db.connect();
        let tx = if read_write {
            reader.begin().unwrap()
        } else {
            reader.begin_read().unwrap()
        };
        assert_eq!(tx.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
        let info = tx.commit_with(Durability::Durable).unwrap();
        assert!(info.seq >= applied);
        assert!(
            db.stats().durable_seq >= info.seq,
            "told durable before it was (read_write: {read_write})"
        );
    }
}

/// `collect_garbage` and `drop_history_before` return while other threads keep
/// committing (they flush what is queued when they start; before, they drained until
/// the queue stayed empty, which a steady load never lets happen).
#[test]
fn maintenance_calls_return_under_a_steady_commit_load() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("busy.db")).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let (db, stop) = (db.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut c = db.connect();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = c.begin().unwrap();
                    tx.put(
                        "t",
                        &[w.to_be_bytes().as_slice(), &i.to_be_bytes()].concat(),
                        b"v",
                    )
                    .unwrap();
                    tx.commit().unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let db2 = db.clone();
    std::thread::spawn(move || {
        for _ in 0..20 {
            db2.collect_garbage().unwrap();
            let (_, newest) = db2.history_window();
            db2.drop_history_before(newest).unwrap();
        }
        done_tx.send(()).unwrap();
    });
    let returned = done_rx.recv_timeout(PATIENCE).is_ok();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(returned, "maintenance did not return under load");
}
