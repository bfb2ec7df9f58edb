//! Tests of `Database` that reach below the API: a closed engine a background thread
//! still holds, table ids, the catalog check, a tree commit waiting for a checkpoint.

/// Commits `writes` durably straight through the engine, past the API's checks (what
/// only a crafted or damaged file could hold).
fn commit_below_api(
    engine: &std::sync::Arc<crate::engine::Engine>,
    writes: &crate::types::WriteSet,
) {
    let snapshot = engine.registry.visible();
    engine
        .commit(
            snapshot,
            crate::types::Isolation::Serializable,
            writes,
            crate::commit::ReadSet::default(),
            &[],
            crate::types::Durability::Durable,
            &|| std::sync::Arc::from([]),
            9,
        )
        .unwrap();
}

mod reopen_after_close_tests {
    use crate::Database;
    use std::time::Duration;

    /// An open right after `close` while a background thread (the flusher, the idle
    /// watcher) still holds the closed engine for a moment waits for it and opens the
    /// file again; it used to answer `Closed`.
    #[test]
    fn an_open_right_after_close_waits_for_a_background_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reopen.db");
        let db = Database::open(&path).unwrap();
        let first = db.identity();
        // Kept, so that no engine opened later takes the same address (one freed before
        // the next open allocates its engine would be taken for the same engine).
        let _first_kept = std::sync::Arc::downgrade(&db.latest().unwrap());
        // As a background thread holds it: briefly, then lets go.
        let held = db.latest().unwrap();
        db.close().unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        let db = Database::open(&path).unwrap();
        assert_ne!(db.identity(), first, "a new engine");
        holder.join().unwrap();
        let mut conn = db.connect();
        let mut tx = conn.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit().unwrap();
    }

    /// While a handle of the closed database is still kept (here: a connection), an
    /// open answers `Closed` (after the second it waits for such a handle to go).
    #[test]
    fn an_open_while_a_closed_handle_is_kept_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kept.db");
        let db = Database::open(&path).unwrap();
        let conn = db.connect();
        db.close().unwrap();
        assert!(matches!(Database::open(&path), Err(crate::Error::Closed)));
        drop(conn);
        Database::open(&path).unwrap();
    }

    /// A clone of a closed writer's handle answers `Closed` to `info`,
    /// `check_integrity` and `collect_garbage` as to every other call (they answered
    /// with data, and `Ok`).
    #[test]
    fn a_closed_handles_clone_is_told_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("c.db")).unwrap();
        let clone = db.clone();
        db.close().unwrap();
        assert!(matches!(clone.info(), Err(crate::Error::Closed)));
        assert!(matches!(clone.check_integrity(), Err(crate::Error::Closed)));
        assert!(matches!(clone.collect_garbage(), Err(crate::Error::Closed)));
    }
}

mod closed_live_reader_tests {
    use crate::{Database, Error, Options};

    /// A transaction that passed its handle's open check as another clone of a live
    /// reader closed it: its pin on the tree (taken after the close moved the
    /// generation pin off the tree) is refused, and nothing stays pinned. It read with
    /// no pin (the writer could reuse the pages under it), or its pin stayed in the
    /// closed handle's cache while a clone lived.
    #[test]
    fn a_pin_taken_after_a_live_readers_close_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let writer = Database::open(&path).unwrap();
        let mut c = writer.connect();
        let commit = |c: &mut crate::Connection, v: &[u8]| {
            let mut tx = c.begin().unwrap();
            if !tx.table_exists("t").unwrap() {
                tx.create_table("t").unwrap();
            }
            tx.put("t", b"k", v).unwrap();
            tx.commit().unwrap();
        };
        commit(&mut c, b"1");
        writer.checkpoint().unwrap();
        let reader = Options::new().read_only(true).open(&path).unwrap();
        let engine = reader.latest().unwrap();
        reader.close().unwrap();
        assert!(matches!(engine.shared_pin(), Err(Error::Closed)));
        assert!(matches!(engine.pin(), Err(Error::Closed)));
        for v in [b"2", b"3"] {
            commit(&mut c, v);
            writer.checkpoint().unwrap();
        }
        assert!(!writer.info().unwrap().older_generations_pinned);
        drop(engine);
    }
}

mod table_id_tests {
    use crate::Database;
    use crate::types::TABLE_ID_MAX;
    use std::sync::atomic::Ordering;

