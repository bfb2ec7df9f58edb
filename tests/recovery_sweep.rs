//! The recovery sweep (issue 14): flip bits in the marker pages, the proof records and
//! the log page headers of a cleanly closed database of 420 durable commits spanning
//! four marker pages, built once from one process and once from many short opens, and
//! once more with a crash (a torn tail) after further durable commits. Every flip must
//! end in the exact data, a repair, or a typed error that leaves the file untouched and
//! lets a read-only open read up to the damage. An earlier state (lost durable commits)
//! and any other wrong data count as failures, as do panics.
//!
//! The normal run samples the bits (seeded); `CAPSULEDB_LONG_SWEEP=1` flips every bit.
//!
//! The loss sweeps read back every 512-byte sector and every whole log page of those
//! databases, and of a crash after 800 durable commits above the durable bound, as
//! zeros: a typed error is honest there (nothing repairs a lost sector in general), an
//! earlier state is lost data and a failure, unless it is the limit the format states
//! (printed apart, still lost data).

use capsuledb::format::{LOG_PAGE_HEADER_LEN, PROOF_LEN, PROOF_MAGIC, first_data_page};
use capsuledb::rng::Rng;
use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Error, Options};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

const TABLE: &str = "t";
const PAGE_SIZE: u32 = 4096;
/// Durable commits in the built database.
const COMMITS: u64 = 420;
/// Commits per open in the many-opens build.
const PER_OPEN: u64 = 3;
/// Durable commits made after reopening the built database, before the crash.
const MORE: u64 = 30;
/// `Applied` commits queued before the crash (their markers form the torn tail).
const TAIL: u64 = 10;
const KIND_CAPSULE: u8 = 1;
const KIND_PROOF: u8 = 2;
const KIND_MARKER: u8 = 3;
/// In the normal run, one bit in this many is flipped (in the crash images, which are
/// more, one in `4 * SAMPLE_ONE_IN`).
const SAMPLE_ONE_IN: u64 = 160;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn long_mode() -> bool {
    std::env::var("CAPSULEDB_LONG_SWEEP").is_ok_and(|v| v == "1")
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i:04}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    format!("v{i}-").repeat(1 + (i % 4) as usize).into_bytes()
}

/// The state after the first `k` commits (commit 1 creates the table).
fn model(k: u64) -> State {
    let mut m: State = (1..=k).map(|i| (key(i), value(i))).collect();
    if k > 0 {
        m.insert(b"last".to_vec(), k.to_string().into_bytes());
    }
    m
}

fn options() -> Options {
    Options::new().page_size(PAGE_SIZE).random_seed(0x5EED)
}

fn commit(db: &Database, i: u64, level: Durability) {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    if i == 1 {
        tx.create_table(TABLE).unwrap();
    }
    tx.put(TABLE, &key(i), &value(i)).unwrap();
    tx.put(TABLE, b"last", i.to_string().as_bytes()).unwrap();
    assert_eq!(tx.commit_with(level).unwrap().seq, i);
}

/// Commits `1..=commits` from one open, or `PER_OPEN` per open; closes cleanly.
fn build(commits: u64, many_opens: bool) -> SimStorage {
    let sim = SimStorage::new();
    let per_open = if many_opens { PER_OPEN } else { commits };
    let mut i = 1;
    while i <= commits {
        let db = options().open_storage(Arc::new(sim.clone())).unwrap();
        for _ in 0..per_open.min(commits - i + 1) {
            commit(&db, i, Durability::Durable);
            i += 1;
        }
        db.close().unwrap();
    }
    assert_eq!(sim.durable_bytes(), sim.live_bytes(), "a clean close syncs");
    sim
}

fn read_state(db: &Database) -> State {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    if !tx.table_exists(TABLE).unwrap() {
        return State::new();
    }
    tx.iter(TABLE)
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k, v.to_vec())
        })
        .collect()
}

