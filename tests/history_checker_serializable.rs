//! Randomized 8-thread histories at Serializable (see `history_checker_support`): every
//! read matches the replay of the committed writes, first-committer-wins holds, and the
//! ww/wr/rw dependency graph of committed transactions has no cycle. Prints the false
//! aborts and what plain read-set (OCC) validation would abort, never asserting them.

mod history_checker_support;

use capsuledb::Isolation;
use history_checker_support::run_all;

#[test]
fn serializable_histories_have_no_cycle() {
    run_all(Isolation::Serializable);
}
