//! The file mapping under threads (`src/storage/file.rs`, the crate's unsafe code):
//! readers hold zero-copy values (`get_ref`) and views of the mapping, and keep
//! verifying them, while writers grow the file a lot (large values, checkpoints) and
//! shrink it again (deletes, `compact`), so the file is remapped many times. Every byte
//! read must be right; a value or view must never change under its holder, and a
//! mapping must never lose its pages (that would be a SIGBUS, which kills this test).

use capsuledb::rng::Rng;
use capsuledb::storage::{FileStorage, Storage, View};
use capsuledb::{Database, Durability, Isolation, ValueRef};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const STABLE: &str = "stable";
const CHURN: &str = "churn";
/// Keys of the stable table, each rewritten now and then with a new version.
const STABLE_KEYS: u32 = 48;
/// How long the writers keep growing and shrinking the file (at least
/// `CYCLES_MIN` cycles each, whatever the machine's speed).
const WRITE_TIME: Duration = Duration::from_secs(7);
const CYCLES_MIN: u32 = 3;
/// Values each reader keeps alive at once, across checkpoints and compactions.
const HELD_MAX: usize = 64;
const READERS: usize = 3;
const WRITERS: usize = 2;

/// A value that says what it is: `key`, `version` and `len` up front, then bytes that
/// depend on all three, so a value read from a reused or unmapped page cannot pass.
fn value(key: u32, version: u32, len: usize) -> Vec<u8> {
    assert!(len >= 16);
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&(len as u64).to_le_bytes());
    let mut x = u64::from(key) << 32 | u64::from(version);
    while v.len() < len {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        v.push((x >> 56) as u8);
    }
    v
}

/// Checks a value read under `key` is whole and consistent; returns its version.
fn verify(key: u32, bytes: &[u8]) -> u32 {
    let field = |at: usize| -> [u8; 4] { bytes[at..at + 4].try_into().unwrap() };
    assert!(
        bytes.len() >= 16,
        "key {key}: value of {} bytes",
        bytes.len()
    );
    let k = u32::from_le_bytes(field(0));
    let version = u32::from_le_bytes(field(4));
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    assert_eq!(k, key, "a value of key {k} read under key {key}");
    assert_eq!(len, bytes.len() as u64, "key {key} v{version}: length");
    assert!(
        bytes == value(key, version, bytes.len()).as_slice(),
        "key {key} v{version}: the bytes changed"
    );
    version
}

/// Stable values are 8 KiB to 200 KiB: several pages each (overflow runs).
fn stable_len(key: u32, version: u32) -> usize {
    (8 << 10) + ((key * 7919 + version * 104_729) as usize % (192 << 10))
}

fn stable_key(key: u32) -> [u8; 4] {
    key.to_be_bytes()
}

struct Counters {
    stop: AtomicBool,
    /// Versions written per stable key (the newest committed one).
    versions: Vec<AtomicU64>,
    file_len_changes: AtomicU64,
    cycles: AtomicU64,
    held_checks: AtomicU64,
    reads: AtomicU64,
}

