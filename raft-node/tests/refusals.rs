//! What one request or frame must not do to a node: a write whose key is over
//! capsuledb's key limit used to reach every log, fail every state machine's apply and
//! stop every node, again at each restart; a value whose JSON entry is over the value
//! limit stopped the leader (its log store could not store it); a snapshot chunk naming
//! a far offset made the node allocate that much; a 17 MB node address in `AddLearner`
//! stopped the leader (its membership entry could not be stored); a scan whose reply
//! was over the frame limit never came back. Each is refused now, as a request that
//! did nothing or a dropped connection, or answered in parts, and the node goes on
//! serving.

use openraft::raft::InstallSnapshotRequest;
use openraft::{CommittedLeaderId, LogId, SnapshotMeta, StoredMembership, Vote};
use raft_node::client::{Client, ClientError};
use raft_node::cluster::LocalCluster;
use raft_node::proto::{Reply, Rpc, read_frame, write_frame};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(60);

/// A cluster of one node, led, with `a` = `1` written: the cluster, its address and a
/// client.
async fn one_node(dir: &std::path::Path) -> (LocalCluster, String, Client) {
    let mut cluster = LocalCluster::new(env!("CARGO_BIN_EXE_raft-node"), dir);
    let a1 = cluster.add(1).unwrap();
    cluster
        .set_init(1, BTreeMap::from([(1, a1.clone())]))
        .unwrap();
    cluster.start(1).unwrap();
    cluster.wait_leader(WAIT).await.unwrap();
    let mut client = Client::new([a1.clone()]);
    client.put(b"a", b"1").await.unwrap();
    (cluster, a1, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_writes_and_a_far_snapshot_chunk_do_not_stop_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, a1, mut client) = one_node(dir.path()).await;

    let key = vec![b'k'; capsuledb::MAX_KEY_LEN + 1];
    let e = client.put(&key, b"v").await.unwrap_err();
    assert!(!e.may_have_applied(), "{e}");
    let e = client.delete(&key).await.unwrap_err();
    assert!(!e.may_have_applied(), "{e}");
    // 5 MiB of 255s: 20 MiB of JSON, over one value.
    let e = client.put(b"v", &vec![255u8; 5 << 20]).await.unwrap_err();
    assert!(!e.may_have_applied(), "{e}");
    // 17 MiB of 255s: 68 MiB of JSON, over a frame, never sent (it was reported sent
    // with its outcome unknown).
    let e = client.put(b"v", &vec![255u8; 17 << 20]).await.unwrap_err();
    assert!(!e.may_have_applied(), "{e}");
    assert_eq!(client.put(b"a", b"2").await.unwrap(), Some(b"1".to_vec()));

    // A snapshot chunk at offset 0, then one of the same snapshot 16 TiB further on.
    let mut stream = TcpStream::connect(&a1).await.unwrap();
    let chunk = |offset: u64| {
        Rpc::InstallSnapshot(InstallSnapshotRequest {
            vote: Vote::new_committed(1_000, 9),
            meta: SnapshotMeta {
                last_log_id: Some(LogId::new(CommittedLeaderId::new(1_000, 9), 1_000_000)),
                last_membership: StoredMembership::default(),
                snapshot_id: "far".into(),
            },
            offset,
            data: vec![0],
            done: false,
        })
    };
    write_frame(&mut stream, &chunk(0)).await.unwrap();
    let _: Reply = read_frame(&mut stream).await.unwrap();
    write_frame(&mut stream, &chunk(1 << 44)).await.unwrap();
    let dropped = read_frame::<_, Reply>(&mut stream).await;
    assert!(dropped.is_err(), "the far chunk was answered: {dropped:?}");

    // The node still serves (it follows the stranger's term until it elects itself
    // again) and starts again.
    cluster.wait_leader(WAIT).await.unwrap();
    assert_eq!(client.put(b"a", b"3").await.unwrap(), Some(b"2".to_vec()));
    cluster.stop(1, WAIT).await.unwrap();
    cluster.start(1).unwrap();
    cluster.wait_leader(WAIT).await.unwrap();
    assert_eq!(client.get(b"a").await.unwrap(), Some(b"3".to_vec()));

    // A node address over the limit is refused, and did nothing (a 17 MB one stopped the
    // leader: the membership entry it made could not be stored).
    let long = "a".repeat(raft_node::server::NODE_ADDR_BYTES_MAX + 1);
    let e = client.add_learner(2, &long).await.unwrap_err();
    assert!(!e.may_have_applied(), "{e}");
    let mut members = BTreeMap::from([(1, a1.clone())]);
    members.insert(2, long);
    let e = client.init(members).await.unwrap_err();
    assert!(!e.may_have_applied(), "{e}");
    assert_eq!(client.get(b"a").await.unwrap(), Some(b"3".to_vec()));

    // Eight values of 3 MiB of 255s: 96 MiB of JSON in one scan reply, over the frame
    // limit (the connection dropped, and the client retried until its deadline). A
    // reply stops at about 8 MiB of keys and values; the scan goes on after its last key.
    let big = vec![255u8; 3 << 20];
    for i in 0..8u8 {
        client.put(&[b'z', i], &big).await.unwrap();
    }
    let mut seen = 0;
    let mut from = vec![b'z'];
    loop {
        let pairs = client.scan(Some(&from), None, 100).await.unwrap();
        let Some((last, _)) = pairs.last() else { break };
        assert!(pairs.len() < 8, "{} pairs in one reply", pairs.len());
        assert!(pairs.iter().all(|(_, v)| *v == big));
        seen += pairs.len();
        from = [last.as_slice(), &[0]].concat();
    }
    assert_eq!(seen, 8);
    cluster.stop_all(WAIT).await.unwrap();
}

