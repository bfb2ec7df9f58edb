//! Seeded random Raft and client frames sent to a one-node cluster, as an unauthenticated
//! stranger on its port could send them: votes, appends (of blank, normal and membership
//! entries, at any index and term), snapshot chunks (any offset, any bytes, valid or not)
//! and client requests. The port trusts its peers by design (a forged leader may
//! replace the log), so what is asserted is what no frame may do: stop the node's Raft,
//! keep it from serving again, keep it from starting again, or damage its file. Each
//! frame goes on its own connection; an answer or a dropped connection are both fine.

use capsuledb::raftlog::openraft::Request;
use capsuledb::rng::Rng;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta,
    StoredMembership, Vote,
};
use raft_node::client::Client;
use raft_node::cluster::LocalCluster;
use raft_node::proto::{ClientRequest, Reply, Rpc, read_frame, write_frame};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(60);

/// Frames sent; `CAPSULEDB_RANDOM_FRAMES` for more.
fn frames() -> u64 {
    std::env::var("CAPSULEDB_RANDOM_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// A small number most of the time, sometimes a large one.
fn num(rng: &mut Rng, small: u64) -> u64 {
    match rng.below(10) {
        0 => 1 << (20 + rng.below(20)),
        _ => rng.below(small),
    }
}

fn node_id(rng: &mut Rng) -> u64 {
    [0, 1, 2, 9][rng.below(4) as usize]
}

fn bytes(rng: &mut Rng, max: u64) -> Vec<u8> {
    (0..rng.below(max + 1))
        .map(|_| rng.next_u64() as u8)
        .collect()
}

fn log_id(rng: &mut Rng, term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, node_id(rng)), index)
}

/// A membership whose one voter is node 1 (the node the test runs), sometimes with node
/// 2 as a learner: a forged membership whose voters the node cannot reach would leave
/// it no quorum to elect itself with, which a stranger on the port may do by design, and
/// the test could not tell that from a stop.
fn membership(rng: &mut Rng, addr: &str) -> Membership<u64, BasicNode> {
    let mut nodes = BTreeMap::from([(1u64, BasicNode::new(addr))]);
    if rng.chance(1, 3) {
        nodes.insert(2, BasicNode::new("127.0.0.1:1"));
    }
    Membership::new(vec![BTreeSet::from([1u64])], nodes)
}

fn vote(rng: &mut Rng) -> Vote<u64> {
    let term = num(rng, 8);
    if rng.chance(1, 2) {
        Vote::new_committed(term, node_id(rng))
    } else {
        Vote::new(term, node_id(rng))
    }
}

fn payload(rng: &mut Rng, addr: &str) -> EntryPayload<capsuledb::raftlog::openraft::TypeConfig> {
    match rng.below(6) {
        0 => EntryPayload::Blank,
        1 => EntryPayload::Membership(membership(rng, addr)),
        2 => EntryPayload::Normal(Request::Delete { key: bytes(rng, 8) }),
        _ => EntryPayload::Normal(Request::Set {
            key: bytes(rng, 8),
            value: bytes(rng, 64),
        }),
    }
}

