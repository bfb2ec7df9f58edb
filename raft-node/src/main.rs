//! `raft-node`: run a node of a replicated capsuledb key-value service, talk to one, or
//! benchmark a local cluster. On failure it prints one line, `raft-node: <error>`, and
//! exits 1 (2 for a bad command line; `get` of a missing key also exits 1).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use clap::{Parser, Subcommand};
use raft_node::bench::{self, BenchConfig};
use raft_node::client::Client;
use raft_node::proto::NodeId;
use raft_node::server::{self, NodeConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "raft-node",
    about = "A replicated capsuledb key-value service on openraft"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node until Ctrl-C, SIGTERM or `client shutdown`.
    Serve {
        /// This node's id (1 or more).
        #[arg(long)]
        id: NodeId,
        /// Address to listen on; other nodes reach this node there.
        #[arg(long)]
        addr: String,
        /// The node's database file (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// On first start, initialize a cluster of these members: `1=host:port,2=...`.
        /// Ignored once the node belongs to a cluster.
        #[arg(long)]
        init: Option<String>,
        /// Raft heartbeat interval.
        #[arg(long, default_value_t = 150)]
        heartbeat_ms: u64,
        /// Election timeout, lower bound.
        #[arg(long, default_value_t = 750)]
        election_min_ms: u64,
        /// Election timeout, upper bound.
        #[arg(long, default_value_t = 1500)]
        election_max_ms: u64,
        /// Build a snapshot after this many entries since the last one.
        #[arg(long, default_value_t = 5000)]
        snapshot_every: u64,
        /// Log entries kept after a snapshot covers them; followers further behind get
        /// the snapshot.
        #[arg(long, default_value_t = 1000)]
        keep_logs: u64,
    },
    /// Talk to a cluster.
    Client {
        /// Node addresses, comma-separated; requests find the leader from there.
        #[arg(
            long,
            default_value = "127.0.0.1:21001,127.0.0.1:21002,127.0.0.1:21003"
        )]
        addr: String,
        #[command(subcommand)]
        op: ClientOp,
    },
    /// Writes/s and p50/p99 latency through local clusters of 1 and 3 node processes,
    /// and of an embedded database for reference.
    Bench {
        /// Cluster sizes, comma-separated.
        #[arg(long, default_value = "1,3")]
        nodes: String,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: u32,
        /// Seconds per cluster size (1 to 86,400).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        seconds: u64,
        /// Bytes per value (at most 4,000,000: a write's JSON, about four bytes a value
        /// byte, must fit a node's 16 MiB request limit).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=4_000_000))]
        value_bytes: u64,
        /// Skip the embedded-database reference row.
        #[arg(long)]
        no_embedded: bool,
    },
}