/// Grows the file with big churn values, checkpoints (the values move into the mapped
/// tree), rewrites some stable keys, deletes the churn and compacts (the file shrinks).
fn writer(db: Database, c: Arc<Counters>, id: usize, start: Arc<Barrier>) -> u32 {
    let mut rng = Rng::new(0x0571_2E55 + id as u64);
    let mut conn = db.connect();
    start.wait();
    let begun = Instant::now();
    let mut cycles = 0u32;
    while cycles < CYCLES_MIN || begun.elapsed() < WRITE_TIME {
        // Grow: 4..12 values of 256 KiB..3 MiB.
        let mut keys = Vec::new();
        for _ in 0..4 + rng.below(9) {
            let mut tx = conn.begin_with(Isolation::Snapshot).unwrap();
            let key = format!("w{id}/{cycles}/{}", keys.len()).into_bytes();
            let len = (256 << 10) + rng.below(11 << 18) as usize;
            let v = value(u32::MAX - id as u32, cycles, len);
            tx.put(CHURN, &key, &v).unwrap();
            tx.commit_with(Durability::Applied).unwrap();
            keys.push(key);
        }
        db.checkpoint().unwrap();
        // New versions of a few stable keys, written by this writer only (keys are
        // split between writers), then folded into the tree.
        for _ in 0..3 {
            let key = (rng.below(u64::from(STABLE_KEYS / WRITERS as u32)) as u32) * WRITERS as u32
                + id as u32;
            let version = c.versions[key as usize].load(Ordering::Relaxed) as u32 + 1;
            let mut tx = conn.begin_with(Isolation::Snapshot).unwrap();
            tx.put(
                STABLE,
                &stable_key(key),
                &value(key, version, stable_len(key, version)),
            )
            .unwrap();
            tx.commit_with(Durability::Applied).unwrap();
            c.versions[key as usize].store(u64::from(version), Ordering::Relaxed);
        }
        db.checkpoint().unwrap();
        // The churn reads back right through the mapping, then goes.
        let mut tx = conn.begin_with(Isolation::Snapshot).unwrap();
        for key in &keys {
            let v = tx.get_ref(CHURN, key).unwrap().expect("churn value");
            assert_eq!(verify(u32::MAX - id as u32, &v), cycles);
            tx.delete(CHURN, key).unwrap();
        }
        tx.commit_with(Durability::Applied).unwrap();
        db.compact().unwrap();
        cycles += 1;
        c.cycles.fetch_add(1, Ordering::Relaxed);
    }
    cycles
}

/// Reads stable values with `get_ref`, holds up to `HELD_MAX` of them (dropping the
/// transactions they came from) and re-verifies every held one on each round; some
/// rounds also hold a snapshot and a half-consumed scan across the writers' work.
fn reader(db: Database, c: Arc<Counters>, id: usize, start: Arc<Barrier>) {
    let mut rng = Rng::new(0x4EAD + id as u64);
    let mut conn = db.connect();
    let mut held: VecDeque<(u32, u32, ValueRef)> = VecDeque::new();
    let mut seen = vec![0u32; STABLE_KEYS as usize];
    start.wait();
    while !c.stop.load(Ordering::Relaxed) {
        {
            let tx = conn.begin_read().unwrap();
            for _ in 0..8 {
                let key = rng.below(u64::from(STABLE_KEYS)) as u32;
                let v = tx
                    .get_ref(STABLE, &stable_key(key))
                    .unwrap()
                    .expect("stable");
                let version = verify(key, &v);
                // Snapshots only move forward.
                assert!(
                    version >= seen[key as usize],
                    "key {key}: v{version} after v{}",
                    seen[key as usize]
                );
                seen[key as usize] = version;
                held.push_back((key, version, v));
                c.reads.fetch_add(1, Ordering::Relaxed);
            }
            if rng.chance(1, 4) {
                // A scan left open while the file is grown and shrunk.
                let mut range = tx.iter(STABLE).unwrap();
                let mut first = Vec::new();
                for _ in 0..4 {
                    let (k, v) = range.next().unwrap().unwrap();
                    let key = u32::from_be_bytes(k.as_slice().try_into().unwrap());
                    verify(key, &v);
                    first.push(key);
                }
                std::thread::sleep(Duration::from_millis(rng.below(20)));
                let rest = range.count() as u32;
                assert_eq!(rest + 4, STABLE_KEYS, "the scan lost keys");
                assert_eq!(first, vec![0, 1, 2, 3]);
            }
        }
        while held.len() > HELD_MAX {
            held.pop_front();
        }
        // Every held value is unchanged, whatever happened to the file since.
        for (key, version, v) in &held {
            assert_eq!(verify(*key, v), *version, "a held value changed");
            c.held_checks.fetch_add(1, Ordering::Relaxed);
        }
        if rng.chance(1, 8) {
            std::thread::sleep(Duration::from_millis(rng.below(5)));
        }
    }
}

