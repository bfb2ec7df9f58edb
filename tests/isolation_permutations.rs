//! Every interleaving of two PostgreSQL isolation specs, as PostgreSQL's isolation tester
//! runs them: `receipt-report.spec` (210 permutations) and `two-ids.spec` (90).
//!
//! Each session is a list of steps followed by its commit; a session's transaction begins
//! at its first step (where PostgreSQL takes its snapshot). For every permutation, at each
//! level, the committed transactions' observations and the final state are checked
//! against every serial order of the committed transactions, replayed on a `BTreeMap`
//! model. The order must also respect real time (a transaction that committed before
//! another began comes first: strict serializability, which SSI gives because its abort
//! rule never relies on a read-only transaction's snapshot).
//!
//! Expected: at Serializable every outcome is strictly serializable and every permutation
//! the spec lists as a required failure aborts something (other aborts are false
//! positives: allowed, counted, not asserted). At Snapshot nothing aborts (the writers
//! write disjoint keys) and the outcome is anomalous exactly in the required permutations.

mod isolation_support;

use capsuledb::Isolation::{self, Serializable, Snapshot};
use capsuledb::{Connection, Error, Transaction};
use isolation_support::*;
use std::collections::BTreeMap;

/// What a step may do: the same code runs on the engine and on the model.
trait Kv {
    fn get(&mut self, table: &str, key: &str) -> Option<i64>;
    fn put(&mut self, table: &str, key: &str, v: i64);
    fn scan(&mut self, table: &str, lo: &str, hi: &str) -> Vec<(String, i64)>;
}

struct OnEngine<'a, 'c>(&'a mut Transaction<'c>);

impl Kv for OnEngine<'_, '_> {
    fn get(&mut self, table: &str, key: &str) -> Option<i64> {
        get_int(self.0, table, key)
    }
    fn put(&mut self, table: &str, key: &str, v: i64) {
        put_int(self.0, table, key, v);
    }
    fn scan(&mut self, table: &str, lo: &str, hi: &str) -> Vec<(String, i64)> {
        scan(self.0, table, lo, hi)
    }
}

type State = BTreeMap<(String, String), i64>;

struct OnModel<'a>(&'a mut State);

impl Kv for OnModel<'_> {
    fn get(&mut self, table: &str, key: &str) -> Option<i64> {
        self.0.get(&(table.to_string(), key.to_string())).copied()
    }
    fn put(&mut self, table: &str, key: &str, v: i64) {
        self.0.insert((table.to_string(), key.to_string()), v);
    }
    fn scan(&mut self, table: &str, lo: &str, hi: &str) -> Vec<(String, i64)> {
        let (lo, hi) = (
            (table.to_string(), lo.to_string()),
            (table.to_string(), hi.to_string()),
        );
        self.0
            .range(lo..hi)
            .map(|((_, k), v)| (k.clone(), *v))
            .collect()
    }
}

/// A step: runs on either store and returns what it observed.
type Step = fn(&mut dyn Kv) -> String;

struct Spec {
    name: &'static str,
    setup: &'static [(&'static str, &'static str, i64)],
    /// Per session, its steps; each session commits after its last step.
    sessions: Vec<Vec<Step>>,
    /// The permutations the spec says must fail.
    required_failure: fn(&Timeline) -> bool,
    /// How many permutations that is, per the spec's own comment.
    required_count: usize,
}

/// Where each session began (its first step) and committed, as permutation indexes.
struct Timeline {
    begin: Vec<usize>,
    commit: Vec<usize>,
}

impl Timeline {
    fn of(perm: &[usize], sessions: usize) -> Timeline {
        let mut begin = vec![usize::MAX; sessions];
        let mut commit = vec![0; sessions];
        for (i, &s) in perm.iter().enumerate() {
            begin[s] = begin[s].min(i);
            commit[s] = i; // the last occurrence is the commit
        }
        Timeline { begin, commit }
    }

    fn overlap(&self, a: usize, b: usize) -> bool {
        self.begin[a] < self.commit[b] && self.begin[b] < self.commit[a]
    }
}

struct Outcome {
    committed: Vec<bool>,
    observed: Vec<Vec<String>>,
    state: State,
}

