//! The printed counts: abort rates, false aborts and what OCC would abort. They are
//! for reports and never asserted.

use super::check::Report;
use capsuledb::Isolation;

/// `n` as a percentage of `d`.
fn pct(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

/// Prints one history's (or a total's) counts.
pub fn print_report(label: &str, iso: Isolation, r: &Report) {
    if iso == Isolation::Snapshot {
        println!(
            "{label}: {} read-write txns ({} committed writers, {} committed read-only, \
             {} rolled back), {} begin_read readers; aborted {} ({:.1}%), all by \
             first-committer-wins; dependency graph has a cycle (write skew): {}",
            r.txns,
            r.committed_writers,
            r.committed_read_only,
            r.rolled_back,
            r.readers,
            r.aborted,
            pct(r.aborted, r.txns),
            r.graph_has_cycle
        );
        return;
    }
    println!(
        "{label}: {} read-write txns ({} committed writers, {} committed read-only, {} rolled back), \
         {} begin_read readers; aborted {} ({:.1}%): {} first-committer-wins, {} closing a cycle, \
         {} false = {:.1}% of aborts ({:.1}% of txns); OCC would abort {} of {} ({:.1}%); \
         graph has a cycle: {}",
        r.txns,
        r.committed_writers,
        r.committed_read_only,
        r.rolled_back,
        r.readers,
        r.aborted,
        pct(r.aborted, r.txns),
        r.aborted_ww,
        r.aborted_cycle,
        r.aborted_false,
        pct(r.aborted_false, r.aborted),
        pct(r.aborted_false, r.txns),
        r.occ_would_abort,
        r.occ_eligible,
        pct(r.occ_would_abort, r.occ_eligible),
        r.graph_has_cycle
    );
}
