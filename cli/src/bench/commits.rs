//! The write phases: durable and Applied commits on disjoint keys, and the contended
//! Serializable workload.

use super::driver::{Outcome, Run, drive};
use super::report::PhaseResult;
use super::{Bench, KEY_LEN, TABLE, VALUE_LEN, random_key, value_for};
use crate::error::CliResult;
use capsuledb::rng::Rng;
use capsuledb::{Connection, Database, Durability, Stats};
use std::time::Instant;

/// Attempts one contended transaction may make before the phase gives up on it.
const RETRIES_MAX: u64 = 100_000;

/// What the engine counters say about the commits of a phase.
struct Deltas {
    syncs: u64,
    groups: u64,
    group_commits: u64,
    bytes: u64,
    section_ns: u64,
    sections: u64,
    write_conflicts: u64,
    ssi_conflicts: u64,
}

fn deltas(before: &Stats, after: &Stats) -> Deltas {
    Deltas {
        syncs: after.group_syncs - before.group_syncs,
        groups: after.groups - before.groups,
        group_commits: after.group_commits - before.group_commits,
        bytes: (after.capsule_bytes + after.log_bytes) - (before.capsule_bytes + before.log_bytes),
        section_ns: after.section_ns_total - before.section_ns_total,
        sections: after.section_count - before.section_count,
        write_conflicts: after.write_conflicts - before.write_conflicts,
        ssi_conflicts: after.ssi_conflicts - before.ssi_conflicts,
    }
}

fn per(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn commit_row(phase: &str, threads: usize, run: &Run, d: &Deltas) -> PhaseResult {
    PhaseResult {
        fsyncs_per_commit: per(d.syncs, run.ops),
        abort_pct: Some(run.abort_pct()),
        group_size_mean: per(d.group_commits, d.groups),
        bytes_per_commit: per(d.bytes, run.ops),
        section_ns_mean: per(d.section_ns, d.sections),
        write_conflicts: Some(d.write_conflicts),
        ssi_conflicts: Some(d.ssi_conflicts),
        ..run.row(phase, threads)
    }
}

/// One writer thread: its connection and its own pool of keys.
struct Writer {
    conn: Connection,
    rng: Rng,
    keys: Vec<[u8; KEY_LEN]>,
    value: [u8; VALUE_LEN],
}

fn writer(db: &Database, seed: u64, keys: u64) -> Writer {
    let mut rng = Rng::new(seed);
    let keys = (0..keys).map(|_| random_key(&mut rng)).collect();
    let value = value_for(&mut rng);
    Writer {
        conn: db.connect(),
        rng,
        keys,
        value,
    }
}

/// One-key transactions on `threads` threads, each writing its own keys, committed
/// at `durability`.
pub fn commits(
    b: &Bench,
    phase: &str,
    threads: usize,
    durability: Durability,
) -> CliResult<PhaseResult> {
    let label = format!("{phase} ×{threads}");
    let db = b.fresh_db()?;
    create_table(&db)?;
    let before = db.stats();
    let bar = b.bar(&label);
    let run = drive(
        threads,
        b.limits,
        &bar,
        "commits",
        |t| Ok(writer(&db, b.seed_for(&label, t), b.args.keys_per_writer)),
        |w, lat| {
            let i = w.rng.below(w.keys.len() as u64) as usize;
            let key = w.keys.get(i).copied().unwrap_or_default();
            w.value[..8].copy_from_slice(&w.rng.next_u64().to_le_bytes());
            let t0 = Instant::now();
            let mut tx = w.conn.begin()?;
            tx.put(TABLE, &key, &w.value)?;
            tx.commit_with(durability)?;
            lat.record(t0.elapsed());
            Ok(Outcome { ops: 1, aborts: 0 })
        },
    )?;
    let d = deltas(&before, &db.stats());
    b.finish_db(db)?;
    let mut row = commit_row(phase, threads, &run, &d);
    row.notes = match durability {
        Durability::Applied => format!(
            "in memory; serialized section {:.2} µs mean",
            row.section_ns_mean.unwrap_or(0.0) / 1000.0
        ),
        _ => format!(
            "{:.1} commits/group, {:.0} B/commit",
            row.group_size_mean.unwrap_or(0.0),
            row.bytes_per_commit.unwrap_or(0.0)
        ),
    };
    bar.finish_with_message(format!(
        "{} commits/s, p99 {:.0} µs",
        super::report::grouped(row.ops_per_s),
        row.latency_us_p99.unwrap_or(0.0)
    ));
    Ok(row)
}

fn create_table(db: &Database) -> CliResult<()> {
    let mut conn = db.connect();
    let mut tx = conn.begin()?;
    tx.create_table(TABLE)?;
    tx.commit()?;
    Ok(())
}

/// One contended thread: its connection and the shared hot set.
struct Contender<'h> {
    conn: Connection,
    rng: Rng,
    hot: &'h [[u8; KEY_LEN]],
}

