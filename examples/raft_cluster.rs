//! A three-node Raft cluster in one process: openraft 0.9 replicating a key-value state
//! machine, each node keeping its log and state machine in its own capsuledb file.
//! The network is in-process: an RPC is a direct call on the target node's `Raft`.
//!
//! ```sh
//! cargo run --release --features openraft --example raft_cluster
//! ```
//!
//! It starts the nodes, initializes the cluster on node 1, waits for a leader, writes
//! through the leader, waits until every node has applied the writes, reads the same
//! data from every node's own database, then shuts down and checks it survives a
//! reopen of one node's files.

use capsuledb::Database;
use capsuledb::raftlog::openraft::{LogStore, Request, StateMachine, TypeConfig};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type NodeId = u64;

/// Every node's `Raft` handle, by id: the "network".
#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>>,
}

impl Router {
    fn get(&self, id: NodeId) -> Result<Raft<TypeConfig>, NetworkError> {
        let nodes = self
            .nodes
            .lock()
            .map_err(|_| net_err("router lock poisoned"))?;
        nodes
            .get(&id)
            .cloned()
            .ok_or_else(|| net_err(&format!("node {id} is not running")))
    }
}

fn net_err(what: &str) -> NetworkError {
    NetworkError::new(&std::io::Error::other(what.to_string()))
}

/// One node's connection to `target`.
struct Connection {
    router: Router,
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.get(self.target).map_err(RPCError::Network)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self.router.get(self.target).map_err(RPCError::Network)?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.get(self.target).map_err(RPCError::Network)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

struct Node {
    id: NodeId,
    raft: Raft<TypeConfig>,
    state_machine: StateMachine,
    db: Database,
}

async fn start_node(
    id: NodeId,
    dir: &std::path::Path,
    config: Arc<Config>,
    router: &Router,
) -> Result<Node, Box<dyn std::error::Error>> {
    let db = Database::open(dir.join(format!("node{id}.db")))?;
    let log_store: LogStore<TypeConfig> = LogStore::open(&db)?;
    let state_machine = StateMachine::open(&db)?;
    let raft = Raft::new(id, config, router.clone(), log_store, state_machine.clone()).await?;
    router
        .nodes
        .lock()
        .map_err(|_| "router lock poisoned")?
        .insert(id, raft.clone());
    Ok(Node {
        id,
        raft,
        state_machine,
        db,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Arc::new(
        Config {
            cluster_name: "capsuledb-example".into(),
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            ..Default::default()
        }
        .validate()?,
    );
    let router = Router::default();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start_node(id, dir.path(), Arc::clone(&config), &router).await?);
        println!(
            "node {id}: started on {}",
            dir.path().join(format!("node{id}.db")).display()
        );
    }

    let members: BTreeMap<NodeId, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("in-process-{id}"))))
        .collect();
    nodes[0].raft.initialize(members).await?;
    println!("node 1: initialized the cluster {{1, 2, 3}}");

    let timeout = Some(Duration::from_secs(20));
    let metrics = nodes[0]
        .raft
        .wait(timeout)
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await?;
    let leader_id = metrics.current_leader.ok_or("no leader")?;
    let leader = &nodes
        .iter()
        .find(|n| n.id == leader_id)
        .ok_or("leader is not a known node")?
        .raft;
    println!("leader: node {leader_id} (term {})", metrics.current_term);

    let writes: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("key-{i}"), format!("value-{i}")))
        .chain([("key-1".to_string(), "value-1-updated".to_string())])
        .collect();
    let mut last_index = 0;
    for (k, v) in &writes {
        let request = Request::Set {
            key: k.clone().into_bytes(),
            value: v.clone().into_bytes(),
        };
        // Refused here, not by the log store: openraft stops a leader whose log store
        // cannot store an entry (JSON over one value); a key over the limit would be
        // logged and applied as nothing.
        request.check()?;
        let resp = leader.client_write(request).await?;
        last_index = resp.log_id.index;
        println!(
            "write via leader: {k} = {v} (log index {}, previous {:?})",
            resp.log_id.index,
            resp.data
                .previous
                .map(|p| String::from_utf8_lossy(&p).into_owned())
        );
    }
    let request = Request::Delete {
        key: b"key-5".to_vec(),
    };
    request.check()?;
    let resp = leader.client_write(request).await?;
    last_index = last_index.max(resp.log_id.index);
    println!(
        "write via leader: delete key-5 (log index {})",
        resp.log_id.index
    );

    let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (k, v) in &writes {
        expected.insert(k.clone().into_bytes(), v.clone().into_bytes());
    }
    expected.remove(&b"key-5"[..]);
    let expected: Vec<(Vec<u8>, Vec<u8>)> = expected.into_iter().collect();

    for node in &nodes {
        node.raft
            .wait(timeout)
            .applied_index_at_least(Some(last_index), "all writes applied")
            .await?;
        let pairs = node.state_machine.pairs()?;
        let shown: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
            .collect();
        println!(
            "node {} reads from its own database: {}",
            node.id,
            shown.join(", ")
        );
        if pairs != expected {
            return Err(format!("node {} diverges: {pairs:?}", node.id).into());
        }
    }
    println!("all 3 nodes hold the same {} keys", expected.len());

    // Stop every node, then reopen node 2's files: the log and the state machine are
    // still there.
    for node in &nodes {
        node.raft.shutdown().await?;
    }
    router
        .nodes
        .lock()
        .map_err(|_| "router lock poisoned")?
        .clear();
    let reopened_path = nodes[1].db.path().map(|p| p.to_path_buf());
    drop(nodes);
    let path = reopened_path.ok_or("node 2 has no path")?;
    let db = Database::open(&path)?;
    let log: LogStore<TypeConfig> = LogStore::open(&db)?;
    let sm = StateMachine::open(&db)?;
    println!(
        "node 2 reopened: log holds entries {}..={:?}, key-1 = {:?}",
        log.raft_log().first_index(),
        log.raft_log().last_index(),
        sm.get(b"key-1")?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    );
    if sm.pairs()? != expected {
        return Err("node 2 lost data across the reopen".into());
    }
    println!("done");
    Ok(())
}
