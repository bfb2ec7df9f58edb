//! Uniform leaves (`format-spec/btree.md`, "Uniform leaf"): a table of fixed-size pairs
//! takes leaves without cell heads or offsets, and reads back by point reads and scans
//! both ways through updates that break and restore the uniformity, deletes, checkpoints,
//! reopen and compaction, with `check_integrity` clean at each step; a crash at any I/O
//! point of checkpoints that rewrite uniform leaves loses no acknowledged commit and leaves
//! no earlier state.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Options};
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
    let forward: Vec<(Vec<u8>, Vec<u8>)> = tx
        .iter("t")
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(forward, want);
    let mut backward: Vec<(Vec<u8>, Vec<u8>)> = tx
        .iter("t")
        .unwrap()
        .rev()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    backward.reverse();
    assert_eq!(backward, want);
    // A key between two stored ones, and past the last, is absent.
    assert_eq!(tx.get("t", &[0u8; 9]).unwrap(), None);
    assert_eq!(tx.get("t", &u64::MAX.to_be_bytes()).unwrap(), None);
    let report = db.check_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    report.tree_pages
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
    let mut model = BTreeMap::new();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..PAIRS {
        let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec();
        let v = (i * 5).to_le_bytes().to_vec();
        tx.put("t", &k, &v).unwrap();
        model.insert(k, v);
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap().unwrap();
    check(&db, &model);
    drop(c);
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
    let mut model = BTreeMap::new();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    for i in 0..PAIRS {
        // Keys spread over the u64 range, values of 8 bytes.
        let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec();
        let v = i.to_le_bytes().to_vec();
        tx.put("t", &k, &v).unwrap();
        model.insert(k, v);
    }
    tx.commit().unwrap();
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

fn state_after(commits: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for n in 0..=commits {
        apply(n, &mut |k, v| match v {
            Some(v) => {
                m.insert(k, v);
            }
            None => {
                m.remove(&k);
            }
        });
    }
    m
}

fn crash_setup() -> SimStorage {
    let sim = SimStorage::new();
    let db = open(&sim);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    apply(0, &mut |k, v| {
        tx.put("t", &k, &v.unwrap_or_default()).unwrap()
    });
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    drop(c);
    db.close().unwrap();
    sim
}

/// Six durable commits, a checkpoint after every second; stops at the first failure
/// (the storage lost power). `acked`: the commits acknowledged.
fn crash_workload(db: &Database, acked: &mut u32) {
    let mut c = db.connect();
    for n in 1..=6u32 {
        let mut tx = c.begin().unwrap();
        apply(n, &mut |k, v| match v {
            Some(v) => tx.put("t", &k, &v).unwrap(),
            None => tx.delete("t", &k).unwrap(),
        });
        if tx.commit_with(Durability::Durable).is_err() {
            return;
        }
        *acked = n;
        if n % 2 == 0 && db.checkpoint().is_err() {
            return;
        }
    }
}

#[test]
fn crashes_inside_checkpoints_of_uniform_leaves_lose_nothing() {
    let sim = crash_setup();
    let base = sim.counts();
    let db = open(&sim);
    let mut acked = 0;
    crash_workload(&db, &mut acked);
    assert_eq!(acked, 6);
    assert!(check(&db, &state_after(6)) > 0);
    drop(db);
    // The checkpoints wrote uniform leaves, and compact ones where a 20-byte value landed.
    let bytes = sim.live_bytes();
    let kinds: Vec<u8> = bytes.chunks(4096).skip(2).map(|p| p[4]).collect();
    assert!(kinds.contains(&9) && kinds.contains(&8), "{kinds:?}");
    let c = sim.counts();
    let total = (c.writes + c.syncs + c.set_lens) - (base.writes + base.syncs + base.set_lens);
    println!("{total} I/O points, each crashed two ways");
    let states: Vec<_> = (0..=6).map(state_after).collect();
    for n in (0..total + 3).step_by(if std::env::var("CI").is_ok() { 3 } else { 1 }) {
        let sim = crash_setup();
        let db = open(&sim);
        sim.power_off_after(n);
        let mut acked = 0;
        crash_workload(&db, &mut acked);
        drop(db);
        for seed in 0..2 {
            let image = sim.fork();
            image.crash(n * 7 + seed);
            let context = format!("power off after {n} of {total} ops, crash seed {seed}");
            let db = Options::new()
                .random_seed(5)
                .open_storage(Arc::new(image))
                .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
            let report = db.check_integrity().unwrap();
            assert!(report.is_ok(), "{context}: {:?}", report.problems);
            let mut c = db.connect();
            let tx = c.begin_read().unwrap();
            let now: BTreeMap<Vec<u8>, Vec<u8>> = tx
                .iter("t")
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            match states.iter().position(|s| *s == now) {
                Some(k) => assert!(
                    k as u32 >= acked,
                    "{context}: state after commit {k}, {acked} acknowledged"
                ),
                None => panic!("{context}: the state is no commit's"),
            }
        }
    }
}
