//! The borrowing scan (`Transaction::scan`, `scan_rev`) hands out exactly what the
//! owned iterator and a model do: committed data split between the tree and the
//! version store, tombstones in both, the transaction's own writes on top, any bounds,
//! either direction, and checkpoints that fold the store while a scan is open.

use capsuledb::{Database, Options};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A scan to check: its lower and upper bound, and whether it runs in reverse.
type ScanSpec = (Bound<Vec<u8>>, Bound<Vec<u8>>, bool);

fn key(i: u8) -> Vec<u8> {
    vec![b'k', i / 16, i % 16]
}

fn any_bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0u8..64).prop_map(|i| Bound::Included(key(i))),
        (0u8..64).prop_map(|i| Bound::Excluded(key(i))),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u16),
    Delete(u8),
}

fn any_ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            3 => (0u8..64, 0u16..3000).prop_map(|(k, len)| Op::Put(k, len)),
            1 => (0u8..64).prop_map(Op::Delete),
        ],
        0..max,
    )
}

fn value(k: u8, len: u16, round: usize) -> Vec<u8> {
    let mut v = vec![k ^ round as u8; usize::from(len)];
    v.extend_from_slice(&[round as u8]);
    v
}

fn open(dir: &tempfile::TempDir) -> Database {
    Options::new()
        .version_store_budget(u64::MAX / 4)
        .checkpoint_log_commits(u64::MAX / 4)
        .open(dir.path().join("scan.db"))
        .expect("open")
}

fn expected(
    model: &Model,
    lo: &Bound<Vec<u8>>,
    hi: &Bound<Vec<u8>>,
    reverse: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let valid = match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a < b,
        _ => true,
    };
    if !valid {
        return Vec::new();
    }
    let it = model
        .range::<Vec<u8>, _>((lo.as_ref(), hi.as_ref()))
        .map(|(k, v)| (k.clone(), v.clone()));
    if reverse {
        it.rev().collect()
    } else {
        it.collect()
    }
}

fn collect(
    tx: &capsuledb::Transaction<'_>,
    lo: &Bound<Vec<u8>>,
    hi: &Bound<Vec<u8>>,
    reverse: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let range = (lo.clone(), hi.clone());
    let mut scan = if reverse {
        tx.scan_rev("t", range).expect("scan_rev")
    } else {
        tx.scan("t", range).expect("scan")
    };
    let mut out = Vec::new();
    while let Some(entry) = scan.next() {
        let (k, v) = entry.expect("entry");
        out.push((k.to_vec(), v.to_vec()));
    }
    out
}

/// Each scan of `scans` (bounds and direction) hands out what the model holds in its
/// range, and what the owned iterator hands out.
fn check_scans(
    tx: &capsuledb::Transaction<'_>,
    model: &Model,
    scans: &[ScanSpec],
) -> Result<(), TestCaseError> {
    for (lo, hi, reverse) in scans {
        let got = collect(tx, lo, hi, *reverse);
        prop_assert_eq!(&got, &expected(model, lo, hi, *reverse));
        let range = (lo.clone(), hi.clone());
        let owned: Vec<(Vec<u8>, Vec<u8>)> = if *reverse {
            tx.range_rev("t", range)
                .expect("range_rev")
                .map(|r| r.map(|(k, v)| (k, v.to_vec())).expect("item"))
                .collect()
        } else {
            tx.range("t", range)
                .expect("range")
                .map(|r| r.map(|(k, v)| (k, v.to_vec())).expect("item"))
                .collect()
        };
        prop_assert_eq!(got, owned);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn borrowing_scans_match_the_model(
        rounds in proptest::collection::vec((any_ops(40), any::<bool>()), 1..5),
        own in any_ops(12),
        scans in proptest::collection::vec((any_bound(), any_bound(), any::<bool>()), 1..8),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir);
        let mut conn = db.connect();
        let mut tx = conn.begin().expect("begin");
        // Neighbours on both sides of `t` in the tree (ids are given in order), so
        // scans meet other tables' keys in the leaves they end in.
        for table in ["before", "t", "after"] {
            tx.create_table(table).expect("create");
        }
        for k in 0..64u8 {
            tx.put("before", &key(k), b"b").expect("put");
            tx.put("after", &key(k), b"a").expect("put");
        }
        tx.commit().expect("commit");
        let mut model = Model::new();
        for (round, (ops, checkpoint)) in rounds.iter().enumerate() {
            let mut tx = conn.begin().expect("begin");
            for op in ops {
                match *op {
                    Op::Put(k, len) => {
                        let v = value(k, len, round);
                        tx.put("t", &key(k), &v).expect("put");
                        model.insert(key(k), v);
                    }
                    Op::Delete(k) => {
                        tx.delete("t", &key(k)).expect("delete");
                        model.remove(&key(k));
                    }
                }
            }
            tx.commit().expect("commit");
            if *checkpoint {
                db.checkpoint().expect("checkpoint");
            }
        }
        let mut tx = conn.begin().expect("begin");
        for op in &own {
            match *op {
                Op::Put(k, len) => {
                    let v = value(k, len, 99);
                    tx.put("t", &key(k), &v).expect("put");
                    model.insert(key(k), v);
                }
                Op::Delete(k) => {
                    tx.delete("t", &key(k)).expect("delete");
                    model.remove(&key(k));
                }
            }
        }
        check_scans(&tx, &model, &scans)?;
    }
}

