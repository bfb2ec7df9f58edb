//! The crash sweep: a seeded multi-threaded workload at all three durability levels
//! (with checkpoints and compactions running beside the commits) loses power after N
//! storage operations, for every N, then the simulated disk keeps
//! a seeded subset of the unsynced writes (some torn at sector boundaries) and the
//! database is reopened. After every crash:
//! - every commit acknowledged `Durable` is present;
//! - the recovered state is the model state after exactly a prefix of the commit
//!   sequence (checked per thread, and across threads through acknowledged seqs);
//! - no partial commit is visible;
//! - the database accepts new commits.

use capsuledb::rng::Rng;
use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Options};
use std::collections::BTreeMap;
use std::sync::Arc;

const KEYS_PER_THREAD: u64 = 5;

/// One acknowledged commit.
#[derive(Clone, Debug)]
struct Ack {
    thread: u64,
    /// 1-based position in its thread's sequence of commits.
    nth: u64,
    seq: u64,
    level: Durability,
}

fn ctr_key(thread: u64) -> Vec<u8> {
    format!("ctr/{thread}").into_bytes()
}

fn seen_key(thread: u64, nth: u64) -> Vec<u8> {
    format!("seen/{thread}/{nth:08}").into_bytes()
}

fn data_key(thread: u64, k: u64) -> Vec<u8> {
    format!("d/{thread}/{k}").into_bytes()
}

/// The writes of a thread's `nth` transaction: its counter, a key of its own that no
/// later transaction writes (so a commit lost between two kept ones shows even when
/// later ones overwrote its data keys), and 1..=3 data keys with a value naming the
/// transaction (some large enough to span capsule pages).
fn txn_writes(thread: u64, nth: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut rng = Rng::new(thread * 1_000_003 + nth);
    let mut w = vec![
        (ctr_key(thread), Some(nth.to_le_bytes().to_vec())),
        (seen_key(thread, nth), Some(b"1".to_vec())),
    ];
    for _ in 0..=rng.below(3) {
        let k = rng.below(KEYS_PER_THREAD);
        let v = if rng.chance(1, 6) {
            None
        } else {
            let len = if rng.chance(1, 10) {
                5000
            } else {
                1 + rng.below(200) as usize
            };
            let mut v = format!("{thread}:{nth}:").into_bytes();
            v.resize(len.max(v.len()), b'x');
            Some(v)
        };
        w.push((data_key(thread, k), v));
    }
    w
}

/// The state of a thread's keys after its first `n` transactions.
fn model(thread: u64, n: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for nth in 1..=n {
        for (k, v) in txn_writes(thread, nth) {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
    }
    m
}

fn open(sim: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(7)
        .open_storage(Arc::new(sim.clone()))
}

/// Runs the workload until it finishes or the storage fails; returns the acks.
fn workload(db: &Database, seed: u64, threads: u64, txns: u64) -> Vec<Ack> {
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ ((thread + 1) * 0x9E37));
                let mut acks = Vec::new();
                let mut c = db.connect();
                for nth in 1..=txns {
                    let level = [
                        Durability::Applied,
                        Durability::Written,
                        Durability::Durable,
                    ][rng.below(3) as usize];
                    let Ok(mut tx) = c.begin() else { break };
                    for (k, v) in txn_writes(thread, nth) {
                        let r = match v {
                            Some(v) => tx.put("t", &k, &v),
                            None => tx.delete("t", &k),
                        };
                        r.unwrap();
                    }
                    let committed = tx.commit_with(level);
                    // Thread 0 also checkpoints now and then, so crashes land inside
                    // checkpoints too (a failing checkpoint loses nothing).
                    if thread == 0 && nth % 3 == 0 {
                        let _ = db.checkpoint();
                    }
                    if thread == 1 && nth % 5 == 0 {
                        let _ = db.compact();
                    }
                    match committed {
                        Ok(info) => acks.push(Ack {
                            thread,
                            nth,
                            seq: info.seq,
                            level,
                        }),
                        Err(e) => {
                            assert!(!e.is_retryable(), "disjoint keys never conflict: {e}");
                            break;
                        }
                    }
                }
                acks
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

/// Every pair of table `t`.
fn table_state(db: &Database) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    tx.iter("t")
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k, v.to_vec())
        })
        .collect()
}

fn setup() -> SimStorage {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    db.close().unwrap();
    sim
}

