//! One node: a capsuledb file holding the openraft log and key-value state machine
//! (`capsuledb::raftlog::openraft`), a `Raft`, and a TCP listener serving Raft's RPCs
//! and client requests on one port.

use crate::network::TcpNetwork;
use crate::proto::{
    CLIENT_WAIT_MAX, CONNECTION_IDLE_MAX, ClientOk, ClientReply, ClientRequest, NodeId,
    REPLY_WRITE_MAX, Reply, Rpc, SCAN_LIMIT_MAX, Status, read_frame, write_frame,
};
use capsuledb::Database;
use capsuledb::raftlog::ENTRY_PAYLOAD_MAX;
use capsuledb::raftlog::openraft::{LogStore, Request, StateMachine, TypeConfig};
use openraft::error::{ForwardToLeader, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest};
use openraft::{BasicNode, Config, Raft, RaftMetrics, SnapshotPolicy, TryAsRef};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The pause after a failed `accept` before the next.
const ACCEPT_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// The capsuledb table holding the state machine's data: `<log name>.sm`, see
/// `capsuledb::raftlog::openraft::StateMachine::open_named`.
const DATA_TABLE: &str = "raft.sm";

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (not 0).
    pub id: NodeId,
    /// `host:port` to listen on, and the address other nodes know it by.
    pub addr: String,
    /// The database file (created if missing).
    pub db: PathBuf,
    /// On a pristine node, initialize a cluster of these members (id to address).
    pub init: Option<BTreeMap<NodeId, String>>,
    /// Raft timing, in milliseconds.
    pub heartbeat_ms: u64,
    /// Lower bound of the election timeout, in milliseconds.
    pub election_min_ms: u64,
    /// Upper bound of the election timeout, in milliseconds.
    pub election_max_ms: u64,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_every: u64,
    /// Log entries kept after a snapshot covers them; a follower further behind is sent
    /// the snapshot.
    pub keep_logs: u64,
}

impl NodeConfig {
    /// A node with the default timing (heartbeat 150 ms, election 750–1500 ms) and
    /// openraft's default snapshot settings (every 5000 entries, 1000 kept after).
    pub fn new(id: NodeId, addr: impl Into<String>, db: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            addr: addr.into(),
            db: db.into(),
            init: None,
            heartbeat_ms: 150,
            election_min_ms: 750,
            election_max_ms: 1500,
            snapshot_every: 5000,
            keep_logs: 1000,
        }
    }
}

/// Why a node stopped or could not start.
#[derive(Debug)]
pub enum NodeError {
    /// The database failed.
    Database(capsuledb::Error),
    /// Binding or accepting failed.
    Io(std::io::Error),
    /// openraft refused the configuration or failed.
    Raft(String),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Database(e) => write!(f, "database: {e}"),
            NodeError::Io(e) => write!(f, "{e}"),
            NodeError::Raft(e) => write!(f, "raft: {e}"),
        }
    }
}

impl std::error::Error for NodeError {}

impl From<capsuledb::Error> for NodeError {
    fn from(e: capsuledb::Error) -> Self {
        NodeError::Database(e)
    }
}

impl From<std::io::Error> for NodeError {
    fn from(e: std::io::Error) -> Self {
        NodeError::Io(e)
    }
}

struct Node {
    /// This node's id.
    id: NodeId,
    raft: Raft<TypeConfig>,
    state_machine: StateMachine,
    db: Database,
    /// Set to `true` after answering a [`ClientRequest::Shutdown`].
    stop: watch::Sender<bool>,
    /// Snapshots received whole from a leader and handed to openraft since this process
    /// started (`Status::snapshots_installed`).
    snapshots_installed: AtomicU64,
    /// Connections accepted since this process started.
    connections_accepted: AtomicU64,
    /// The snapshot being received: its id and its bytes so far, as openraft's receiver
    /// holds them (a copy, checked before the last chunk goes to openraft).
    receiving: tokio::sync::Mutex<Option<(String, Vec<u8>)>>,
}

/// Most bytes of a snapshot received: its install is one transaction.
const SNAPSHOT_BYTES_MAX: u64 = capsuledb::MAX_TRANSACTION_BYTES as u64;