#[derive(Subcommand)]
enum ClientOp {
    /// Set a key (through the leader).
    Put { key: String, value: String },
    /// Read a key, linearizably; exits 1 when it is missing.
    Get { key: String },
    /// Remove a key.
    Delete { key: String },
    /// Keys in `[from, to)`, one `key<TAB>value` a line, at most `limit` of them (asked
    /// for in as many requests as their size needs).
    Scan {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The first address's view of the cluster, as JSON (no leader needed).
    Status,
    /// Initialize the (pristine) node at the first address: `1=host:port,2=...`.
    Init { members: String },
    /// Add a learner and wait until it has caught up.
    AddLearner { id: NodeId, node_addr: String },
    /// Make these ids the voters; without --retain, removed voters leave the cluster.
    ChangeMembership {
        #[arg(required = true)]
        voters: Vec<NodeId>,
        #[arg(long)]
        retain: bool,
    },
    /// Stop the node at the first address.
    Shutdown,
}

fn parse_members(s: &str) -> Result<BTreeMap<NodeId, String>, String> {
    let mut members = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("member `{part}` is not `id=host:port`"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|e| format!("member id `{id}`: {e}"))?;
        members.insert(id, addr.trim().to_string());
    }
    if members.is_empty() {
        return Err("no members given".to_string());
    }
    Ok(members)
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn out(s: &str) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(s.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the command; `Ok(false)` means "exit 1 without a message" (a missing key).
async fn run(cli: Cli) -> Result<bool, String> {
    match cli.command {
        Command::Serve {
            id,
            addr,
            db,
            init,
            heartbeat_ms,
            election_min_ms,
            election_max_ms,
            snapshot_every,
            keep_logs,
        } => {
            let mut config = NodeConfig::new(id, addr, db);
            config.init = init.as_deref().map(parse_members).transpose()?;
            config.heartbeat_ms = heartbeat_ms;
            config.election_min_ms = election_min_ms;
            config.election_max_ms = election_max_ms;
            config.snapshot_every = snapshot_every;
            config.keep_logs = keep_logs;
            server::run(config, stop_signal())
                .await
                .map_err(|e| format!("node {id}: {e}"))?;
            Ok(true)
        }
        Command::Client { addr, op } => {
            let addrs: Vec<&str> = addr.split(',').filter(|a| !a.is_empty()).collect();
            let mut client = Client::new(addrs);
            let e = |e: raft_node::client::ClientError| e.to_string();
            match op {
                ClientOp::Put { key, value } => {
                    client
                        .put(key.as_bytes(), value.as_bytes())
                        .await
                        .map_err(e)?;
                }
                ClientOp::Get { key } => match client.get(key.as_bytes()).await.map_err(e)? {
                    Some(v) => out(&format!("{}\n", text(&v)))?,
                    None => return Ok(false),
                },
                ClientOp::Delete { key } => {
                    client.delete(key.as_bytes()).await.map_err(e)?;
                }
                ClientOp::Scan { from, to, limit } => {
                    // A reply stops at about 8 MiB of keys and values: asked again after
                    // its last key until `limit` entries or the end of the range.
                    let mut from = from.map(String::into_bytes);
                    let mut left = limit;
                    while left > 0 {
                        let pairs = client
                            .scan(from.as_deref(), to.as_deref().map(str::as_bytes), left)
                            .await
                            .map_err(e)?;
                        let Some((last, _)) = pairs.last() else { break };
                        from = Some([last.as_slice(), &[0]].concat());
                        left = left.saturating_sub(pairs.len() as u32);
                        let lines: String = pairs
                            .iter()
                            .map(|(k, v)| format!("{}\t{}\n", text(k), text(v)))
                            .collect();
                        out(&lines)?;
                    }
                }
                ClientOp::Status => {
                    let s = client.status().await.map_err(e)?;
                    let json = serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?;
                    out(&format!("{json}\n"))?;
                }
                ClientOp::Init { members } => {
                    client.init(parse_members(&members)?).await.map_err(e)?
                }
                ClientOp::AddLearner { id, node_addr } => {
                    client.add_learner(id, &node_addr).await.map_err(e)?;
                }
                ClientOp::ChangeMembership { voters, retain } => {
                    let voters: BTreeSet<NodeId> = voters.into_iter().collect();
                    client.change_membership(voters, retain).await.map_err(e)?;
                }
                ClientOp::Shutdown => client.shutdown().await.map_err(e)?,
            }
            Ok(true)
        }
        Command::Bench {
            nodes,
            clients,
            seconds,
            value_bytes,
            no_embedded,
        } => {
            let cluster_sizes = nodes
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse::<u64>()
                        .map_err(|e| format!("--nodes `{n}`: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let config = BenchConfig {
                cluster_sizes,
                clients,
                duration: Duration::from_secs(seconds),
                value_bytes: usize::try_from(value_bytes)
                    .map_err(|_| format!("--value-bytes {value_bytes}: too large"))?,
                embedded: !no_embedded,
            };
            let bin = std::env::current_exe().map_err(|e| format!("find this program: {e}"))?;
            let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
            eprintln!(
                "bench: {clients} clients, {seconds} s per cluster size, {value_bytes}-byte values, databases under {}",
                dir.path().display()
            );
            // Ctrl-C ends the run: the bench (its clusters, whose drop stops their node
            // processes) is dropped, then the directory of their databases goes, and the
            // process exits at once (the embedded row's writers run on blocking threads
            // a dropped future does not stop, and the runtime's drop would wait for
            // them). A handler that cannot be installed leaves Ctrl-C as it was.
            let rows = tokio::select! {
                rows = bench::run(&bin, dir.path(), &config) => rows?,
                Ok(()) = tokio::signal::ctrl_c() => {
                    let _ = std::fs::remove_dir_all(dir.path());
                    eprintln!(
                        "raft-node: interrupted: the clusters are stopped and their databases removed"
                    );
                    std::process::exit(130);
                }
            };
            out(&bench::table(&rows))?;
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raft-node: start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("raft-node: {e}");
            ExitCode::FAILURE
        }
    }
}
