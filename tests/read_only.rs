//! Read-only mode: a file the process may only read opens, reads work, every write is a
//! clear error, and nothing in the file changes.

use capsuledb::{Database, Durability, Error, Options};
use std::os::unix::fs::PermissionsExt;

fn make(path: &std::path::Path) {
    let db = Database::open(path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..500u32 {
        tx.put("t", &i.to_be_bytes(), &[7; 100]).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    // Some commits only in the log, to be replayed by the read-only open.
    let mut tx = c.begin().unwrap();
    tx.put("t", b"log-only", b"yes").unwrap();
    tx.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn a_read_only_file_opens_read_only_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    make(&path);
    let before = std::fs::read(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let running_as_root = std::fs::OpenOptions::new().write(true).open(&path).is_ok();
    if !running_as_root {
        assert!(
            Database::open(&path).is_err(),
            "a read-write open of a read-only file fails"
        );
    }
    let db = Options::new().read_only(true).open(&path).unwrap();
    let mut c = db.connect();
    {
        let tx = c.begin_read().unwrap();
        assert_eq!(tx.len("t").unwrap(), 501);
        assert_eq!(
            tx.get("t", b"log-only").unwrap().as_deref(),
            Some(&b"yes"[..])
        );
        assert!(matches!(tx.versions("t", b"log-only"), Ok(v) if v.len() == 1));
    }
    assert!(matches!(c.begin(), Err(Error::ReadOnlyDatabase)));
    assert!(matches!(db.checkpoint(), Err(Error::ReadOnlyDatabase)));
    assert!(matches!(db.compact(), Err(Error::ReadOnlyDatabase)));
    assert!(matches!(
        db.drop_history_before(1),
        Err(Error::ReadOnlyDatabase)
    ));
    assert!(
        Error::ReadOnlyDatabase.to_string().contains("read-only"),
        "the message says why"
    );
    let report = db.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // A second read-only handle shares the file.
    let again = Options::new().read_only(true).open(&path).unwrap();
    drop(c);
    db.close().unwrap();
    drop(again);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "not one byte changed"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Writable again once every read-only handle is gone.
    let db = Database::open(&path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.put("t", b"new", b"1").unwrap();
    tx.commit().unwrap();
}

#[test]
fn read_only_needs_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    assert!(matches!(
        Options::new().read_only(true).open(&path),
        Err(Error::Io { .. })
    ));
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        Options::new().read_only(true).open(&path),
        Err(Error::NotADatabase { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"", "nothing written");
}

#[test]
fn a_reader_opens_beside_a_writer_and_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rw.db");
    make(&path);
    let writer = Database::open(&path).unwrap();
    // As between processes: a live reader opens beside the writer
    // (format-spec/locking.md), and a second writer is refused.
    let reader = Options::new().read_only(true).open(&path).unwrap();
    assert!(
        matches!(
            Options::new().open(dir.path().join("rw.db")).map(|_| ()),
            Ok(())
        ),
        "the same process shares its writer's engine"
    );
    let mut rc = reader.connect();
    let old = rc.begin_read().unwrap();
    assert_eq!(old.len("t").unwrap(), 501);
    let mut wc = writer.connect();
    let mut tx = wc.begin().unwrap();
    tx.put("t", b"after", b"1").unwrap();
    tx.commit().unwrap();
    writer.checkpoint().unwrap();
    let mut tx = wc.begin().unwrap();
    tx.put("t", b"after-checkpoint", b"2").unwrap();
    tx.commit().unwrap();
    // The old snapshot is unchanged; a new one sees both commits.
    assert_eq!(old.len("t").unwrap(), 501);
    assert!(old.get("t", b"after").unwrap().is_none());
    let mut rc2 = reader.connect();
    let new = rc2.begin_read().unwrap();
    assert_eq!(new.len("t").unwrap(), 503);
    assert_eq!(
        new.get("t", b"after-checkpoint").unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert!(reader.info().unwrap().read_only);
    assert!(
        writer.info().unwrap().older_generations_pinned,
        "the old snapshot pins"
    );
    drop(old);
    drop(rc);
    let r = reader.check_integrity().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    drop(new);
    drop(rc2);
    drop(reader);
    assert!(!writer.info().unwrap().older_generations_pinned);
}

/// Regression (a reader process died of `SIGBUS` in `live_readers` while the writer
/// compacted): a read-only handle may read any page below the length it mapped, so
/// compaction leaves the file's length alone while a reader pins a generation, and cuts
/// it once the reader is gone.
#[test]
fn compaction_never_shrinks_the_file_under_a_pinned_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.db");
    make(&path);
    let db = Database::open(&path).unwrap();
    let mut c = db.connect();
    // Grow the file, then free most of it.
    let mut tx = c.begin().unwrap();
    tx.create_table("big").unwrap();
    for i in 0..2_000u32 {
        tx.put("big", &i.to_be_bytes(), &[9; 3000]).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let mut tx = c.begin().unwrap();
    tx.drop_table("big").unwrap();
    tx.commit().unwrap();
    // Those pages are free before the reader comes: none of its generation's pages,
    // so only the rule for cuts keeps them.
    db.checkpoint().unwrap();
    db.checkpoint().unwrap();
    let reader = Options::new().read_only(true).open(&path).unwrap();
    let grown = std::fs::metadata(&path).unwrap().len();
    db.compact().unwrap();
    let kept = std::fs::metadata(&path).unwrap().len();
    assert!(
        kept >= grown,
        "the file never shrinks while a reader pins a generation: {grown} -> {kept}"
    );
    let mut rc = reader.connect();
    let rtx = rc.begin_read().unwrap();
    assert_eq!(
        rtx.get("t", b"log-only").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
    drop(rtx);
    drop(rc);
    drop(reader);
    db.compact().unwrap();
    let cut = std::fs::metadata(&path).unwrap().len();
    assert!(
        cut < grown / 2,
        "cut once the reader is gone: {kept} -> {cut}"
    );
    assert!(db.check_integrity().unwrap().is_ok());
}

/// `wait_for` on a read-only handle returns once the writer's commit is visible to it
/// (before, it waited on a group commit the reader never runs, for ever).
#[test]
fn wait_for_on_a_live_reader_returns_when_the_commit_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let writer = capsuledb::Database::open(&path).unwrap();
    let mut c = writer.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    let reader = capsuledb::Options::new()
        .read_only(true)
        .open(&path)
        .unwrap();
    let mut tx = c.begin().unwrap();
    tx.put("t", b"k", b"v").unwrap();
    let seq = tx.commit().unwrap().seq;
    let (done, rx) = std::sync::mpsc::channel();
    let r = reader.clone();
    std::thread::spawn(move || {
        let res = r.wait_for(seq, capsuledb::Durability::Durable);
        let _ = done.send(res.is_ok());
    });
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(60)),
        Ok(true),
        "the reader's wait returns"
    );
    let mut rc = reader.connect();
    assert_eq!(
        rc.begin_read().unwrap().get("t", b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

/// A live reader whose newest header copy is damaged at rest never goes back to the
/// older copy's generation: the writer may have reused the pages that generation
/// reaches (it tags and releases them once no reader pins it), so reading it could
/// return another tree's data. Before, the reader took the other copy as a "moved"
/// generation and opened it; now its next transaction fails with `Corrupted`.
#[test]
fn a_live_reader_never_goes_back_to_an_older_header() {
    // Once with each copy newest: the error names the damaged copy's page (it named
    // page 0 for copy B too).
    let mut damaged = Vec::new();
    for checkpoints in 1..=2 {
        damaged.push(never_goes_back(checkpoints));
    }
    damaged.sort();
    assert_eq!(damaged, [0, 1]);
}

/// The page of the damaged copy `begin_read` named.
fn never_goes_back(checkpoints: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rw.db");
    make(&path);
    let writer = Database::open(&path).unwrap();
    let reader = Options::new().read_only(true).open(&path).unwrap();
    let mut rc = reader.connect();
    drop(rc.begin_read().unwrap());
    let mut wc = writer.connect();
    for i in 0..checkpoints {
        let mut tx = wc.begin().unwrap();
        tx.put("t", b"after", &[b'1' + i as u8]).unwrap();
        tx.commit().unwrap();
        writer.checkpoint().unwrap();
    }
    let tx = rc.begin_read().unwrap();
    assert!(tx.get("t", b"after").unwrap().is_some());
    drop(tx);
    let newest = writer.info().unwrap().header_copy;
    let at = capsuledb::format::HEADER_COPY_OFFSETS[newest as usize];
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xA5; 16], at + 40).unwrap();
    }
    let mut pages = Vec::new();
    for _ in 0..2 {
        match rc.begin_read() {
            Err(Error::Corrupted { page, .. }) => pages.push(page),
            Err(e) => panic!("expected Corrupted, got {e:?}"),
            Ok(tx) => panic!(
                "read an older generation: `after` is {:?}",
                tx.get("t", b"after")
            ),
        }
    }
    assert_eq!(pages, [at / 4096; 2], "copy {newest} was damaged");
    at / 4096
}

/// A read-only database follows another process's commits without their tables: its
/// subscription says `Closed` at once rather than waiting for ever.
#[test]
fn a_read_only_subscription_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    make(&path);
    let reader = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(reader.subscribe().recv(), capsuledb::Received::Closed);
    // A read-only storage plugged in too (it waited until the handle was dropped).
    let sim = capsuledb::storage::SimStorage::new();
    drop(
        Options::new()
            .open_storage(std::sync::Arc::new(sim.clone()))
            .unwrap(),
    );
    let reader = Options::new()
        .read_only(true)
        .open_storage(std::sync::Arc::new(sim))
        .unwrap();
    let sub = reader.subscribe();
    assert_eq!(
        sub.recv_timeout(std::time::Duration::from_secs(60)),
        Some(capsuledb::Received::Closed)
    );
}

/// A live reader that stays idle (a monitor that reads once in a while) moves to each
/// new header generation by itself, its pin with it: before, its handle pinned the
/// generation of its last transaction for as long as it lived, and the writer held every
/// page freed since out of reuse (the file grew by each checkpoint's churn).
#[test]
fn an_idle_live_reader_stops_pinning_older_generations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.db");
    make(&path);
    let db = Database::open(&path).unwrap();
    let reader = Options::new().read_only(true).open(&path).unwrap();
    // The reader's transaction stays open across the checkpoints, so its generation is
    // pinned when the writer looks (the idle thread could otherwise move between the
    // last checkpoint and the look); then it ends and the reader goes idle.
    let mut rc = reader.connect();
    let rtx = rc.begin_read().unwrap();
    assert!(rtx.get("t", b"log-only").unwrap().is_some());
    let mut c = db.connect();
    for round in 0..3u32 {
        let mut tx = c.begin().unwrap();
        for i in 0..200u32 {
            tx.put("t", &i.to_be_bytes(), &round.to_be_bytes()).unwrap();
        }
        tx.commit().unwrap();
        db.checkpoint().unwrap();
    }
    assert!(db.info().unwrap().older_generations_pinned);
    drop(rtx);
    drop(rc);
    // A deadline for a liveness check, not a measure: the reader looks twice a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while db.info().unwrap().older_generations_pinned {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle reader still pins an older generation"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // It reads the newest state, and its pin keeps the file's length.
    let mut rc = reader.connect();
    let rtx = rc.begin_read().unwrap();
    assert_eq!(
        rtx.get("t", &0u32.to_be_bytes()).unwrap().as_deref(),
        Some(&2u32.to_be_bytes()[..])
    );
    drop(rtx);
    drop(rc);
    // Closed, it stays closed: no look (its thread's, after a commit moved the
    // generation) opens the file again under it.
    let kept = reader.clone();
    reader.close().unwrap();
    let mut tx = c.begin().unwrap();
    tx.put("t", b"after", b"close").unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let mut kc = kept.connect();
    assert!(matches!(kc.begin_read(), Err(Error::Closed)));
    // Nor does it pin anything while a clone lives: the writer held every page freed
    // since out of reuse, for as long as the clone lived.
    assert!(!db.info().unwrap().older_generations_pinned);
    drop(kc);
    drop(kept);
    assert!(!db.info().unwrap().older_generations_pinned);
    db.close().unwrap();
}