/// Longest node address accepted in a membership (`Init`, `AddLearner`). Every
/// membership entry carries every node's address, and an entry the log cannot store (one
/// value is at most 16 MiB) is an error openraft takes as fatal: a 17 MB address stopped
/// the leader, and every next leader it was sent to.
pub const NODE_ADDR_BYTES_MAX: usize = 1024;

/// Most nodes a membership may name (with [`NODE_ADDR_BYTES_MAX`], a membership entry
/// stays a few MiB).
pub const MEMBERSHIP_NODES_MAX: usize = 1024;

/// Most key and value bytes one scan reply carries: its JSON takes up to four bytes a
/// byte, and a reply over the frame limit could not be sent (the connection dropped,
/// the client retried the same scan until its deadline). A reply stops before the
/// entry that would pass it, but always holds the first.
pub const SCAN_REPLY_BYTES_MAX: usize = 8 << 20;

/// How long an `AddLearner` waits, once the membership naming the learner is committed,
/// for the leader to have replicated to it everything up to that entry. Less than the
/// client's default deadline (10 s), so a learner that cannot be reached (a wrong
/// address, a node not started) is answered clearly rather than timed out; openraft's
/// own blocking wait has no bound (its task stayed for ever, a leak per request).
pub const LEARNER_CATCH_UP_MAX: std::time::Duration = std::time::Duration::from_secs(8);

/// Why a membership of `nodes` nodes with these addresses is refused, if it is.
fn membership_refusal<'a>(
    nodes: usize,
    mut addrs: impl Iterator<Item = &'a String>,
) -> Option<String> {
    if nodes > MEMBERSHIP_NODES_MAX {
        return Some(format!(
            "a membership of {nodes} nodes is over the limit of {MEMBERSHIP_NODES_MAX}"
        ));
    }
    addrs.find(|a| a.len() > NODE_ADDR_BYTES_MAX).map(|a| {
        format!(
            "a node address of {} bytes is over the limit of {NODE_ADDR_BYTES_MAX}",
            a.len()
        )
    })
}

impl Node {
    /// Whether `r` names, at an index this node's state machine has applied, a log id
    /// of a later leader than the applied one's: no correct leader does (an applied
    /// entry is committed, the same in every log, and leaders only rise along a log).
    /// openraft takes such an id as matching (it counts every index up to its commit
    /// as present) and as what the follower accepted, and commits the smaller of it and
    /// the leader's commit: a commit *below* what it applied, which stopped the node
    /// (applying an empty range, it panicked).
    async fn contradicts_applied(&self, r: &AppendEntriesRequest<TypeConfig>) -> bool {
        use openraft::storage::RaftStateMachine;
        let Ok((Some(applied), _)) = self.state_machine.clone().applied_state().await else {
            return false;
        };
        r.prev_log_id
            .iter()
            .chain(r.entries.iter().map(|e| &e.log_id))
            .any(|id| id.index <= applied.index && id.leader_id > applied.leader_id)
    }

    /// Hands a snapshot chunk to openraft, or refuses it (`None`: the connection is
    /// dropped). A new snapshot starts at offset 0, and a chunk of the one being received
    /// starts at or before the end of its bytes so far (openraft resends a chunk whose
    /// answer was lost), ending within [`SNAPSHOT_BYTES_MAX`]: openraft's receiver writes
    /// a chunk at its offset into memory, so one frame naming a far offset would allocate
    /// that much. The last chunk must also complete a snapshot the state machine can
    /// install ([`StateMachine::check_snapshot_data`]): openraft takes a failed install
    /// as fatal. To check it, the node keeps a copy of what openraft's receiver holds:
    /// chunks go to openraft one at a time, and the copy takes a chunk as openraft does
    /// (written at its offset over a buffer kept for the same snapshot id, a new one for
    /// a new id), and only once openraft has taken it (not a chunk of a lower vote, which
    /// it ignores).
    async fn install_chunk(&self, r: InstallSnapshotRequest<TypeConfig>) -> Option<Reply> {
        let mut receiving = self.receiving.lock().await;
        let end = r.offset.checked_add(r.data.len() as u64)?;
        let same = receiving
            .as_ref()
            .is_some_and(|(id, _)| *id == r.meta.snapshot_id);
        let held = receiving.as_ref().map_or(0, |(_, b)| b.len() as u64);
        if end > SNAPSHOT_BYTES_MAX || r.offset > if same { held } else { 0 } {
            return None;
        }
        let (offset, end) = (r.offset as usize, end as usize);
        // The chunk applied to the copy, with what it overwrote kept to undo it.
        let mut fresh = Vec::new();
        let bytes = match receiving.as_mut() {
            Some((_, b)) if same => b,
            _ => &mut fresh,
        };
        let undo = (
            bytes.len(),
            bytes.get(offset..end.min(bytes.len())).map(<[u8]>::to_vec),
        );
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes.get_mut(offset..end)?.copy_from_slice(&r.data);
        let restore = |bytes: &mut Vec<u8>| {
            if let Some(old) = &undo.1
                && let Some(at) = bytes.get_mut(offset..offset + old.len())
            {
                at.copy_from_slice(old);
            }
            bytes.truncate(undo.0);
        };
        if r.done && StateMachine::check_snapshot_data(bytes).is_err() {
            restore(bytes);
            return None;
        }
        let (done, id, vote) = (r.done, r.meta.snapshot_id.clone(), r.vote);
        let result = self.raft.install_snapshot(r).await;
        let taken = result.as_ref().is_ok_and(|resp| vote >= resp.vote);
        match (taken, done) {
            (true, true) => {
                *receiving = None;
                self.snapshots_installed.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) if !same => *receiving = Some((id, fresh)),
            (true, false) => {}
            (false, _) if same => {
                if let Some((_, b)) = receiving.as_mut() {
                    restore(b);
                }
            }
            (false, _) => {}
        }
        Some(Reply::InstallSnapshot(result))
    }
}

