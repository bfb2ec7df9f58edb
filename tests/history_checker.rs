//! A white-box history checker.
//!
//! Seeded workloads run on many threads over a few hot keys: point reads, range scans
//! (forward, reverse, empty), puts and deletes, commits and rollbacks, at Serializable
//! and at Snapshot. Every value written names its writer, so every read says which
//! committed version it saw. From the recorded history the checker
//! - replays the committed writes in sequence order and checks every read against the
//!   newest version at or below the reader's snapshot (SI reads), and first-committer-wins;
//! - builds the dependency graph (ww, wr, rw) over committed transactions and, at
//!   Serializable, asserts it has no cycle;
//! - counts false aborts (an aborted transaction that, committed where it aborted, would
//!   close no cycle) and what plain read-set (OCC) validation would have aborted.
//!
//! Thread interleaving is up to the OS, so a seed fixes the operations each thread runs,
//! not the schedule; a failure message names the seed and prints the offending history.
//! The rates are printed for reports and never asserted.

mod history_support;

use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error, Isolation};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::{Arc, Barrier};

const THREADS: usize = 8;
const TXNS_PER_THREAD: u64 = 1500;
const TABLES: [&str; 3] = ["hot", "side", "wide"];
/// Key counts per table and the longest transaction.
#[derive(Clone, Copy, Debug)]
struct Profile {
    name: &'static str,
    keys: [u64; 3],
    ops_max: u64,
}

/// "wide" has more keys than the engine's first scan batch, so scans there span
/// batches; "tiny" packs longer transactions onto fewer keys.
const PROFILES: [Profile; 2] = [
    Profile {
        name: "hot",
        keys: [12, 4, 40],
        ops_max: 6,
    },
    Profile {
        name: "tiny",
        keys: [4, 2, 20],
        ops_max: 10,
    },
];
const SEEDS: [u64; 4] = [0x5eed_0001, 0xc0ff_ee00_1234, 0x0dd_ba11_5eed, 42];
/// Writer id of the setup transaction that creates the tables and the first values.
const SETUP_UID: Uid = 0;

type Tbl = usize;
type Key = Vec<u8>;
type Uid = u64;

fn key_name(i: u64) -> Key {
    format!("k{i:02}").into_bytes()
}

/// A value names its writer and its key: 8 bytes of writer id, then the key.
fn encode_value(uid: Uid, key: &[u8]) -> Vec<u8> {
    let mut v = uid.to_le_bytes().to_vec();
    v.extend_from_slice(key);
    v
}

fn decode_value(seed: u64, v: &[u8], key: &[u8]) -> Uid {
    let (head, tail) = v.split_at(8.min(v.len()));
    assert!(
        head.len() == 8 && tail == key,
        "seed {seed:#x}: key {} holds a value that is not one written for it: {v:?}",
        String::from_utf8_lossy(key)
    );
    u64::from_le_bytes(head.try_into().unwrap())
}

fn in_range(lo: &Bound<Key>, hi: &Bound<Key>, k: &[u8]) -> bool {
    std::ops::RangeBounds::<[u8]>::contains(
        &(
            lo.as_ref().map(Vec::as_slice),
            hi.as_ref().map(Vec::as_slice),
        ),
        k,
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `begin()` / `begin_with(iso)`.
    ReadWrite,
    /// `begin_read()`: a plain snapshot, not part of the serializability graph.
    Reader,
}

#[derive(Clone, Debug)]
enum Outcome {
    Committed { seq: u64 },
    Aborted { table: String, key: Key, seq: u64 },
    RolledBack,
}

/// How a scan consumed its iterator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Forward,
    Reverse,
    /// Alternating `next` and `next_back`; recorded in ascending order.
    BothEnds,
}

#[derive(Clone, Debug)]
enum Read {
    Point {
        tbl: Tbl,
        key: Key,
        /// The transaction's own write of the key when it read, if any.
        own: Option<Option<Uid>>,
        got: Option<Uid>,
    },
    Scan {
        tbl: Tbl,
        lo: Bound<Key>,
        hi: Bound<Key>,
        dir: Dir,
        /// The transaction's own writes inside the range when it scanned.
        own: Vec<(Key, Option<Uid>)>,
        got: Vec<(Key, Uid)>,
    },
}