/// Checks a recovered database against the acknowledged commits.
fn check(db: &Database, acks: &[Ack], threads: u64, context: &str) {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let mut recovered_n = BTreeMap::new();
    for thread in 0..threads {
        let n = tx
            .get("t", &ctr_key(thread))
            .unwrap()
            .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
        // No partial commit: the thread's keys are exactly its first n transactions.
        let expected = model(thread, n);
        let mut got: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for prefix in [format!("d/{thread}/"), format!("seen/{thread}/")] {
            let prefix = prefix.into_bytes();
            got.extend(
                tx.range("t", prefix.clone()..)
                    .unwrap()
                    .map(|r| r.unwrap())
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k, v.to_vec())),
            );
        }
        if n > 0 {
            got.insert(ctr_key(thread), n.to_le_bytes().to_vec());
        }
        assert_eq!(
            got, expected,
            "{context}: thread {thread} after {n} transactions"
        );
        recovered_n.insert(thread, n);
    }
    let present = |a: &Ack| a.nth <= recovered_n[&a.thread];
    for a in acks {
        if a.level == Durability::Durable {
            assert!(present(a), "{context}: durable commit {a:?} lost");
        }
    }
    // Across threads: the recovered commits are a prefix of the sequence.
    let max_present = acks
        .iter()
        .filter(|a| present(a))
        .map(|a| a.seq)
        .max()
        .unwrap_or(0);
    // And against the recovered tip, which counts commits no thread acknowledged too
    // (an in-flight commit recovered above a lost acknowledged one passed the check
    // above): every acknowledged commit at or below it is present, none above it.
    let tip = db.stats().tip_seq;
    // Every sequence up to the tip is the setup's commit or one thread transaction
    // recovered whole: a commit in flight lost below one recovered above it (two
    // unacknowledged commits of one torn group, from different threads) leaves a
    // sequence no thread counts, which the acknowledged commits alone cannot show.
    let recovered: u64 = recovered_n.values().sum();
    assert_eq!(
        tip,
        1 + recovered,
        "{context}: the recovered tip {tip} is not the setup's commit and the {recovered} \
         thread transactions recovered: not a prefix of the commit sequence"
    );
    for a in acks {
        assert!(
            present(a) || a.seq > max_present,
            "{context}: commit {a:?} missing below recovered seq {max_present}"
        );
        assert_eq!(
            present(a),
            a.seq <= tip,
            "{context}: commit {a:?} against the recovered tip {tip}"
        );
    }
    drop(tx);
    // The database accepts new commits.
    let mut tx = c.begin().unwrap();
    tx.put("t", b"after-crash", b"ok").unwrap();
    tx.commit().unwrap();
}

#[test]
fn crash_at_every_io_point() {
    // How many storage operations does an uninterrupted run take?
    let sim = setup();
    let base = sim.counts();
    let db = open(&sim).unwrap();
    let acks = workload(&db, 1, 3, 12);
    assert_eq!(acks.len(), 36);
    assert!(db.stats().checkpoints > 0, "the sweep covers checkpoints");
    println!("uninterrupted run: {} checkpoints", db.stats().checkpoints);
    db.close().unwrap();
    let c = sim.counts();
    let total_ops = (c.writes + c.syncs + c.set_lens) - (base.writes + base.syncs + base.set_lens);
    let mut cases = 0;
    // Crash images per I/O point: 3, or `CAPSULEDB_CRASH_SEEDS` in a long run.
    let seeds: u64 = std::env::var("CAPSULEDB_CRASH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for n in 0..total_ops + 5 {
        let sim = setup();
        let db = open(&sim).unwrap();
        sim.power_off_after(n);
        // The run whose operations were counted, cut after its `n`th: every point of it
        // (up to the threads' timing) is a crash point. A seed per point made each run
        // another workload, whose later points the count did not cover.
        let acks = workload(&db, 1, 3, 12);
        drop(db);
        for crash_seed in 0..seeds {
            let image = sim.fork();
            image.crash(n * 31 + crash_seed);
            let context = format!("power off after {n} ops, crash seed {crash_seed}");
            let db = open(&image).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
            let report = db.check_integrity().unwrap();
            assert!(report.is_ok(), "{context}: {:?}", report.problems);
            check(&db, &acks, 3, &context);
            drop(db);
            cases += 1;
        }
    }
    println!("crash sweep: {total_ops} I/O points, {cases} crashes checked");
}

#[test]
fn crash_at_random_points_of_long_runs() {
    // Long enough to fill several marker pages (127 markers each) and grow the file.
    let mut rng = Rng::new(2024);
    let mut checked = 0;
    for round in 0..12 {
        let sim = setup();
        let db = open(&sim).unwrap();
        sim.power_off_after(200 + rng.below(2500));
        let acks = workload(&db, round, 6, 90);
        drop(db);
        for crash_seed in 0..2 {
            let image = sim.fork();
            image.crash(rng.next_u64());
            let context = format!("long run {round}, crash seed {crash_seed}");
            let db = open(&image).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
            let report = db.check_integrity().unwrap();
            assert!(report.is_ok(), "{context}: {:?}", report.problems);
            check(&db, &acks, 6, &context);
            checked += 1;
        }
    }
    println!("long-run crashes checked: {checked}");
}

