//! History retention and time travel: the window, its errors, `versions`,
//! `drop_history_before` and its space, dropped tables, crashes.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Error, HistoryRetention, Options};
use std::sync::Arc;
use std::time::Duration;

fn sim_db(sim: &SimStorage, retention: HistoryRetention) -> Database {
    Options::new()
        .random_seed(9)
        .history_retention(retention)
        .open_storage(Arc::new(sim.clone()))
        .unwrap()
}

fn put(db: &Database, table: &str, key: &[u8], value: Option<&[u8]>) -> u64 {
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    if !tx.table_exists(table).unwrap() {
        tx.create_table(table).unwrap();
    }
    match value {
        Some(v) => tx.put(table, key, v).unwrap(),
        None => tx.delete(table, key).unwrap(),
    }
    tx.commit().unwrap().seq
}

#[test]
fn reads_at_every_retained_seq_across_checkpoints_and_reopen() {
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Commits(1000));
    let mut seqs = Vec::new();
    for i in 0..50u32 {
        let v = i.to_le_bytes();
        let value = (i % 7 != 3).then_some(&v[..]);
        seqs.push((put(&db, "t", b"k", value), value.map(<[u8]>::to_vec)));
        if i % 10 == 9 {
            db.checkpoint().unwrap();
        }
    }
    db.close().unwrap();
    let db = sim_db(&sim, HistoryRetention::Commits(1000));
    for (seq, want) in &seqs {
        let tx = db.begin_read_at(*seq).unwrap();
        assert_eq!(tx.get("t", b"k").unwrap(), *want, "at {seq}");
        assert_eq!(tx.snapshot_seq(), *seq);
    }
    // versions: newest first, deletions included.
    let tx = db.begin_read_at(seqs.last().unwrap().0).unwrap();
    let versions = tx.versions("t", b"k").unwrap();
    let want: Vec<(u64, Option<Vec<u8>>)> = seqs.iter().rev().cloned().collect();
    assert_eq!(versions, want);
    assert!(versions.iter().any(|(_, v)| v.is_none()));
}

#[test]
fn outside_the_window_is_a_clear_error() {
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Commits(5));
    for i in 0..40u8 {
        put(&db, "t", b"k", Some(&[i]));
    }
    db.checkpoint().unwrap();
    let (oldest, newest) = db.history_window();
    assert!(oldest >= 30 && newest == 40, "window {oldest}..{newest}");
    let err = db.begin_read_at(3).err().unwrap();
    match &err {
        Error::HistoryUnavailable {
            requested: 3,
            oldest: o,
            newest: 40,
        } => assert_eq!(*o, oldest),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("history window"), "{err}");
    assert!(matches!(
        db.begin_read_at(41),
        Err(Error::HistoryUnavailable { requested: 41, .. })
    ));
    // The oldest retained state reads right.
    let tx = db.begin_read_at(oldest).unwrap();
    assert_eq!(tx.get("t", b"k").unwrap(), Some(vec![(oldest - 1) as u8]));
}

#[test]
fn a_time_travel_snapshot_holds_the_window() {
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Commits(2));
    let first = put(&db, "t", b"k", Some(b"first"));
    let tx = db.begin_read_at(first).unwrap();
    for i in 0..100u8 {
        put(&db, "t", b"k", Some(&[i]));
        if i % 20 == 0 {
            db.checkpoint().unwrap();
        }
    }
    db.collect_garbage().unwrap();
    db.checkpoint().unwrap();
    assert_eq!(tx.get("t", b"k").unwrap().as_deref(), Some(&b"first"[..]));
    assert!(db.history_window().0 <= first);
    drop(tx);
    db.collect_garbage().unwrap();
    db.checkpoint().unwrap();
    assert!(db.history_window().0 > first);
}

#[test]
fn default_retention_keeps_what_snapshots_need_and_no_more() {
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Snapshots);
    let s1 = put(&db, "t", b"k", Some(b"1"));
    // The newest state is always readable.
    assert_eq!(
        db.begin_read_at(s1)
            .unwrap()
            .get("t", b"k")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    for i in 0..200u8 {
        put(&db, "t", b"k", Some(&[i]));
    }
    db.collect_garbage().unwrap();
    db.checkpoint().unwrap();
    assert!(matches!(
        db.begin_read_at(s1),
        Err(Error::HistoryUnavailable { .. })
    ));
    let info = db.check_integrity().unwrap();
    assert!(info.problems.is_empty());
}