/// Frames no correct peer sends, each of which stopped the node's Raft (openraft takes a
/// storage error as fatal): an append of an entry the log cannot store (its JSON over
/// one value); a snapshot whose last log id has a term above its vote's (installed, the
/// log refused every later entry of a lower term, at each restart too); the last chunk
/// of a snapshot that does not decode. Each connection is dropped unanswered, and the
/// node goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_appends_and_snapshots_do_not_stop_a_node() {
    use capsuledb::raftlog::openraft::Request;
    use openraft::raft::AppendEntriesRequest;
    use openraft::{Entry, EntryPayload};
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, a1, mut client) = one_node(dir.path()).await;
    let refused = |rpc: Rpc| {
        let a1 = a1.clone();
        async move {
            let mut stream = TcpStream::connect(&a1).await.unwrap();
            write_frame(&mut stream, &rpc).await.unwrap();
            let answer = read_frame::<_, Reply>(&mut stream).await;
            assert!(answer.is_err(), "answered: {answer:?}");
        }
    };

    // The log so far: the membership at 0, the leader's blank entry and the put (term
    // 1). Entry 3, 9 MiB of 255s: 36 MiB of JSON, within a frame, over one value.
    let leader = |term, node| CommittedLeaderId::new(term, node);
    refused(Rpc::AppendEntries(AppendEntriesRequest {
        vote: Vote::new_committed(100, 9),
        prev_log_id: Some(LogId::new(leader(1, 1), 2)),
        entries: vec![Entry {
            log_id: LogId::new(leader(100, 9), 3),
            payload: EntryPayload::Normal(Request::Set {
                key: b"big".to_vec(),
                value: vec![255u8; 9 << 20],
            }),
        }],
        leader_commit: None,
    }))
    .await;
    cluster.wait_leader(WAIT).await.unwrap();
    assert_eq!(client.put(b"a", b"2").await.unwrap(), Some(b"1".to_vec()));

    let snapshot = |vote_term, log_term, data: Vec<u8>| {
        let last_log_id = Some(LogId::new(leader(log_term, 9), 1_000));
        Rpc::InstallSnapshot(InstallSnapshotRequest {
            vote: Vote::new_committed(vote_term, 9),
            meta: SnapshotMeta {
                last_log_id,
                last_membership: StoredMembership::default(),
                snapshot_id: format!("forged-{vote_term}"),
            },
            offset: 0,
            data,
            done: true,
        })
    };
    let installable = |log_term| {
        serde_json::to_vec(&serde_json::json!({
            "last_applied": Some(LogId::new(leader(log_term, 9), 1_000)),
            "membership": StoredMembership::<u64, openraft::BasicNode>::default(),
            "pairs": [],
        }))
        .unwrap()
    };
    refused(snapshot(1_000, 9_000, installable(9_000))).await;
    cluster.wait_leader(WAIT).await.unwrap();
    assert_eq!(client.put(b"a", b"3").await.unwrap(), Some(b"2".to_vec()));
    refused(snapshot(10_000, 10_000, b"x".to_vec())).await;
    cluster.wait_leader(WAIT).await.unwrap();
    assert_eq!(client.put(b"a", b"4").await.unwrap(), Some(b"3".to_vec()));

    // A snapshot whose last chunk, at offset 0 of the same snapshot, holds a whole
    // snapshot shorter than the first chunk: openraft writes it over its buffer and
    // keeps the first chunk's tail, which does not decode. (The node's check read the
    // last chunk alone, and passed it.)
    let chunk = |offset, data: Vec<u8>, done| {
        Rpc::InstallSnapshot(InstallSnapshotRequest {
            vote: Vote::new_committed(20_000, 9),
            meta: SnapshotMeta {
                last_log_id: Some(LogId::new(leader(20_000, 9), 1_000)),
                last_membership: StoredMembership::default(),
                snapshot_id: "overwritten".into(),
            },
            offset,
            data,
            done,
        })
    };
    let mut stream = TcpStream::connect(&a1).await.unwrap();
    write_frame(&mut stream, &chunk(0, vec![b'x'; 1000], false))
        .await
        .unwrap();
    let first: Reply = read_frame(&mut stream).await.unwrap();
    assert!(matches!(first, Reply::InstallSnapshot(Ok(_))), "{first:?}");
    refused(chunk(0, installable(20_000), true)).await;
    cluster.wait_leader(WAIT).await.unwrap();
    assert_eq!(client.put(b"a", b"5").await.unwrap(), Some(b"4".to_vec()));

    // And it starts again with everything.
    cluster.stop(1, WAIT).await.unwrap();
    cluster.start(1).unwrap();
    cluster.wait_leader(WAIT).await.unwrap();
    assert_eq!(client.get(b"a").await.unwrap(), Some(b"5".to_vec()));
    cluster.stop_all(WAIT).await.unwrap();
}

