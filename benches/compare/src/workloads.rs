//! Workloads (a) to (e): durable single-key commits on one and many threads, the bulk
//! load, point reads, forward and reverse range scans, and the single-key commits that
//! follow the load. (f) is in `smallbank.rs`.

use crate::driver::{Run, run_tx, timed};
use crate::engine::{Engine, KEY_LEN, Key, Res, Tx, err};
use crate::rng::{Rng, seed_for};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Bytes per value in (a) to (e) unless `--value-len` says otherwise.
pub const VALUE_LEN_DEFAULT: usize = 150;
static VALUE_LEN: AtomicUsize = AtomicUsize::new(VALUE_LEN_DEFAULT);

/// Bytes per value in (a) to (e).
pub fn value_len() -> usize {
    VALUE_LEN.load(Ordering::Relaxed)
}

/// Sets the bytes per value (`--value-len`), before any workload runs.
pub fn set_value_len(n: usize) {
    VALUE_LEN.store(n, Ordering::Relaxed);
}
/// Point reads per read snapshot in (d) unless `--reads-per-snapshot` says otherwise.
pub const READS_PER_SNAPSHOT_DEFAULT: usize = 256;
static READS_PER_SNAPSHOT: AtomicUsize = AtomicUsize::new(READS_PER_SNAPSHOT_DEFAULT);

/// Point reads per read snapshot in (d).
pub fn reads_per_snapshot() -> usize {
    READS_PER_SNAPSHOT.load(Ordering::Relaxed)
}

/// Sets the point reads per read snapshot (`--reads-per-snapshot`), before any workload
/// runs.
pub fn set_reads_per_snapshot(n: usize) {
    READS_PER_SNAPSHOT.store(n, Ordering::Relaxed);
}
/// Keys each writer thread of (b) cycles over.
const KEYS_PER_WRITER: u64 = 1024;

fn value(rng: &mut Rng) -> Vec<u8> {
    let mut v = vec![0u8; value_len().max(8)];
    rng.fill(&mut v);
    v
}

