//! Tests of [`super::TableWrites`]: against a `BTreeMap` model, and the run leveling.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, Option<Vec<u8>>),
    Get(Vec<u8>),
    Range(Vec<u8>, Vec<u8>, bool, bool),
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    // Few distinct keys, many sharing a prefix: overwrites and prefix ties.
    prop_oneof![
        prop::collection::vec(0u8..3, 0..7),
        prop::collection::vec(any::<u8>(), 0..3),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (small_key(), prop::option::of(prop::collection::vec(any::<u8>(), 0..5)))
            .prop_map(|(k, v)| Op::Put(k, v)),
        1 => small_key().prop_map(Op::Get),
        1 => (small_key(), small_key(), any::<bool>(), any::<bool>())
            .prop_map(|(a, b, inc, rev)| Op::Range(a, b, inc, rev)),
    ]
}

/// Runs `ops` against a `BTreeMap`: every get, range (both directions) and the full
/// iteration.
fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut w = TableWrites::new();
    let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(k, v) => {
                w.insert(&k, v.as_deref()).unwrap();
                model.insert(k, v);
            }
            Op::Get(k) => {
                let got = w.get(&k).map(|v| v.map(<[u8]>::to_vec));
                prop_assert_eq!(got, model.get(&k).cloned());
            }
            Op::Range(a, b, inclusive, reverse) => {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let hi_bound = if inclusive {
                    Bound::Included(hi.as_slice())
                } else {
                    Bound::Excluded(hi.as_slice())
                };
                let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = w
                    .range(Bound::Included(lo.as_slice()), hi_bound, reverse)
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect();
                let mut want: Vec<(Vec<u8>, Option<Vec<u8>>)> = if !inclusive && lo == hi {
                    Vec::new()
                } else {
                    model
                        .range::<[u8], _>((Bound::Included(lo.as_slice()), hi_bound))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                };
                if reverse {
                    want.reverse();
                }
                prop_assert_eq!(got, want);
            }
        }
    }
    let all: Vec<(Vec<u8>, Option<Vec<u8>>)> = w
        .iter()
        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
        .collect();
    let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = model.into_iter().collect();
    prop_assert_eq!(w.len(), want.len());
    prop_assert_eq!(all, want);
    Ok(())
}

/// Keys of 3 bytes and values of `value_len` bytes, `weight` times as often as another
/// key, value length (below `other_max`) or a tombstone: runs whose records leave out
/// their lengths, merged with runs that do not.
fn shaped_op(weight: u32, value_len: usize, other_max: usize) -> impl Strategy<Value = Op> {
    let key = prop_oneof![
        weight => prop::collection::vec(0u8..4, 3),
        1 => small_key(),
    ];
    let value = prop_oneof![
        weight => prop::collection::vec(any::<u8>(), value_len).prop_map(Some),
        1 => prop::option::of(prop::collection::vec(any::<u8>(), 0..other_max)),
    ];
    prop_oneof![
        6 => (key.clone(), value).prop_map(|(k, v)| Op::Put(k, v)),
        1 => key.clone().prop_map(Op::Get),
        1 => (key.clone(), key, any::<bool>(), any::<bool>())
            .prop_map(|(a, b, inc, rev)| Op::Range(a, b, inc, rev)),
    ]
}