/// A learner that cannot be reached. The `AddLearner` used openraft's blocking wait,
/// which counts a learner within 5,000 entries of the leader's last as caught up and has
/// no bound: on this short log it answered done at once for a learner that had received
/// nothing, and on a log 5,000 entries longer it waited for ever (the client timed out
/// not knowing whether the learner was added, the node kept the request's task). It is
/// answered within `LEARNER_CATCH_UP_MAX`, saying the learner has not caught up, and the
/// learner stays in the membership.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_learner_is_answered_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, _a1, client) = one_node(dir.path()).await;
    // Port 1 on the loopback: nothing listens there, every connection is refused.
    let mut patient = client.with_deadline(Duration::from_secs(60));
    let e = patient.add_learner(2, "127.0.0.1:1").await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Failed(m) if m.contains("not caught up")),
        "{e}"
    );
    let s = cluster.status(1).await.unwrap();
    assert_eq!(s.nodes.len(), 2, "{s:?}");
    // Its address cannot be changed (openraft keeps a member's): refused at once, where
    // the request waited 8 s and blamed the new address.
    let e = patient.add_learner(2, "127.0.0.1:2").await.unwrap_err();
    assert!(
        matches!(&e, ClientError::NotApplied(m) if m.contains("already in the membership")),
        "{e}"
    );
    assert_eq!(patient.put(b"a", b"2").await.unwrap(), Some(b"1".to_vec()));
    cluster.stop_all(WAIT).await.unwrap();
}
