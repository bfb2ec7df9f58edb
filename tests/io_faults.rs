//! I/O failures while committing: a failed FSYNC_1 or FSYNC_2 poisons the database
//! (sticky `Error::Poisoned`), a failed capsule write fails only its own commit, a full
//! disk is an error and never corruption, and after any single fault the database
//! reopens with every acknowledged commit and the failed one whole or not at all.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Error, Options};
use std::collections::BTreeMap;
use std::sync::Arc;

const TABLE: &str = "t";
const DB_SEED: u64 = 0x10FA_0001;
/// Commits in the swept workload.
const WORKLOAD_COMMITS: u32 = 20;
/// Data keys written by each commit (plus the shared `last` key).
const KEYS_PER_COMMIT: u32 = 3;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn open(sim: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(DB_SEED)
        .open_storage(Arc::new(sim.clone()))
}

fn data_key(i: u32, j: u32) -> Vec<u8> {
    format!("k{i:05}-{j}").into_bytes()
}

fn value_of(i: u32, j: u32) -> Vec<u8> {
    format!("v{i}.{j};")
        .repeat(((i * 7 + j) % 13 + 1) as usize)
        .into_bytes()
}

/// What commit `i` writes: three unique keys and the shared key `last = i`.
fn commit_kvs(i: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut kvs: Vec<_> = (0..KEYS_PER_COMMIT)
        .map(|j| (data_key(i, j), value_of(i, j)))
        .collect();
    kvs.push((b"last".to_vec(), i.to_string().into_bytes()));
    kvs
}

/// Runs commit `i` (creating the table if it does not exist yet) with `Durable`.
fn try_commit(db: &Database, i: u32) -> Result<u64, Error> {
    let mut c = db.connect();
    let mut tx = c.begin()?;
    if !tx.table_exists(TABLE)? {
        tx.create_table(TABLE)?;
    }
    for (k, v) in commit_kvs(i) {
        tx.put(TABLE, &k, &v)?;
    }
    Ok(tx.commit_with(Durability::Durable)?.seq)
}

/// The state after the given commits, in order; `None` when no commit (so no table).
fn model(commits: &[u32]) -> Option<State> {
    if commits.is_empty() {
        return None;
    }
    let mut m = State::new();
    for &i in commits {
        m.extend(commit_kvs(i));
    }
    Some(m)
}

/// Everything the database holds, read by a full scan and cross-checked by point reads.
fn read_state(db: &Database, universe: u32) -> Option<State> {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    if !tx.table_exists(TABLE).unwrap() {
        assert!(tx.tables().unwrap().is_empty());
        return None;
    }
    let scanned: State = tx
        .iter(TABLE)
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k, v.to_vec())
        })
        .collect::<State>();
    for i in 0..universe {
        for (k, _) in commit_kvs(i) {
            assert_eq!(
                tx.get(TABLE, &k).unwrap().as_ref(),
                scanned.get(&k),
                "point read and scan disagree on {}",
                String::from_utf8_lossy(&k)
            );
        }
    }
    Some(scanned)
}

/// Which of `failed` are in `state`; each must be there whole or not at all.
fn present_failed(state: &Option<State>, failed: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    for &f in failed {
        let n = (0..KEYS_PER_COMMIT)
            .filter(|&j| {
                state
                    .as_ref()
                    .and_then(|s| s.get(&data_key(f, j)))
                    .is_some()
            })
            .count() as u32;
        assert!(
            n == 0 || n == KEYS_PER_COMMIT,
            "failed commit {f} is partially present ({n} of {KEYS_PER_COMMIT} keys)"
        );
        if n == KEYS_PER_COMMIT {
            out.push(f);
        }
    }
    out
}

/// Checks a recovered database: all of `acked`, each of `failed` whole or absent (at
/// most one of them, and never one that failed before an acknowledged commit when
/// `failed_before_ack_absent`), nothing else; returns whether a failed commit survived.
fn check_recovered(db: &Database, acked: &[u32], failed: &[u32], universe: u32) -> bool {
    let state = read_state(db, universe);
    let survivors = present_failed(&state, failed);
    assert!(
        survivors.len() <= 1,
        "more than one failed commit survived: {survivors:?}"
    );
    for &s in &survivors {
        assert!(
            acked.iter().all(|&a| a < s),
            "failed commit {s} survived although later commits {acked:?} were acknowledged \
             without it being sequenced"
        );
    }
    let mut present = acked.to_vec();
    present.extend(&survivors);
    present.sort_unstable();
    assert_eq!(state, model(&present), "recovered state");
    assert_eq!(db.stats().recovered_commits, present.len() as u64);
    !survivors.is_empty()
}

