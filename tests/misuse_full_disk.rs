//! A disk that fills up during commits, checkpoints and compactions, on one thread and
//! under concurrent committers: every error is `Io` or `Poisoned`, poisoning is sticky,
//! a refused commit is invisible, and every acknowledged commit survives a crash (torn or
//! losing everything unsynced) whole, beside at most one failed commit that is whole too.

mod misuse_support;

use capsuledb::storage::{SimStorage, Storage};
use capsuledb::{Database, Durability, Error};
use misuse_support::{State, TABLE, assert_clean, create_table, is_io_or_poisoned, open_sim, scan};
use std::sync::Arc;

/// Data keys per commit of the full-disk workload (plus the shared `last` key).
const FULL_KEYS_PER_COMMIT: u32 = 3;
const FULL_COMMITS: u32 = 120;

fn full_key(i: u32, j: u32) -> Vec<u8> {
    format!("k{i:04}-{j}").into_bytes()
}

/// Mostly small values; every third commit carries one that needs pages of its own.
fn full_value(i: u32, j: u32) -> Vec<u8> {
    let len = if j == 0 && i % 3 == 2 {
        96 << 10
    } else {
        20 + (i as usize * 7 + j as usize) % 300
    };
    (0..len).map(|b| (b as u32 ^ (i * 31 + j)) as u8).collect()
}

fn full_commit_kvs(i: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut kvs: Vec<_> = (0..FULL_KEYS_PER_COMMIT)
        .map(|j| (full_key(i, j), full_value(i, j)))
        .collect();
    kvs.push((b"last".to_vec(), i.to_string().into_bytes()));
    kvs
}

fn full_model(commits: &[u32]) -> State {
    let mut m = State::new();
    for &i in commits {
        m.extend(full_commit_kvs(i));
    }
    m
}

fn full_try_commit(db: &Database, i: u32) -> capsuledb::Result<u64> {
    let mut conn = db.connect();
    let mut tx = conn.begin()?;
    for (k, v) in full_commit_kvs(i) {
        tx.put(TABLE, &k, &v)?;
    }
    Ok(tx.commit_with(Durability::Durable)?.seq)
}

/// Checks `state` holds exactly the acknowledged commits plus at most one failed commit,
/// whole, and one that came after every acknowledged commit.
fn check_full_state(state: &State, acked: &[u32], failed: &[u32], when: &str) {
    let mut survivors = Vec::new();
    for &f in failed {
        let present = (0..FULL_KEYS_PER_COMMIT)
            .filter(|&j| state.contains_key(&full_key(f, j)))
            .count() as u32;
        assert!(
            present == 0 || present == FULL_KEYS_PER_COMMIT,
            "{when}: failed commit {f} is half there ({present} of {FULL_KEYS_PER_COMMIT} keys)"
        );
        if present > 0 {
            survivors.push(f);
        }
    }
    assert!(
        survivors.len() <= 1,
        "{when}: several failed commits survived: {survivors:?}"
    );
    if let Some(&s) = survivors.first() {
        assert!(
            acked.iter().all(|&a| a < s),
            "{when}: failed commit {s} survived but later ones were acknowledged"
        );
    }
    let mut present = acked.to_vec();
    present.extend(&survivors);
    present.sort_unstable();
    assert!(
        *state == full_model(&present),
        "{when}: the state is not the acknowledged commits {present:?}"
    );
}

#[derive(Default, Debug)]
struct FullRun {
    acked: Vec<u32>,
    failed: Vec<u32>,
    poisoned: bool,
    checkpoint_errors: u32,
    compact_errors: u32,
}