#[test]
fn mapped_values_stay_correct_while_the_file_is_remapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("remap.db");
    let db = Database::open(&path).unwrap();
    {
        let mut conn = db.connect();
        let mut tx = conn.begin().unwrap();
        tx.create_table(STABLE).unwrap();
        tx.create_table(CHURN).unwrap();
        for key in 0..STABLE_KEYS {
            tx.put(STABLE, &stable_key(key), &value(key, 0, stable_len(key, 0)))
                .unwrap();
        }
        tx.commit().unwrap();
    }
    db.checkpoint().unwrap();
    let c = Arc::new(Counters {
        stop: AtomicBool::new(false),
        versions: (0..STABLE_KEYS).map(|_| AtomicU64::new(0)).collect(),
        file_len_changes: AtomicU64::new(0),
        cycles: AtomicU64::new(0),
        held_checks: AtomicU64::new(0),
        reads: AtomicU64::new(0),
    });
    let start = Arc::new(Barrier::new(READERS + WRITERS));
    let readers: Vec<_> = (0..READERS)
        .map(|id| {
            let (db, c, start) = (db.clone(), Arc::clone(&c), Arc::clone(&start));
            std::thread::spawn(move || reader(db, c, id, start))
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            let (db, c, start) = (db.clone(), Arc::clone(&c), Arc::clone(&start));
            std::thread::spawn(move || writer(db, c, id, start))
        })
        .collect();
    // Watch the file's length change while they run.
    let (mut last_len, mut min_len, mut max_len) = (0, u64::MAX, 0);
    while !writers.iter().all(|w| w.is_finished()) {
        let len = db.info().unwrap().file_len;
        if len != last_len {
            c.file_len_changes.fetch_add(1, Ordering::Relaxed);
            last_len = len;
        }
        min_len = min_len.min(len);
        max_len = max_len.max(len);
        std::thread::sleep(Duration::from_millis(2));
        if readers.iter().any(|r| r.is_finished()) {
            break;
        }
    }
    c.stop.store(true, Ordering::Relaxed);
    let mut cycles = 0;
    for w in writers {
        cycles += w.join().expect("a writer panicked");
    }
    for r in readers {
        r.join().expect("a reader panicked");
    }
    println!(
        "{cycles} grow/shrink cycles, file length changed {} times between {:.1} and {:.1} MiB; \
         {} values read, {} held-value checks",
        c.file_len_changes.load(Ordering::Relaxed),
        min_len as f64 / 1048576.0,
        max_len as f64 / 1048576.0,
        c.reads.load(Ordering::Relaxed),
        c.held_checks.load(Ordering::Relaxed)
    );
    assert!(cycles >= CYCLES_MIN * WRITERS as u32);

    // Quiet now: every stable key holds its newest version, also after reopening.
    let check = |db: &Database| {
        let mut conn = db.connect();
        let tx = conn.begin_read().unwrap();
        for key in 0..STABLE_KEYS {
            let v = tx.get_ref(STABLE, &stable_key(key)).unwrap().unwrap();
            assert_eq!(
                u64::from(verify(key, &v)),
                c.versions[key as usize].load(Ordering::Relaxed)
            );
        }
        assert!(tx.is_empty(CHURN).unwrap());
    };
    check(&db);
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    drop(db);
    let db = Database::open(&path).unwrap();
    check(&db);
}

// ---------------------------------------------------------------------------------------
// `FileStorage` directly.

/// The region every view may read: written once, never rewritten, never truncated.
const FIXED_LEN: usize = 64 << 10;
/// Slots written concurrently by the slot writers, above the fixed region.
const SLOT_LEN: usize = 4096;
const SLOTS_PER_WRITER: usize = 16;
const SLOT_WRITERS: usize = 2;
/// The file never shrinks below this.
const FLOOR_LEN: u64 = 1 << 20;
const RESIZES: u32 = 400;
const VIEWS_HELD: usize = 32;

fn fixed_byte(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 9)) as u8
}

fn slot_bytes(writer: usize, slot: usize, round: u32) -> Vec<u8> {
    let b = (writer * 31 + slot * 7) as u8 ^ round as u8;
    vec![b; SLOT_LEN]
}

fn check_fixed(view: &View) {
    let bytes = view.get(0, FIXED_LEN).expect("the fixed region is mapped");
    for (i, &b) in bytes.iter().enumerate() {
        assert_eq!(b, fixed_byte(i), "fixed byte {i}");
    }
}

