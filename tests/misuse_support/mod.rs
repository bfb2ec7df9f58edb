//! Shared fixtures for the `misuse_*` tests (resource limits and misuse): a database on
//! simulated storage with a fixed seed, one table, a full scan, the integrity check and
//! the errors a failed write may end in.
//!
//! Every misuse test ends in a typed error or correct data, never a panic, a lost
//! acknowledged commit or a partly visible one.

#![allow(
    dead_code,
    reason = "each misuse_* file uses a different subset of these helpers"
)]

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Error, Options};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The table most tests write to.
pub const TABLE: &str = "t";
/// The random seed of every simulated-storage database.
pub const SEED: u64 = 0x5EED_0015;

/// A table's contents: key to value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Opens (or creates) a database on `sim`.
pub fn open_sim(sim: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(SEED)
        .open_storage(Arc::new(sim.clone()))
}

/// Creates table `name` in its own committed transaction.
pub fn create_table(db: &Database, name: &str) {
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    tx.create_table(name).unwrap();
    tx.commit().unwrap();
}

/// Everything in `table`, by a full scan.
pub fn scan(db: &Database, table: &str) -> State {
    let mut conn = db.connect();
    let tx = conn.begin_read().unwrap();
    tx.iter(table)
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k, v.to_vec())
        })
        .collect()
}

/// `check_integrity()` finds no problem.
pub fn assert_clean(db: &Database, when: &str) {
    let report = db.check_integrity().unwrap();
    assert!(
        report.is_ok(),
        "check_integrity {when}: {:?}",
        report.problems
    );
}

/// The errors a write on a failing disk may end in.
pub fn is_io_or_poisoned(e: &Error) -> bool {
    matches!(e, Error::Io { .. } | Error::Poisoned { .. })
}
