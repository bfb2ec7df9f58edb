//! What the aborts cost: each Serializable abort classified as required by
//! first-committer-wins, required to break a cycle, or false; and how many transactions
//! plain read-set (OCC) validation would have aborted instead.

use super::check::{Chains, Edge, Report, after, read_keys};
use super::record::{History, Key, Kind, Outcome, SETUP_UID, Tbl, Txn};
use std::collections::{HashMap, VecDeque};

/// Classifies each Serializable abort: required by first-committer-wins, required
/// because committing it where it aborted closes a cycle, or false.
pub fn false_aborts(
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
                // A key no commit wrote: no edge.
                let Some(chain) = chains.get(&k) else {
                    continue;
                };
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
pub fn occ(h: &History, chains: &Chains, report: &mut Report) {
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
                .filter_map(|k| chains.get(k))
                .any(|c| c.iter().any(|v| v.seq > t.snapshot && v.seq <= end))
        });
        report.occ_would_abort += u64::from(stale);
    }
}