/// A checkpoint that folds the store while a scan is open moves the versions still to
/// come into a newer tree: the scan re-pins and still hands out every key once.
#[test]
fn a_checkpoint_during_a_scan_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("begin");
    tx.create_table("t").expect("create");
    // Half the keys in the tree, half (and more than one store batch) in the store.
    for i in 0u32..1500 {
        tx.put("t", &(2 * i).to_be_bytes(), b"tree").expect("put");
    }
    tx.commit().expect("commit");
    db.checkpoint().expect("checkpoint");
    let mut tx = conn.begin().expect("begin");
    for i in 0u32..1500 {
        tx.put("t", &(2 * i + 1).to_be_bytes(), b"store")
            .expect("put");
    }
    tx.create_table("u").expect("create");
    tx.commit().expect("commit");
    for reverse in [false, true] {
        let mut reader_conn = db.connect();
        let reader = reader_conn.begin_read().expect("begin_read");
        // A later commit starts the marker slot after the reader's snapshot, so a
        // checkpoint can fold up to that snapshot.
        let mut other = conn.begin().expect("begin");
        other.put("u", &[u8::from(reverse)], b"x").expect("put");
        other.commit().expect("commit");
        let mut scan = if reverse {
            reader
                .scan_rev(
                    "t",
                    ..Vec::new().into_iter().chain([0xFF; 5]).collect::<Vec<u8>>(),
                )
                .expect("scan")
        } else {
            reader.scan::<&[u8], _>("t", ..).expect("scan")
        };
        let mut seen = Vec::new();
        while let Some(entry) = scan.next() {
            let (k, v) = entry.expect("entry");
            let n = u32::from_be_bytes(k.try_into().expect("4-byte key"));
            assert_eq!(
                v,
                if n % 2 == 0 {
                    &b"tree"[..]
                } else {
                    &b"store"[..]
                }
            );
            seen.push(n);
            if seen.len() == 100 {
                // The checkpoint folds everything up to the reader's snapshot.
                let report = db.checkpoint().expect("checkpoint");
                assert!(report.is_some(), "the checkpoint folded the store");
                assert_eq!(db.stats().versions, 1, "only the later commit stays");
            }
        }
        let mut want: Vec<u32> = (0..3000).collect();
        if reverse {
            want.reverse();
        }
        assert_eq!(seen, want, "reverse = {reverse}");
    }
}

fn wide_key(i: u16) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// Puts `value` at (`true`) or deletes (`false`) each wide key of `ops`, in `tx` and in
/// `model`.
fn put_or_delete(
    tx: &mut capsuledb::Transaction<'_>,
    model: &mut Model,
    ops: &[(u16, bool)],
    value: &[u8],
) {
    for &(k, put) in ops {
        if put {
            tx.put("t", &wide_key(k), value).expect("put");
            model.insert(wide_key(k), value.to_vec());
        } else {
            tx.delete("t", &wide_key(k)).expect("delete");
            model.remove(&wide_key(k));
        }
    }
}

fn any_wide_bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0u16..3200).prop_map(|i| Bound::Included(wide_key(i))),
        (0u16..3200).prop_map(|i| Bound::Excluded(wide_key(i))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// A tree of many leaves with a few store versions and own writes scattered over
    /// it: the scan hands out the leaves' cells between them without a merge, and still
    /// matches the model and the owned iterator at every bound, in both directions,
    /// including more store entries than one batch holds.
    #[test]
    fn sparse_store_versions_in_a_wide_tree_match_the_model(
        value_len in 0usize..400,
        store in proptest::collection::vec((0u16..3200, any::<bool>()), 0..700),
        own in proptest::collection::vec((0u16..3200, any::<bool>()), 0..20),
        scans in proptest::collection::vec((any_wide_bound(), any_wide_bound(), any::<bool>()), 1..8),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir);
        let mut conn = db.connect();
        let mut model = Model::new();
        let mut tx = conn.begin().expect("begin");
        tx.create_table("t").expect("create");
        for i in (0u16..3200).step_by(2) {
            let v = vec![i as u8; value_len];
            tx.put("t", &wide_key(i), &v).expect("put");
            model.insert(wide_key(i), v);
        }
        tx.commit().expect("commit");
        db.checkpoint().expect("checkpoint");
        let mut tx = conn.begin().expect("begin");
        put_or_delete(&mut tx, &mut model, &store, b"store");
        tx.commit().expect("commit");
        let mut tx = conn.begin().expect("begin");
        put_or_delete(&mut tx, &mut model, &own, b"own");
        check_scans(&tx, &model, &scans)?;
    }
}

