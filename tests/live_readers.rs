//! Readers in other processes on a live file (`format-spec/locking.md`), with real
//! processes: the test binary spawns itself as a writer or a reader.
//!
//! - A writer process runs a bank workload (every transfer also appends a ledger row
//!   and bumps a counter) while reader processes take snapshots: each snapshot is
//!   exact (the balances equal a replay of exactly the ledger it holds, the total is
//!   kept) and a newer snapshot is never older. Readers also keep an old snapshot open
//!   across many newer ones, and it stays exact.
//! - The same with the writer checkpointing and compacting continuously.
//! - The writer is SIGKILLed while a reader holds snapshots: they stay exact, new
//!   snapshots read the file the dead writer left, and after a new writer recovers it
//!   the reader follows it and a fresh reader opens it.
//!
//! `CAPSULEDB_LIVE_SECS` sets how long each workload runs (default 2 seconds).

use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error, Options, Transaction};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const ROLE_ENV: &str = "CAPSULEDB_LIVE_ROLE";
const PATH_ENV: &str = "CAPSULEDB_LIVE_PATH";
const SECS_ENV: &str = "CAPSULEDB_LIVE_SECS";
const ACCOUNTS: u8 = 10;
const INITIAL: i64 = 1000;
const BANK: &str = "bank";
const LEDGER: &str = "ledger";
const META: &str = "meta";
const READERS: usize = 3;
const WRITER_THREADS: u64 = 2;
/// Snapshots a reader keeps one old snapshot open across.
const HOLD_SNAPSHOTS: u64 = 25;

fn secs() -> Duration {
    let s: f64 = std::env::var(SECS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn account(i: u8) -> [u8; 4] {
    [b'a', b'c', b'c', i]
}

/// Checks one snapshot exactly and returns its transfer count.
fn check_snapshot(tx: &Transaction<'_>) -> u64 {
    let n = tx
        .get(META, b"n")
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
    let mut balances = vec![INITIAL; usize::from(ACCOUNTS)];
    let mut rows = 0u64;
    for row in tx.range::<&[u8], _>(LEDGER, ..).unwrap() {
        let (k, v) = row.unwrap();
        rows += 1;
        assert_eq!(
            u64::from_be_bytes(k.try_into().unwrap()),
            rows,
            "ledger gap"
        );
        let (from, to) = (usize::from(v[0]), usize::from(v[1]));
        let amount = i64::from_le_bytes(v[2..10].try_into().unwrap());
        balances[from] -= amount;
        balances[to] += amount;
    }
    assert_eq!(rows, n, "the counter and the ledger disagree");
    for i in 0..ACCOUNTS {
        let v = tx.get(BANK, &account(i)).unwrap().unwrap();
        let b = i64::from_le_bytes(v.try_into().unwrap());
        assert_eq!(
            b,
            balances[usize::from(i)],
            "account {i} after {n} transfers"
        );
    }
    assert_eq!(balances.iter().sum::<i64>(), INITIAL * i64::from(ACCOUNTS));
    n
}

fn setup(path: &Path) {
    let db = Database::open(path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for t in [BANK, LEDGER, META] {
        tx.create_table(t).unwrap();
    }
    for i in 0..ACCOUNTS {
        tx.put(BANK, &account(i), &INITIAL.to_le_bytes()).unwrap();
    }
    tx.commit().unwrap();
    db.close().unwrap();
}

/// One transfer, retried on conflict.
fn transfer(db: &Database, rng: &mut Rng, fsync: bool) {
    let mut c = db.connect();
    loop {
        let mut tx = c.begin().unwrap();
        let from = (rng.next_u64() % u64::from(ACCOUNTS)) as u8;
        let to = (from + 1 + (rng.next_u64() % u64::from(ACCOUNTS - 1)) as u8) % ACCOUNTS;
        let amount = (rng.next_u64() % 50) as i64;
        let n = tx
            .get(META, b"n")
            .unwrap()
            .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()))
            + 1;
        let get = |tx: &Transaction<'_>, i| {
            i64::from_le_bytes(
                tx.get(BANK, &account(i))
                    .unwrap()
                    .unwrap()
                    .try_into()
                    .unwrap(),
            )
        };
        let (bf, bt) = (get(&tx, from), get(&tx, to));
        tx.put(BANK, &account(from), &(bf - amount).to_le_bytes())
            .unwrap();
        tx.put(BANK, &account(to), &(bt + amount).to_le_bytes())
            .unwrap();
        let mut row = vec![from, to];
        row.extend_from_slice(&amount.to_le_bytes());
        tx.put(LEDGER, &n.to_be_bytes(), &row).unwrap();
        tx.put(META, b"n", &n.to_le_bytes()).unwrap();
        let level = if fsync {
            Durability::Durable
        } else {
            Durability::Written
        };
        match tx.commit_with(level) {
            Ok(_) => return,
            Err(Error::Conflict { .. }) => continue,
            Err(e) => panic!("commit: {e}"),
        }
    }
}

