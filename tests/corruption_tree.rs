//! Bit flips in the checkpointed state (B+tree leaves, compact and uniform, and branches,
//! overflow extents, the free list, the header) end in correct data or a typed error,
//! never a wrong value and never a panic. Every bit of every such page of a small
//! database is flipped.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Error, Options};
use std::collections::BTreeMap;
use std::sync::Arc;

const PAGE: usize = 4096;

fn open(bytes: Vec<u8>) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(1)
        .open_storage(Arc::new(SimStorage::from_bytes(bytes)))
}

/// Pairs of table `u`: 4-byte keys and 12-byte values, cells of one size (uniform
/// leaves).
const UNIFORM_PAIRS: u32 = 400;

fn uniform_value(i: u32) -> Vec<u8> {
    (0..12).map(|j| (i * 7 + j) as u8).collect()
}

/// A small database whose data lives only in the tree, and the contents of its table
/// `t` (table `u` holds [`UNIFORM_PAIRS`] pairs of [`uniform_value`]s).
fn build() -> (Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>) {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(1)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut model = BTreeMap::new();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..300u32 {
        let len = if i % 50 == 0 {
            3000
        } else {
            20 + (i as usize % 40)
        };
        let v: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
        tx.put("t", &i.to_be_bytes(), &v).unwrap();
        model.insert(i.to_be_bytes().to_vec(), v);
    }
    tx.create_table("u").unwrap();
    for i in 0..UNIFORM_PAIRS {
        tx.put("u", &i.to_be_bytes(), &uniform_value(i)).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    db.compact().unwrap();
    assert_eq!(db.stats().versions, 0, "everything is in the tree");
    drop(c);
    db.close().unwrap();
    sim.crash_losing_unsynced();
    (sim.live_bytes(), model)
}

enum Outcome {
    Correct,
    TypedError,
}

fn read_all(db: &Database, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> capsuledb::Result<()> {
    let mut c = db.connect();
    let tx = c.begin_read()?;
    let mut scanned = BTreeMap::new();
    for item in tx.iter("t")? {
        let (k, v) = item?;
        scanned.insert(k, v.to_vec());
    }
    assert_eq!(
        &scanned, model,
        "a scan returned data that was never committed"
    );
    for (k, v) in model {
        let got = tx.get("t", k)?;
        assert_eq!(got.as_ref(), Some(v), "a get returned a wrong value");
    }
    let mut n = 0u32;
    for item in tx.iter("u")? {
        let (k, v) = item?;
        assert_eq!(
            (&k[..], &v[..]),
            (&n.to_be_bytes()[..], &uniform_value(n)[..]),
            "a scan of the uniform leaves returned data that was never committed"
        );
        n += 1;
    }
    assert_eq!(n, UNIFORM_PAIRS, "a scan of the uniform leaves lost pairs");
    for i in (0..UNIFORM_PAIRS).step_by(7) {
        let got = tx.get("u", &i.to_be_bytes())?;
        assert_eq!(
            got.as_deref(),
            Some(&uniform_value(i)[..]),
            "a get returned a wrong value"
        );
    }
    Ok(())
}

fn case(bytes: &[u8], offset: usize, bit: u8, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Outcome {
    let mut copy = bytes.to_vec();
    copy[offset] ^= 1 << bit;
    let db = match open(copy) {
        Ok(db) => db,
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::Corrupted { .. }
                        | Error::NotADatabase { .. }
                        | Error::Truncated { .. }
                        | Error::UnsupportedVersion { .. }
                ),
                "offset {offset} bit {bit}: untyped open error {e}"
            );
            return Outcome::TypedError;
        }
    };
    match read_all(&db, model) {
        Ok(()) => Outcome::Correct,
        Err(Error::Corrupted { .. }) => Outcome::TypedError,
        Err(e) => panic!("offset {offset} bit {bit}: unexpected error {e}"),
    }
}

