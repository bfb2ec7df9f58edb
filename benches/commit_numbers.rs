//! The numbers the transactions and group-commit issues ask for, measured side by side
//! in one run (a benchmark, not a test: it reports, it never asserts on time).
//!
//! ```sh
//! cargo bench --bench commit_numbers            # about a minute
//! cargo bench --bench commit_numbers -- --quick # a few seconds
//! ```

#[path = "support/fsync.rs"]
mod fsync;
use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error, Options};
use fsync::fdatasync_rate;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Cfg {
    phase: Duration,
    recovery_commits: u64,
}

fn fresh(dir: &std::path::Path, name: &str) -> Database {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    Database::open(path).unwrap()
}

/// Runs `f` on a fresh database `name`, then closes it: a checkpoint it started (the
/// Applied phases reach the log's commit bound every half second) finishes before the
/// next phase, rather than taking its CPU and syncs (dropped, its fold ran on).
fn on_fresh<T>(dir: &std::path::Path, name: &str, f: impl FnOnce(&Database) -> T) -> T {
    let db = fresh(dir, name);
    let out = f(&db);
    db.close().unwrap();
    out
}

fn setup_table(db: &Database) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
}

fn key(thread: u64, i: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&thread.to_be_bytes());
    k[8..16].copy_from_slice(&i.to_be_bytes());
    k
}

/// Mean nanoseconds inside the serialized section for transactions of `n` keys.
fn section_time(dir: &std::path::Path, n: u64, commits: u64) -> f64 {
    let db = fresh(dir, &format!("section-{n}.db"));
    setup_table(&db);
    let mut c = db.connect();
    let before = db.stats();
    for i in 0..commits {
        let mut tx = c.begin().unwrap();
        for j in 0..n {
            tx.put("t", &key(j, i % 64), &[7u8; 150]).unwrap();
        }
        tx.commit_with(Durability::Applied).unwrap();
    }
    let after = db.stats();
    drop(c);
    db.close().unwrap();
    (after.section_ns_total - before.section_ns_total) as f64
        / (after.section_count - before.section_count) as f64
}

struct Run {
    commits: u64,
    aborts: u64,
    secs: f64,
    groups: u64,
    group_commits: u64,
    syncs: u64,
    bytes: u64,
    /// Every successful commit's latency, in microseconds, sorted.
    latencies_us: Vec<u32>,
}

impl Run {
    /// The `q` quantile of commit latency, in microseconds.
    fn latency(&self, q: f64) -> u32 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0;
        }
        // Nearest rank: the smallest latency with at least `q` of them at or below it.
        self.latencies_us[((n as f64 * q).ceil() as usize).clamp(1, n) - 1]
    }
}

