//! Runs one timed phase: N worker threads repeat an operation until the phase's time
//! (or operation budget) is used up, while the calling thread drives the progress bar.

use super::histogram::Histogram;
use crate::error::{CliError, CliResult};
use indicatif::ProgressBar;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often the progress bar is redrawn.
const TICK: Duration = Duration::from_millis(50);

/// How long a timed phase runs.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock seconds per phase.
    pub seconds: f64,
    /// Operations per phase at most, across all threads.
    pub ops_max: Option<u64>,
}

/// What one call of a worker's operation did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// Operations completed (commits, reads, scans).
    pub ops: u64,
    /// Attempts that aborted with a retryable conflict.
    pub aborts: u64,
}

/// The totals of a phase.
pub struct Run {
    pub ops: u64,
    pub aborts: u64,
    /// From the common start to the last worker's end.
    pub seconds: f64,
    pub latency: Histogram,
}

impl Run {
    /// A summary row with this run's timing filled in and the rest left empty.
    pub fn row(&self, phase: &str, threads: usize) -> super::report::PhaseResult {
        super::report::PhaseResult {
            phase: phase.into(),
            threads,
            ops: self.ops,
            seconds: self.seconds,
            ops_per_s: self.ops_per_s(),
            latency_us_p50: self.latency.quantile_us(0.5),
            latency_us_p99: self.latency.quantile_us(0.99),
            ..super::report::PhaseResult::default()
        }
    }

    pub fn ops_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Aborted attempts as a percentage of all attempts.
    pub fn abort_pct(&self) -> f64 {
        let attempts = self.ops + self.aborts;
        if attempts == 0 {
            0.0
        } else {
            100.0 * self.aborts as f64 / attempts as f64
        }
    }
}

struct WorkerEnd {
    ops: u64,
    aborts: u64,
    latency: Histogram,
    end: Instant,
}

/// Runs `op` on `threads` threads, each with its own state made by `init(thread)`.
/// `op` records its own latency samples (so batched operations can time each item).
/// The bar's length is the phase length in milliseconds.
pub fn drive<S, I, O>(
    threads: usize,
    limits: Limits,
    bar: &ProgressBar,
    unit: &str,
    init: I,
    op: O,
) -> CliResult<Run>
where
    I: Fn(usize) -> CliResult<S> + Sync,
    O: Fn(&mut S, &mut Histogram) -> CliResult<Outcome> + Sync,
{
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    // The start gate: workers that initialized count themselves and wait for it to
    // open (a barrier would wait for ever for a worker whose thread never started).
    let gate = (Mutex::new((0usize, false)), Condvar::new());
    let phase = Duration::from_secs_f64(limits.seconds);
    let ops_max = limits.ops_max.unwrap_or(u64::MAX);
    let bar_len = phase.as_millis() as u64;
    bar.set_length(bar_len);
    let worker = |t: usize| -> CliResult<WorkerEnd> {
        let state = init(t);
        if state.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        {
            let mut g = gate
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            g.0 += 1;
            gate.1.notify_all();
            while !g.1 {
                g = gate
                    .1
                    .wait(g)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
        let mut state = state?;
        let start = Instant::now();
        let mut end = WorkerEnd {
            ops: 0,
            aborts: 0,
            latency: Histogram::new(),
            end: start,
        };
        while !stop.load(Ordering::Relaxed) && start.elapsed() < phase {
            let out = match op(&mut state, &mut end.latency) {
                Ok(out) => out,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            end.ops += out.ops;
            end.aborts += out.aborts;
            if done.fetch_add(out.ops, Ordering::Relaxed) + out.ops >= ops_max {
                stop.store(true, Ordering::Relaxed);
            }
        }
        end.end = Instant::now();
        Ok(end)
    };
    let worker = &worker;
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads);
        let mut spawn_error = None;
        for t in 0..threads {
            match std::thread::Builder::new().spawn_scoped(scope, move || worker(t)) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // The threads already running stop at once, and the error is told.
                    stop.store(true, Ordering::Relaxed);
                    spawn_error = Some(CliError::msg(format!(
                        "could not start benchmark thread {} of {threads}: {e}",
                        t + 1
                    )));
                    break;
                }
            }
        }
        {
            let mut g = gate
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while g.0 < handles.len() {
                g = gate
                    .1
                    .wait_timeout(g, TICK)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
                // Only a worker that panicked ends before the gate opens.
                if handles.iter().any(|h| h.is_finished()) {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            g.1 = true;
            gate.1.notify_all();
        }
        let start = Instant::now();
        while !handles.iter().all(|h| h.is_finished()) {
            let n = done.load(Ordering::Relaxed);
            let by_time = start.elapsed().as_millis() as u64;
            let by_ops = if ops_max == u64::MAX {
                0
            } else {
                (n as f64 / ops_max as f64 * bar_len as f64) as u64
            };
            bar.set_position(by_time.max(by_ops).min(bar_len));
            bar.set_message(format!("{n} {unit}"));
            std::thread::sleep(TICK);
        }
        let mut run = Run {
            ops: 0,
            aborts: 0,
            seconds: 0.0,
            latency: Histogram::new(),
        };
        let mut first_error = spawn_error;
        for h in handles {
            match h.join() {
                Ok(Ok(end)) => {
                    run.ops += end.ops;
                    run.aborts += end.aborts;
                    run.latency.merge(&end.latency);
                    run.seconds = run
                        .seconds
                        .max(end.end.saturating_duration_since(start).as_secs_f64());
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(CliError::msg("a benchmark thread panicked"));
                }
            }
        }
        bar.set_position(bar_len);
        match first_error {
            Some(e) => Err(e),
            None => Ok(run),
        }
    })
}
