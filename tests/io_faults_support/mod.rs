//! Shared fixtures of the I/O fault tests (`io_faults` for single faults, `io_fault_sweeps`
//! for faults at every I/O point): a seeded database on simulated storage, a commit
//! workload with its model, fault arming, crash modes, and the checks every reopen must
//! pass (every acknowledged commit present, a failed one whole or absent, nothing else).

#![allow(
    dead_code,
    reason = "each io_fault* file uses a different subset of these helpers"
)]

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Error, Options};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const TABLE: &str = "t";
pub const DB_SEED: u64 = 0x10FA_0001;
/// Commits in the swept workload.
pub const WORKLOAD_COMMITS: u32 = 20;
/// Data keys written by each commit (plus the shared `last` key).
pub const KEYS_PER_COMMIT: u32 = 3;

pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

pub fn open(sim: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(DB_SEED)
        .open_storage(Arc::new(sim.clone()))
}

pub fn data_key(i: u32, j: u32) -> Vec<u8> {
    format!("k{i:05}-{j}").into_bytes()
}

pub fn value_of(i: u32, j: u32) -> Vec<u8> {
    format!("v{i}.{j};")
        .repeat(((i * 7 + j) % 13 + 1) as usize)
        .into_bytes()
}

/// What commit `i` writes: three unique keys and the shared key `last = i`.
pub fn commit_kvs(i: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut kvs: Vec<_> = (0..KEYS_PER_COMMIT)
        .map(|j| (data_key(i, j), value_of(i, j)))
        .collect();
    kvs.push((b"last".to_vec(), i.to_string().into_bytes()));
    kvs
}

