//! History retention numbers: the space a 10,000-commit window costs on an update-heavy
//! workload, and the latency of time-travel reads against current reads in three shapes:
//! ten versions a key, 1% of a large table's keys changed, and every key of a large
//! table changed once.
//!
//! `cargo bench --bench history_numbers` (pass `--quick` after `--` for a short run).

use capsuledb::{Database, Durability, HistoryRetention, Options};
use std::time::Instant;

const KEYS: u64 = 10_000;
const VALUE: usize = 100;
const KEYS_PER_COMMIT: u64 = 10;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

struct Loaded {
    db: Database,
    _dir: tempfile::TempDir,
    tip: u64,
    load_s: f64,
}

/// A new database keeping `retention`, with table `t` holding `keys` zeroed values.
fn open_loaded(retention: HistoryRetention, keys: u64) -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Options::new()
        .history_retention(retention)
        .open(dir.path().join("history.db"))
        .expect("open");
    let mut c = db.connect();
    let mut tx = c.begin().expect("begin");
    tx.create_table("t").expect("create");
    for k in 0..keys {
        tx.put("t", &k.to_be_bytes(), &[0u8; VALUE]).expect("put");
    }
    tx.commit().expect("commit");
    (db, dir)
}

fn load(retention: HistoryRetention, commits: u64) -> Loaded {
    let (db, dir) = open_loaded(retention, KEYS);
    let mut c = db.connect();
    let mut rng = Rng(7);
    let start = Instant::now();
    let mut tip = 0;
    for i in 0..commits {
        let mut tx = c.begin().expect("begin");
        for _ in 0..KEYS_PER_COMMIT {
            let k = rng.next() % KEYS;
            let mut v = [0u8; VALUE];
            v[..8].copy_from_slice(&i.to_le_bytes());
            tx.put("t", &k.to_be_bytes(), &v).expect("put");
        }
        tip = tx.commit_with(Durability::Applied).expect("commit").seq;
        if i % 5_000 == 4_999 {
            db.checkpoint().expect("checkpoint");
        }
    }
    db.wait_for(tip, Durability::Durable).expect("durable");
    db.collect_garbage().expect("gc");
    db.checkpoint().expect("checkpoint");
    Loaded {
        db,
        _dir: dir,
        tip,
        load_s: start.elapsed().as_secs_f64(),
    }
}

fn used_bytes(db: &Database) -> (u64, u64) {
    let r = db.check_integrity().expect("integrity");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let page = u64::from(db.info().expect("info").page_size);
    (r.tree_pages * page, db.info().expect("info").file_len)
}

/// Nanoseconds per random point read of table `t`'s `keys` keys, now or at `at`.
fn read_ns(db: &Database, at: Option<u64>, reads: u64, keys: u64) -> f64 {
    let mut c = db.connect();
    let tx = match at {
        Some(seq) => db.begin_read_at(seq).expect("begin_read_at"),
        None => c.begin_read().expect("begin_read"),
    };
    let mut rng = Rng(99);
    let start = Instant::now();
    let mut found = 0u64;
    for _ in 0..reads {
        let k = rng.next() % keys;
        if tx.get_ref("t", &k.to_be_bytes()).expect("get").is_some() {
            found += 1;
        }
    }
    assert_eq!(found, reads);
    start.elapsed().as_nanos() as f64 / reads as f64
}

/// Rounds of the dense point-read comparison.
const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn scan_ns(db: &Database, at: Option<u64>) -> f64 {
    let mut c = db.connect();
    let tx = match at {
        Some(seq) => db.begin_read_at(seq).expect("begin_read_at"),
        None => c.begin_read().expect("begin_read"),
    };
    let start = Instant::now();
    let n = tx.iter("t").expect("iter").count() as u64;
    assert_eq!(n, KEYS);
    start.elapsed().as_nanos() as f64 / n as f64
}

/// A table of `keys` keys loaded before a 1,000-commit window, then 2,000 commits that
/// each update one random key (about 1% of the keys change inside the window): the
/// shape where most keys have no history entry. Returns (current, past) ns per read,
/// the past snapshot 1,000 commits back.
fn sparse_history(keys: u64, reads: u64) -> (f64, f64) {
    let (db, _dir) = open_loaded(HistoryRetention::Commits(1_000), keys);
    let mut c = db.connect();
    let mut rng = Rng(11);
    let mut tip = 0;
    for i in 0..2_000u64 {
        let mut tx = c.begin().expect("begin");
        let mut v = [0u8; VALUE];
        v[..8].copy_from_slice(&i.to_le_bytes());
        tx.put("t", &(rng.next() % keys).to_be_bytes(), &v)
            .expect("put");
        tip = tx.commit_with(Durability::Applied).expect("commit").seq;
    }
    db.wait_for(tip, Durability::Durable).expect("durable");
    db.collect_garbage().expect("gc");
    db.checkpoint().expect("checkpoint");
    let past = Some(tip - 1_000);
    // A first pass of each warms the mapping; the second is reported.
    let _ = (
        read_ns(&db, None, reads, keys),
        read_ns(&db, past, reads, keys),
    );
    (
        read_ns(&db, None, reads, keys),
        read_ns(&db, past, reads, keys),
    )
}

