//! Writes/s and latency through a cluster of node processes on this machine: the same
//! client load against 1 node (Raft with a single voter: the network hop, the durable
//! log append and the durable apply, no replication) and against 3 (every write durable
//! on a majority before it is acknowledged), beside the same writes as durable commits
//! of an embedded capsuledb (no Raft, no network) for reference.

use crate::client::Client;
use crate::cluster::LocalCluster;
use crate::proto::NodeId;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How a bench run goes.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Cluster sizes to measure, in turn.
    pub cluster_sizes: Vec<u64>,
    /// Concurrent clients, each with its own connection and one write in flight.
    pub clients: u32,
    /// How long each size is measured.
    pub duration: Duration,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Also measure durable commits of an embedded database, one thread per client.
    pub embedded: bool,
}

/// One measured cluster size.
#[derive(Clone, Debug)]
pub struct BenchRow {
    /// What was measured: `embedded`, or `N-node cluster`.
    pub setup: String,
    /// Concurrent clients.
    pub clients: u32,
    /// Acknowledged writes.
    pub writes: u64,
    /// Writes that failed.
    pub errors: u64,
    /// Acknowledged writes per second.
    pub writes_per_s: f64,
    /// Median write latency.
    pub latency_us_p50: u64,
    /// 99th percentile write latency.
    pub latency_us_p99: u64,
}

/// Measures each cluster size of `config`, with node processes of `bin` keeping their
/// files under `dir`.
pub async fn run(bin: &Path, dir: &Path, config: &BenchConfig) -> Result<Vec<BenchRow>, String> {
    let mut rows = Vec::new();
    if config.embedded {
        let path = dir.join("embedded.db");
        let config = config.clone();
        let row = tokio::task::spawn_blocking(move || run_embedded(&path, &config))
            .await
            .map_err(|e| format!("embedded bench: {e}"))??;
        rows.push(row);
    }
    for &size in &config.cluster_sizes {
        let sub = dir.join(format!("cluster-{size}"));
        std::fs::create_dir_all(&sub).map_err(|e| format!("create {}: {e}", sub.display()))?;
        rows.push(run_one(bin, &sub, size, config).await?);
    }
    Ok(rows)
}

async fn run_one(
    bin: &Path,
    dir: &Path,
    size: u64,
    config: &BenchConfig,
) -> Result<BenchRow, String> {
    if size == 0 {
        return Err("a cluster needs at least one node".to_string());
    }
    let mut cluster = LocalCluster::new(bin, dir);
    let mut members: BTreeMap<NodeId, String> = BTreeMap::new();
    for id in 1..=size {
        members.insert(id, cluster.add(id)?);
    }
    cluster.set_init(1, members.clone())?;
    for id in 1..=size {
        cluster.start(id)?;
    }
    cluster.wait_leader(Duration::from_secs(30)).await?;
    let addrs: Vec<String> = members.values().cloned().collect();

    let end = Instant::now() + config.duration;
    let value = vec![b'v'; config.value_bytes];
    let mut tasks = Vec::new();
    for c in 0..config.clients {
        let mut client = Client::new(addrs.clone());
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies_us = Vec::new();
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < end {
                let key = format!("bench/{c}/{}", i % 1000);
                i += 1;
                let start = Instant::now();
                match client.put(key.as_bytes(), &value).await {
                    Ok(_) => latencies_us.push(start.elapsed().as_micros() as u64),
                    Err(_) => errors += 1,
                }
            }
            (latencies_us, errors)
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.map_err(|e| format!("bench client: {e}"))?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    cluster.stop_all(Duration::from_secs(10)).await?;
    Ok(row(
        format!("{size}-node cluster"),
        config.clients,
        latencies,
        errors,
        elapsed,
    ))
}

/// The same writes as durable one-key commits of a database in this process.
fn run_embedded(path: &Path, config: &BenchConfig) -> Result<BenchRow, String> {
    let db =
        capsuledb::Database::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let table = "bench";
    let mut conn = db.connect();
    let mut tx = conn.begin().map_err(|e| e.to_string())?;
    tx.create_table(table).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    let end = Instant::now() + config.duration;
    let started = Instant::now();
    let results: Vec<(Vec<u64>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..config.clients)
            .map(|c| {
                let db = db.clone();
                let value = vec![b'v'; config.value_bytes];
                s.spawn(move || {
                    let mut conn = db.connect();
                    let mut latencies_us = Vec::new();
                    let mut errors = 0u64;
                    let mut i = 0u64;
                    while Instant::now() < end {
                        let key = format!("bench/{c}/{}", i % 1000);
                        i += 1;
                        let start = Instant::now();
                        let done = conn.begin().and_then(|mut tx| {
                            tx.put(table, key.as_bytes(), &value)?;
                            tx.commit()
                        });
                        match done {
                            Ok(_) => latencies_us.push(start.elapsed().as_micros() as u64),
                            Err(_) => errors += 1,
                        }
                    }
                    (latencies_us, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    db.close().map_err(|e| e.to_string())?;
    let mut latencies = Vec::new();
    let mut errors = 0;
    for (l, e) in results {
        latencies.extend(l);
        errors += e;
    }
    Ok(row(
        "capsuledb embedded".to_string(),
        config.clients,
        latencies,
        errors,
        elapsed,
    ))
}

fn row(
    setup: String,
    clients: u32,
    mut latencies: Vec<u64>,
    errors: u64,
    elapsed: f64,
) -> BenchRow {
    latencies.sort_unstable();
    let pct = |p: f64| -> u64 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() - 1) as f64 * p).round() as usize;
        latencies.get(i).copied().unwrap_or(0)
    };
    BenchRow {
        setup,
        clients,
        writes: latencies.len() as u64,
        errors,
        writes_per_s: latencies.len() as f64 / elapsed.max(1e-9),
        latency_us_p50: pct(0.50),
        latency_us_p99: pct(0.99),
    }
}

/// The rows as a Markdown table.
pub fn table(rows: &[BenchRow]) -> String {
    let mut out = String::from(
        "| setup | clients | writes/s | p50 µs | p99 µs | writes | errors |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} | {} | {} |\n",
            r.setup,
            r.clients,
            r.writes_per_s,
            r.latency_us_p50,
            r.latency_us_p99,
            r.writes,
            r.errors
        ));
    }
    out
}
