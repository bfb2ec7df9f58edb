//! openraft's network over TCP: one connection per (node, peer) stream that openraft
//! opens, reconnected after any failure, one RPC in flight on it at a time. openraft
//! opens a stream per voter for every linearizable read and every election: a stream
//! it drops gives its idle connection back to a pool, and the next stream to that peer
//! takes it rather than connecting again.

use crate::proto::{
    CONNECTION_REUSE_MAX, NodeId, Reply, Rpc, read_frame, take_reusable, write_frame,
};
use capsuledb::raftlog::openraft::TypeConfig;
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long to wait before retrying a peer that refused a connection.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(200);

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

/// Idle connections kept per peer (its id and address) for the next stream to it.
const IDLE_PER_PEER_MAX: usize = 8;

/// Idle connections by peer: each with when its last exchange ended.
type IdleMap = HashMap<(NodeId, String), Vec<(TcpStream, Instant)>>;
type Idle = Arc<Mutex<IdleMap>>;

/// Creates a [`PeerConnection`] for each peer openraft talks to.
#[derive(Clone, Debug, Default)]
pub struct TcpNetwork {
    idle: Idle,
}

impl RaftNetworkFactory<TypeConfig> for TcpNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        let key = (target, node.addr.clone());
        let stream = lock(&self.idle).get_mut(&key).and_then(Vec::pop);
        PeerConnection {
            target,
            addr: node.addr.clone(),
            stream,
            idle: Arc::clone(&self.idle),
        }
    }
}

fn lock(idle: &Idle) -> std::sync::MutexGuard<'_, IdleMap> {
    idle.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One stream of RPCs to one peer.
pub struct PeerConnection {
    target: NodeId,
    addr: String,
    /// The kept connection and when its last exchange ended.
    stream: Option<(TcpStream, Instant)>,
    /// Where the kept connection goes when openraft drops this stream.
    idle: Idle,
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        // Kept only after a whole reply: no exchange is half done on it.
        let Some(kept) = self.stream.take() else {
            return;
        };
        let mut idle = lock(&self.idle);
        // Peers gone from the membership leave nothing behind for long: connections
        // too old to reuse are dropped whenever one is given back.
        idle.retain(|_, v| {
            v.retain(|(_, used)| used.elapsed() < CONNECTION_REUSE_MAX);
            !v.is_empty()
        });
        let kept_here = idle.entry((self.target, self.addr.clone())).or_default();
        if kept_here.len() < IDLE_PER_PEER_MAX {
            kept_here.push(kept);
        }
    }
}

fn io_error(what: &str, addr: &str, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{what} {addr}: {e}"))
}

/// Whether a failed call was refused for a message over the frame limit.
fn too_large(e: &NetworkError) -> bool {
    e.to_string().contains("over the frame limit")
}

impl PeerConnection {
    /// Sends `rpc` and returns the reply, within `ttl`. A refused connection is
    /// `Unreachable` (openraft backs off); anything after that is a network error and
    /// drops the connection, so the next call reconnects.
    async fn call<E: std::error::Error>(&mut self, rpc: Rpc, ttl: Duration) -> RpcResult<Reply, E> {
        // Taken out for the exchange and put back only after a whole reply: a call whose
        // future is dropped part way (openraft's own timeout around it) drops the
        // connection with it, and the next call, on a new one, can never read the reply
        // meant for this request (it took another request's reply as its own).
        let mut stream = match take_reusable(&mut self.stream) {
            Some(s) => s,
            None => {
                let connect = tokio::time::timeout(ttl, TcpStream::connect(&self.addr)).await;
                let stream = match connect {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        let e = io_error("connect to", &self.addr, e);
                        return Err(RPCError::Unreachable(Unreachable::new(&e)));
                    }
                    Err(_) => {
                        let e =
                            std::io::Error::other(format!("connect to {} timed out", self.addr));
                        return Err(RPCError::Unreachable(Unreachable::new(&e)));
                    }
                };
                // Heartbeats and small appends must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                stream
            }
        };
        let exchange = async {
            write_frame(&mut stream, &rpc).await?;
            read_frame::<_, Reply>(&mut stream).await
        };
        let result = match tokio::time::timeout(ttl, exchange).await {
            Ok(Ok(reply)) => {
                self.stream = Some((stream, Instant::now()));
                return Ok(reply);
            }
            Ok(Err(e)) => io_error("rpc to", &self.addr, e),
            Err(_) => {
                std::io::Error::other(format!("rpc to {} timed out after {ttl:?}", self.addr))
            }
        };
        Err(RPCError::Network(NetworkError::new(&result)))
    }

    fn unexpected<E: std::error::Error>(
        &mut self,
        reply: &Reply,
    ) -> RPCError<NodeId, BasicNode, E> {
        self.stream = None;
        let e = std::io::Error::other(format!(
            "node {} at {} answered with the wrong kind of reply: {reply:?}",
            self.target, self.addr
        ));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        let entries = rpc.entries.len() as u64;
        let reply = match self.call(Rpc::AppendEntries(rpc), option.hard_ttl()).await {
            // Over the frame limit (nothing was sent): openraft sends fewer entries at a
            // time instead of the same batch again and again.
            Err(RPCError::Network(e)) if entries > 1 && too_large(&e) => {
                return Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(entries / 2),
                ));
            }
            other => other?,
        };
        match reply {
            Reply::AppendEntries(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self
            .call(Rpc::InstallSnapshot(rpc), option.hard_ttl())
            .await?
        {
            Reply::InstallSnapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        match self.call(Rpc::Vote(rpc), option.hard_ttl()).await? {
            Reply::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(&other)),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(UNREACHABLE_BACKOFF))
    }
}
