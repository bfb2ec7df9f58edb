//! Randomized 8-thread histories at Snapshot (see `history_checker_support`): every read
//! sees the newest version at or below its snapshot and first-committer-wins holds; a
//! dependency cycle (write skew) is allowed at this level and only reported.

mod history_checker_support;

use capsuledb::Isolation;
use history_checker_support::run_all;

#[test]
fn snapshot_histories_read_snapshots_and_keep_first_committer_wins() {
    run_all(Isolation::Snapshot);
}