/// Runs a node until `shutdown` completes or a client asks it to stop, then shuts Raft
/// down and closes the database.
pub async fn run(
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let raft_config = Config {
        cluster_name: "capsuledb-raft-node".into(),
        heartbeat_interval: config.heartbeat_ms,
        election_timeout_min: config.election_min_ms,
        election_timeout_max: config.election_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
        max_in_snapshot_log_to_keep: config.keep_logs,
        ..Default::default()
    }
    .validate()
    .map_err(|e| NodeError::Raft(e.to_string()))?;
    let db = Database::open(&config.db)?;
    let log_store: LogStore<TypeConfig> = LogStore::open(&db)?;
    let state_machine = StateMachine::open(&db)?;
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config),
        TcpNetwork::default(),
        log_store,
        state_machine.clone(),
    )
    .await
    .map_err(|e| NodeError::Raft(e.to_string()))?;
    let listener = TcpListener::bind(&config.addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("listen on {}: {e}", config.addr)))?;
    if let Some(members) = &config.init {
        if let Some(why) = membership_refusal(members.len(), members.values()) {
            return Err(NodeError::Raft(format!("initialize: {why}")));
        }
        init(&raft, members).await?;
    }
    eprintln!(
        "raft-node {}: serving {} on {}",
        config.id,
        config.db.display(),
        config.addr
    );

    let (stop, mut stopped) = watch::channel(false);
    let node = Arc::new(Node {
        id: config.id,
        raft: raft.clone(),
        state_machine,
        db: db.clone(),
        stop,
        snapshots_installed: AtomicU64::new(0),
        connections_accepted: AtomicU64::new(0),
        receiving: tokio::sync::Mutex::new(None),
    });
    tokio::pin!(shutdown);
    let raft_stopped = raft_stopped(raft.metrics());
    tokio::pin!(raft_stopped);
    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            _ = stopped.changed() => break Ok(()),
            // A fatal error stops the node's Raft for good: the process exits with it
            // instead of answering every request with a failure.
            why = &mut raft_stopped => break Err(NodeError::Raft(format!("raft stopped: {why}"))),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    node.connections_accepted.fetch_add(1, Ordering::Relaxed);
                    let node = Arc::clone(&node);
                    tokio::spawn(serve_connection(node, stream));
                }
                // A failed accept is one connection's (it failed before it was taken)
                // or the process out of descriptors for a moment: the node goes on
                // serving the connections it has, after a pause (it stopped, and the
                // clients moved to the next node, which could stop the same way).
                Err(e) => {
                    eprintln!("raft-node {}: accept failed ({e}); going on", config.id);
                    tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
                }
            },
        }
    };
    drop(listener);
    raft.shutdown()
        .await
        .map_err(|e| NodeError::Raft(format!("shutdown: {e}")))?;
    drop(node);
    eprintln!("raft-node {}: stopped", config.id);
    result
}

