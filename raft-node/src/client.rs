//! A client of the cluster: sends each request to the node it believes leads, follows
//! `NotLeader` hints, and tries the other known nodes when one does not answer.
//!
//! Retries happen only when the request certainly did nothing (the connection was
//! refused, or the node said it is not the leader). Once a write has been sent and its
//! answer is lost, the client returns [`ClientError::Indefinite`]: the write may or may
//! not have taken effect, and retrying it blindly could apply it twice.

use crate::proto::{
    ClientOk, ClientReply, ClientRequest, NodeId, Reply, Rpc, Status, read_frame, take_reusable,
    write_frame,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Pause before retrying when no node knows a leader (an election is running).
const NO_LEADER_PAUSE: Duration = Duration::from_millis(50);

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The request certainly did not take effect (no node took it before the deadline).
    NotApplied(String),
    /// The request was sent and its outcome is unknown: a write may have taken effect.
    Indefinite(String),
    /// The node answered with an error. For a write, it may or may not have taken
    /// effect; a read or status request had no effect.
    Failed(String),
    /// The node answered with a reply of the wrong kind.
    Protocol(String),
}

impl ClientError {
    /// Whether a write that failed this way may still have taken effect.
    pub fn may_have_applied(&self) -> bool {
        !matches!(self, ClientError::NotApplied(_))
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotApplied(e) => write!(f, "not applied: {e}"),
            ClientError::Indefinite(e) => write!(f, "outcome unknown: {e}"),
            ClientError::Failed(e) => write!(f, "failed on the node: {e}"),
            ClientError::Protocol(e) => write!(f, "protocol: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A connection to a cluster; one request at a time (use one `Client` per task).
pub struct Client {
    addrs: Vec<String>,
    /// Index into `addrs` of the node tried first.
    current: usize,
    /// The kept connection and when its last exchange ended.
    stream: Option<(TcpStream, Instant)>,
    deadline: Duration,
}

impl Client {
    /// A client that knows these node addresses (`host:port`); more are learned from
    /// leader hints. Each request gives up after 10 s by default.
    pub fn new<S: Into<String>>(addrs: impl IntoIterator<Item = S>) -> Client {
        Client {
            addrs: addrs.into_iter().map(Into::into).collect(),
            current: 0,
            stream: None,
            deadline: Duration::from_secs(10),
        }
    }

    /// Sets how long one request may take, retries included.
    pub fn with_deadline(mut self, deadline: Duration) -> Client {
        self.deadline = deadline;
        self
    }

    /// The address the next request goes to first.
    pub fn current_addr(&self) -> Option<&str> {
        self.addrs.get(self.current).map(String::as_str)
    }

    /// Sets `key` to `value`; returns the previous value.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        let req = ClientRequest::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        };
        match self.request(req).await? {
            ClientOk::Written { previous, .. } => Ok(previous),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes `key`; returns the previous value.
    pub async fn delete(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        match self
            .request(ClientRequest::Delete { key: key.to_vec() })
            .await?
        {
            ClientOk::Written { previous, .. } => Ok(previous),
            other => Err(unexpected(&other)),
        }
    }

    /// A linearizable read of `key`.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        match self
            .request(ClientRequest::Get { key: key.to_vec() })
            .await?
        {
            ClientOk::Value(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// A linearizable scan of `[from, to)`, at most `limit` entries, and at most about
    /// 8 MiB of keys and values (`server::SCAN_REPLY_BYTES_MAX`): fewer than `limit`
    /// entries does not mean the range ended; go on after the last key.
    pub async fn scan(
        &mut self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ClientError> {
        let req = ClientRequest::Scan {
            from: from.map(<[u8]>::to_vec),
            to: to.map(<[u8]>::to_vec),
            limit,
        };
        match self.request(req).await? {
            ClientOk::Pairs(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Adds a learner and waits until it has caught up: `Failed` if it has not within
    /// [`crate::server::LEARNER_CATCH_UP_MAX`] (it stays in the membership).
    pub async fn add_learner(&mut self, id: NodeId, addr: &str) -> Result<(), ClientError> {
        let req = ClientRequest::AddLearner {
            id,
            addr: addr.to_string(),
        };
        self.request(req).await.map(|_| ())
    }

    /// Makes `voters` the voter set; removed voters stay learners only with `retain`.
    pub async fn change_membership(
        &mut self,
        voters: BTreeSet<NodeId>,
        retain: bool,
    ) -> Result<(), ClientError> {
        let req = ClientRequest::ChangeMembership { voters, retain };
        self.request(req).await.map(|_| ())
    }

    /// Initializes the node at the first address with `members`.
    pub async fn init(&mut self, members: BTreeMap<NodeId, String>) -> Result<(), ClientError> {
        self.call_first(ClientRequest::Init { members })
            .await
            .map(|_| ())
    }

    /// The status of the node at the first address (no leader needed).
    pub async fn status(&mut self) -> Result<Status, ClientError> {
        match self.call_first(ClientRequest::Status).await? {
            ClientOk::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Asks the node at the first address to stop.
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        self.call_first(ClientRequest::Shutdown).await.map(|_| ())
    }

    /// Sends a request to the node at the first address only, without retries.
    async fn call_first(&mut self, req: ClientRequest) -> Result<ClientOk, ClientError> {
        // The kept connection may be to another node (a leader a write followed).
        if self.current != 0 {
            self.stream = None;
        }
        self.current = 0;
        let deadline = Instant::now() + self.deadline;
        let reply = match self.exchange(&req, deadline).await {
            Ok(reply) => reply,
            Err(Unsent(e)) => return Err(ClientError::NotApplied(e)),
            Err(Sent(e)) if req.is_write() => return Err(ClientError::Indefinite(e)),
            Err(Sent(e)) => return Err(ClientError::Failed(e)),
        };
        match reply {
            ClientReply::Ok(ok) => Ok(ok),
            ClientReply::NotLeader { .. } => Err(ClientError::NotApplied(
                "the node is not the leader".to_string(),
            )),
            ClientReply::Failed(e) => Err(ClientError::Failed(e)),
            ClientReply::Refused(e) => Err(ClientError::NotApplied(format!("refused: {e}"))),
        }
    }

    /// Sends `req` to the leader, following hints and trying other nodes until the
    /// deadline, as long as the request certainly did nothing.
    ///
    /// `Init`, `Status` and `Shutdown` address a node, not the cluster: they go to the
    /// first address only, as [`Client::init`], [`Client::status`] and
    /// [`Client::shutdown`] send them (a shutdown whose answer was lost was sent on to
    /// the next node, and could stop it too).
    pub async fn request(&mut self, req: ClientRequest) -> Result<ClientOk, ClientError> {
        if matches!(
            req,
            ClientRequest::Init { .. } | ClientRequest::Status | ClientRequest::Shutdown
        ) {
            return self.call_first(req).await;
        }
        let deadline = Instant::now() + self.deadline;
        let mut last_problem = String::from("no node address given");
        loop {
            if self.addrs.is_empty() {
                return Err(ClientError::NotApplied(last_problem));
            }
            match self.exchange(&req, deadline).await {
                Ok(ClientReply::Ok(ok)) => return Ok(ok),
                Ok(ClientReply::Failed(e)) if !req.is_write() => {
                    // A read that failed (say, the leader lost its quorum) had no effect.
                    last_problem = e;
                    self.next_addr();
                    tokio::time::sleep(NO_LEADER_PAUSE).await;
                }
                Ok(ClientReply::Failed(e)) => return Err(ClientError::Failed(e)),
                Ok(ClientReply::Refused(e)) => {
                    return Err(ClientError::NotApplied(format!("refused: {e}")));
                }
                Ok(ClientReply::NotLeader {
                    leader_id,
                    leader_addr,
                }) => {
                    let asked = self.current_addr().unwrap_or_default().to_string();
                    last_problem = format!("{asked} is not the leader (leader: {leader_id:?})");
                    match leader_addr {
                        Some(addr) if addr != asked => self.switch_to(&addr),
                        _ => {
                            self.next_addr();
                            tokio::time::sleep(NO_LEADER_PAUSE).await;
                        }
                    }
                }
                Err(Unsent(e)) => {
                    last_problem = e;
                    self.next_addr();
                    tokio::time::sleep(NO_LEADER_PAUSE).await;
                }
                Err(Sent(e)) if !req.is_write() => {
                    // A read that got no answer had no effect: try elsewhere.
                    last_problem = e;
                    self.next_addr();
                }
                Err(Sent(e)) => {
                    // Not resent (it may have taken effect), but the next request goes
                    // to the next node: this one may accept connections and never
                    // answer (stopped, its disk hung, a leader cut off from the rest).
                    self.next_addr();
                    return Err(ClientError::Indefinite(e));
                }
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NotApplied(format!(
                    "gave up after {:?}: {last_problem}",
                    self.deadline
                )));
            }
        }
    }

    fn switch_to(&mut self, addr: &str) {
        self.stream = None;
        match self.addrs.iter().position(|a| a == addr) {
            Some(i) => self.current = i,
            None => {
                self.addrs.push(addr.to_string());
                self.current = self.addrs.len() - 1;
            }
        }
    }

    fn next_addr(&mut self) {
        self.stream = None;
        self.current = (self.current + 1) % self.addrs.len().max(1);
    }

    /// One request to the current node.
    async fn exchange(
        &mut self,
        req: &ClientRequest,
        deadline: Instant,
    ) -> Result<ClientReply, Attempt> {
        let addr = self
            .addrs
            .get(self.current)
            .cloned()
            .ok_or_else(|| Unsent("no node address given".to_string()))?;
        let left = deadline.saturating_duration_since(Instant::now());
        // Taken out for the exchange and put back only after a whole reply: a request
        // whose future the caller drops part way (a timeout of its own) drops the
        // connection with it, and the next request can never read its reply.
        let mut stream = match take_reusable(&mut self.stream) {
            Some(s) => s,
            None => {
                let s = match tokio::time::timeout(left, TcpStream::connect(&addr)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(Unsent(format!("connect to {addr}: {e}"))),
                    Err(_) => return Err(Unsent(format!("connect to {addr} timed out"))),
                };
                let _ = s.set_nodelay(true);
                s
            }
        };
        let rpc = Rpc::Client(req.clone());
        // A request over the frame limit is never sent (the write refuses it before a
        // byte goes out): refused here, as the node would refuse it, not reported as
        // sent with its outcome unknown.
        let json_len = serde_json::to_vec(&rpc).map_or(0, |b| b.len());
        if json_len > crate::proto::FRAME_BYTES_MAX as usize {
            self.stream = Some((stream, Instant::now()));
            return Ok(ClientReply::Refused(format!(
                "a request of {json_len} bytes, over the frame limit {}: not sent",
                crate::proto::FRAME_BYTES_MAX
            )));
        }
        // Nothing reaches the node unless the write of the frame starts; a failure to
        // write may still have delivered it, so both count as sent.
        let result = tokio::time::timeout(left, async {
            write_frame(&mut stream, &rpc).await?;
            read_frame::<_, Reply>(&mut stream).await
        })
        .await;
        match result {
            Ok(Ok(Reply::Client(reply))) => {
                self.stream = Some((stream, Instant::now()));
                Ok(reply)
            }
            Ok(Ok(other)) => Err(Sent(format!(
                "{addr} answered with a non-client reply: {other:?}"
            ))),
            Ok(Err(e)) => Err(Sent(format!("{addr}: {e}"))),
            Err(_) => Err(Sent(format!("{addr}: no answer before the deadline"))),
        }
    }
}

/// A failed attempt: whether the request may have reached the node.
enum Attempt {
    Unsent(String),
    Sent(String),
}
use Attempt::{Sent, Unsent};

fn unexpected(ok: &ClientOk) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {ok:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;

    /// A listener that accepts connections, reads whatever comes and never answers (with
    /// `hang_up`, closes the connection after the first bytes): its address, and how
    /// many connections it accepted.
    async fn silent_node(hang_up: bool) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) && !hang_up {}
                });
            }
        });
        (addr, accepted)
    }

    /// A write sent to a node that never answers is not resent, but the next request
    /// goes to the next node (it went back to the silent one every time).
    #[tokio::test]
    async fn a_write_without_an_answer_moves_the_client_on() {
        let (first, _) = silent_node(false).await;
        let (second, _) = silent_node(false).await;
        let mut client =
            Client::new([first.clone(), second.clone()]).with_deadline(Duration::from_millis(200));
        let put = client.put(b"k", b"v").await;
        assert!(matches!(put, Err(ClientError::Indefinite(_))), "{put:?}");
        assert_eq!(client.current_addr(), Some(second.as_str()));
    }

    /// A shutdown through `request` whose answer is lost goes to no other node.
    #[tokio::test]
    async fn a_shutdown_request_goes_to_the_first_node_only() {
        let (first, _) = silent_node(true).await;
        let (second, accepted) = silent_node(false).await;
        let mut client = Client::new([first, second]).with_deadline(Duration::from_secs(2));
        assert!(client.request(ClientRequest::Shutdown).await.is_err());
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            0,
            "sent on to the second node"
        );
    }
}
