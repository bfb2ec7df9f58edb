//! openraft's own storage test suite (`openraft::testing::Suite::test_all`) on the
//! capsuledb log store and state machine: every case gets a fresh database file.

#![cfg(feature = "openraft")]

use capsuledb::Database;
use capsuledb::raftlog::RaftLog;
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
        // The log under a name of its own: the suite purges logs its state machine never
        // applied, and a log store beside its own state machine (same name) waits for
        // the state machine to reach a purge first (a test below).
        let log = LogStore::new(RaftLog::open_named(&db, "suite").unwrap());
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

/// The log id `index` of term 3 (node 1).
fn log_id(index: u64) -> openraft::LogId<u64> {
    openraft::LogId::new(openraft::CommittedLeaderId::new(3, 1), index)
}

/// A snapshot of an empty state machine that applied up to `index` (one voter), as
/// openraft hands it to `install_snapshot`.
fn snapshot_at(index: u64) -> (openraft::SnapshotMeta<u64, openraft::BasicNode>, Vec<u8>) {
    use openraft::{Membership, StoredMembership};
    let membership = Membership::new(vec![std::collections::BTreeSet::from([1u64])], None);
    let meta = openraft::SnapshotMeta {
        last_log_id: Some(log_id(index)),
        last_membership: StoredMembership::new(None, membership.clone()),
        snapshot_id: format!("s{index}"),
    };
    let data = serde_json::json!({
        "last_applied": Some(log_id(index)),
        "membership": StoredMembership::<u64, openraft::BasicNode>::new(None, membership),
        "pairs": [],
    });
    (meta, serde_json::to_vec(&data).unwrap())
}

/// A database in a new directory with the default log store and state machine, on a
/// runtime, for `f`.
fn with_node<F: std::future::Future<Output = ()>>(
    f: impl FnOnce(Database, LogStore<TypeConfig>, StateMachine) -> F,
) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("node.db")).unwrap();
    let log: LogStore<TypeConfig> = LogStore::open(&db).unwrap();
    let sm = StateMachine::open(&db).unwrap();
    rt.block_on(f(db, log, sm));
}