/// Waits until the Raft reports a fatal error or its metrics end; says which.
async fn raft_stopped(mut metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>) -> String {
    loop {
        if let Err(e) = &metrics.borrow_and_update().running_state {
            return e.to_string();
        }
        if metrics.changed().await.is_err() {
            return "its metrics ended".to_string();
        }
    }
}

/// Whether an append's entries follow its `prev_log_id` (when it has one) and each
/// other one index at a time, their terms never going down nor above the term of the
/// request's vote, and each membership they carry names a node for every voter.
/// openraft 0.9 checks the order only in debug builds; the log refuses an append out
/// of order with an error openraft takes as fatal, and an entry of a term above the
/// vote's leaves a log that refuses this node's own first entry as leader (a lower
/// term): one malformed message from the network would stop the node's Raft. A voter
/// without a node (which `Membership::new` never makes, but a decoded one can have)
/// panics openraft's core when this node campaigns or leads. An entry the log cannot
/// store (its JSON over one value, which a leader never sends: it checks each request
/// first) is an error openraft takes as fatal too.
fn append_well_formed(r: &AppendEntriesRequest<TypeConfig>) -> bool {
    let mut prev = r.prev_log_id;
    let vote_term = r.vote.leader_id().term;
    r.entries.iter().all(|e| {
        let id = e.log_id;
        // With no previous entry the append starts the log, at index 0.
        let follows = prev.map_or(id.index == 0, |p| {
            p.index.checked_add(1) == Some(id.index) && id.leader_id >= p.leader_id
        });
        prev = Some(id);
        let members_named = match &e.payload {
            openraft::EntryPayload::Membership(m) => voters_named(m),
            _ => true,
        };
        follows && id.leader_id.term <= vote_term && members_named && entry_fits(e)
    })
}

/// Whether the log can store entry `e`: its JSON within one entry's payload
/// ([`ENTRY_PAYLOAD_MAX`]). JSON takes at most four bytes a key or value byte, so most
/// entries pass on their lengths alone; the rest are counted.
fn entry_fits(e: &openraft::Entry<TypeConfig>) -> bool {
    if let openraft::EntryPayload::Normal(req) = &e.payload {
        let bytes = match req {
            Request::Set { key, value } => key.len() + value.len(),
            Request::Delete { key } => key.len(),
        };
        if bytes.saturating_mul(4).saturating_add(4096) <= ENTRY_PAYLOAD_MAX {
            return true;
        }
    }
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, e).is_ok() && count.0 <= ENTRY_PAYLOAD_MAX
}

/// Whether every voter of `m` (in every configuration of it) has a node.
fn voters_named(m: &openraft::Membership<NodeId, BasicNode>) -> bool {
    m.voter_ids().all(|id| m.get_node(&id).is_some())
}

/// Initializes the cluster with `members`, unless this node already belongs to one. Its
/// callers (`--init` at startup, a client's `Init`) refuse a membership over the limits
/// first ([`membership_refusal`]).
async fn init(
    raft: &Raft<TypeConfig>,
    members: &BTreeMap<NodeId, String>,
) -> Result<(), NodeError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    if initialized {
        return Ok(());
    }
    let nodes: BTreeMap<NodeId, BasicNode> = members
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr)))
        .collect();
    match raft.initialize(nodes).await {
        Ok(()) => Ok(()),
        // Another node with the same members got there first: the goal is reached.
        Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(NodeError::Raft(format!("initialize: {e}"))),
    }
}

