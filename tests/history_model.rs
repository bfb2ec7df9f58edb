//! Time travel against a model: every committed state is kept in the model, and
//! `begin_read_at` (gets, forward and reverse scans, table lists) and `versions` are
//! checked at random retained sequences, across checkpoints, reopens, compactions,
//! table drops and `drop_history_before`. Every state outside the window must be refused
//! with `HistoryUnavailable`.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Error, HistoryRetention, Options};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Op {
    /// Puts (or, with `None`, deletes) keys in one commit.
    Write(u8, Vec<(u8, Option<usize>)>),
    Create(u8),
    Drop(u8),
    Clear(u8),
    Checkpoint,
    Reopen,
    Compact,
    /// Reads at the state this far back from the newest (in commits).
    ReadBack(usize),
    DropHistoryBack(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let write = (
        0u8..2,
        proptest::collection::vec(
            (
                0u8..12,
                prop_oneof![3 => (0usize..30).prop_map(Some), 1 => Just(None), 1 => (1500usize..3000).prop_map(Some)],
            ),
            1..4,
        ),
    );
    prop_oneof![
        10 => write.prop_map(|(t, w)| Op::Write(t, w)),
        1 => (0u8..2).prop_map(Op::Create),
        1 => (0u8..2).prop_map(Op::Drop),
        1 => (0u8..2).prop_map(Op::Clear),
        3 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
        6 => (0usize..40).prop_map(Op::ReadBack),
        1 => (0usize..30).prop_map(Op::DropHistoryBack),
    ]
}

/// `(seq, value)` pairs, `None` for a deletion.
type Versions = Vec<(u64, Option<Vec<u8>>)>;

type State = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn name(t: u8) -> String {
    format!("t{t}")
}

fn value(k: u8, len: usize, salt: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 + u64::from(k) * 7 + salt) as u8)
        .collect()
}

/// Most history keys a tree keeps a directory of: every tree of these runs (`ALL`), or
/// only small ones (`FEW`: the others keep a filter), or none (`NONE`).
const ALL: usize = usize::MAX;
const FEW: usize = 4;
const NONE: usize = 0;

fn open(sim: &SimStorage, retention: HistoryRetention, directory_keys: usize) -> Database {
    Options::new()
        .random_seed(5)
        .history_retention(retention)
        .history_directory_keys(directory_keys)
        .open_storage(Arc::new(sim.clone()))
        .unwrap()
}

/// The model: every committed state by sequence (with each table's identity: a
/// drop or clear gives the name a new one), and every write of each key.
struct Model {
    states: BTreeMap<u64, (State, BTreeMap<String, u64>)>,
    /// `(table identity, key)` -> `(seq, value)` writes, oldest first.
    writes: BTreeMap<(u64, Vec<u8>), Versions>,
}

impl Model {
    fn at(&self, seq: u64) -> &(State, BTreeMap<String, u64>) {
        self.states
            .range(..=seq)
            .next_back()
            .map(|(_, s)| s)
            .unwrap()
    }

    /// What `versions(table, key)` must give at `seq` with the window starting at
    /// `floor`: the writes of the key in the table's identity at `seq`, newest first,
    /// pruned at the floor.
    fn versions(
        &self,
        identity: u64,
        key: &[u8],
        seq: u64,
        floor: u64,
    ) -> Vec<(u64, Option<Vec<u8>>)> {
        let mut out: Vec<(u64, Option<Vec<u8>>)> = self
            .writes
            .get(&(identity, key.to_vec()))
            .map(|w| w.iter().filter(|(s, _)| *s <= seq).cloned().collect())
            .unwrap_or_default();
        out.reverse();
        if let Some(i) = out.iter().position(|(s, _)| *s <= floor) {
            out.truncate(i + 1);
        }
        if let Some(last) = out.last_mut()
            && last.0 < floor
        {
            last.0 = floor;
        }
        if out.last().is_some_and(|(s, v)| *s <= floor && v.is_none()) {
            out.pop();
        }
        out
    }
}