/// All orderings of the multiset where session `s` appears `counts[s]` times.
fn interleavings(counts: &[usize]) -> Vec<Vec<usize>> {
    fn go(left: &mut [usize], cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if left.iter().all(|&n| n == 0) {
            out.push(cur.clone());
            return;
        }
        for s in 0..left.len() {
            if left[s] > 0 {
                left[s] -= 1;
                cur.push(s);
                go(left, cur, out);
                cur.pop();
                left[s] += 1;
            }
        }
    }
    let mut out = Vec::new();
    go(&mut counts.to_vec(), &mut Vec::new(), &mut out);
    out
}

fn setup_state(spec: &Spec) -> State {
    spec.setup
        .iter()
        .map(|&(t, k, v)| ((t.to_string(), k.to_string()), v))
        .collect()
}

fn run(spec: &Spec, perm: &[usize], iso: Isolation) -> Outcome {
    let (_d, db) = open();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    let mut tables: Vec<&str> = spec.setup.iter().map(|r| r.0).collect();
    tables.dedup();
    for t in &tables {
        tx.create_table(t).unwrap();
    }
    for &(t, k, v) in spec.setup {
        put_int(&mut tx, t, k, v);
    }
    tx.commit().unwrap();

    let n = spec.sessions.len();
    let mut conns: Vec<Connection> = (0..n).map(|_| db.connect()).collect();
    let mut idle: Vec<Option<&mut Connection>> = conns.iter_mut().map(Some).collect();
    let mut txs: Vec<Option<Transaction<'_>>> = (0..n).map(|_| None).collect();
    let mut next = vec![0; n];
    let mut out = Outcome {
        committed: vec![false; n],
        observed: vec![Vec::new(); n],
        state: State::new(),
    };
    for &s in perm {
        if next[s] < spec.sessions[s].len() {
            if txs[s].is_none() {
                let conn = idle[s].take().unwrap();
                txs[s] = Some(conn.begin_with(iso).unwrap());
            }
            let step = spec.sessions[s][next[s]];
            let seen = step(&mut OnEngine(txs[s].as_mut().unwrap()));
            out.observed[s].push(seen);
            next[s] += 1;
        } else {
            match txs[s].take().unwrap().commit() {
                Ok(_) => out.committed[s] = true,
                Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("{}: {perm:?}: unexpected error {e:?}", spec.name),
            }
        }
    }
    let mut c = db.connect();
    let reader = c.begin_read().unwrap();
    for t in &tables {
        for (k, v) in select_all(&reader, t) {
            out.state.insert((t.to_string(), k), v);
        }
    }
    out
}

/// Whether some serial order of the committed sessions (respecting real time when
/// `strict`) reproduces every committed observation and the final state.
fn serializable(spec: &Spec, out: &Outcome, time: &Timeline, strict: bool) -> bool {
    let ids: Vec<usize> = (0..spec.sessions.len())
        .filter(|&s| out.committed[s])
        .collect();
    let orders = interleavings(&vec![1; ids.len()]);
    orders.iter().any(|order| {
        let order: Vec<usize> = order.iter().map(|&i| ids[i]).collect();
        let respects_time = order.iter().enumerate().all(|(i, &a)| {
            order[i + 1..]
                .iter()
                .all(|&b| time.commit[b] > time.begin[a])
        });
        if strict && !respects_time {
            return false;
        }
        let mut state = setup_state(spec);
        for &s in &order {
            let seen: Vec<String> = spec.sessions[s]
                .iter()
                .map(|step| step(&mut OnModel(&mut state)))
                .collect();
            if seen != out.observed[s] {
                return false;
            }
        }
        state == out.state
    })
}