/// Serializable read-modify-write transactions on a small hot set: each reads two
/// random hot keys and writes a third, durably, retrying conflicts.
pub fn contended(b: &Bench, threads: usize) -> CliResult<PhaseResult> {
    let phase = "contended serializable";
    let label = format!("{phase} ×{threads}");
    let db = b.fresh_db()?;
    let mut rng = Rng::new(b.seed_for("hot set", 0));
    let hot: Vec<[u8; KEY_LEN]> = (0..b.args.hot_keys).map(|_| random_key(&mut rng)).collect();
    {
        let mut conn = db.connect();
        let mut tx = conn.begin()?;
        tx.create_table(TABLE)?;
        for key in &hot {
            tx.put(TABLE, key, &0u64.to_le_bytes())?;
        }
        tx.commit()?;
    }
    let before = db.stats();
    let bar = b.bar(&label);
    let hot_ref = hot.as_slice();
    let run = drive(
        threads,
        b.limits,
        &bar,
        "commits",
        |t| {
            Ok(Contender {
                conn: db.connect(),
                rng: Rng::new(b.seed_for(&label, t)),
                hot: hot_ref,
            })
        },
        |c, lat| {
            let n = c.hot.len() as u64;
            let pick = |rng: &mut Rng| {
                c.hot
                    .get(rng.below(n) as usize)
                    .copied()
                    .unwrap_or_default()
            };
            let (k1, k2, k3) = (pick(&mut c.rng), pick(&mut c.rng), pick(&mut c.rng));
            let t0 = Instant::now();
            let mut aborts = 0;
            loop {
                let mut tx = c.conn.begin()?;
                let sum = counter(tx.get(TABLE, &k1)?) + counter(tx.get(TABLE, &k2)?);
                let mut value = [0u8; VALUE_LEN];
                value[..8].copy_from_slice(&sum.wrapping_add(1).to_le_bytes());
                tx.put(TABLE, &k3, &value)?;
                match tx.commit() {
                    Ok(_) => break,
                    Err(e) if e.is_retryable() && aborts < RETRIES_MAX => {
                        aborts += 1;
                        if let capsuledb::Error::Conflict { committed_seq, .. } = e {
                            wait_visible(c.conn.database(), committed_seq)?;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            lat.record(t0.elapsed());
            Ok(Outcome { ops: 1, aborts })
        },
    )?;
    let d = deltas(&before, &db.stats());
    b.finish_db(db)?;
    let mut row = commit_row(phase, threads, &run, &d);
    let attempts = (run.ops + run.aborts).max(1) as f64;
    row.notes = format!(
        "{} hot keys, read 2 + write 1; aborts {:.1}% FCW, {:.1}% SSI; retry once conflict visible",
        hot.len(),
        100.0 * d.write_conflicts as f64 / attempts,
        100.0 * d.ssi_conflicts as f64 / attempts,
    );
    bar.finish_with_message(format!(
        "{} commits/s, {:.1}% aborted",
        super::report::grouped(row.ops_per_s),
        run.abort_pct()
    ));
    Ok(row)
}

/// Waits until commit `seq` is visible to new snapshots. A retry begun earlier reads a
/// snapshot without it and meets the same conflict again.
fn wait_visible(db: &Database, seq: u64) -> capsuledb::Result<()> {
    db.wait_for(seq, capsuledb::Durability::Applied)
}

/// The counter stored in the first 8 bytes of a hot value.
fn counter(value: Option<Vec<u8>>) -> u64 {
    value
        .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
        .map_or(0, u64::from_le_bytes)
}