/// openraft purges the log right after handing a received snapshot's install to the
/// state machine's task, without waiting for it. A purge durable before the install,
/// then a crash, left a log purged past a state machine that still needed its entries
/// (the node could not start). A log store beside its state machine now waits for the
/// state machine to have durably applied the purge's index.
#[test]
fn a_purge_waits_for_the_state_machine_to_reach_it() {
    use openraft::storage::{RaftLogStorage, RaftStateMachine};
    with_node(|_db, mut log, mut sm| async move {
        let purge = tokio::spawn({
            let mut log = log.clone();
            async move { log.purge(log_id(40)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            !purge.is_finished(),
            "purged before the state machine reached it"
        );
        assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, None);
        let (meta, bytes) = snapshot_at(40);
        sm.install_snapshot(&meta, Box::new(std::io::Cursor::new(bytes)))
            .await
            .unwrap();
        purge.await.unwrap().unwrap();
        assert_eq!(
            log.get_log_state().await.unwrap().last_purged_log_id,
            Some(log_id(40))
        );
    });
}

/// A failed snapshot install makes a purge waiting for it stop with an error (what it
/// waits for will not come). It stopped every later purge in the process too, even one
/// the state machine had already reached, and one after a later install succeeded:
/// openraft takes a failed purge as fatal.
#[test]
fn a_failed_install_stops_only_the_purges_it_leaves_waiting() {
    use openraft::storage::{RaftLogStorage, RaftStateMachine};
    with_node(|db, mut log, mut sm| async move {
        let (meta, good) = snapshot_at(40);
        sm.install_snapshot(&meta, Box::new(std::io::Cursor::new(good)))
            .await
            .unwrap();
        log.purge(log_id(40)).await.unwrap();
        let (meta, _) = snapshot_at(60);
        let bad = b"not a snapshot".to_vec();
        assert!(
            sm.install_snapshot(&meta, Box::new(std::io::Cursor::new(bad)))
                .await
                .is_err()
        );
        // Waiting for index 60, which the failed install was to reach: stopped.
        assert!(log.purge(log_id(60)).await.is_err());
        // Already reached: no wait, no error.
        log.purge(log_id(40)).await.unwrap();
        // A new handle does not clear it (a purge of the failed Raft still polling
        // would wait for ever); a successful install does, and purges wait again.
        let mut sm = StateMachine::open(&db).unwrap();
        assert!(log.purge(log_id(60)).await.is_err());
        let (meta, good) = snapshot_at(50);
        sm.install_snapshot(&meta, Box::new(std::io::Cursor::new(good)))
            .await
            .unwrap();
        let purge = tokio::spawn({
            let mut log = log.clone();
            async move { log.purge(log_id(60)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!purge.is_finished(), "the purge did not wait");
        purge.abort();
    });
}

/// A stored snapshot whose chunks are not keys `0, 1, 2, ...` (a stray chunk, here) was
/// joined as it came and served to followers, who could not install it. Reading it is
/// an error now, naming the chunk; and since openraft's state machine task ends at that
/// error (an install queued behind it never runs), a purge waiting for the state
/// machine stops with an error instead of waiting for ever.
#[test]
fn a_snapshot_with_a_stray_chunk_is_refused_and_stops_waiting_purges() {
    use openraft::storage::RaftLogStorage;
    with_node(|db, mut log, mut sm| async move {
        let e = read_back_changed(&db, &mut sm, |tx| {
            tx.put("raft.sm.snapshot", &7u64.to_be_bytes(), b"stray")
        })
        .await;
        assert!(e.contains("snapshot chunk 1 expected"), "{e}");
        assert!(log.purge(log_id(60)).await.is_err());
    });
}

/// A stored snapshot missing its last chunk (here its only one) passed the key check
/// and was served short, as a snapshot no follower could install: its length is stored
/// with it and checked.
#[test]
fn a_snapshot_missing_its_last_chunk_is_refused() {
    with_node(|db, _log, mut sm| async move {
        let e = read_back_changed(&db, &mut sm, |tx| {
            tx.delete("raft.sm.snapshot", &0u64.to_be_bytes())
        })
        .await;
        assert!(e.contains("were stored"), "{e}");
    });
}

/// Installs the snapshot at 40, changes its stored chunks with `change` in one commit,
/// and returns the error reading it back gives.
async fn read_back_changed(
    db: &Database,
    sm: &mut StateMachine,
    change: impl FnOnce(&mut capsuledb::Transaction<'_>) -> capsuledb::Result<()>,
) -> String {
    use openraft::storage::RaftStateMachine;
    let (meta, good) = snapshot_at(40);
    sm.install_snapshot(&meta, Box::new(std::io::Cursor::new(good)))
        .await
        .unwrap();
    assert!(sm.get_current_snapshot().await.unwrap().is_some());
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    change(&mut tx).unwrap();
    tx.commit().unwrap();
    sm.get_current_snapshot().await.unwrap_err().to_string()
}

/// A request the state machine cannot hold (a key over the key limit) that reached the
/// log is applied as nothing, on every replica alike: failing the apply stopped each
/// node's Raft at that entry, and again at every restart (openraft replays committed
/// entries at start). `Request::check` refuses it before it reaches the log.
#[test]
fn an_inapplicable_request_is_applied_as_nothing() {
    use capsuledb::raftlog::openraft::{REQUEST_JSON_BYTES_MAX, Request};
    use openraft::storage::RaftStateMachine;
    use openraft::{Entry, EntryPayload};
    let big_key = Request::Set {
        key: vec![1; capsuledb::MAX_KEY_LEN + 1],
        value: b"v".to_vec(),
    };
    assert!(matches!(
        big_key.check(),
        Err(capsuledb::Error::KeyTooLarge { .. })
    ));
    let big_json = Request::Set {
        key: b"k".to_vec(),
        value: vec![255; REQUEST_JSON_BYTES_MAX / 4 + 1],
    };
    assert!(matches!(
        big_json.check(),
        Err(capsuledb::Error::ValueTooLarge { .. })
    ));
    let fine = Request::Set {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
    };
    fine.check().unwrap();
    with_node(|_db, _log, mut sm| async move {
        let entry = |index, r: Request| Entry::<TypeConfig> {
            log_id: log_id(index),
            payload: EntryPayload::Normal(r),
        };
        let answers = sm
            .apply(vec![entry(1, big_key), entry(2, fine)])
            .await
            .unwrap();
        assert!(answers[0].refused.as_deref().unwrap().contains("key of"));
        assert_eq!(answers[1].refused, None);
        assert_eq!(sm.pairs().unwrap(), vec![(b"k".to_vec(), b"v".to_vec())]);
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(2)));
    });
}

/// What a leader reads for one replication message stops at about
/// `REPLICATION_READ_BYTES_MAX` bytes of entries (at least one entry): it read every
/// entry openraft asked for (up to 300), and on a log of large entries held gigabytes
/// to find the message over the frame limit. Small entries come whole.
#[test]
fn a_replication_read_stops_at_its_byte_budget() {
    use capsuledb::raftlog::Entry as LogEntry;
    use capsuledb::raftlog::openraft::{REPLICATION_READ_BYTES_MAX, Request};
    use openraft::storage::RaftLogReader;
    use openraft::{Entry, EntryPayload};
    with_node(|db, mut log, _sm| async move {
        let raw = RaftLog::open(&db).unwrap();
        let stored = |index: u64, value: Vec<u8>| {
            let entry = Entry::<TypeConfig> {
                log_id: log_id(index),
                payload: EntryPayload::Normal(Request::Set {
                    key: index.to_be_bytes().to_vec(),
                    value,
                }),
            };
            LogEntry::new(index, 3, serde_json::to_vec(&entry).unwrap())
        };
        // 20 entries of about 2 MiB of JSON each, 20 small ones, 20 large ones again:
        // a read that sized its parts by the entries seen so far read every large
        // entry after a few small ones.
        let mut entries: Vec<_> = (1..=20).map(|i| stored(i, vec![9; 1 << 20])).collect();
        entries.extend((21..=40).map(|i| stored(i, b"v".to_vec())));
        entries.extend((41..=60).map(|i| stored(i, vec![9; 1 << 20])));
        raw.append(&entries).unwrap();
        let size = |i: u64| entries[(i - 1) as usize].data.len();
        for start in [1u64, 7, 19, 37, 40] {
            let got = log.limited_get_log_entries(start, 61).await.unwrap();
            let indices: Vec<u64> = got.iter().map(|e| e.log_id.index).collect();
            let want: Vec<u64> = (start..start + got.len() as u64).collect();
            assert_eq!(indices, want, "from {start}: contiguous from the start");
            let all_but_last: usize = indices[..indices.len() - 1].iter().map(|&i| size(i)).sum();
            assert!(
                all_but_last < REPLICATION_READ_BYTES_MAX,
                "from {start}: {} entries, {all_but_last} bytes before the last",
                indices.len()
            );
            assert!(
                all_but_last + size(*indices.last().unwrap()) >= REPLICATION_READ_BYTES_MAX
                    || *indices.last().unwrap() == 60
            );
        }
        let small = log.limited_get_log_entries(21, 41).await.unwrap();
        assert_eq!(small.len(), 20, "small entries come whole");
        let one = log.limited_get_log_entries(40, 41).await.unwrap();
        assert_eq!(one.len(), 1);
    });
}