/// The store holds every seventh key (two batches' worth) of a tree that holds the
/// rest: the scan hands out the tree's cells between store keys straight from its
/// leaves, and a checkpoint that folds the store while the scan is inside its first
/// batch still leaves every key handed out once, in order.
#[test]
fn checkpoints_during_a_scan_between_sparse_store_keys_lose_and_repeat_nothing() {
    let n = 7000u32;
    for reverse in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir);
        let mut conn = db.connect();
        let mut tx = conn.begin().expect("begin");
        tx.create_table("t").expect("create");
        tx.create_table("u").expect("create");
        for i in (0..n).filter(|i| i % 7 != 0) {
            tx.put("t", &i.to_be_bytes(), b"tree").expect("put");
        }
        tx.commit().expect("commit");
        db.checkpoint().expect("checkpoint");
        let mut tx = conn.begin().expect("begin");
        for i in (0..n).filter(|i| i % 7 == 0) {
            tx.put("t", &i.to_be_bytes(), b"store").expect("put");
        }
        tx.commit().expect("commit");
        let mut reader_conn = db.connect();
        let reader = reader_conn.begin_read().expect("begin_read");
        let mut other = conn.begin().expect("begin");
        other.put("u", b"x", b"x").expect("put");
        other.commit().expect("commit");
        let mut scan = if reverse {
            reader.scan_rev::<&[u8], _>("t", ..).expect("scan")
        } else {
            reader.scan::<&[u8], _>("t", ..).expect("scan")
        };
        let mut seen = Vec::new();
        while let Some(entry) = scan.next() {
            let (k, v) = entry.expect("entry");
            let i = u32::from_be_bytes(k.try_into().expect("4-byte key"));
            let want: &[u8] = if i % 7 == 0 { b"store" } else { b"tree" };
            assert_eq!(v, want, "value of {i}");
            seen.push(i);
            if seen.len() == 100 {
                // Inside the first batch: the refill at its end finds the rest of the
                // store folded into a newer tree and re-seeks past the last key.
                assert!(
                    db.checkpoint().expect("checkpoint").is_some(),
                    "the checkpoint folded the store"
                );
            }
        }
        let mut want: Vec<u32> = (0..n).collect();
        if reverse {
            want.reverse();
        }
        assert_eq!(seen, want, "reverse = {reverse}");
    }
}

