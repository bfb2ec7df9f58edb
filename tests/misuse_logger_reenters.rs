//! A logger that calls into the database it is told about (an application adding the
//! database's counters to its error lines): a failed group step logged its error with
//! the coordinator's state locked, and the logger's `stats()` waited for that lock on
//! the same thread, for ever (and every committer behind it). Its own binary: the
//! logger is the process's.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Options};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// On every error line, reads the database's stats (and counts the lines it saw).
struct StatsLogger {
    db: OnceLock<Database>,
    lines: std::sync::atomic::AtomicU64,
}

impl log::Log for StatsLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Error
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Error
            && let Some(db) = self.db.get()
        {
            let _ = db.stats();
            self.lines.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
    fn flush(&self) {}
}

static LOGGER: StatsLogger = StatsLogger {
    db: OnceLock::new(),
    lines: std::sync::atomic::AtomicU64::new(0),
};

#[test]
fn a_logger_reading_the_stats_of_a_failed_step_does_not_deadlock() {
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
    let _ = LOGGER.db.set(db.clone());
    sim.fail_nth_sync(1);
    let (done, finished) = std::sync::mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            tx.put("t", b"k", b"v").unwrap();
            let _ = done.send(tx.commit_with(Durability::Durable).map(|_| ()));
        });
    }
    // A guard against the hang, not a measure.
    let outcome = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the commit whose step failed never returned: its logger deadlocked");
    assert!(outcome.is_err(), "a commit whose sync failed succeeded");
    assert!(LOGGER.lines.load(std::sync::atomic::Ordering::Acquire) > 0);
}