#[test]
fn every_bit_of_the_checkpointed_state() {
    let (bytes, model) = build();
    // The pages that hold the checkpointed state: header region, tree, overflow and
    // free-list pages (kind bytes 4 to 9 at offset 4 of a page's first sector, all but
    // the version-3 leaf's 5 written).
    let mut offsets: Vec<usize> = (0..128).chain(4096..4096 + 128).collect();
    let pages = bytes.len() / PAGE;
    let mut kinds = BTreeMap::new();
    let mut extents = 0;
    // The 3,000-byte values, whose overflow extents have no page header: found by
    // their first bytes.
    let extent_starts: Vec<Vec<u8>> = model
        .values()
        .filter(|v| v.len() == 3000)
        .map(|v| v[..32].to_vec())
        .collect();
    for p in 2..pages {
        let kind = bytes[p * PAGE + 4];
        if (4..=9).contains(&kind) && bytes[p * PAGE + 8..p * PAGE + 16] == (p as u64).to_le_bytes()
        {
            *kinds.entry(kind).or_insert(0) += 1;
            offsets.extend(p * PAGE..(p + 1) * PAGE);
        } else if extent_starts
            .iter()
            .any(|s| bytes[p * PAGE..p * PAGE + 32] == s[..])
        {
            extents += 1;
            offsets.extend(p * PAGE..(p + 1) * PAGE);
        }
    }
    assert_eq!(
        extents,
        extent_starts.len(),
        "every large value in an extent"
    );
    assert!(kinds.contains_key(&4), "a tree of several pages: {kinds:?}");
    assert!(
        kinds.contains_key(&8) && kinds.contains_key(&9),
        "compact and uniform leaves: {kinds:?}"
    );
    let (mut correct, mut typed) = (0u64, 0u64);
    for &offset in &offsets {
        for bit in 0..8 {
            match case(&bytes, offset, bit, &model) {
                Outcome::Correct => correct += 1,
                Outcome::TypedError => typed += 1,
            }
        }
    }
    println!(
        "{} flips over {} bytes (pages by kind {kinds:?}, {extents} overflow extents): {correct} read back correctly, {typed} typed errors, 0 wrong values, 0 panics",
        correct + typed,
        offsets.len()
    );
}

/// A damaged tree page the open does not read: `check_integrity` names it, and does not
/// report the pages its walk then could not reach as leaked (they are not lost to the
/// free list). Two damaged pages at once: both are named (the walk goes on past the
/// first).
#[test]
fn damaged_tree_pages_are_each_named_and_not_reported_as_leaked_pages() {
    let (bytes, _) = build();
    let pages = bytes.len() / PAGE;
    let tree_pages: Vec<usize> = (2..pages)
        .filter(|&p| {
            [4, 5, 8, 9].contains(&bytes[p * PAGE + 4])
                && bytes[p * PAGE + 8..p * PAGE + 16] == (p as u64).to_le_bytes()
        })
        .collect();
    let mut reported = Vec::new();
    for &page in &tree_pages {
        let mut damaged = bytes.clone();
        damaged[page * PAGE + 200] ^= 0x20;
        let Ok(db) = open(damaged) else {
            continue; // the open read it (the root, or the catalog's leaf)
        };
        let report = db.check_integrity().unwrap();
        if report.is_ok() {
            continue; // a free page that still holds an old tree page's bytes
        }
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains(&format!("page {page}"))),
            "{:?}",
            report.problems
        );
        assert!(
            report
                .problems
                .iter()
                .all(|p| !p.contains("is leaked") && !p.contains("are leaked")),
            "{:?}",
            report.problems
        );
        assert!(report.problems.len() <= 3, "{:?}", report.problems);
        reported.push(page);
    }
    assert!(
        reported.len() >= 2,
        "two tree pages the open does not read: {tree_pages:?}"
    );
    // Two damaged pages at once: the walk goes on past the first, and names both.
    let mut damaged = bytes.clone();
    let (a, b) = (reported[0], reported[reported.len() - 1]);
    for page in [a, b] {
        damaged[page * PAGE + 200] ^= 0x20;
    }
    let db = open(damaged).unwrap();
    let report = db.check_integrity().unwrap();
    for page in [a, b] {
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains(&format!("page {page}:"))),
            "page {page}: {:?}",
            report.problems
        );
    }
}