async fn serve_connection(node: Arc<Node>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    loop {
        let rpc: Rpc =
            match tokio::time::timeout(CONNECTION_IDLE_MAX, read_frame(&mut stream)).await {
                Ok(Ok(rpc)) => rpc,
                // The peer hung up, sent garbage or went quiet: this connection is done.
                Ok(Err(_)) | Err(_) => return,
            };
        let stop_after = matches!(rpc, Rpc::Client(ClientRequest::Shutdown));
        let reply = match rpc {
            // No peer sends a vote naming this node: only this node's own Raft votes for
            // it, and a stranger's claim that it leads (a committed vote of this node's
            // id) had openraft take entries it never appended for committed, then panic
            // applying them.
            Rpc::AppendEntries(r) if r.vote.leader_id().node_id == node.id => return,
            Rpc::InstallSnapshot(r) if r.vote.leader_id().node_id == node.id => return,
            Rpc::Vote(r) if r.vote.leader_id().node_id == node.id => return,
            // A malformed append is garbage like a frame that does not parse.
            Rpc::AppendEntries(r)
                if !append_well_formed(&r) || node.contradicts_applied(&r).await =>
            {
                return;
            }
            Rpc::AppendEntries(r) => Reply::AppendEntries(node.raft.append_entries(r).await),
            // So is a snapshot chunk whose membership has a voter without a node, or
            // which claims a log id of a term above its vote's (installed, it left a log
            // refusing every later entry of a lower term, which openraft takes as fatal:
            // the node stopped at each restart), or one `install_chunk` refuses.
            Rpc::InstallSnapshot(r)
                if !voters_named(r.meta.last_membership.membership())
                    || r.meta
                        .last_log_id
                        .is_some_and(|l| l.leader_id.term > r.vote.leader_id().term) =>
            {
                return;
            }
            Rpc::InstallSnapshot(r) => match node.install_chunk(r).await {
                Some(reply) => reply,
                None => return,
            },
            Rpc::Vote(r) => Reply::Vote(node.raft.vote(r).await),
            Rpc::Client(r) => Reply::Client(handle_client(&node, r).await),
        };
        let written = tokio::time::timeout(REPLY_WRITE_MAX, write_frame(&mut stream, &reply)).await;
        if stop_after {
            // Answered first, so the client learns the stop was accepted.
            let _ = node.stop.send(true);
        }
        // A reply not taken within the bound: the client stopped reading.
        if !matches!(written, Ok(Ok(_))) {
            return;
        }
    }
}

/// `NotLeader` when `e` says so (the node did nothing), else `Failed`.
fn raft_failure<E>(e: RaftError<NodeId, E>) -> ClientReply
where
    E: std::error::Error + TryAsRef<ForwardToLeader<NodeId, BasicNode>>,
{
    match e.forward_to_leader::<BasicNode>() {
        Some(f) => ClientReply::NotLeader {
            leader_id: f.leader_id,
            leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()),
        },
        None => ClientReply::Failed(e.to_string()),
    }
}

/// [`raft_failure`] of a write (an entry appended to the log: a put or delete, a learner
/// added, a membership changed) begun when the node's leadership was `before`
/// ([`leadership`]). A node that led when the write went in and answers
/// `ForwardToLeader` lost its leadership with the entry in its log, which a later leader
/// may still commit (and a membership change is two entries, the first of which may be
/// committed already): its outcome is unknown, never "did nothing" (the client would
/// retry it as undone). The metrics may lag the node's own state (it may have just won
/// an election): a term that moved while the write was in flight, or a node leading by
/// the metrics before or after, counts as having led. Only a node that followed in one
/// term throughout refused it unwritten.
fn write_failure<E>(node: &Node, before: (bool, u64), e: RaftError<NodeId, E>) -> ClientReply
where
    E: std::error::Error + TryAsRef<ForwardToLeader<NodeId, BasicNode>>,
{
    let (led_before, term_before) = before;
    if e.forward_to_leader::<BasicNode>().is_some() {
        let (led_after, term_after) = leadership(node);
        if led_before || led_after || term_after != term_before {
            return ClientReply::Failed(format!(
                "leadership changed while the write was in flight, outcome unknown: {e}"
            ));
        }
    }
    raft_failure(e)
}

