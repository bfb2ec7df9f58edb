//! A file written by a format-version-3 build, whose tree leaves hold whole keys
//! (`format-spec/btree.md`, "Leaf page of version 3 and earlier"), opens, reads every
//! key by point reads and by scans both ways, is upgraded to the current version by its
//! first header write, and keeps reading right once a checkpoint rewrites one table's leaves
//! as compact leaves (`kind = 8`) while the other table's stay as they were.
//!
//! `tests/fixtures/v3-leaves.db` was written by the build at commit 30cc60a: one commit
//! creates tables `a` and `b`, puts keys `0..300` (4-byte big-endian) into `a` and
//! `0..200` into `b` with the values [`value`] gives (key 100 of `b` is a 3000-byte value,
//! in an overflow run), then a checkpoint. The file was 1,064,960 bytes; the fixture
//! keeps its first 86,016, and everything after them was zero, which `restore_fixture`
//! puts back.

mod leaf_support;

use capsuledb::format::FORMAT_VERSION;
use capsuledb::{Database, Options};
use leaf_support::{TwoTables, assert_table, page_kinds, restore_fixture, two_tables};
use std::ops::Bound;

const FIXTURE: &[u8] = include_bytes!("fixtures/v3-leaves.db");
const FILE_LEN: u64 = 1_064_960;

fn value(t: u8, k: u32) -> Vec<u8> {
    if t == b'b' && k == 100 {
        return vec![0xB0; 3000];
    }
    let len = if t == b'a' { 20 + k % 17 } else { 10 + k % 5 };
    vec![(k as u8).wrapping_mul(if t == b'a' { 1 } else { 7 }); len as usize]
}

fn model() -> TwoTables {
    two_tables(300, 200, value)
}

/// Every key of both tables read back by point reads, forward and reverse scans, and a
/// range scan from the middle.
fn assert_reads(db: &Database, want: &TwoTables) {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    for t in [b'a', b'b'] {
        let name = (t as char).to_string();
        let table = assert_table(&tx, want, t, 999);
        let reverse: Vec<Vec<u8>> = tx
            .range::<&[u8], _>(&name, ..)
            .unwrap()
            .rev()
            .map(|r| r.unwrap().0)
            .collect();
        let want_rev: Vec<Vec<u8>> = table.iter().rev().map(|(k, _)| k.clone()).collect();
        assert_eq!(reverse, want_rev, "reverse scan of {name}");
        let from = 150u32.to_be_bytes();
        let mid: Vec<Vec<u8>> = tx
            .range::<&[u8], _>(&name, (Bound::Included(&from[..]), Bound::Unbounded))
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        let want_mid: Vec<Vec<u8>> = table
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k.as_slice() >= &from[..])
            .collect();
        assert_eq!(mid, want_mid, "range of {name}");
    }
}

#[test]
fn a_version_3_file_reads_upgrades_and_mixes_leaf_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    restore_fixture(&path, FIXTURE, FILE_LEN);
    let mut want = model();

    // Read-only: nothing is written, the version stays 3.
    let before = std::fs::read(&path).unwrap();
    let ro = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(ro.info().unwrap().format_version, 3);
    assert_reads(&ro, &want);
    let report = ro.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    drop(ro);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a read-only open wrote"
    );

    // Read-write: upgraded, and everything still reads right.
    let db = Database::open(&path).unwrap();
    assert_eq!(db.info().unwrap().format_version, FORMAT_VERSION);
    assert_reads(&db, &want);

    // Rewrite some of table b's leaves (compact now); table a's stay as written.
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for k in (0u32..200).step_by(40) {
        tx.put("b", &k.to_be_bytes(), b"later").unwrap();
        want.insert((b'b', k.to_be_bytes().to_vec()), b"later".to_vec());
    }
    tx.delete("b", &100u32.to_be_bytes()).unwrap();
    want.remove(&(b'b', 100u32.to_be_bytes().to_vec()));
    tx.put("b", &500u32.to_be_bytes(), &[7; 5000]).unwrap();
    want.insert((b'b', 500u32.to_be_bytes().to_vec()), vec![7; 5000]);
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    assert_reads(&db, &want);
    drop(c);
    drop(db);

    let kinds = page_kinds(&std::fs::read(&path).unwrap());
    assert!(kinds.contains(&8), "the checkpoint wrote compact leaves");

    let db = Database::open(&path).unwrap();
    assert_reads(&db, &want);
    let report = db.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // A checkpoint that touches every leaf leaves no version-3 leaf reachable.
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for k in 0u32..300 {
        tx.put("a", &k.to_be_bytes(), b"all").unwrap();
        want.insert((b'a', k.to_be_bytes().to_vec()), b"all".to_vec());
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    assert_reads(&db, &want);
    let report = db.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
