//! Every committer waiting on the group commit is woken. Committers sleep on doorbells
//! chosen by their sequence (`commit/doorbells.rs`) and a step rings the bells of the
//! ones it finished (`commit/group.rs`): a lost ring would leave a committer asleep
//! forever. Many threads commit at `Durable` and `Written`, and others wait on
//! sequences they did not commit (so one sequence has several waiters); and one large
//! group of sleeping committers is finished with nothing after it to ring their bells
//! by chance. All of them must return.
//!
//! A committer left asleep would hang the test: a watchdog fails it instead, after a
//! bound far above the workload's time on any machine (a liveness check, not a timing).

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Options};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

const COMMITTERS: u64 = 48;
const COMMITS_EACH: u64 = 60;
const WATCHERS: u64 = 8;

fn level(t: u64, i: u64) -> Durability {
    if (t + i).is_multiple_of(5) {
        Durability::Written
    } else {
        Durability::Durable
    }
}

fn run(db: &Database) -> u64 {
    let newest = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..COMMITTERS {
            let (db, newest) = (db.clone(), Arc::clone(&newest));
            s.spawn(move || {
                let mut conn = db.connect();
                for i in 0..COMMITS_EACH {
                    let mut tx = conn.begin().unwrap();
                    tx.put("t", &(t << 32 | i).to_be_bytes(), &[t as u8; 60])
                        .unwrap();
                    let seq = tx.commit_with(level(t, i)).unwrap().seq;
                    newest.fetch_max(seq, Ordering::AcqRel);
                }
            });
        }
        // Watchers wait for whatever sequence was committed last, at both levels.
        for w in 0..WATCHERS {
            let (db, newest) = (db.clone(), Arc::clone(&newest));
            s.spawn(move || {
                let mut waited = 0u64;
                while waited < COMMITS_EACH {
                    let seq = newest.load(Ordering::Acquire);
                    if seq == 0 {
                        std::thread::yield_now();
                        continue;
                    }
                    let lvl = if (w + waited).is_multiple_of(2) {
                        Durability::Durable
                    } else {
                        Durability::Written
                    };
                    db.wait_for(seq, lvl).unwrap();
                    waited += 1;
                }
            });
        }
    });
    db.stats().group_commits
}

#[test]
fn every_waiting_committer_is_woken() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // A real file: its syncs take long enough that committers fall asleep.
        let dir = tempfile::tempdir().unwrap();
        let db: Database = Options::new()
            .random_seed(11)
            .open(dir.path().join("wake.db"))
            .unwrap();
        let mut conn = db.connect();
        let mut t = conn.begin().unwrap();
        t.create_table("t").unwrap();
        t.commit_with(Durability::Durable).unwrap();
        let flushed = run(&db);
        let mut conn = db.connect();
        let read = conn.begin_read().unwrap();
        let mut count = 0u64;
        let mut scan = read.scan::<&[u8], _>("t", ..).unwrap();
        while let Some(item) = scan.next() {
            item.unwrap();
            count += 1;
        }
        let _ = tx.send((flushed, count));
    });
    let (flushed, count) = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("a committer or watcher was never woken");
    assert_eq!(count, COMMITTERS * COMMITS_EACH);
    assert!(
        flushed >= COMMITTERS * COMMITS_EACH,
        "{flushed} commits flushed"
    );
}

/// One group of many sleeping committers, and nothing after it: only the step's own
/// rings can wake them.
#[test]
fn a_large_group_with_nothing_after_it_wakes_every_committer() {
    const GROUP: u64 = 40;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let sim = SimStorage::new();
        let db: Database = Options::new()
            .random_seed(12)
            .open_storage(Arc::new(sim.clone()))
            .unwrap();
        let mut conn = db.connect();
        let mut t = conn.begin().unwrap();
        t.create_table("t").unwrap();
        t.commit_with(Durability::Durable).unwrap();
        // A first commit leads a step whose sync is held, so the committers after it
        // queue up and fall asleep, and form one group once it goes on.
        let gate = sim.hold_nth_sync(1);
        std::thread::scope(|s| {
            let first = {
                let db = db.clone();
                s.spawn(move || {
                    let mut conn = db.connect();
                    let mut tx = conn.begin().unwrap();
                    tx.put("t", b"first", b"1").unwrap();
                    tx.commit_with(Durability::Durable).unwrap();
                })
            };
            gate.wait_held();
            for i in 0..GROUP {
                let db = db.clone();
                s.spawn(move || {
                    let mut conn = db.connect();
                    let mut tx = conn.begin().unwrap();
                    tx.put("t", &i.to_be_bytes(), b"v").unwrap();
                    tx.commit_with(Durability::Durable).unwrap();
                });
            }
            // Give them time to queue (the test holds either way).
            std::thread::sleep(Duration::from_millis(200));
            gate.release();
            first.join().unwrap();
        });
        let _ = tx.send(db.stats().group_commits);
    });
    let flushed = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("a committer of the group was never woken");
    assert!(flushed > GROUP, "{flushed} commits flushed");
}