#[derive(Clone, Debug)]
struct Txn {
    uid: Uid,
    thread: usize,
    kind: Kind,
    snapshot: u64,
    /// `stats().tip_seq` right before and right after `commit` was called.
    tip_before: u64,
    tip_after: u64,
    reads: Vec<Read>,
    writes: BTreeMap<(Tbl, Key), Option<Uid>>,
    outcome: Outcome,
}

impl Txn {
    fn committed_seq(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Committed { seq } => Some(seq),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "T{:#x} (thread {}, {:?}, snapshot {}, {:?}, tip {}..{})",
            self.uid,
            self.thread,
            self.kind,
            self.snapshot,
            self.outcome,
            self.tip_before,
            self.tip_after
        );
        for r in &self.reads {
            match r {
                Read::Point { tbl, key, own, got } => {
                    let _ = write!(
                        s,
                        "\n    get {}:{} own={own:?} -> {got:?}",
                        TABLES[*tbl],
                        String::from_utf8_lossy(key)
                    );
                }
                Read::Scan {
                    tbl,
                    lo,
                    hi,
                    dir,
                    own,
                    got,
                } => {
                    let show = |b: &Bound<Key>| match b {
                        Bound::Included(k) => format!("[{}", String::from_utf8_lossy(k)),
                        Bound::Excluded(k) => format!("({}", String::from_utf8_lossy(k)),
                        Bound::Unbounded => "*".to_string(),
                    };
                    let got: Vec<String> = got
                        .iter()
                        .map(|(k, u)| format!("{}={u:#x}", String::from_utf8_lossy(k)))
                        .collect();
                    let _ = write!(
                        s,
                        "\n    scan {} {} .. {} {dir:?} own={own:?} -> {got:?}",
                        TABLES[*tbl],
                        show(lo),
                        show(hi),
                    );
                }
            }
        }
        for ((tbl, key), v) in &self.writes {
            let _ = write!(
                s,
                "\n    write {}:{} = {v:?}",
                TABLES[*tbl],
                String::from_utf8_lossy(key)
            );
        }
        s
    }
}

/// A point of a range bound: a key, a point between keys, or one beyond all keys.
fn random_point(rng: &mut Rng, keys: u64) -> Key {
    match rng.below(2 * keys + 2) {
        0 => b"a".to_vec(),
        1 => b"z".to_vec(),
        n => {
            let mut k = key_name((n - 2) / 2);
            if n % 2 == 1 {
                k.push(b'm');
            }
            k
        }
    }
}

fn random_bound(rng: &mut Rng, keys: u64) -> Bound<Key> {
    match rng.below(5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(random_point(rng, keys)),
        _ => Bound::Excluded(random_point(rng, keys)),
    }
}