/// After recovery the database takes a new commit, and that commit survives a crash.
fn check_accepts_commit(sim: &SimStorage, db: Database, universe: u32) {
    let probe = universe + 1000;
    let before = read_state(&db, universe);
    try_commit(&db, probe).expect("a recovered database accepts commits");
    drop(db);
    sim.crash_losing_unsynced();
    let db = open(sim).expect("reopen after the probe commit");
    let mut expected = before.unwrap_or_default();
    expected.extend(commit_kvs(probe));
    assert_eq!(read_state(&db, universe), Some(expected));
}

#[derive(Clone, Copy, Debug)]
enum CrashMode {
    /// Reopen the live image (the process restarted, the OS kept its writes).
    NoCrash,
    /// Power loss that keeps nothing unsynced.
    LoseUnsynced,
    /// Power loss that keeps a seeded subset of unsynced writes, possibly torn.
    Seeded(u64),
}

fn crash(sim: &SimStorage, mode: CrashMode) {
    match mode {
        CrashMode::NoCrash => {}
        CrashMode::LoseUnsynced => sim.crash_losing_unsynced(),
        CrashMode::Seeded(seed) => sim.crash(seed),
    }
}

const CRASH_MODES: [CrashMode; 4] = [
    CrashMode::NoCrash,
    CrashMode::LoseUnsynced,
    CrashMode::Seeded(1),
    CrashMode::Seeded(0xC0FFEE),
];

fn is_io(e: &Error) -> bool {
    matches!(e, Error::Io { .. })
}

fn is_poisoned(e: &Error) -> bool {
    matches!(e, Error::Poisoned { .. })
}

/// What a run of the workload under one injected fault did.
#[derive(Debug, Default)]
struct Run {
    acked: Vec<u32>,
    failed: Vec<u32>,
    poisoned: bool,
}

/// Runs commits `0..n`, checking the error rules as it goes: the first error is `Io` or
/// `Poisoned`; once a commit returns `Poisoned`, or an `Io` error is followed by another
/// error, every later commit is `Poisoned`. `single_fault` says only one I/O call fails.
fn run_workload(db: &Database, commits: std::ops::Range<u32>, single_fault: bool) -> Run {
    let n = commits.end;
    let mut run = Run::default();
    for i in commits {
        match try_commit(db, i) {
            Ok(_) => {
                assert!(!run.poisoned, "commit {i} succeeded after the poison");
                run.acked.push(i);
            }
            Err(e) => {
                assert!(
                    is_io(&e) || is_poisoned(&e),
                    "commit {i}: unexpected error {e:?}"
                );
                if run.poisoned || (single_fault && !run.failed.is_empty()) {
                    // A single fault can fail one commit with Io; any second failure
                    // means the first one poisoned the database.
                    assert!(is_poisoned(&e), "commit {i}: expected Poisoned, got {e:?}");
                }
                if is_poisoned(&e) || (single_fault && !run.failed.is_empty()) {
                    run.poisoned = true;
                }
                run.failed.push(i);
            }
        }
    }
    if single_fault && run.failed.len() > 1 {
        // Everything after the first failure was refused as poisoned.
        let first = run.failed[0];
        assert_eq!(run.failed, (first..n).collect::<Vec<_>>());
    }
    run
}

/// The live database shows exactly the acknowledged commits: reads work after a fault
/// and a failed commit is invisible.
fn check_live(db: &Database, run: &Run, universe: u32) {
    assert_eq!(read_state(db, universe), model(&run.acked), "live state");
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Write(u64),
    Sync(u64),
    SetLen(u64),
    PowerOff(u64),
}

/// Cancels a fault the workload did not reach, so it cannot hit the reopen.
fn disarm(sim: &SimStorage) {
    const FAR: u64 = u64::MAX / 4;
    sim.fail_nth_write(FAR);
    sim.fail_nth_sync(FAR);
    sim.fail_nth_set_len(FAR);
    sim.fail_nth_remap(FAR);
}

