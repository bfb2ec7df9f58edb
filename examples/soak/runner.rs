//! One soak run: the setup, the threads of each kind, the progress lines while they
//! work, then the final checks on the quiet database and after a reopen.

use super::bank::{ACCOUNTS, BANK, INITIAL, account, check_bank, scan_thread, transfer_thread};
use super::filler::{FILLER, filler_ok, filler_thread};
use super::maintenance::{file_len, maintenance_thread, memory_kb};
use super::report::{Interval, Report, print_header, print_interval, print_summary};
use super::shared::Shared;
use super::snapshots::snapshot_thread;
use capsuledb::Database;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long the workload runs (the final checks come after).
    pub duration: Duration,
    /// Worker threads (transfers, scans, snapshots, filler); one maintenance thread more.
    pub threads: usize,
    /// The database file; it must not exist yet.
    pub path: PathBuf,
    /// Time between progress lines.
    pub report_every: Duration,
    /// Time between `Database::checkpoint` calls of the maintenance thread.
    pub checkpoint_every: Duration,
    /// Time between `Database::compact` calls of the maintenance thread.
    pub compact_every: Duration,
    /// Seeds every thread's choices.
    pub seed: u64,
}

impl Config {
    /// The defaults of the command line, on `path`.
    pub fn new(path: PathBuf) -> Config {
        Config {
            duration: Duration::from_secs(600),
            threads: 64,
            path,
            report_every: Duration::from_secs(10),
            checkpoint_every: Duration::from_secs(2),
            compact_every: Duration::from_secs(9),
            seed: 0x50A4_0001,
        }
    }
}

fn setup(db: &Database) -> capsuledb::Result<()> {
    let mut conn = db.connect();
    let mut tx = conn.begin()?;
    tx.create_table(BANK)?;
    tx.create_table(FILLER)?;
    for i in 0..ACCOUNTS {
        tx.put(BANK, &account(i), INITIAL.to_string().as_bytes())?;
    }
    tx.commit()?;
    Ok(())
}

/// Checks the bank and every filler row of a quiet database.
fn check_quiet(db: &Database) -> Result<(), String> {
    let mut conn = db.connect();
    let tx = conn.begin_read().map_err(|e| e.to_string())?;
    for how in 0..3 {
        check_bank(&tx, how)?;
    }
    for item in tx.iter(FILLER).map_err(|e| e.to_string())? {
        let (k, v) = item.map_err(|e| e.to_string())?;
        if !filler_ok(&k, &v) {
            return Err(format!(
                "filler {} reads back wrong",
                String::from_utf8_lossy(&k)
            ));
        }
    }
    Ok(())
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .unwrap_or_else(|e| panic!("spawning a soak thread: {e}"))
}