/// A read on a live reader, committed, says the level it can vouch for: the state it
/// read is in the file (the writer wrote its markers) but not known synced, so `Written`
/// at most, whatever was asked (it said `Durable` before). On the writer, the level
/// asked is waited for and reported.
#[test]
fn a_read_committed_on_a_live_reader_reports_written_at_most() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    make(&path);
    let reader = Options::new().read_only(true).open(&path).unwrap();
    let mut c = reader.connect();
    for (asked, told) in [
        (Durability::Durable, Durability::Written),
        (Durability::Written, Durability::Written),
        (Durability::Applied, Durability::Applied),
    ] {
        let info = c.begin_read().unwrap().commit_with(asked).unwrap();
        assert_eq!(info.durability, told, "asked {asked:?}");
    }
    drop(c);
    reader.close().unwrap();
    let writer = Database::open(&path).unwrap();
    let info = writer.connect().begin_read().unwrap().commit().unwrap();
    assert_eq!(info.durability, Durability::Durable);
}

/// A live reader's history window is the one its next `begin_read_at` reads: after the
/// writer's checkpoint raised the floor, the window said the old floor, and reading at
/// it failed.
#[test]
fn a_live_readers_history_window_follows_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let writer = capsuledb::Options::new()
        .history_retention(capsuledb::HistoryRetention::Commits(10))
        .open(&path)
        .unwrap();
    let mut c = writer.connect();
    let commit = |c: &mut capsuledb::Connection, i: u32| {
        let mut tx = c.begin().unwrap();
        if i == 0 {
            tx.create_table("t").unwrap();
        }
        tx.put("t", &i.to_be_bytes(), b"v").unwrap();
        tx.commit().unwrap().seq
    };
    for i in 0..50 {
        commit(&mut c, i);
    }
    writer.checkpoint().unwrap();
    let reader = capsuledb::Options::new()
        .read_only(true)
        .open(&path)
        .unwrap();
    let (lo, _) = reader.history_window();
    reader.begin_read_at(lo).unwrap();
    let mut last = 0;
    for i in 50..100 {
        last = commit(&mut c, i);
    }
    writer.checkpoint().unwrap();
    let (lo, hi) = reader.history_window();
    assert_eq!(hi, last, "the window's newest state");
    let tx = reader.begin_read_at(lo).unwrap();
    assert_eq!(tx.snapshot_seq(), lo);
}