/// One thread's transactions.
fn worker(
    db: Database,
    iso: Isolation,
    profile: Profile,
    seed: u64,
    thread: usize,
    start: Arc<Barrier>,
) -> Vec<Txn> {
    let mut rng = Rng::new(seed ^ (thread as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut conn = db.connect();
    let mut out = Vec::new();
    start.wait();
    for i in 0..TXNS_PER_THREAD {
        let uid = ((thread as u64 + 1) << 32) | i;
        let roll = rng.below(100);
        let kind = if roll < 8 {
            Kind::Reader
        } else {
            Kind::ReadWrite
        };
        // Some read-write transactions only read: the read-only SSI cases.
        let may_write = kind == Kind::ReadWrite && roll >= 22;
        let mut tx = match kind {
            Kind::Reader => conn.begin_read(),
            Kind::ReadWrite => conn.begin_with(iso),
        }
        .unwrap();
        let mut rec = Txn {
            uid,
            thread,
            kind,
            snapshot: tx.snapshot_seq(),
            tip_before: 0,
            tip_after: 0,
            reads: Vec::new(),
            writes: BTreeMap::new(),
            outcome: Outcome::RolledBack,
        };
        for _ in 0..1 + rng.below(profile.ops_max) {
            let tbl: Tbl = match rng.below(10) {
                0..6 => 0,
                6..8 => 1,
                _ => 2,
            };
            let nkeys = profile.keys[tbl];
            let key = key_name(rng.below(nkeys));
            let op = rng.below(100);
            if op < 40 || (!may_write && op < 70) {
                let own = rec.writes.get(&(tbl, key.clone())).cloned();
                let got = tx
                    .get(TABLES[tbl], &key)
                    .unwrap()
                    .map(|v| decode_value(seed, &v, &key));
                rec.reads.push(Read::Point { tbl, key, own, got });
            } else if op < 62 || !may_write {
                let lo = random_bound(&mut rng, nkeys);
                let hi = random_bound(&mut rng, nkeys);
                let dir = match rng.below(5) {
                    0 | 1 => Dir::Forward,
                    2 | 3 => Dir::Reverse,
                    _ => Dir::BothEnds,
                };
                let own = rec
                    .writes
                    .range((tbl, Vec::new())..(tbl + 1, Vec::new()))
                    .filter(|((_, k), _)| in_range(&lo, &hi, k))
                    .map(|((_, k), v)| (k.clone(), *v))
                    .collect();
                let mut it = tx.range(TABLES[tbl], (lo.clone(), hi.clone())).unwrap();
                let items: Vec<_> = match dir {
                    Dir::Forward => it.collect(),
                    Dir::Reverse => it.rev().collect(),
                    Dir::BothEnds => {
                        let (mut front, mut back) = (Vec::new(), Vec::new());
                        loop {
                            let a = it.next();
                            let b = it.next_back();
                            if a.is_none() && b.is_none() {
                                break;
                            }
                            front.extend(a);
                            back.extend(b);
                        }
                        front.extend(back.into_iter().rev());
                        front
                    }
                };
                let got = items
                    .into_iter()
                    .map(|item| {
                        let (k, v) = item.unwrap();
                        let u = decode_value(seed, &v, &k);
                        (k, u)
                    })
                    .collect();
                rec.reads.push(Read::Scan {
                    tbl,
                    lo,
                    hi,
                    dir,
                    own,
                    got,
                });
            } else if op < 88 {
                tx.put(TABLES[tbl], &key, &encode_value(uid, &key)).unwrap();
                rec.writes.insert((tbl, key), Some(uid));
            } else {
                tx.delete(TABLES[tbl], &key).unwrap();
                rec.writes.insert((tbl, key), None);
            }
            if rng.chance(1, 3) {
                std::thread::yield_now();
            }
        }
        if kind == Kind::ReadWrite && rng.chance(1, 25) {
            drop(tx);
        } else {
            rec.tip_before = db.stats().tip_seq;
            let result = tx.commit_with(Durability::Applied);
            rec.tip_after = db.stats().tip_seq;
            rec.outcome = match result {
                Ok(info) => Outcome::Committed { seq: info.seq },
                Err(Error::Conflict {
                    table,
                    key,
                    committed_seq,
                }) => {
                    assert!(
                        kind == Kind::ReadWrite,
                        "seed {seed:#x}: a begin_read transaction aborted"
                    );
                    Outcome::Aborted {
                        table,
                        key,
                        seq: committed_seq,
                    }
                }
                Err(e) => panic!("seed {seed:#x}: unexpected commit error {e}"),
            };
        }
        out.push(rec);
    }
    out
}

struct History {
    seed: u64,
    profile: &'static str,
    iso: Isolation,
    txns: Vec<Txn>,
    final_tip: u64,
    /// What a `begin_read` at the end saw, per table: key -> writer.
    final_state: Vec<Vec<(Key, Uid)>>,
    /// The engine's own counters: (write conflicts, SSI conflicts).
    engine_refusals: (u64, u64),
}

fn run(seed: u64, iso: Isolation, profile: Profile) -> History {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("history.db")).unwrap();
    let mut conn = db.connect();
    let mut tx = conn.begin().unwrap();
    let mut setup = Txn {
        uid: SETUP_UID,
        thread: usize::MAX,
        kind: Kind::ReadWrite,
        snapshot: tx.snapshot_seq(),
        tip_before: 0,
        tip_after: 0,
        reads: Vec::new(),
        writes: BTreeMap::new(),
        outcome: Outcome::RolledBack,
    };
    for (tbl, name) in TABLES.iter().enumerate() {
        tx.create_table(name).unwrap();
        for i in (0..profile.keys[tbl]).step_by(2) {
            let key = key_name(i);
            tx.put(name, &key, &encode_value(SETUP_UID, &key)).unwrap();
            setup.writes.insert((tbl, key), Some(SETUP_UID));
        }
    }
    setup.outcome = Outcome::Committed {
        seq: tx.commit().unwrap().seq,
    };
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || worker(db, iso, profile, seed, t, start))
        })
        .collect();
    let mut txns = vec![setup];
    for t in history_support::join_all(
        handles,
        &format!("seed {seed:#x} {} {iso:?} worker", profile.name),
    ) {
        txns.extend(t);
    }
    let reader = conn.begin_read().unwrap();
    let final_tip = db.stats().tip_seq;
    assert_eq!(
        reader.snapshot_seq(),
        final_tip,
        "seed {seed:#x}: quiescent snapshot is not at the tip"
    );
    let final_state = TABLES
        .iter()
        .map(|name| {
            reader
                .iter(name)
                .unwrap()
                .map(|item| {
                    let (k, v) = item.unwrap();
                    let u = decode_value(seed, &v, &k);
                    (k, u)
                })
                .collect()
        })
        .collect();
    let stats = db.stats();
    History {
        seed,
        profile: profile.name,
        iso,
        txns,
        final_tip,
        final_state,
        engine_refusals: (stats.write_conflicts, stats.ssi_conflicts),
    }
}

