//! `Range` over a transaction's own writes merged with committed entries (in the tree
//! and in the version store), against a `BTreeMap` model: forward, reverse, both ends
//! alternately, bounded sub-ranges, `first`, `last`, `len` and `is_empty`, with batches
//! of one key up to the default. Own writes past a batch's worth end a batch early (a
//! fetch once copied every own write of its span: a table written only by the
//! transaction was copied whole for one `first`); what a range hands out must not change.

use capsuledb::Database;
use capsuledb::rng::Rng;
use std::collections::BTreeMap;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: u64) -> Vec<u8> {
    format!("k{i:04}").into_bytes()
}

/// Table `t` with committed keys (some checkpointed into the tree, some only in the
/// version store), and the model of what the next transaction sees.
fn committed(db: &Database, rng: &mut Rng) -> Model {
    let mut model = Model::new();
    let mut c = db.connect();
    for round in 0..2 {
        let mut tx = c.begin().unwrap();
        if round == 0 {
            tx.create_table("t").unwrap();
        }
        for _ in 0..60 {
            let k = key(rng.below(400));
            let v = format!("c{round}-{}", rng.below(1000)).into_bytes();
            tx.put("t", &k, &v).unwrap();
            model.insert(k, v);
        }
        tx.commit().unwrap();
        if round == 0 {
            db.checkpoint().unwrap();
        }
    }
    model
}

fn collect(range: capsuledb::Range<'_, '_>, reverse: bool, both: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut range = range;
    if both {
        // Alternately from both ends, put back in order.
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            match range.next() {
                Some(e) => {
                    let (k, v) = e.unwrap();
                    front.push((k, v.to_vec()));
                }
                None => break,
            }
            match range.next_back() {
                Some(e) => {
                    let (k, v) = e.unwrap();
                    back.push((k, v.to_vec()));
                }
                None => break,
            }
        }
        back.reverse();
        front.extend(back);
        return front;
    }
    let mut out: Vec<_> = if reverse {
        range
            .rev()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k, v.to_vec()))
            .collect()
    } else {
        range
            .map(|e| e.unwrap())
            .map(|(k, v)| (k, v.to_vec()))
            .collect()
    };
    if reverse {
        out.reverse();
    }
    out
}

#[test]
fn ranges_over_many_own_writes_match_the_model() {
    for seed in 1..=12u64 {
        let mut rng = Rng::new(seed);
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("r.db")).unwrap();
        let mut model = committed(&db, &mut rng);
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        // Many own writes: runs of puts and deletes, some over committed keys, some
        // past the last committed key (where only own writes are).
        let own = 100 + rng.below(700);
        for _ in 0..own {
            let span = if rng.chance(1, 3) { 1200 } else { 400 };
            let k = key(rng.below(span));
            if rng.chance(1, 3) {
                tx.delete("t", &k).unwrap();
                model.remove(&k);
            } else {
                let v = format!("own-{}", rng.below(1000)).into_bytes();
                tx.put("t", &k, &v).unwrap();
                model.insert(k, v);
            }
        }
        let all: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
        for batch in [None, Some(1), Some(3), Some(16)] {
            for (reverse, both) in [(false, false), (true, false), (false, true)] {
                let range = tx.iter("t").unwrap();
                let range = match batch {
                    Some(n) => range.with_batch_size(n),
                    None => range,
                };
                assert_eq!(
                    collect(range, reverse, both),
                    all,
                    "seed {seed}, batch {batch:?}, reverse {reverse}, both ends {both}"
                );
            }
        }
        // Sub-ranges with bounds anywhere.
        for _ in 0..20 {
            let (a, b) = (key(rng.below(1300)), key(rng.below(1300)));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let want: Vec<_> = model
                .range(lo.clone()..hi.clone())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let got = collect(tx.range("t", lo.clone()..hi.clone()).unwrap(), false, false);
            assert_eq!(got, want, "seed {seed}, {lo:?}..{hi:?}");
            let got = collect(tx.range("t", lo.clone()..hi.clone()).unwrap(), true, false);
            assert_eq!(got, want, "seed {seed}, reverse {lo:?}..{hi:?}");
        }
        let first = tx.first("t").unwrap().map(|(k, v)| (k, v.to_vec()));
        let last = tx.last("t").unwrap().map(|(k, v)| (k, v.to_vec()));
        assert_eq!(first, all.first().cloned(), "seed {seed}");
        assert_eq!(last, all.last().cloned(), "seed {seed}");
        assert_eq!(tx.len("t").unwrap(), all.len() as u64, "seed {seed}");
        assert_eq!(tx.is_empty("t").unwrap(), all.is_empty(), "seed {seed}");
    }
}

/// A table created in the transaction and filled by it, then emptied from the front
/// one `first` at a time (a queue): every `first` is the smallest key left.
#[test]
fn a_queue_of_own_writes_pops_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("q.db")).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    tx.create_table("q").unwrap();
    for i in 0..3000u64 {
        tx.put("q", &key(i), b"v").unwrap();
    }
    assert!(!tx.is_empty("q").unwrap());
    for i in 0..3000u64 {
        let (k, _) = tx.first("q").unwrap().expect("a key left");
        assert_eq!(k, key(i));
        tx.delete("q", &k).unwrap();
    }
    assert!(tx.first("q").unwrap().is_none());
    assert!(tx.is_empty("q").unwrap());
}
