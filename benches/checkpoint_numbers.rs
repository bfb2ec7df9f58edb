//! The checkpoint issue's figures, in one run (a benchmark: it reports, never asserts
//! on time):
//! - a database many times larger than the version-store budget: load time, file size,
//!   peak RSS, read-back;
//! - reopen time after 10k, 100k and 1M committed transactions;
//! - the longest commit stall while checkpoints run;
//! - 16 writers of 1-key durable commits far over the version-store budget: commit
//!   latency p50, p99, p99.9 and max (back-pressure throttles, never stops a writer).
//!
//! ```sh
//! cargo bench --bench checkpoint_numbers            # several minutes
//! cargo bench --bench checkpoint_numbers -- --quick # under a minute
//! ```

use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Options};
use std::time::{Duration, Instant};

fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident set, file-backed mapped pages included.
fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// Anonymous (heap) memory resident now: what the engine itself holds.
fn anon_mb() -> f64 {
    status_mb("RssAnon:")
}

/// A new database at `path` with a `budget`-byte version store and the table `t`.
fn open_with_table(path: &std::path::Path, budget: u64) -> (Database, capsuledb::Connection) {
    let db = Options::new()
        .version_store_budget(budget)
        .open(path)
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    (db, c)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().unwrap();
    let budget: u64 = 64 << 20;
    let total: u64 = if quick { 256 << 20 } else { 2 << 30 };
    let value_len = 1000usize;
    let keys = total / value_len as u64;
    let batch = 1000u64;

    println!("## Larger than the version-store budget\n");
    let path = dir.path().join("big.db");
    let (db, mut c) = open_with_table(&path, budget);
    let start = Instant::now();
    let mut rng = Rng::new(1);
    let mut worst = Duration::ZERO;
    let mut peak_anon = 0.0f64;
    let mut n = 0;
    while n < keys {
        let mut tx = c.begin().unwrap();
        for _ in 0..batch.min(keys - n) {
            let k = rng.next_u64().to_be_bytes();
            tx.put("t", &k, &[(n % 251) as u8; 1000]).unwrap();
            n += 1;
        }
        let t0 = Instant::now();
        tx.commit_with(Durability::Durable).unwrap();
        worst = worst.max(t0.elapsed());
        peak_anon = peak_anon.max(anon_mb());
    }
    let load = start.elapsed();
    let s = db.stats();
    println!(
        "loaded {} MiB ({keys} keys of {value_len} bytes, {batch} per transaction) with a {} MiB budget in {:.1} s; {} checkpoints; slowest commit {:.0} ms (checkpoints run in the background)",
        total >> 20,
        budget >> 20,
        load.as_secs_f64(),
        s.checkpoints,
        worst.as_secs_f64() * 1e3
    );
    db.checkpoint().unwrap();
    let file = std::fs::metadata(&path).unwrap().len();
    println!(
        "file size {} MiB; version store {} MiB; anonymous memory during the load, highest after a commit {:.0} MiB (sampled after each commit: a lower bound of the peak); peak RSS {:.0} MiB (mapped file pages included)",
        file >> 20,
        db.stats().version_bytes >> 20,
        peak_anon,
        peak_rss_mb()
    );
    let mut rng = Rng::new(1);
    let t0 = Instant::now();
    let tx = c.begin_read().unwrap();
    let mut checked = 0u64;
    for i in 0..keys {
        let k = rng.next_u64().to_be_bytes();
        if i % 97 == 0 {
            let v = tx.get_ref("t", &k).unwrap().unwrap();
            assert_eq!(v.len(), value_len);
            checked += 1;
        }
    }
    drop(tx);
    println!(
        "read back {checked} sampled keys in {:.2} s; peak RSS {:.0} MiB (mapped file pages count toward RSS)",
        t0.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    let report = db.check_integrity().unwrap();
    println!(
        "check_integrity: {} problems, {} tree pages",
        report.problems.len(),
        report.tree_pages
    );
    drop(c);
    db.close().unwrap();
    let _ = std::fs::remove_file(&path);

    sustained_writers(dir.path(), quick);

    println!(
        "\n## Reopen time as history grows (1-key transactions, default checkpoint budgets)\n"
    );
    println!("| committed transactions | commits replayed at open | reopen ms |");
    println!("|---:|---:|---:|");
    let path = dir.path().join("history.db");
    let db = Database::open(&path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    let mut done = 0u64;
    let marks: &[u64] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    drop(c);
    let mut db = db;
    for &mark in marks {
        let mut c = db.connect();
        while done < mark {
            let mut tx = c.begin().unwrap();
            tx.put("t", &(done % 50_000).to_be_bytes(), &done.to_le_bytes())
                .unwrap();
            tx.commit_with(Durability::Applied).unwrap();
            done += 1;
        }
        drop(c);
        db.close().unwrap();
        let t0 = Instant::now();
        db = Database::open(&path).unwrap();
        let took = t0.elapsed();
        println!(
            "| {mark} | {} | {:.1} |",
            db.stats().recovered_commits,
            took.as_secs_f64() * 1e3
        );
    }
}

/// 16 threads of 1-key durable commits (1 KiB values, random keys) for a fixed time
/// with a 4 MiB version-store budget, so the store runs far over it while checkpoints
/// fold in the background: every commit's latency is kept and summarised.
fn sustained_writers(dir: &std::path::Path, quick: bool) {
    let threads = 16;
    let seconds = if quick { 5.0 } else { 20.0 };
    let budget: u64 = 4 << 20;
    println!(
        "\n## {threads} writers, durable 1-key commits of 1 KiB, {} MiB version-store budget, {seconds} s\n",
        budget >> 20
    );
    let path = dir.join("sustained.db");
    let (db, c) = open_with_table(&path, budget);
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut all: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let db = db.clone();
                s.spawn(move || {
                    let mut c = db.connect();
                    let mut rng = Rng::new(1000 + t);
                    let mut lat = Vec::new();
                    let value = [t as u8; 1024];
                    while Instant::now() < stop {
                        let t0 = Instant::now();
                        let mut tx = c.begin().unwrap();
                        tx.put("t", &rng.next_u64().to_be_bytes(), &value).unwrap();
                        tx.commit_with(Durability::Durable).unwrap();
                        lat.push(t0.elapsed());
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    let s = db.stats();
    println!(
        "| commits/s | p50 ms | p99 ms | p99.9 ms | max ms | checkpoints | version store now MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} |",
        all.len() as f64 / elapsed,
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0),
        s.checkpoints,
        s.version_bytes as f64 / (1 << 20) as f64
    );
    drop(c);
    db.close().unwrap();
    let _ = std::fs::remove_file(&path);
}
