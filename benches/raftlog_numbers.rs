//! The numbers the Raft-log store is held to, measured in one run (a benchmark, not a
//! test: it reports, it never asserts on time): durable append throughput of 64-entry
//! batches of 256-byte entries on 1 and several logs, and the latency of reading 10,000
//! consecutive entries from the version store, from the checkpointed tree and from the
//! log's cache (owned one allocation per entry, owned in one `EntryBatch`, and lent),
//! beside the machine's fdatasync rate.
//!
//! ```sh
//! cargo bench --bench raftlog_numbers            # about 20 seconds
//! cargo bench --bench raftlog_numbers -- --quick # a few seconds
//! ```

#[path = "support/fsync.rs"]
mod fsync;
use capsuledb::Database;
use capsuledb::raftlog::{AppendTicket, Entry, EntryBatch, RaftLog};
use fsync::fdatasync_rate;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BATCH_ENTRIES: u64 = 64;
const ENTRY_BYTES: usize = 256;
const READ_ENTRIES: u64 = 10_000;
/// Batches each log keeps in flight in the pipelined rows (`RaftLog::append_async`).
const PIPELINE_DEPTH: usize = 64;

fn fresh(dir: &Path, name: &str) -> Database {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    Database::open(path).unwrap()
}

fn batch(start: u64) -> Vec<Entry> {
    (start..start + BATCH_ENTRIES)
        .map(|i| {
            let mut data = vec![(i % 251) as u8; ENTRY_BYTES];
            data[..8].copy_from_slice(&i.to_le_bytes());
            Entry::new(i, 1, data)
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Appends 64-entry batches to `logs` logs from one thread each for `phase`: one
/// blocking `append` at a time when `depth` is 1, else `append_async` with up to about
/// `depth` batches in flight, waited on by a second thread per log (the latency is
/// then from submission to durable).
fn append_phase(dir: &Path, logs: usize, depth: usize, phase: Duration) -> String {
    let db = fresh(dir, &format!("append-{logs}-{depth}.db"));
    let handles: Vec<RaftLog> = (0..logs)
        .map(|i| RaftLog::open_named(&db, &format!("log{i}")).unwrap())
        .collect();
    // Warm up: first commits allocate the file.
    for log in &handles {
        log.append(&batch(1)).unwrap();
    }
    let before = db.stats();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = handles
        .iter()
        .cloned()
        .map(|log| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut lat_us = Vec::new();
                let mut next = 1 + BATCH_ENTRIES;
                if depth <= 1 {
                    while !stop.load(Ordering::Relaxed) {
                        let b = batch(next);
                        let t = Instant::now();
                        log.append(&b).unwrap();
                        lat_us.push(t.elapsed().as_secs_f64() * 1e6);
                        next += BATCH_ENTRIES;
                    }
                    return lat_us;
                }
                // The tickets go to a waiter thread (as the openraft adapter does), so
                // the next batches are committed while a group is being synced.
                let (tickets, queue) =
                    std::sync::mpsc::sync_channel::<(Instant, AppendTicket)>(depth);
                let waiter = std::thread::spawn(move || {
                    let mut lat_us = Vec::new();
                    for (t, ticket) in queue {
                        ticket.wait().unwrap();
                        lat_us.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    lat_us
                });
                while !stop.load(Ordering::Relaxed) {
                    let b = batch(next);
                    let t = Instant::now();
                    let ticket = log.append_async(&b).unwrap().unwrap();
                    tickets.send((t, ticket)).unwrap();
                    next += BATCH_ENTRIES;
                }
                drop(tickets);
                lat_us.extend(waiter.join().unwrap());
                lat_us
            })
        })
        .collect();
    std::thread::sleep(phase);
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<f64> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let secs = start.elapsed().as_secs_f64();
    let after = db.stats();
    lat.sort_by(f64::total_cmp);
    let batches = lat.len() as f64;
    let entries = batches * BATCH_ENTRIES as f64;
    let syncs = (after.group_syncs - before.group_syncs) as f64;
    let groups = (after.groups - before.groups).max(1) as f64;
    format!(
        "| {:<22} | {logs:>4} | {:>11.0} | {:>9.0} | {:>6.1} | {:>7.0} | {:>7.0} | {:>8.2} | {:>6.2} |",
        if depth <= 1 {
            "append 64 x 256 B".to_string()
        } else {
            format!("append_async {depth} deep")
        },
        entries / secs,
        batches / secs,
        entries * ENTRY_BYTES as f64 / secs / 1e6,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        syncs / batches,
        (after.group_commits - before.group_commits) as f64 / groups,
    )
}

/// Median and minimum microseconds of `reps` calls of `f`, each returning `READ_ENTRIES`
/// entries.
fn time_reads(reps: usize, f: impl FnMut() -> Vec<Entry>) -> (f64, f64) {
    time_owned_reads(reps, f, Vec::len)
}

/// [`time_reads`] for any owned result that `len` counts (dropped after the clock stops).
fn time_owned_reads<T>(reps: usize, mut f: impl FnMut() -> T, len: fn(&T) -> usize) -> (f64, f64) {
    let mut us = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let got = f();
        us.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(len(&got) as u64, READ_ENTRIES);
        std::hint::black_box(got);
    }
    us.sort_by(f64::total_cmp);
    (percentile(&us, 0.5), us[0])
}

