//! `Database::backup_to` while writers commit: the copy passes `check_integrity()` and
//! holds exactly the snapshot it reports; an existing target is refused unless asked to
//! overwrite; progress is reported.

use capsuledb::{BackupOptions, Database, Durability, Error, HistoryRetention, Isolation};
use capsuledb::{Options, RetryPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

type Tables = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Every table of a read transaction, as plain maps.
fn contents(tx: &capsuledb::Transaction<'_>) -> Tables {
    let mut out = Tables::new();
    for table in tx.tables().unwrap() {
        let rows = tx
            .iter(&table)
            .unwrap()
            .map(|e| e.map(|(k, v)| (k, v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        out.insert(table, rows);
    }
    out
}

#[test]
fn backup_while_writers_commit_equals_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // History is retained so the snapshot the backup reports can be read afterwards.
    let db = Options::new()
        .history_retention(HistoryRetention::Commits(1_000_000))
        .open(dir.path().join("live.db"))
        .unwrap();
    let mut conn = db.connect();
    conn.run(|tx| {
        for t in ["accounts", "log", "empty"] {
            tx.create_table(t)?;
        }
        for i in 0..3000u32 {
            // Some values need overflow pages.
            let value = vec![(i % 251) as u8; if i % 500 == 0 { 9000 } else { 40 }];
            tx.put("accounts", &i.to_be_bytes(), &value)?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    db.checkpoint().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..3u32)
        .map(|w| {
            let (db, stop, commits) = (db.clone(), Arc::clone(&stop), Arc::clone(&commits));
            std::thread::spawn(move || {
                let mut conn = db.connect();
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    conn.run_with(
                        Isolation::Serializable,
                        Durability::Applied,
                        &RetryPolicy::default(),
                        |tx| {
                            tx.put(
                                "accounts",
                                &((i * 7 + w) % 4000).to_be_bytes(),
                                &i.to_le_bytes(),
                            )?;
                            tx.delete("accounts", &((i * 13 + w) % 3000).to_be_bytes())?;
                            tx.put("log", &[w as u8, (i >> 8) as u8, i as u8], b"entry")
                        },
                    )
                    .unwrap();
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Let the writers get going, then back up while they run.
    while commits.load(Ordering::Relaxed) < 200 {
        std::thread::yield_now();
    }
    let out = dir.path().join("copy.db");
    let mut reports = Vec::new();
    let report = db
        .backup_to_with(
            &out,
            BackupOptions::new().progress(|p| reports.push(p.clone())),
        )
        .unwrap();
    let during = commits.load(Ordering::Relaxed);
    // Writers keep going after the backup too, then stop.
    while commits.load(Ordering::Relaxed) < during + 100 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    let expected = contents(&db.begin_read_at(report.seq).unwrap());
    let copy = Database::open(&out).unwrap();
    let check = copy.check_integrity().unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
    let got = contents(&copy.connect().begin_read().unwrap());
    assert_eq!(got.keys().collect::<Vec<_>>(), ["accounts", "empty", "log"]);
    assert!(
        got == expected,
        "the copy differs from the snapshot at seq {}",
        report.seq
    );
    assert!(
        contents(&db.connect().begin_read().unwrap()) != expected,
        "writers committed after the snapshot"
    );
    let keys: usize = expected.values().map(BTreeMap::len).sum();
    assert_eq!(report.keys, keys as u64);
    assert_eq!(report.tables, 3);
    let last = reports.last().unwrap();
    assert_eq!((last.tables_done, last.keys_done), (3, keys as u64));
    assert_eq!(last.keys_total, keys as u64);
    // Compacted: every commit of the copy is folded into its tree (only the marker
    // stream's current pages remain of the log).
    assert_eq!(check.log_commits, 0);
    assert_eq!(check.tree_keys, keys as u64 + 3);
    assert!(copy.info().unwrap().file_len <= db.info().unwrap().file_len);
}

#[test]
fn an_existing_target_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("src.db")).unwrap();
    let mut conn = db.connect();
    conn.run(|tx| {
        tx.create_table("t")?;
        tx.put("t", b"k", b"1")
    })
    .unwrap();
    let out = dir.path().join("out.db");
    std::fs::write(&out, b"precious").unwrap();
    let refused = db.backup_to(&out);
    assert!(
        matches!(refused, Err(Error::InvalidPath { .. })),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let own = db.backup_to_with(
        dir.path().join("src.db"),
        BackupOptions::new().overwrite(true),
    );
    assert!(matches!(own, Err(Error::InvalidPath { .. })), "{own:?}");
    // The same file under another name (here a hard link; a bind mount or a
    // case-folding directory does the same without a second link) is the database
    // too: it was compared by canonical path, which does not unify those.
    let alias = dir.path().join("alias.db");
    std::fs::hard_link(dir.path().join("src.db"), &alias).unwrap();
    let own = db.backup_to_with(&alias, BackupOptions::new().overwrite(true));
    assert!(matches!(own, Err(Error::InvalidPath { .. })), "{own:?}");
    std::fs::remove_file(&alias).unwrap();
    // Nor a name the open file was renamed to since it was opened.
    let moved = dir.path().join("moved.db");
    std::fs::rename(dir.path().join("src.db"), &moved).unwrap();
    let own = db.backup_to_with(&moved, BackupOptions::new().overwrite(true));
    assert!(matches!(own, Err(Error::InvalidPath { .. })), "{own:?}");
    std::fs::rename(&moved, dir.path().join("src.db")).unwrap();
    // The same through a read-only handle (the CLI's backup opens one).
    let ro = capsuledb::Options::new()
        .read_only(true)
        .open(dir.path().join("src.db"))
        .unwrap();
    std::fs::rename(dir.path().join("src.db"), &moved).unwrap();
    let own = ro.backup_to_with(&moved, BackupOptions::new().overwrite(true));
    assert!(matches!(own, Err(Error::InvalidPath { .. })), "{own:?}");
    std::fs::rename(&moved, dir.path().join("src.db")).unwrap();
    drop(ro);

    conn.run(|tx| tx.put("t", b"k", b"2")).unwrap();
    db.backup_to_with(&out, BackupOptions::new().overwrite(true))
        .unwrap();
    let copy = Database::open(&out).unwrap();
    let v = copy.connect().read(|tx| tx.get("t", b"k")).unwrap();
    assert_eq!(v.as_deref(), Some(&b"2"[..]));
    // No temporary file is left beside the target.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("backup"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// A backup has its source's permissions: a database only its owner may read was
/// copied to a file everyone could read (`0666` less the umask).
#[test]
fn a_backup_keeps_its_sources_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.db");
    let db = Database::open(&path).unwrap();
    db.connect()
        .run(|tx| {
            tx.create_table("t")?;
            tx.put("t", b"k", b"v")
        })
        .unwrap();
    for mode in [0o600, 0o640, 0o444, 0o400] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = dir.path().join(format!("copy-{mode:o}.db"));
        db.backup_to(&out).unwrap();
        let got = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "{mode:o}");
    }
}

/// Asked to overwrite, a backup does not replace a database another handle has open
/// read-write at the target: that writer's later commits, acknowledged, went to a file
/// no name reached, and its next open read the backup.
#[test]
fn overwrite_refuses_a_database_another_handle_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("src.db")).unwrap();
    db.connect()
        .run(|tx| {
            tx.create_table("t")?;
            tx.put("t", b"k", b"backup")
        })
        .unwrap();
    let other_path = dir.path().join("other.db");
    let other = Database::open(&other_path).unwrap();
    let mut conn = other.connect();
    conn.run(|tx| {
        tx.create_table("t")?;
        tx.put("t", b"k", b"live")
    })
    .unwrap();
    let refused = db.backup_to_with(&other_path, BackupOptions::new().overwrite(true));
    assert!(matches!(refused, Err(Error::Locked { .. })), "{refused:?}");
    conn.run(|tx| tx.put("t", b"k2", b"after")).unwrap();
    drop(conn);
    other.close().unwrap();
    let reopened = Database::open(&other_path).unwrap();
    let got = reopened
        .connect()
        .read(|tx| Ok::<_, Error>((tx.get("t", b"k")?, tx.get("t", b"k2")?)))
        .unwrap();
    assert_eq!(
        (got.0.as_deref(), got.1.as_deref()),
        (Some(&b"live"[..]), Some(&b"after"[..]))
    );
    drop(reopened);
    // Closed, it is replaced.
    db.backup_to_with(&other_path, BackupOptions::new().overwrite(true))
        .unwrap();
    let copy = Database::open(&other_path).unwrap();
    let v = copy.connect().read(|tx| tx.get("t", b"k")).unwrap();
    assert_eq!(v.as_deref(), Some(&b"backup"[..]));
}

/// A backup that must not overwrite never replaces a file made at its path while it
/// copied (it links the copy into place, which fails when the name exists; a rename
/// would have replaced it), and leaves no temporary file behind; two backups to one
/// path from two threads each write their own temporary file.
#[test]
fn a_file_made_at_the_path_during_a_backup_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("src.db")).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"k", b"v").unwrap();
    tx.commit().unwrap();
    let out = dir.path().join("copy.db");
    let made = out.clone();
    let result = db.backup_to_with(
        &out,
        BackupOptions::new().progress(move |_| {
            if !made.exists() {
                std::fs::write(&made, b"someone else's file").unwrap();
            }
        }),
    );
    assert!(
        matches!(result, Err(capsuledb::Error::InvalidPath { .. })),
        "{result:?}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"someone else's file");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".backup-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_file(&out).unwrap();
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| db.backup_to_with(&out, BackupOptions::new().overwrite(true))))
            .collect();
        for r in runs {
            r.join().unwrap().unwrap();
        }
    });
    let copy = Database::open(&out).unwrap();
    assert!(copy.check_integrity().unwrap().is_ok());
}

