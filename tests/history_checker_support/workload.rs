//! The seeded workloads: threads of point reads, range scans (forward, reverse, from
//! both ends), puts and deletes over a few hot keys, committed or rolled back, each
//! recorded as a [`Txn`].

use super::history_support;
use super::record::{
    Dir, History, Key, Kind, Outcome, Read, SETUP_UID, TABLES, Tbl, Txn, decode_value,
    encode_value, in_range, key_name,
};
use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error, Isolation};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Barrier};

/// Worker threads of one run.
const THREADS: usize = 8;
/// Transactions each worker runs.
const TXNS_PER_THREAD: u64 = 1500;

/// Key counts per table and the longest transaction.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub name: &'static str,
    pub keys: [u64; 3],
    pub ops_max: u64,
}

/// "wide" has more keys than the engine's first scan batch, so scans there span
/// batches; "tiny" packs longer transactions onto fewer keys.
pub const PROFILES: [Profile; 2] = [
    Profile {
        name: "hot",
        keys: [12, 4, 40],
        ops_max: 6,
    },
    Profile {
        name: "tiny",
        keys: [4, 2, 20],
        ops_max: 10,
    },
];
/// The seeds every profile runs with.
pub const SEEDS: [u64; 4] = [0x5eed_0001, 0xc0ff_ee00_1234, 0x0dd_ba11_5eed, 42];

/// A point of a range bound: a key, a point between keys, or one beyond all keys.
fn random_point(rng: &mut Rng, keys: u64) -> Key {
    match rng.below(2 * keys + 2) {
        0 => b"a".to_vec(),
        1 => b"z".to_vec(),
        n => {
            let mut k = key_name((n - 2) / 2);
            if n % 2 == 1 {
                k.push(b'm');
            }
            k
        }
    }
}

fn random_bound(rng: &mut Rng, keys: u64) -> Bound<Key> {
    match rng.below(5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(random_point(rng, keys)),
        _ => Bound::Excluded(random_point(rng, keys)),
    }
}

