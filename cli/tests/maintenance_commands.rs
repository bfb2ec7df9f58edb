//! `check` and `compact` through the built binary, including their error exits.

mod common;
use common::{fails, ok, sample};

#[test]
fn check_reports_a_sound_database() {
    let (_dir, db) = sample();
    let out = ok(&["check", &db]);
    assert!(out.starts_with("ok:"), "{out}");
}

#[test]
fn compact_checkpoints_and_keeps_the_data() {
    let (_dir, db) = sample();
    let big = "x".repeat(3000);
    for i in 0..40 {
        ok(&["put", &db, "t", &format!("k{i}"), &big]);
    }
    let out = ok(&["compact", &db]);
    assert!(out.starts_with("compacted:"), "{out}");
    assert_eq!(ok(&["get", &db, "t", "alice"]), "100\n");
    assert_eq!(ok(&["get", &db, "t", "k7"]), format!("{big}\n"));
    let info = ok(&["info", &db]);
    assert!(info.contains("log since checkpoint 0 commits"), "{info}");
    assert!(ok(&["check", &db]).starts_with("ok:"));
}

#[test]
fn check_finds_a_damaged_tree_page_and_exits_non_zero() {
    let (dir, db) = sample();
    ok(&["compact", &db]);
    // Flip a byte in every data page after the header region and the first marker
    // page pair: the tree's pages fail their checksums.
    let path = dir.path().join("test.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let pages = bytes.len() / 4096;
    for p in 4..pages {
        bytes[p * 4096 + 100] ^= 0x55;
    }
    std::fs::write(&path, &bytes).unwrap();
    let line = fails(&["check", &db], 1);
    assert!(
        line.contains("corrupted") || line.contains("problems"),
        "{line}"
    );
}

#[test]
fn check_and_compact_refuse_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    let missing = missing.to_str().unwrap();
    assert!(fails(&["check", missing], 1).contains("no such database file"));
    assert!(fails(&["compact", missing], 1).contains("no such database file"));
}
