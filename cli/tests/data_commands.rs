//! The data subcommands' success paths: put, get, tables, scan, dump, delete, info.

mod common;
use common::{ok, sample};

#[test]
fn put_then_get_prints_the_value() {
    let (_dir, db) = sample();
    assert_eq!(ok(&["get", &db, "t", "alice"]), "100\n");
    ok(&["put", &db, "t", "alice", "101"]);
    assert_eq!(ok(&["get", &db, "t", "alice"]), "101\n");
}

#[test]
fn put_create_adds_a_table_to_an_existing_file() {
    let (_dir, db) = sample();
    ok(&["put", "--create", &db, "other", "k", "v"]);
    assert_eq!(ok(&["tables", &db]), "other\nt\n");
}

#[test]
fn hyphenated_keys_and_values_are_data() {
    let (_dir, db) = sample();
    ok(&["put", &db, "t", "-k", "-v"]);
    assert_eq!(ok(&["get", &db, "t", "-k"]), "-v\n");
}

#[test]
fn hex_round_trips_binary_keys_and_values() {
    let (_dir, db) = sample();
    ok(&["put", "--hex", &db, "t", "00ff", "0x01FE"]);
    assert_eq!(ok(&["get", &db, "t", "00ff", "--hex"]), "01fe\n");
    assert_eq!(ok(&["get", "--hex", &db, "t", "616c696365"]), "313030\n");
}

#[test]
fn scan_prints_ranges_in_order() {
    let (_dir, db) = sample();
    ok(&["put", &db, "t", "carol", "300"]);
    assert_eq!(
        ok(&["scan", &db, "t"]),
        "alice\t100\nbob\t200\ncarol\t300\n"
    );
    assert_eq!(
        ok(&["scan", &db, "t", "--from", "b", "--to", "c"]),
        "bob\t200\n"
    );
    assert_eq!(
        ok(&["scan", &db, "t", "--reverse", "--limit", "2"]),
        "carol\t300\nbob\t200\n"
    );
    assert_eq!(ok(&["scan", &db, "t", "--from", "z"]), "");
    assert_eq!(
        ok(&["scan", "--hex", &db, "t", "--to", "62"]),
        "616c696365\t313030\n"
    );
    // A bound starting with `-` is a key, not an option (it was a usage error).
    ok(&["put", &db, "t", "--", "-k", "neg"]);
    assert_eq!(
        ok(&["scan", &db, "t", "--from", "-k", "--to", "-l"]),
        "-k\tneg\n"
    );
}

#[test]
fn dump_writes_jsonl_and_hex() {
    let (_dir, db) = sample();
    ok(&["put", "--hex", &db, "t", "ff", "00"]);
    let jsonl = ok(&["dump", &db, "t"]);
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["key"], "alice");
    assert_eq!(rows[0]["value"], "100");
    assert_eq!(rows[2]["key_hex"], "ff");
    assert_eq!(rows[2]["value"], "\u{0}");
    let hex = ok(&["dump", &db, "t", "--format", "hex"]);
    assert_eq!(hex, "616c696365 313030\n626f62 323030\nff 00\n");
    let all_hex = ok(&["dump", "--hex", &db, "t"]);
    assert!(all_hex.starts_with("{\"key_hex\":\"616c696365\",\"value_hex\":\"313030\"}\n"));
}

#[test]
fn delete_removes_the_key() {
    let (_dir, db) = sample();
    ok(&["delete", &db, "t", "alice"]);
    assert_eq!(ok(&["scan", &db, "t"]), "bob\t200\n");
}

#[test]
fn info_shows_header_and_counters() {
    let (_dir, db) = sample();
    let out = ok(&["info", &db]);
    for field in [
        "format version",
        "page size          4096 bytes",
        "last commit seq    2",
        "durable seq        2",
        "recovered commits  2",
        "history index",
        "free pages",
        "high-water page",
    ] {
        assert!(out.contains(field), "{field} missing from:\n{out}");
    }
}

#[test]
fn info_never_creates_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::s(&common::db_in(&dir));
    assert!(common::fails(&["info", &db], 1).contains("no such database file"));
    assert!(!std::path::Path::new(&db).exists());
}

#[test]
fn get_and_scan_read_a_past_state_with_at() {
    let (_dir, db) = sample();
    let info = ok(&["info", &db]);
    let seq: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("last commit seq"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(info.contains("history window"), "{info}");
    ok(&["put", &db, "t", "alice", "101"]);
    ok(&["delete", &db, "t", "bob"]);
    assert_eq!(
        ok(&["get", &db, "t", "alice", "--at", &seq.to_string()]),
        "100\n"
    );
    assert_eq!(ok(&["get", &db, "t", "alice"]), "101\n");
    assert_eq!(
        ok(&["scan", &db, "t", "--at", &seq.to_string()]),
        "alice\t100\nbob\t200\n"
    );
    assert_eq!(ok(&["scan", &db, "t"]), "alice\t101\n");
}

/// A key or value holding a tab or a line break cannot be printed as a `key<TAB>value`
/// line that splits back: `scan` refuses it in text and prints it with --hex.
#[test]
fn scan_refuses_tabs_and_line_breaks_in_text_and_prints_them_in_hex() {
    let (_dir, db) = sample();
    ok(&["put", &db, "t", "a\tb", "x"]);
    let err = common::fails(&["scan", &db, "t"], 1);
    assert!(
        err.contains("tab or a line break") && err.contains("--hex"),
        "{err}"
    );
    ok(&["delete", &db, "t", "a\tb"]);
    ok(&["put", &db, "t", "alice", "1\n2"]);
    let err = common::fails(&["scan", &db, "t", "--to", "b"], 1);
    assert!(err.contains("value") && err.contains("--hex"), "{err}");
    assert_eq!(
        ok(&["scan", "--hex", &db, "t", "--to", "62"]),
        "616c696365\t310a32\n"
    );
}

/// A table name with a line break is listed quoted and escaped (it read as two names),
/// and a key spelled like an option goes after `--` (`-h` printed the help and exited 0
/// with nothing written).
#[test]
fn odd_names_and_keys_are_listed_and_taken_unambiguously() {
    let (_dir, db) = sample();
    ok(&["put", "--create", &db, "a\nb", "k", "v"]);
    let listed = ok(&["tables", &db]);
    assert!(listed.lines().any(|l| l == "\"a\\nb\""), "{listed}");
    assert!(!listed.lines().any(|l| l == "a" || l == "b"), "{listed}");
    ok(&["put", &db, "a\nb", "--", "-h", "--help"]);
    assert_eq!(ok(&["get", &db, "a\nb", "--", "-h"]).trim_end(), "--help");
}
