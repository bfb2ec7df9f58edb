//! What a run reports: the progress lines, the final [`Report`], and their printing.
//! The numbers are for a person to read; only the invariants decide a run.

use std::time::Duration;

/// Violation messages kept for the report (the count is always exact).
pub(super) const VIOLATIONS_KEPT_MAX: usize = 20;

/// One progress line's numbers.
#[derive(Clone, Debug, Default)]
pub struct Interval {
    /// Seconds since the workload started.
    pub elapsed_s: f64,
    /// Commits of transfers and filler rows per second in the interval.
    pub commits_per_s: f64,
    /// Conflicts (transfers and serializable scans) per second.
    pub aborts_per_s: f64,
    /// Full-table range scans per second (serializable and snapshot).
    pub scans_per_s: f64,
    /// File length at the end of the interval.
    pub file_len: u64,
    /// Resident set size, kB.
    pub rss_kb: u64,
    /// Peak resident set size so far, kB.
    pub hwm_kb: u64,
    /// Anonymous resident memory (heap, not the file mapping), kB.
    pub anon_kb: u64,
    /// Versions in the version store.
    pub versions: u64,
    /// Bytes in the version store.
    pub version_bytes: u64,
    /// Records the commit index keeps for validation.
    pub index_records: usize,
    /// Pages in the free set.
    pub free_pages: u64,
    /// The longest single commit call in the interval.
    pub commit_max: Duration,
}

/// What a run did and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Every violated invariant (the first [`VIOLATIONS_KEPT_MAX`] messages).
    pub violations: Vec<String>,
    /// Number of violations.
    pub violation_count: u64,
    /// The progress lines.
    pub intervals: Vec<Interval>,
    /// How long the workload ran.
    pub elapsed: Duration,
    /// Committed transfers.
    pub transfers: u64,
    /// Committed filler inserts and deletes.
    pub filler_commits: u64,
    /// Conflicts met (each retried).
    pub aborts: u64,
    /// Range scans that checked the bank total.
    pub scans: u64,
    /// Snapshot (`begin_read`) checks of the bank total.
    pub snapshots: u64,
    /// Filler values read back and verified.
    pub filler_checks: u64,
    /// Checkpoints run by the maintenance thread.
    pub checkpoints: u64,
    /// Compactions run by the maintenance thread.
    pub compactions: u64,
    /// Bytes `compact` returned to the operating system in total.
    pub compacted_bytes: u64,
    /// Peak resident set size (VmHWM), kB.
    pub peak_rss_kb: u64,
    /// Peak anonymous resident memory sampled, kB.
    pub peak_anon_kb: u64,
    /// Peak file length sampled.
    pub peak_file_len: u64,
    /// File length when the workload stopped.
    pub final_file_len: u64,
    /// The longest single commit call: the stall bound observed.
    pub commit_max: Duration,
    /// The longest `checkpoint()` call.
    pub checkpoint_max: Duration,
    /// The longest `compact()` call.
    pub compact_max: Duration,
    /// Problems found by `check_integrity()` after the workload (`None` if it failed).
    pub integrity: Option<Vec<String>>,
    /// Problems found by `check_integrity()` after reopening.
    pub reopen_integrity: Option<Vec<String>>,
    /// Whether the reopened database held the bank total and readable filler rows.
    pub reopen_ok: bool,
}

impl Report {
    /// Whether no invariant was violated and both integrity checks and the reopen passed.
    pub fn passed(&self) -> bool {
        self.violation_count == 0
            && self.integrity.as_ref().is_some_and(Vec::is_empty)
            && self.reopen_integrity.as_ref().is_some_and(Vec::is_empty)
            && self.reopen_ok
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(super) fn print_header() {
    println!(
        "{:>7} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>10}",
        "t_s",
        "commit/s",
        "abort/s",
        "scan/s",
        "file_MiB",
        "rss_MiB",
        "hwm_MiB",
        "anon_MiB",
        "versions",
        "vstore_MiB",
        "idx_recs",
        "free_pg",
        "commit_max_ms"
    );
}

pub(super) fn print_interval(i: &Interval) {
    println!(
        "{:>7.1} {:>9.0} {:>8.0} {:>8.0} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>9} {:>9.1} {:>8} {:>8} \
         {:>10.1}",
        i.elapsed_s,
        i.commits_per_s,
        i.aborts_per_s,
        i.scans_per_s,
        mib(i.file_len),
        i.rss_kb as f64 / 1024.0,
        i.hwm_kb as f64 / 1024.0,
        i.anon_kb as f64 / 1024.0,
        i.versions,
        mib(i.version_bytes),
        i.index_records,
        i.free_pages,
        ms(i.commit_max)
    );
}

pub(super) fn print_summary(r: &Report, stats: &capsuledb::Stats) {
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let commits = r.transfers + r.filler_commits;
    println!("soak summary after {secs:.1} s:");
    println!(
        "  commits {commits} ({:.0}/s): {} transfers, {} filler; {} aborts ({:.1}% of attempts)",
        commits as f64 / secs,
        r.transfers,
        r.filler_commits,
        r.aborts,
        100.0 * r.aborts as f64 / (commits + r.aborts).max(1) as f64
    );
    println!(
        "  checks: {} scans, {} snapshots, {} filler values verified",
        r.scans, r.snapshots, r.filler_checks
    );
    println!(
        "  maintenance: {} checkpoints (longest {:.1} ms), {} compactions (longest {:.1} ms, \
         {:.1} MiB returned); engine checkpoints {}",
        r.checkpoints,
        ms(r.checkpoint_max),
        r.compactions,
        ms(r.compact_max),
        mib(r.compacted_bytes),
        stats.checkpoints
    );
    println!(
        "  memory: peak RSS {:.1} MiB (VmHWM), peak anon {:.1} MiB; version store at the end \
         {} versions, {:.1} MiB",
        r.peak_rss_kb as f64 / 1024.0,
        r.peak_anon_kb as f64 / 1024.0,
        stats.versions,
        mib(stats.version_bytes)
    );
    println!(
        "  file: peak {:.1} MiB, final {:.1} MiB",
        mib(r.peak_file_len),
        mib(r.final_file_len)
    );
    println!(
        "  longest single commit call: {:.1} ms; serialized section max {:.1} µs",
        ms(r.commit_max),
        stats.section_ns_max as f64 / 1e3
    );
    let show = |p: &Option<Vec<String>>| match p {
        Some(v) if v.is_empty() => "clean".to_string(),
        Some(v) => format!("{} problems: {:?}", v.len(), v),
        None => "failed to run".to_string(),
    };
    println!("  check_integrity: {}", show(&r.integrity));
    println!(
        "  reopen: {}, check_integrity {}",
        if r.reopen_ok {
            "bank total and filler rows intact"
        } else {
            "FAILED"
        },
        show(&r.reopen_integrity)
    );
    println!(
        "  violations: {}{}",
        r.violation_count,
        if r.violations.is_empty() {
            String::new()
        } else {
            format!(" {:?}", r.violations)
        }
    );
    println!("  result: {}", if r.passed() { "PASS" } else { "FAIL" });
}