/// A table of `keys` keys, every one of them updated after a snapshot (in 100 commits):
/// the shape where every key has a history entry and the history is as large as the
/// table. Returns (current, past) ns per read, the past read at the snapshot, and
/// whether the tree's history index is a directory.
fn all_changed(keys: u64, reads: u64) -> (f64, f64, bool) {
    let (db, _dir) = open_loaded(HistoryRetention::Commits(1_000), keys);
    let mut c = db.connect();
    let snapshot = db.history_window().1;
    let mut tip = 0;
    for round in 0..100u64 {
        let mut tx = c.begin().expect("begin");
        for k in (round * keys / 100)..((round + 1) * keys / 100) {
            let mut v = [1u8; VALUE];
            v[..8].copy_from_slice(&round.to_le_bytes());
            tx.put("t", &k.to_be_bytes(), &v).expect("put");
        }
        tip = tx.commit_with(Durability::Applied).expect("commit").seq;
    }
    db.wait_for(tip, Durability::Durable).expect("durable");
    db.collect_garbage().expect("gc");
    db.checkpoint().expect("checkpoint");
    let directory = db.stats().history_directory;
    let _ = (
        read_ns(&db, None, reads, keys),
        read_ns(&db, Some(snapshot), reads, keys),
    );
    let (mut current, mut past) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        current.push(read_ns(&db, None, reads, keys));
        past.push(read_ns(&db, Some(snapshot), reads, keys));
    }
    (median(current), median(past), directory)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let commits = if quick { 12_000 } else { 30_000 };
    let reads = if quick { 100_000 } else { 500_000 };
    println!(
        "update-heavy load: {KEYS} keys of {VALUE} bytes, {commits} commits of {KEYS_PER_COMMIT} random updates"
    );
    let plain = load(HistoryRetention::Snapshots, commits);
    let kept = load(HistoryRetention::Commits(10_000), commits);
    let (plain_tree, plain_file) = used_bytes(&plain.db);
    let (kept_tree, kept_file) = used_bytes(&kept.db);
    println!();
    println!("| retention | load s | tree MB | file MB | window (oldest..newest) |");
    println!("|---|---:|---:|---:|---|");
    for (name, l, tree, file) in [
        ("Snapshots (default)", &plain, plain_tree, plain_file),
        ("Commits(10_000)", &kept, kept_tree, kept_file),
    ] {
        let (lo, hi) = l.db.history_window();
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {lo}..{hi} |",
            l.load_s,
            tree as f64 / 1e6,
            file as f64 / 1e6
        );
    }
    println!(
        "\nspace overhead of the 10k-commit window: tree {:.2}x, file {:.2}x",
        kept_tree as f64 / plain_tree as f64,
        kept_file as f64 / plain_file as f64
    );
    let db = &kept.db;
    let back = kept.tip - 5_000;
    // A first pass of each warms the mapping; then ROUNDS rounds alternate the three, so
    // a noisy moment on a shared machine falls on all of them, and the medians are
    // reported.
    let _ = (
        read_ns(db, None, reads, KEYS),
        read_ns(db, Some(back), reads, KEYS),
    );
    let (mut current, mut newest, mut past) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        current.push(read_ns(db, None, reads, KEYS));
        newest.push(read_ns(db, Some(kept.tip), reads, KEYS));
        past.push(read_ns(db, Some(back), reads, KEYS));
    }
    let (current, newest, past) = (median(current), median(newest), median(past));
    let scan_now = scan_ns(db, None);
    let scan_past = scan_ns(db, Some(back));
    println!(
        "\n| read (all from the checkpointed tree; point reads: median of {ROUNDS} alternated rounds) | ns per key |"
    );
    println!("|---|---:|");
    println!("| current snapshot, point read | {current:.0} |");
    println!("| begin_read_at(newest), point read | {newest:.0} |");
    println!("| begin_read_at(newest - 5000), point read | {past:.0} |");
    println!("| current snapshot, full scan | {scan_now:.0} |");
    println!("| begin_read_at(newest - 5000), full scan | {scan_past:.0} |");
    println!(
        "\ntime-travel point read / current read: {:.2}x",
        past / current
    );
    let sparse_keys = if quick { 200_000 } else { 1_000_000 };
    let (now, back) = sparse_history(sparse_keys, reads);
    println!(
        "\n{sparse_keys} keys loaded before a 1,000-commit window, 2,000 one-key updates \
         (most keys without a history entry): current read {now:.0} ns, read 1,000 \
         commits back {back:.0} ns, {:.2}x",
        back / now
    );
    let all_keys = if quick { 200_000 } else { 1_000_000 };
    let (now, back, directory) = all_changed(all_keys, reads);
    println!(
        "\n{all_keys} keys, every one updated after the snapshot (every key has a history \
         entry; the tree's history index is {}): current read {now:.0} ns, read at the \
         snapshot {back:.0} ns, {:.2}x",
        if directory { "a directory" } else { "a filter" },
        back / now
    );
}