/// Runs only as a child, in the role its environment names.
#[test]
fn child_role() {
    let (Ok(role), Ok(path)) = (std::env::var(ROLE_ENV), std::env::var(PATH_ENV)) else {
        return;
    };
    match role.as_str() {
        "writer" | "writer-churn" => run_writer(Path::new(&path), role == "writer-churn"),
        "reader" => run_reader(Path::new(&path)),
        "pinner" => run_pinner(Path::new(&path)),
        other => panic!("unknown role {other}"),
    }
}

/// Commits transfers on several threads until stdin closes (or it is killed).
fn run_writer(path: &Path, churn: bool) {
    let db = Database::open(path).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..WRITER_THREADS)
        .map(|t| {
            let db = db.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(0x11FE_0000 + t);
                let mut done = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    transfer(&db, &mut rng, done.is_multiple_of(16));
                    done += 1;
                    if churn && t == 0 && done.is_multiple_of(20) {
                        if done.is_multiple_of(100) {
                            db.compact().unwrap();
                        } else {
                            db.checkpoint().unwrap();
                        }
                    }
                }
                done
            })
        })
        .collect();
    say("READY");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let held = db.info().unwrap().held_pages;
    db.close().unwrap();
    say(&format!("WRITER transfers={total} held_pages={held}"));
}

/// Takes snapshots for the workload's duration, checking each, and keeps one old
/// snapshot open across many newer ones.
fn run_reader(path: &Path) {
    let db = Options::new().read_only(true).open(path).unwrap();
    let mut c = db.connect();
    let mut old_conn = db.connect();
    let mut old: Option<(Transaction<'_>, u64)> = None;
    let (mut last, mut first, mut snapshots, mut generations) = (0u64, None, 0u64, 0u64);
    let mut last_generation = 0;
    let deadline = Instant::now() + secs();
    while Instant::now() < deadline {
        let tx = c.begin_read().unwrap();
        let n = check_snapshot(&tx);
        assert!(n >= last, "a newer snapshot is older: {n} after {last}");
        drop(tx);
        first.get_or_insert(n);
        last = n;
        snapshots += 1;
        let g = db.info().unwrap().header_generation;
        if g != last_generation {
            generations += 1;
            last_generation = g;
        }
        if let Some((tx, n_old)) = &old {
            assert_eq!(check_snapshot(tx), *n_old, "an old snapshot changed");
        }
        if snapshots % HOLD_SNAPSHOTS == 0 {
            drop(old.take());
            let tx = old_conn.begin_read().unwrap();
            let n = check_snapshot(&tx);
            old = Some((tx, n));
        }
    }
    say(&format!(
        "READER snapshots={snapshots} first={} last={last} generations={generations}",
        first.unwrap_or(0)
    ));
}

/// Takes one snapshot, reports its transfer count and header generation, and holds it
/// until killed.
fn run_pinner(path: &Path) {
    let db = Options::new().read_only(true).open(path).unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let n = check_snapshot(&tx);
    let g = db.info().unwrap().header_generation;
    say(&format!("PINNED n={n} generation={g}"));
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    assert_eq!(check_snapshot(&tx), n);
}

/// Transfers, then a checkpoint: the tree's changed pages are rewritten and the old
/// ones freed.
fn churn(db: &Database, rng: &mut Rng, rounds: u32) {
    for _ in 0..rounds {
        for _ in 0..20 {
            transfer(db, rng, false);
        }
        db.checkpoint().unwrap();
    }
}

fn spawn(role: &str, path: &Path) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(PATH_ENV, path)
        .env(SECS_ENV, secs().as_secs_f64().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// The first stdout line of `out` starting with `prefix`, or, when the child's stdout
/// ends first, what it printed.
fn try_line_with(out: &mut BufReader<ChildStdout>, prefix: &str) -> Result<String, String> {
    let mut line = String::new();
    let mut seen = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            return Err(seen);
        }
        seen.push_str(&line);
        // libtest may print "test child_role ... " before the child's first line.
        if let Some(at) = line.find(prefix) {
            return Ok(line[at..].trim().to_string());
        }
    }
}

