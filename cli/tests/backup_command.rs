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
