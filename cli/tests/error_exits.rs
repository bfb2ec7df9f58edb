//! Every failure exits non-zero with one `capsuledb: ...` line on stderr.

mod common;
use common::{db_in, fails, ok, run, s, sample};

#[test]
fn missing_key_is_an_error() {
    let (_dir, db) = sample();
    let line = fails(&["get", &db, "t", "nobody"], 1);
    assert!(line.contains("not found"), "{line}");
    let line = fails(&["delete", &db, "t", "nobody"], 1);
    assert!(line.contains("not found"), "{line}");
}

#[test]
fn missing_table_is_an_error() {
    let (_dir, db) = sample();
    for args in [
        vec!["get", &db, "nosuch", "k"],
        vec!["put", &db, "nosuch", "k", "v"],
        vec!["delete", &db, "nosuch", "k"],
        vec!["scan", &db, "nosuch"],
        vec!["dump", &db, "nosuch"],
    ] {
        let line = fails(&args, 1);
        assert!(line.contains("\"nosuch\" does not exist"), "{line}");
    }
}

#[test]
fn missing_file_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = s(&db_in(&dir));
    for args in [
        vec!["tables", &db],
        vec!["get", &db, "t", "k"],
        vec!["put", &db, "t", "k", "v"],
        vec!["delete", &db, "t", "k"],
        vec!["scan", &db, "t"],
        vec!["dump", &db, "t"],
    ] {
        let line = fails(&args, 1);
        assert!(line.contains("no such database file"), "{line}");
    }
    assert!(!db_in(&dir).exists());
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    std::fs::write(&path, b"not a database").unwrap();
    let line = fails(&["tables", &s(&path)], 1);
    assert!(line.contains("not a capsuledb database"), "{line}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a database");
}

#[test]
fn bad_hex_is_an_error() {
    let (_dir, db) = sample();
    for args in [
        vec!["get", "--hex", &db, "t", "zz"],
        vec!["get", "--hex", &db, "t", "abc"],
        vec!["put", "--hex", &db, "t", "00", "xyz"],
        vec!["scan", "--hex", &db, "t", "--from", "0g"],
    ] {
        let line = fails(&args, 1);
        assert!(line.contains("bad hex"), "{line}");
    }
}

#[test]
fn binary_output_without_hex_is_an_error() {
    let (_dir, db) = sample();
    ok(&["put", "--hex", &db, "t", "61", "ff"]);
    let line = fails(&["get", &db, "t", "a"], 1);
    assert!(line.contains("use --hex"), "{line}");
}

#[test]
fn bad_command_lines_exit_2_on_one_line() {
    let (_dir, db) = sample();
    fails(&["frobnicate"], 2);
    fails(&["get", &db], 2);
    fails(&["scan", &db, "t", "--limit", "many"], 2);
    fails(&["bench", "--threads", "0"], 2);
    fails(&["bench", "--seconds-per-phase", "-1"], 2);
    fails(&["dump", &db, "t", "--format", "xml"], 2);
}

#[test]
fn help_and_version_succeed() {
    assert!(ok(&["--help"]).contains("bench"));
    assert!(ok(&["bench", "--help"]).contains("--seconds-per-phase"));
    assert!(ok(&["--version"]).starts_with("capsuledb "));
    assert_eq!(run(&["help", "scan"]).code, 0);
}

#[test]
fn a_state_outside_the_history_window_is_one_clear_line() {
    let (_dir, db) = sample();
    let err = fails(&["get", &db, "t", "alice", "--at", "999999"], 1);
    assert!(err.contains("history window"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Every command that must refuse a file that holds no database (all but `put
/// --create`) fails on the file at `path`, and leaves its bytes as they were.
fn every_command_refuses_and_leaves_alone(path: &std::path::Path) {
    let before = std::fs::read(path).unwrap();
    let db = s(path);
    for args in [
        vec!["put", &db, "t", "k", "v"],
        vec!["delete", &db, "t", "k"],
        vec!["compact", &db],
        vec!["get", &db, "t", "k"],
        vec!["scan", &db, "t"],
        vec!["check", &db],
    ] {
        fails(&args, 1);
        assert_eq!(std::fs::read(path).unwrap(), before, "{args:?}");
    }
}

/// An empty file is no database: every command but `put --create` refuses it and leaves
/// it empty (the library would make it a database, left behind by a command that then
/// fails on a missing table).
#[test]
fn an_empty_file_is_refused_and_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    std::fs::write(&path, b"").unwrap();
    every_command_refuses_and_leaves_alone(&path);
    let db = s(&path);
    ok(&["put", "--create", &db, "t", "k", "v"]);
    assert_eq!(ok(&["get", &db, "t", "k"]), "v\n");
}

/// A short file of zero bytes (which the library takes for a creation a crash cut
/// short, and creates over) is refused by every command but `put --create`, and left
/// as it was.
#[test]
fn a_short_file_of_zeros_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    every_command_refuses_and_leaves_alone(&path);
    // And what a crash during creation most likely leaves: the first marker page's
    // header written (before either header copy), the rest zeros. `compact` made a
    // database of it and said so, `put` and `delete` left one made.
    let mut bytes = vec![0u8; 16384];
    bytes[8192] = 1;
    std::fs::write(&path, &bytes).unwrap();
    every_command_refuses_and_leaves_alone(&path);
}

/// `put --create` that fails (a key over the limit, an empty table name) leaves no new
/// database behind; an existing one stays.
#[test]
fn a_failed_put_create_leaves_no_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let db = s(&path);
    let long = "k".repeat(3000);
    let line = fails(&["put", "--create", &db, "t", &long, "v"], 1);
    assert!(line.contains("3000"), "{line}");
    assert!(!path.exists(), "a failed put --create left {db}");
    fails(&["put", "--create", &db, "", "k", "v"], 1);
    assert!(!path.exists());
    ok(&["put", "--create", &db, "t", "k", "v"]);
    fails(&["put", "--create", &db, "t", &long, "v"], 1);
    assert!(path.exists(), "an existing database stays");
}

/// A dangling symbolic link at OUT is there already: salvage refuses it before it
/// starts (it followed the link, ran to the end, and then said OUT was made while it
/// ran), and leaves the link alone.
#[test]
fn salvage_refuses_a_dangling_link_at_its_output() {
    let (dir, db) = sample();
    let out = dir.path().join("out.db");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &out).unwrap();
    let line = fails(&["salvage", &db, &s(&out)], 1);
    assert!(line.contains("already exists"), "{line}");
    assert!(out.symlink_metadata().unwrap().file_type().is_symlink());
    assert!(!dir.path().join("nowhere").exists());
}