/// A database at `path` holding table `t` with `k` = `v`.
fn one_key(path: &std::path::Path) -> Database {
    let db = Database::open(path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"k", b"v").unwrap();
    tx.commit().unwrap();
    db
}

/// A read-only handle past damage (here a header copy damaged beyond repair, which may
/// have held a newer state) refuses to back up: the copy would check clean and hide
/// what was lost.
#[test]
fn a_backup_of_a_damaged_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.db");
    drop(one_key(&path));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[capsuledb::format::HEADER_COPY_OFFSETS[1] as usize + 50] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let db = Options::new().read_only(true).open(&path).unwrap();
    let out = dir.path().join("copy.db");
    // Named by the damaged copy's page (copy B: page 1 of 4 KiB pages; it said 0).
    let refused = db.backup_to(&out);
    assert!(
        matches!(refused, Err(Error::Corrupted { page: 1, .. })),
        "{refused:?}"
    );
    assert!(!out.exists());
}

/// A header copy damaged at rest under a running writer: the writer's backup was
/// refused as a read-only handle's is (the copy "may hold a newer state"), though the
/// writer wrote the current copy itself and reads its newest state, and until a header
/// write replaces the damaged copy a read-write open would refuse the file.
#[test]
fn a_writer_backs_up_past_a_header_copy_damaged_under_it() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.db");
    let db = one_key(&path);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let at = capsuledb::format::HEADER_COPY_OFFSETS[1] + 50;
    file.write_all_at(&[0xA5; 8], at).unwrap();
    file.sync_all().unwrap();
    assert!(db.info().unwrap().header_damage.is_some());
    let out = dir.path().join("copy.db");
    let report = db.backup_to(&out).unwrap();
    assert_eq!(report.keys, 1);
    let copy = Database::open(&out).unwrap();
    assert!(copy.check_integrity().unwrap().is_ok());
    let mut c = copy.connect();
    assert_eq!(
        c.begin_read().unwrap().get("t", b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

/// A backup's snapshot may hold commits acknowledged at `Applied` (sequenced, not yet
/// durable): the backup is renamed into place only once they are durable in the source,
/// so it never holds a commit the source could still lose.
#[test]
fn a_backup_holds_only_commits_durable_in_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("src.db")).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.commit().unwrap();
    for i in 0..50u32 {
        let mut tx = c.begin().unwrap();
        tx.put("t", &i.to_be_bytes(), b"v").unwrap();
        tx.commit_with(capsuledb::Durability::Applied).unwrap();
    }
    let report = db.backup_to(dir.path().join("copy.db")).unwrap();
    assert_eq!(report.keys, 50);
    assert!(
        db.stats().durable_seq >= report.seq,
        "the backup holds commit {} beyond the source's durable {}",
        report.seq,
        db.stats().durable_seq
    );
}

