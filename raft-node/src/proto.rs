//! The wire protocol: every message is one frame, a `u32` little-endian byte length
//! followed by that many bytes of JSON. A connection carries one request at a time: the
//! caller writes a [`Rpc`] frame and reads one [`Reply`] frame back.
//!
//! Raft's own RPCs (append entries, install snapshot, vote) and the client requests share
//! one port per node.

use capsuledb::raftlog::openraft::TypeConfig;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A node's id in the cluster.
pub type NodeId = u64;

/// The largest frame either side accepts: above the largest snapshot chunk openraft sends
/// (3 MiB by default), JSON-encoded.
pub const FRAME_BYTES_MAX: u32 = 64 << 20;

/// Entries a scan returns at most, whatever the client asks for.
pub const SCAN_LIMIT_MAX: u32 = 10_000;

/// How long a node keeps a connection on which no frame arrives: then it closes it (a
/// client or peer that went away without closing held it for ever).
pub const CONNECTION_IDLE_MAX: std::time::Duration = std::time::Duration::from_secs(600);

/// Longest a node waits to hand a reply to the socket: a client that asked for a large
/// value or a scan and never reads held the connection, its task and the reply for ever
/// once the socket's buffers filled. The connection is closed then.
pub const REPLY_WRITE_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// Longest a node waits for a client's write to be committed and applied, or for a read
/// to be confirmed linearizable: a leader deposed with a write pending whose entry the
/// new leader's snapshot purged from its log never answered it (openraft answers a write
/// only when its entry is applied or truncated). Answered `Failed` (a write's outcome
/// unknown) then; the client has long given up (its deadline is shorter).
pub const CLIENT_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Longest a client or peer reuses a connection left idle: half the node's
/// [`CONNECTION_IDLE_MAX`], so a request is never sent on a connection the node is
/// closing (its answer lost, a write's outcome unknown).
pub const CONNECTION_REUSE_MAX: std::time::Duration = std::time::Duration::from_secs(300);

/// The connection kept in `kept` (with when its last exchange ended), taken out, unless
/// it was left idle past [`CONNECTION_REUSE_MAX`] (the node may be closing it, and a
/// request sent on it could be lost with its answer) or the node has closed it already
/// (a host suspended longer than the node's [`CONNECTION_IDLE_MAX`] on a clock that
/// stopped meanwhile): nothing may be waiting to be read on a kept connection.
pub fn take_reusable(
    kept: &mut Option<(tokio::net::TcpStream, std::time::Instant)>,
) -> Option<tokio::net::TcpStream> {
    kept.take()
        .filter(|(_, used)| used.elapsed() < CONNECTION_REUSE_MAX)
        .map(|(stream, _)| stream)
        .filter(|stream| {
            let mut byte = [0u8; 1];
            matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
}

/// A request to a node.
#[derive(Debug, Serialize, Deserialize)]
pub enum Rpc {
    /// Raft: replicate entries (and heartbeats).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft: one chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Raft: a vote request.
    Vote(VoteRequest<NodeId>),
    /// A client request.
    Client(ClientRequest),
}

/// A node's answer to an [`Rpc`], of the same kind.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Answer to [`Rpc::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`Rpc::InstallSnapshot`].
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// Answer to [`Rpc::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`Rpc::Client`].
    Client(ClientReply),
}

/// What a client asks a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Sets `key` to `value` through the log (leader only).
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Removes `key` through the log (leader only).
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// A linearizable read of `key` (leader only, after a read-index round).
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// A linearizable scan of `[from, to)` in key order, at most `limit` entries and at
    /// most about 8 MiB of keys and values (`server::SCAN_REPLY_BYTES_MAX`; always one
    /// entry): fewer than `limit` entries does not mean the range ended, continue after
    /// the last key.
    Scan {
        /// First key, inclusive; `None` from the start.
        from: Option<Vec<u8>>,
        /// End key, exclusive; `None` to the end.
        to: Option<Vec<u8>>,
        /// At most this many entries (capped at [`SCAN_LIMIT_MAX`]).
        limit: u32,
    },
    /// Initializes a pristine node with these members (id to address); ignored by a node
    /// that is already part of a cluster.
    Init {
        /// Every initial voter: id to `host:port`.
        members: BTreeMap<NodeId, String>,
    },
    /// Adds a learner and waits until the leader has replicated to it up to the
    /// membership entry naming it, at most [`crate::server::LEARNER_CATCH_UP_MAX`]
    /// (leader only).
    AddLearner {
        /// The new node's id.
        id: NodeId,
        /// Its `host:port`.
        addr: String,
    },
    /// Makes `voters` the voter set (leader only). With `retain`, removed voters stay
    /// as learners; without it they leave the cluster.
    ChangeMembership {
        /// The new voter set.
        voters: BTreeSet<NodeId>,
        /// Keep removed voters as learners.
        retain: bool,
    },
    /// This node's view of the cluster (answered by any node).
    Status,
    /// Stops this node's process cleanly.
    Shutdown,
}

