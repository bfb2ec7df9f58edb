//! Filler rows: large values whose bytes follow from their key, inserted until a
//! thread holds a random target, verified and deleted again, so the file grows and
//! shrinks under the other workers.

use super::shared::Shared;
use capsuledb::rng::Rng;
use capsuledb::{Database, Durability, Error, Isolation};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(super) const FILLER: &str = "filler";

/// Filler values are `FILLER_LEN_MIN..FILLER_LEN_MAX` bytes, now and then `FILLER_LEN_HUGE`.
const FILLER_LEN_MIN: u64 = 4 << 10;
const FILLER_LEN_MAX: u64 = 512 << 10;
const FILLER_LEN_HUGE: usize = 4 << 20;
/// Each filler thread grows its rows to a random target up to this, then deletes them.
const FILLER_BYTES_PER_THREAD_MAX: u64 = 48 << 20;

/// The bytes of filler row `key`, `len` long: a pattern seeded by the key, so any
/// reader can check a value it finds.
fn filler_value(key: &[u8], len: usize) -> Vec<u8> {
    let seed = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut v = Vec::with_capacity(len);
    let mut x = seed;
    while v.len() < len {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let word = x.to_le_bytes();
        let take = (len - v.len()).min(word.len());
        v.extend_from_slice(&word[..take]);
    }
    v
}

pub(super) fn filler_key(thread: usize, n: u64) -> Vec<u8> {
    format!("f{thread:03}/{n:010}").into_bytes()
}

/// Whether a filler value found under `key` is the one its key implies.
pub(super) fn filler_ok(key: &[u8], value: &[u8]) -> bool {
    value == filler_value(key, value.len()).as_slice()
}

/// Inserts filler rows until this thread holds a random target of bytes, verifies and
/// deletes them all, and starts over: the file grows and shrinks.
pub(super) fn filler_thread(db: Database, sh: Arc<Shared>, thread: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut conn = db.connect();
    let mut next = 0u64;
    let fail = |e: Error| format!("filler thread {thread}: {e}");
    let run =
        |conn: &mut capsuledb::Connection, rng: &mut Rng, next: &mut u64| -> Result<(), String> {
            let target = (1 << 20) + rng.below(FILLER_BYTES_PER_THREAD_MAX);
            let mut live: Vec<(Vec<u8>, usize)> = Vec::new();
            let mut bytes = 0u64;
            while bytes < target && !sh.stopped() {
                let mut tx = conn.begin_with(Isolation::Snapshot).map_err(fail)?;
                let mut batch = Vec::new();
                for _ in 0..=rng.below(3) {
                    let len = if rng.chance(1, 50) {
                        FILLER_LEN_HUGE
                    } else {
                        (FILLER_LEN_MIN + rng.below(FILLER_LEN_MAX - FILLER_LEN_MIN)) as usize
                    };
                    let key = filler_key(thread, *next);
                    *next += 1;
                    tx.put(FILLER, &key, &filler_value(&key, len))
                        .map_err(fail)?;
                    batch.push((key, len));
                }
                // Keys are this thread's own: no conflict is possible.
                sh.commit(tx, Durability::Durable).map_err(fail)?;
                sh.filler_commits.fetch_add(1, Ordering::Relaxed);
                bytes += batch.iter().map(|(_, l)| *l as u64).sum::<u64>();
                live.extend(batch);
            }
            // Verify through zero-copy reads (mapped once checkpointed), then delete.
            for chunk in live.chunks(8) {
                let mut tx = conn.begin_with(Isolation::Snapshot).map_err(fail)?;
                for (key, len) in chunk {
                    let v = tx.get_ref(FILLER, key).map_err(fail)?.ok_or_else(|| {
                        format!("filler {} is missing", String::from_utf8_lossy(key))
                    })?;
                    if v.len() != *len || !filler_ok(key, &v) {
                        return Err(format!(
                            "filler {} reads back wrong ({} bytes, expected {len})",
                            String::from_utf8_lossy(key),
                            v.len()
                        ));
                    }
                    sh.filler_checks.fetch_add(1, Ordering::Relaxed);
                    tx.delete(FILLER, key).map_err(fail)?;
                }
                sh.commit(tx, Durability::Durable).map_err(fail)?;
                sh.filler_commits.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        };
    while !sh.stopped() {
        if let Err(what) = run(&mut conn, &mut rng, &mut next) {
            return sh.violation(what);
        }
    }
}