fn arm(sim: &SimStorage, fault: Fault) {
    match fault {
        Fault::Write(n) => sim.fail_nth_write(n),
        Fault::Sync(n) => sim.fail_nth_sync(n),
        Fault::SetLen(n) => sim.fail_nth_set_len(n),
        Fault::PowerOff(n) => sim.power_off_after(n),
    }
}

/// A workload to sweep faults over: commits `from..to` on a database that already holds
/// commits `0..from` (the image `base`; empty for a new database).
struct Workload {
    base: Vec<u8>,
    from: u32,
    to: u32,
}

impl Workload {
    fn fresh() -> Workload {
        Workload {
            base: Vec::new(),
            from: 0,
            to: WORKLOAD_COMMITS,
        }
    }

    /// Commits `from..to` on top of `from` commits already made (all synced).
    fn on_top_of(from: u32, to: u32) -> Workload {
        let sim = SimStorage::new();
        let db = open(&sim).unwrap();
        for i in 0..from {
            try_commit(&db, i).unwrap();
        }
        drop(db);
        let base = sim.durable_bytes();
        assert_eq!(base, sim.live_bytes());
        Workload { base, from, to }
    }

    fn storage(&self) -> SimStorage {
        if self.base.is_empty() {
            SimStorage::new()
        } else {
            SimStorage::from_bytes(self.base.clone())
        }
    }
}

/// One point of a sweep: the workload's database, fault armed after open, workload,
/// crash, reopen, check. Returns (failed commits, whether a failed commit survived).
fn sweep_point(w: &Workload, fault: Fault, mode: CrashMode) -> (usize, bool) {
    let sim = w.storage();
    let db = open(&sim).unwrap();
    arm(&sim, fault);
    let single = !matches!(fault, Fault::PowerOff(_));
    let mut run = run_workload(&db, w.from..w.to, single);
    run.acked.splice(0..0, 0..w.from);
    if !matches!(fault, Fault::PowerOff(_)) {
        check_live(&db, &run, w.to);
    }
    drop(db);
    disarm(&sim);
    crash(&sim, mode);
    if let (Fault::PowerOff(_), CrashMode::NoCrash) = (fault, mode) {
        // Power off is cleared only by a crash.
        sim.crash_losing_unsynced();
    }
    let db = open(&sim).unwrap_or_else(|e| panic!("{fault:?} {mode:?}: reopen failed: {e}"));
    let survived = check_recovered(&db, &run.acked, &run.failed, w.to);
    check_accepts_commit(&sim, db, w.to);
    (run.failed.len(), survived)
}

struct Counts {
    writes: u64,
    syncs: u64,
    set_lens: u64,
}

/// I/O calls (writes, syncs, resizes) the workload makes after open, without faults.
fn workload_counts(w: &Workload) -> Counts {
    let sim = w.storage();
    let db = open(&sim).unwrap();
    let before = sim.counts();
    let run = run_workload(&db, w.from..w.to, true);
    assert_eq!(run.acked.len(), (w.to - w.from) as usize);
    let after = sim.counts();
    drop(db);
    Counts {
        writes: after.writes - before.writes,
        syncs: after.syncs - before.syncs,
        set_lens: after.set_lens - before.set_lens,
    }
}

/// Commits `0..before` succeed, then the fault is armed and commit `before` fails.
fn fail_one_commit(fault: Fault, before: u32) -> (SimStorage, Database, Error) {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    for i in 0..before {
        try_commit(&db, i).unwrap();
    }
    arm(&sim, fault);
    let err = try_commit(&db, before).expect_err("the faulted commit must fail");
    (sim, db, err)
}

