//! `capsuledb backup FILE OUT`: the copy is checked and holds the data; an existing OUT
//! is refused without --force and replaced with it; the source is left unchanged.

mod common;
use common::{fails, ok, s, sample};

#[test]
fn backup_writes_a_checked_copy_and_refuses_an_existing_target() {
    let (dir, db) = sample();
    let out = s(&dir.path().join("copy.db"));
    let before = std::fs::read(&db).unwrap();
    let printed = ok(&["backup", &db, &out]);
    assert!(
        printed.contains("1 tables") && printed.ends_with("check ok\n"),
        "{printed}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the source is not written"
    );
    assert_eq!(ok(&["get", &out, "t", "alice"]), "100\n");
    assert!(ok(&["check", &out]).starts_with("ok:"));

    let line = fails(&["backup", &db, &out], 1);
    assert!(line.contains("--force"), "{line}");
    ok(&["put", &db, "t", "alice", "7"]);
    ok(&["backup", &db, &out, "--force"]);
    assert_eq!(ok(&["get", &out, "t", "alice"]), "7\n");

    let missing = s(&dir.path().join("missing.db"));
    fails(&["backup", &missing, &s(&dir.path().join("x.db"))], 1);
    assert!(!dir.path().join("x.db").exists());
}

/// `--force` replaces a regular file only: never a device or a pipe.
#[test]
fn backup_never_replaces_a_special_file() {
    let (_dir, db) = common::sample();
    let err = fails(&["backup", &db, "/dev/null", "--force"], 1);
    assert!(err.contains("not a regular file"), "{err}");
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(!meta.is_file(), "/dev/null is still a device");
}

/// An output that cannot be written is named in the error as the output, not as "the
/// database file" (which reads as the input).
#[test]
fn an_output_that_cannot_be_written_is_named_as_the_output() {
    let (dir, db) = sample();
    let out = s(&dir.path().join("no-such-dir").join("copy.db"));
    for cmd in ["backup", "salvage"] {
        let err = fails(&[cmd, &db, &out], 1);
        assert!(err.contains(&out) && err.contains("(the output)"), "{err}");
    }
}

/// A backup ended by SIGTERM (or Ctrl-C's SIGINT) removes the copy it was writing
/// (`.OUT.backup-…` beside OUT), which was left behind for ever, and exits with 128 +
/// the signal's number.
#[test]
fn an_interrupted_backup_removes_its_copy() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.db");
    {
        let db = capsuledb::Database::open(&src).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        for i in 0..300_000u32 {
            tx.put("t", &i.to_be_bytes(), &[9u8; 100]).unwrap();
        }
        tx.commit().unwrap();
        db.close().unwrap();
    }
    let out = dir.path().join("copy.db");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_capsuledb"))
        .args(["backup", &s(&src), &s(&out)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let temps = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(".copy.db.backup-")
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut signalled = false;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if temps() > 0 {
            let pid = i32::try_from(child.id()).unwrap();
            // SAFETY: sends a signal to the child this test started and still waits for.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
            signalled = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let status = child.wait().unwrap();
    if signalled {
        // The signal may come as the backup finishes: then it ends with success.
        assert!(
            status.code() == Some(128 + libc::SIGTERM) || status.success(),
            "{status:?}"
        );
    }
    assert_eq!(temps(), 0, "the backup's copy is left behind");
}