/// One committed version of a key: its sequence, the node that wrote it, the value.
#[derive(Clone, Copy, Debug)]
struct Version {
    seq: u64,
    node: usize,
    value: Option<Uid>,
}

type Chains = BTreeMap<(Tbl, Key), Vec<Version>>;

#[derive(Clone, Copy, Debug)]
enum EdgeKind {
    Ww,
    Wr,
    Rw,
}

#[derive(Clone, Debug)]
struct Edge {
    to: usize,
    kind: EdgeKind,
    tbl: Tbl,
    key: Key,
}

/// The committed keys a read depended on (not the ones it took from its own writes).
fn read_keys(chains: &Chains, read: &Read) -> Vec<(Tbl, Key)> {
    match read {
        Read::Point { own: Some(_), .. } => Vec::new(),
        Read::Point { tbl, key, .. } => vec![(*tbl, key.clone())],
        Read::Scan {
            tbl, lo, hi, own, ..
        } => chains
            .range((*tbl, Vec::new())..(*tbl + 1, Vec::new()))
            .map(|((_, k), _)| k)
            .filter(|k| in_range(lo, hi, k) && !own.iter().any(|(o, _)| o == *k))
            .map(|k| (*tbl, k.clone()))
            .collect(),
    }
}

/// Index of the first version above `snapshot`.
fn after(chain: &[Version], snapshot: u64) -> usize {
    chain.partition_point(|v| v.seq <= snapshot)
}

#[derive(Default, Debug, Clone, Copy)]
struct Report {
    txns: u64,
    readers: u64,
    committed_writers: u64,
    committed_read_only: u64,
    rolled_back: u64,
    aborted: u64,
    aborted_ww: u64,
    aborted_cycle: u64,
    aborted_false: u64,
    occ_would_abort: u64,
    occ_eligible: u64,
    graph_has_cycle: bool,
}