fn fsync_failure_poisons(sync_index: u64, expect_survivor_without_crash: bool) {
    for mode in CRASH_MODES {
        let before = 5;
        let (sim, db, err) = fail_one_commit(Fault::Sync(sync_index), before);
        assert!(
            is_io(&err) || is_poisoned(&err),
            "FSYNC_{sync_index}: {err:?}"
        );
        // Sticky: every later commit is refused, whatever it writes.
        for i in before + 1..before + 4 {
            let e = try_commit(&db, i).expect_err("commit after a failed fsync");
            assert!(
                is_poisoned(&e),
                "commit {i} after FSYNC_{sync_index}: {e:?}"
            );
        }
        // Reads still work and show exactly the acknowledged commits.
        let acked: Vec<u32> = (0..before).collect();
        assert_eq!(read_state(&db, before + 4), model(&acked));
        drop(db);
        crash(&sim, mode);
        let db = open(&sim).unwrap();
        let failed: Vec<u32> = (before..before + 4).collect();
        let survived = check_recovered(&db, &acked, &failed, before + 4);
        match mode {
            // Without a crash, the failed commit's marker is in the file after a failed
            // FSYNC_2 (written before the sync) and absent after a failed FSYNC_1.
            CrashMode::NoCrash => assert_eq!(survived, expect_survivor_without_crash),
            CrashMode::LoseUnsynced => assert!(!survived, "nothing unsynced survives"),
            CrashMode::Seeded(_) => {}
        }
        check_accepts_commit(&sim, db, before + 4);
    }
}

#[test]
fn failed_fsync_1_poisons_and_recovers_without_the_commit() {
    // Each Durable commit on one thread is one group: sync 1 is its FSYNC_1.
    fsync_failure_poisons(1, false);
}

#[test]
fn failed_fsync_2_poisons_and_recovers_all_or_nothing() {
    // Sync 2 of the group is FSYNC_2, after the markers were written.
    fsync_failure_poisons(2, true);
}

/// Pipelined groups: one sync is FSYNC_2 of group N and FSYNC_1 of group N+1. When it
/// fails, both groups are poisoned: no commit of either is acknowledged, every later
/// commit is refused, and after a crash each is whole or absent.
#[test]
fn failed_sync_serving_two_groups_poisons_both() {
    for mode in CRASH_MODES {
        let before = 5;
        let sim = SimStorage::new();
        let db = Arc::new(open(&sim).unwrap());
        for i in 0..before {
            try_commit(&db, i).unwrap();
        }
        // Sync 1 from now is FSYNC_1 of group N (commit `before`); hold it there until
        // commit `before + 1` has queued behind it as group N+1. Sync 2 then serves
        // both, and fails.
        let syncs_before = sim.counts().syncs;
        let gate = sim.hold_nth_sync(1);
        sim.fail_nth_sync(2);
        let first = {
            let db = Arc::clone(&db);
            std::thread::spawn(move || try_commit(&db, before))
        };
        gate.wait_held();
        let tip = db.stats().tip_seq;
        // Its own keys only: the shared `last` key would conflict with group N's.
        let second = {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let mut c = db.connect();
                let mut tx = c.begin()?;
                for j in 0..KEYS_PER_COMMIT {
                    tx.put(TABLE, &data_key(before + 1, j), &value_of(before + 1, j))?;
                }
                Ok::<u64, Error>(tx.commit_with(Durability::Durable)?.seq)
            })
        };
        while db.stats().tip_seq == tip && !second.is_finished() {
            std::thread::yield_now();
        }
        assert_eq!(
            db.stats().tip_seq,
            tip + 1,
            "group N+1 is sequenced and queued"
        );
        gate.release();
        let first = first.join().unwrap();
        let second = second.join().unwrap();
        let e1 = first.expect_err("group N's FSYNC_2 failed: not acknowledged");
        let e2 = second.expect_err("group N+1's FSYNC_1 failed: not acknowledged");
        assert!(is_io(&e1) || is_poisoned(&e1), "group N: {e1:?}");
        assert!(is_io(&e2) || is_poisoned(&e2), "group N+1: {e2:?}");
        // One sync succeeded (the held one); the next, serving both groups, failed.
        assert_eq!(sim.counts().syncs - syncs_before, 1);
        for i in before + 2..before + 4 {
            let e = try_commit(&db, i).expect_err("commit after a failed fsync");
            assert!(is_poisoned(&e), "commit {i}: {e:?}");
        }
        let acked: Vec<u32> = (0..before).collect();
        assert_eq!(read_state(&db, before + 4), model(&acked));
        drop(db);
        crash(&sim, mode);
        let db = open(&sim).unwrap();
        // Group N+1 never had a marker written: it is gone in every mode.
        let state = read_state(&db, before + 4).unwrap_or_default();
        for j in 0..KEYS_PER_COMMIT {
            assert!(
                !state.contains_key(&data_key(before + 1, j)),
                "group N+1 survived"
            );
        }
        let failed = [before, before + 2, before + 3];
        let survived = check_recovered(&db, &acked, &failed, before + 4);
        match mode {
            // Group N's markers were written before the failed sync; group N+1 has
            // only its proof.
            CrashMode::NoCrash => assert!(survived),
            CrashMode::LoseUnsynced => assert!(!survived, "nothing unsynced survives"),
            CrashMode::Seeded(_) => {}
        }
        check_accepts_commit(&sim, db, before + 4);
    }
}