/// [`time_reads`] for a walk that lends the entries (`for_each_entry`) and returns
/// how many it saw.
fn time_lent_reads(reps: usize, mut f: impl FnMut() -> u64) -> (f64, f64) {
    let mut us = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let n = f();
        us.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(n, READ_ENTRIES);
    }
    us.sort_by(f64::total_cmp);
    (percentile(&us, 0.5), us[0])
}

/// Walks `range` of `log` with [`RaftLog::for_each_entry`] (the database, never the
/// cache) and counts the entries it lent.
fn lent_count(log: &RaftLog, range: std::ops::RangeInclusive<u64>) -> u64 {
    let mut n = 0u64;
    log.for_each_entry(range, |_, _, data| {
        std::hint::black_box(data);
        n += 1;
        Ok(())
    })
    .unwrap();
    n
}

fn read_phase(dir: &Path, reps: usize) -> Vec<String> {
    let db = fresh(dir, "read.db");
    let log = RaftLog::open(&db).unwrap();
    let batches = READ_ENTRIES.div_ceil(BATCH_ENTRIES) + 1;
    for b in 0..batches {
        log.append(&batch(1 + b * BATCH_ENTRIES)).unwrap();
    }
    let range = 1..=READ_ENTRIES;
    let mut rows = Vec::new();
    let mut row = |what: &str, where_: String, (p50, min): (f64, f64)| {
        rows.push(format!(
            "| read 10k consecutive   | {what:<23} | {p50:>8.0} | {min:>8.0} | {:>6.1} | {where_} |",
            READ_ENTRIES as f64 / p50
        ));
    };
    let stats = db.stats();
    let where_ = format!("{} versions in the store", stats.versions);
    row(
        "database (store)",
        where_.clone(),
        time_reads(reps, || log.entries_uncached(range.clone()).unwrap()),
    );
    row(
        "database (store), batch",
        where_.clone(),
        time_owned_reads(
            reps,
            || log.entry_batch(range.clone()).unwrap(),
            EntryBatch::len,
        ),
    );
    row(
        "database (store), lent",
        where_.clone(),
        time_lent_reads(reps, || lent_count(&log, range.clone())),
    );
    row(
        "cache",
        where_,
        time_reads(reps, || log.entries(range.clone()).unwrap()),
    );
    db.checkpoint().unwrap();
    db.collect_garbage().unwrap();
    let where_ = format!(
        "after checkpoint: {} versions in the store",
        db.stats().versions
    );
    let cold = RaftLog::open(&db).unwrap();
    row(
        "database (B-tree)",
        where_.clone(),
        time_reads(reps, || cold.entries(range.clone()).unwrap()),
    );
    row(
        "database, batch",
        where_.clone(),
        time_owned_reads(
            reps,
            || cold.entry_batch(range.clone()).unwrap(),
            EntryBatch::len,
        ),
    );
    row(
        "database, lent",
        where_.clone(),
        time_lent_reads(reps, || lent_count(&cold, range.clone())),
    );
    row(
        "cache",
        where_,
        time_reads(reps, || log.entries(range.clone()).unwrap()),
    );
    rows
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (phase, reps) = if quick {
        (Duration::from_millis(500), 10)
    } else {
        (Duration::from_secs(3), 50)
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let fsyncs = fdatasync_rate(dir, phase);
    println!(
        "Machine fdatasync rate (4 KiB pwrite over written blocks + fdatasync), same run: {fsyncs:.0}/s, {:.0} µs each\n",
        1e6 / fsyncs
    );
    println!(
        "| phase                  | logs |   entries/s | batches/s |   MB/s | p50 µs | p99 µs | fsyncs/batch | batches/group |"
    );
    println!(
        "| ---------------------- | ---: | ----------: | --------: | -----: | ------: | ------: | -------: | -----: |"
    );
    for depth in [1, PIPELINE_DEPTH] {
        for logs in [1, 2, 4] {
            println!("{}", append_phase(dir, logs, depth, phase));
        }
    }
    println!(
        "\n(one thread per log; appends to one log serialize on its writer lock, so more\n\
         appenders on one log add nothing; several logs share group commits; the\n\
         append_async rows keep up to {PIPELINE_DEPTH} batches in flight per log, a waiter\n\
         thread per log waiting on their tickets in order)\n"
    );
    println!(
        "| phase                  | path                    |   p50 µs |   min µs | M entries/s | where the entries are |"
    );
    println!(
        "| ---------------------- | ----------------------- | -------: | -------: | -----: | ----- |"
    );
    for r in read_phase(dir, reps) {
        println!("{r}");
    }
}
