//! A file written by a format-version-6 build, whose leaves are all compact (kind 8) even
//! where their cells have one size, opens and reads, is upgraded to the current version by
//! its first header write, and keeps reading right once checkpoints rewrite some of its
//! leaves as uniform leaves (kind 9, `format-spec/btree.md`, "Uniform leaf") beside the
//! compact ones, then all of them.
//!
//! `tests/fixtures/v6-compact-leaves.db` was written by the build at commit 5219bbf: one
//! commit creates tables `a` and `b`, puts keys `0..2000` (4-byte big-endian) into `a`
//! with 8-byte values and `0..200` into `b` with values of 10 to 14 bytes ([`value`]),
//! then a checkpoint and a close. The file was 1,064,960 bytes; the fixture keeps its
//! first 147,456, and everything after them was zero, which `restore_fixture` puts back.

mod leaf_support;

use capsuledb::format::FORMAT_VERSION;
use capsuledb::{Database, Options};
use leaf_support::{
    TwoTables, assert_table, page_kinds, restore_fixture, scan_all_reversed, two_tables,
};

const FIXTURE: &[u8] = include_bytes!("fixtures/v6-compact-leaves.db");
const FILE_LEN: u64 = 1_064_960;

fn value(t: u8, k: u32) -> Vec<u8> {
    if t == b'a' {
        return (u64::from(k) * 31).to_le_bytes().to_vec();
    }
    vec![(k as u8).wrapping_mul(7); 10 + k as usize % 5]
}

fn model() -> TwoTables {
    two_tables(2000, 200, value)
}

/// Every key of both tables by point reads and by scans both ways, and the integrity
/// report.
fn assert_reads(db: &Database, want: &TwoTables) {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    for t in [b'a', b'b'] {
        let name = (t as char).to_string();
        let table = assert_table(&tx, want, t, 9999);
        assert_eq!(
            scan_all_reversed(&tx, &name),
            table,
            "reverse scan of {name}"
        );
    }
    let report = db.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// How many pages of the file at `path` have each of the kind bytes 8 and 9 (compact
/// and uniform leaves; free pages may still hold old ones).
fn leaf_kinds(path: &std::path::Path) -> (usize, usize) {
    let kinds = page_kinds(&std::fs::read(path).unwrap());
    (
        kinds.iter().filter(|&&k| k == 8).count(),
        kinds.iter().filter(|&&k| k == 9).count(),
    )
}

#[test]
fn a_version_6_file_reads_upgrades_and_mixes_compact_and_uniform_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    restore_fixture(&path, FIXTURE, FILE_LEN);
    let mut want = model();
    assert_eq!(
        leaf_kinds(&path).1,
        0,
        "a version-6 file has no uniform leaf"
    );

    // Read-only: nothing is written, the version stays 6.
    let before = std::fs::read(&path).unwrap();
    let ro = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(ro.info().unwrap().format_version, 6);
    assert_reads(&ro, &want);
    drop(ro);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a read-only open wrote"
    );

    // Read-write: upgraded, and everything still reads right.
    let db = Database::open(&path).unwrap();
    assert_eq!(db.info().unwrap().format_version, FORMAT_VERSION);
    assert_reads(&db, &want);

    // Rewrite the first quarter of table a: its new leaves are uniform, the rest of a's
    // leaves stay compact.
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for k in 0u32..500 {
        let v = (u64::from(k) + 1).to_le_bytes();
        tx.put("a", &k.to_be_bytes(), &v).unwrap();
        want.insert((b'a', k.to_be_bytes().to_vec()), v.to_vec());
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    assert_reads(&db, &want);
    drop(c);
    drop(db);
    let (compact, uniform) = leaf_kinds(&path);
    assert!(
        compact > 0 && uniform > 0,
        "{compact} compact, {uniform} uniform"
    );

    let db = Database::open(&path).unwrap();
    assert_reads(&db, &want);

    // Every key of a rewritten: a's leaves are all uniform now; b's values of several
    // lengths keep compact leaves.
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for k in 0u32..2000 {
        tx.put("a", &k.to_be_bytes(), b"all-of-a").unwrap();
        want.insert((b'a', k.to_be_bytes().to_vec()), b"all-of-a".to_vec());
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    assert_reads(&db, &want);
    db.compact().unwrap();
    assert_reads(&db, &want);
}