#[test]
fn each_commit_costs_two_syncs() {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    let before = sim.counts().syncs;
    try_commit(&db, 0).unwrap();
    assert_eq!(sim.counts().syncs - before, 2);
    try_commit(&db, 1).unwrap();
    assert_eq!(sim.counts().syncs - before, 4);
}

#[test]
fn failed_capsule_write_fails_only_its_commit() {
    for mode in CRASH_MODES {
        let before = 4;
        // The first write of a commit is its capsule (or the capsule page's header).
        let (sim, db, err) = fail_one_commit(Fault::Write(1), before);
        assert!(is_io(&err), "capsule write failure: {err:?}");
        let mut acked: Vec<u32> = (0..before).collect();
        for i in before + 1..before + 6 {
            try_commit(&db, i).expect("the database keeps working after a capsule failure");
            acked.push(i);
        }
        let universe = before + 6;
        assert_eq!(read_state(&db, universe), model(&acked));
        drop(db);
        crash(&sim, mode);
        let db = open(&sim).unwrap();
        assert!(!check_recovered(&db, &acked, &[before], universe));
        check_accepts_commit(&sim, db, universe);
    }
}

#[test]
fn failed_capsule_write_on_the_first_commit() {
    let (sim, db, err) = fail_one_commit(Fault::Write(1), 0);
    assert!(is_io(&err), "{err:?}");
    try_commit(&db, 1).unwrap();
    assert_eq!(read_state(&db, 2), model(&[1]));
    drop(db);
    sim.crash(7);
    let db = open(&sim).unwrap();
    assert!(!check_recovered(&db, &[1], &[0], 2));
}

/// A commit of one large value, which needs a run of pages from the end of the file.
fn try_big_commit(db: &Database, i: u32, len: usize) -> Result<u64, Error> {
    let mut c = db.connect();
    let mut tx = c.begin()?;
    tx.put(TABLE, format!("big{i}").as_bytes(), &big_value(i, len))?;
    Ok(tx.commit()?.seq)
}

fn big_value(i: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|b| (b as u32 ^ i.wrapping_mul(31)) as u8)
        .collect()
}

#[test]
fn full_disk_is_an_error_not_corruption() {
    const BIG: usize = 256 << 10;
    const SMALL_MAX: u32 = 3000;
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    for i in 0..3 {
        try_commit(&db, i).unwrap();
    }
    let full_at = capsuledb::storage::Storage::len(&sim).unwrap();
    sim.set_max_len(Some(full_at));
    let mut acked_big = Vec::new();
    let mut big_errors = 0;
    for i in 0..8u32 {
        match try_big_commit(&db, i, BIG) {
            Ok(_) => {
                assert_eq!(
                    big_errors, 0,
                    "a big commit succeeded after the disk filled"
                );
                acked_big.push(i);
            }
            Err(e) => {
                assert!(is_io(&e) || is_poisoned(&e), "full disk: {e:?}");
                big_errors += 1;
            }
        }
    }
    assert!(big_errors > 0, "the disk never filled");
    // Small commits go on until the current pages are used up, then fail cleanly.
    let mut acked_small: Vec<u32> = (0..3).collect();
    let mut small_errors = 0;
    let mut poisoned = false;
    for i in 3..SMALL_MAX {
        if small_errors == 3 {
            break;
        }
        match try_commit(&db, i) {
            // A smaller commit may still fit the space left in the current page.
            Ok(_) => {
                assert!(!poisoned, "a commit succeeded after the poison");
                acked_small.push(i);
            }
            Err(e) => {
                assert!(is_io(&e) || is_poisoned(&e), "full disk: {e:?}");
                assert!(!poisoned || is_poisoned(&e), "poison is sticky: {e:?}");
                poisoned |= is_poisoned(&e);
                small_errors += 1;
            }
        }
    }
    assert!(small_errors > 0, "small commits never filled the disk");
    println!(
        "full disk at {full_at} bytes: {} big commits acknowledged, {big_errors} refused; \
         {} small acknowledged, {small_errors} refused",
        acked_big.len(),
        acked_small.len()
    );
    let check = |db: &Database| {
        let mut expected = model(&acked_small).unwrap();
        for &i in &acked_big {
            expected.insert(format!("big{i}").into_bytes(), big_value(i, BIG));
        }
        assert_eq!(read_state(db, SMALL_MAX), Some(expected));
    };
    check(&db);
    drop(db);
    // Reopening on the still-full disk either works or fails with an I/O error.
    match open(&sim) {
        Ok(db) => check(&db),
        Err(e) => assert!(is_io(&e), "reopen on a full disk: {e:?}"),
    }
    sim.set_max_len(None);
    sim.crash(99);
    let db = open(&sim).unwrap();
    check(&db);
    check_accepts_commit(&sim, db, SMALL_MAX);
}

