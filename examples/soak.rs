//! A soak run: many threads mixing bank transfers, scans, snapshots, filler rows that
//! grow and shrink the file, and checkpoints and compactions beside them, for minutes.
//!
//! ```sh
//! cargo run --release --example soak -- --minutes 10 --threads 64 [--path FILE]
//! ```
//!
//! Every few seconds it prints one line (throughput, file size, memory, version store,
//! the longest commit of the interval); at the end a summary, the final
//! `check_integrity()` and a reopen that checks the invariant again. Any violated
//! invariant (a bank total that is off, a negative balance, a filler value that reads
//! back wrong, an unexpected error) stops the run and makes it fail. `tests/soak_short.rs`
//! runs the same [`run`] for a few seconds; it asserts invariants and integrity, never
//! timings: the numbers are for a person to read.

use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error, Isolation, Transaction};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BANK: &str = "bank";
const FILLER: &str = "filler";
const ACCOUNTS: u64 = 256;
const INITIAL: i64 = 1000;
const TOTAL: i64 = INITIAL * ACCOUNTS as i64;
/// Largest amount moved by one transfer.
const AMOUNT_MAX: u64 = 100;
/// Filler values are `FILLER_LEN_MIN..FILLER_LEN_MAX` bytes, now and then `FILLER_LEN_HUGE`.
const FILLER_LEN_MIN: u64 = 4 << 10;
const FILLER_LEN_MAX: u64 = 512 << 10;
const FILLER_LEN_HUGE: usize = 4 << 20;
/// Each filler thread grows its rows to a random target up to this, then deletes them.
const FILLER_BYTES_PER_THREAD_MAX: u64 = 48 << 20;
/// Violation messages kept for the report (the count is always exact).
const VIOLATIONS_KEPT_MAX: usize = 20;
/// How often the maintenance thread samples file size and memory for the peaks.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

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

/// One progress line's numbers.
#[derive(Clone, Debug, Default)]
pub struct Interval {
    /// Seconds since the workload started.
    pub elapsed_s: f64,
    /// Commits of transfers and filler rows per second in the interval.
    pub commits_per_s: f64,
    /// Conflicts (transfers and serializable scans) per second.
    pub aborts_per_s: f64,
    /// Full-table range scans per second (serializable and snapshot).
    pub scans_per_s: f64,
    /// File length at the end of the interval.
    pub file_len: u64,
    /// Resident set size, kB.
    pub rss_kb: u64,
    /// Peak resident set size so far, kB.
    pub hwm_kb: u64,
    /// Anonymous resident memory (heap, not the file mapping), kB.
    pub anon_kb: u64,
    /// Versions in the version store.
    pub versions: u64,
    /// Bytes in the version store.
    pub version_bytes: u64,
    /// Records the commit index keeps for validation.
    pub index_records: usize,
    /// Pages in the free set.
    pub free_pages: u64,
    /// The longest single commit call in the interval.
    pub commit_max: Duration,
}

/// What a run did and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Every violated invariant (the first [`VIOLATIONS_KEPT_MAX`] messages).
    pub violations: Vec<String>,
    /// Number of violations.
    pub violation_count: u64,
    /// The progress lines.
    pub intervals: Vec<Interval>,
    /// How long the workload ran.
    pub elapsed: Duration,
    /// Committed transfers.
    pub transfers: u64,
    /// Committed filler inserts and deletes.
    pub filler_commits: u64,
    /// Conflicts met (each retried).
    pub aborts: u64,
    /// Range scans that checked the bank total.
    pub scans: u64,
    /// Snapshot (`begin_read`) checks of the bank total.
    pub snapshots: u64,
    /// Filler values read back and verified.
    pub filler_checks: u64,
    /// Checkpoints and compactions run by the maintenance thread.
    pub checkpoints: u64,
    /// Compactions run by the maintenance thread.
    pub compactions: u64,
    /// Bytes `compact` returned to the operating system in total.
    pub compacted_bytes: u64,
    /// Peak resident set size (VmHWM), kB.
    pub peak_rss_kb: u64,
    /// Peak anonymous resident memory sampled, kB.
    pub peak_anon_kb: u64,
    /// Peak file length sampled.
    pub peak_file_len: u64,
    /// File length when the workload stopped.
    pub final_file_len: u64,
    /// The longest single commit call: the stall bound observed.
    pub commit_max: Duration,
    /// The longest `checkpoint()` call.
    pub checkpoint_max: Duration,
    /// The longest `compact()` call.
    pub compact_max: Duration,
    /// Problems found by `check_integrity()` after the workload (`None` if it failed).
    pub integrity: Option<Vec<String>>,
    /// Problems found by `check_integrity()` after reopening.
    pub reopen_integrity: Option<Vec<String>>,
    /// Whether the reopened database held the bank total and readable filler rows.
    pub reopen_ok: bool,
}