/// Mostly puts in ascending key order (a big-endian counter that sometimes skips),
/// most with a 2-byte value and some with other values or tombstones, among
/// overwrites of earlier keys, other keys, gets and ranges: runs appended to one
/// another (some re-encoded to the shape they join), then merged with runs that
/// overlap them.
fn ascending_ops() -> impl Strategy<Value = Vec<Op>> {
    let step = (
        0u8..12,
        0u32..3,
        prop::option::of(prop::collection::vec(any::<u8>(), 0..4)),
        small_key(),
        any::<bool>(),
        any::<bool>(),
    );
    prop::collection::vec(step, 0..600).prop_map(|steps| {
        let key = |n: u32| n.to_be_bytes().to_vec();
        let mut next = 0u32;
        steps
            .into_iter()
            .map(
                |(kind, skip, value, other, inclusive, reverse)| match kind {
                    0..=6 => {
                        next += skip + 1;
                        Op::Put(key(next), Some(vec![kind, 7]))
                    }
                    7 => {
                        next += skip + 1;
                        Op::Put(key(next), value)
                    }
                    8 => Op::Put(key(next / 2), value),
                    9 => Op::Put(other, value),
                    10 => Op::Get(key(next.saturating_sub(skip * 5))),
                    _ => Op::Range(key(next / 3), key(next), inclusive, reverse),
                },
            )
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The same, with keys put mostly in ascending order.
    #[test]
    fn ascending_puts_behave_as_a_sorted_map(ops in ascending_ops()) {
        check(ops)?;
    }

    /// Against a `BTreeMap`: every get, range (both directions) and full iteration.
    #[test]
    fn behaves_as_a_sorted_map(ops in prop::collection::vec(op(), 0..600)) {
        check(ops)?;
    }

    /// The same, with puts mostly of one shape (2-byte values).
    #[test]
    fn uniform_puts_behave_as_a_sorted_map(ops in prop::collection::vec(shaped_op(12, 2, 5), 0..600)) {
        check(ops)?;
    }

    /// The same, with puts mostly of one shape whose records are long enough to get
    /// chunks of their own (which merges move instead of copying): moved records
    /// must keep their bytes only where the shapes agree.
    #[test]
    fn large_records_behave_as_a_sorted_map(ops in prop::collection::vec(shaped_op(8, 20, 40), 0..600)) {
        check(ops)?;
    }
}

/// A `WriteSet` leaf node holds 11 of these: at 80 bytes it stays within the
/// allocator's small-size cache (at 88 every transaction's first write paid for a
/// large-block allocation).
#[test]
fn table_writes_stay_small() {
    assert!(std::mem::size_of::<TableWrites>() <= 80);
}

#[test]
fn runs_stay_few_over_many_puts() {
    let mut w = TableWrites::new();
    let puts = 100_000u32;
    for i in 0..puts {
        let key = (i.wrapping_mul(2_654_435_761)).to_be_bytes();
        w.insert(&key, Some(b"v")).unwrap();
    }
    // Fewer than FAN_IN runs per number of merges.
    let levels = (f64::from(puts) / TAIL_MAX as f64)
        .log(FAN_IN as f64)
        .ceil() as usize
        + 1;
    assert!(w.runs.len() < FAN_IN * levels, "{} runs", w.runs.len());
    assert_eq!(w.len(), 100_000);
    assert!(w.keys().zip(w.keys().skip(1)).all(|(a, b)| a < b));
    // Distinct keys: every record is live, and the runs hold nothing else.
    assert_eq!(
        w.buffer_len(),
        w.runs.iter().map(Run::bytes).sum::<usize>() + w.tail_data.len()
    );
    assert_eq!(
        w.payload(),
        w.iter()
            .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
            .sum::<usize>()
    );
}

/// A load in key order with an earlier key rewritten now and then: a tail holding
/// that key is pushed as a run of its own, the next ascending tail appended to it
/// raised its level past the run before, which then never merged again (two more
/// runs a cycle, each holding a dead copy of the rewritten key, counted in the
/// payload). Runs stay few, and the payload counts the live data.
#[test]
fn runs_stay_few_over_an_ordered_load_with_rewrites() {
    let mut w = TableWrites::new();
    let mut row = 0u32;
    let mut rows = |w: &mut TableWrites, n: u32| {
        for _ in 0..n {
            let key = [b"r".as_slice(), &row.to_be_bytes()].concat();
            w.insert(&key, Some(b"v")).unwrap();
            row += 1;
        }
    };
    let cycles = 1_000;
    for _ in 0..cycles {
        rows(&mut w, 3);
        w.insert(b"m", Some(&[0; 8])).unwrap();
        rows(&mut w, 3);
        w.insert(b"m", Some(&[0; 8])).unwrap();
        rows(&mut w, 4);
    }
    let puts = cycles * 12;
    let levels = (f64::from(puts) / TAIL_MAX as f64)
        .log(FAN_IN as f64)
        .ceil() as usize
        + 1;
    assert!(w.runs.len() < FAN_IN * levels, "{} runs", w.runs.len());
    assert_eq!(w.len(), 10 * cycles as usize + 1);
    let live: usize = w
        .iter()
        .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
        .sum();
    assert!(
        w.payload() < live + 9 * FAN_IN * levels,
        "{} of {live}",
        w.payload()
    );
    assert!(w.keys().zip(w.keys().skip(1)).all(|(a, b)| a < b));
    assert_eq!(w.get(b"m"), Some(Some(&[0u8; 8][..])));
}

/// A few keys overwritten many times: merges keep about their newest puts, not every
/// put (here 400,000 puts of 100-byte values, 40 MB in all).
#[test]
fn overwrites_do_not_pile_up() {
    let mut w = TableWrites::new();
    for i in 0..400_000u32 {
        let key = (i % 10).to_be_bytes();
        let mut value = [0u8; 100];
        value[..4].copy_from_slice(&i.to_le_bytes());
        w.insert(&key, Some(&value)).unwrap();
    }
    assert!(w.buffer_len() <= 1 << 20, "{}", w.buffer_len());
    assert!(w.payload() <= 1 << 20, "{}", w.payload());
    assert_eq!(w.len(), 10);
    for k in 0..10u32 {
        let last = 400_000 - 10 + k;
        let v = w.get(&k.to_be_bytes()).unwrap().unwrap();
        assert_eq!(&v[..4], &last.to_le_bytes());
    }
}

/// The empty key alone in a run, deleted or put with an empty value: its record
/// encoded to no bytes (the run left out both lengths), and reads and merges passed
/// over it, so the transaction read the key's committed value and its commit left
/// the delete out.
#[test]
fn the_empty_key_alone_in_a_run_is_kept() {
    for value in [None, Some(&b""[..])] {
        let mut w = TableWrites::new();
        for _ in 0..4 * TAIL_BYTES {
            w.insert(b"", value).unwrap();
        }
        assert_eq!(w.get(b""), Some(value), "{value:?}");
        assert_eq!(w.iter().collect::<Vec<_>>(), vec![(&b""[..], value)]);
        w.insert(b"k", Some(b"v")).unwrap();
        for _ in 0..4 * TAIL_BYTES {
            w.insert(b"x", None).unwrap();
        }
        assert_eq!(w.get(b""), Some(value), "{value:?} after merges");
        assert_eq!(w.len(), 3);
    }
}

#[test]
fn long_values_and_keys_round_trip() {
    let mut w = TableWrites::new();
    let key = vec![7u8; 2048];
    let value = vec![9u8; 70_000];
    w.insert(&key, Some(&value)).unwrap();
    w.insert(b"", None).unwrap();
    assert_eq!(w.get(&key), Some(Some(value.as_slice())));
    assert_eq!(w.get(b""), Some(None));
    assert_eq!(w.get(b"x"), None);
}