fn check(h: &History) -> Report {
    let seed = h.seed;
    let txns = &h.txns;
    let mut errors: Vec<String> = Vec::new();
    let mut report = Report::default();

    // Sequences: unique, gap-free, one per committed writer.
    let mut by_seq: BTreeMap<u64, usize> = BTreeMap::new();
    for (n, t) in txns.iter().enumerate() {
        report.txns += u64::from(t.kind == Kind::ReadWrite);
        report.readers += u64::from(t.kind == Kind::Reader);
        match &t.outcome {
            Outcome::Committed { seq } if !t.writes.is_empty() => {
                report.committed_writers += 1;
                if *seq <= t.snapshot {
                    errors.push(format!(
                        "writer got seq {seq} <= its snapshot: {}",
                        t.describe()
                    ));
                }
                if let Some(other) = by_seq.insert(*seq, n) {
                    errors.push(format!(
                        "seq {seq} given twice:\n  {}\n  {}",
                        txns[other].describe(),
                        t.describe()
                    ));
                }
            }
            Outcome::Committed { seq } => {
                report.committed_read_only += u64::from(t.kind == Kind::ReadWrite);
                if *seq != t.snapshot {
                    errors.push(format!(
                        "read-only commit seq is not its snapshot: {}",
                        t.describe()
                    ));
                }
            }
            Outcome::Aborted { .. } => report.aborted += 1,
            Outcome::RolledBack => report.rolled_back += 1,
        }
    }
    let expected: Vec<u64> = (1..=h.final_tip).collect();
    let got: Vec<u64> = by_seq.keys().copied().collect();
    if got != expected {
        errors.push(format!(
            "committed seqs are not exactly 1..={}: {got:?}",
            h.final_tip
        ));
    }

    // Version chains in sequence order: the replay of committed writes.
    let mut chains: Chains = BTreeMap::new();
    for (&seq, &node) in &by_seq {
        for (k, v) in &txns[node].writes {
            chains.entry(k.clone()).or_default().push(Version {
                seq,
                node,
                value: *v,
            });
        }
    }
    let value_at = |k: &(Tbl, Key), snapshot: u64| -> Option<Uid> {
        let chain = chains.get(k)?;
        let i = after(chain, snapshot);
        chain.get(i.checked_sub(1)?)?.value
    };

    // Every read sees its own writes, else the newest version at or below its snapshot.
    for t in txns {
        for r in &t.reads {
            match r {
                Read::Point { tbl, key, own, got } => {
                    let want = own.unwrap_or_else(|| value_at(&(*tbl, key.clone()), t.snapshot));
                    if want != *got {
                        errors.push(format!(
                            "get {}:{} saw {got:?}, the replay says {want:?}: {}",
                            TABLES[*tbl],
                            String::from_utf8_lossy(key),
                            t.describe()
                        ));
                    }
                }
                Read::Scan {
                    tbl,
                    lo,
                    hi,
                    dir,
                    own,
                    got,
                } => {
                    let mut view: BTreeMap<Key, Option<Uid>> = chains
                        .range((*tbl, Vec::new())..(*tbl + 1, Vec::new()))
                        .filter(|((_, k), _)| in_range(lo, hi, k))
                        .map(|((_, k), _)| (k.clone(), value_at(&(*tbl, k.clone()), t.snapshot)))
                        .collect();
                    view.extend(own.iter().cloned());
                    let mut want: Vec<(Key, Uid)> = view
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|u| (k, u)))
                        .collect();
                    if *dir == Dir::Reverse {
                        want.reverse();
                    }
                    if want != *got {
                        errors.push(format!(
                            "a scan disagrees with the replay (want {want:?}): {}",
                            t.describe()
                        ));
                    }
                }
            }
        }
    }

    // The final state is the replay at the tip.
    for (tbl, got) in h.final_state.iter().enumerate() {
        let want: Vec<(Key, Uid)> = chains
            .range((tbl, Vec::new())..(tbl + 1, Vec::new()))
            .filter_map(|((_, k), c)| c.last().and_then(|v| v.value).map(|u| (k.clone(), u)))
            .collect();
        if want != *got {
            errors.push(format!(
                "final {} is {got:?}, the replay says {want:?}",
                TABLES[tbl]
            ));
        }
    }

    // First-committer-wins: no committed writer of a key between a writer's snapshot
    // and its commit.
    for (&seq, &node) in &by_seq {
        let t = &txns[node];
        for k in t.writes.keys() {
            let chain = &chains[k];
            if let Some(v) = chain.iter().find(|v| v.seq > t.snapshot && v.seq < seq) {
                errors.push(format!(
                    "lost update on {}:{}: both committed\n  {}\n  {}",
                    TABLES[k.0],
                    String::from_utf8_lossy(&k.1),
                    txns[v.node].describe(),
                    t.describe()
                ));
            }
        }
    }

    // Every conflict names a commit the transaction was concurrent with, which wrote
    // the named key; at Snapshot the key is one the transaction wrote.
    for t in txns {
        let Outcome::Aborted { table, key, seq } = &t.outcome else {
            continue;
        };
        let tbl = TABLES.iter().position(|n| n == table);
        let met = by_seq.get(seq).map(|&n| &txns[n]);
        let ok = match (tbl, met) {
            (Some(tbl), Some(w)) => {
                let k = (tbl, key.clone());
                let wrote = w.writes.contains_key(&k);
                let mine = t.writes.contains_key(&k)
                    || (h.iso == Isolation::Serializable
                        && t.reads.iter().any(|r| match r {
                            Read::Point {
                                tbl: rt, key: rk, ..
                            } => *rt == tbl && rk == key,
                            Read::Scan {
                                tbl: rt, lo, hi, ..
                            } => *rt == tbl && in_range(lo, hi, key),
                        }));
                wrote && mine && *seq > t.snapshot
            }
            _ => false,
        };
        if !ok {
            errors.push(format!(
                "conflict on {table}:{} with seq {seq} does not match the history: {}",
                String::from_utf8_lossy(key),
                t.describe()
            ));
        }
    }

    // The dependency graph over committed read-write transactions.
    let in_graph = |t: &Txn| t.kind == Kind::ReadWrite && t.committed_seq().is_some();
    let mut edges: Vec<Vec<Edge>> = vec![Vec::new(); txns.len()];
    for (k, chain) in &chains {
        for w in chain.windows(2) {
            edges[w[0].node].push(Edge {
                to: w[1].node,
                kind: EdgeKind::Ww,
                tbl: k.0,
                key: k.1.clone(),
            });
        }
    }
    // Readers of each key: (node, snapshot), for the false-abort analysis.
    let mut readers: HashMap<(Tbl, Key), Vec<usize>> = HashMap::new();
    for (n, t) in txns.iter().enumerate() {
        if !in_graph(t) {
            continue;
        }
        for r in &t.reads {
            for k in read_keys(&chains, r) {
                let chain = &chains[&k];
                let i = after(chain, t.snapshot);
                if let Some(v) = i.checked_sub(1).map(|j| chain[j])
                    && v.node != n
                {
                    edges[v.node].push(Edge {
                        to: n,
                        kind: EdgeKind::Wr,
                        tbl: k.0,
                        key: k.1.clone(),
                    });
                }
                if let Some(v) = chain[i..].iter().find(|v| v.node != n) {
                    edges[n].push(Edge {
                        to: v.node,
                        kind: EdgeKind::Rw,
                        tbl: k.0,
                        key: k.1.clone(),
                    });
                }
                readers.entry(k).or_default().push(n);
            }
        }
    }
    let cycle = find_cycle(&edges);
    report.graph_has_cycle = cycle.is_some();
    if let (Some(cycle), Isolation::Serializable) = (&cycle, h.iso) {
        let mut s = String::from("dependency cycle among committed Serializable transactions:");
        for (from, e) in cycle {
            let _ = write!(
                s,
                "\n  T{:#x} --{:?} {}:{}--> T{:#x}",
                txns[*from].uid,
                e.kind,
                TABLES[e.tbl],
                String::from_utf8_lossy(&e.key),
                txns[e.to].uid
            );
        }
        for (from, _) in cycle {
            let _ = write!(s, "\n{}", txns[*from].describe());
        }
        errors.push(s);
    }

    assert!(
        errors.is_empty(),
        "seed {seed:#x}, profile {}, at {:?}: {} violation(s):\n{}",
        h.profile,
        h.iso,
        errors.len(),
        errors.join("\n")
    );

    if h.iso == Isolation::Serializable {
        false_aborts(h, &chains, &edges, &readers, &mut report);
        occ(h, &chains, &mut report);
    }
    report
}