fn sweep(kind: &str, w: &Workload, total: u64, make: impl Fn(u64) -> Fault) {
    let failing_points = sweep_points(kind, w, total, make);
    assert!(failing_points > 0);
}

/// Runs every point of a sweep; returns how many made a commit fail.
fn sweep_points(kind: &str, w: &Workload, total: u64, make: impl Fn(u64) -> Fault) -> usize {
    let mut failing_points = 0;
    let mut survivors = 0;
    let mut runs = 0;
    for n in 1..=total + 1 {
        for (m, mode) in CRASH_MODES.into_iter().enumerate() {
            let mode = match mode {
                CrashMode::Seeded(s) => CrashMode::Seeded(s ^ (n << 8) ^ m as u64),
                other => other,
            };
            let (failed, survived) = sweep_point(w, make(n), mode);
            runs += 1;
            if failed > 0 {
                failing_points += 1;
            }
            if survived {
                survivors += 1;
            }
        }
    }
    println!(
        "{kind} sweep over 1..={} (commits {}..{}): {runs} runs, {failing_points} with a \
         failed commit, {survivors} where the failed commit survived recovery",
        total + 1,
        w.from,
        w.to
    );
    failing_points
}

#[test]
fn sweep_failing_each_write() {
    let w = Workload::fresh();
    sweep("write", &w, workload_counts(&w).writes, Fault::Write);
}

#[test]
fn sweep_failing_each_sync() {
    let w = Workload::fresh();
    let counts = workload_counts(&w);
    assert_eq!(counts.syncs, 2 * u64::from(WORKLOAD_COMMITS));
    sweep("sync", &w, counts.syncs, Fault::Sync);
}

#[test]
fn sweep_failing_each_set_len() {
    let w = Workload::fresh();
    sweep("set_len", &w, workload_counts(&w).set_lens, Fault::SetLen);
}

/// Commits with reads and checkpoints between them (which map the grown file); every
/// call may fail with `Io` once. Returns the acknowledged commits and the errors seen.
fn remap_workload(db: &Database, commits: u32) -> (Vec<u32>, usize) {
    let mut acked = Vec::new();
    let mut errors = 0;
    for i in 0..commits {
        match try_commit(db, i) {
            Ok(_) => acked.push(i),
            Err(e) => {
                assert!(is_io(&e) || is_poisoned(&e), "commit {i}: {e:?}");
                errors += 1;
            }
        }
        let mut c = db.connect();
        // A large value in another table, so the file grows and is mapped again.
        let grow = c.begin().and_then(|mut tx| {
            if !tx.table_exists("big")? {
                tx.create_table("big")?;
            }
            tx.put("big", &i.to_be_bytes(), &big_value(i, 150_000))?;
            tx.commit()
        });
        if let Err(e) = grow {
            assert!(is_io(&e) || is_poisoned(&e), "large commit {i}: {e:?}");
            errors += 1;
        }
        let read = c
            .begin_read()
            .and_then(|tx| tx.get("t", &data_key(i, 0)).map(|_| ()));
        if let Err(e) = read {
            assert!(is_io(&e), "read after commit {i}: {e:?}");
            errors += 1;
        }
        if i % 4 == 3
            && let Err(e) = db.checkpoint()
        {
            assert!(is_io(&e), "checkpoint after commit {i}: {e:?}");
            errors += 1;
        }
    }
    (acked, errors)
}

