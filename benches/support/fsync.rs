//! The machine's raw durability rate, measured beside each report so its numbers can be
//! read as ratios: 4 KiB `write` + `fdatasync` in a loop on a file in `dir`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// `fdatasync` calls per second over `phase`.
pub fn fdatasync_rate(dir: &Path, phase: Duration) -> f64 {
    let path = dir.join("fsync-probe");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < phase {
        f.write_all(&[0u8; 4096]).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let _ = std::fs::remove_file(&path);
    n as f64 / start.elapsed().as_secs_f64()
}
