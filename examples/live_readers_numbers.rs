//! What live readers in other processes cost the writer: 16 writer threads commit
//! (Durable) into one file, first alone, then while 4 reader processes (this program,
//! spawned again) scan the whole table in a loop. Prints commits per second for both
//! phases, the readers' scans, and the pages the writer held for their pins.
//!
//! `cargo run --release --example live_readers_numbers [SECONDS_PER_PHASE [PAUSE_MS]]`
//! (`PAUSE_MS`: each reader sleeps this long after each scan; 0 by default, so the
//! readers compete with the writer for every core).

use capsuledb::{Database, Durability, Options};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WRITERS: u64 = 16;
const READERS: usize = 4;
const KEYS: u64 = 10_000;
const VALUE_LEN: usize = 100;
const TABLE: &str = "t";
const ROLE_ENV: &str = "CAPSULEDB_NUMBERS_READER";
const PAUSE_ENV: &str = "CAPSULEDB_NUMBERS_PAUSE_MS";

fn main() {
    if let Ok(path) = std::env::var(ROLE_ENV) {
        reader(&path);
        return;
    }
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let phase = Duration::from_secs_f64(secs);
    let pause: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numbers.db");
    let db = Database::open(&path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table(TABLE).unwrap();
    for k in 0..KEYS {
        tx.put(TABLE, &k.to_be_bytes(), &[1; VALUE_LEN]).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();

    let alone = write_for(&db, phase);
    println!(
        "writer alone:             {:>8.0} commits/s",
        alone as f64 / secs
    );
    let mut readers: Vec<_> = (0..READERS)
        .map(|_| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env(ROLE_ENV, &path)
                .env(PAUSE_ENV, pause.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert!(line.starts_with("READY"), "{line}");
            (child, out)
        })
        .collect();
    let with = write_for(&db, phase);
    let info = db.info().unwrap();
    let mut scans = 0u64;
    for (child, out) in &mut readers {
        drop(child.stdin.take());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        scans += line.trim().parse::<u64>().unwrap();
        assert!(child.wait().unwrap().success());
    }
    println!(
        "writer with {READERS} readers:     {:>8.0} commits/s ({:.0}% of alone)",
        with as f64 / secs,
        100.0 * with as f64 / alone.max(1) as f64
    );
    println!(
        "readers' full scans:      {:>8.1} per second in all ({KEYS} keys each)",
        scans as f64 / secs
    );
    println!(
        "while readers ran: header generation {}, {} pages held for their pins, file {} bytes",
        info.header_generation, info.held_pages, info.file_len
    );
    db.close().unwrap();
}

/// Commits from `WRITERS` threads for `phase`; returns the commits.
fn write_for(db: &Database, phase: Duration) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (db, stop, done) = (db.clone(), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut rng = capsuledb::rng::Rng::new(t + 1);
                let mut c = db.connect();
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = c.begin().unwrap();
                    let k = rng.next_u64() % KEYS;
                    tx.put(TABLE, &k.to_be_bytes(), &[t as u8; VALUE_LEN])
                        .unwrap();
                    match tx.commit_with(Durability::Durable) {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        // Another writer's key: try again. Anything else ends the run.
                        Err(capsuledb::Error::Conflict { .. }) => {}
                        Err(e) => panic!("commit failed: {e}"),
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    while start.elapsed() < phase {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed)
}

/// A reader process: full scans until stdin closes, then prints how many.
fn reader(path: &str) {
    let db = Options::new().read_only(true).open(path).unwrap();
    let pause = Duration::from_millis(
        std::env::var(PAUSE_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let scans = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut scans = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let tx = c.begin_read().unwrap();
                let mut n = 0usize;
                for row in tx.range::<&[u8], _>(TABLE, ..).unwrap() {
                    row.unwrap();
                    n += 1;
                }
                assert_eq!(n as u64, KEYS);
                scans += 1;
                drop(tx);
                std::thread::sleep(pause);
            }
            scans
        })
    };
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    stop.store(true, Ordering::Relaxed);
    println!("{}", scans.join().unwrap());
}
