//! A point read skips the version store when the bucket of its key counts no chain
//! (`VersionStore::may_have_key`). Chains come and go all the time under a small store
//! budget (commits add them, checkpoints fold them into the tree and remove them), and a
//! reader must never skip a version its snapshot can see: a snapshot begun after a
//! commit returned sees it, and each reader's successive snapshots see every key's value
//! move forward only.

use capsuledb::{Database, Durability, Options};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const KEYS: u32 = 64;

fn value_of(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(
        bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .expect("8-byte value"),
    )
}

#[test]
fn reads_never_go_back_while_chains_come_and_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db: Database = Options::new()
        .version_store_budget(16 << 10)
        .open(dir.path().join("buckets.db"))
        .expect("open");
    let mut c = db.connect();
    let mut tx = c.begin().expect("begin");
    tx.create_table("t").expect("create");
    for k in 0..KEYS {
        tx.put("t", &k.to_be_bytes(), &0u64.to_le_bytes())
            .expect("put");
    }
    tx.commit().expect("commit");
    db.checkpoint().expect("checkpoint");
    let stop = Arc::new(AtomicBool::new(false));
    // Per key, the newest value whose commit returned.
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let mut threads = Vec::new();
    {
        // The writer: each commit moves one key's value forward.
        let (db, stop, acked) = (db.clone(), Arc::clone(&stop), Arc::clone(&acked));
        threads.push(std::thread::spawn(move || {
            let mut c = db.connect();
            let mut version = 0u64;
            while !stop.load(Ordering::Relaxed) {
                version += 1;
                let k = (version % u64::from(KEYS)) as u32;
                let mut tx = c.begin().expect("begin");
                tx.put("t", &k.to_be_bytes(), &version.to_le_bytes())
                    .expect("put");
                tx.commit_with(Durability::Applied).expect("commit");
                acked[k as usize].store(version, Ordering::SeqCst);
            }
        }));
    }
    {
        // Checkpoints fold the store into the tree, removing chains (and their counts).
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                db.checkpoint().expect("checkpoint");
                std::thread::sleep(Duration::from_millis(1));
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (db, stop, acked) = (db.clone(), Arc::clone(&stop), Arc::clone(&acked));
        readers.push(std::thread::spawn(move || {
            let mut c = db.connect();
            let mut seen = vec![0u64; KEYS as usize];
            let mut snapshots = 0u64;
            // At least one snapshot, however late the thread is scheduled.
            loop {
                let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
                let tx = c.begin_read().expect("begin_read");
                for k in 0..KEYS {
                    let v = tx
                        .get_ref("t", &k.to_be_bytes())
                        .expect("get")
                        .map(|v| value_of(&v))
                        .expect("every key is present");
                    let acked_before = before[k as usize];
                    assert!(
                        v >= acked_before,
                        "key {k}: read {v}, but {acked_before} was committed"
                    );
                    let last = &mut seen[k as usize];
                    assert!(v >= *last, "key {k}: read {v} after {last}");
                    *last = v;
                }
                snapshots += 1;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            snapshots
        }));
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("thread");
    }
    for r in readers {
        assert!(r.join().expect("reader") > 0, "the reader read");
    }
}
