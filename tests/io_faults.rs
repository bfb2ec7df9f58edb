//! I/O failures while committing: a failed FSYNC_1 or FSYNC_2 poisons the database
//! (sticky `Error::Poisoned`), including a sync that serves two pipelined groups, a
//! failed capsule write fails only its own commit, a full disk is an error and never
//! corruption, and after the fault the database reopens with every acknowledged commit
//! and the failed one whole or not at all. `io_fault_sweeps` injects a fault at every I/O
//! point in turn.

mod io_faults_support;

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Error};
use io_faults_support::*;
use std::sync::Arc;

fn fsync_failure_poisons(sync_index: u64, expect_survivor_without_crash: bool) {
    for mode in CRASH_MODES.into_iter().chain([CrashMode::LostWriteback]) {
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
            CrashMode::Seeded(_) | CrashMode::LostWriteback => {}
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
    for mode in CRASH_MODES.into_iter().chain([CrashMode::LostWriteback]) {
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
            CrashMode::Seeded(_) | CrashMode::LostWriteback => {}
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

/// Commit 4's first write (its capsule, or the capsule page's header) fails, as `fail`
/// arms it: that commit alone fails, the next five commit, and after a crash in `mode`
/// every acknowledged commit is there and commit 4 is not.
fn a_failed_capsule_write_fails_only_its_commit(mode: CrashMode, fail: impl Fn(&SimStorage)) {
    let before = 4;
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    for i in 0..before {
        try_commit(&db, i).unwrap();
    }
    fail(&sim);
    let err = try_commit(&db, before).expect_err("the faulted commit must fail");
    assert!(is_io(&err), "capsule write failure: {err:?}");
    let mut acked: Vec<u32> = (0..before).collect();
    for i in before + 1..before + 6 {
        try_commit(&db, i).expect("the database keeps working after a capsule failure");
        acked.push(i);
    }
    let universe = before + 6;
    assert_eq!(read_state(&db, universe), model(&acked));
    let sim = crash_before_close(sim, db, mode);
    crash(&sim, mode);
    let db = open(&sim).unwrap();
    assert!(!check_recovered(&db, &acked, &[before], universe));
    check_accepts_commit(&sim, db, universe);
}

#[test]
fn failed_capsule_write_fails_only_its_commit() {
    for mode in CRASH_MODES {
        a_failed_capsule_write_fails_only_its_commit(mode, |sim| arm(sim, Fault::Write(1)));
    }
}

/// The same with the failed write landing part way (its first bytes written, as a real
/// write may before an EIO): the capsule's first bytes, magic and length, sit in the page
/// ahead of the later commits' capsules, and recovery reads past them.
#[test]
fn failed_capsule_write_landing_part_way_fails_only_its_commit() {
    for (mode, keep) in CRASH_MODES
        .into_iter()
        .zip([12usize, 40, 200].into_iter().cycle())
    {
        a_failed_capsule_write_fails_only_its_commit(mode, |sim| {
            sim.fail_nth_write_partly(1, keep)
        });
    }
}

#[test]
fn failed_capsule_write_on_the_first_commit() {
    let (sim, db, err) = fail_one_commit(Fault::Write(1), 0);
    assert!(is_io(&err), "{err:?}");
    try_commit(&db, 1).unwrap();
    assert_eq!(read_state(&db, 2), model(&[1]));
    let sim = crash_before_close(sim, db, CrashMode::Seeded(7));
    sim.crash(7);
    let db = open(&sim).unwrap();
    assert!(!check_recovered(&db, &[1], &[0], 2));
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

/// A checkpoint whose header sync fails poisons the database: the header may be on disk
/// (or read by another process) with its new generation, and a later header written with
/// that generation again would let pages such a reader reaches be reused. Every later
/// commit is refused; a reopen, after a crash or not, holds every acknowledged commit.
#[test]
fn a_failed_checkpoint_header_sync_poisons() {
    // The header's sync: found on a twin database that checkpoints without a fault.
    let header_sync = {
        let sim = SimStorage::new();
        let db = open(&sim).unwrap();
        for i in 0..5 {
            try_commit(&db, i).unwrap();
        }
        sim.start_trace();
        let syncs = sim.counts().syncs;
        db.checkpoint().unwrap().unwrap();
        let trace = sim.take_trace();
        let header_write = trace
            .iter()
            .rposition(|op| {
                matches!(op, capsuledb::storage::TraceOp::Write { offset, .. }
                    if *offset == 0 || *offset == 4096)
            })
            .expect("the checkpoint writes a header");
        let n = trace[..=header_write]
            .iter()
            .filter(|op| matches!(op, capsuledb::storage::TraceOp::Sync(_)))
            .count() as u64;
        assert!(sim.counts().syncs > syncs);
        n + 1
    };
    for mode in CRASH_MODES {
        let sim = SimStorage::new();
        let db = open(&sim).unwrap();
        for i in 0..5 {
            try_commit(&db, i).unwrap();
        }
        sim.fail_nth_sync(header_sync);
        assert!(db.checkpoint().is_err(), "the header's sync fails");
        let e = try_commit(&db, 5).expect_err("a commit after the failed header sync");
        assert!(is_poisoned(&e), "{e:?}");
        let e = db
            .checkpoint()
            .expect_err("no checkpoint writes another header");
        assert!(is_poisoned(&e), "{e:?}");
        let e = db.compact().expect_err("nor a compaction");
        assert!(is_poisoned(&e), "{e:?}");
        let acked: Vec<u32> = (0..5).collect();
        assert_eq!(read_state(&db, 6), model(&acked));
        drop(db);
        crash(&sim, mode);
        let db = open(&sim).unwrap();
        // Commit 5 was refused before it wrote anything; the header may or may not have
        // reached the disk, and either names a whole state.
        assert_eq!(read_state(&db, 6), model(&acked), "{mode:?}");
        assert!(db.check_integrity().unwrap().is_ok(), "{mode:?}");
        check_accepts_commit(&sim, db, 6);
    }
}

/// After a failed commit I/O a checkpoint writes nothing either: its sync could make the
/// failed group durable after its committers were told it failed, and its header could
/// name a marker page whose start never reached the disk. It returns `Poisoned`, and the
/// reopened file holds every acknowledged commit and the failed one whole or not at all.
#[test]
fn no_checkpoint_after_a_failed_commit_io() {
    for fault in [Fault::Sync(1), Fault::Sync(2)] {
        for mode in CRASH_MODES {
            let before = 5;
            let (sim, db, err) = fail_one_commit(fault, before);
            assert!(is_io(&err) || is_poisoned(&err), "{err:?}");
            let e = db.checkpoint().expect_err("a checkpoint after poisoning");
            assert!(is_poisoned(&e), "{fault:?}: {e:?}");
            drop(db);
            crash(&sim, mode);
            let db = open(&sim).unwrap();
            let acked: Vec<u32> = (0..before).collect();
            check_recovered(&db, &acked, &[before], before + 1);
        }
    }
}

/// Puts `k = k` into table `t` in one durable commit.
fn put_self(db: &Database, k: &[u8]) -> capsuledb::Result<()> {
    let mut c = db.connect();
    let mut tx = c.begin()?;
    tx.put("t", k, k)?;
    tx.commit_with(Durability::Durable).map(|_| ())
}

/// Whether table `t` holds `k`.
fn holds(db: &Database, k: &[u8]) -> bool {
    db.connect()
        .begin_read()
        .unwrap()
        .get("t", k)
        .unwrap()
        .is_some()
}

/// A writeback the kernel lost after a failed sync: the failed group's marker stays
/// readable in the page cache, never reaching the disk, and no later sync writes it. A
/// reopen in the same boot reads that commit from it; it must write the log's pages
/// again so that its own sync carries them, or a later power cut loses the marker — a
/// silent end of the log, taking the durable commits after it along.
#[test]
fn a_reopen_writes_back_log_pages_a_lost_writeback_left_only_in_memory() {
    let sim = SimStorage::new();
    let open = |sim: &SimStorage| {
        capsuledb::Options::new()
            .random_seed(3)
            .open_storage(Arc::new(sim.clone()))
            .unwrap()
    };
    let put = put_self;
    let db = open(&sim);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit_with(Durability::Durable).unwrap();
    drop(c);
    put(&db, b"a").unwrap();
    // The group's second sync fails after its marker was written; the kernel drops the
    // page, which stays readable; the process ends.
    sim.fail_nth_sync(2);
    put(&db, b"b").expect_err("its FSYNC_2 failed");
    sim.lose_writeback();
    let image = sim.fork();

    drop(db);
    // The reopen (same boot) finds `b` (a failed commit's outcome is unknown: it may
    // be there), and a durable commit follows.
    let db = open(&image);
    let read = holds;
    assert!(
        read(&db, b"b"),
        "the failed commit's marker is read from memory"
    );
    // Power lost right after the reopen: the disk must hold what it showed. (Without
    // the rewrite the reopen's durable bound names `b`, whose marker the disk lacks:
    // the next open fails with `LogCorrupted`.)
    let disk = image.fork();
    disk.crash_losing_unsynced();
    let after = capsuledb::Options::new()
        .random_seed(3)
        .open_storage(Arc::new(disk))
        .unwrap_or_else(|e| panic!("a power cut right after the reopen: {e}"));
    assert!(read(&after, b"a") && read(&after, b"b"));
    drop(after);
    put(&db, b"c").unwrap();
    // Power lost (before any close could fold the log into the tree): the disk must
    // hold every commit the reopen showed and every durable one after it.
    let disk = image.fork();
    drop(db);
    disk.crash_losing_unsynced();
    let db = open(&disk);
    for k in [&b"a"[..], b"b", b"c"] {
        assert!(
            read(&db, k),
            "key {} is gone after the power cut",
            String::from_utf8_lossy(k)
        );
    }
}

/// A checkpoint's header whose sync failed may stay in the page cache only (the kernel
/// marks the page clean without writing it). A reopen in the same boot reads it, and
/// the commits after it go on pages only that header names: the reopen must make the
/// header durable before anything else, or a power cut takes the header and those
/// acknowledged commits with it (the next open found the older header and silently
/// lost them).
#[test]
fn a_reopen_makes_the_header_it_read_durable() {
    let sim = SimStorage::new();
    let open = |sim: &SimStorage| {
        capsuledb::Options::new()
            .random_seed(5)
            .open_storage(Arc::new(sim.clone()))
    };
    let put = put_self;
    let read = holds;
    let db = open(&sim).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit_with(Durability::Durable).unwrap();
    drop(c);
    for i in 0..20u8 {
        put(&db, &[b'a', i]).unwrap();
    }
    // The checkpoint's second sync is its header's; it fails, and the page is lost.
    sim.start_trace();
    sim.fail_nth_sync(2);
    db.checkpoint().expect_err("the header's sync fails");
    // The failed sync was the header's: the header was written (a fault on an earlier
    // sync stops the checkpoint before it, and the test would test nothing).
    assert!(
        sim.take_trace().iter().any(|op| matches!(op,
            capsuledb::storage::TraceOp::Write { offset, .. } if *offset == 0 || *offset == 4096)),
        "the checkpoint failed before writing its header"
    );
    sim.lose_writeback();
    let image = sim.fork();
    drop(db);
    let db = open(&image).unwrap();
    for i in 0..20u8 {
        put(&db, &[b'c', i]).unwrap();
    }
    let disk = image.fork();
    drop(db);
    disk.crash_losing_unsynced();
    let db = open(&disk).unwrap_or_else(|e| panic!("a power cut after the reopen: {e}"));
    for i in 0..20u8 {
        assert!(read(&db, &[b'a', i]), "a{i} is gone after the power cut");
        assert!(read(&db, &[b'c', i]), "c{i} (acknowledged durable) is gone");
    }
}

/// Checkpoints that fail on a write before their header (a full disk, an EIO) leave the
/// database usable; they must give back every page they took and keep the table drops
/// they were folding. Before, each failed attempt leaked the pages of its new tree and
/// free list until a reopen (the file grew by them on every retry), and the drop of a
/// table left its rows in the tree for good (invisible, never reclaimed). Compared
/// with a twin database that checkpoints once without a fault.
#[test]
fn failed_checkpoints_leak_no_pages_and_keep_their_drops() {
    let run = |failures: u32| {
        let sim = SimStorage::new();
        let db = open(&sim).unwrap();
        // In commits of 50 keys: through the log, folded by the checkpoints (a larger
        // durable commit may go straight into the tree).
        let put_many = |table: &str, from: u32, n: u32| {
            let mut c = db.connect();
            for chunk in (from..from + n).collect::<Vec<_>>().chunks(50) {
                let mut tx = c.begin().unwrap();
                if !tx.table_exists(table).unwrap() {
                    tx.create_table(table).unwrap();
                }
                for &i in chunk {
                    tx.put(table, &i.to_be_bytes(), &[i as u8; 700]).unwrap();
                }
                tx.commit_with(Durability::Durable).unwrap();
            }
        };
        put_many("gone", 0, 1500);
        put_many("kept", 0, 100);
        db.checkpoint().unwrap().unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.drop_table("gone").unwrap();
        tx.commit_with(Durability::Durable).unwrap();
        put_many("kept", 100, 1500);
        for _ in 0..failures {
            // The second write of the checkpoint: its new tree's pages are taken.
            sim.fail_nth_write(2);
            let e = db.checkpoint().expect_err("the checkpoint's write fails");
            assert!(is_io(&e), "{e:?}");
            disarm(&sim);
        }
        db.checkpoint().unwrap().unwrap();
        let report = db.check_integrity().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        (report.page_count, report.tree_keys, report.tree_pages)
    };
    let twin = run(0);
    let failed = run(4);
    assert_eq!(
        failed, twin,
        "(pages, tree keys, tree pages) after 4 failed checkpoints, against the twin's"
    );
}

/// A database on `sim` with a table, and one `Applied` commit after it (returned with
/// the connection that made it) whose flush (the next sync) fails.
fn an_applied_commit_whose_flush_fails(
    sim: &SimStorage,
) -> (capsuledb::Database, capsuledb::Connection, u64) {
    let db = open(sim).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit_with(Durability::Durable).unwrap();
    sim.fail_nth_sync(1);
    let mut tx = c.begin().unwrap();
    tx.put("t", b"k", b"v").unwrap();
    let seq = tx.commit_with(Durability::Applied).unwrap().seq;
    (db, c, seq)
}

/// An `Applied` commit whose background flush fails (the group's sync) is lost at a
/// reopen; `close` must say so. It returned `Ok` when the failed step had taken every
/// queued commit, since `drain` then found nothing to flush.
#[test]
fn close_after_a_failed_background_flush_reports_the_poison() {
    let sim = SimStorage::new();
    let (db, c, seq) = an_applied_commit_whose_flush_fails(&sim);
    // The step that flushes it fails (the flusher's, or this waiter's own); the
    // waiter for its durability is told.
    let waited = db.wait_for(seq, Durability::Durable);
    assert!(
        matches!(waited, Err(Error::Poisoned { .. } | Error::Io { .. })),
        "{waited:?}"
    );
    drop(c);
    let closed = db.close();
    assert!(matches!(closed, Err(Error::Poisoned { .. })), "{closed:?}");
}

/// A [`SimStorage`] whose `sync_name` (the directory sync that makes a new file's name
/// durable) fails while `fail` is set, counting the calls that succeeded.
struct NameSync {
    inner: SimStorage,
    fail: std::sync::atomic::AtomicBool,
    synced: std::sync::atomic::AtomicU64,
}

impl capsuledb::storage::Storage for NameSync {
    fn len(&self) -> capsuledb::Result<u64> {
        self.inner.len()
    }
    fn view(&self) -> capsuledb::Result<capsuledb::storage::View> {
        self.inner.view()
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> capsuledb::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn sync(&self) -> capsuledb::Result<()> {
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> capsuledb::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_name(&self) -> capsuledb::Result<()> {
        use std::sync::atomic::Ordering;
        if self.fail.load(Ordering::Acquire) {
            return Err(Error::Io {
                op: "sync the directory",
                source: std::io::Error::from_raw_os_error(5),
            });
        }
        self.synced.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

/// A creation whose directory sync failed after its header was durable: the next open
/// reads the file as created, and made nothing sync its name again, so every commit
/// made on it could go with the name at a power cut. Every read-write open syncs it.
#[test]
fn an_open_after_a_creation_that_failed_to_sync_its_name_syncs_it() {
    use capsuledb::storage::Storage;
    use std::sync::atomic::Ordering;
    let storage = Arc::new(NameSync {
        inner: SimStorage::new(),
        fail: true.into(),
        synced: 0.into(),
    });
    let open = || capsuledb::Options::new().open_storage(Arc::clone(&storage) as Arc<dyn Storage>);
    let e = open().expect_err("the creation's directory sync failed");
    assert!(matches!(e, Error::Io { .. }), "{e}");
    storage.fail.store(false, Ordering::Release);
    let db = open().unwrap();
    assert_eq!(storage.synced.load(Ordering::Acquire), 1);
    db.close().unwrap();
}

/// A subscriber waiting on a database a failed sync poisons: no commit can become
/// durable any more, and it waited until the database was closed. It receives what
/// was durable, then `Closed`.
#[test]
fn a_poisoned_database_closes_its_subscriptions() {
    let sim = SimStorage::new();
    let db = open(&sim).unwrap();
    try_commit(&db, 0).unwrap();
    let sub = db.subscribe();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            let r = sub.recv();
            let end = matches!(r, capsuledb::Received::Closed);
            got.push(r);
            if end {
                break;
            }
        }
        let _ = tx.send(got);
    });
    sim.fail_nth_sync(1);
    assert!(try_commit(&db, 1).is_err());
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the subscriber was never told the database is poisoned");
    assert_eq!(got.last(), Some(&capsuledb::Received::Closed), "{got:?}");
    drop(db);
}

/// A wait for the visibility of a commit no one has made yet, on a database a failed
/// background flush poisoned (only `Applied` commits, so no committer waited for the
/// failed step): no commit can take that sequence any more, and the wait hung until
/// the database was closed. It is told the database is poisoned.
#[test]
fn a_wait_for_a_future_commit_on_a_poisoned_database_ends() {
    let sim = SimStorage::new();
    let (db, c, seq) = an_applied_commit_whose_flush_fails(&sim);
    let (done, waited) = std::sync::mpsc::channel();
    let waiter = db.clone();
    std::thread::spawn(move || {
        let _ = done.send(waiter.wait_for(seq + 1, Durability::Applied));
    });
    // The flush fails in the background (or in this wait, which leads it).
    let flushed = db.wait_for(seq, Durability::Durable);
    assert!(
        matches!(flushed, Err(Error::Poisoned { .. } | Error::Io { .. })),
        "{flushed:?}"
    );
    let got = waited
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the wait for a commit no one can make never ended");
    assert!(matches!(got, Err(Error::Poisoned { .. })), "{got:?}");
    let late = db.wait_for(seq + 1, Durability::Applied);
    assert!(matches!(late, Err(Error::Poisoned { .. })), "{late:?}");
    drop(c);
    let _ = db.close();
}