/// A live reader serves the file's whole history window whatever its own retention:
/// `collect_garbage` on it (under the default retention) raised its floor to its newest
/// state, and the file's older states became unreadable through it.
#[test]
fn collect_garbage_on_a_live_reader_keeps_the_files_window() {
    use capsuledb::HistoryRetention;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let writer = Options::new()
        .history_retention(HistoryRetention::Commits(1_000))
        .open(&path)
        .unwrap();
    let mut c = writer.connect();
    let mut seqs = Vec::new();
    for i in 0..6u32 {
        let mut tx = c.begin().unwrap();
        if i == 0 {
            tx.create_table("t").unwrap();
        }
        tx.put("t", b"k", &i.to_be_bytes()).unwrap();
        seqs.push(tx.commit().unwrap().seq);
        if i == 2 {
            writer.checkpoint().unwrap();
        }
    }
    let reader = Options::new().read_only(true).open(&path).unwrap();
    let (floor, tip) = reader.history_window();
    assert!(
        floor < seqs[0] && tip == seqs[5],
        "({floor}, {tip}) of {seqs:?}"
    );
    reader.collect_garbage().unwrap();
    assert_eq!(reader.history_window(), (floor, tip));
    for (i, &seq) in seqs.iter().enumerate() {
        let tx = reader.begin_read_at(seq).unwrap();
        assert_eq!(
            tx.get("t", b"k").unwrap(),
            Some((i as u32).to_be_bytes().to_vec())
        );
    }
    drop(c);
    writer.close().unwrap();
}
