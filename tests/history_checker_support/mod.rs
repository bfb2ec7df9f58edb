//! A white-box history checker, shared by the `history_checker_*` tests.
//!
//! Seeded workloads run on many threads over a few hot keys: point reads, range scans
//! (forward, reverse, empty), puts and deletes, commits and rollbacks, at Serializable
//! and at Snapshot. Every value written names its writer, so every read says which
//! committed version it saw. From the recorded history the checker
//! - replays the committed writes in sequence order and checks every read against the
//!   newest version at or below the reader's snapshot (SI reads), and first-committer-wins;
//! - builds the dependency graph (ww, wr, rw) over committed transactions, adds the
//!   real-time order (a commit acknowledged before a transaction began precedes it,
//!   ticks of a shared clock) and, at Serializable, asserts it has no cycle: strict
//!   serializability;
//! - counts false aborts (an aborted transaction that, committed where it aborted, would
//!   close no cycle) and what plain read-set (OCC) validation would have aborted.
//!
//! Thread interleaving is up to the OS, so a seed fixes the operations each thread runs,
//! not the schedule; a failure message names the seed and prints the offending history.
//! The rates are printed for reports and never asserted; that the runs contend is (some
//! conflict in all, and at Snapshot some write-skew cycle).
//!
//! - [`record`]: the recorded history, [`workload`]: the threads that make it,
//!   [`check`]: the replay and the dependency graph, [`analysis`]: false aborts and OCC,
//!   [`report`]: the printed counts.

#![allow(
    dead_code,
    reason = "each history_checker_* file uses a different subset of these helpers"
)]

#[path = "../history_support/mod.rs"]
mod history_support;

pub mod analysis;
pub mod check;
pub mod record;
pub mod report;
pub mod workload;

use capsuledb::Isolation;
use check::{Report, check};
use report::print_report;
use workload::{PROFILES, SEEDS, run};

/// Runs every profile with every seed at `iso`, checks each history and prints the
/// counts of each and their total.
pub fn run_all(iso: Isolation) {
    let mut total = Report::default();
    for profile in PROFILES {
        for seed in SEEDS {
            let h = run(seed, iso, profile);
            let r = check(&h);
            print_report(&format!("{iso:?} {} seed {seed:#x}", profile.name), iso, &r);
            println!(
                "  engine counted {} first-committer-wins and {} SSI refusals",
                h.engine_refusals.0, h.engine_refusals.1
            );
            total.txns += r.txns;
            total.readers += r.readers;
            total.committed_writers += r.committed_writers;
            total.committed_read_only += r.committed_read_only;
            total.rolled_back += r.rolled_back;
            total.aborted += r.aborted;
            total.aborted_ww += r.aborted_ww;
            total.aborted_cycle += r.aborted_cycle;
            total.aborted_false += r.aborted_false;
            total.occ_would_abort += r.occ_would_abort;
            total.occ_eligible += r.occ_eligible;
            total.graph_has_cycle |= r.graph_has_cycle;
        }
    }
    print_report(&format!("{iso:?} all profiles and seeds"), iso, &total);
    // The workloads contend (tens of thousands of aborts a run): a run without any
    // checked only serial histories, and a green result would mean nothing.
    assert!(total.aborted > 0, "no transaction of any run conflicted");
    if iso == Isolation::Snapshot {
        assert!(
            total.graph_has_cycle,
            "no run at Snapshot made the write skew that level allows: the histories \
             may not overlap, or the checker may not see cycles"
        );
    }
}