fn random_rpc(rng: &mut Rng, addr: &str) -> Rpc {
    match rng.below(8) {
        0 | 1 => Rpc::Vote(VoteRequest {
            vote: vote(rng),
            last_log_id: rng.chance(2, 3).then(|| {
                let (t, i) = (num(rng, 8), num(rng, 16));
                log_id(rng, t, i)
            }),
        }),
        2..=4 => {
            let vote = vote(rng);
            let term = vote.leader_id().term;
            let prev_index = num(rng, 12);
            let prev_term = rng.below(term + 1);
            let prev_log_id = rng.chance(4, 5).then(|| log_id(rng, prev_term, prev_index));
            let first = prev_log_id.map_or(0, |p| p.index + 1);
            let entries = (0..rng.below(4))
                .map(|i| {
                    // Mostly well formed (contiguous, terms not above the vote's), so
                    // the node takes some of them; now and then not.
                    let index = if rng.chance(1, 8) {
                        num(rng, 20)
                    } else {
                        first + i
                    };
                    let t = if rng.chance(1, 8) { num(rng, 10) } else { term };
                    Entry {
                        log_id: log_id(rng, t.max(prev_term), index),
                        payload: payload(rng, addr),
                    }
                })
                .collect();
            Rpc::AppendEntries(AppendEntriesRequest {
                vote,
                prev_log_id,
                entries,
                leader_commit: rng.chance(1, 2).then(|| {
                    let i = num(rng, 16);
                    log_id(rng, term, i)
                }),
            })
        }
        5 | 6 => {
            let vote = vote(rng);
            let term = vote.leader_id().term;
            let last = rng.chance(4, 5).then(|| {
                let (i, t) = (num(rng, 40), rng.below(term + 1));
                log_id(rng, t, i)
            });
            let data = match rng.below(3) {
                0 => bytes(rng, 200),
                _ => serde_json::to_vec(&serde_json::json!({
                    "last_applied": last,
                    "membership": StoredMembership::<u64, BasicNode>::new(
                        None,
                        membership(rng, addr)
                    ),
                    "pairs": (0..rng.below(4))
                        .map(|_| (bytes(rng, 6), bytes(rng, 20)))
                        .collect::<Vec<_>>(),
                }))
                .unwrap(),
            };
            Rpc::InstallSnapshot(InstallSnapshotRequest {
                vote,
                meta: SnapshotMeta {
                    last_log_id: last,
                    last_membership: StoredMembership::new(None, membership(rng, addr)),
                    snapshot_id: format!("s{}", rng.below(4)),
                },
                offset: if rng.chance(2, 3) { 0 } else { num(rng, 300) },
                data,
                done: rng.chance(2, 3),
            })
        }
        _ => Rpc::Client(match rng.below(4) {
            0 => ClientRequest::Get { key: bytes(rng, 8) },
            1 => ClientRequest::Scan {
                from: rng.chance(1, 2).then(|| bytes(rng, 4)),
                to: rng.chance(1, 2).then(|| bytes(rng, 4)),
                limit: rng.below(20) as u32,
            },
            2 => ClientRequest::Delete { key: bytes(rng, 8) },
            _ => ClientRequest::Put {
                key: bytes(rng, 8),
                value: bytes(rng, 32),
            },
        }),
    }
}

/// Sends `rpc` on a connection of its own and waits a moment for its answer, if any.
async fn send(addr: &str, rpc: &Rpc) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    if write_frame(&mut stream, rpc).await.is_ok() {
        let _ =
            tokio::time::timeout(Duration::from_secs(5), read_frame::<_, Reply>(&mut stream)).await;
    }
}

/// The node takes a write of `key` and reads it back within [`WAIT`]: a write whose
/// outcome is unknown (the node lost its leadership to a stranger's term meanwhile) is
/// tried again, as the node elects itself again.
async fn serves(client: &mut Client, key: &str, dir: &tempfile::TempDir) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match client.put(key.as_bytes(), b"v").await {
            Ok(_) => break,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                let log = std::fs::read_to_string(dir.path().join("node1.log")).unwrap_or_default();
                panic!("{key}: {e}; the node's log:\n{log}");
            }
        }
    }
    assert_eq!(
        client.get(key.as_bytes()).await.unwrap(),
        Some(b"v".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_frames_do_not_stop_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::new(env!("CARGO_BIN_EXE_raft-node"), dir.path());
    let addr = cluster.add(1).unwrap();
    cluster
        .set_init(1, BTreeMap::from([(1, addr.clone())]))
        .unwrap();
    cluster.start(1).unwrap();
    cluster.wait_leader(WAIT).await.unwrap();
    let mut client = Client::new([addr.clone()]).with_deadline(Duration::from_secs(10));
    client.put(b"before", b"1").await.unwrap();
    let mut rng = Rng::new(0x5eed_f4a3);
    let mut recent = Vec::new();
    for i in 0..frames() {
        let rpc = random_rpc(&mut rng, &addr);
        send(&addr, &rpc).await;
        // A node whose Raft stopped exits: said at once, with the frames before.
        recent.push(format!("{i}: {rpc:?}"));
        if recent.len() > 6 {
            recent.remove(0);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        if TcpStream::connect(&addr).await.is_err() {
            let log = std::fs::read_to_string(dir.path().join("node1.log")).unwrap_or_default();
            let tail: Vec<_> = log.lines().take(6).collect();
            panic!(
                "frame {i} stopped the node:\n{}\nits log:\n{}",
                recent.join("\n"),
                tail.join("\n")
            );
        }
        // Now and then the node must still serve: it elects itself again after a
        // stranger's term, and answers a write and a read.
        if i % 50 == 49 {
            serves(&mut client, &format!("k{i}"), &dir).await;
        }
    }
    serves(&mut client, "after", &dir).await;
    // It starts again, and serves.
    cluster.stop(1, WAIT).await.unwrap();
    cluster.start(1).unwrap();
    cluster.wait_leader(WAIT).await.unwrap();
    assert_eq!(client.get(b"after").await.unwrap(), Some(b"v".to_vec()));
    cluster.stop_all(WAIT).await.unwrap();
    let db = capsuledb::Database::open(cluster.db_path(1).unwrap()).unwrap();
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