/// The answer to an `AddLearner` whose membership entry was committed at `index`: done
/// once the leader has replicated up to `index` to the learner, a failure (saying why) if
/// that takes over [`LEARNER_CATCH_UP_MAX`] (the learner stays in the membership), or
/// the learner is removed, this node stops leading or shuts down first.
async fn learner_caught_up(node: &Node, id: NodeId, index: u64) -> ClientReply {
    let member =
        |m: &RaftMetrics<NodeId, BasicNode>| m.membership_config.nodes().any(|(n, _)| *n == id);
    let settled = node
        .raft
        .wait(Some(LEARNER_CATCH_UP_MAX))
        .metrics(
            |m| {
                let matched = m.replication.as_ref().and_then(|r| r.get(&id).cloned());
                m.current_leader != Some(m.id)
                    || !member(m)
                    || matched.flatten().is_some_and(|l| l.index >= index)
            },
            "learner caught up",
        )
        .await;
    match settled {
        Ok(m) if !member(&m) => ClientReply::Failed(format!(
            "learner {id} was added at log index {index}, and removed from the membership \
                 before it caught up"
        )),
        Ok(m) if m.current_leader == Some(m.id) => ClientReply::Ok(ClientOk::Written {
            previous: None,
            index,
        }),
        Ok(_) => ClientReply::Failed(format!(
            "learner {id} was added at log index {index}, but this node stopped leading \
             before the learner caught up"
        )),
        Err(openraft::metrics::WaitError::ShuttingDown) => ClientReply::Failed(format!(
            "learner {id} was added at log index {index}, but this node is shutting down"
        )),
        Err(_) => ClientReply::Failed(format!(
            "learner {id} was added at log index {index}, but has not caught up within {} s \
             (is its address reachable and its node started?); it stays in the membership",
            LEARNER_CATCH_UP_MAX.as_secs()
        )),
    }
}

/// Whether the node leads by its metrics, and its term.
fn leadership(node: &Node) -> (bool, u64) {
    let m = node.raft.metrics();
    let m = m.borrow();
    (m.current_leader == Some(m.id), m.current_term)
}

/// Waits until a read at this point is linearizable, at most [`CLIENT_WAIT_MAX`] (a
/// node cut off from its peers after confirming its leadership waits for the partition
/// to heal): else the reply that says why not.
async fn linearizable(node: &Node) -> Result<(), ClientReply> {
    match tokio::time::timeout(CLIENT_WAIT_MAX, node.raft.ensure_linearizable()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(raft_failure(e)),
        Err(_) => Err(ClientReply::Failed(format!(
            "the read could not be confirmed linearizable within {CLIENT_WAIT_MAX:?}"
        ))),
    }
}

/// A membership change not committed within [`CLIENT_WAIT_MAX`] (no quorum, say): its
/// outcome is unknown, as a write's is; the connection is answered rather than held
/// until the entry commits, which it may never do.
fn membership_unanswered() -> ClientReply {
    ClientReply::Failed(format!(
        "the membership change was not committed within {CLIENT_WAIT_MAX:?} (no quorum, \
         or leadership lost with the entry pending, perhaps), outcome unknown"
    ))
}

