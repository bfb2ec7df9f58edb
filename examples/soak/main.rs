//! A soak run: many threads mixing bank transfers, scans, snapshots, filler rows that
//! grow and shrink the file, and checkpoints and compactions beside them, for minutes.
//!
//! ```sh
//! cargo run --release --example soak -- --minutes 10 --threads 64 [--path FILE]
//! ```
//!
//! Every few seconds it prints one line (throughput, file size, memory, version store,
//! the longest commit of the interval); at the end a summary, the final
//! `check_integrity()` and a reopen that checks the invariant again. Any violated
//! invariant (a bank total that is off, a negative balance, a filler value that reads
//! back wrong, an unexpected error) stops the run and makes it fail. `tests/soak_short.rs`
//! runs the same [`run`] for a few seconds; it asserts invariants and integrity, never
//! timings: the numbers are for a person to read.
//!
//! The parts: [`runner`] (the run), [`bank`] (transfers and scans), [`filler`] (rows
//! that grow and shrink the file), [`snapshots`] (read-only checks), [`maintenance`]
//! (checkpoints, compactions, samples), [`shared`] (counters) and [`report`].

mod bank;
mod filler;
mod maintenance;
mod report;
mod runner;
mod shared;
mod snapshots;

pub use runner::{Config, run};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: soak [--minutes M | --seconds S] [--threads N] [--path FILE] \
                     [--report-secs S] [--seed N]";

fn parse_args(args: &[String]) -> Result<(Config, Option<tempfile::TempDir>), String> {
    let mut cfg = Config::new(PathBuf::new());
    let mut path = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("{flag}: not a number: {v}"))
        };
        // A span a `Duration` can hold (a huge one panicked).
        let secs = |x: f64| {
            Duration::try_from_secs_f64(x).map_err(|_| format!("{flag}: too large: {value}"))
        };
        match flag.as_str() {
            "--minutes" => cfg.duration = secs(num(value)? * 60.0)?,
            "--seconds" => cfg.duration = secs(num(value)?)?,
            "--threads" => {
                cfg.threads = Some(num(value)?)
                    .filter(|&n| (1.0..=4096.0).contains(&n))
                    .ok_or_else(|| format!("{flag}: 1 to 4096 threads, not {value}"))?
                    as usize
            }
            "--report-secs" => cfg.report_every = secs(num(value)?.max(0.1))?,
            "--seed" => cfg.seed = num(value)? as u64,
            "--path" => path = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let dir = match path {
        Some(p) => {
            cfg.path = p;
            None
        }
        None => {
            let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
            cfg.path = dir.path().join("soak.db");
            Some(dir)
        }
    };
    Ok((cfg, dir))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, _dir) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    if cfg.path.exists() {
        eprintln!("soak: {} exists; give a new file", cfg.path.display());
        return ExitCode::from(2);
    }
    if run(&cfg).passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