/// A damaged large value of the last table's last key: an open reads the key beside it
/// to find the highest table id, and read every value of that leaf too, so one damaged
/// value refused every read-write open. The open now succeeds; a read of that value
/// names its page, the other tables read back, and the integrity check names the page.
#[test]
fn a_damaged_value_in_the_last_tables_last_leaf_does_not_refuse_the_open() {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(1)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let big: Vec<u8> = (0..3000u32).map(|j| (j * 31 % 251) as u8).collect();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("a").unwrap();
    tx.put("a", b"k", b"small").unwrap();
    tx.create_table("z").unwrap();
    tx.put("z", b"big", &big).unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    db.compact().unwrap();
    drop(c);
    db.close().unwrap();
    sim.crash_losing_unsynced();
    let mut bytes = sim.live_bytes();
    // Every copy of the value's middle (the tree's extent, and any stale log copy).
    let window = &big[1000..1064];
    let mut flipped = 0;
    for at in 0..bytes.len() - window.len() {
        if &bytes[at..at + window.len()] == window {
            bytes[at + 10] ^= 0x40;
            flipped += 1;
        }
    }
    assert!(flipped >= 1);
    let db = open(bytes).expect("one damaged value does not refuse the open");
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.get("a", b"k").unwrap().as_deref(), Some(&b"small"[..]));
    let e = tx.get("z", b"big").unwrap_err();
    assert!(
        matches!(e, Error::Corrupted { page, .. } if page > 1),
        "{e}"
    );
    drop(tx);
    let report = db.check_integrity().unwrap();
    assert!(!report.is_ok());
    // A new table takes a new id (above the damaged table's).
    let mut tx = c.begin().unwrap();
    tx.create_table("b").unwrap();
    tx.put("b", b"x", b"y").unwrap();
    tx.commit().unwrap();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.get("b", b"x").unwrap().as_deref(), Some(&b"y"[..]));
}

