//! I/O faults at every I/O point: the N-th write, sync or remap fails, every resize from the
//! N-th on fails, or the power goes after N operations, for every N a workload reaches (on
//! a fresh database, across a marker page, and while creating one); after each, in every
//! crash mode (the remap sweep: a seeded power loss), the database reopens with every
//! acknowledged commit and a failed one whole or not at all.

mod io_faults_support;

use capsuledb::Database;
use capsuledb::storage::SimStorage;
use io_faults_support::*;
use std::collections::BTreeMap;

fn sweep(kind: &str, w: &Workload, total: u64, make: impl Fn(u64) -> Fault) {
    let failing_points = sweep_points(kind, w, total, make);
    assert!(failing_points > 0);
}

/// Runs every point of a sweep; returns how many made a commit fail.
fn sweep_points(kind: &str, w: &Workload, total: u64, make: impl Fn(u64) -> Fault) -> usize {
    let mut failing_points = 0;
    let mut survivors = 0;
    let mut runs = 0;
    // After a failed sync, the writeback it reported lost, too.
    let lost = (kind == "sync").then_some(CrashMode::LostWriteback);
    for n in 1..=total + 1 {
        for (m, mode) in CRASH_MODES.into_iter().chain(lost).enumerate() {
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

/// What [`remap_workload`] had acknowledged: the small commits to `t`, the large ones
/// to `big` (which grow the file), and the large one that failed, if any.
#[derive(Default)]
struct RemapAcks {
    acked: Vec<u32>,
    big: Vec<u32>,
    big_failed: Option<u32>,
}

/// Commits with reads and checkpoints between them (which map the grown file); every
/// call may fail with `Io` once. Returns what was acknowledged and the errors seen.
fn remap_workload(db: &Database, commits: u32) -> (RemapAcks, usize) {
    let mut acks = RemapAcks::default();
    let acked = &mut acks.acked;
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
        match grow {
            Ok(_) => acks.big.push(i),
            Err(e) => {
                assert!(is_io(&e) || is_poisoned(&e), "large commit {i}: {e:?}");
                acks.big_failed.get_or_insert(i);
                errors += 1;
            }
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
    (acks, errors)
}

/// Table `big` as [`remap_workload`] left it: every acknowledged large value whole, and
/// no other key but the first failed one (whole, or absent).
fn check_big(db: &Database, acks: &RemapAcks, context: &str) {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let mut found = BTreeMap::new();
    if tx.table_exists("big").unwrap() {
        for item in tx.iter("big").unwrap() {
            let (k, v) = item.unwrap();
            let i = u32::from_be_bytes(k[..].try_into().unwrap());
            assert_eq!(
                v.as_ref(),
                &big_value(i, 150_000)[..],
                "{context}: big {i} torn or wrong"
            );
            found.insert(i, ());
        }
    }
    for i in &acks.big {
        assert!(
            found.remove(i).is_some(),
            "{context}: acknowledged big commit {i} lost"
        );
    }
    assert!(
        found.keys().all(|i| Some(*i) == acks.big_failed),
        "{context}: big commits {:?} that were never acknowledged ({:?} failed)",
        found.keys().collect::<Vec<_>>(),
        acks.big_failed
    );
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
        let (acks, errors) = remap_workload(&db, commits);
        if errors > 0 {
            with_error += 1;
        }
        // A failed remap is retried by the next call: the live database reads right.
        assert_eq!(
            read_state(&db, commits),
            model(&acks.acked),
            "remap {n}: live state"
        );
        assert!(
            !acks.big.is_empty(),
            "remap {n}: no large commit acknowledged"
        );
        check_big(&db, &acks, &format!("remap {n}: live"));
        drop(db);
        disarm(&sim);
        sim.crash(n);
        let db = open(&sim).unwrap();
        let r = db.check_integrity().unwrap();
        assert!(r.problems.is_empty(), "remap {n}: {:?}", r.problems);
        assert_eq!(
            read_state(&db, commits),
            model(&acks.acked),
            "remap {n}: recovered state"
        );
        check_big(&db, &acks, &format!("remap {n}: recovered"));
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

/// Creation's I/O calls (the resize, the first marker page, a sync, copy B, a sync,
/// copy A, a sync), then the open's: the power lost after each prefix of them, with
/// several seeds for what of the unsynced writes the disk kept. Every file this leaves
/// is one `format-spec/header.md` ("Choosing a copy") opens as a new, empty database:
/// all zero but for marker pages (rule 1), or a blank copy A beside a first-generation
/// copy B (rule 4's interrupted creation), or whole. The sweep once accepted a refusal
/// (`NotADatabase`, `Corrupted`, `Truncated`) too, and stopped before creation's last
/// call.
#[test]
fn crash_while_creating_gives_a_new_database() {
    let mut fresh = 0;
    let mut ops = 0;
    loop {
        let sim = SimStorage::new();
        sim.power_off_after(ops);
        if open(&sim).is_ok() {
            // Creation and the open fit in `ops` calls: every cut point was swept.
            break;
        }
        for seed in 0..16 {
            let sim = SimStorage::new();
            sim.power_off_after(ops);
            assert!(open(&sim).is_err());
            sim.crash(seed);
            match open(&sim) {
                Ok(db) => {
                    assert_eq!(read_state(&db, 1), None, "a new database is empty");
                    check_accepts_commit(&sim, db, 1);
                    fresh += 1;
                }
                Err(e) => {
                    panic!("power lost after {ops} I/O calls of a creation, seed {seed}: {e:?}")
                }
            }
        }
        ops += 1;
    }
    assert!(
        ops >= 7,
        "creation makes at least seven I/O calls, swept {ops}"
    );
    println!("crash during creation: {ops} cut points, {fresh} reopened as a new database");
}

/// A crash after creation made its pages durable but before either header copy reached
/// the disk leaves what `format-spec/header.md` ("Choosing a copy", 1) says is created
/// anew, at every page size. With 64 KiB pages such a file (three pages, 196,608 bytes)
/// was once longer than the bound the open allowed, and it could never be opened again.
#[test]
fn a_crash_before_the_headers_is_created_anew_at_every_page_size() {
    for page_size in [4096u32, 8192, 16384, 32768, 65536] {
        let sim = SimStorage::new();
        // Creation: the resize, the first marker page, a sync; then the two header
        // copies and a sync, which the power cut loses.
        sim.power_off_after(3);
        let opts = || {
            capsuledb::Options::new()
                .random_seed(DB_SEED)
                .page_size(page_size)
        };
        assert!(
            opts()
                .open_storage(std::sync::Arc::new(sim.clone()))
                .is_err()
        );
        sim.crash(1);
        let db = opts()
            .open_storage(std::sync::Arc::new(sim.clone()))
            .unwrap_or_else(|e| panic!("{page_size}-byte pages: {e}"));
        assert_eq!(db.info().unwrap().page_size, page_size);
        assert_eq!(read_state(&db, 1), None, "a new database is empty");
        check_accepts_commit(&sim, db, 1);
    }
}
