//! What the Raft log's test files share.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Options};
use std::sync::Arc;

/// A database on the simulated storage `sim`, with a fixed seed.
pub fn open_sim(sim: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(11)
        .open_storage(Arc::new(sim.clone()))
}