#[test]
fn drop_history_before_gives_space_back() {
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Commits(1_000_000));
    let value = vec![7u8; 600];
    let mut first = 0;
    for round in 0..20u8 {
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        if round == 0 {
            tx.create_table("t").unwrap();
        }
        for k in 0..200u16 {
            let mut v = value.clone();
            v[0] = round;
            tx.put("t", &k.to_be_bytes(), &v).unwrap();
        }
        let seq = tx.commit().unwrap().seq;
        if round == 0 {
            first = seq;
        }
        db.checkpoint().unwrap();
    }
    let before = db.stats().free_pages;
    let tx = db.begin_read_at(first).unwrap();
    assert_eq!(tx.get("t", &5u16.to_be_bytes()).unwrap().unwrap()[0], 0);
    drop(tx);
    let newest = db.history_window().1;
    assert_eq!(db.drop_history_before(newest).unwrap(), newest);
    db.checkpoint().unwrap();
    let after = db.stats().free_pages;
    assert!(
        after > before + 100,
        "dropping 19 versions of 200 keys frees pages: {before} -> {after}"
    );
    assert!(matches!(
        db.begin_read_at(first),
        Err(Error::HistoryUnavailable { .. })
    ));
    let tx = db.begin_read_at(newest).unwrap();
    let versions = tx.versions("t", &5u16.to_be_bytes()).unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].1.as_ref().unwrap()[0], 19);
    let r = db.check_integrity().unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // Space is reused: the same load again does not grow the file much.
    let len = db.info().unwrap().file_len;
    for round in 0..3u8 {
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        for k in 0..200u16 {
            tx.put("t", &k.to_be_bytes(), &[round; 600]).unwrap();
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap();
    }
    assert!(db.info().unwrap().file_len <= len + 64 * 4096);
}

#[test]
fn a_dropped_table_stays_readable_in_the_past() {
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Commits(100));
    let before = put(&db, "gone", b"a", Some(b"1"));
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.drop_table("gone").unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    db.close().unwrap();
    let db = sim_db(&sim, HistoryRetention::Commits(100));
    // A new table must not take the dropped one's identity while its data is kept.
    put(&db, "new", b"b", Some(b"2"));
    let tx = db.begin_read_at(before).unwrap();
    assert_eq!(tx.tables().unwrap(), vec!["gone".to_string()]);
    assert_eq!(tx.get("gone", b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(tx.versions("gone", b"b").unwrap(), vec![]);
    drop(tx);
    let mut c = db.connect();
    assert!(matches!(
        c.begin_read().unwrap().get("gone", b"a"),
        Err(Error::TableNotFound { .. })
    ));
    // Once the drop leaves the window, the data goes.
    let newest = db.history_window().1;
    db.drop_history_before(newest).unwrap();
    let r = db.check_integrity().unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        r.tree_keys, 3,
        "catalog entry and key of `new`, and the floor"
    );
}

#[test]
fn history_survives_crashes() {
    for seed in 0..8u64 {
        let sim = SimStorage::new();
        let db = sim_db(&sim, HistoryRetention::Commits(1000));
        let mut acked = Vec::new();
        for i in 0..60u32 {
            let seq = put(&db, "t", &(i % 5).to_be_bytes(), Some(&i.to_le_bytes()));
            acked.push((seq, i));
            if i % 13 == 0 {
                db.checkpoint().unwrap();
            }
        }
        // Applied commits may be lost; the Durable ones above may not.
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.put("t", b"lost?", b"x").unwrap();
        tx.commit_with(Durability::Applied).unwrap();
        drop(c);
        let image = sim.fork();
        image.crash(seed);
        drop(db);
        let db = sim_db(&image, HistoryRetention::Commits(1000));
        for &(seq, i) in &acked {
            let tx = db.begin_read_at(seq).unwrap();
            assert_eq!(
                tx.get("t", &(i % 5).to_be_bytes()).unwrap(),
                Some(i.to_le_bytes().to_vec()),
                "seed {seed}, seq {seq}"
            );
        }
        let r = db.check_integrity().unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }
}

