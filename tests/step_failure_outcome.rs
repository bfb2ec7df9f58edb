//! A group step whose proof write fails (a full disk) after the step before it made a
//! group's proofs durable: the committers of that group are told their commits failed,
//! so none of them may be in the file afterwards. The step wrote that group's markers
//! before the failing proofs, and they reached the file: a reopen found commits whose
//! committers had been told they failed (an application retrying them ran them twice).
//! Proofs go first now, and the markers of a failed step are never written.

use capsuledb::format::PROOF_MAGIC;
use capsuledb::storage::{SimStorage, Storage, View};
use capsuledb::{Database, Error, Options};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Fails the first proof record written once armed, as a full disk would.
struct FailingProofs {
    inner: SimStorage,
    armed: AtomicBool,
}

impl Storage for FailingProofs {
    fn len(&self) -> capsuledb::Result<u64> {
        self.inner.len()
    }
    fn view(&self) -> capsuledb::Result<View> {
        self.inner.view()
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> capsuledb::Result<()> {
        let proof = data.get(4..8) == Some(&PROOF_MAGIC.to_le_bytes()[..]);
        if proof && self.armed.swap(false, Ordering::AcqRel) {
            return Err(Error::Io {
                op: "write the database file",
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        self.inner.write_at(offset, data)
    }
    fn sync(&self) -> capsuledb::Result<()> {
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> capsuledb::Result<()> {
        self.inner.set_len(len)
    }
}

fn put(db: &Database, key: &str) -> capsuledb::Result<u64> {
    let mut c = db.connect();
    let mut tx = c.begin()?;
    tx.put("t", key.as_bytes(), b"v")?;
    Ok(tx.commit()?.seq)
}

#[test]
fn a_step_failing_on_a_proof_leaves_no_commit_it_reports_failed() {
    let storage = Arc::new(FailingProofs {
        inner: SimStorage::new(),
        armed: AtomicBool::new(false),
    });
    let db = Options::new()
        .open_storage(Arc::clone(&storage) as Arc<dyn Storage>)
        .unwrap();
    {
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit().unwrap();
    }
    // Commit `a` leads a step whose sync is held; commit `b` queues behind it. The next
    // step writes `b`'s proof (which fails) and `a`'s marker.
    let gate = storage.inner.hold_nth_sync(1);
    let a = {
        let db = db.clone();
        std::thread::spawn(move || put(&db, "a"))
    };
    gate.wait_held();
    let tip = db.stats().tip_seq;
    let b = {
        let db = db.clone();
        std::thread::spawn(move || put(&db, "b"))
    };
    while db.stats().tip_seq == tip && !b.is_finished() {
        std::thread::yield_now();
    }
    assert_eq!(db.stats().tip_seq, tip + 1, "b is sequenced and queued");
    storage.armed.store(true, Ordering::Release);
    gate.release();
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert!(a.is_err(), "a: {a:?}");
    assert!(b.is_err(), "b: {b:?}");
    drop(db);
    // Everything written reached the file (no crash): a commit told it failed is absent.
    let db = Options::new()
        .open_storage(Arc::new(storage.inner.clone()))
        .unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.get("t", b"a").unwrap(), None, "a was told it failed");
    assert_eq!(tx.get("t", b"b").unwrap(), None, "b was told it failed");
}
