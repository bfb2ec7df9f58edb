//! The checker: replays the committed writes in sequence order, checks every read
//! against it, checks first-committer-wins and the conflicts the engine named, and
//! builds the ww/wr/rw dependency graph over committed transactions, with the
//! real-time order, which must have no cycle at Serializable (strict serializability).

use super::analysis::{false_aborts, occ};
use super::record::{Dir, History, Key, Kind, Outcome, Read, TABLES, Tbl, Txn, Uid, in_range};
use capsuledb::Isolation;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// One committed version of a key: its sequence, the node that wrote it, the value.
#[derive(Clone, Copy, Debug)]
pub struct Version {
    pub seq: u64,
    pub node: usize,
    pub value: Option<Uid>,
}

pub type Chains = BTreeMap<(Tbl, Key), Vec<Version>>;

#[derive(Clone, Copy, Debug)]
pub enum EdgeKind {
    Ww,
    Wr,
    Rw,
    /// Real time: the first committed before the second began (no key).
    Rt,
}

#[derive(Clone, Debug)]
pub struct Edge {
    pub to: usize,
    pub kind: EdgeKind,
    pub tbl: Tbl,
    pub key: Key,
}

/// The committed keys a read depended on (not the ones it took from its own writes).
pub fn read_keys(chains: &Chains, read: &Read) -> Vec<(Tbl, Key)> {
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
pub fn after(chain: &[Version], snapshot: u64) -> usize {
    chain.partition_point(|v| v.seq <= snapshot)
}

/// What [`check`] counted in one history.
#[derive(Default, Debug, Clone, Copy)]
pub struct Report {
    pub txns: u64,
    pub readers: u64,
    pub committed_writers: u64,
    pub committed_read_only: u64,
    pub rolled_back: u64,
    pub aborted: u64,
    pub aborted_ww: u64,
    pub aborted_cycle: u64,
    pub aborted_false: u64,
    pub occ_would_abort: u64,
    pub occ_eligible: u64,
    pub graph_has_cycle: bool,
}

/// Checks a history (see the module docs); panics naming the seed and the offending
/// transactions on any violation, and returns the counts.
pub fn check(h: &History) -> Report {
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
                // A key no commit wrote: no edge.
                let Some(chain) = chains.get(&k) else {
                    continue;
                };
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
    real_time_edges(txns, &in_graph, &mut edges);
    let cycle = find_cycle(&edges);
    report.graph_has_cycle = cycle.is_some();
    if let (Some(cycle), Isolation::Serializable) = (&cycle, h.iso) {
        let mut s = String::from("dependency cycle among committed Serializable transactions:");
        for (from, e) in cycle {
            let on = match e.kind {
                EdgeKind::Rt => String::new(),
                _ => format!(" {}:{}", TABLES[e.tbl], String::from_utf8_lossy(&e.key)),
            };
            let _ = write!(
                s,
                "\n  T{:#x} --{:?}{on}--> T{:#x}",
                txns[*from].uid, e.kind, txns[e.to].uid
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

/// Adds the real-time order to the graph (strict serializability: a commit acknowledged
/// before a transaction began comes before it in the serial order). Each thread's
/// committed transactions follow one another in its program order, so it is enough to
/// chain each thread's and to draw, into every transaction, an edge from each other
/// thread's last one acknowledged before it began: the earlier ones reach it along
/// their thread's chain.
fn real_time_edges(txns: &[Txn], in_graph: &dyn Fn(&Txn) -> bool, edges: &mut [Vec<Edge>]) {
    let rt = |to: usize| Edge {
        to,
        kind: EdgeKind::Rt,
        tbl: 0,
        key: Vec::new(),
    };
    let mut by_thread: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (n, t) in txns.iter().enumerate() {
        if in_graph(t) && t.began_at != 0 && t.acked_at != 0 {
            by_thread.entry(t.thread).or_default().push(n);
        }
    }
    for nodes in by_thread.values_mut() {
        nodes.sort_by_key(|&n| txns[n].acked_at);
        for w in nodes.windows(2) {
            let (a, b) = (&txns[w[0]], &txns[w[1]]);
            assert!(
                a.acked_at < b.began_at,
                "thread {} ran T{:#x} and T{:#x} at once",
                a.thread,
                a.uid,
                b.uid
            );
            edges[w[0]].push(rt(w[1]));
        }
    }
    for (n, t) in txns.iter().enumerate() {
        if !in_graph(t) || t.began_at == 0 {
            continue;
        }
        for nodes in by_thread.values() {
            let before = nodes.partition_point(|&w| txns[w].acked_at < t.began_at);
            if let Some(&w) = before.checked_sub(1).and_then(|i| nodes.get(i))
                && w != n
            {
                edges[w].push(rt(n));
            }
        }
    }
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