#[test]
fn duration_retention_keeps_recent_states() {
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Duration(Duration::from_secs(3600)));
    let first = put(&db, "t", b"k", Some(b"a"));
    for i in 0..300u16 {
        put(&db, "t", b"k", Some(&i.to_be_bytes()));
    }
    db.collect_garbage().unwrap();
    db.checkpoint().unwrap();
    assert_eq!(
        db.begin_read_at(first)
            .unwrap()
            .get("t", b"k")
            .unwrap()
            .as_deref(),
        Some(&b"a"[..]),
        "an hour has not passed"
    );
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Duration(Duration::from_millis(1)));
    let first = put(&db, "t", b"k", Some(b"a"));
    std::thread::sleep(Duration::from_millis(20));
    for i in 0..300u16 {
        put(&db, "t", b"k", Some(&i.to_be_bytes()));
    }
    db.collect_garbage().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    db.collect_garbage().unwrap();
    db.checkpoint().unwrap();
    assert!(
        db.begin_read_at(first).is_err(),
        "the millisecond has passed"
    );
}

#[test]
fn time_travel_reads_race_checkpoints_correctly() {
    let sim = SimStorage::new();
    time_travel_reads_race_checkpoints(&sim_db(&sim, HistoryRetention::Commits(400)));
}

/// The same on a real file: the simulated storage's views are snapshots (a page the
/// writer reuses under a reader does not change beneath it there), a mapping's are not.
#[test]
fn time_travel_reads_race_checkpoints_correctly_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Options::new()
        .random_seed(9)
        .history_retention(HistoryRetention::Commits(400))
        .open(dir.path().join("race.db"))
        .unwrap();
    time_travel_reads_race_checkpoints(&db);
}

fn time_travel_reads_race_checkpoints(db: &Database) {
    const KEYS: u32 = 40;
    put(db, "t", b"seed", Some(b"x"));
    // commits[i] = seq of the commit that wrote key i % KEYS with value i.
    let commits = parking_lot::Mutex::new(Vec::<u64>::new());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = db.connect();
            for i in 0..1500u32 {
                let mut tx = c.begin().unwrap();
                tx.put("t", &(i % KEYS).to_be_bytes(), &i.to_le_bytes())
                    .unwrap();
                let level = if i % 2 == 0 {
                    Durability::Applied
                } else {
                    Durability::Durable
                };
                let seq = tx.commit_with(level).unwrap().seq;
                commits.lock().push(seq);
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                db.checkpoint().unwrap();
                std::thread::yield_now();
            }
        });
        for r in 0..2u64 {
            let db = &db;
            let commits = &commits;
            let done = &done;
            s.spawn(move || {
                let mut rng = r + 1;
                let mut checked = 0;
                while !done.load(std::sync::atomic::Ordering::Acquire) || checked < 300 {
                    let known = commits.lock().clone();
                    if known.is_empty() {
                        continue;
                    }
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let n = (rng >> 33) as usize % known.len();
                    let seq = known[n];
                    let tx = match db.begin_read_at(seq) {
                        Ok(tx) => tx,
                        Err(Error::HistoryUnavailable { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    };
                    // The expected value of every key at `seq`.
                    for k in 0..KEYS {
                        let want = (0..=n as u32)
                            .rev()
                            .find(|i| i % KEYS == k)
                            .map(|i| i.to_le_bytes().to_vec());
                        assert_eq!(
                            tx.get("t", &k.to_be_bytes()).unwrap(),
                            want,
                            "key {k} at {seq}"
                        );
                    }
                    let scanned = tx.iter("t").unwrap().count();
                    assert_eq!(scanned, 1 + (n + 1).min(KEYS as usize), "scan at {seq}");
                    checked += 1;
                }
            });
        }
    });
    let r = db.check_integrity().unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

/// A large table loaded before the window and of which few keys changed inside it:
/// past reads of the unchanged keys (no history entry) skip the history descent (the
/// tree's history directory does not hold them) and still read right, as do the changed
/// keys, before and after a reopen (which builds the directory of the tree it finds), and
/// `check_integrity` finds the directory complete.
#[test]
fn past_reads_of_unchanged_keys_skip_history_and_read_right() {
    unchanged_keys_read_right(usize::MAX);
}

/// [`past_reads_of_unchanged_keys_skip_history_and_read_right`] where trees keep a
/// history filter instead of a directory (`history_directory_keys(0)`, as a tree with
/// more history keys than the directory may hold does).
#[test]
fn past_reads_of_unchanged_keys_skip_history_by_the_filter_and_read_right() {
    unchanged_keys_read_right(0);
}

