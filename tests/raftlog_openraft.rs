//! openraft's own storage test suite (`openraft::testing::Suite::test_all`) on the
//! capsuledb log store and state machine: every case gets a fresh database file.

#![cfg(feature = "openraft")]

use capsuledb::Database;
use capsuledb::raftlog::openraft::{LogStore, StateMachine, TypeConfig};
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore<TypeConfig>, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("node.db")).unwrap();
        let log = LogStore::open(&db).unwrap();
        let sm = StateMachine::open(&db).unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft storage suite: {e}");
    }
}