/// One thread's transactions.
fn worker(
    db: Database,
    iso: Isolation,
    profile: Profile,
    seed: u64,
    thread: usize,
    start: Arc<Barrier>,
    // The highest sequence acknowledged so far, and the clock whose ticks order
    // acknowledgements before begins.
    (acked, clock): (
        Arc<std::sync::atomic::AtomicU64>,
        Arc<std::sync::atomic::AtomicU64>,
    ),
) -> Vec<Txn> {
    let tick = || clock.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
    let mut rng = Rng::new(seed ^ (thread as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut conn = db.connect();
    let mut out = Vec::new();
    start.wait();
    for i in 0..TXNS_PER_THREAD {
        let uid = ((thread as u64 + 1) << 32) | i;
        let roll = rng.below(100);
        let kind = if roll < 8 {
            Kind::Reader
        } else {
            Kind::ReadWrite
        };
        // Some read-write transactions only read: the read-only SSI cases.
        let may_write = kind == Kind::ReadWrite && roll >= 22;
        // Every commit acknowledged before `begin` is visible to it (the checker takes
        // the engine's snapshot number on trust otherwise).
        let known = acked.load(std::sync::atomic::Ordering::Acquire);
        let began_at = tick();
        let mut tx = match kind {
            Kind::Reader => conn.begin_read(),
            Kind::ReadWrite => conn.begin_with(iso),
        }
        .unwrap();
        let mut rec = Txn {
            uid,
            thread,
            kind,
            snapshot: {
                let s = tx.snapshot_seq();
                assert!(
                    s >= known,
                    "seed {seed:#x}: a snapshot at {s} below acknowledged commit {known}"
                );
                s
            },
            tip_before: 0,
            tip_after: 0,
            began_at,
            acked_at: 0,
            reads: Vec::new(),
            writes: BTreeMap::new(),
            outcome: Outcome::RolledBack,
        };
        for _ in 0..1 + rng.below(profile.ops_max) {
            let tbl: Tbl = match rng.below(10) {
                0..6 => 0,
                6..8 => 1,
                _ => 2,
            };
            let nkeys = profile.keys[tbl];
            let key = key_name(rng.below(nkeys));
            let op = rng.below(100);
            if op < 40 || (!may_write && op < 70) {
                let own = rec.writes.get(&(tbl, key.clone())).cloned();
                let got = tx
                    .get(TABLES[tbl], &key)
                    .unwrap()
                    .map(|v| decode_value(seed, &v, &key));
                rec.reads.push(Read::Point { tbl, key, own, got });
            } else if op < 62 || !may_write {
                let lo = random_bound(&mut rng, nkeys);
                let hi = random_bound(&mut rng, nkeys);
                let dir = match rng.below(5) {
                    0 | 1 => Dir::Forward,
                    2 | 3 => Dir::Reverse,
                    _ => Dir::BothEnds,
                };
                let own = rec
                    .writes
                    .range((tbl, Vec::new())..(tbl + 1, Vec::new()))
                    .filter(|((_, k), _)| in_range(&lo, &hi, k))
                    .map(|((_, k), v)| (k.clone(), *v))
                    .collect();
                let mut it = tx.range(TABLES[tbl], (lo.clone(), hi.clone())).unwrap();
                let items: Vec<_> = match dir {
                    Dir::Forward => it.collect(),
                    Dir::Reverse => it.rev().collect(),
                    Dir::BothEnds => {
                        let (mut front, mut back) = (Vec::new(), Vec::new());
                        loop {
                            let a = it.next();
                            let b = it.next_back();
                            if a.is_none() && b.is_none() {
                                break;
                            }
                            front.extend(a);
                            back.extend(b);
                        }
                        front.extend(back.into_iter().rev());
                        front
                    }
                };
                let got = items
                    .into_iter()
                    .map(|item| {
                        let (k, v) = item.unwrap();
                        let u = decode_value(seed, &v, &k);
                        (k, u)
                    })
                    .collect();
                rec.reads.push(Read::Scan {
                    tbl,
                    lo,
                    hi,
                    dir,
                    own,
                    got,
                });
            } else if op < 88 {
                tx.put(TABLES[tbl], &key, &encode_value(uid, &key)).unwrap();
                rec.writes.insert((tbl, key), Some(uid));
            } else {
                tx.delete(TABLES[tbl], &key).unwrap();
                rec.writes.insert((tbl, key), None);
            }
            if rng.chance(1, 3) {
                std::thread::yield_now();
            }
        }
        if kind == Kind::ReadWrite && rng.chance(1, 25) {
            drop(tx);
        } else {
            rec.tip_before = db.stats().tip_seq;
            let result = tx.commit_with(Durability::Applied);
            rec.tip_after = db.stats().tip_seq;
            if let Ok(info) = &result {
                rec.acked_at = tick();
                acked.fetch_max(info.seq, std::sync::atomic::Ordering::AcqRel);
            }
            rec.outcome = match result {
                Ok(info) => Outcome::Committed { seq: info.seq },
                Err(Error::Conflict {
                    table,
                    key,
                    committed_seq,
                }) => {
                    assert!(
                        kind == Kind::ReadWrite,
                        "seed {seed:#x}: a begin_read transaction aborted"
                    );
                    Outcome::Aborted {
                        table,
                        key,
                        seq: committed_seq,
                    }
                }
                Err(e) => panic!("seed {seed:#x}: unexpected commit error {e}"),
            };
        }
        out.push(rec);
    }
    out
}

/// Runs one seeded workload on a fresh database and records its history.
pub fn run(seed: u64, iso: Isolation, profile: Profile) -> History {
    let dir = tempfile::tempdir().unwrap();
    // Checkpoints every few hundred commits, so reads are served from the tree as well
    // as the version store, and folds race the workload (the defaults never fold it).
    let db = capsuledb::Options::new()
        .checkpoint_log_commits(300)
        .open(dir.path().join("history.db"))
        .unwrap();
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    let mut setup = Txn {
        uid: SETUP_UID,
        thread: usize::MAX,
        kind: Kind::ReadWrite,
        snapshot: tx.snapshot_seq(),
        tip_before: 0,
        tip_after: 0,
        began_at: 0,
        acked_at: 0,
        reads: Vec::new(),
        writes: BTreeMap::new(),
        outcome: Outcome::RolledBack,
    };
    for (tbl, name) in TABLES.iter().enumerate() {
        tx.create_table(name).unwrap();
        for i in (0..profile.keys[tbl]).step_by(2) {
            let key = key_name(i);
            tx.put(name, &key, &encode_value(SETUP_UID, &key)).unwrap();
            setup.writes.insert((tbl, key), Some(SETUP_UID));
        }
    }
    setup.outcome = Outcome::Committed {
        seq: tx.commit().unwrap().seq,
    };
    let start = Arc::new(Barrier::new(THREADS));
    let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            let start = Arc::clone(&start);
            let (acked, clock) = (Arc::clone(&acked), Arc::clone(&clock));
            std::thread::spawn(move || worker(db, iso, profile, seed, t, start, (acked, clock)))
        })
        .collect();
    let mut txns = vec![setup];
    for t in history_support::join_all(
        handles,
        &format!("seed {seed:#x} {} {iso:?} worker", profile.name),
    ) {
        txns.extend(t);
    }
    let reader = conn.begin_read().unwrap();
    let final_tip = db.stats().tip_seq;
    assert_eq!(
        reader.snapshot_seq(),
        final_tip,
        "seed {seed:#x}: quiescent snapshot is not at the tip"
    );
    let final_state = TABLES
        .iter()
        .map(|name| {
            reader
                .iter(name)
                .unwrap()
                .map(|item| {
                    let (k, v) = item.unwrap();
                    let u = decode_value(seed, &v, &k);
                    (k, u)
                })
                .collect()
        })
        .collect();
    let stats = db.stats();
    // The history crossed at least one checkpoint (a long enough one does).
    assert!(
        final_tip < 600 || stats.checkpoints > 0,
        "no checkpoint in {final_tip} commits"
    );
    History {
        seed,
        profile: profile.name,
        iso,
        txns,
        final_tip,
        final_state,
        engine_refusals: (stats.write_conflicts, stats.ssi_conflicts),
    }
}