/// Runs commit `i` (creating the table if it does not exist yet) with `Durable`.
pub fn try_commit(db: &Database, i: u32) -> Result<u64, Error> {
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
pub fn model(commits: &[u32]) -> Option<State> {
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
pub fn read_state(db: &Database, universe: u32) -> Option<State> {
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
pub fn present_failed(state: &Option<State>, failed: &[u32]) -> Vec<u32> {
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

/// Checks a recovered database: all of `acked`, the first of `failed` (in the order the
/// commits were tried) whole or absent, never one that failed before an acknowledged
/// commit, and nothing else; returns whether the failed commit survived. Only the first
/// failure can survive: every commit tried after it was refused or lost its writes, so a
/// later one present would be no prefix of what was tried.
pub fn check_recovered(db: &Database, acked: &[u32], failed: &[u32], universe: u32) -> bool {
    let state = read_state(db, universe);
    let survivors = present_failed(&state, failed);
    assert!(
        survivors.iter().all(|&s| Some(&s) == failed.first()),
        "a failed commit other than the first ({:?}) survived: {survivors:?}",
        failed.first()
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
pub fn check_accepts_commit(sim: &SimStorage, db: Database, universe: u32) {
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
pub enum CrashMode {
    /// Reopen the live image (the process restarted, the OS kept its writes).
    NoCrash,
    /// Power loss that keeps nothing unsynced.
    LoseUnsynced,
    /// Power loss that keeps a seeded subset of unsynced writes, possibly torn.
    Seeded(u64),
    /// The kernel lost the writeback a failed sync reported: reads still see the
    /// unsynced writes, no later sync makes them durable; then the live image is
    /// reopened (the same boot). Run where a sync failed (at a sweep's last point,
    /// where none did, nothing is unsynced and it changes nothing).
    LostWriteback,
}

pub fn crash(sim: &SimStorage, mode: CrashMode) {
    match mode {
        CrashMode::NoCrash => {}
        CrashMode::LoseUnsynced => sim.crash_losing_unsynced(),
        CrashMode::Seeded(seed) => sim.crash(seed),
        CrashMode::LostWriteback => sim.lose_writeback(),
    }
}

/// The storage to reopen after `db`'s workload ends in `mode`: the database is closed
/// (dropped) when there is no crash, and otherwise the crash comes first, on an image
/// taken before the drop: a database that is not poisoned syncs everything as it
/// closes, which would leave the crash nothing to lose (after a fault that fails one
/// commit alone, the crash modes all read as no crash).
pub fn crash_before_close(sim: SimStorage, db: Database, mode: CrashMode) -> SimStorage {
    if matches!(mode, CrashMode::NoCrash) {
        drop(db);
        return sim;
    }
    let image = sim.fork();
    drop(db);
    image
}

pub const CRASH_MODES: [CrashMode; 4] = [
    CrashMode::NoCrash,
    CrashMode::LoseUnsynced,
    CrashMode::Seeded(1),
    CrashMode::Seeded(0xC0FFEE),
];

pub fn is_io(e: &Error) -> bool {
    matches!(e, Error::Io { .. })
}

pub fn is_poisoned(e: &Error) -> bool {
    matches!(e, Error::Poisoned { .. })
}

/// What a run of the workload under one injected fault did.
#[derive(Debug, Default)]
pub struct Run {
    pub acked: Vec<u32>,
    pub failed: Vec<u32>,
    pub poisoned: bool,
}

/// Runs commits `0..n`, checking the error rules as it goes: the first error is `Io` or
/// `Poisoned`; once a commit returns `Poisoned`, or an `Io` error is followed by another
/// error, every later commit is `Poisoned`. `single_fault` says only one I/O call fails.
pub fn run_workload(db: &Database, commits: std::ops::Range<u32>, single_fault: bool) -> Run {
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
pub fn check_live(db: &Database, run: &Run, universe: u32) {
    assert_eq!(read_state(db, universe), model(&run.acked), "live state");
}

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    Write(u64),
    Sync(u64),
    SetLen(u64),
    PowerOff(u64),
}

/// Cancels a fault the workload did not reach, so it cannot hit the reopen.
pub fn disarm(sim: &SimStorage) {
    const FAR: u64 = u64::MAX / 4;
    sim.fail_nth_write(FAR);
    sim.fail_nth_sync(FAR);
    sim.fail_nth_set_len(FAR);
    sim.fail_set_lens_from(None);
    sim.fail_nth_remap(FAR);
}

pub fn arm(sim: &SimStorage, fault: Fault) {
    match fault {
        Fault::Write(n) => sim.fail_nth_write(n),
        Fault::Sync(n) => sim.fail_nth_sync(n),
        // Every resize from the n-th on: a refused growth step is tried again at the
        // size needed, so one failure alone fails nothing.
        Fault::SetLen(n) => sim.fail_set_lens_from(Some(n)),
        Fault::PowerOff(n) => sim.power_off_after(n),
    }
}

/// A workload to sweep faults over: commits `from..to` on a database that already holds
/// commits `0..from` (the image `base`; empty for a new database).
pub struct Workload {
    pub base: Vec<u8>,
    pub from: u32,
    pub to: u32,
}

impl Workload {
    pub fn fresh() -> Workload {
        Workload {
            base: Vec::new(),
            from: 0,
            to: WORKLOAD_COMMITS,
        }
    }

    /// Commits `from..to` on top of `from` commits already made (all synced).
    pub fn on_top_of(from: u32, to: u32) -> Workload {
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

    pub fn storage(&self) -> SimStorage {
        if self.base.is_empty() {
            SimStorage::new()
        } else {
            SimStorage::from_bytes(self.base.clone())
        }
    }
}

/// One point of a sweep: the workload's database, fault armed after open, workload,
/// crash, reopen, check. Returns (failed commits, whether a failed commit survived).
pub fn sweep_point(w: &Workload, fault: Fault, mode: CrashMode) -> (usize, bool) {
    let sim = w.storage();
    let db = open(&sim).unwrap();
    arm(&sim, fault);
    // Resizes fail from the n-th on: every commit that grows the file fails.
    let single = !matches!(fault, Fault::PowerOff(_) | Fault::SetLen(_));
    let mut run = run_workload(&db, w.from..w.to, single);
    run.acked.splice(0..0, 0..w.from);
    if !matches!(fault, Fault::PowerOff(_)) {
        check_live(&db, &run, w.to);
    }
    let sim = crash_before_close(sim, db, mode);
    disarm(&sim);
    crash(&sim, mode);
    if let (Fault::PowerOff(_), CrashMode::NoCrash | CrashMode::LostWriteback) = (fault, mode) {
        // Power off is cleared only by a crash.
        sim.crash_losing_unsynced();
    }
    let db = open(&sim).unwrap_or_else(|e| panic!("{fault:?} {mode:?}: reopen failed: {e}"));
    let survived = check_recovered(&db, &run.acked, &run.failed, w.to);
    check_accepts_commit(&sim, db, w.to);
    (run.failed.len(), survived)
}

pub struct Counts {
    pub writes: u64,
    pub syncs: u64,
    pub set_lens: u64,
}

/// I/O calls (writes, syncs, resizes) the workload makes after open, without faults.
pub fn workload_counts(w: &Workload) -> Counts {
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
pub fn fail_one_commit(fault: Fault, before: u32) -> (SimStorage, Database, Error) {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    for i in 0..before {
        try_commit(&db, i).unwrap();
    }
    arm(&sim, fault);
    let err = try_commit(&db, before).expect_err("the faulted commit must fail");
    (sim, db, err)
}

/// A commit of one large value, which needs a run of pages from the end of the file.
pub fn try_big_commit(db: &Database, i: u32, len: usize) -> Result<u64, Error> {
    let mut c = db.connect();
    let mut tx = c.begin()?;
    tx.put(TABLE, format!("big{i}").as_bytes(), &big_value(i, len))?;
    Ok(tx.commit()?.seq)
}

pub fn big_value(i: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|b| (b as u32 ^ i.wrapping_mul(31)) as u8)
        .collect()
}
