//! Anonymous memory of this process (`RssAnon` in /proc/self/status: heap and anonymous
//! mappings, not the pages of memory-mapped files), and its peak while a closure runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How often the sampler reads /proc/self/status.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// This process's `RssAnon` in bytes, or `None` where /proc does not report it.
pub fn rss_anon_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: u64 = line
        .trim_start_matches("RssAnon:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Hands memory the allocator keeps after `free` back to the kernel, so a baseline taken
/// after an engine closed does not include that engine's freed heap.
pub fn release_freed() {
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `RssAnon` just before a closure ran, and the most it reached while it ran.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    pub baseline: u64,
    pub peak: u64,
}

impl Peak {
    /// Growth over the baseline, in bytes.
    pub fn above_baseline(&self) -> u64 {
        self.peak.saturating_sub(self.baseline)
    }
}

/// Runs `f` while a thread samples `RssAnon` every [`SAMPLE_EVERY`]; freed memory is
/// released first so the baseline is what is really held. `None` beside the result when
/// /proc gives no `RssAnon`.
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, Option<Peak>) {
    release_freed();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop = &stop;
        let sampler = scope.spawn(move || {
            let baseline = rss_anon_bytes();
            let _ = ready_tx.send(());
            let mut peak = baseline;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(SAMPLE_EVERY);
                peak = peak.max(rss_anon_bytes());
            }
            baseline.zip(peak)
        });
        // The closure starts only once the baseline is taken.
        let _ = ready_rx.recv();
        let out = f();
        let last = rss_anon_bytes();
        stop.store(true, Ordering::Relaxed);
        let sampled = sampler.join().ok().flatten();
        let peak = sampled.map(|(baseline, peak)| Peak {
            baseline,
            peak: peak.max(last.unwrap_or(0)),
        });
        (out, peak)
    })
}