fn check_all(spec: &Spec, iso: Isolation) {
    let counts: Vec<usize> = spec.sessions.iter().map(|s| s.len() + 1).collect();
    let perms = interleavings(&counts);
    let mut required = 0;
    let mut false_positives = 0;
    for perm in &perms {
        let time = Timeline::of(perm, spec.sessions.len());
        let must_fail = (spec.required_failure)(&time);
        required += usize::from(must_fail);
        let out = run(spec, perm, iso);
        let aborted = out.committed.iter().any(|c| !c);
        let strict = serializable(spec, &out, &time, true);
        match iso {
            Serializable => {
                assert!(
                    strict,
                    "{}: {perm:?}: a non-serializable outcome was committed: {:?} {:?}",
                    spec.name, out.committed, out.observed
                );
                assert!(
                    !must_fail || aborted,
                    "{}: {perm:?}: a required failure committed everything",
                    spec.name
                );
                false_positives += usize::from(aborted && !must_fail);
            }
            Snapshot => {
                assert!(!aborted, "{}: {perm:?}: Snapshot aborted", spec.name);
                assert_eq!(
                    strict, !must_fail,
                    "{}: {perm:?}: Snapshot is anomalous exactly in the required failures",
                    spec.name
                );
            }
        }
    }
    assert_eq!(required, spec.required_count, "{}: required set", spec.name);
    eprintln!(
        "{}: {} permutations, {required} required failures, {false_positives} false positives",
        spec.name,
        perms.len()
    );
}

// ---------------------------------------------------------------------------------------
// receipt-report.spec. s1: rxwy1 c1; s2: wx2 c2; s3 (read only): rx3 ry3 c3. Required
// failures: s1 overlaps s2 and s3, and s2 commits before s3's first read.

fn receipt_report() -> Spec {
    Spec {
        name: "receipt-report",
        setup: &[
            ("ctl", "receipt", 20081222),
            ("receipt", "20081222/0001", 100),
            ("receipt", "20081222/0002", 200),
        ],
        sessions: vec![
            vec![|kv: &mut dyn Kv| {
                // rxwy1: insert a receipt dated with the current deposit date.
                let day = kv.get("ctl", "receipt").unwrap();
                kv.put("receipt", &format!("{day}/0003"), 400);
                day.to_string()
            }],
            vec![|kv: &mut dyn Kv| {
                // wx2: close the day.
                kv.put("ctl", "receipt", 20081223);
                String::new()
            }],
            vec![
                |kv: &mut dyn Kv| format!("{:?}", kv.get("ctl", "receipt")), // rx3
                |kv: &mut dyn Kv| format!("{:?}", kv.scan("receipt", "20081222/", "200812220")), // ry3
            ],
        ],
        required_failure: |t| t.overlap(0, 1) && t.overlap(0, 2) && t.commit[1] < t.begin[2],
        required_count: 6,
    }
}

#[test]
fn receipt_report_all_interleavings_serializable() {
    check_all(&receipt_report(), Serializable);
}

#[test]
fn receipt_report_all_interleavings_snapshot() {
    check_all(&receipt_report(), Snapshot);
}

// ---------------------------------------------------------------------------------------
// two-ids.spec. s1: wx1 (D1 = D1 + 1) c1; s2: rxwy2 (D2 = D1 + 1) c2; s3: ry3 (read D2)
// c3. Required failures: s2 overlaps s1 and s3, and s1 commits before s3's read. (These
// outcomes are serializable only against real time: T3 -> T2 -> T1 although T1
// committed before T3 began.)

fn two_ids() -> Spec {
    Spec {
        name: "two-ids",
        setup: &[("d1", "id", 1), ("d2", "id", 1)],
        sessions: vec![
            vec![|kv: &mut dyn Kv| {
                let x = kv.get("d1", "id").unwrap();
                kv.put("d1", "id", x + 1);
                x.to_string()
            }],
            vec![|kv: &mut dyn Kv| {
                let x = kv.get("d1", "id").unwrap();
                kv.put("d2", "id", x + 1);
                x.to_string()
            }],
            vec![|kv: &mut dyn Kv| format!("{:?}", kv.get("d2", "id"))],
        ],
        required_failure: |t| t.overlap(1, 0) && t.overlap(1, 2) && t.commit[0] < t.begin[2],
        required_count: 4,
    }
}

#[test]
fn two_ids_all_interleavings_serializable() {
    check_all(&two_ids(), Serializable);
}

#[test]
fn two_ids_all_interleavings_snapshot() {
    check_all(&two_ids(), Snapshot);
}