fn unchanged_keys_read_right(directory_keys: usize) {
    const WINDOW: u64 = 100;
    let sim = SimStorage::new();
    let open = |sim: &SimStorage| {
        Options::new()
            .random_seed(9)
            .history_retention(HistoryRetention::Commits(WINDOW))
            .history_directory_keys(directory_keys)
            .open_storage(Arc::new(sim.clone()))
            .unwrap()
    };
    let db = open(&sim);
    let key = |i: u32| i.to_be_bytes();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..3000u32 {
        tx.put("t", &key(i), b"old").unwrap();
    }
    tx.commit().unwrap();
    // The load leaves the window: its keys get no history entries.
    let mut at = 0;
    for i in 0..WINDOW + 20 {
        at = put(&db, "other", &i.to_be_bytes(), Some(b"x"));
    }
    db.checkpoint().unwrap();
    // Every 100th key changes (a few of them are deleted), twice.
    for round in 0..2u32 {
        for i in (0..3000u32).step_by(100) {
            let v = format!("new{round}");
            let value = (!i.is_multiple_of(700) || round == 0).then_some(v.as_bytes());
            put(&db, "t", &key(i), value);
        }
        db.checkpoint().unwrap();
    }
    let expect = |i: u32, past: bool| -> Option<Vec<u8>> {
        if past || !i.is_multiple_of(100) {
            Some(b"old".to_vec())
        } else if i.is_multiple_of(700) {
            None
        } else {
            Some(b"new1".to_vec())
        }
    };
    let check = |db: &Database| {
        let report = db.check_integrity().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        // The tree's index holds (at least) the 30 changed keys, as a directory unless
        // the options allow none.
        let s = db.stats();
        assert!(s.history_keys >= 30, "{} history keys", s.history_keys);
        assert_eq!(s.history_directory, directory_keys > 0);
        assert!(s.history_index_bytes > 0);
        let past = db.begin_read_at(at).unwrap();
        let mut c = db.connect();
        let now = c.begin_read().unwrap();
        for i in 0..3000u32 {
            assert_eq!(
                past.get("t", &key(i)).unwrap(),
                expect(i, true),
                "key {i} at {at}"
            );
            assert_eq!(
                now.get("t", &key(i)).unwrap(),
                expect(i, false),
                "key {i} now"
            );
        }
    };
    check(&db);
    drop(c);
    db.close().unwrap();
    check(&open(&sim));
}

/// A live reader (a read-only handle beside the writer) reads the past through the
/// history directory of each tree it follows: every key, at every state of a window
/// whose entries two checkpoints rewrote, reads as the writer wrote it, before and
/// after the writer publishes a newer tree; with a directory and with a filter only.
#[test]
fn a_live_reader_reads_the_past_through_each_tree_it_follows() {
    for directory_keys in [usize::MAX, 0] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let writer = Options::new()
            .history_retention(HistoryRetention::Commits(1_000))
            .open(&path)
            .unwrap();
        let key = |i: u32| i.to_be_bytes();
        // `states[n]`: the value of every key after round `n`, and the round's seq.
        let mut states: Vec<(u64, Vec<Option<Vec<u8>>>)> = Vec::new();
        let mut now: Vec<Option<Vec<u8>>> = vec![None; 40];
        for round in 0..6u32 {
            let mut c = writer.connect();
            let mut tx = c.begin().unwrap();
            if round == 0 {
                tx.create_table("t").unwrap();
            }
            for i in (round % 3..40).step_by(3) {
                // Every seventh change is a deletion; values grow past a quarter page
                // in later rounds, so some version lists go to overflow extents.
                let value = (!(i + round).is_multiple_of(7))
                    .then(|| vec![b'a' + round as u8; 20 + 300 * round as usize]);
                match &value {
                    Some(v) => tx.put("t", &key(i), v).unwrap(),
                    None => tx.delete("t", &key(i)).unwrap(),
                }
                now[i as usize] = value;
            }
            let seq = tx.commit().unwrap().seq;
            states.push((seq, now.clone()));
            if round % 2 == 1 {
                writer.checkpoint().unwrap();
            }
        }
        let check = |reader: &Database| {
            for (seq, values) in &states {
                let past = reader.begin_read_at(*seq).unwrap();
                for (i, want) in values.iter().enumerate() {
                    assert_eq!(
                        past.get("t", &key(i as u32)).unwrap().as_ref(),
                        want.as_ref(),
                        "key {i} at {seq} (directory keys {directory_keys})"
                    );
                }
            }
        };
        let reader = Options::new()
            .read_only(true)
            .history_directory_keys(directory_keys)
            .open(&path)
            .unwrap();
        check(&reader);
        // The writer publishes a newer tree (its history entries rewritten): the
        // reader's next transactions follow it.
        put(&writer, "t", &key(0), Some(b"last"));
        writer.checkpoint().unwrap();
        check(&reader);
        let r = reader.check_integrity().unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let r = writer.check_integrity().unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }
}