/// Runs the soak described by `cfg` and reports what it saw. Panics only if the
/// database cannot be created or a thread cannot be spawned; a violated invariant is
/// in the report.
pub fn run(cfg: &Config) -> Report {
    assert!(
        !cfg.path.exists(),
        "{} exists; the soak needs a new file",
        cfg.path.display()
    );
    let threads = cfg.threads.max(4);
    let db = Database::open(&cfg.path).unwrap_or_else(|e| panic!("creating the database: {e}"));
    setup(&db).unwrap_or_else(|e| panic!("setting up the bank: {e}"));
    let sh = Arc::new(Shared::default());
    // Of the workers: a sixteenth fill, an eighth scan, an eighth take snapshots, the
    // rest transfer.
    let fillers = (threads / 16).max(1);
    let scanners = (threads / 8).max(1);
    let snapshotters = (threads / 8).max(1);
    let transferers = threads - fillers - scanners - snapshotters;
    println!(
        "soak: {} for {:.0} s: {transferers} transfer, {scanners} scan, {snapshotters} \
         snapshot, {fillers} filler threads + maintenance (checkpoint every {:.0} s, compact \
         every {:.0} s)",
        cfg.path.display(),
        cfg.duration.as_secs_f64(),
        cfg.checkpoint_every.as_secs_f64(),
        cfg.compact_every.as_secs_f64()
    );
    let mut handles = Vec::new();
    let seed = |kind: u64, i: usize| cfg.seed ^ (kind << 48) ^ ((i as u64 + 1) * 0x9E37_79B9);
    for i in 0..transferers {
        let (db, sh, s) = (db.clone(), Arc::clone(&sh), seed(1, i));
        handles.push(spawn(format!("transfer{i}"), move || {
            transfer_thread(db, sh, s)
        }));
    }
    for i in 0..scanners {
        let (db, sh, s) = (db.clone(), Arc::clone(&sh), seed(2, i));
        handles.push(spawn(format!("scan{i}"), move || scan_thread(db, sh, s)));
    }
    for i in 0..snapshotters {
        let (db, sh, s) = (db.clone(), Arc::clone(&sh), seed(3, i));
        handles.push(spawn(format!("snapshot{i}"), move || {
            snapshot_thread(db, sh, s)
        }));
    }
    for i in 0..fillers {
        let (db, sh, s) = (db.clone(), Arc::clone(&sh), seed(4, i));
        handles.push(spawn(format!("filler{i}"), move || {
            filler_thread(db, sh, i, s)
        }));
    }
    {
        let (db, sh, cfg) = (db.clone(), Arc::clone(&sh), cfg.clone());
        handles.push(spawn("maintenance".into(), move || {
            maintenance_thread(db, sh, cfg)
        }));
    }

    let start = Instant::now();
    let mut report = Report::default();
    print_header();
    let counts = |sh: &Shared| {
        (
            sh.transfers.load(Ordering::Relaxed) + sh.filler_commits.load(Ordering::Relaxed),
            sh.aborts.load(Ordering::Relaxed),
            sh.scans.load(Ordering::Relaxed),
        )
    };
    let mut last = (start, counts(&sh));
    while !sh.stopped() && start.elapsed() < cfg.duration {
        let next = (last.0 + cfg.report_every).min(start + cfg.duration);
        while Instant::now() < next && !sh.stopped() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let now = Instant::now();
        let c = counts(&sh);
        let dt = now.duration_since(last.0).as_secs_f64().max(1e-9);
        let (rss_kb, hwm_kb, anon_kb) = memory_kb();
        let stats = db.stats();
        let interval = Interval {
            elapsed_s: now.duration_since(start).as_secs_f64(),
            commits_per_s: (c.0 - last.1.0) as f64 / dt,
            aborts_per_s: (c.1 - last.1.1) as f64 / dt,
            scans_per_s: (c.2 - last.1.2) as f64 / dt,
            file_len: file_len(&db),
            rss_kb,
            hwm_kb,
            anon_kb,
            versions: stats.versions,
            version_bytes: stats.version_bytes,
            index_records: stats.commit_index_records,
            free_pages: stats.free_pages,
            commit_max: Duration::from_nanos(sh.interval_commit_max_ns.swap(0, Ordering::Relaxed)),
        };
        print_interval(&interval);
        report.intervals.push(interval);
        last = (now, c);
    }
    sh.stop.store(true, Ordering::Relaxed);
    for h in handles {
        if h.join().is_err() {
            sh.violation("a soak thread panicked".into());
        }
    }
    report.elapsed = start.elapsed();
    report.final_file_len = file_len(&db);
    sh.peak_file_len
        .fetch_max(report.final_file_len, Ordering::Relaxed);

    // Quiet now: the checks are exact.
    report.integrity = match db.check_integrity() {
        Ok(r) => Some(r.problems),
        Err(e) => {
            sh.violation(format!("check_integrity: {e}"));
            None
        }
    };
    if let Err(what) = check_quiet(&db) {
        sh.violation(format!("after the workload: {what}"));
    }
    let stats = db.stats();
    if let Err(e) = db.close() {
        sh.violation(format!("close: {e}"));
    }
    match Database::open(&cfg.path) {
        Ok(db) => {
            report.reopen_ok = match check_quiet(&db) {
                Ok(()) => true,
                Err(what) => {
                    sh.violation(format!("after reopening: {what}"));
                    false
                }
            };
            report.reopen_integrity = db.check_integrity().ok().map(|r| r.problems);
        }
        Err(e) => sh.violation(format!("reopen: {e}")),
    }

    let (_, hwm_kb, anon_kb) = memory_kb();
    report.transfers = sh.transfers.load(Ordering::Relaxed);
    report.filler_commits = sh.filler_commits.load(Ordering::Relaxed);
    report.aborts = sh.aborts.load(Ordering::Relaxed);
    report.scans = sh.scans.load(Ordering::Relaxed);
    report.snapshots = sh.snapshots.load(Ordering::Relaxed);
    report.filler_checks = sh.filler_checks.load(Ordering::Relaxed);
    report.checkpoints = sh.checkpoints.load(Ordering::Relaxed);
    report.compactions = sh.compactions.load(Ordering::Relaxed);
    report.compacted_bytes = sh.compacted_bytes.load(Ordering::Relaxed);
    report.peak_rss_kb = hwm_kb;
    report.peak_anon_kb = sh.peak_anon_kb.load(Ordering::Relaxed).max(anon_kb);
    report.peak_file_len = sh.peak_file_len.load(Ordering::Relaxed);
    report.commit_max = Duration::from_nanos(sh.commit_max_ns.load(Ordering::Relaxed));
    report.checkpoint_max = Duration::from_nanos(sh.checkpoint_max_ns.load(Ordering::Relaxed));
    report.compact_max = Duration::from_nanos(sh.compact_max_ns.load(Ordering::Relaxed));
    report.violation_count = sh.violation_count.load(Ordering::Relaxed);
    report.violations = sh.violations.lock().clone();
    print_summary(&report, &stats);
    report
}