/// The first stdout line of `out` starting with `prefix`.
fn line_with(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    try_line_with(out, prefix)
        .unwrap_or_else(|seen| panic!("child ended before {prefix}; it printed {seen:?}"))
}

/// [`line_with`] for `child`; when it ends first, the panic says how it ended (its exit
/// status names the signal that killed it, if one did).
fn child_line(child: &mut Child, out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    try_line_with(out, prefix).unwrap_or_else(|seen| {
        let status = child.wait();
        panic!("child ended before {prefix}: {status:?}; it printed {seen:?}")
    })
}

fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap()
        .parse()
        .unwrap()
}

/// A writer process and reader processes at once; returns the readers' report lines.
fn writer_and_readers(churn: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    setup(&path);
    let (mut writer, mut wout) = spawn(if churn { "writer-churn" } else { "writer" }, &path);
    child_line(&mut writer, &mut wout, "READY");
    let readers: Vec<_> = (0..READERS).map(|_| spawn("reader", &path)).collect();
    let mut reports = Vec::new();
    for (mut child, mut out) in readers {
        reports.push(child_line(&mut child, &mut out, "READER"));
        assert!(child.wait().unwrap().success(), "a reader failed");
    }
    drop(writer.stdin.take());
    let w = child_line(&mut writer, &mut wout, "WRITER");
    assert!(writer.wait().unwrap().success(), "the writer failed");
    eprintln!("{w}");
    for r in &reports {
        eprintln!("{r}");
        assert!(field(r, "snapshots") > 1);
        assert!(
            field(r, "last") > field(r, "first"),
            "the reader followed: {r}"
        );
    }
    // The file the writer left, read once more, exactly.
    let db = Options::new().read_only(true).open(&path).unwrap();
    let n = check_snapshot(&db.connect().begin_read().unwrap());
    assert_eq!(n, field(&w, "transfers"));
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    reports
}

#[test]
fn readers_follow_a_bank_writer() {
    writer_and_readers(false);
}

#[test]
fn readers_stay_exact_while_the_writer_checkpoints_and_compacts() {
    let reports = writer_and_readers(true);
    assert!(
        reports.iter().any(|r| field(r, "generations") > 1),
        "the readers crossed checkpoints: {reports:?}"
    );
}