impl Report {
    /// Whether no invariant was violated and both integrity checks and the reopen passed.
    pub fn passed(&self) -> bool {
        self.violation_count == 0
            && self.integrity.as_ref().is_some_and(Vec::is_empty)
            && self.reopen_integrity.as_ref().is_some_and(Vec::is_empty)
            && self.reopen_ok
    }
}

/// Counters shared by the workers, the maintenance thread and the reporter.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    transfers: AtomicU64,
    filler_commits: AtomicU64,
    aborts: AtomicU64,
    scans: AtomicU64,
    snapshots: AtomicU64,
    filler_checks: AtomicU64,
    checkpoints: AtomicU64,
    compactions: AtomicU64,
    compacted_bytes: AtomicU64,
    commit_max_ns: AtomicU64,
    interval_commit_max_ns: AtomicU64,
    checkpoint_max_ns: AtomicU64,
    compact_max_ns: AtomicU64,
    peak_file_len: AtomicU64,
    peak_anon_kb: AtomicU64,
    violation_count: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl Shared {
    /// Records a violated invariant and stops the run.
    fn violation(&self, what: String) {
        self.violation_count.fetch_add(1, Ordering::Relaxed);
        let mut v = self.violations.lock();
        if v.len() < VIOLATIONS_KEPT_MAX {
            eprintln!("soak: VIOLATION: {what}");
            v.push(what);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Commits `tx`, timing the call.
    fn commit(&self, tx: Transaction<'_>, level: Durability) -> capsuledb::Result<u64> {
        let t = Instant::now();
        let r = tx.commit_with(level);
        let ns = t.elapsed().as_nanos() as u64;
        self.commit_max_ns.fetch_max(ns, Ordering::Relaxed);
        self.interval_commit_max_ns.fetch_max(ns, Ordering::Relaxed);
        r.map(|info| info.seq)
    }
}

fn account(i: u64) -> Vec<u8> {
    format!("acct{i:05}").into_bytes()
}

fn decode(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The bytes of filler row `key`, `len` long: a pattern seeded by the key, so any
/// reader can check a value it finds.
fn filler_value(key: &[u8], len: usize) -> Vec<u8> {
    let seed = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut v = Vec::with_capacity(len);
    let mut x = seed;
    while v.len() < len {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let word = x.to_le_bytes();
        let take = (len - v.len()).min(word.len());
        v.extend_from_slice(&word[..take]);
    }
    v
}

fn filler_key(thread: usize, n: u64) -> Vec<u8> {
    format!("f{thread:03}/{n:010}").into_bytes()
}

/// Whether a filler value found under `key` is the one its key implies.
fn filler_ok(key: &[u8], value: &[u8]) -> bool {
    value == filler_value(key, value.len()).as_slice()
}

/// Checks the bank table as `tx` sees it, by a scan (forward or reverse) or by point
/// reads: every account present, none negative, the total intact.
fn check_bank(tx: &Transaction<'_>, how: u64) -> Result<(), String> {
    let mut balances = Vec::with_capacity(ACCOUNTS as usize);
    let mut push = |k: &[u8], v: &[u8]| -> Result<(), String> {
        let b = decode(v).ok_or_else(|| {
            format!(
                "account {} holds {:?}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })?;
        balances.push(b);
        Ok(())
    };
    let err = |e: Error| format!("reading the bank: {e}");
    match how % 3 {
        0 => {
            for item in tx.range(BANK, b"acct".as_slice()..).map_err(err)? {
                let (k, v) = item.map_err(err)?;
                push(&k, &v)?;
            }
        }
        1 => {
            for item in tx.range_rev(BANK, ..b"acct~".as_slice()).map_err(err)? {
                let (k, v) = item.map_err(err)?;
                push(&k, &v)?;
            }
        }
        _ => {
            for i in 0..ACCOUNTS {
                let k = account(i);
                match tx.get_ref(BANK, &k).map_err(err)? {
                    Some(v) => push(&k, &v)?,
                    None => return Err(format!("account {i} is missing")),
                }
            }
        }
    }
    let total: i64 = balances.iter().sum();
    if balances.len() != ACCOUNTS as usize || total != TOTAL || balances.iter().any(|&b| b < 0) {
        return Err(format!(
            "snapshot {} ({}) saw {} accounts totalling {total} (expected {ACCOUNTS} totalling \
             {TOTAL}), min balance {:?}",
            tx.snapshot_seq(),
            ["scan", "reverse scan", "point reads"][(how % 3) as usize],
            balances.len(),
            balances.iter().min()
        ));
    }
    Ok(())
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

/// What one conflict-retrying transaction attempt ended in.
enum Attempt {
    Done,
    Retry(u64),
}

fn transfer_once(
    conn: &mut capsuledb::Connection,
    sh: &Shared,
    rng: &mut Rng,
) -> Result<Attempt, String> {
    let from = rng.below(ACCOUNTS);
    let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
    let amount = 1 + rng.below(AMOUNT_MAX) as i64;
    let level = match rng.below(8) {
        0 => Durability::Applied,
        1 => Durability::Written,
        _ => Durability::Durable,
    };
    let err = |e: Error| format!("transfer: {e}");
    let mut tx = conn.begin_with(Isolation::Serializable).map_err(err)?;
    let read = |tx: &Transaction<'_>, i: u64| -> Result<i64, String> {
        let v = tx
            .get(BANK, &account(i))
            .map_err(err)?
            .ok_or_else(|| format!("account {i} is missing"))?;
        decode(&v).ok_or_else(|| format!("account {i} holds garbage"))
    };
    let (a, b) = (read(&tx, from)?, read(&tx, to)?);
    if a < 0 || b < 0 {
        return Err(format!("negative balance read: {a}, {b}"));
    }
    if a < amount {
        return Ok(Attempt::Done);
    }
    tx.put(BANK, &account(from), (a - amount).to_string().as_bytes())
        .map_err(err)?;
    tx.put(BANK, &account(to), (b + amount).to_string().as_bytes())
        .map_err(err)?;
    match sh.commit(tx, level) {
        Ok(_) => {
            sh.transfers.fetch_add(1, Ordering::Relaxed);
            Ok(Attempt::Done)
        }
        Err(Error::Conflict { committed_seq, .. }) => {
            sh.aborts.fetch_add(1, Ordering::Relaxed);
            Ok(Attempt::Retry(committed_seq))
        }
        Err(e) => Err(err(e)),
    }
}

fn transfer_thread(db: Database, sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut conn = db.connect();
    while !sh.stopped() {
        match transfer_once(&mut conn, &sh, &mut rng) {
            Ok(Attempt::Done) => {}
            Ok(Attempt::Retry(seq)) => {
                // A retry that begins before the conflicting commit is visible would meet
                // the same conflict again.
                if let Err(e) = db.wait_for(seq, Durability::Applied) {
                    sh.violation(format!("wait_for after a conflict: {e}"));
                }
            }
            Err(what) => sh.violation(what),
        }
    }
}

/// Serializable full scans that check the total, then commit (validating the scanned
/// ranges: a conflict is an abort, not a violation).
fn scan_thread(db: Database, sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut conn = db.connect();
    while !sh.stopped() {
        let tx = match conn.begin() {
            Ok(tx) => tx,
            Err(e) => return sh.violation(format!("begin: {e}")),
        };
        if let Err(what) = check_bank(&tx, rng.below(2)) {
            return sh.violation(what);
        }
        sh.scans.fetch_add(1, Ordering::Relaxed);
        match sh.commit(tx, Durability::Applied) {
            Ok(_) => {}
            Err(Error::Conflict { .. }) => {
                sh.aborts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => return sh.violation(format!("read-only serializable commit: {e}")),
        }
    }
}

/// `begin_read` snapshots that check the bank (scan or point reads) and filler values;
/// now and then a snapshot is held for a while and checked again, so the version store
/// has to keep old versions alive.
fn snapshot_thread(db: Database, sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut conn = db.connect();
    while !sh.stopped() {
        let tx = match conn.begin_read() {
            Ok(tx) => tx,
            Err(e) => return sh.violation(format!("begin_read: {e}")),
        };
        let how = rng.below(3);
        if let Err(what) = check_bank(&tx, how) {
            return sh.violation(what);
        }
        if how < 2 {
            sh.scans.fetch_add(1, Ordering::Relaxed);
        }
        sh.snapshots.fetch_add(1, Ordering::Relaxed);
        // A few filler rows from a random point: whatever is there must read back right.
        let start = filler_key(rng.below(64) as usize, 0);
        match tx.range(FILLER, start.as_slice()..) {
            Ok(range) => {
                for item in range.take(2) {
                    match item {
                        Ok((k, v)) if filler_ok(&k, &v) => {
                            sh.filler_checks.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((k, v)) => {
                            return sh.violation(format!(
                                "filler {} reads back wrong ({} bytes)",
                                String::from_utf8_lossy(&k),
                                v.len()
                            ));
                        }
                        Err(e) => return sh.violation(format!("filler scan: {e}")),
                    }
                }
            }
            Err(e) => return sh.violation(format!("filler range: {e}")),
        }
        if rng.chance(1, 200) {
            // Hold the snapshot while commits, checkpoints and compactions go on.
            std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
            if let Err(what) = check_bank(&tx, rng.below(3)) {
                return sh.violation(format!("held snapshot: {what}"));
            }
        }
    }
}

/// Inserts filler rows until this thread holds a random target of bytes, verifies and
/// deletes them all, and starts over: the file grows and shrinks.
fn filler_thread(db: Database, sh: Arc<Shared>, thread: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut conn = db.connect();
    let mut next = 0u64;
    let fail = |e: Error| format!("filler thread {thread}: {e}");
    let run =
        |conn: &mut capsuledb::Connection, rng: &mut Rng, next: &mut u64| -> Result<(), String> {
            let target = (1 << 20) + rng.below(FILLER_BYTES_PER_THREAD_MAX);
            let mut live: Vec<(Vec<u8>, usize)> = Vec::new();
            let mut bytes = 0u64;
            while bytes < target && !sh.stopped() {
                let mut tx = conn.begin_with(Isolation::Snapshot).map_err(fail)?;
                let mut batch = Vec::new();
                for _ in 0..=rng.below(3) {
                    let len = if rng.chance(1, 50) {
                        FILLER_LEN_HUGE
                    } else {
                        (FILLER_LEN_MIN + rng.below(FILLER_LEN_MAX - FILLER_LEN_MIN)) as usize
                    };
                    let key = filler_key(thread, *next);
                    *next += 1;
                    tx.put(FILLER, &key, &filler_value(&key, len))
                        .map_err(fail)?;
                    batch.push((key, len));
                }
                // Keys are this thread's own: no conflict is possible.
                sh.commit(tx, Durability::Durable).map_err(fail)?;
                sh.filler_commits.fetch_add(1, Ordering::Relaxed);
                bytes += batch.iter().map(|(_, l)| *l as u64).sum::<u64>();
                live.extend(batch);
            }
            // Verify through zero-copy reads (mapped once checkpointed), then delete.
            for chunk in live.chunks(8) {
                let mut tx = conn.begin_with(Isolation::Snapshot).map_err(fail)?;
                for (key, len) in chunk {
                    let v = tx.get_ref(FILLER, key).map_err(fail)?.ok_or_else(|| {
                        format!("filler {} is missing", String::from_utf8_lossy(key))
                    })?;
                    if v.len() != *len || !filler_ok(key, &v) {
                        return Err(format!(
                            "filler {} reads back wrong ({} bytes, expected {len})",
                            String::from_utf8_lossy(key),
                            v.len()
                        ));
                    }
                    sh.filler_checks.fetch_add(1, Ordering::Relaxed);
                    tx.delete(FILLER, key).map_err(fail)?;
                }
                sh.commit(tx, Durability::Durable).map_err(fail)?;
                sh.filler_commits.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        };
    while !sh.stopped() {
        if let Err(what) = run(&mut conn, &mut rng, &mut next) {
            return sh.violation(what);
        }
    }
}

/// Memory figures from `/proc/self/status`, kB: (VmRSS, VmHWM, RssAnon).
fn memory_kb() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("RssAnon:"))
}

fn file_len(db: &Database) -> u64 {
    db.info().map(|i| i.file_len).unwrap_or(0)
}

/// Checkpoints and compacts on a schedule and samples the peaks.
fn maintenance_thread(db: Database, sh: Arc<Shared>, cfg: Config) {
    let mut last_checkpoint = Instant::now();
    let mut last_compact = Instant::now();
    while !sh.stopped() {
        std::thread::sleep(SAMPLE_EVERY);
        sh.peak_file_len.fetch_max(file_len(&db), Ordering::Relaxed);
        sh.peak_anon_kb.fetch_max(memory_kb().2, Ordering::Relaxed);
        if last_compact.elapsed() >= cfg.compact_every {
            let t = Instant::now();
            match db.compact() {
                Ok(shrunk) => {
                    sh.compacted_bytes.fetch_add(shrunk, Ordering::Relaxed);
                    sh.compactions.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return sh.violation(format!("compact: {e}")),
            }
            let ns = t.elapsed().as_nanos() as u64;
            sh.compact_max_ns.fetch_max(ns, Ordering::Relaxed);
            last_compact = Instant::now();
            last_checkpoint = Instant::now();
        } else if last_checkpoint.elapsed() >= cfg.checkpoint_every {
            let t = Instant::now();
            if let Err(e) = db.checkpoint() {
                return sh.violation(format!("checkpoint: {e}"));
            }
            sh.checkpoints.fetch_add(1, Ordering::Relaxed);
            let ns = t.elapsed().as_nanos() as u64;
            sh.checkpoint_max_ns.fetch_max(ns, Ordering::Relaxed);
            last_checkpoint = Instant::now();
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_header() {
    println!(
        "{:>7} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>10}",
        "t_s",
        "commit/s",
        "abort/s",
        "scan/s",
        "file_MiB",
        "rss_MiB",
        "hwm_MiB",
        "anon_MiB",
        "versions",
        "vstore_MiB",
        "idx_recs",
        "free_pg",
        "commit_max_ms"
    );
}

fn print_interval(i: &Interval) {
    println!(
        "{:>7.1} {:>9.0} {:>8.0} {:>8.0} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>9} {:>9.1} {:>8} {:>8} \
         {:>10.1}",
        i.elapsed_s,
        i.commits_per_s,
        i.aborts_per_s,
        i.scans_per_s,
        mib(i.file_len),
        i.rss_kb as f64 / 1024.0,
        i.hwm_kb as f64 / 1024.0,
        i.anon_kb as f64 / 1024.0,
        i.versions,
        mib(i.version_bytes),
        i.index_records,
        i.free_pages,
        ms(i.commit_max)
    );
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

fn print_summary(r: &Report, stats: &capsuledb::Stats) {
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let commits = r.transfers + r.filler_commits;
    println!("soak summary after {secs:.1} s:");
    println!(
        "  commits {commits} ({:.0}/s): {} transfers, {} filler; {} aborts ({:.1}% of attempts)",
        commits as f64 / secs,
        r.transfers,
        r.filler_commits,
        r.aborts,
        100.0 * r.aborts as f64 / (commits + r.aborts).max(1) as f64
    );
    println!(
        "  checks: {} scans, {} snapshots, {} filler values verified",
        r.scans, r.snapshots, r.filler_checks
    );
    println!(
        "  maintenance: {} checkpoints (longest {:.1} ms), {} compactions (longest {:.1} ms, \
         {:.1} MiB returned); engine checkpoints {}",
        r.checkpoints,
        ms(r.checkpoint_max),
        r.compactions,
        ms(r.compact_max),
        mib(r.compacted_bytes),
        stats.checkpoints
    );
    println!(
        "  memory: peak RSS {:.1} MiB (VmHWM), peak anon {:.1} MiB; version store at the end \
         {} versions, {:.1} MiB",
        r.peak_rss_kb as f64 / 1024.0,
        r.peak_anon_kb as f64 / 1024.0,
        stats.versions,
        mib(stats.version_bytes)
    );
    println!(
        "  file: peak {:.1} MiB, final {:.1} MiB",
        mib(r.peak_file_len),
        mib(r.final_file_len)
    );
    println!(
        "  longest single commit call: {:.1} ms; serialized section max {:.1} µs",
        ms(r.commit_max),
        stats.section_ns_max as f64 / 1e3
    );
    let show = |p: &Option<Vec<String>>| match p {
        Some(v) if v.is_empty() => "clean".to_string(),
        Some(v) => format!("{} problems: {:?}", v.len(), v),
        None => "failed to run".to_string(),
    };
    println!("  check_integrity: {}", show(&r.integrity));
    println!(
        "  reopen: {}, check_integrity {}",
        if r.reopen_ok {
            "bank total and filler rows intact"
        } else {
            "FAILED"
        },
        show(&r.reopen_integrity)
    );
    println!(
        "  violations: {}{}",
        r.violation_count,
        if r.violations.is_empty() {
            String::new()
        } else {
            format!(" {:?}", r.violations)
        }
    );
    println!("  result: {}", if r.passed() { "PASS" } else { "FAIL" });
}

const USAGE: &str = "usage: soak [--minutes M | --seconds S] [--threads N] [--path FILE] \
                     [--report-secs S] [--seed N]";

fn parse_args(args: &[String]) -> Result<(Config, Option<tempfile::TempDir>), String> {
    let mut cfg = Config::new(PathBuf::new());
    let mut path = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--minutes" => cfg.duration = Duration::from_secs_f64(num(value)? * 60.0),
            "--seconds" => cfg.duration = Duration::from_secs_f64(num(value)?),
            "--threads" => cfg.threads = num(value)? as usize,
            "--report-secs" => cfg.report_every = Duration::from_secs_f64(num(value)?.max(0.1)),
            "--seed" => cfg.seed = num(value)? as u64,
            "--path" => path = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let dir = match path {
        Some(p) => {
            cfg.path = p;
            None
        }
        None => {
            let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
            cfg.path = dir.path().join("soak.db");
            Some(dir)
        }
    };
    Ok((cfg, dir))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, _dir) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    if cfg.path.exists() {
        eprintln!("soak: {} exists; give a new file", cfg.path.display());
        return ExitCode::from(2);
    }
    if run(&cfg).passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
