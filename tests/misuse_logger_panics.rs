//! A logger that panics (an application's, on the error a failed sync logs): the step's
//! leader unwinds out of its commit, and a commit sequenced after it must not wait for
//! its visibility for ever. The leader's sequence was applied and marked, and nothing
//! stalled it: an `Applied` committer behind it waited for ever. Its own binary: the
//! logger is the process's.

use capsuledb::storage::SimStorage;
use capsuledb::{Durability, Options};
use std::sync::Arc;
use std::time::Duration;

/// Panics on the first error it is given (a second panic, in a destructor the first one
/// unwinds through, would abort the process whatever capsuledb did).
struct PanickingLogger(std::sync::atomic::AtomicBool);

impl log::Log for PanickingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Error
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Error
            && !self.0.swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            panic!("the logger panicked on: {}", record.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: PanickingLogger = PanickingLogger(std::sync::atomic::AtomicBool::new(false));

#[test]
fn a_leader_whose_logger_panics_leaves_no_committer_waiting() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Error);
    let sim = SimStorage::new();
    let db = Options::new().open_storage(Arc::new(sim.clone())).unwrap();
    {
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit_with(Durability::Durable).unwrap();
    }
    let tip = db.stats().tip_seq;
    // The next sync (the leader's step for commit A) is held, then fails.
    let gate = sim.hold_nth_sync(1);
    sim.fail_nth_sync(1);
    let commit = |key: &'static [u8], level: Durability| {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            tx.put("t", key, b"v").unwrap();
            tx.commit_with(level).map(|_| ()).map_err(|e| e.to_string())
        })
    };
    let a = commit(b"a", Durability::Durable);
    gate.wait_held();
    // B, sequenced after A and applied, waits for A to become visible.
    let (done, finished) = std::sync::mpsc::channel();
    {
        let b = commit(b"b", Durability::Applied);
        std::thread::spawn(move || {
            let _ = done.send(b.join());
        });
    }
    while db.stats().tip_seq < tip + 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    gate.release();
    assert!(
        a.join().is_err(),
        "A's leader unwound with its logger's panic"
    );
    let b = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("B waited for ever for A's visibility");
    assert!(matches!(&b, Ok(Err(e)) if e.contains("panicked")), "{b:?}");
}