/// Under Serializable, `versions` reads the key (its newest pair is the value at the
/// snapshot): a transaction that decides its write from `versions` of a key a concurrent
/// transaction changes, while that one read what this one writes, is a write skew and
/// fails.
#[test]
fn versions_is_a_read_under_serializable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Options::new()
        .history_retention(HistoryRetention::Commits(1000))
        .open(dir.path().join("v.db"))
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"a", b"0").unwrap();
    tx.put("t", b"b", b"0").unwrap();
    tx.commit().unwrap();
    let mut c2 = db.connect();
    let mut t1 = c.begin().unwrap();
    let seen = t1.versions("t", b"a").unwrap();
    assert_eq!(
        seen.first().and_then(|(_, v)| v.as_deref()),
        Some(&b"0"[..])
    );
    let mut t2 = c2.begin().unwrap();
    assert_eq!(t2.get("t", b"b").unwrap().as_deref(), Some(&b"0"[..]));
    t2.put("t", b"a", b"1").unwrap();
    t2.commit().unwrap();
    t1.put("t", b"b", b"1").unwrap();
    assert!(matches!(t1.commit(), Err(Error::Conflict { .. })));
}

/// An idle database whose marker stream just filled a page, after garbage collection
/// raised the history floor to the tip, still checkpoints (the checkpoint's horizon is
/// one below the floor there, the next slot's page not being started).
#[test]
fn a_checkpoint_runs_when_the_floor_is_at_the_tip_of_a_full_marker_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("f.db")).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    for i in 1u32..127 {
        let mut tx = c.begin().unwrap();
        tx.put("t", &i.to_be_bytes(), b"v").unwrap();
        tx.commit().unwrap();
    }
    db.collect_garbage().unwrap();
    assert!(db.checkpoint().unwrap().is_some(), "the checkpoint folds");
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.len("t").unwrap(), 126);
}

/// `drop_history_before` with a sequence past the newest state drops the history before
/// the newest state, once: the window the database was opened with goes on for later
/// commits. Before, the value stayed in force and no later state stayed readable once
/// replaced.
#[test]
fn dropping_history_past_the_newest_state_keeps_the_window_for_later_commits() {
    let sim = SimStorage::new();
    let db = sim_db(&sim, HistoryRetention::Commits(1000));
    for i in 0..5u8 {
        put(&db, "t", b"k", Some(&[i]));
    }
    let newest = db.history_window().1;
    assert_eq!(db.drop_history_before(u64::MAX).unwrap(), newest);
    let first_after = put(&db, "t", b"k", Some(b"a"));
    for _ in 0..5 {
        put(&db, "t", b"k", Some(b"b"));
    }
    db.checkpoint().unwrap();
    assert!(
        db.history_window().0 <= first_after,
        "window {:?}, first commit after the drop {first_after}",
        db.history_window()
    );
    let tx = db.begin_read_at(first_after).unwrap();
    assert_eq!(tx.get("t", b"k").unwrap().as_deref(), Some(&b"a"[..]));
}

/// `versions` read the newest tree, not the transaction's: a key changed after the
/// snapshot and folded into the tree by a checkpoint since came back as a version at or
/// below the snapshot, with the newer value.
#[test]
fn versions_in_a_transaction_older_than_a_checkpoint_reads_its_own_state() {
    for retention in [HistoryRetention::Snapshots, HistoryRetention::Commits(1)] {
        let sim = SimStorage::new();
        let db = sim_db(&sim, retention);
        put(&db, "t", b"k", Some(b"old"));
        put(&db, "t", b"gone", Some(b"here"));
        db.checkpoint().unwrap();
        let mut c = db.connect();
        let tx = c.begin().unwrap();
        put(&db, "t", b"k", Some(b"new"));
        put(&db, "t", b"gone", None);
        put(&db, "t", b"born", Some(b"later"));
        db.checkpoint().unwrap();
        assert_eq!(tx.get("t", b"k").unwrap().as_deref(), Some(&b"old"[..]));
        let values = |key: &[u8]| -> Vec<Option<Vec<u8>>> {
            let versions = tx.versions("t", key).unwrap();
            versions.into_iter().map(|(_, v)| v).collect()
        };
        assert_eq!(values(b"k"), [Some(b"old".to_vec())], "{retention:?}");
        assert_eq!(values(b"gone"), [Some(b"here".to_vec())], "{retention:?}");
        assert_eq!(
            values(b"born"),
            Vec::<Option<Vec<u8>>>::new(),
            "{retention:?}"
        );
    }
}