    /// A file naming the largest table id: creating one more table is refused (it was
    /// given an id every later open refuses, and then ids wrapped onto existing tables).
    #[test]
    fn creating_a_table_past_the_largest_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("ids.db")).unwrap();
        db.latest()
            .unwrap()
            .next_table_id
            .store(TABLE_ID_MAX, Ordering::Relaxed);
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("last").unwrap();
        tx.commit().unwrap();
        let mut tx = c.begin().unwrap();
        let e = tx.create_table("one more").unwrap_err();
        assert!(e.is_corruption(), "{e:?}");
        // A clear needs a new id too: refused whole, the table kept (it was dropped
        // first, and a commit after the error dropped it).
        tx.put("last", b"kept", b"v").unwrap();
        let e = tx.clear_table("last").unwrap_err();
        assert!(e.is_corruption(), "{e:?}");
        assert!(tx.table_exists("last").unwrap());
        assert_eq!(tx.get("last", b"kept").unwrap().as_deref(), Some(&b"v"[..]));
        tx.commit().unwrap();
        let tx = c.begin_read().unwrap();
        assert_eq!(tx.get("last", b"kept").unwrap().as_deref(), Some(&b"v"[..]));
        drop(tx);
        drop(c);
        db.close().unwrap();
        let db = Database::open(dir.path().join("ids.db")).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.put("last", b"k", b"v").unwrap();
        tx.commit().unwrap();
    }
}

mod catalog_check_tests {
    use crate::Database;
    use crate::types::{CATALOG_TABLE, WriteSet};

    /// Two catalog names on one table id (only a damaged or crafted file holds them:
    /// written here below the API): `check_integrity` reports them.
    #[test]
    fn check_integrity_reports_two_names_on_one_table_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("catalog.db")).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("a").unwrap();
        tx.commit().unwrap();
        let engine = db.latest().unwrap();
        let id_a = {
            let tx = c.begin_read().unwrap();
            tx.table_id("a").unwrap()
        };
        let mut writes = WriteSet::new();
        writes
            .entry(CATALOG_TABLE)
            .or_default()
            .insert(b"b", Some(&id_a.to_le_bytes()))
            .unwrap();
        super::commit_below_api(&engine, &writes);
        db.checkpoint().unwrap();
        let report = db.check_integrity().unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("name the same table id")),
            "{report:?}"
        );
    }
}

mod catalog_replay_tests {
    use crate::Database;
    use crate::types::{CATALOG_TABLE, WriteSet};

    /// A logged catalog entry whose value is no table id (3 bytes; written here below
    /// the API, as only a crafted file holds it): replay accepted it, and a read of the
    /// table later named page 0. The open now refuses the log, naming the capsule's
    /// page.
    #[test]
    fn replay_refuses_a_catalog_value_that_is_no_table_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let db = Database::open(&path).unwrap();
        let engine = db.latest().unwrap();
        let mut writes = WriteSet::new();
        writes
            .entry(CATALOG_TABLE)
            .or_default()
            .insert(b"t", Some(&[1, 2, 3]))
            .unwrap();
        super::commit_below_api(&engine, &writes);
        drop(engine);
        drop(db);
        let e = Database::open(&path).unwrap_err();
        let shown = e.to_string();
        assert!(
            e.is_corruption() && shown.contains("8-byte table id") && !shown.contains("page 0"),
            "{shown}"
        );
    }
}

mod tree_commit_wait_tests {
    use crate::{Database, Options};

    /// A durable commit of 2,000 values of 1,000 bytes into table `t`, on a thread.
    fn spawn_bulk(db: &Database) -> std::thread::JoinHandle<crate::Result<()>> {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = db.connect();
            let mut tx = c.begin()?;
            for i in 0..2_000u32 {
                tx.put("t", &i.to_be_bytes(), &[7u8; 1000])?;
            }
            tx.commit().map(|_| ())
        })
    }

    /// A tree commit waiting for a checkpoint in progress keeps no one else waiting:
    /// new transactions begin meanwhile. (It took the registry's exclusive hold before
    /// the checkpointer, and every `begin` waited for both; here the begin would have
    /// waited for ever, this thread holding the checkpointer.)
    #[test]
    fn a_waiting_tree_commit_lets_transactions_begin() {
        let dir = tempfile::tempdir().unwrap();
        let db = Options::new()
            .version_store_budget(1 << 20)
            .open(dir.path().join("wait.db"))
            .unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit().unwrap();
        let engine = db.latest().unwrap();
        let held = engine.checkpointer.hold_for_test();
        let bulk = spawn_bulk(&db);
        // Let the bulk commit reach the checkpointer (if it has not yet, the begin
        // below passes either way).
        std::thread::sleep(std::time::Duration::from_millis(200));
        let tx = c.begin_read().unwrap();
        drop(tx);
        drop(held);
        bulk.join().unwrap().unwrap();
        let tx = c.begin_read().unwrap();
        assert_eq!(tx.iter("t").unwrap().count(), 2_000);
        drop(tx);
        assert_eq!(db.stats().tree_commits, 1);
    }

    /// A durable commit of 2 MB into a small file (tree-sized, though far below half the
    /// store's budget) beside another live snapshot goes through the log at once, even
    /// while a checkpoint runs: it no longer waits for the checkpointer only to find
    /// the registry taken (here it would have waited for ever, this thread holding both
    /// the checkpointer and the snapshot).
    #[test]
    fn a_large_commit_beside_a_reader_does_not_wait_for_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = Options::new().open(dir.path().join("beside.db")).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit().unwrap();
        let reader = c.begin_read().unwrap();
        let engine = db.latest().unwrap();
        let held = engine.checkpointer.hold_for_test();
        let bulk = spawn_bulk(&db);
        bulk.join().unwrap().unwrap();
        drop(held);
        assert_eq!(reader.iter("t").unwrap().count(), 0);
        drop(reader);
        assert_eq!(db.stats().tree_commits, 0);
        let tx = c.begin_read().unwrap();
        assert_eq!(tx.iter("t").unwrap().count(), 2_000);
    }
}

