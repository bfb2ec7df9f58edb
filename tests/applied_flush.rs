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