#[test]
fn readers_survive_a_killed_writer_and_follow_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    setup(&path);
    let (mut writer, mut wout) = spawn("writer-churn", &path);
    line_with(&mut wout, "READY");
    let reader = Options::new().read_only(true).open(&path).unwrap();
    let mut held = reader.connect();
    let mut c = reader.connect();
    let early = held.begin_read().unwrap();
    let n_early = check_snapshot(&early);
    // Wait until the writer has moved on, then kill it mid-workload.
    let deadline = Instant::now() + secs();
    let mut n_late = n_early;
    while Instant::now() < deadline || n_late <= n_early {
        n_late = check_snapshot(&c.begin_read().unwrap());
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert_eq!(
        check_snapshot(&early),
        n_early,
        "the held snapshot is unchanged"
    );
    let n_dead = check_snapshot(&c.begin_read().unwrap());
    assert!(n_dead >= n_late);
    // A new writer recovers the file beside the live reader.
    let db = Database::open(&path).unwrap();
    let n_recovered = check_snapshot(&db.connect().begin_read().unwrap());
    assert!(n_recovered >= n_dead, "{n_recovered} < {n_dead}");
    let mut rng = Rng::new(7);
    for i in 0..50 {
        transfer(&db, &mut rng, i % 10 == 0);
    }
    db.checkpoint().unwrap();
    assert_eq!(check_snapshot(&early), n_early);
    assert_eq!(check_snapshot(&c.begin_read().unwrap()), n_recovered + 50);
    drop(early);
    drop(held);
    let fresh = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(
        check_snapshot(&fresh.connect().begin_read().unwrap()),
        n_recovered + 50
    );
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn a_killed_reader_releases_its_pin_and_the_writer_reuses_the_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pinned.db");
    setup(&path);
    let db = Database::open(&path).unwrap();
    let mut rng = Rng::new(0x9111);
    // A steady state first: the file has grown to what the churn needs.
    churn(&db, &mut rng, 20);
    let (mut pinner, mut out) = spawn("pinner", &path);
    let pinned = line_with(&mut out, "PINNED");
    assert_eq!(
        field(&pinned, "generation"),
        db.info().unwrap().header_generation
    );
    churn(&db, &mut rng, 20);
    let info = db.info().unwrap();
    assert!(info.older_generations_pinned, "the reader's pin is seen");
    assert!(
        info.held_pages > 0,
        "pages the pinned generation reaches are held"
    );
    let held = info.held_pages;
    // While the pin lives, the writer holds every page freed since and never reuses
    // one: holding only grows.
    churn(&db, &mut rng, 5);
    assert!(db.info().unwrap().held_pages > held);
    pinner.kill().unwrap(); // SIGKILL: no cleanup runs in the reader
    pinner.wait().unwrap();
    let info = db.info().unwrap();
    assert!(
        !info.older_generations_pinned,
        "a dead reader's pin is gone"
    );
    // The next checkpoint gives the held pages back, and the churn then reuses them:
    // the file stops growing.
    churn(&db, &mut rng, 1);
    assert_eq!(db.info().unwrap().held_pages, 0);
    let free = db.stats().free_pages;
    assert!(free > 0, "the held pages are free again");
    let len = std::fs::metadata(&path).unwrap().len();
    churn(&db, &mut rng, 20);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len,
        "the churn runs in the reused pages"
    );
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // A fresh reader still reads the state exactly.
    let reader = Options::new().read_only(true).open(&path).unwrap();
    let n = check_snapshot(&reader.connect().begin_read().unwrap());
    assert_eq!(n, check_snapshot(&db.connect().begin_read().unwrap()));
}

/// The newest header generation in the file at `path`.
fn newest_generation(path: &Path) -> u64 {
    use capsuledb::format::{HEADER_COPY_OFFSETS, HEADER_LEN, Header};
    let bytes = std::fs::read(path).unwrap();
    HEADER_COPY_OFFSETS
        .iter()
        .zip(0u32..)
        .filter_map(|(&at, copy)| {
            let at = at as usize;
            Header::decode(bytes.get(at..at + HEADER_LEN)?, copy).ok()
        })
        .map(|h| h.generation)
        .max()
        .unwrap()
}

/// A reader pinning a generation above the file's newest header (one it read from the
/// page cache whose sync then failed, and which the kernel dropped) kept a writer
/// opening next from nothing: its header took that generation's number for another
/// tree (the reader, seeing the number it held, read on in pages the writer reused),
/// and the pages it found free went back to use at once. It writes its header above
/// the pinned one now and holds those pages, up to the file's end, while the pin lives.
#[cfg(target_os = "linux")]
#[test]
fn a_writer_opens_above_a_generation_a_reader_pins_past_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ghost.db");
    {
        let db = Database::open(&path).unwrap();
        db.connect()
            .run(|tx| {
                tx.create_table("t")?;
                tx.put("t", b"k", b"v")
            })
            .unwrap();
        db.checkpoint().unwrap();
        db.close().unwrap();
    }
    let file_generation = newest_generation(&path);
    let reader = std::fs::File::open(&path).unwrap();
    capsuledb::storage::locks::pin(&reader, file_generation + 1).unwrap();
    let db = Database::open(&path).unwrap();
    let opened = newest_generation(&path);
    assert!(
        opened > file_generation + 1,
        "the file was at generation {file_generation}, a reader pins {}, the open wrote {opened}",
        file_generation + 1
    );
    let info = db.info().unwrap();
    assert!(info.older_generations_pinned);
    // The pinned tree may lie anywhere up to the file's end (a checkpoint grows the
    // file): every page past `page_count` but the log's few is held, not only those
    // below the log's last page (16 here, of 238).
    let file_pages = info.file_len / 4096;
    assert!(
        info.held_pages + 16 >= file_pages - info.page_count,
        "{} pages held, the file has {file_pages}, page_count {}",
        info.held_pages,
        info.page_count
    );
    drop(reader);
    assert!(!db.info().unwrap().older_generations_pinned);
    let v = db.connect().read(|tx| tx.get("t", b"k")).unwrap();
    assert_eq!(v.as_deref(), Some(&b"v"[..]));
}