impl ClientRequest {
    /// Whether the request changes the replicated state (and so may have taken effect
    /// when its outcome is unknown).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            ClientRequest::Put { .. }
                | ClientRequest::Delete { .. }
                | ClientRequest::AddLearner { .. }
                | ClientRequest::ChangeMembership { .. }
        )
    }
}

/// A node's answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// The request succeeded.
    Ok(ClientOk),
    /// This node is not the leader, and did nothing; ask the leader, if one is known.
    NotLeader {
        /// The leader this node knows of.
        leader_id: Option<NodeId>,
        /// Its address.
        leader_addr: Option<String>,
    },
    /// The request failed on the node; for a write, it may or may not have taken effect.
    Failed(String),
    /// The request was refused and did nothing, on any node and at any retry: a key or
    /// value over the limits (`capsuledb::raftlog::openraft::Request::check`), or a
    /// membership over its limits (`server::NODE_ADDR_BYTES_MAX`,
    /// `server::MEMBERSHIP_NODES_MAX`).
    Refused(String),
}

/// The result of a successful [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOk {
    /// A write was committed and applied at log `index`; `previous` is the key's value
    /// before it.
    Written {
        /// The key's value before the write.
        previous: Option<Vec<u8>>,
        /// The log index of the write.
        index: u64,
    },
    /// The value of a [`ClientRequest::Get`].
    Value(Option<Vec<u8>>),
    /// The entries of a [`ClientRequest::Scan`].
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    /// The answer to [`ClientRequest::Status`].
    Status(Status),
    /// Done, nothing to return.
    Done,
}

/// One node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's id.
    pub id: NodeId,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// The index of the last log entry.
    pub last_log_index: Option<u64>,
    /// The index of the last applied entry.
    pub last_applied: Option<u64>,
    /// The last entry the current snapshot covers.
    pub snapshot: Option<u64>,
    /// The last entry purged from the log (the log starts after it).
    pub purged: Option<u64>,
    /// Snapshots this process received whole from a leader and handed to openraft to
    /// install (one at or below what the node already committed is skipped by openraft,
    /// and counted all the same: a leader's resend after a slow install counts twice).
    pub snapshots_installed: u64,
    /// Connections this process accepted (from clients and peers).
    #[serde(default)]
    pub connections_accepted: u64,
    /// The voters of the effective membership.
    pub voters: BTreeSet<NodeId>,
    /// Every node of the effective membership (voters and learners), id to address.
    pub nodes: BTreeMap<NodeId, String>,
}

/// Writes `msg` as one frame.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= FRAME_BYTES_MAX)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "message of {} bytes is over the frame limit {FRAME_BYTES_MAX}",
                    body.len()
                ),
            )
        })?;
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame and decodes it. A clean end of stream before the frame starts is
/// `ErrorKind::UnexpectedEof`.
pub async fn read_frame<R, T>(r: &mut R) -> std::io::Result<T>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len);
    if len > FRAME_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit {FRAME_BYTES_MAX}"),
        ));
    }
    // The buffer grows as bytes arrive: a header alone allocates nothing.
    let mut body = Vec::new();
    r.take(u64::from(len)).read_to_end(&mut body).await?;
    if body.len() != len as usize {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    serde_json::from_slice(&body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept connection is reused while open and recently used, never once the node
    /// closed it or it sat idle past the reuse limit.
    #[tokio::test]
    async fn a_kept_connection_is_reused_only_while_the_node_keeps_it() {
        use std::time::{Duration, Instant};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut kept = Some((client, Instant::now()));
        let client = take_reusable(&mut kept).expect("open and recent");
        let stale = Instant::now().checked_sub(CONNECTION_REUSE_MAX + Duration::from_secs(1));
        if let Some(stale) = stale {
            let mut kept = Some((client, stale));
            assert!(take_reusable(&mut kept).is_none(), "idle past the limit");
        }
        // The node closes a connection: the client sees it before it sends.
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server_2, _) = listener.accept().await.unwrap();
        drop((server, server_2));
        let mut kept = Some((client, Instant::now()));
        for _ in 0..200 {
            match take_reusable(&mut kept) {
                None => return,
                Some(s) => kept = Some((s, Instant::now())),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("a connection the node closed was reused");
    }

    #[tokio::test]
    async fn a_frame_round_trips_and_an_oversized_length_is_refused() {
        let req = Rpc::Client(ClientRequest::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        });
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).await.unwrap();
        let back: Rpc = read_frame(&mut buf.as_slice()).await.unwrap();
        assert!(matches!(back, Rpc::Client(ClientRequest::Put { .. })));

        let mut bad = (FRAME_BYTES_MAX + 1).to_le_bytes().to_vec();
        bad.extend_from_slice(b"{}");
        let err = read_frame::<_, Rpc>(&mut bad.as_slice()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

        let mut truncated = 10u32.to_le_bytes().to_vec();
        truncated.extend_from_slice(b"{}");
        let err = read_frame::<_, Rpc>(&mut truncated.as_slice())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