#[test]
fn file_storage_views_survive_growth_and_shrink_while_others_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FileStorage::open(&dir.path().join("f.db"), true).unwrap());
    s.set_len(FLOOR_LEN).unwrap();
    let fixed: Vec<u8> = (0..FIXED_LEN).map(fixed_byte).collect();
    s.write_at(0, &fixed).unwrap();
    s.sync().unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    // Readers: take fresh views, keep old ones, re-check the fixed region through all.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut held: VecDeque<(View, usize)> = VecDeque::new();
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) || rounds < 100 {
                    let v = s.view().unwrap();
                    assert!(v.len() as u64 >= FLOOR_LEN);
                    let len = v.len();
                    held.push_back((v, len));
                    if held.len() > VIEWS_HELD {
                        held.pop_front();
                    }
                    for (v, len) in &held {
                        // A view keeps its length and its bytes after any resize.
                        assert_eq!(v.len(), *len);
                        check_fixed(v);
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();

    // Slot writers: write their own slots above the fixed region; a fresh view taken
    // after a write shows it (the visibility rule), whatever the resizer does.
    let slot_writers: Vec<_> = (0..SLOT_WRITERS)
        .map(|w| {
            let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut round = 0u32;
                while !stop.load(Ordering::Relaxed) || round < 50 {
                    for slot in 0..SLOTS_PER_WRITER {
                        let at = FIXED_LEN + (w * SLOTS_PER_WRITER + slot) * SLOT_LEN;
                        let bytes = slot_bytes(w, slot, round);
                        s.write_at(at as u64, &bytes).unwrap();
                        let v = s.view().unwrap();
                        assert!(
                            v.get(at as u64, SLOT_LEN).unwrap() == bytes.as_slice(),
                            "writer {w} slot {slot} round {round}: a fresh view misses the write"
                        );
                    }
                    round += 1;
                }
                round
            })
        })
        .collect();

    // The resizer: grows the file by up to 64 MiB and shrinks it back to the floor,
    // writing near the end each time; a fresh view shows the write and zeros where the
    // file was cut and grown again.
    let mut rng = Rng::new(0xF11E);
    let mut len = FLOOR_LEN;
    for i in 0..RESIZES {
        let new_len = if rng.chance(1, 2) || len == FLOOR_LEN {
            FLOOR_LEN + rng.below(64 << 20)
        } else {
            FLOOR_LEN + rng.below(len - FLOOR_LEN)
        };
        s.set_len(new_len).unwrap();
        if new_len > len {
            let v = s.view().unwrap();
            assert_eq!(v.len() as u64, new_len);
            // What was cut earlier comes back as zeros.
            let probe = (new_len - len).min(4096) as usize;
            assert!(
                v.get(len, probe).unwrap().iter().all(|&b| b == 0),
                "resize {i}"
            );
        }
        len = new_len;
        let tail = 4096.min((len - FLOOR_LEN) as usize);
        if tail > 0 {
            let at = len - tail as u64;
            let bytes = vec![(i as u8) | 1; tail];
            s.write_at(at, &bytes).unwrap();
            let v = s.view().unwrap();
            assert!(v.get(at, tail).unwrap() == bytes.as_slice(), "resize {i}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers
        .into_iter()
        .map(|r| r.join().expect("a reader panicked"))
        .sum();
    let rounds: Vec<u32> = slot_writers
        .into_iter()
        .map(|w| w.join().expect("a slot writer panicked"))
        .collect();
    // Every slot holds its writer's last round.
    let v = s.view().unwrap();
    check_fixed(&v);
    for (w, &r) in rounds.iter().enumerate() {
        for slot in 0..SLOTS_PER_WRITER {
            let at = FIXED_LEN + (w * SLOTS_PER_WRITER + slot) * SLOT_LEN;
            assert!(v.get(at as u64, SLOT_LEN).unwrap() == slot_bytes(w, slot, r - 1).as_slice());
        }
    }
    println!("{RESIZES} resizes, {reads} reader rounds, slot-writer rounds {rounds:?}");
    s.sync().unwrap();
}