/// Commits with checkpoints and compactions between them on a disk that fills at
/// `max_len`; every error is `Io` or `Poisoned` and poisoning is sticky.
fn full_disk_workload(db: &Database, sim: &SimStorage, max_len: u64) -> FullRun {
    sim.set_max_len(Some(max_len));
    let mut run = FullRun::default();
    let mut poisoned = false;
    for i in 0..FULL_COMMITS {
        match full_try_commit(db, i) {
            Ok(_) => {
                assert!(!poisoned, "commit {i} succeeded after Poisoned");
                run.acked.push(i);
            }
            Err(e) => {
                assert!(is_io_or_poisoned(&e), "commit {i}: {e:?}");
                assert!(!poisoned || matches!(e, Error::Poisoned { .. }), "{e:?}");
                poisoned |= matches!(e, Error::Poisoned { .. });
                run.failed.push(i);
            }
        }
        if i % 10 == 9
            && let Err(e) = db.checkpoint()
        {
            assert!(is_io_or_poisoned(&e), "checkpoint after {i}: {e:?}");
            run.checkpoint_errors += 1;
        }
        if i % 25 == 24
            && let Err(e) = db.compact()
        {
            assert!(is_io_or_poisoned(&e), "compact after {i}: {e:?}");
            run.compact_errors += 1;
        }
        assert!(
            sim.len().unwrap() <= max_len,
            "the file passed the disk's size"
        );
    }
    run.poisoned = poisoned;
    run
}

#[test]
fn a_full_disk_is_an_error_and_loses_no_acknowledged_commit() {
    // The file's length after creating the table, then limits from "no room at all" to
    // "room for most of the workload". The file grows in steps of at least 1 MiB, so
    // the limits are spread over several steps, some between them.
    let base = {
        let sim = SimStorage::new();
        let db = open_sim(&sim).unwrap();
        create_table(&db, TABLE);
        drop(db);
        sim.len().unwrap()
    };
    let mut limits_hit = 0;
    for extra in [
        0u64,
        1 << 20,
        (3 << 20) / 2,
        2 << 20,
        3 << 20,
        (9 << 20) / 2,
    ] {
        let max_len = base + extra;
        let sim = SimStorage::new();
        let db = open_sim(&sim).unwrap();
        create_table(&db, TABLE);
        let mut run = full_disk_workload(&db, &sim, max_len);
        let errors = run.failed.len() as u32 + run.checkpoint_errors + run.compact_errors;
        if errors > 0 {
            limits_hit += 1;
        }
        println!(
            "disk of {max_len} bytes: {} commits acknowledged, {} refused, {} checkpoint and \
             {} compact errors",
            run.acked.len(),
            run.failed.len(),
            run.checkpoint_errors,
            run.compact_errors
        );
        // Live: a failed commit is invisible, reads work on the full disk.
        assert!(
            scan(&db, TABLE) == full_model(&run.acked),
            "disk of {max_len}: live state is not the acknowledged commits"
        );
        assert_clean(&db, &format!("on the full disk of {max_len} bytes"));
        // Power lost while the disk is still full, keeping a seeded part of what was not
        // synced (torn at sectors): the Durable acknowledgements all survive.
        let torn = sim.fork();
        torn.crash(max_len ^ 0xF011);
        {
            let when = format!("disk of {max_len} bytes, torn crash while full");
            let db = open_sim(&torn).unwrap_or_else(|e| panic!("{when}: reopen: {e}"));
            check_full_state(&scan(&db, TABLE), &run.acked, &run.failed, &when);
            assert_clean(&db, &when);
        }
        // Lifting the limit: the same handle reads the same and, unless a commit's I/O
        // failed past the point of no return (Poisoned), commits again.
        sim.set_max_len(None);
        assert!(scan(&db, TABLE) == full_model(&run.acked));
        match full_try_commit(&db, FULL_COMMITS) {
            Ok(_) => {
                assert!(!run.poisoned, "a commit succeeded after Poisoned");
                run.acked.push(FULL_COMMITS);
            }
            Err(e) => {
                assert!(matches!(e, Error::Poisoned { .. }), "after lifting: {e:?}");
                run.failed.push(FULL_COMMITS);
            }
        }
        println!(
            "  after lifting the limit: {}",
            if run.failed.last() == Some(&FULL_COMMITS) {
                "poisoned until reopened"
            } else {
                "commits again"
            }
        );
        assert!(scan(&db, TABLE) == full_model(&run.acked));
        drop(db);

        // A power loss that keeps nothing unsynced: every Durable ack survives.
        let crashed = sim.fork();
        crashed.crash_losing_unsynced();
        for (image, what) in [(crashed, "after a crash"), (sim, "after a clean reopen")] {
            let when = format!("disk of {max_len} bytes, {what}");
            let db = open_sim(&image).unwrap_or_else(|e| panic!("{when}: reopen: {e}"));
            check_full_state(&scan(&db, TABLE), &run.acked, &run.failed, &when);
            assert_clean(&db, &when);
            // It takes new commits and checkpoints again, and stays sound.
            full_try_commit(&db, FULL_COMMITS + 1).unwrap();
            db.checkpoint().unwrap();
            db.compact().unwrap();
            assert_clean(&db, &format!("{when}, after a new commit"));
            let state = scan(&db, TABLE);
            let last = (FULL_COMMITS + 1).to_string().into_bytes();
            assert_eq!(state.get(b"last".as_slice()), Some(&last));
        }
    }
    assert!(limits_hit >= 4, "the disk filled only {limits_hit} times");
}

