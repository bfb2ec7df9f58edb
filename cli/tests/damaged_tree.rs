//! A damaged tree page through the binary: `check` names it, and `salvage` copies every
//! key but the damaged leaf's, says which keys were lost and from which page, and writes
//! a file that checks clean.

mod common;
use common::{db_in, ok, s};

const PAGE: usize = 4096;
const KEYS: usize = 3000;

fn value(i: usize) -> String {
    format!("value {i:05};").repeat(3)
}

#[test]
fn a_damaged_leaf_is_passed_over_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = s(&db_in(&dir));
    {
        let d = capsuledb::Database::open(&db).unwrap();
        let mut c = d.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        for i in 0..KEYS {
            tx.put("t", format!("k{i:05}").as_bytes(), value(i).as_bytes())
                .unwrap();
        }
        tx.commit().unwrap();
        d.checkpoint().unwrap();
        d.compact().unwrap();
        drop(c);
        d.close().unwrap();
    }
    // The leaf holding key 1500's value: found by its bytes, damaged past them.
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = value(1500);
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("the value is in the file");
    let page = at / PAGE;
    bytes[page * PAGE + PAGE - 100] ^= 0x40;
    std::fs::write(&db, &bytes).unwrap();

    let out = common::run(&["check", &db]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("page {page}")),
        "{}",
        out.stdout
    );

    let out_db = s(&dir.path().join("salvaged.db"));
    let report = ok(&["salvage", &db, &out_db]);
    assert!(report.contains("lost: table t, keys from \"k"), "{report}");
    assert!(
        report.contains(&format!("(damaged tree page {page}:")),
        "{report}"
    );
    assert!(ok(&["check", &out_db]).starts_with("ok:"));
    let scanned = ok(&["scan", &out_db, "t"]);
    let kept: Vec<&str> = scanned.lines().collect();
    assert!(
        kept.len() < KEYS && kept.len() > KEYS - 200,
        "one leaf's keys lost: {} kept",
        kept.len()
    );
    assert!(
        !kept.iter().any(|l| l.starts_with("k01500\t")),
        "the damaged leaf's key is not copied"
    );
    for line in &kept {
        let (k, v) = line.split_once('\t').unwrap();
        let i: usize = k[1..].parse().unwrap();
        assert_eq!(v, value(i), "a copied value is the committed one");
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "salvage never modifies IN"
    );
}

/// A damaged catalog page loses table names, not tables: `salvage` copies every table
/// whose name it can read under that name and every other one it finds by its keys as
/// `lost-table-<id>`, and says so.
#[test]
fn tables_whose_names_were_lost_are_copied_under_new_names() {
    const TABLES: usize = 300;
    let name = |i: usize| format!("table-{i:04}-{}", "n".repeat(60));
    let dir = tempfile::tempdir().unwrap();
    let db = s(&db_in(&dir));
    {
        let d = capsuledb::Database::open(&db).unwrap();
        let mut c = d.connect();
        let mut tx = c.begin().unwrap();
        for i in 0..TABLES {
            tx.create_table(&name(i)).unwrap();
            tx.put(&name(i), b"k", format!("v{i}").as_bytes()).unwrap();
        }
        tx.commit().unwrap();
        d.checkpoint().unwrap();
        drop(c);
        d.close().unwrap();
    }
    // The catalog leaf holding table 150's name: found by its bytes, damaged past them.
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = name(150);
    // (The first tree leaf holding it, not a log page of the commit that made it.)
    let page = bytes
        .chunks_exact(PAGE)
        .enumerate()
        .position(|(p, b)| {
            matches!(b[4], 5 | 8 | 9)
                && b[8..16] == (p as u64).to_le_bytes()
                && b.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .expect("a leaf holds the name");
    bytes[page * PAGE + PAGE / 2] ^= 0x40;
    std::fs::write(&db, &bytes).unwrap();

    let out_db = s(&dir.path().join("salvaged.db"));
    let report = ok(&["salvage", &db, &out_db]);
    assert!(
        report.contains(&format!("(damaged catalog page {page}:")),
        "{report}"
    );
    let found = report.lines().filter(|l| l.starts_with("found: ")).count();
    assert!(found > 0, "{report}");
    assert!(
        report.contains(&format!("salvaged {TABLES} tables, {TABLES} keys")),
        "{report}"
    );
    let listed = ok(&["tables", &out_db]);
    let lost: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("lost-table-"))
        .collect();
    assert_eq!(lost.len(), found, "{listed}");
    // Every value comes out once, under its own name or a lost table's.
    let mut values = Vec::new();
    for line in listed.lines() {
        let table = line.split_whitespace().next().unwrap();
        let scanned = ok(&["scan", &out_db, table]);
        let (k, v) = scanned.trim_end().split_once('\t').unwrap();
        assert_eq!(k, "k");
        if let Some(i) = table.strip_prefix("table-") {
            assert_eq!(v, format!("v{}", i[..4].parse::<usize>().unwrap()));
        }
        values.push(v[1..].parse::<usize>().unwrap());
    }
    values.sort_unstable();
    assert_eq!(values, (0..TABLES).collect::<Vec<_>>());
}

/// A catalog entry whose value names no table (a crafted file, its page's checksum
/// rewritten): `salvage` loses that name, copies the other tables, and finds the table
/// by its keys. The listing read the names alone, and the copy stopped at that name
/// with nothing written.
#[test]
fn a_catalog_value_that_names_no_table_loses_only_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = s(&db_in(&dir));
    {
        let d = capsuledb::Database::open(&db).unwrap();
        let mut c = d.connect();
        let mut tx = c.begin().unwrap();
        for i in 1..=5u8 {
            let name = format!("crafted-table-{i}");
            tx.create_table(&name).unwrap();
            tx.put(&name, b"k", &[i]).unwrap();
        }
        tx.commit().unwrap();
        d.checkpoint().unwrap();
        drop(c);
        d.close().unwrap();
    }
    // The catalog's leaf: table 3's id (3) becomes 0, the catalog's own.
    let mut bytes = std::fs::read(&db).unwrap();
    let p = bytes
        .chunks_exact(PAGE)
        .enumerate()
        .position(|(p, b)| {
            matches!(b[4], 8 | 9)
                && b[8..16] == (p as u64).to_le_bytes()
                && b.windows(15).any(|w| w == b"crafted-table-1")
        })
        .expect("the catalog's leaf");
    let page = &mut bytes[p * PAGE..(p + 1) * PAGE];
    let at: Vec<usize> = (16..PAGE - 8)
        .filter(|&i| page[i..i + 8] == 3u64.to_le_bytes())
        .collect();
    let [at] = at[..] else {
        panic!("the id 3 is at {at:?}")
    };
    page[at..at + 8].fill(0);
    let sum = crc32fast::hash(&page[4..]);
    page[..4].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&db, &bytes).unwrap();

    let out_db = s(&dir.path().join("salvaged.db"));
    let report = ok(&["salvage", &db, &out_db]);
    assert!(report.contains("salvaged 5 tables"), "{report}");
    assert!(
        report.contains("lost: the name \"crafted-table-3\""),
        "{report}"
    );
    assert!(report.contains("copied as lost-table-3"), "{report}");
}