mod back_pressure_tests {
    use crate::{Durability, Options};

    /// Back-pressure held commits back only while the automatic checkpoint ran: while the
    /// application's own checkpoint, `compact` or `check_integrity` held the checkpointer
    /// (which no fold can then take), the store grew past any bound unslowed, and every
    /// eighth commit started a checkpoint thread that found it taken and ended.
    #[test]
    fn commits_are_held_back_while_the_checkpointer_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let db = Options::new()
            .version_store_budget(16 * 1024)
            .open(dir.path().join("held.db"))
            .unwrap();
        let engine = db.latest().unwrap();
        let mut conn = db.connect();
        let mut tx = conn.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit().unwrap();
        let held = engine.checkpointer.hold_for_test();
        for i in 0..60u32 {
            let mut tx = conn.begin().unwrap();
            tx.put("t", &i.to_be_bytes(), &[1u8; 1024]).unwrap();
            tx.commit_with(Durability::Applied).unwrap();
        }
        assert!(engine.versions.byte_count() > 2 * 16 * 1024);
        assert!(db.stats().throttled_commits > 0, "{:?}", db.stats());
        drop(held);
    }
}

mod read_range_tests {
    use crate::{Durability, Options};
    use std::ops::Bound;

    /// A Serializable scan read in batches records one range, not one per batch (each
    /// later writer's validation checks every range a concurrent commit recorded), and
    /// the range is the whole one scanned; a reverse scan of another range adds one.
    #[test]
    fn a_scan_in_batches_records_one_range() {
        let dir = tempfile::tempdir().unwrap();
        let db = Options::new().open(dir.path().join("ranges.db")).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        for i in 0..5_000u32 {
            tx.put("t", &i.to_be_bytes(), b"v").unwrap();
        }
        tx.commit_with(Durability::Durable).unwrap();
        let tx = c.begin().unwrap();
        let lo = 10u32.to_be_bytes();
        let hi = 4_000u32.to_be_bytes();
        assert_eq!(tx.range("t", &lo[..]..&hi[..]).unwrap().count(), 3_990);
        let ranges = tx.read_ranges();
        assert_eq!(ranges.len(), 1, "{ranges:?}");
        assert_eq!(ranges[0].lo, Bound::Included(lo.to_vec()));
        assert_eq!(ranges[0].hi, Bound::Excluded(hi.to_vec()));
        // A scan of an inverted range starting where that one ended reads nothing and
        // joins nothing (joined, it cut the first range short: the history checker
        // found the cycle it let through).
        let end = 20u32.to_be_bytes();
        let inverted: (Bound<&[u8]>, Bound<&[u8]>) =
            (Bound::Included(&hi[..]), Bound::Excluded(&end[..]));
        assert_eq!(tx.range::<&[u8], _>("t", inverted).unwrap().count(), 0);
        let ranges = tx.read_ranges();
        assert_eq!(ranges[0].hi, Bound::Excluded(hi.to_vec()), "{ranges:?}");
        let rev_lo = 4_500u32.to_be_bytes();
        assert_eq!(tx.range("t", &rev_lo[..]..).unwrap().rev().count(), 500);
        let ranges = tx.read_ranges();
        let last = ranges.last().unwrap();
        assert_eq!(last.lo, Bound::Included(rev_lo.to_vec()), "{ranges:?}");
        assert_eq!(last.hi, Bound::Unbounded);
    }
}