/// A target whose name is as long as a name may be (255 bytes) is backed up: the copy's
/// temporary name keeps only the start of it. Errors writing the copy carry the op
/// `BACKUP_COPY_OP`, told apart from this database's own; `before_placing` is called
/// once, before the copy is in place.
#[test]
fn a_target_with_the_longest_name_is_backed_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("src.db")).unwrap();
    db.connect()
        .run(|tx| {
            tx.create_table("t")?;
            tx.put("t", b"k", b"v")
        })
        .unwrap();
    let out = dir.path().join(format!("{}é.db", "b".repeat(250)));
    assert_eq!(out.file_name().unwrap().len(), 255);
    let placed_before = std::cell::RefCell::new(Vec::new());
    let options =
        BackupOptions::new().before_placing(|| placed_before.borrow_mut().push(out.exists()));
    assert_eq!(db.backup_to_with(&out, options).unwrap().keys, 1);
    assert_eq!(
        *placed_before.borrow(),
        [false],
        "called once, before placing"
    );
    let copy = Database::open(&out).unwrap();
    assert_eq!(
        copy.connect()
            .begin_read()
            .unwrap()
            .get("t", b"k")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");

    // A copy that cannot be written: its error says so.
    let err = db
        .backup_to(dir.path().join("no-such-dir").join("c.db"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { op, .. } if *op == capsuledb::BACKUP_COPY_OP),
        "{err:?}"
    );
}