#[test]
fn checkpoints_then_clean_reopen() {
    for seed in 0..20 {
        let sim = setup();
        let db = open(&sim).unwrap();
        let acks = workload(&db, seed, 3, 30);
        // No fault: every commit is acknowledged (an error from a commit racing the
        // checkpoints and compactions ended its thread, unnoticed).
        assert_eq!(acks.len(), 90, "seed {seed}");
        db.close().unwrap();
        let db = open(&sim).unwrap();
        let report = db.check_integrity().unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        check(&db, &acks, 3, &format!("clean reopen seed {seed}"));
        // A clean close makes every commit durable, whatever level it asked for.
        let tip = db.stats().tip_seq;
        assert!(
            acks.iter().all(|a| a.seq <= tip),
            "seed {seed}: a commit below Durable was lost at a clean close (tip {tip})"
        );
    }
}

#[test]
fn single_thread_crash_points_with_checkpoints() {
    // The points cover the whole run: as many as its operations (the flusher's timing
    // can change their number a little), and a few past its end.
    let sim = setup();
    let base = sim.counts();
    let db = open(&sim).unwrap();
    assert_eq!(workload(&db, 5, 1, 40).len(), 40);
    drop(db);
    let c = sim.counts();
    let total_ops = (c.writes + c.syncs + c.set_lens) - (base.writes + base.syncs + base.set_lens);
    let mut failures = Vec::new();
    for n in 0..total_ops.max(400) + 20 {
        let sim = setup();
        let db = open(&sim).unwrap();
        sim.power_off_after(n);
        let acks = workload(&db, 5, 1, 40);
        drop(db);
        // Seeds that differ at every point: the disk's choices of which unsynced writes
        // it keeps depend on the seed alone, and three fixed seeds kept the same three
        // patterns at every point.
        for crash_seed in (0..3).map(|s| n * 31 + s) {
            let image = sim.fork();
            image.crash(crash_seed);
            let db = open(&image).unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                check(
                    &db,
                    &acks,
                    1,
                    &format!("point {n}, crash seed {crash_seed}"),
                )
            }));
            if r.is_err() {
                failures.push((n, crash_seed));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// Power lost during recovery itself: a crash image of a cut workload is reopened with
/// the power going out after each of the reopen's own storage operations (its repairs,
/// the torn tail's zeroing, its header), the disk keeping a seeded subset of what it
/// wrote; the next reopen must still find every `Durable` commit, a prefix of the
/// sequence, no partial commit.
#[test]
fn power_lost_during_recovery() {
    let mut cases = 0u64;
    let mut recovery_points = 0u64;
    for n in (5..215u64).step_by(3) {
        let sim = setup();
        let db = open(&sim).unwrap();
        sim.power_off_after(n);
        let acks = workload(&db, 1, 3, 12);
        drop(db);
        for crash_seed in 0..3u64 {
            let image = sim.fork();
            image.crash(n * 31 + crash_seed);
            // The operations of an uninterrupted reopen (and its close).
            let clean = image.fork();
            let before = clean.counts();
            let reopened = open(&clean).unwrap_or_else(|e| panic!("cut {n}: reopen failed: {e}"));
            // Every reopen of this image, interrupted or not, recovers exactly this.
            let want = table_state(&reopened);
            drop(reopened);
            let after = clean.counts();
            let ops = (after.writes + after.syncs + after.set_lens)
                - (before.writes + before.syncs + before.set_lens);
            recovery_points += ops;
            for k in 0..ops + 2 {
                let twice = image.fork();
                twice.power_off_after(k);
                // The reopen fails at the power cut, or finishes before it.
                drop(open(&twice));
                twice.crash(k * 7 + crash_seed);
                let context = format!(
                    "cut {n}, crash seed {crash_seed}, power lost after {k} operations of the reopen"
                );
                let db = open(&twice).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
                let report = db.check_integrity().unwrap();
                assert!(report.is_ok(), "{context}: {:?}", report.problems);
                // Not only the acknowledged commits: an interrupted repair must not lose
                // a durable marker of an `Applied` or `Written` commit either.
                assert!(
                    table_state(&db) == want,
                    "{context}: not the state a clean reopen recovers"
                );
                check(&db, &acks, 3, &context);
                cases += 1;
            }
        }
    }
    println!(
        "power lost during recovery: {recovery_points} reopen operations, {cases} crashes checked"
    );
    assert!(recovery_points > 0, "no reopen wrote anything");
}