/// A scan that meets an error while it moves to a checkpoint's newer tree (here the
/// file's mapping failing to grow), and that its caller goes on with, stays exact: the
/// store batch fetched after the checkpoint folded its versions is never merged with the
/// older tree. Before, the scan went on handing out the older tree's values.
#[test]
fn a_scan_continued_after_an_error_in_its_move_to_a_newer_tree_stays_exact() {
    use capsuledb::Durability;
    use capsuledb::storage::SimStorage;
    use std::sync::Arc;
    const KEYS: u32 = 3000;
    let sim = SimStorage::new();
    let db = Options::new()
        .version_store_budget(u64::MAX / 4)
        .checkpoint_log_commits(u64::MAX / 4)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.create_table("other").unwrap();
    for i in 0..KEYS {
        tx.put("t", &i.to_be_bytes(), b"old").unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let mut tx = c.begin().unwrap();
    for i in 0..KEYS {
        tx.put("t", &i.to_be_bytes(), b"new").unwrap();
    }
    tx.commit().unwrap();
    let mut reader = db.connect();
    let rtx = reader.begin_read().unwrap();
    let mut scan = rtx.scan::<&[u8], _>("t", ..).unwrap();
    let mut seen = 0u32;
    while seen < 100 {
        let (_, v) = scan.next().unwrap().unwrap();
        assert_eq!(v, b"new");
        seen += 1;
    }
    // The checkpoint folds the new values and takes them out of the store; the file
    // grows, and the scan's next move to the new tree fails to map it once.
    assert!(db.checkpoint().unwrap().is_some());
    let mut w = c.begin().unwrap();
    w.put("other", b"big", &vec![1u8; 4 << 20]).unwrap();
    w.commit_with(Durability::Applied).unwrap();
    sim.fail_nth_remap(1);
    let mut errors = 0;
    while let Some(item) = scan.next() {
        match item {
            Ok((_, v)) => {
                assert_eq!(v, b"new", "entry {seen}: a value from the older tree");
                seen += 1;
            }
            Err(_) => {
                errors += 1;
                assert!(errors < 10, "the scan keeps failing");
            }
        }
    }
    assert_eq!(seen, KEYS);
    assert_eq!(errors, 1, "the failed mapping reached the scan");
}

/// A store batch examines at most 4,096 keys, visible or not: keys committed after the
/// reader began (invisible to it) filling a batch came back as an empty batch with more
/// to come, and the scan ended there (rows beyond them lost), or handed out a tree key
/// before the store keys still to come (out of order, and a key with a newer store
/// version twice). Both directions, with and without a tree under the store.
#[test]
fn a_scan_reads_past_keys_its_snapshot_cannot_see() {
    for reverse in [false, true] {
        for with_tree in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let db = open(&dir);
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            tx.create_table("t").unwrap();
            // Visible rows on both sides of where the invisible ones will go; with a
            // tree, "k" is checkpointed and then overwritten in the store.
            for k in ["b", "k", "z"] {
                tx.put("t", k.as_bytes(), b"old").unwrap();
            }
            tx.commit().unwrap();
            if with_tree {
                db.checkpoint().unwrap();
                let mut tx = c.begin().unwrap();
                tx.put("t", b"k", b"new").unwrap();
                tx.put("t", b"m", b"new").unwrap();
                tx.commit().unwrap();
            }
            let mut rc = db.connect();
            let reader = rc.begin_read().unwrap();
            // 5,000 keys on each side of "k", committed after the reader began: some
            // batch (4,096 keys examined at most) examines only those.
            let mut tx = c.begin().unwrap();
            for i in 0..5000u32 {
                tx.put("t", format!("c{i:04}").as_bytes(), b"late").unwrap();
                tx.put("t", format!("n{i:04}").as_bytes(), b"late").unwrap();
            }
            tx.commit().unwrap();
            let mut want: Vec<(Vec<u8>, Vec<u8>)> = if with_tree {
                vec![("b", "old"), ("k", "new"), ("m", "new"), ("z", "old")]
            } else {
                vec![("b", "old"), ("k", "old"), ("z", "old")]
            }
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
            if reverse {
                want.reverse();
            }
            let all = (Bound::Unbounded, Bound::Unbounded);
            let got = collect(&reader, &all.0, &all.1, reverse);
            assert_eq!(got, want, "reverse {reverse}, tree {with_tree}");
            let edge = if reverse {
                reader.last("t").unwrap()
            } else {
                reader.first("t").unwrap()
            };
            let edge = edge.map(|(k, v)| (k, v.to_vec()));
            assert_eq!(edge.as_ref(), want.first(), "first/last, reverse {reverse}");
            let owned: Vec<(Vec<u8>, Vec<u8>)> = if reverse {
                reader
                    .range_rev::<&[u8], _>("t", ..)
                    .unwrap()
                    .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
                    .collect()
            } else {
                reader
                    .range::<&[u8], _>("t", ..)
                    .unwrap()
                    .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
                    .collect()
            };
            assert_eq!(owned, want, "owned, reverse {reverse}, tree {with_tree}");
        }
    }
}

/// `first` and `last` past many keys their snapshot cannot see (committed after the
/// reader began, at both ends of the table): the visible key, found by a store call per
/// 4,096 keys passed (it was one call, one tree descent and, under Serializable, one
/// recorded range per key).
#[test]
fn first_and_last_pass_keys_their_snapshot_cannot_see() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir);
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("t").unwrap();
    tx.put("t", b"m", b"visible").unwrap();
    tx.commit().unwrap();
    let mut rc = db.connect();
    let reader = rc.begin().unwrap();
    let mut tx = c.begin().unwrap();
    for i in 0..20_000u32 {
        tx.put("t", format!("a{i:05}").as_bytes(), b"late").unwrap();
        tx.put("t", format!("x{i:05}").as_bytes(), b"late").unwrap();
    }
    tx.commit().unwrap();
    let first = reader.first("t").unwrap().unwrap();
    let last = reader.last("t").unwrap().unwrap();
    assert_eq!(
        (first.0.as_slice(), &*first.1),
        (&b"m"[..], &b"visible"[..])
    );
    assert_eq!((last.0.as_slice(), &*last.1), (&b"m"[..], &b"visible"[..]));
}
