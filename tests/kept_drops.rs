//! The tree's record of kept drops (`format-spec/btree.md`, "History": dropped tables
//! whose data the history window still keeps) naming a table the catalog still names,
//! checksums right. An open took the live table for dropped: writes to it were
//! acknowledged and discarded, the next checkpoint deleted its keys, and `check` said
//! the file was sound. A read-write open refuses such a file now, a read-only open reads
//! past the record, and `check_integrity` names it.

use capsuledb::{Database, Error, HistoryRetention, Options};

const PAGE: usize = 4096;

/// A file with tables `live` (id 1, 2,001 keys) and `gone` (id 2, dropped inside the history
/// window, so its drop is kept), checkpointed; with the record's `gone` changed to
/// `live` when `forge`, and the page of that record.
fn file(dir: &std::path::Path, forge: bool) -> (std::path::PathBuf, u64) {
    let path = dir.join("kept.db");
    {
        let db = Options::new()
            .history_retention(HistoryRetention::Commits(1000))
            .open(&path)
            .unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        for t in ["live", "gone"] {
            tx.create_table(t).unwrap();
            tx.put(t, b"k", b"v").unwrap();
        }
        // Enough keys for a tree of more than one level.
        for i in 0..2_000u32 {
            tx.put("live", format!("key {i:05}").as_bytes(), &[7u8; 100])
                .unwrap();
        }
        tx.commit().unwrap();
        let mut tx = c.begin().unwrap();
        tx.drop_table("gone").unwrap();
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        db.close().unwrap();
    }
    if forge {
        let mut bytes = std::fs::read(&path).unwrap();
        let mut forged = Vec::new();
        for (p, page) in bytes.chunks_exact_mut(PAGE).enumerate() {
            let leaf = matches!(page[4], 8 | 9) && page[8..16] == (p as u64).to_le_bytes();
            if !leaf || !page.windows(5).any(|w| w == b"drops") {
                continue;
            }
            // The pair (2, drop seq), both little-endian: table 2 becomes table 1.
            let at = (16..PAGE - 16).find(|&i| {
                page[i..i + 8] == 2u64.to_le_bytes()
                    && (1..10u64).any(|s| page[i + 8..i + 16] == s.to_le_bytes())
            });
            let Some(at) = at else { continue };
            page[at..at + 8].copy_from_slice(&1u64.to_le_bytes());
            let sum = crc32fast::hash(&page[4..]);
            page[..4].copy_from_slice(&sum.to_le_bytes());
            forged.push(p as u64);
        }
        assert_eq!(forged.len(), 1, "the record of drops was found once");
        std::fs::write(&path, &bytes).unwrap();
        return (path, forged[0]);
    }
    (path, 0)
}

#[test]
fn a_kept_drop_naming_a_live_table_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    // Unforged, the file opens and checks clean: the pattern is the record's.
    let (path, _) = file(dir.path(), false);
    let db = Database::open(&path).unwrap();
    assert!(db.check_integrity().unwrap().is_ok());
    db.close().unwrap();
    std::fs::remove_file(&path).unwrap();

    let (path, leaf) = file(dir.path(), true);
    // Named by the leaf holding the record (it named the tree's root).
    match Database::open(&path) {
        Err(Error::Corrupted { page, what }) => {
            assert!(what.contains("kept drops"), "{what}");
            assert_eq!(page, leaf, "{what}");
        }
        other => panic!("a read-write open gave {other:?}"),
    }
    let db = Options::new().read_only(true).open(&path).unwrap();
    let report = db.check_integrity().unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("kept drops")),
        "{:?}",
        report.problems
    );
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.get("live", b"k").unwrap().as_deref(), Some(&b"v"[..]));
}
