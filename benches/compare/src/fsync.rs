//! The physical reference: 4 KiB pwrite + fdatasync pairs per second on a scratch file
//! in the benchmark directory, and the file system that directory is on.

use crate::engine::Res;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

const BLOCK_LEN: usize = 4096;
/// Writes cycle over this many blocks, so the file never grows (growing would add a
/// metadata update to every sync).
const BLOCKS: u64 = 256;

/// Syncs per second, measured for `seconds`.
pub fn raw_fdatasync(dir: &Path, seconds: f64) -> Res<f64> {
    let path = dir.join("fsync-probe");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    file.write_all_at(&vec![0u8; BLOCK_LEN * BLOCKS as usize], 0)?;
    file.sync_all()?;
    let block = vec![0xa5u8; BLOCK_LEN];
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs_f64(seconds);
    let mut n = 0u64;
    while Instant::now() < until {
        file.write_all_at(&block, (n % BLOCKS) * BLOCK_LEN as u64)?;
        file.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// The file system holding `dir`, from /proc/mounts, as "type (device)".
pub fn file_system_of(dir: &Path) -> String {
    let (Ok(dir), Ok(mounts)) = (dir.canonicalize(), std::fs::read_to_string("/proc/mounts"))
    else {
        return "unknown".into();
    };
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(device), Some(point), Some(kind)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let point = point.replace("\\040", " ");
        if dir.starts_with(&point) && best.as_ref().is_none_or(|(len, _)| point.len() >= *len) {
            best = Some((point.len(), format!("{kind} ({device})")));
        }
    }
    best.map_or_else(|| "unknown".into(), |(_, s)| s)
}

/// Bytes in all files under `dir`: (apparent length, allocated on disk).
pub fn dir_size(dir: &Path) -> Res<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (a, b) = dir_size(&entry.path())?;
            total = (total.0 + a, total.1 + b);
        } else {
            total = (total.0 + meta.len(), total.1 + meta.blocks() * 512);
        }
    }
    Ok(total)
}
