//! The machine's raw durability rate, measured beside each report so its numbers can be
//! read as ratios: a 4 KiB `pwrite` over one of 256 blocks written and synced beforehand,
//! then `fdatasync`, in a loop on a file in `dir`. Overwrites, as the engine's log
//! writes are (into pages already filled): an append would also sync the file's new size
//! and a block allocation each time, a slower reference than the disk's.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Blocks the probe cycles over.
const BLOCKS: u64 = 256;

/// `fdatasync` calls per second over `phase`.
pub fn fdatasync_rate(dir: &Path, phase: Duration) -> f64 {
    let path = dir.join("fsync-probe");
    let f = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let block = [0u8; 4096];
    for i in 0..BLOCKS {
        f.write_all_at(&block, i * 4096).unwrap();
    }
    f.sync_all().unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < phase {
        f.write_all_at(&block, (n % BLOCKS) * 4096).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    assert_eq!(
        f.metadata().unwrap().len(),
        BLOCKS * 4096,
        "the probe overwrites"
    );
    let _ = std::fs::remove_file(&path);
    n as f64 / start.elapsed().as_secs_f64()
}
