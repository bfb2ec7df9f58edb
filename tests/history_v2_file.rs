//! A file written by a format-version-2 build, with history entries in the unindexed
//! version-list layout (`format-spec/btree.md`, "Version-2 version list"), opens, reads
//! every retained state right, is upgraded to the current version by its first header write, and
//! keeps reading right once later checkpoints rewrite some of its lists in the indexed
//! layout while others stay as they were.
//!
//! `tests/fixtures/v2-history.db` (32 KiB) was written by the build at commit c23a1da:
//! retention `Commits(1000)`; commit 1 creates table `t` with keys `0..20` (4-byte
//! big-endian) = `v0-{k}`; commit `1 + i` for `i` in `1..=30` deletes key `i % 20` when
//! `i % 7 == 0`, else sets it to `v{i}-{i % 20}`; then a checkpoint. [`model_at`] replays
//! that.

use capsuledb::format::FORMAT_VERSION;
use capsuledb::{Database, HistoryRetention, Options};
use std::collections::BTreeMap;

const FIXTURE: &[u8] = include_bytes!("fixtures/v2-history.db");

/// Table `t` at `seq` as the generator wrote it.
fn model_at(seq: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for k in 0u32..20 {
        m.insert(k.to_be_bytes().to_vec(), format!("v0-{k}").into_bytes());
    }
    for i in 1u32..=30 {
        if u64::from(i) + 1 > seq {
            break;
        }
        let k = (i % 20).to_be_bytes().to_vec();
        if i % 7 == 0 {
            m.remove(&k);
        } else {
            m.insert(k, format!("v{i}-{}", i % 20).into_bytes());
        }
    }
    m
}

/// Every state from `from` to `to` read back, by point reads and by a scan.
fn assert_states(db: &Database, from: u64, to: u64) {
    for seq in from..=to {
        let want = model_at(seq);
        let tx = db.begin_read_at(seq).unwrap();
        let scanned: BTreeMap<Vec<u8>, Vec<u8>> = tx
            .iter("t")
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        assert_eq!(scanned, want, "scan at {seq}");
        for k in 0u32..20 {
            let key = k.to_be_bytes();
            let got = tx.get("t", &key).unwrap();
            assert_eq!(
                got.as_deref(),
                want.get(&key[..]).map(Vec::as_slice),
                "key {k} at {seq}"
            );
        }
    }
}

#[test]
fn a_version_2_file_reads_upgrades_and_mixes_list_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    std::fs::write(&path, FIXTURE).unwrap();

    // Read-only: nothing is written, the version stays 2.
    let ro = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(ro.info().unwrap().format_version, 2);
    assert_states(&ro, 1, 31);
    drop(ro);
    assert_eq!(std::fs::read(&path).unwrap(), FIXTURE);

    // Read-write: upgraded, and every state still reads right.
    let db = Options::new()
        .history_retention(HistoryRetention::Commits(1000))
        .open(&path)
        .unwrap();
    assert_eq!(db.info().unwrap().format_version, FORMAT_VERSION);
    assert_states(&db, 1, 31);
    let report = db.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // Rewrite the lists of keys 1 and 2 (indexed now); the other keys keep theirs.
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.put("t", &1u32.to_be_bytes(), b"later-1").unwrap();
    tx.put("t", &2u32.to_be_bytes(), b"later-2").unwrap();
    let later = tx.commit().unwrap().seq;
    assert_eq!(later, 32);
    db.checkpoint().unwrap();
    drop(c);
    drop(db);

    let db = Options::new()
        .history_retention(HistoryRetention::Commits(1000))
        .open(&path)
        .unwrap();
    assert_states(&db, 1, 31);
    let now = db.begin_read_at(later).unwrap();
    assert_eq!(
        now.get("t", &1u32.to_be_bytes()).unwrap().as_deref(),
        Some(&b"later-1"[..])
    );
    assert_eq!(
        now.get("t", &3u32.to_be_bytes()).unwrap().as_deref(),
        Some(&b"v23-3"[..])
    );
    let report = db.check_integrity().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
