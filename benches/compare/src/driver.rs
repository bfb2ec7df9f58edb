//! Runs a step function on N threads for a fixed time, each thread with its own engine
//! session, and the retry loop every transaction goes through.

use crate::engine::{Attempt, Body, Engine, Res, err};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Attempts one transaction may make before the run gives up on it.
const RETRIES_MAX: u64 = 1_000_000;

/// What a timed run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    pub ops: u64,
    pub aborts: u64,
    pub seconds: f64,
}

impl Run {
    pub fn per_s(&self) -> f64 {
        self.ops as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
    pub fn abort_pct(&self) -> f64 {
        100.0 * self.aborts as f64 / (self.ops + self.aborts).max(1) as f64
    }
}

/// Runs `body` until it commits; returns how many attempts were refused first.
pub fn run_tx<E: Engine>(
    e: &E,
    s: &mut E::Session,
    read_only: bool,
    body: &mut Body<'_>,
) -> Res<u64> {
    let mut aborts = 0;
    loop {
        match e.transact(s, read_only, body)? {
            Attempt::Committed => return Ok(aborts),
            Attempt::Retry { wait_for } => {
                aborts += 1;
                if aborts >= RETRIES_MAX {
                    return Err(err(format!(
                        "{}: a transaction aborted {aborts} times",
                        E::NAME
                    )));
                }
                e.before_retry(wait_for);
            }
        }
    }
}

/// Runs `step` on `threads` threads for `seconds`; each step returns `(ops, aborts)`.
/// The clock starts once every thread has its session and state, and stops when the
/// last thread has finished its step in flight.
pub fn timed<E, S, I, F>(e: &E, threads: usize, seconds: f64, init: I, step: F) -> Res<Run>
where
    E: Engine,
    I: Fn(usize) -> Res<S> + Sync,
    F: Fn(&E, &mut E::Session, &mut S) -> Res<(u64, u64)> + Sync,
{
    let stop = AtomicBool::new(false);
    let ops = AtomicU64::new(0);
    let aborts = AtomicU64::new(0);
    let ready = Barrier::new(threads + 1);
    // When the last worker stopped committing: the run ends there, before the workers'
    // sessions close (SQLite's last connection checkpoints its WAL as it closes).
    let ended = std::sync::Mutex::new(None::<Instant>);
    let (stop, ops, aborts, ready, init, step) = (&stop, &ops, &aborts, &ready, &init, &step);
    let ended = &ended;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Res<()> {
                    let prepared = e.session().and_then(|s| Ok((s, init(t)?)));
                    ready.wait();
                    let (mut session, mut state) = prepared?;
                    let (mut my_ops, mut my_aborts) = (0, 0);
                    let result = (|| {
                        while !stop.load(Ordering::Relaxed) {
                            let (o, a) = step(e, &mut session, &mut state)?;
                            my_ops += o;
                            my_aborts += a;
                        }
                        Ok(())
                    })();
                    let now = Instant::now();
                    let mut last = ended.lock().unwrap_or_else(|p| p.into_inner());
                    *last = Some(last.map_or(now, |l| l.max(now)));
                    drop(last);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    ops.fetch_add(my_ops, Ordering::Relaxed);
                    aborts.fetch_add(my_aborts, Ordering::Relaxed);
                    result
                })
            })
            .collect();
        ready.wait();
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs_f64(seconds);
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
        stop.store(true, Ordering::Relaxed);
        let mut first_err = None;
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(err("a worker thread panicked")));
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        let end = ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(Instant::now);
        let seconds = end.saturating_duration_since(t0).as_secs_f64();
        match first_err {
            Some(e) => Err(e),
            None => Ok(Run {
                ops: ops.load(Ordering::Relaxed),
                aborts: aborts.load(Ordering::Relaxed),
                seconds,
            }),
        }
    })
}