async fn handle_client(node: &Node, request: ClientRequest) -> ClientReply {
    let write = |r: Request| async {
        // A leader whose log cannot store the entry would stop its Raft.
        if let Err(e) = r.check() {
            return ClientReply::Refused(e.to_string());
        }
        // Its outcome is unknown if leadership changed meanwhile (`write_failure`).
        let before = leadership(node);
        let Ok(written) = tokio::time::timeout(CLIENT_WAIT_MAX, node.raft.client_write(r)).await
        else {
            return ClientReply::Failed(format!(
                "not answered within {CLIENT_WAIT_MAX:?} (leadership lost with the entry \
                 pending, perhaps), outcome unknown"
            ));
        };
        match written {
            Ok(resp) if resp.data.refused.is_some() => {
                ClientReply::Refused(resp.data.refused.unwrap_or_default())
            }
            Ok(resp) => ClientReply::Ok(ClientOk::Written {
                previous: resp.data.previous,
                index: resp.log_id.index,
            }),
            Err(e) => write_failure(node, before, e),
        }
    };
    match request {
        ClientRequest::Put { key, value } => write(Request::Set { key, value }).await,
        ClientRequest::Delete { key } => write(Request::Delete { key }).await,
        ClientRequest::Get { key } => {
            // No key this long can exist: refused at once, not retried on every node
            // until the client's deadline.
            if key.len() > capsuledb::MAX_KEY_LEN {
                return ClientReply::Refused(format!(
                    "a key of {} bytes, over the limit of {}",
                    key.len(),
                    capsuledb::MAX_KEY_LEN
                ));
            }
            if let Err(reply) = linearizable(node).await {
                return reply;
            }
            match node.state_machine.get(&key) {
                Ok(v) => ClientReply::Ok(ClientOk::Value(v)),
                Err(e) => ClientReply::Failed(format!("read: {e}")),
            }
        }
        ClientRequest::Scan { from, to, limit } => {
            if let Err(reply) = linearizable(node).await {
                return reply;
            }
            match scan(&node.db, from, to, limit) {
                Ok(pairs) => ClientReply::Ok(ClientOk::Pairs(pairs)),
                Err(e) => ClientReply::Failed(format!("scan: {e}")),
            }
        }
        ClientRequest::Init { members } => {
            if let Some(why) = membership_refusal(members.len(), members.values()) {
                return ClientReply::Refused(why);
            }
            match init(&node.raft, &members).await {
                Ok(()) => ClientReply::Ok(ClientOk::Done),
                Err(e) => ClientReply::Failed(e.to_string()),
            }
        }
        ClientRequest::AddLearner { id, addr } => {
            // The membership with this learner (a node already in it counts once), and
            // the address it already has there, if any.
            let (nodes, known_at) = {
                let metrics = node.raft.metrics();
                let m = metrics.borrow();
                let known_at = m
                    .membership_config
                    .nodes()
                    .find(|(n, _)| **n == id)
                    .map(|(_, b)| b.addr.clone());
                let count = m.membership_config.nodes().count();
                (count + usize::from(known_at.is_none()), known_at)
            };
            // openraft keeps a member's address: asked again with another, it changed
            // nothing and the learner's catch-up wait blamed the new address.
            if let Some(old) = known_at.filter(|old| *old != addr) {
                return ClientReply::Refused(format!(
                    "node {id} is already in the membership at {old}; its address cannot be \
                     changed"
                ));
            }
            if let Some(why) = membership_refusal(nodes, std::iter::once(&addr)) {
                return ClientReply::Refused(why);
            }
            let before = leadership(node);
            let added = node.raft.add_learner(id, BasicNode::new(addr), false);
            match tokio::time::timeout(CLIENT_WAIT_MAX, added).await {
                Ok(Ok(r)) => learner_caught_up(node, id, r.log_id.index).await,
                Ok(Err(e)) => write_failure(node, before, e),
                Err(_) => membership_unanswered(),
            }
        }
        ClientRequest::ChangeMembership { voters, retain } => {
            // Two entries (the joint membership, then the new one): leadership lost
            // between them leaves the first committed.
            let before = leadership(node);
            let changed = node.raft.change_membership(voters, retain);
            match tokio::time::timeout(CLIENT_WAIT_MAX, changed).await {
                Ok(Ok(r)) => ClientReply::Ok(ClientOk::Written {
                    previous: None,
                    index: r.log_id.index,
                }),
                Ok(Err(e)) => write_failure(node, before, e),
                Err(_) => membership_unanswered(),
            }
        }
        ClientRequest::Status => {
            let mut s = status(&node.raft.metrics().borrow());
            s.snapshots_installed = node.snapshots_installed.load(Ordering::Relaxed);
            s.connections_accepted = node.connections_accepted.load(Ordering::Relaxed);
            ClientReply::Ok(ClientOk::Status(s))
        }
        // `serve_connection` stops the node once this answer is out.
        ClientRequest::Shutdown => ClientReply::Ok(ClientOk::Done),
    }
}

fn scan(
    db: &Database,
    from: Option<Vec<u8>>,
    to: Option<Vec<u8>>,
    limit: u32,
) -> capsuledb::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let limit = limit.min(SCAN_LIMIT_MAX) as usize;
    let mut conn = db.connect();
    let tx = conn.begin_read()?;
    let start = from.map_or(Bound::Unbounded, Bound::Included);
    let end = to.map_or(Bound::Unbounded, Bound::Excluded);
    let mut pairs = Vec::new();
    let mut bytes = 0usize;
    for r in tx.range(DATA_TABLE, (start, end))?.take(limit) {
        let (k, v) = r?;
        bytes = bytes.saturating_add(k.len() + v.len());
        if bytes > SCAN_REPLY_BYTES_MAX && !pairs.is_empty() {
            break;
        }
        pairs.push((k, v.to_vec()));
    }
    Ok(pairs)
}

fn status(m: &RaftMetrics<NodeId, BasicNode>) -> Status {
    let membership = m.membership_config.membership();
    Status {
        id: m.id,
        state: format!("{:?}", m.state),
        term: m.current_term,
        leader: m.current_leader,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        snapshot: m.snapshot.map(|l| l.index),
        purged: m.purged.map(|l| l.index),
        snapshots_installed: 0,
        connections_accepted: 0,
        voters: membership.voter_ids().collect(),
        nodes: membership
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect(),
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