/// 400 tables (so the catalog spans leaves below a branch), checkpointed; the last
/// table's id (400) on its catalog leaf replaced by `id` and the leaf resealed. Returns
/// the bytes, that leaf's page and the last table's name.
fn catalog_leaf_naming(id: u64) -> (Vec<u8>, usize, String) {
    use capsuledb::format::{PageKind, seal_page};
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(1)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    let names: Vec<String> = (0..400)
        .map(|i| format!("a-table-named-{i:04}-{}", "x".repeat(40)))
        .collect();
    for name in &names {
        tx.create_table(name).unwrap();
        tx.put(name, b"k", b"v").unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    // Ids are handed out in creation order from 1: the last table's is 400.
    let last = names.last().unwrap().clone();
    let last_id = names.len() as u64;
    drop(c);
    db.close().unwrap();
    sim.crash_losing_unsynced();
    let mut bytes = sim.live_bytes();
    // The leaf holding the last table's name, and its id's bytes on that page.
    let page = (2..bytes.len() / PAGE)
        .find(|&p| {
            let b = &bytes[p * PAGE..(p + 1) * PAGE];
            let leaf = matches!(
                PageKind::from_u8(b[4]),
                Some(PageKind::Leaf | PageKind::CompactLeaf | PageKind::UniformLeaf)
            );
            leaf && u64::from_le_bytes(b[8..16].try_into().unwrap()) == p as u64
                && b.windows(last.len() - 14)
                    .any(|w| w == &last.as_bytes()[14..])
        })
        .expect("the catalog leaf");
    let body = &mut bytes[page * PAGE..(page + 1) * PAGE];
    let kind = PageKind::from_u8(body[4]).unwrap();
    let at: Vec<usize> = (32..PAGE - 8)
        .filter(|&i| body[i..i + 8] == last_id.to_le_bytes())
        .collect();
    assert_eq!(at.len(), 1, "the id's bytes once on the leaf");
    body[at[0]..at[0] + 8].copy_from_slice(&id.to_le_bytes());
    seal_page(body, kind, page as u64).unwrap();
    (bytes, page, last)
}

/// A catalog leaf below a branch holding a table id past the largest a table can have
/// (its checksum fixed): the open refuses the file naming that leaf, as a read of the
/// table does; it named the catalog's root, an intact branch.
#[test]
fn an_impossible_table_id_in_a_catalog_leaf_names_the_leaf() {
    let (bytes, page, _) = catalog_leaf_naming(u64::MAX);
    match open(bytes) {
        Err(Error::Corrupted { page: named, what }) => {
            assert_eq!(named, page as u64, "{what}")
        }
        other => panic!("expected Corrupted naming page {page}, got {other:?}"),
    }
}

/// A catalog entry naming table id 0, the catalog's own (its leaf's checksum fixed): a
/// use of that name is corruption naming the leaf, and a table created after it gets an
/// id of its own (a fuzzer found the catalog's keys read as that table's, so a key put
/// into a new table showed up as a table name; the decode regression saved then no
/// longer reaches the page it was written for, this test does).
#[test]
fn a_catalog_entry_naming_the_catalog_id_is_corruption() {
    let (bytes, page, last) = catalog_leaf_naming(0);
    let db = open(bytes).expect("the open reads no table through that entry");
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    match tx.get(&last, b"k") {
        Err(Error::Corrupted { page: named, what }) => {
            assert_eq!(named, page as u64, "{what}")
        }
        other => panic!("expected Corrupted naming page {page}, got {other:?}"),
    }
    drop(tx);
    let mut tx = c.begin().unwrap();
    tx.create_table("fresh").unwrap();
    tx.put("fresh", b"a-key", b"v").unwrap();
    tx.commit().unwrap();
    let tx = c.begin_read().unwrap();
    assert_eq!(
        tx.get("fresh", b"a-key").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    let names = tx.tables().unwrap();
    assert!(!names.iter().any(|n| n == "a-key"), "{names:?}");
}

/// The file's leaves (compact, uniform or older), each with a copy of `bytes` in which a
/// bit of that leaf is flipped.
fn each_leaf_damaged(bytes: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    bytes
        .chunks_exact(PAGE)
        .enumerate()
        .skip(2)
        .filter(|(page, p)| {
            [5u8, 8, 9].contains(&p[4])
                && u64::from_le_bytes(p[8..16].try_into().unwrap()) == *page as u64
        })
        .map(|(page, _)| {
            let mut damaged = bytes.to_vec();
            damaged[page * PAGE + 200] ^= 0x10;
            (page, damaged)
        })
}

/// A borrowing scan that met a damaged leaf has ended: the caller who logs the error and
/// goes on gets `None`, not the keys after the damage (before, the next call moved on
/// to the next leaf, or past a whole damaged subtree, without another error). Every leaf
/// of the file damaged in turn, both directions.
#[test]
fn a_borrowing_scan_ends_at_the_damage_it_reports() {
    let (bytes, _) = build();
    let mut errors = 0;
    for (page, damaged) in each_leaf_damaged(&bytes) {
        let Ok(db) = open(damaged) else { continue };
        let mut c = db.connect();
        let Ok(tx) = c.begin_read() else { continue };
        for table in ["t", "u"] {
            for reverse in [false, true] {
                let scan = if reverse {
                    tx.scan_rev::<&[u8], _>(table, ..)
                } else {
                    tx.scan::<&[u8], _>(table, ..)
                };
                // Damage met by the first seek refuses the scan itself.
                let Ok(mut scan) = scan else { continue };
                while let Some(item) = scan.next() {
                    if let Err(e) = item {
                        assert!(e.is_corruption(), "page {page}: {e:?}");
                        errors += 1;
                        assert!(
                            scan.next().is_none(),
                            "page {page}, table {table}, reverse {reverse}: the scan went on past the damage"
                        );
                        assert!(scan.next().is_none());
                        break;
                    }
                }
            }
        }
    }
    assert!(
        errors > 4,
        "the damaged leaves reached the scans ({errors})"
    );
}

/// A damaged leaf fails only the scans that reach into it: a range that ends just before
/// it (or, in reverse, just after it) reads whole, and the list of tables reads whole
/// beside a damaged first leaf of data (a scan read the next leaf to learn that its
/// range had ended, so damage past the range failed it). Every leaf damaged in turn,
/// both directions, both kinds of scan.
#[test]
fn a_damaged_leaf_fails_only_the_scans_that_reach_it() {
    let (bytes, _) = build();
    let mut cases = 0;
    for (page, damaged) in each_leaf_damaged(&bytes) {
        let Ok(db) = open(damaged) else { continue };
        let mut c = db.connect();
        let Ok(tx) = c.begin_read() else { continue };
        let Ok(tables) = tx.tables() else {
            // The damaged leaf holds the catalog.
            continue;
        };
        assert_eq!(tables, ["t", "u"], "page {page}");
        for table in ["t", "u"] {
            for reverse in [false, true] {
                // The keys before the damage, in scan order (a borrowing scan hands
                // them out one by one, up to the damaged leaf).
                let mut before: Vec<Vec<u8>> = Vec::new();
                let scan = if reverse {
                    tx.scan_rev::<&[u8], _>(table, ..)
                } else {
                    tx.scan::<&[u8], _>(table, ..)
                };
                // Damage at the scan's first leaf refuses the scan itself.
                let Ok(mut scan) = scan else { continue };
                let mut failed = false;
                while let Some(item) = scan.next() {
                    match item {
                        Ok((k, _)) => before.push(k.to_vec()),
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                drop(scan);
                let Some(edge) = before.last().filter(|_| failed).cloned() else {
                    continue;
                };
                cases += 1;
                let again: Vec<Vec<u8>> = if reverse {
                    tx.range_rev(table, edge.as_slice()..)
                        .unwrap()
                        .map(|r| r.map(|(k, _)| k))
                        .collect::<capsuledb::Result<_>>()
                } else {
                    tx.range(table, ..=edge.as_slice())
                        .unwrap()
                        .map(|r| r.map(|(k, _)| k))
                        .collect::<capsuledb::Result<_>>()
                }
                .unwrap_or_else(|e| panic!("page {page}, {table}, reverse {reverse}: {e}"));
                assert_eq!(again, before, "page {page}, {table}, reverse {reverse}");
                let mut scan = if reverse {
                    tx.scan_rev(table, edge.as_slice()..).unwrap()
                } else {
                    tx.scan(table, ..=edge.as_slice()).unwrap()
                };
                let mut n = 0;
                while let Some(item) = scan.next() {
                    item.unwrap_or_else(|e| panic!("page {page}, {table}, scan: {e}"));
                    n += 1;
                }
                assert_eq!(n, before.len(), "page {page}, {table}, reverse {reverse}");
            }
        }
    }
    assert!(cases > 4, "damaged leaves met by scans: {cases}");
}

/// A range consumed from both ends ends at the damage its forward end met: the keys the
/// back end had fetched are not handed out after the error (they were, as if the keys
/// between had not been there).
#[test]
fn a_range_ends_at_the_damage_it_reports() {
    let (bytes, _) = build();
    let mut cases = 0;
    for (p, page) in bytes.chunks_exact(PAGE).enumerate().skip(2) {
        let leaf = matches!(page[4], 8 | 9) && page[8..16] == (p as u64).to_le_bytes();
        if !leaf {
            continue;
        }
        let mut copy = bytes.clone();
        copy[p * PAGE + PAGE / 2] ^= 0x08;
        let Ok(db) = open(copy) else { continue };
        let mut c = db.connect();
        let tx = c.begin_read().unwrap();
        let Ok(mut range) = tx.range::<&[u8], _>("t", ..) else {
            continue;
        };
        if !matches!(range.next_back(), Some(Ok(_))) {
            continue;
        }
        let failed = loop {
            match range.next() {
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(e),
                None => break None,
            }
        };
        if let Some(e) = failed {
            assert!(matches!(e, Error::Corrupted { .. }), "page {p}: {e}");
            assert!(range.next().is_none(), "page {p}: keys after the error");
            assert!(
                range.next_back().is_none(),
                "page {p}: keys after the error"
            );
            cases += 1;
        }
    }
    assert!(cases >= 1, "a damaged leaf in the middle of t");
}

/// Pages no one uses (a header's `page_count` raised over a longer file: crafted, or
/// pages a bug forgot) are reported as runs, one line each, found from the pages in use:
/// `check` listed one line per page and walked every page of the count, so a crafted
/// count of billions over a sparse file ran it out of memory.
#[test]
fn leaked_pages_are_reported_as_runs() {
    use capsuledb::format::{HEADER_COPY_OFFSETS, HEADER_LEN, Header};
    let sim = SimStorage::new();
    {
        let db = Options::new().open_storage(Arc::new(sim.clone())).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.put("t", b"k", b"v").unwrap();
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        db.close().unwrap();
    }
    let mut bytes = sim.live_bytes();
    // The newest header copy names 1,000 more pages, which the file now holds (zeros).
    let (copy, mut h) = (0..2u32)
        .filter_map(|c| {
            let at = HEADER_COPY_OFFSETS[c as usize] as usize;
            Some((c, Header::decode(&bytes[at..at + HEADER_LEN], c).ok()?))
        })
        .max_by_key(|(_, h)| h.generation)
        .unwrap();
    let old_count = h.page_count;
    h.page_count += 1_000;
    let at = HEADER_COPY_OFFSETS[copy as usize] as usize;
    bytes[at..at + HEADER_LEN].copy_from_slice(&h.encode(copy));
    bytes.resize(h.page_count as usize * PAGE, 0);
    let db = Options::new()
        .read_only(true)
        .open_storage(Arc::new(SimStorage::from_bytes(bytes)))
        .unwrap();
    let report = db.check_integrity().unwrap();
    let leaks: Vec<&String> = report
        .problems
        .iter()
        .filter(|p| p.contains("leaked"))
        .collect();
    assert_eq!(
        leaks,
        [&format!(
            "pages {old_count} to {} (1000 pages) are leaked: neither in the tree nor in the \
             free list",
            h.page_count - 1
        )],
        "{:?}",
        report.problems
    );
}
