//! The counters every thread of the run shares, and the record of violations.

use super::report::VIOLATIONS_KEPT_MAX;
use capsuledb::{Durability, Transaction};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Counters shared by the workers, the maintenance thread and the reporter.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    pub(super) transfers: AtomicU64,
    pub(super) filler_commits: AtomicU64,
    pub(super) aborts: AtomicU64,
    pub(super) scans: AtomicU64,
    pub(super) snapshots: AtomicU64,
    pub(super) filler_checks: AtomicU64,
    pub(super) checkpoints: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) compacted_bytes: AtomicU64,
    pub(super) commit_max_ns: AtomicU64,
    pub(super) interval_commit_max_ns: AtomicU64,
    pub(super) checkpoint_max_ns: AtomicU64,
    pub(super) compact_max_ns: AtomicU64,
    pub(super) peak_file_len: AtomicU64,
    pub(super) peak_anon_kb: AtomicU64,
    pub(super) violation_count: AtomicU64,
    pub(super) violations: Mutex<Vec<String>>,
}

impl Shared {
    /// Records a violated invariant and stops the run.
    pub(super) fn violation(&self, what: String) {
        self.violation_count.fetch_add(1, Ordering::Relaxed);
        let mut v = self.violations.lock();
        if v.len() < VIOLATIONS_KEPT_MAX {
            eprintln!("soak: VIOLATION: {what}");
            v.push(what);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Commits `tx`, timing the call.
    pub(super) fn commit(&self, tx: Transaction<'_>, level: Durability) -> capsuledb::Result<u64> {
        let t = Instant::now();
        let r = tx.commit_with(level);
        let ns = t.elapsed().as_nanos() as u64;
        self.commit_max_ns.fetch_max(ns, Ordering::Relaxed);
        self.interval_commit_max_ns.fetch_max(ns, Ordering::Relaxed);
        r.map(|info| info.seq)
    }
}