/// Checks the state at `seq`; the retention promises every state from `promised` on (a
/// refusal of one of them fails: the engine's own `oldest` would accept a window that
/// lost them all).
fn check_at(db: &Database, model: &Model, seq: u64, promised: u64) {
    let tx = match db.begin_read_at(seq) {
        Ok(tx) => tx,
        Err(Error::HistoryUnavailable { oldest, .. }) => {
            assert!(
                seq < oldest,
                "seq {seq} refused inside the window from {oldest}"
            );
            assert!(
                seq < promised,
                "seq {seq} refused, though the retention keeps every state from {promised}"
            );
            return;
        }
        Err(e) => panic!("begin_read_at({seq}): {e}"),
    };
    let (floor, _) = db.history_window();
    assert!(seq >= floor);
    let (want, identities) = model.at(seq);
    assert_eq!(
        tx.tables().unwrap(),
        want.keys().cloned().collect::<Vec<_>>(),
        "tables at {seq}"
    );
    for (t, m) in want {
        let got: Vec<(Vec<u8>, Vec<u8>)> = tx
            .iter(t)
            .unwrap()
            .map(|r| r.map(|(k, v)| (k, v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        let expect: Vec<(Vec<u8>, Vec<u8>)> =
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(got, expect, "scan of {t} at {seq}");
        let mut rev: Vec<Vec<u8>> = tx
            .range_rev::<&[u8], _>(t, ..)
            .unwrap()
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()
            .unwrap();
        rev.reverse();
        assert_eq!(
            rev,
            m.keys().cloned().collect::<Vec<_>>(),
            "reverse scan of {t} at {seq}"
        );
        for k in 0u8..12 {
            assert_eq!(
                tx.get(t, &[k]).unwrap().as_ref(),
                m.get(&vec![k]),
                "get {t}/{k} at {seq}"
            );
        }
        let floor = db.history_window().0.min(seq);
        for k in 0u8..12 {
            let got = tx.versions(t, &[k]).unwrap();
            let want = model.versions(identities[t], &[k], seq, floor);
            assert_eq!(got, want, "versions of {t}/{k} at {seq} (floor {floor})");
        }
    }
}

fn run(ops: Vec<Op>, retention: HistoryRetention, directory_keys: usize) {
    let sim = SimStorage::new();
    let mut db = Some(open(&sim, retention, directory_keys));
    let mut cur: State = BTreeMap::new();
    let mut ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut next_id = 0u64;
    let mut model = Model {
        states: BTreeMap::from([(0, (BTreeMap::new(), BTreeMap::new()))]),
        writes: BTreeMap::new(),
    };
    let mut salt = 0u64;
    // The highest sequence `drop_history_before` was asked for.
    let mut dropped_to = 0u64;
    // The oldest state the retention promises, given the newest.
    let promised = |newest: u64, dropped_to: u64| match retention {
        HistoryRetention::Commits(n) => newest.saturating_sub(n).max(dropped_to).min(newest),
        HistoryRetention::Snapshots => newest,
        _ => dropped_to.min(newest),
    };
    for op in ops {
        let d = db.as_ref().unwrap();
        let mut conn = d.connect();
        let committed = match &op {
            Op::Write(t, writes) => {
                let t = name(*t);
                if !cur.contains_key(&t) {
                    continue;
                }
                let mut tx = conn.begin().unwrap();
                let mut last: BTreeMap<u8, Option<Vec<u8>>> = BTreeMap::new();
                for (k, v) in writes {
                    salt += 1;
                    match v {
                        Some(len) => {
                            let v = value(*k, *len, salt);
                            tx.put(&t, &[*k], &v).unwrap();
                            cur.get_mut(&t).unwrap().insert(vec![*k], v.clone());
                            last.insert(*k, Some(v));
                        }
                        None => {
                            tx.delete(&t, &[*k]).unwrap();
                            cur.get_mut(&t).unwrap().remove(&vec![*k]);
                            last.insert(*k, None);
                        }
                    }
                }
                let seq = tx.commit().unwrap().seq;
                for (k, v) in last {
                    model
                        .writes
                        .entry((ids[&t], vec![k]))
                        .or_default()
                        .push((seq, v));
                }
                Some(seq)
            }
            Op::Create(t) => {
                let t = name(*t);
                if cur.contains_key(&t) {
                    continue;
                }
                let mut tx = conn.begin().unwrap();
                tx.create_table(&t).unwrap();
                cur.insert(t.clone(), BTreeMap::new());
                next_id += 1;
                ids.insert(t, next_id);
                Some(tx.commit().unwrap().seq)
            }
            Op::Drop(t) | Op::Clear(t) => {
                let t = name(*t);
                if !cur.contains_key(&t) {
                    continue;
                }
                let mut tx = conn.begin().unwrap();
                if matches!(op, Op::Drop(_)) {
                    tx.drop_table(&t).unwrap();
                    cur.remove(&t);
                    ids.remove(&t);
                } else {
                    tx.clear_table(&t).unwrap();
                    cur.insert(t.clone(), BTreeMap::new());
                    next_id += 1;
                    ids.insert(t, next_id);
                }
                Some(tx.commit().unwrap().seq)
            }
            Op::Checkpoint => {
                d.checkpoint().unwrap();
                None
            }
            Op::Compact => {
                d.compact().unwrap();
                None
            }
            Op::Reopen => {
                drop(conn);
                db.take().unwrap().close().unwrap();
                db = Some(open(&sim, retention, directory_keys));
                let r = db.as_ref().unwrap().check_integrity().unwrap();
                assert!(r.problems.is_empty(), "{:?}", r.problems);
                None
            }
            Op::ReadBack(back) => {
                let newest = *model.states.keys().next_back().unwrap();
                let p = promised(newest, dropped_to);
                check_at(d, &model, newest.saturating_sub(*back as u64), p);
                None
            }
            Op::DropHistoryBack(back) => {
                let newest = *model.states.keys().next_back().unwrap();
                dropped_to = dropped_to.max(newest.saturating_sub(*back as u64));
                let floor = d
                    .drop_history_before(newest.saturating_sub(*back as u64))
                    .unwrap();
                assert!(floor <= newest);
                assert!(
                    matches!(
                        d.begin_read_at(floor.saturating_sub(1)),
                        Err(Error::HistoryUnavailable { .. })
                    ) || floor == 0
                );
                None
            }
        };
        if let Some(seq) = committed {
            model.states.insert(seq, (cur.clone(), ids.clone()));
        }
    }
    let d = db.as_ref().unwrap();
    let newest = *model.states.keys().next_back().unwrap();
    for seq in 0..=newest {
        check_at(d, &model, seq, promised(newest, dropped_to));
    }
    let r = d.check_integrity().unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn time_travel_matches_the_model_with_a_long_window(ops in proptest::collection::vec(op(), 1..70)) {
        run(ops, HistoryRetention::Commits(1_000), ALL);
    }

    #[test]
    fn time_travel_matches_the_model_with_filters_only(ops in proptest::collection::vec(op(), 1..70)) {
        run(ops, HistoryRetention::Commits(1_000), NONE);
    }

    #[test]
    fn time_travel_matches_the_model_with_a_short_window(ops in proptest::collection::vec(op(), 1..70)) {
        run(ops, HistoryRetention::Commits(6), FEW);
    }

    #[test]
    fn time_travel_matches_the_model_without_retention(ops in proptest::collection::vec(op(), 1..50)) {
        run(ops, HistoryRetention::Snapshots, ALL);
    }
}