/// Finds a cycle by depth-first search; returns its edges as (from, edge).
fn find_cycle(edges: &[Vec<Edge>]) -> Option<Vec<(usize, Edge)>> {
    let n = edges.len();
    let mut color = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    for root in 0..n {
        if color[root] != 0 {
            continue;
        }
        // Stack of (node, next edge index); `path` holds the edge taken into each node.
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        let mut path: Vec<(usize, Edge)> = Vec::new();
        color[root] = 1;
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            top.1 += 1;
            if let Some(e) = edges[node].get(next) {
                match color[e.to] {
                    0 => {
                        color[e.to] = 1;
                        path.push((node, e.clone()));
                        stack.push((e.to, 0));
                    }
                    1 => {
                        let start = path.iter().position(|(f, _)| *f == e.to);
                        let mut cycle: Vec<(usize, Edge)> =
                            start.map_or_else(Vec::new, |s| path[s..].to_vec());
                        cycle.push((node, e.clone()));
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                color[node] = 2;
                stack.pop();
                path.pop();
            }
        }
    }
    None
}

/// Classifies each Serializable abort: required by first-committer-wins, required
/// because committing it where it aborted closes a cycle, or false.
fn false_aborts(
    h: &History,
    chains: &Chains,
    edges: &[Vec<Edge>],
    readers: &HashMap<(Tbl, Key), Vec<usize>>,
    report: &mut Report,
) {
    let txns = &h.txns;
    for a in txns {
        let Outcome::Aborted { seq: met, .. } = a.outcome else {
            continue;
        };
        // It aborted after every commit up to here.
        let p = a.tip_before.max(met);
        let in_prefix = |t: &Txn| match t.committed_seq() {
            Some(seq) if t.kind == Kind::ReadWrite && !t.writes.is_empty() => seq <= p,
            Some(_) if t.kind == Kind::ReadWrite => t.tip_after <= p,
            _ => false,
        };
        let ww = a.writes.keys().any(|k| {
            chains
                .get(k)
                .is_some_and(|c| c.iter().any(|v| v.seq > a.snapshot && v.seq <= p))
        });
        if ww {
            report.aborted_ww += 1;
            continue;
        }
        let mut sources: Vec<usize> = Vec::new();
        let mut targets: Vec<usize> = Vec::new();
        for r in &a.reads {
            for k in read_keys(chains, r) {
                let chain = &chains[&k];
                let i = after(chain, a.snapshot);
                if let Some(j) = i.checked_sub(1) {
                    sources.push(chain[j].node);
                }
                if let Some(v) = chain.get(i).filter(|v| v.seq <= p) {
                    targets.push(v.node);
                }
            }
        }
        for k in a.writes.keys() {
            let last = chains.get(k).and_then(|c| c.last()).filter(|v| v.seq <= p);
            if let Some(v) = last {
                sources.push(v.node);
            }
            let seen = last.map_or(0, |v| v.seq);
            for &x in readers.get(k).into_iter().flatten() {
                if in_prefix(&txns[x]) && txns[x].snapshot >= seen {
                    sources.push(x);
                }
            }
        }
        // A cycle through `a` is a path from one of its targets to one of its sources.
        let mut is_source = vec![false; txns.len()];
        for &s in &sources {
            is_source[s] = true;
        }
        let mut seen = vec![false; txns.len()];
        let mut queue: VecDeque<usize> = VecDeque::new();
        for &t in &targets {
            if !seen[t] {
                seen[t] = true;
                queue.push_back(t);
            }
        }
        let mut cycle = false;
        while let Some(n) = queue.pop_front() {
            if is_source[n] {
                cycle = true;
                break;
            }
            for e in &edges[n] {
                if !seen[e.to] && in_prefix(&txns[e.to]) {
                    seen[e.to] = true;
                    queue.push_back(e.to);
                }
            }
        }
        if cycle {
            report.aborted_cycle += 1;
        } else {
            report.aborted_false += 1;
        }
    }
}

/// Counts the read-write transactions plain read-set validation would abort: those that
/// read a key (or a key in a scanned range) written by a commit after their snapshot and
/// before their own commit or abort.
fn occ(h: &History, chains: &Chains, report: &mut Report) {
    for t in &h.txns {
        if t.kind != Kind::ReadWrite || t.uid == SETUP_UID {
            continue;
        }
        let end = match t.outcome {
            Outcome::Committed { seq } if !t.writes.is_empty() => seq - 1,
            Outcome::Committed { .. } => t.tip_before,
            Outcome::Aborted { seq, .. } => t.tip_before.max(seq),
            Outcome::RolledBack => continue,
        };
        report.occ_eligible += 1;
        let stale = t.reads.iter().any(|r| {
            read_keys(chains, r)
                .iter()
                .any(|k| chains[k].iter().any(|v| v.seq > t.snapshot && v.seq <= end))
        });
        report.occ_would_abort += u64::from(stale);
    }
}

fn pct(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

fn print_report(label: &str, iso: Isolation, r: &Report) {
    if iso == Isolation::Snapshot {
        println!(
            "{label}: {} read-write txns ({} committed writers, {} committed read-only, \
             {} rolled back), {} begin_read readers; aborted {} ({:.1}%), all by \
             first-committer-wins; dependency graph has a cycle (write skew): {}",
            r.txns,
            r.committed_writers,
            r.committed_read_only,
            r.rolled_back,
            r.readers,
            r.aborted,
            pct(r.aborted, r.txns),
            r.graph_has_cycle
        );
        return;
    }
    println!(
        "{label}: {} read-write txns ({} committed writers, {} committed read-only, {} rolled back), \
         {} begin_read readers; aborted {} ({:.1}%): {} first-committer-wins, {} closing a cycle, \
         {} false = {:.1}% of aborts ({:.1}% of txns); OCC would abort {} of {} ({:.1}%); \
         graph has a cycle: {}",
        r.txns,
        r.committed_writers,
        r.committed_read_only,
        r.rolled_back,
        r.readers,
        r.aborted,
        pct(r.aborted, r.txns),
        r.aborted_ww,
        r.aborted_cycle,
        r.aborted_false,
        pct(r.aborted_false, r.aborted),
        pct(r.aborted_false, r.txns),
        r.occ_would_abort,
        r.occ_eligible,
        pct(r.occ_would_abort, r.occ_eligible),
        r.graph_has_cycle
    );
}

fn run_all(iso: Isolation) {
    let mut total = Report::default();
    for profile in PROFILES {
        for seed in SEEDS {
            let h = run(seed, iso, profile);
            let r = check(&h);
            print_report(&format!("{iso:?} {} seed {seed:#x}", profile.name), iso, &r);
            println!(
                "  engine counted {} first-committer-wins and {} SSI refusals",
                h.engine_refusals.0, h.engine_refusals.1
            );
            total.txns += r.txns;
            total.readers += r.readers;
            total.committed_writers += r.committed_writers;
            total.committed_read_only += r.committed_read_only;
            total.rolled_back += r.rolled_back;
            total.aborted += r.aborted;
            total.aborted_ww += r.aborted_ww;
            total.aborted_cycle += r.aborted_cycle;
            total.aborted_false += r.aborted_false;
            total.occ_would_abort += r.occ_would_abort;
            total.occ_eligible += r.occ_eligible;
            total.graph_has_cycle |= r.graph_has_cycle;
        }
    }
    print_report(&format!("{iso:?} all profiles and seeds"), iso, &total);
}

#[test]
fn serializable_histories_have_no_cycle() {
    run_all(Isolation::Serializable);
}

#[test]
fn snapshot_histories_read_snapshots_and_keep_first_committer_wins() {
    run_all(Isolation::Snapshot);
}

/// The checker itself finds a write-skew cycle in a hand-made history, so a green run
/// means something.
#[test]
fn checker_finds_write_skew_cycle() {
    let mk = |uid, snapshot, seq, read: &[u8], write: &[u8]| Txn {
        uid,
        thread: 0,
        kind: Kind::ReadWrite,
        snapshot,
        tip_before: seq,
        tip_after: seq,
        reads: vec![Read::Point {
            tbl: 0,
            key: read.to_vec(),
            own: None,
            got: Some(SETUP_UID),
        }],
        writes: BTreeMap::from([((0, write.to_vec()), Some(uid))]),
        outcome: Outcome::Committed { seq },
    };
    let mut setup = mk(SETUP_UID, 0, 1, b"x", b"x");
    setup.reads.clear();
    setup.writes.insert((0, b"y".to_vec()), Some(SETUP_UID));
    let h = History {
        seed: 0,
        profile: "hand-made",
        iso: Isolation::Snapshot,
        txns: vec![setup, mk(1, 1, 2, b"x", b"y"), mk(2, 1, 3, b"y", b"x")],
        final_tip: 3,
        final_state: vec![vec![(b"x".to_vec(), 2), (b"y".to_vec(), 1)], vec![], vec![]],
        engine_refusals: (0, 0),
    };
    assert!(check(&h).graph_has_cycle);
}
