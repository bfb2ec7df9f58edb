//! Uniform leaves (`format-spec/btree.md`, "Uniform leaf"): a table of fixed-size pairs
//! takes leaves without cell heads or offsets, and reads back by point reads and scans
//! both ways through updates that break and restore the uniformity, deletes, checkpoints,
//! reopen and compaction, with `check_integrity` clean at each step; a crash at any I/O
//! point of checkpoints that rewrite uniform leaves loses no acknowledged commit and leaves
//! no earlier state.

mod leaf_support;

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Options};
use leaf_support::{crash_at_every_io_point, page_kinds, scan_all, scan_all_reversed};
use std::collections::BTreeMap;
use std::sync::Arc;

const PAIRS: u64 = 20_000;

fn open(sim: &SimStorage) -> Database {
    Options::new()
        .random_seed(5)
        .open_storage(Arc::new(sim.clone()))
        .unwrap()
}

/// Checks every pair by point reads and by scans both ways, and the integrity report;
/// returns the tree's pages.
fn check(db: &Database, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> u64 {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    for (k, v) in model {
        assert_eq!(tx.get("t", k).unwrap().as_deref(), Some(&v[..]));
    }
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(scan_all(&tx, "t"), want);
    assert_eq!(scan_all_reversed(&tx, "t"), want);
    // A key between two stored ones, and past the last, is absent.
    assert_eq!(tx.get("t", &[0u8; 9]).unwrap(), None);
    assert_eq!(tx.get("t", &u64::MAX.to_be_bytes()).unwrap(), None);
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    report.tree_pages
}

/// Puts [`PAIRS`] pairs into a new table `t` in one commit: 8-byte keys spread over the
/// u64 range, and `value(i)`. Returns them.
fn load(db: &Database, value: fn(u64) -> Vec<u8>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..PAIRS {
        let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec();
        let v = value(i);
        tx.put("t", &k, &v).unwrap();
        model.insert(k, v);
    }
    tx.commit().unwrap();
    model
}

/// 64 KiB pages of 8 + 8 B pairs: 4,094 cells a leaf, more than the builder's staging of
/// them in the compact encoding (20 bytes a cell) can address in 16 bits.
#[test]
fn fixed_size_pairs_on_64k_pages_read_back() {
    let sim = SimStorage::new();
    let db = Options::new()
        .page_size(65536)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let model = load(&db, |i| (i * 5).to_le_bytes().to_vec());
    db.checkpoint().unwrap().unwrap();
    check(&db, &model);
    db.close().unwrap();
    let db = Options::new()
        .page_size(65536)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    check(&db, &model);
}

#[test]
fn fixed_size_pairs_take_uniform_leaves_and_read_back_through_changes() {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut model = load(&db, |i| i.to_le_bytes().to_vec());
    let mut c = db.connect();
    db.checkpoint().unwrap().unwrap();
    let pages = check(&db, &model);
    // 20,000 pairs of 16 bytes: 254 cells to a uniform leaf (32 + 254 × 16 bytes of a
    // 4 KiB page), 79 full leaves; compact leaves of 22 bytes a cell would take 109.
    // Leaves are filled to where the next key lands, and there are branches: at most 100.
    assert!(pages <= 100, "{pages} tree pages");

    // Longer values on every 13th key break the uniformity of the leaves they land in;
    // every 11th key is deleted; then the long values are put back to 8 bytes.
    let mut tx = c.begin().unwrap();
    for (n, k) in model
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .enumerate()
    {
        if n % 11 == 0 {
            tx.delete("t", &k).unwrap();
            model.remove(&k);
        } else if n % 13 == 0 {
            let v = vec![n as u8; 9 + n % 30];
            tx.put("t", &k, &v).unwrap();
            model.insert(k, v);
        }
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    check(&db, &model);
    let mut tx = c.begin().unwrap();
    for (k, v) in model.iter_mut() {
        if v.len() != 8 {
            *v = vec![0xAB; 8];
            tx.put("t", k, v).unwrap();
        }
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    let after = check(&db, &model);
    assert!(after <= pages, "{after} tree pages after, {pages} before");
    db.compact().unwrap();
    check(&db, &model);
    drop(c);
    db.close().unwrap();

    let db = open(&sim);
    check(&db, &model);
}

/// Key `i` of the crash workload: 8 bytes.
fn crash_key(i: u32) -> Vec<u8> {
    (u64::from(i) * 0x9E37_79B9).to_be_bytes().to_vec()
}

/// The writes of commit `n` (0: the initial load of 3,000 pairs of 8-byte values): 40
/// updates, 5 deletes, and one value of 20 bytes (a leaf that holds it is compact until
/// a later commit puts an 8-byte value back).
fn apply(n: u32, f: &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>)) {
    if n == 0 {
        (0..3_000u32).for_each(|i| f(crash_key(i), Some(u64::from(i).to_le_bytes().to_vec())));
        return;
    }
    for j in 0..40u32 {
        let i = (j * 73 + n * 7) % 3_000;
        f(
            crash_key(i),
            Some((u64::from(i) << 8 | u64::from(n)).to_le_bytes().to_vec()),
        );
    }
    for j in 0..5u32 {
        f(crash_key((j * 613 + n * 31) % 3_000), None);
    }
    f(crash_key(n * 401 % 3_000), Some(vec![n as u8; 20]));
}

/// The crash workload (`leaf_support::crash_at_every_io_point`) over uniform and compact
/// leaves: every reopen clean, at a commit at or after the last acknowledged one.
#[test]
fn crashes_inside_checkpoints_of_uniform_leaves_lose_nothing() {
    let total = crash_at_every_io_point(open, 5, apply, |db, sim| {
        assert!(check(db, &leaf_support::state_after(apply, 6)) > 0);
        // The checkpoints wrote uniform leaves, and compact ones where a 20-byte value
        // landed.
        let kinds = page_kinds(&sim.live_bytes());
        assert!(kinds.contains(&9) && kinds.contains(&8), "{kinds:?}");
    });
    println!("{total} I/O points, each crashed two ways");
}