/// Which prefix of the commits a state is, if any.
fn prefix_of(state: &State, max: u64) -> Option<u64> {
    let k = match state.get(&b"last"[..]) {
        None => 0,
        Some(v) => std::str::from_utf8(v).ok()?.parse().ok()?,
    };
    (k <= max && *state == model(k)).then_some(k)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Byte ranges to flip: every marker page (or, with `durable_only`, its header and the
/// slots of commits up to `max_seq`), every proof record of a commit up to `max_seq`,
/// every log page header.
fn targets(bytes: &[u8], max_seq: u64, durable_only: bool) -> Vec<(&'static str, u64, u64)> {
    let ps = u64::from(PAGE_SIZE);
    let mut out = Vec::new();
    let mut marker_pages = 0;
    for page in first_data_page(PAGE_SIZE)..bytes.len() as u64 / ps {
        let at = (page * ps) as usize;
        let kind = bytes[at + 4];
        if !(KIND_CAPSULE..=KIND_MARKER).contains(&kind) || u64_at(bytes, at + 8) != page {
            continue;
        }
        if kind == KIND_MARKER {
            marker_pages += 1;
            if !durable_only {
                out.push(("marker page", page * ps, ps));
                continue;
            }
            out.push(("marker page", page * ps, LOG_PAGE_HEADER_LEN as u64));
            let first = u64_at(bytes, at + 24);
            let slots = (ps - LOG_PAGE_HEADER_LEN as u64) / 32;
            let durable = max_seq.saturating_sub(first - 1).min(slots);
            out.push((
                "marker page",
                page * ps + LOG_PAGE_HEADER_LEN as u64,
                durable * 32,
            ));
            continue;
        }
        out.push(("log page header", page * ps, LOG_PAGE_HEADER_LEN as u64));
        if kind == KIND_PROOF {
            let mut off = at + LOG_PAGE_HEADER_LEN;
            while off + PROOF_LEN <= at + ps as usize {
                let magic = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap());
                if magic == PROOF_MAGIC && u64_at(bytes, off + 8) <= max_seq {
                    out.push(("proof record", off as u64, PROOF_LEN as u64));
                }
                off += PROOF_LEN;
            }
        }
    }
    assert!(marker_pages >= 3, "the stream spans {marker_pages} pages");
    out
}

/// How one flip ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Exact,
    Repaired,
    TypedError,
    /// Opened with a state older than the last durable commit: lost data.
    Earlier,
    /// Opened with a state that is no prefix of the commits (or a newer prefix than
    /// the undamaged file's, in the crash build).
    OtherWrong,
    /// An error that is not a corruption error, or a typed error that changed the file
    /// or left it unreadable read-only.
    BadError,
    Panic,
}

/// Opens the damaged bytes and classifies what happened. `expect` is what the
/// undamaged file recovers; `acked` the last commit acknowledged `Durable`.
fn check(bytes: &[u8], expect: u64, acked: u64, deep: bool) -> Outcome {
    check_reading(bytes, expect, acked, deep).0
}

/// [`check`], and the prefix of the commits an open read (when it opened).
fn check_reading(bytes: &[u8], expect: u64, acked: u64, deep: bool) -> (Outcome, Option<u64>) {
    let sim = SimStorage::from_bytes(bytes.to_vec());
    match options().open_storage(Arc::new(sim.clone())) {
        Ok(db) => {
            let state = read_state(&db);
            let repaired = db.stats().repaired_log_records > 0;
            let read = prefix_of(&state, expect);
            match read {
                Some(k) if k == expect => {}
                Some(k) if k < acked => return (Outcome::Earlier, read),
                _ => return (Outcome::OtherWrong, read),
            }
            if repaired && deep {
                // The repair was written back: the file checks clean and reopens
                // exactly, with nothing left to repair.
                assert!(db.check_integrity().unwrap().is_ok());
                drop(db);
                let db = options().open_storage(Arc::new(sim)).unwrap();
                assert_eq!(db.stats().repaired_log_records, 0);
                assert_eq!(prefix_of(&read_state(&db), expect), Some(expect));
            }
            let o = if repaired {
                Outcome::Repaired
            } else {
                Outcome::Exact
            };
            (o, read)
        }
        Err(e) if e.is_corruption() => {
            if std::env::var("CAPSULEDB_SWEEP_VERBOSE").is_ok() {
                println!("typed error: {e}");
            }
            // Nothing was written, and a read-only open reads up to the damage.
            if sim.live_bytes() != bytes {
                return (Outcome::BadError, None);
            }
            let Ok(db) = options().read_only(true).open_storage(Arc::new(sim)) else {
                return (Outcome::BadError, None);
            };
            let state = read_state(&db);
            // Exactly the commits before the damage (any shorter prefix is lost data);
            // after another typed error, at least a prefix of the commits, never
            // other data.
            let read = prefix_of(&state, expect);
            if let Error::LogCorrupted { seq, .. } = e {
                let damage = db.info().unwrap().log_damage;
                if damage.is_none_or(|d| d.seq != seq) || read != Some(seq - 1) {
                    return (Outcome::BadError, read);
                }
            } else if read.is_none() {
                return (Outcome::BadError, None);
            }
            (Outcome::TypedError, read)
        }
        Err(_) => (Outcome::BadError, None),
    }
}