/// `threads` writers doing 1-key transactions (`hot`: 16 shared keys, each read then
/// written, at Serializable; otherwise disjoint keys) for `phase`.
fn writers(db: &Database, threads: u64, hot: bool, level: Durability, phase: Duration) -> Run {
    setup_table(db);
    let before = db.stats();
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let aborts = Arc::new(AtomicU64::new(0));
    // Every writer connected before the clock starts; it stops when the last writer
    // leaves its loop (not after the joins and the sort of the latencies).
    let ready = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (db, stop, commits, aborts, ready) = (
                db.clone(),
                stop.clone(),
                commits.clone(),
                aborts.clone(),
                ready.clone(),
            );
            std::thread::spawn(move || {
                let mut c = db.connect();
                ready.wait();
                let mut rng = Rng::new(t + 1);
                let mut i = 0u64;
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let k = if hot {
                        key(0, rng.below(16))
                    } else {
                        key(t, i % 4096)
                    };
                    let mut tx = c.begin().unwrap();
                    if hot {
                        let _ = tx.get("t", &k).unwrap();
                    }
                    tx.put("t", &k, &[1u8; 150]).unwrap();
                    let began = Instant::now();
                    match tx.commit_with(level) {
                        Ok(_) => {
                            latencies
                                .push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
                            commits.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::Conflict { committed_seq, .. }) => {
                            aborts.fetch_add(1, Ordering::Relaxed);
                            db.wait_for(committed_seq, Durability::Applied).unwrap();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                (latencies, Instant::now())
            })
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    std::thread::sleep(phase);
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    let mut end = start;
    for h in handles {
        let (latencies, stopped) = h.join().unwrap();
        latencies_us.extend(latencies);
        end = end.max(stopped);
    }
    latencies_us.sort_unstable();
    let secs = end.duration_since(start).as_secs_f64();
    let after = db.stats();
    Run {
        commits: commits.load(Ordering::Relaxed),
        aborts: aborts.load(Ordering::Relaxed),
        secs,
        groups: after.groups - before.groups,
        group_commits: after.group_commits - before.group_commits,
        syncs: after.group_syncs - before.group_syncs,
        bytes: (after.capsule_bytes - before.capsule_bytes) + (after.log_bytes - before.log_bytes),
        latencies_us,
    }
}

/// A fresh empty file `name` in `dir`, for measuring the disk.
fn scratch_file(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::fs::File) {
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    (path, file)
}

/// Mean microseconds of writing `k` 4 KiB pages into an already-written file and then one
/// `fdatasync`, for `k` in 1, 2, 3, 4, 8: the pages contiguous, or far apart.
fn sync_cost_by_pages(dir: &std::path::Path, rounds: u64) -> Vec<(u64, f64, f64)> {
    use std::os::unix::fs::FileExt;
    let (path, file) = scratch_file(dir, "sync-cost");
    let pages = 16_384u64;
    let page = vec![1u8; 4096];
    for p in 0..pages {
        file.write_all_at(&page, p * 4096).unwrap();
    }
    file.sync_data().unwrap();
    let mut out = Vec::new();
    for k in [1u64, 2, 3, 4, 8] {
        let mut cost = [0.0; 2];
        for (scattered, slot) in [false, true].into_iter().zip(&mut cost) {
            let start = Instant::now();
            for i in 0..rounds {
                for j in 0..k {
                    let p = if scattered {
                        (j * 4099 + i * 7) % pages
                    } else {
                        (i * k + j) % pages
                    };
                    file.write_all_at(&page, p * 4096).unwrap();
                }
                file.sync_data().unwrap();
            }
            *slot = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        }
        out.push((k, cost[0], cost[1]));
    }
    let _ = std::fs::remove_file(&path);
    out
}

/// Mean microseconds of writing one 4 KiB page and one `fdatasync`, walking forward
/// through a file grown by `set_len` (each page a hole until written: the file system
/// allocates its block at the sync) and through the same file once written.
fn sync_cost_into_holes(dir: &std::path::Path, rounds: u64) -> (f64, f64) {
    use std::os::unix::fs::FileExt;
    let (path, file) = scratch_file(dir, "sync-holes");
    file.set_len(rounds * 4096).unwrap();
    file.sync_all().unwrap();
    let page = vec![1u8; 4096];
    let mut cost = [0.0; 2];
    for slot in &mut cost {
        let start = Instant::now();
        for p in 0..rounds {
            file.write_all_at(&page, p * 4096).unwrap();
            file.sync_data().unwrap();
        }
        *slot = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    }
    let _ = std::fs::remove_file(&path);
    (cost[0], cost[1])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let cfg = if quick {
        Cfg {
            phase: Duration::from_millis(300),
            recovery_commits: 5_000,
        }
    } else {
        Cfg {
            phase: Duration::from_secs(3),
            recovery_commits: 100_000,
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    println!("## Serialized section (validate + sequence + enqueue), Applied commits\n");
    println!("| keys per transaction | mean ns in the section |");
    println!("|---:|---:|");
    for n in [1u64, 10, 100] {
        println!(
            "| {n} | {:.0} |",
            section_time(dir, n, if quick { 500 } else { 20_000 })
        );
    }

    println!("\n## Applied commits/s (in memory)\n");
    println!("| threads | disjoint commits/s | hot commits/s | hot abort % |");
    println!("|---:|---:|---:|---:|");
    for threads in [1u64, 2, 4, 16] {
        let d = on_fresh(dir, "ad.db", |db| {
            writers(db, threads, false, Durability::Applied, cfg.phase)
        });
        let h = on_fresh(dir, "ah.db", |db| {
            writers(db, threads, true, Durability::Applied, cfg.phase)
        });
        println!(
            "| {threads} | {:.0} | {:.0} | {:.1} |",
            d.commits as f64 / d.secs,
            h.commits as f64 / h.secs,
            100.0 * h.aborts as f64 / (h.commits + h.aborts).max(1) as f64
        );
    }

    let fsyncs = fdatasync_rate(dir, cfg.phase);
    println!("\n## Durable commits (1-key transactions, disjoint keys)\n");
    println!(
        "Machine fdatasync rate (4 KiB pwrite over written blocks + fdatasync), same run: {fsyncs:.0}/s, {:.0} µs each\n",
        1e6 / fsyncs
    );
    println!(
        "| threads | commits/s | vs 1 thread | fsyncs/commit | mean group | bytes/commit | p50 µs | p99 µs | p99 in fdatasyncs |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut single = 0.0;
    for threads in [1u64, 4, 16, 64] {
        let r = on_fresh(dir, "d.db", |db| {
            writers(db, threads, false, Durability::Durable, cfg.phase)
        });
        let rate = r.commits as f64 / r.secs;
        if threads == 1 {
            single = rate;
        }
        println!(
            "| {threads} | {rate:.0} | {:.1}x | {:.3} | {:.1} | {:.0} | {} | {} | {:.1} |",
            rate / single,
            r.syncs as f64 / r.group_commits.max(1) as f64,
            r.group_commits as f64 / r.groups.max(1) as f64,
            r.bytes as f64 / r.group_commits.max(1) as f64,
            r.latency(0.50),
            r.latency(0.99),
            f64::from(r.latency(0.99)) * fsyncs / 1e6,
        );
    }

    println!("\n## What one fdatasync costs by the pages it flushes (same run)\n");
    println!(
        "A group's sync flushes its capsules, its proofs and the previous group's markers, \
         about three places in the file; this is the disk's price for that.\n"
    );
    println!("| pages per sync | contiguous µs | scattered µs |");
    println!("|---:|---:|---:|");
    for (pages, contiguous, scattered) in sync_cost_by_pages(dir, if quick { 100 } else { 600 }) {
        println!("| {pages} | {contiguous:.0} | {scattered:.0} |");
    }
    let (holes, written) = sync_cost_into_holes(dir, if quick { 200 } else { 1_000 });
    println!(
        "\nOne page a sync into a hole (a file grown by `set_len`): {holes:.0} µs; into the same \
         pages once written: {written:.0} µs. The log takes its pages 16 at a time from a run \
         written with zeros at once: the sync that carries the zeros allocates all 16 blocks, \
         and the syncs after it allocate none."
    );

    println!("\n## Recovery\n");
    let path = dir.join("recover.db");
    {
        let db = Options::new().open(&path).unwrap();
        setup_table(&db);
        let mut c = db.connect();
        for i in 0..cfg.recovery_commits {
            let mut tx = c.begin().unwrap();
            tx.put("t", &key(0, i), &[3u8; 150]).unwrap();
            tx.commit_with(Durability::Applied).unwrap();
        }
        db.close().unwrap();
    }
    let start = Instant::now();
    let db = Database::open(&path).unwrap();
    let took = start.elapsed();
    println!(
        "reopen after {} commits (none checkpointed): {:.1} ms ({} commits replayed)",
        cfg.recovery_commits,
        took.as_secs_f64() * 1e3,
        db.stats().recovered_commits
    );
}
