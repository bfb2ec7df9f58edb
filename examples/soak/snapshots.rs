//! Read-only snapshots that check the bank and the filler rows they meet, some held
//! while the rest of the workload goes on.

use super::bank::check_bank;
use super::filler::{FILLER, filler_key, filler_ok};
use super::shared::Shared;
use capsuledb::Database;
use capsuledb::rng::Rng;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// `begin_read` snapshots that check the bank (scan or point reads) and filler values;
/// now and then a snapshot is held for a while and checked again, so the version store
/// has to keep old versions alive.
pub(super) fn snapshot_thread(db: Database, sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut conn = db.connect();
    while !sh.stopped() {
        let tx = match conn.begin_read() {
            Ok(tx) => tx,
            Err(e) => return sh.violation(format!("begin_read: {e}")),
        };
        let how = rng.below(3);
        if let Err(what) = check_bank(&tx, how) {
            return sh.violation(what);
        }
        if how < 2 {
            sh.scans.fetch_add(1, Ordering::Relaxed);
        }
        sh.snapshots.fetch_add(1, Ordering::Relaxed);
        // A few filler rows from a random point: whatever is there must read back right.
        let start = filler_key(rng.below(64) as usize, 0);
        match tx.range(FILLER, start.as_slice()..) {
            Ok(range) => {
                for item in range.take(2) {
                    match item {
                        Ok((k, v)) if filler_ok(&k, &v) => {
                            sh.filler_checks.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((k, v)) => {
                            return sh.violation(format!(
                                "filler {} reads back wrong ({} bytes)",
                                String::from_utf8_lossy(&k),
                                v.len()
                            ));
                        }
                        Err(e) => return sh.violation(format!("filler scan: {e}")),
                    }
                }
            }
            Err(e) => return sh.violation(format!("filler range: {e}")),
        }
        if rng.chance(1, 200) {
            // Hold the snapshot while commits, checkpoints and compactions go on.
            std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
            if let Err(what) = check_bank(&tx, rng.below(3)) {
                return sh.violation(format!("held snapshot: {what}"));
            }
        }
    }
}
