//! The physical reference: how many 4 KiB write + fdatasync pairs the file system
//! under the benchmark directory does per second, and which file system that is.

use super::driver::{Limits, Outcome, drive};
use super::report::PhaseResult;
use crate::error::{CliError, CliResult};
use indicatif::ProgressBar;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

/// Bytes per synced write.
const BLOCK_LEN: usize = 4096;
/// Blocks in the scratch file; writes cycle over them so the file never grows
/// (growing would add metadata to every sync).
const BLOCKS: u64 = 256;
/// Longest the measurement runs, whatever the phase length.
const SECONDS_MAX: f64 = 1.5;

struct Scratch {
    file: File,
    block: Vec<u8>,
    next: u64,
}

/// Measures write + `sync_data` on a scratch file in `dir`, removed afterwards.
pub fn raw_fdatasync(dir: &Path, limits: Limits, bar: &ProgressBar) -> CliResult<PhaseResult> {
    let path = dir.join("fsync-probe");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| CliError::io(format!("create {}", path.display()), e))?;
    let zeros = vec![0u8; BLOCK_LEN * BLOCKS as usize];
    file.write_all_at(&zeros, 0)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::io("prepare the fsync probe file", e))?;
    let limits = Limits {
        seconds: limits.seconds.min(SECONDS_MAX),
        ..limits
    };
    let scratch = std::sync::Mutex::new(Some(Scratch {
        file,
        block: vec![0xa5; BLOCK_LEN],
        next: 0,
    }));
    let run = drive(
        1,
        limits,
        bar,
        "syncs",
        |_| {
            scratch
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .ok_or_else(|| CliError::msg("fsync probe used twice"))
        },
        |s: &mut Scratch, lat| {
            let t0 = Instant::now();
            let offset = (s.next % BLOCKS) * BLOCK_LEN as u64;
            s.next += 1;
            s.file
                .write_all_at(&s.block, offset)
                .and_then(|()| s.file.sync_data())
                .map_err(|e| CliError::io("write and sync the fsync probe", e))?;
            lat.record(t0.elapsed());
            Ok(Outcome { ops: 1, aborts: 0 })
        },
    );
    let _ = std::fs::remove_file(&path);
    let run = run?;
    Ok(PhaseResult {
        phase: "raw fdatasync".into(),
        threads: 1,
        ops: run.ops,
        seconds: run.seconds,
        ops_per_s: run.ops_per_s(),
        latency_us_p50: run.latency.quantile_us(0.5),
        latency_us_p99: run.latency.quantile_us(0.99),
        fsyncs_per_commit: Some(1.0),
        notes: "4 KiB pwrite + fdatasync: the disk's limit".into(),
        ..PhaseResult::default()
    })
}

/// The file system holding `dir`, from /proc/mounts (the longest mount point that
/// contains it), as "type (device)"; "unknown" where that cannot be read.
pub fn file_system_of(dir: &Path) -> String {
    let Ok(dir) = dir.canonicalize() else {
        return "unknown".into();
    };
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown".into();
    };
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(point), Some(kind)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let point = point.replace("\\040", " ");
        if dir.starts_with(&point) && best.as_ref().is_none_or(|(len, _)| point.len() >= *len) {
            best = Some((point.len(), format!("{kind} ({device})")));
        }
    }
    best.map_or_else(|| "unknown".into(), |(_, s)| s)
}
