//! A cluster of node processes on this machine, on loopback addresses: what the bench
//! and the tests start, kill and restart. Each node's stderr goes to `node<id>.log` in
//! the cluster's directory, next to its database `node<id>.db`.

use crate::client::Client;
use crate::proto::{NodeId, Status};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often the waits below poll the nodes.
const POLL: Duration = Duration::from_millis(50);

/// A problem with the local processes, as text.
pub type ClusterError = String;

struct LocalNode {
    addr: String,
    db: PathBuf,
    init: Option<BTreeMap<NodeId, String>>,
    /// Extra `serve` arguments of this node.
    args: Vec<String>,
    child: Option<Child>,
}

/// Node processes of one binary, each with its own database in one directory.
pub struct LocalCluster {
    bin: PathBuf,
    dir: PathBuf,
    extra_args: Vec<String>,
    nodes: BTreeMap<NodeId, LocalNode>,
}

/// A free TCP port on 127.0.0.1, as `127.0.0.1:port`. The port is free when this
/// returns; nothing reserves it, so use it at once.
pub fn free_loopback_addr() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

impl LocalCluster {
    /// A cluster of `bin` (the `raft-node` binary) processes keeping their files in `dir`.
    pub fn new(bin: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> LocalCluster {
        LocalCluster {
            bin: bin.into(),
            dir: dir.into(),
            extra_args: Vec::new(),
            nodes: BTreeMap::new(),
        }
    }

    /// Passes `args` to every `serve` started from now on.
    pub fn with_serve_args(mut self, args: &[&str]) -> LocalCluster {
        self.extra_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Gives node `id` a fresh loopback address (not started).
    pub fn add(&mut self, id: NodeId) -> Result<String, ClusterError> {
        let addr = free_loopback_addr().map_err(|e| format!("find a free port: {e}"))?;
        self.nodes.insert(
            id,
            LocalNode {
                addr: addr.clone(),
                db: self.dir.join(format!("node{id}.db")),
                init: None,
                args: Vec::new(),
                child: None,
            },
        );
        Ok(addr)
    }

    /// Makes node `id` initialize a cluster of `members` when it first starts.
    pub fn set_init(
        &mut self,
        id: NodeId,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), ClusterError> {
        self.node_mut(id)?.init = Some(members);
        Ok(())
    }

    /// Passes `args` to node `id`'s `serve` from its next start on (after the
    /// cluster-wide ones).
    pub fn set_serve_args(&mut self, id: NodeId, args: &[&str]) -> Result<(), ClusterError> {
        self.node_mut(id)?.args = args.iter().map(|a| a.to_string()).collect();
        Ok(())
    }

    /// The address of every known node.
    pub fn addrs(&self) -> BTreeMap<NodeId, String> {
        self.nodes
            .iter()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }

    /// The address of node `id`.
    pub fn addr(&self, id: NodeId) -> Result<String, ClusterError> {
        self.nodes
            .get(&id)
            .map(|n| n.addr.clone())
            .ok_or_else(|| format!("no node {id}"))
    }

    /// The database file of node `id`.
    pub fn db_path(&self, id: NodeId) -> Result<PathBuf, ClusterError> {
        self.nodes
            .get(&id)
            .map(|n| n.db.clone())
            .ok_or_else(|| format!("no node {id}"))
    }

    /// The directory of the databases and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut LocalNode, ClusterError> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))
    }

    /// Starts node `id`'s process (again, after a kill or stop).
    pub fn start(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let bin = self.bin.clone();
        let log_path = self.dir.join(format!("node{id}.log"));
        let extra = self.extra_args.clone();
        let node = self.node_mut(id)?;
        if node.child.is_some() {
            return Err(format!("node {id} is already running"));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("open {}: {e}", log_path.display()))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--id")
            .arg(id.to_string())
            .arg("--addr")
            .arg(&node.addr)
            .arg("--db")
            .arg(&node.db)
            .args(&extra)
            .args(&node.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(members) = &node.init {
            let list: Vec<String> = members.iter().map(|(i, a)| format!("{i}={a}")).collect();
            cmd.arg("--init").arg(list.join(","));
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("start {}: {e}", bin.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Whether node `id`'s process was started and not killed or stopped since.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.child.is_some())
    }

    /// Ids of the nodes whose processes run.
    pub fn running(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.child.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let node = self.node_mut(id)?;
        let mut child = node
            .child
            .take()
            .ok_or_else(|| format!("node {id} is not running"))?;
        child.kill().map_err(|e| format!("kill node {id}: {e}"))?;
        child.wait().map_err(|e| format!("reap node {id}: {e}"))?;
        Ok(())
    }

    /// This node's status, asked directly.
    pub async fn status(&self, id: NodeId) -> Result<Status, ClusterError> {
        let addr = self.addr(id)?;
        Client::new([addr])
            .with_deadline(Duration::from_secs(2))
            .status()
            .await
            .map_err(|e| format!("status of node {id}: {e}"))
    }

    /// Waits until every running node answers, and one of them leads with every other
    /// running node agreeing; returns the leader's id.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<NodeId, ClusterError> {
        let end = Instant::now() + timeout;
        loop {
            match self.agreed_leader().await {
                Ok(id) => return Ok(id),
                Err(e) if Instant::now() >= end => {
                    return Err(format!("no leader within {timeout:?}: {e}"));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn agreed_leader(&self) -> Result<NodeId, ClusterError> {
        let mut leader = None;
        for id in self.running() {
            let s = self.status(id).await?;
            if s.state == "Learner" {
                continue;
            }
            let l = s
                .leader
                .ok_or_else(|| format!("node {id} knows no leader"))?;
            if leader.is_some_and(|x| x != l) {
                return Err(format!("nodes disagree on the leader: {leader:?} and {l}"));
            }
            leader = Some(l);
        }
        let leader = leader.ok_or("no running voter")?;
        if !self.is_running(leader) {
            return Err(format!(
                "the nodes follow node {leader}, which is not running"
            ));
        }
        let s = self.status(leader).await?;
        if s.state != "Leader" {
            return Err(format!("node {leader} is named leader but is {}", s.state));
        }
        Ok(leader)
    }

    /// Waits until every running node has applied everything the leader has logged.
    /// Returns the leader and that log index.
    pub async fn wait_converged(&self, timeout: Duration) -> Result<(NodeId, u64), ClusterError> {
        let end = Instant::now() + timeout;
        loop {
            match self.converged().await {
                Ok(done) => return Ok(done),
                Err(e) if Instant::now() >= end => {
                    return Err(format!("not converged within {timeout:?}: {e}"));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn converged(&self) -> Result<(NodeId, u64), ClusterError> {
        let leader = self.agreed_leader().await?;
        let target = self.status(leader).await?.last_log_index.unwrap_or(0);
        for id in self.running() {
            let s = self.status(id).await?;
            let applied = s.last_applied.unwrap_or(0);
            if applied != target {
                return Err(format!("node {id} applied {applied} of {target}"));
            }
        }
        Ok((leader, target))
    }

    /// Asks node `id` to shut down and waits for its process to exit (SIGKILL after
    /// `timeout`; an error says so).
    pub async fn stop(&mut self, id: NodeId, timeout: Duration) -> Result<(), ClusterError> {
        let addr = self.addr(id)?;
        let asked = Client::new([addr]).with_deadline(timeout).shutdown().await;
        let node = self.node_mut(id)?;
        let mut child = node
            .child
            .take()
            .ok_or_else(|| format!("node {id} is not running"))?;
        let end = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("node {id} exited with {status}")),
                Ok(None) if Instant::now() < end => tokio::time::sleep(POLL).await,
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "node {id} did not stop within {timeout:?} (shutdown request: {asked:?}); killed"
                    ));
                }
            }
        }
    }

    /// Stops every running node (see [`LocalCluster::stop`]); the first error wins.
    pub async fn stop_all(&mut self, timeout: Duration) -> Result<(), ClusterError> {
        let mut result = Ok(());
        for id in self.running() {
            let r = self.stop(id, timeout).await;
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