#[test]
fn a_full_disk_under_concurrent_commits_loses_no_acknowledged_commit() {
    // Four threads commit (each its own keys, so no conflicts) while another one
    // checkpoints and compacts; the disk fills part way. Each thread's acknowledged
    // commits survive a crash; each failed one is whole or absent.
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 60;
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    create_table(&db, TABLE);
    sim.set_max_len(Some(sim.len().unwrap() + (3 << 20)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let maintenance = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut errors = 0;
            for round in 0u32.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let r = if round % 4 == 3 {
                    db.compact().map(drop)
                } else {
                    db.checkpoint().map(drop)
                };
                if let Err(e) = r {
                    assert!(is_io_or_poisoned(&e), "maintenance: {e:?}");
                    errors += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            errors
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let (mut acked, mut failed) = (Vec::new(), Vec::new());
                for n in 0..PER_THREAD {
                    // Commit numbers interleave the threads: i = n * THREADS + t.
                    let i = n * THREADS + t;
                    let mut conn = db.connect();
                    let result = (|| {
                        let mut tx = conn.begin()?;
                        for (k, v) in full_commit_kvs(i).into_iter().take(3) {
                            tx.put(TABLE, &k, &v)?;
                        }
                        tx.commit()
                    })();
                    match result {
                        Ok(_) => acked.push(i),
                        Err(e) => {
                            assert!(is_io_or_poisoned(&e), "thread {t} commit {i}: {e:?}");
                            failed.push(i);
                        }
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    for w in workers {
        let (a, f) = w.join().expect("a committer panicked");
        acked.extend(a);
        failed.extend(f);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let maintenance_errors = maintenance.join().expect("maintenance panicked");
    println!(
        "concurrent full disk: {} acknowledged, {} refused, {maintenance_errors} maintenance \
         errors",
        acked.len(),
        failed.len()
    );
    assert!(!failed.is_empty(), "the disk never filled");
    let model = |commits: &[u32]| {
        let mut m = State::new();
        for &i in commits {
            m.extend(full_commit_kvs(i).into_iter().take(3));
        }
        m
    };
    // Several failed commits may have been sequenced (a group of them) before a failure:
    // each failed one is whole or absent; every acknowledged one is there.
    let check = |state: &State, when: &str| {
        let mut present = acked.clone();
        for &f in &failed {
            let n = (0..FULL_KEYS_PER_COMMIT)
                .filter(|&j| state.contains_key(&full_key(f, j)))
                .count() as u32;
            assert!(
                n == 0 || n == FULL_KEYS_PER_COMMIT,
                "{when}: failed commit {f} is half there"
            );
            if n > 0 {
                present.push(f);
            }
        }
        assert!(*state == model(&present), "{when}: state");
    };
    let live = scan(&db, TABLE);
    assert!(live == model(&acked), "live: a refused commit is visible");
    drop(db);
    for (seed, what) in [(None, "losing everything unsynced"), (Some(7), "torn")] {
        let image = sim.fork();
        match seed {
            None => image.crash_losing_unsynced(),
            Some(s) => image.crash(s),
        }
        let db = open_sim(&image).unwrap();
        check(&scan(&db, TABLE), what);
        assert_clean(&db, what);
        full_try_commit(&db, 10_000).unwrap();
    }
}
