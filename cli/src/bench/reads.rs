//! The bulk load and the read phases that run on what it loaded.

use super::driver::{Outcome, drive};
use super::histogram::Histogram;
use super::report::{PhaseResult, grouped};
use super::{Bench, KEY_LEN, TABLE, random_key, value_for};
use crate::error::CliResult;
use capsuledb::rng::Rng;
use capsuledb::{Connection, Database};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Point reads per read-only snapshot.
const READS_PER_SNAPSHOT: u64 = 256;
/// Keys per range scan.
pub const SCAN_LEN: usize = 1000;
/// Puts between progress-bar updates during the bulk load.
const LOAD_TICK: u64 = 4096;

/// A loaded database and its keys, for the read phases.
pub struct Loaded {
    pub db: Database,
    pub keys: Vec<[u8; KEY_LEN]>,
}

/// Puts `--keys` random keys in one transaction and commits it durably.
pub fn bulk_load(b: &Bench) -> CliResult<(PhaseResult, Loaded)> {
    let n = b.args.keys;
    let bar = b.bar("bulk load ×1");
    bar.set_length(n);
    let mut rng = Rng::new(b.seed_for("bulk load", 0));
    let keys: Vec<[u8; KEY_LEN]> = (0..n).map(|_| random_key(&mut rng)).collect();
    let mut value = value_for(&mut rng);
    let db = b.fresh_db()?;
    let before = db.stats();
    let t0 = Instant::now();
    {
        let mut conn = db.connect();
        let mut tx = conn.begin()?;
        tx.create_table(TABLE)?;
        for (i, key) in (0u64..).zip(&keys) {
            value[..8].copy_from_slice(&i.to_le_bytes());
            tx.put(TABLE, key, &value)?;
            if i % LOAD_TICK == 0 {
                bar.set_position(i);
            }
        }
        bar.set_position(n);
        bar.set_message("committing");
        tx.commit()?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let after = db.stats();
    db.collect_garbage()?;
    let logged =
        (after.capsule_bytes + after.log_bytes) - (before.capsule_bytes + before.log_bytes);
    let how = if after.tree_commits > before.tree_commits {
        "written once, straight into the tree".to_string()
    } else {
        // The reads below read the tree, as after a tree commit (a load this small
        // starts no fold of its own); the fold is not in the load's time.
        bar.set_message("folding (not timed)");
        db.checkpoint()?;
        format!(
            "{:.1} MB through the log, folded after the timed load",
            logged as f64 / 1e6
        )
    };
    let row = PhaseResult {
        phase: "bulk load".into(),
        threads: 1,
        ops: n,
        seconds,
        ops_per_s: n as f64 / seconds.max(f64::MIN_POSITIVE),
        // Every sync of the file the load made: a tree commit's are not a group's.
        fsyncs_per_commit: Some((after.file_syncs - before.file_syncs) as f64),
        notes: format!("{n} keys in one transaction: {seconds:.2} s, {how}"),
        ..PhaseResult::default()
    };
    bar.finish_with_message(format!("{} keys/s, {seconds:.2} s", grouped(row.ops_per_s)));
    Ok((row, Loaded { db, keys }))
}

struct Reader<'k> {
    conn: Connection,
    rng: Rng,
    keys: &'k [[u8; KEY_LEN]],
}

impl Reader<'_> {
    fn pick(&mut self) -> [u8; KEY_LEN] {
        let i = self.rng.below(self.keys.len() as u64) as usize;
        self.keys.get(i).copied().unwrap_or_default()
    }
}

fn reader<'k>(b: &Bench, l: &'k Loaded, label: &str, t: usize) -> Reader<'k> {
    Reader {
        conn: l.db.connect(),
        rng: Rng::new(b.seed_for(label, t)),
        keys: &l.keys,
    }
}

/// Random point reads of loaded keys on `threads` threads, a fresh `begin_read`
/// snapshot every few hundred reads.
pub fn point_reads(b: &Bench, l: &Loaded, threads: usize) -> CliResult<PhaseResult> {
    let label = format!("point read ×{threads}");
    let bar = b.bar(&label);
    let run = drive(
        threads,
        b.limits,
        &bar,
        "reads",
        |t| Ok(reader(b, l, &label, t)),
        |r, lat: &mut Histogram| {
            let tx = r.conn.begin_read()?;
            let mut missing = 0;
            for _ in 0..READS_PER_SNAPSHOT {
                let i = r.rng.below(r.keys.len() as u64) as usize;
                let key = r.keys.get(i).copied().unwrap_or_default();
                let t0 = Instant::now();
                let v = tx.get_ref(TABLE, &key)?;
                lat.record(t0.elapsed());
                missing += u64::from(v.is_none());
            }
            if missing > 0 {
                return Err(crate::error::CliError::msg(format!(
                    "point reads: {missing} loaded keys were not found"
                )));
            }
            Ok(Outcome {
                ops: READS_PER_SNAPSHOT,
                aborts: 0,
            })
        },
    )?;
    let row = PhaseResult {
        notes: format!(
            "begin_read, {READS_PER_SNAPSHOT} gets per snapshot, {} keys",
            l.keys.len()
        ),
        ..run.row("point read", threads)
    };
    bar.finish_with_message(format!("{} reads/s", grouped(row.ops_per_s)));
    Ok(row)
}

/// Forward scans of up to 1000 keys from random loaded keys, one snapshot each, with the
/// borrowing scan.
pub fn range_scans(b: &Bench, l: &Loaded, threads: usize) -> CliResult<PhaseResult> {
    let label = format!("range scan ×{threads}");
    let bar = b.bar(&label);
    let entries = AtomicU64::new(0);
    let run = drive(
        threads,
        b.limits,
        &bar,
        "scans",
        |t| Ok(reader(b, l, &label, t)),
        |r, lat| {
            let start = r.pick();
            let t0 = Instant::now();
            let tx = r.conn.begin_read()?;
            let mut n = 0usize;
            // The borrowing scan: keys and values lent from the mapping, no copy per entry
            // (`Transaction::range` is the owned iterator).
            let mut scan = tx.scan(TABLE, start.as_slice()..)?;
            for _ in 0..SCAN_LEN {
                let Some(item) = scan.next() else { break };
                let (k, _) = item?;
                n += usize::from(k.len() == KEY_LEN);
            }
            drop(scan);
            drop(tx);
            lat.record(t0.elapsed());
            entries.fetch_add(n as u64, Ordering::Relaxed);
            Ok(Outcome { ops: 1, aborts: 0 })
        },
    )?;
    let row = PhaseResult {
        notes: format!(
            "forward from a random key, borrowing scan: {} keys/s",
            grouped(entries.into_inner() as f64 / run.seconds.max(f64::MIN_POSITIVE))
        ),
        ..run.row("range scan 1000", threads)
    };
    bar.finish_with_message(format!("{} scans/s", grouped(row.ops_per_s)));
    Ok(row)
}