#[derive(Default)]
struct Tally {
    by: BTreeMap<(&'static str, Outcome), u64>,
    first_failures: Vec<String>,
}

impl Tally {
    fn add(&mut self, name: &'static str, o: Outcome, at: u64, bit: u8) {
        *self.by.entry((name, o)).or_default() += 1;
        // Every target here (a marker page, a proof record, a log page header) has a
        // copy or a checksum that repairs one flipped bit (`format-spec/log.md`,
        // "Repairs from redundancy"): an error, however typed, is a failure too (the
        // long sweep, 1,179,136 flips, met none).
        if (o >= Outcome::Earlier || o == Outcome::TypedError) && self.first_failures.len() < 10 {
            self.first_failures
                .push(format!("{name}: byte {at} bit {bit}: {o:?}"));
        }
    }

    fn report(&self, title: &str) {
        let total = |o: Outcome| -> u64 {
            self.by
                .iter()
                .filter(|((_, x), _)| *x == o)
                .map(|(_, n)| n)
                .sum()
        };
        println!("{title}");
        println!(
            "  cases {:6}  exact {:6}  repaired {:6}  typed error {:5}  earlier state {}  other wrong data {}  bad errors {}  panics {}",
            self.by.values().sum::<u64>(),
            total(Outcome::Exact),
            total(Outcome::Repaired),
            total(Outcome::TypedError),
            total(Outcome::Earlier),
            total(Outcome::OtherWrong),
            total(Outcome::BadError),
            total(Outcome::Panic)
        );
        for ((name, o), n) in &self.by {
            println!("    {name:16} {o:?}: {n}");
        }
        assert!(
            self.first_failures.is_empty(),
            "{title}: failures, first ones: {:#?}",
            self.first_failures
        );
    }
}

fn sweep(bytes: &[u8], expect: u64, acked: u64, durable_only: bool, seed: u64, tally: &mut Tally) {
    let mut rng = Rng::new(seed);
    let one_in = if durable_only {
        4 * SAMPLE_ONE_IN
    } else {
        SAMPLE_ONE_IN
    };
    let mut deep = 0u64;
    for (name, start, len) in targets(bytes, acked, durable_only) {
        for at in start..start + len {
            for bit in 0..8u8 {
                if !long_mode() && !rng.chance(1, one_in) {
                    continue;
                }
                let mut damaged = bytes.to_vec();
                damaged[at as usize] ^= 1 << bit;
                deep += 1;
                let o = catch_unwind(AssertUnwindSafe(|| {
                    check(&damaged, expect, acked, deep.is_multiple_of(16))
                }))
                .unwrap_or(Outcome::Panic);
                tally.add(name, o, at, bit);
            }
        }
    }
}

#[test]
fn flips_in_a_database_built_by_one_process() {
    let bytes = build(COMMITS, false).durable_bytes();
    assert_eq!(check(&bytes, COMMITS, COMMITS, true), Outcome::Exact);
    let mut tally = Tally::default();
    sweep(&bytes, COMMITS, COMMITS, false, 1, &mut tally);
    tally.report("one process, 420 durable commits, cleanly closed");
}

/// Commits that fill exactly three marker pages of 4 KiB: the stream ends on a full
/// page whose next page was never started (a flip in that page's header checksum was
/// refused as damage).
const FULL_PAGES_COMMITS: u64 = 3 * 127;

#[test]
fn flips_in_a_database_ending_on_a_full_marker_page() {
    let bytes = build(FULL_PAGES_COMMITS, false).durable_bytes();
    let n = FULL_PAGES_COMMITS;
    assert_eq!(check(&bytes, n, n, true), Outcome::Exact);
    let mut tally = Tally::default();
    sweep(&bytes, n, n, false, 3, &mut tally);
    tally.report("one process, 381 durable commits filling three marker pages");
}

#[test]
fn flips_in_a_database_built_by_many_short_opens() {
    let bytes = build(COMMITS, true).durable_bytes();
    assert_eq!(check(&bytes, COMMITS, COMMITS, true), Outcome::Exact);
    let mut tally = Tally::default();
    sweep(&bytes, COMMITS, COMMITS, false, 2, &mut tally);
    tally.report("140 opens of 3 commits each, 420 durable commits");
}

/// Crash images: the built database reopened, `MORE` durable commits, `TAIL` queued
/// `Applied` commits, and a durable commit whose group loses power after `budget`
/// storage operations; the disk keeps a seeded subset of the unsynced writes.
fn crash_images() -> Vec<(u64, Vec<u8>)> {
    let base = build(COMMITS, false).durable_bytes();
    let mut out = Vec::new();
    // A group needs at least five operations (capsule, proofs, FSYNC_1, markers,
    // FSYNC_2), so each budget fails the last commit somewhere inside it.
    let budgets: &[u64] = &[3, 4];
    // The long run flips every bit of fewer images.
    let seeds = if long_mode() { 1 } else { 2 };
    for &budget in budgets {
        let sim = SimStorage::from_bytes(base.clone());
        let db = options().open_storage(Arc::new(sim.clone())).unwrap();
        for i in COMMITS + 1..=COMMITS + MORE {
            commit(&db, i, Durability::Durable);
        }
        for i in COMMITS + MORE + 1..=COMMITS + MORE + TAIL {
            commit(&db, i, Durability::Applied);
        }
        sim.power_off_after(budget);
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.put(TABLE, b"never", b"acknowledged").unwrap();
        assert!(tx.commit().is_err(), "the power went out");
        for seed in 0..seeds {
            let fork = sim.fork();
            fork.crash(budget * 100 + seed);
            let image = fork.live_bytes();
            // What the undamaged image recovers: every durable commit, and a prefix.
            let db = options()
                .read_only(true)
                .open_storage(Arc::new(SimStorage::from_bytes(image.clone())))
                .unwrap();
            let k = prefix_of(&read_state(&db), COMMITS + MORE + TAIL).unwrap();
            assert!(k >= COMMITS + MORE, "the crash lost durable commits");
            out.push((k, image));
        }
        // The process died: nothing more reaches the disk.
        std::mem::forget(db);
    }
    out
}

#[test]
fn flips_before_a_torn_tail() {
    let mut tally = Tally::default();
    for (n, (k, image)) in crash_images().into_iter().enumerate() {
        assert_eq!(check(&image, k, COMMITS + MORE, true), Outcome::Exact);
        sweep(&image, k, COMMITS + MORE, true, 10 + n as u64, &mut tally);
    }
    tally.report("a crash (torn tail) after 450 durable commits, with a flip before it");
}

/// Every 512-byte sector of every log page (marker, proof and capsule pages), and every
/// whole log page, of `bytes`.
fn loss_targets(bytes: &[u8]) -> Vec<(&'static str, u64, u64)> {
    let ps = u64::from(PAGE_SIZE);
    let mut out = Vec::new();
    for page in first_data_page(PAGE_SIZE)..bytes.len() as u64 / ps {
        let at = (page * ps) as usize;
        let kind = bytes[at + 4];
        if !(KIND_CAPSULE..=KIND_MARKER).contains(&kind) || u64_at(bytes, at + 8) != page {
            continue;
        }
        let (sector, whole) = match kind {
            KIND_MARKER => ("marker sector", "marker page"),
            KIND_PROOF => ("proof sector", "proof page"),
            _ => ("capsule sector", "capsule page"),
        };
        for s in 0..ps / 512 {
            out.push((sector, page * ps + s * 512, 512));
        }
        out.push((whole, page * ps, ps));
    }
    out
}

/// Reads back every target of [`loss_targets`] as zeros, one at a time. Nothing repairs
/// a lost sector in general, so a typed error is an honest outcome; an earlier state is
/// lost data. It is within the limit `format-spec/log.md` states (and still counted as
/// lost) only for a lost marker sector or page (a committed marker's unreadable capsule
/// or proof is damage wherever it lies), above the durable bound `bound` with no chained
/// pair of markers a whole group past the stop, that is when the open read `k` commits
/// and `k + 1 + 512` is past the last marker written (`expect`); anywhere else it is a
/// failure.
fn loss_sweep(bytes: &[u8], expect: u64, acked: u64, bound: u64) -> Tally {
    let mut tally = Tally::default();
    for (name, at, len) in loss_targets(bytes) {
        let mut damaged = bytes.to_vec();
        damaged[at as usize..(at + len) as usize].fill(0);
        if damaged == bytes {
            continue;
        }
        let (o, read) = catch_unwind(AssertUnwindSafe(|| {
            check_reading(&damaged, expect, acked, false)
        }))
        .unwrap_or((Outcome::Panic, None));
        let within_limit = o == Outcome::Earlier
            && name.starts_with("marker")
            && read.is_some_and(|k| k >= bound && k + 1 + 512 >= expect);
        let name = match (within_limit, name) {
            (true, "marker page") => "marker page, earlier: the limit",
            (true, _) => "marker sector, earlier: the limit",
            _ => name,
        };
        *tally.by.entry((name, o)).or_default() += 1;
        if o >= Outcome::Earlier && !within_limit && tally.first_failures.len() < 10 {
            tally.first_failures.push(format!(
                "{name}: {len} bytes at {at} lost: {o:?}, read {read:?}"
            ));
        }
    }
    tally
}

#[test]
fn lost_sectors_and_pages_of_cleanly_closed_databases() {
    for (many_opens, commits, title) in [
        (
            false,
            COMMITS,
            "one process, 420 durable commits: sectors and pages lost",
        ),
        (
            true,
            COMMITS,
            "140 opens, 420 durable commits: sectors and pages lost",
        ),
        (
            false,
            FULL_PAGES_COMMITS,
            "381 commits filling three marker pages: sectors and pages lost",
        ),
    ] {
        let bytes = build(commits, many_opens).durable_bytes();
        loss_sweep(&bytes, commits, commits, commits).report(title);
    }
}

/// Durable commits above the durable bound in the crash image of the loss sweep: more
/// than a group, so losses early in them are proven by later groups.
const MANY_MORE: u64 = 800;

/// A crash after `MANY_MORE` durable commits above the durable bound (the open's, at
/// `COMMITS`), `TAIL` queued `Applied` ones and a group the power cut: a marker page lost
/// whole there read as the end of the log, however many durable commits followed it.
#[test]
fn lost_sectors_and_pages_above_the_durable_bound_after_a_crash() {
    let sim = SimStorage::from_bytes(build(COMMITS, false).durable_bytes());
    let db = options().open_storage(Arc::new(sim.clone())).unwrap();
    let acked = COMMITS + MANY_MORE;
    for i in COMMITS + 1..=acked {
        commit(&db, i, Durability::Durable);
    }
    for i in acked + 1..=acked + TAIL {
        commit(&db, i, Durability::Applied);
    }
    sim.power_off_after(4);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.put(TABLE, b"never", b"acknowledged").unwrap();
    assert!(tx.commit().is_err(), "the power went out");
    drop(c);
    sim.crash(7);
    std::mem::forget(db);
    let image = sim.live_bytes();
    // What the undamaged image recovers: every durable commit, and a prefix.
    let db = options()
        .read_only(true)
        .open_storage(Arc::new(SimStorage::from_bytes(image.clone())))
        .unwrap();
    let expect = prefix_of(&read_state(&db), acked + TAIL).unwrap();
    drop(db);
    assert!(expect >= acked, "the crash lost durable commits");
    assert_eq!(check(&image, expect, acked, true), Outcome::Exact);
    loss_sweep(&image, expect, acked, COMMITS).report(
        "a crash after 800 durable commits above the durable bound: sectors and pages lost",
    );
}
