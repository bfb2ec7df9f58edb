//! Membership through the client: one node initialized alone, two learners added (from a
//! snapshot, the leader's log being purged) and promoted to voters, then one voter
//! removed; put, get, delete and scan along the way, and every remaining node's file
//! holds the data afterwards.

use capsuledb::Database;
use capsuledb::raftlog::openraft::StateMachine;
use raft_node::client::Client;
use raft_node::cluster::LocalCluster;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_grows_to_three_then_loses_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::new(env!("CARGO_BIN_EXE_raft-node"), dir.path());
    let a1 = cluster.add(1).unwrap();
    let a2 = cluster.add(2).unwrap();
    let a3 = cluster.add(3).unwrap();
    cluster
        .set_init(1, BTreeMap::from([(1, a1.clone())]))
        .unwrap();
    // Node 1 snapshots every 5 entries and keeps no log behind: by the time the
    // learners join, its log no longer starts at the beginning, so they get a snapshot.
    let args = ["--snapshot-every", "5", "--keep-logs", "0"];
    cluster.set_serve_args(1, &args).unwrap();
    cluster.start(1).unwrap();
    assert_eq!(cluster.wait_leader(WAIT).await.unwrap(), 1);

    let mut client = Client::new([a1.clone()]);
    assert_eq!(client.put(b"a", b"1").await.unwrap(), None);
    assert_eq!(client.put(b"a", b"2").await.unwrap(), Some(b"1".to_vec()));
    client.put(b"b", b"x").await.unwrap();
    for i in 0..8 {
        client.put(b"z", format!("{i}").as_bytes()).await.unwrap();
    }
    client.delete(b"z").await.unwrap();
    let end = std::time::Instant::now() + WAIT;
    while cluster.status(1).await.unwrap().purged.is_none() {
        assert!(
            std::time::Instant::now() < end,
            "node 1 never purged its log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Two more processes, not initialized: they join as learners, then vote.
    cluster.start(2).unwrap();
    cluster.start(3).unwrap();
    client.add_learner(2, &a2).await.unwrap();
    client.add_learner(3, &a3).await.unwrap();
    let s = cluster.status(1).await.unwrap();
    assert_eq!(s.voters, BTreeSet::from([1]));
    assert_eq!(s.nodes.len(), 3);
    // add_learner returns once the learner has the entry naming it; wait until both
    // have everything.
    let (_, index) = cluster.wait_converged(WAIT).await.unwrap();
    for id in [2, 3] {
        let s = cluster.status(id).await.unwrap();
        assert_eq!(s.last_applied, Some(index));
        assert!(s.snapshots_installed >= 1, "node {id}: {s:?}");
    }
    client
        .change_membership(BTreeSet::from([1, 2, 3]), false)
        .await
        .unwrap();
    // The change returns once a quorum has it: a follower may learn it a little later.
    let end = std::time::Instant::now() + WAIT;
    for id in 1..=3 {
        loop {
            let s = cluster.status(id).await.unwrap();
            if s.voters == BTreeSet::from([1, 2, 3]) {
                break;
            }
            assert!(std::time::Instant::now() < end, "node {id}: {s:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // Any node's address works: followers point the client at the leader.
    let mut via_follower = Client::new([a3.clone()]);
    via_follower.put(b"c", b"3").await.unwrap();
    // Its status is the first address's, not the leader's the write was sent on to
    // (whose connection the client kept).
    assert_eq!(via_follower.status().await.unwrap().id, 3);
    assert_eq!(via_follower.get(b"a").await.unwrap(), Some(b"2".to_vec()));
    assert_eq!(
        via_follower.delete(b"b").await.unwrap(),
        Some(b"x".to_vec())
    );
    assert_eq!(via_follower.get(b"b").await.unwrap(), None);
    via_follower.put(b"d", b"4").await.unwrap();
    assert_eq!(
        via_follower
            .scan(Some(b"b"), Some(b"d"), 100)
            .await
            .unwrap(),
        vec![kv("c", "3")]
    );
    assert_eq!(
        via_follower.scan(None, None, 2).await.unwrap(),
        vec![kv("a", "2"), kv("c", "3")]
    );

    // Each linearizable read has the leader confirm its leadership with a heartbeat to
    // every voter, on a stream openraft opens for that read: each one connected anew
    // (two connections a read). Idle connections are kept for the next stream.
    let accepted = |s: raft_node::proto::Status| s.connections_accepted;
    let before =
        accepted(cluster.status(2).await.unwrap()) + accepted(cluster.status(3).await.unwrap());
    for _ in 0..200 {
        assert_eq!(client.get(b"a").await.unwrap(), Some(b"2".to_vec()));
    }
    let after =
        accepted(cluster.status(2).await.unwrap()) + accepted(cluster.status(3).await.unwrap());
    assert!(
        after - before < 100,
        "{} connections accepted by the followers for 200 reads",
        after - before
    );

    // Remove node 3 from the cluster entirely.
    client
        .change_membership(BTreeSet::from([1, 2]), false)
        .await
        .unwrap();
    let s = cluster.status(1).await.unwrap();
    assert_eq!(s.voters, BTreeSet::from([1, 2]));
    assert_eq!(
        s.nodes.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2])
    );
    client.put(b"e", b"5").await.unwrap();
    cluster.stop(3, WAIT).await.unwrap();
    // Two voters left: both are needed, and both are there.
    client.put(b"f", b"6").await.unwrap();
    let (leader, _) = cluster.wait_converged(WAIT).await.unwrap();
    assert!(leader == 1 || leader == 2);
    cluster.stop_all(WAIT).await.unwrap();

    let want = vec![
        kv("a", "2"),
        kv("c", "3"),
        kv("d", "4"),
        kv("e", "5"),
        kv("f", "6"),
    ];
    for id in [1, 2] {
        let db = Database::open(cluster.db_path(id).unwrap()).unwrap();
        let report = db.check_integrity().unwrap();
        assert!(report.is_ok(), "node {id}: {:?}", report.problems);
        assert_eq!(
            StateMachine::open(&db).unwrap().pairs().unwrap(),
            want,
            "node {id}"
        );
    }
    // The removed node's file is sound and has nothing written after it stopped.
    let db = Database::open(cluster.db_path(3).unwrap()).unwrap();
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "removed node: {:?}", report.problems);
    let pairs = StateMachine::open(&db).unwrap().pairs().unwrap();
    assert!(!pairs.contains(&kv("f", "6")));
}
