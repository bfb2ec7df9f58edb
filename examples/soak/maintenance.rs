//! The maintenance thread (checkpoints and compactions on a schedule) and the samples
//! of file size and memory it takes for the peaks.

use super::runner::Config;
use super::shared::Shared;
use capsuledb::Database;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the maintenance thread samples file size and memory for the peaks.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Memory figures from `/proc/self/status`, kB: (VmRSS, VmHWM, RssAnon).
pub(super) fn memory_kb() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("RssAnon:"))
}

pub(super) fn file_len(db: &Database) -> u64 {
    db.info().map(|i| i.file_len).unwrap_or(0)
}

/// Checkpoints and compacts on a schedule and samples the peaks.
pub(super) fn maintenance_thread(db: Database, sh: Arc<Shared>, cfg: Config) {
    let mut last_checkpoint = Instant::now();
    let mut last_compact = Instant::now();
    while !sh.stopped() {
        std::thread::sleep(SAMPLE_EVERY);
        sh.peak_file_len.fetch_max(file_len(&db), Ordering::Relaxed);
        sh.peak_anon_kb.fetch_max(memory_kb().2, Ordering::Relaxed);
        if last_compact.elapsed() >= cfg.compact_every {
            let t = Instant::now();
            match db.compact() {
                Ok(shrunk) => {
                    sh.compacted_bytes.fetch_add(shrunk, Ordering::Relaxed);
                    sh.compactions.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return sh.violation(format!("compact: {e}")),
            }
            let ns = t.elapsed().as_nanos() as u64;
            sh.compact_max_ns.fetch_max(ns, Ordering::Relaxed);
            last_compact = Instant::now();
            last_checkpoint = Instant::now();
        } else if last_checkpoint.elapsed() >= cfg.checkpoint_every {
            let t = Instant::now();
            if let Err(e) = db.checkpoint() {
                return sh.violation(format!("checkpoint: {e}"));
            }
            sh.checkpoints.fetch_add(1, Ordering::Relaxed);
            let ns = t.elapsed().as_nanos() as u64;
            sh.checkpoint_max_ns.fetch_max(ns, Ordering::Relaxed);
            last_checkpoint = Instant::now();
        }
    }
}