/// (a): `n` one-key transactions in a row on one thread; returns commits/s.
pub fn single<E: Engine>(e: &E, n: u64, seed: u64) -> Res<f64> {
    let mut rng = Rng::new(seed_for(seed, "single", 0));
    let mut s = e.session()?;
    let t0 = Instant::now();
    for _ in 0..n {
        let (key, val) = (rng.key(), value(&mut rng));
        run_tx(e, &mut s, false, &mut |tx: &mut dyn Tx| tx.put(&key, &val))?;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

struct Writer {
    rng: Rng,
    keys: Vec<Key>,
    value: Vec<u8>,
}

/// (b): `threads` threads committing one-key transactions on disjoint keys for `seconds`.
pub fn concurrent<E: Engine>(e: &E, threads: usize, seconds: f64, seed: u64) -> Res<Run> {
    timed(
        e,
        threads,
        seconds,
        |t| {
            let mut rng = Rng::new(seed_for(seed, "concurrent", (threads * 1000 + t) as u64));
            // The first two bytes name the thread: no two threads share a key.
            let keys = (0..KEYS_PER_WRITER)
                .map(|_| {
                    let mut k = rng.key();
                    k[..2].copy_from_slice(&(t as u16).to_be_bytes());
                    k
                })
                .collect();
            let value = value(&mut rng);
            Ok(Writer { rng, keys, value })
        },
        |e, s, w| {
            let key = w.keys[w.rng.below(KEYS_PER_WRITER) as usize];
            w.value[..8].copy_from_slice(&w.rng.next_u64().to_le_bytes());
            let value = &w.value;
            let aborts = run_tx(e, s, false, &mut |tx: &mut dyn Tx| tx.put(&key, value))?;
            Ok((1, aborts))
        },
    )
}

/// The keys of the bulk load, in load order: random, or with `ascending` a big-endian
/// counter in the first 8 bytes (then random bytes), so they are loaded in key order.
pub fn bulk_keys(n: u64, seed: u64, ascending: bool) -> Vec<Key> {
    let mut rng = Rng::new(seed_for(seed, "bulk", 0));
    (0..n)
        .map(|i| {
            let mut k = rng.key();
            if ascending {
                k[..8].copy_from_slice(&i.to_be_bytes());
            }
            k
        })
        .collect()
}

/// (c): puts every key durably, in one transaction, or with `batch > 0` in transactions
/// of `batch` keys; returns seconds, and the longest of those transactions in seconds.
pub fn bulk_load<E: Engine>(e: &E, keys: &[Key], seed: u64, batch: usize) -> Res<(f64, f64)> {
    let mut rng = Rng::new(seed_for(seed, "bulk values", 0));
    let mut val = value(&mut rng);
    let mut s = e.session()?;
    let t0 = Instant::now();
    let mut longest = 0.0f64;
    let batch = if batch == 0 { keys.len().max(1) } else { batch };
    for (b, part) in keys.chunks(batch).enumerate() {
        let first = (b * batch) as u64;
        let t = Instant::now();
        run_tx(e, &mut s, false, &mut |tx: &mut dyn Tx| {
            for (i, key) in (first..).zip(part) {
                val[..8].copy_from_slice(&i.to_le_bytes());
                tx.put(key, &val)?;
            }
            Ok(())
        })?;
        longest = longest.max(t.elapsed().as_secs_f64());
    }
    Ok((t0.elapsed().as_secs_f64(), longest))
}

/// (d): random point reads of loaded keys, `reads_per_snapshot()` per snapshot; every
/// key must be found.
pub fn reads<E: Engine>(e: &E, keys: &[Key], threads: usize, seconds: f64, seed: u64) -> Res<Run> {
    timed(
        e,
        threads,
        seconds,
        |t| {
            Ok((
                Rng::new(seed_for(seed, "reads", (threads * 1000 + t) as u64)),
                Vec::new(),
            ))
        },
        |e, s, (rng, batch): &mut (Rng, Vec<Key>)| {
            batch.clear();
            batch.extend(
                (0..reads_per_snapshot()).map(|_| keys[rng.below(keys.len() as u64) as usize]),
            );
            let found = e.read_batch(s, batch)?;
            if found != batch.len() {
                return Err(err(format!(
                    "{}: found {found} of {} loaded keys",
                    E::NAME,
                    batch.len()
                )));
            }
            Ok((found as u64, 0))
        },
    )
}

/// (e): scans of `len` entries from random start keys on one thread; returns the run
/// and the mean entries per scan. With `ascending` keys a random start key would lie past
/// every loaded key (their first 8 bytes count from 0), so a start then takes a random
/// loaded key's counter and random bytes after it.
pub fn scans<E: Engine>(
    e: &E,
    keys: &[Key],
    ascending: bool,
    len: usize,
    seconds: f64,
    seed: u64,
) -> Res<(Run, f64)> {
    let entries = std::sync::atomic::AtomicU64::new(0);
    let run = timed(
        e,
        1,
        seconds,
        |_| Ok(Rng::new(seed_for(seed, "scans", 0))),
        |e, s, rng| {
            let mut start = [0u8; KEY_LEN];
            rng.fill(&mut start);
            if ascending {
                let loaded = keys[rng.below(keys.len() as u64) as usize];
                start[..8].copy_from_slice(&loaded[..8]);
            }
            let n = e.scan(s, &start, len)?;
            entries.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Ok((1, 0))
        },
    )?;
    let mean = entries.into_inner() as f64 / run.ops.max(1) as f64;
    Ok((run, mean))
}

/// (e, reverse): scans of `len` entries going down from random loaded keys (each scan
/// includes its start key) on one thread; returns the run and the mean entries per scan.
pub fn scans_rev<E: Engine>(
    e: &E,
    keys: &[Key],
    len: usize,
    seconds: f64,
    seed: u64,
) -> Res<(Run, f64)> {
    let entries = std::sync::atomic::AtomicU64::new(0);
    let run = timed(
        e,
        1,
        seconds,
        |_| Ok(Rng::new(seed_for(seed, "reverse scans", 0))),
        |e, s, rng| {
            let start = keys[rng.below(keys.len() as u64) as usize];
            let n = e.scan_rev(s, &start, len)?;
            if n == 0 {
                return Err(err(format!(
                    "{}: a reverse scan missed its start key",
                    E::NAME
                )));
            }
            entries.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Ok((1, 0))
        },
    )?;
    let mean = entries.into_inner() as f64 / run.ops.max(1) as f64;
    Ok((run, mean))
}

/// What the single-key commits after the bulk load took.
pub struct AfterLoad {
    /// Wall time of all of them.
    pub seconds: f64,
    /// Each commit's latency, begin to durable, in seconds; ascending.
    pub latencies_s: Vec<f64>,
}

impl AfterLoad {
    pub fn per_s(&self) -> f64 {
        self.latencies_s.len() as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }

    /// The latency `q` (0..=1) of the way up, nearest rank.
    pub fn quantile_s(&self, q: f64) -> f64 {
        let n = self.latencies_s.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1));
        self.latencies_s.get(rank - 1).copied().unwrap_or(0.0)
    }

    pub fn max_s(&self) -> f64 {
        self.latencies_s.last().copied().unwrap_or(0.0)
    }
}

/// (c, after): `n` durable one-key transactions in a row right after the load and the
/// reads; each writes, with even odds, a random loaded key or a new random key.
pub fn commits_after_load<E: Engine>(e: &E, keys: &[Key], n: usize, seed: u64) -> Res<AfterLoad> {
    let mut rng = Rng::new(seed_for(seed, "after load", 0));
    let mut s = e.session()?;
    let mut latencies_s = Vec::with_capacity(n);
    let t0 = Instant::now();
    for _ in 0..n {
        let key = if rng.below(2) == 0 {
            keys[rng.below(keys.len() as u64) as usize]
        } else {
            rng.key()
        };
        let val = value(&mut rng);
        let t = Instant::now();
        run_tx(e, &mut s, false, &mut |tx: &mut dyn Tx| tx.put(&key, &val))?;
        latencies_s.push(t.elapsed().as_secs_f64());
    }
    let seconds = t0.elapsed().as_secs_f64();
    latencies_s.sort_by(f64::total_cmp);
    Ok(AfterLoad {
        seconds,
        latencies_s,
    })
}