#[test]
fn sweep_failing_each_remap() {
    let commits = 16;
    let total = {
        let sim = SimStorage::new();
        let db = open(&sim).unwrap();
        let before = sim.counts().remaps;
        remap_workload(&db, commits);
        sim.counts().remaps - before
    };
    assert!(total > 0, "the workload maps a grown file");
    let mut with_error = 0;
    for n in 1..=total + 1 {
        let sim = SimStorage::new();
        let db = open(&sim).unwrap();
        sim.fail_nth_remap(n);
        let (acked, errors) = remap_workload(&db, commits);
        if errors > 0 {
            with_error += 1;
        }
        // A failed remap is retried by the next call: the live database reads right.
        assert_eq!(
            read_state(&db, commits),
            model(&acked),
            "remap {n}: live state"
        );
        drop(db);
        disarm(&sim);
        sim.crash(n);
        let db = open(&sim).unwrap();
        let r = db.check_integrity().unwrap();
        assert!(r.problems.is_empty(), "remap {n}: {:?}", r.problems);
        assert_eq!(
            read_state(&db, commits),
            model(&acked),
            "remap {n}: recovered state"
        );
        check_accepts_commit(&sim, db, commits);
    }
    println!(
        "remap sweep over 1..={}: {with_error} points returned an error",
        total + 1
    );
    assert!(with_error > 0);
}

#[test]
fn sweep_power_off_after_each_operation() {
    let w = Workload::fresh();
    let c = workload_counts(&w);
    sweep(
        "power-off",
        &w,
        c.writes + c.syncs + c.set_lens,
        Fault::PowerOff,
    );
}

/// Marker pages hold 127 markers (4 KiB pages): commits 120..136 start the stream's
/// second marker page (seq 128) in the middle of the sweep.
fn across_marker_page() -> Workload {
    Workload::on_top_of(120, 136)
}

#[test]
fn sweep_failing_each_write_across_a_marker_page() {
    let w = across_marker_page();
    sweep("write", &w, workload_counts(&w).writes, Fault::Write);
}

#[test]
fn sweep_failing_each_sync_across_a_marker_page() {
    let w = across_marker_page();
    sweep("sync", &w, workload_counts(&w).syncs, Fault::Sync);
}

#[test]
fn sweep_power_off_across_a_marker_page() {
    let w = across_marker_page();
    let c = workload_counts(&w);
    sweep(
        "power-off",
        &w,
        c.writes + c.syncs + c.set_lens,
        Fault::PowerOff,
    );
}

#[test]
fn crash_while_creating_gives_a_new_database_or_a_typed_error() {
    // Creation makes a handful of I/O calls (resize, marker page, two header copies,
    // sync); lose power after each prefix of them and crash with several seeds.
    let mut fresh = 0;
    let mut refused = BTreeMap::<String, u64>::new();
    for ops in 0..6 {
        for seed in 0..16 {
            let sim = SimStorage::new();
            sim.power_off_after(ops);
            assert!(
                open(&sim).is_err(),
                "creating and opening takes more than {ops} I/O calls"
            );
            sim.crash(seed);
            match open(&sim) {
                Ok(db) => {
                    assert_eq!(read_state(&db, 1), None, "a new database is empty");
                    check_accepts_commit(&sim, db, 1);
                    fresh += 1;
                }
                Err(e) => {
                    let kind = match e {
                        Error::NotADatabase { .. } => "NotADatabase",
                        Error::Corrupted { .. } => "Corrupted",
                        Error::Truncated { .. } => "Truncated",
                        other => panic!("after a crash during creation: {other:?}"),
                    };
                    *refused.entry(kind.to_string()).or_default() += 1;
                }
            }
        }
    }
    println!("crash during creation: {fresh} reopened as a database, refused: {refused:?}");
}
