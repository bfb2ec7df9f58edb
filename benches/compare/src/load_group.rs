//! The load group, rows (c) to (e), on one engine after another: a bulk load (its time,
//! the peak anonymous memory it took, the files after it), point reads on 1 and 2
//! threads, forward and reverse scans, then single-key durable commits (rate, p99,
//! longest) and the files after those.

use crate::config::Config;
use crate::engine::{Engine, KEY_LEN, Key, Res};
use crate::fsync;
use crate::memory::{self, Peak};
use crate::report::{Better, Table, failed, fmt_num};
use crate::runner::{Runner, slug};
use crate::workloads;
use std::path::Path;

/// The figures of the group for one engine, filled in as they are measured.
#[derive(Default)]
pub struct Cells {
    load_s: Option<f64>,
    /// The longest transaction of a batched load, s.
    load_longest: Option<f64>,
    memory: Option<Peak>,
    size: Option<(u64, u64)>,
    stats: Option<String>,
    reads: Vec<(usize, f64)>,
    scans: Option<(f64, f64)>,
    scans_rev: Option<(f64, f64)>,
    /// Commits after the load: (commits/s, p99 ms, max ms).
    after: Option<(f64, f64, f64)>,
    size_after: Option<(u64, u64)>,
    after_stats: Option<String>,
}

/// Runs the whole group on one open engine, in its directory `dir`.
pub fn measure<E: Engine>(e: &E, dir: &Path, c: &Config, keys: &[Key], out: &mut Cells) -> Res<()> {
    let _ = e.stats_note();
    // Sampled from before the transaction begins until its durable commit returns.
    let (loaded, peak) =
        memory::peak_during(|| workloads::bulk_load(e, keys, c.seed, c.load_batch));
    // A failed load's peak is no figure: kept only once the load succeeded.
    let (s, longest) = loaded?;
    out.memory = peak;
    out.load_s = Some(s);
    out.load_longest = Some(longest);
    out.size = Some(fsync::dir_size(dir)?);
    out.stats = e.stats_note();
    eprintln!(
        "    bulk load {s:.2} s, {:.1} MB on disk, RssAnon peak {} MB above a baseline of {} MB",
        out.size.map_or(0, |s| s.1) as f64 / 1e6,
        peak.map_or("?".into(), |p| fmt_num(p.above_baseline() as f64 / 1e6)),
        peak.map_or("?".into(), |p| fmt_num(p.baseline as f64 / 1e6)),
    );
    for threads in [1, 2] {
        let run = workloads::reads(e, keys, threads, c.read_seconds, c.seed)?;
        eprintln!(
            "    point reads ×{threads}: {} reads/s",
            fmt_num(run.per_s())
        );
        out.reads.push((threads, run.per_s()));
    }
    let (run, mean) = workloads::scans(
        e,
        keys,
        c.ascending_keys,
        c.scan_len,
        c.read_seconds,
        c.seed,
    )?;
    eprintln!(
        "    scans: {} scans/s ({mean:.0} entries each)",
        fmt_num(run.per_s())
    );
    out.scans = Some((run.per_s(), mean));
    let (run, mean) = workloads::scans_rev(e, keys, c.scan_len, c.read_seconds, c.seed)?;
    eprintln!(
        "    reverse scans: {} scans/s ({mean:.0} entries each)",
        fmt_num(run.per_s())
    );
    out.scans_rev = Some((run.per_s(), mean));
    let after = workloads::commits_after_load(e, keys, c.after_commits, c.seed)?;
    let figures = (
        after.per_s(),
        after.quantile_s(0.99) * 1e3,
        after.max_s() * 1e3,
    );
    out.after = Some(figures);
    out.size_after = Some(fsync::dir_size(dir)?);
    out.after_stats = e.stats_note();
    eprintln!(
        "    then {} commits: {} commits/s, p99 {:.2} ms, max {:.2} ms, {:.1} MB on disk",
        c.after_commits,
        fmt_num(figures.0),
        figures.1,
        figures.2,
        out.size_after.map_or(0, |s| s.1) as f64 / 1e6
    );
    Ok(())
}

/// The group's rows, in table order.
struct Labels {
    load: String,
    memory: String,
    size: String,
    reads_1: String,
    reads_2: String,
    scans: String,
    scans_rev: String,
    after_rate: String,
    after_p99: String,
    after_max: String,
    size_after: String,
}

impl Labels {
    fn new(c: &Config) -> Labels {
        let n = fmt_num(c.after_commits as f64);
        Labels {
            load: format!(
                "(c) bulk load of {} {}keys in {}: s",
                fmt_num(c.keys as f64),
                if c.ascending_keys { "ascending " } else { "" },
                if c.load_batch == 0 {
                    "one durable transaction".to_string()
                } else {
                    format!("durable transactions of {} keys", fmt_num(c.load_batch as f64))
                }
            ),
            memory: "(c) peak anonymous memory (RssAnon) during the bulk load, minus RssAnon just before it: MB".into(),
            size: "(c) all files after the bulk load: MB allocated on disk".into(),
            reads_1: format!(
                "(d) random point reads, 1 thread, {} per read transaction: reads/s",
                workloads::reads_per_snapshot()
            ),
            reads_2: format!(
                "(d) random point reads, 2 threads, {} per read transaction: reads/s",
                workloads::reads_per_snapshot()
            ),
            scans: format!(
                "(e) {}-key range scans from random starts, 1 thread: scans/s",
                c.scan_len
            ),
            scans_rev: format!(
                "(e) {}-key reverse range scans down from random loaded keys, 1 thread: scans/s",
                c.scan_len
            ),
            after_rate: format!(
                "(c) then {n} more durable 1-key commits (half updates, half new keys), 1 thread: commits/s"
            ),
            after_p99: format!("(c) those {n} commits: p99 latency, ms"),
            after_max: format!("(c) those {n} commits: longest latency, ms"),
            size_after: format!("(c) all files after those {n} commits: MB allocated on disk"),
        }
    }

    fn all(&self) -> [(&str, Better); 11] {
        [
            (&self.load, Better::Lower),
            (&self.memory, Better::Lower),
            (&self.size, Better::Lower),
            (&self.reads_1, Better::Higher),
            (&self.reads_2, Better::Higher),
            (&self.scans, Better::Higher),
            (&self.scans_rev, Better::Higher),
            (&self.after_rate, Better::Higher),
            (&self.after_p99, Better::Lower),
            (&self.after_max, Better::Lower),
            (&self.size_after, Better::Lower),
        ]
    }
}

/// Runs the group on every engine in `rs`, filling `t` and adding to `notes`.
pub fn run(
    t: &mut Table,
    notes: &mut Vec<String>,
    rs: &[Box<dyn Runner>],
    c: &Config,
    root: &Path,
) {
    let keys = workloads::bulk_keys(c.keys, c.seed, c.ascending_keys);
    let l = Labels::new(c);
    for (label, better) in l.all() {
        t.row(label, better);
    }
    let (mut sizes, mut sizes_after, mut baselines) = (Vec::new(), Vec::new(), Vec::new());
    let mb = |bytes: u64| format!("{:.1} MB", bytes as f64 / 1e6);
    for (i, r) in rs.iter().enumerate() {
        eprintln!(
            "(c, d, e) {}: bulk load of {} keys, then reads, scans and {} commits ...",
            r.name(),
            c.keys,
            c.after_commits
        );
        // What the previous engines left behind, before this one opens.
        memory::release_freed();
        let before_open = memory::rss_anon_bytes();
        let mut cells = Cells::default();
        let result = r.load_read_scan(
            &root.join(format!("{}-c", slug(r.name()))),
            c,
            &keys,
            &mut cells,
        );
        let name = r.name();
        if let Some(s) = cells.load_s {
            t.set(&l.load, Better::Lower, i, s);
        }
        if let Some(x) = cells.load_longest.filter(|_| c.load_batch > 0) {
            notes.push(format!(
                "{name} (c): the longest of the load's transactions of {} keys took {:.1} ms",
                fmt_num(c.load_batch as f64),
                x * 1e3
            ));
        }
        if let Some(p) = cells.memory {
            t.set(&l.memory, Better::Lower, i, p.above_baseline() as f64 / 1e6);
            let opened_at = before_open.map_or("?".into(), mb);
            baselines.push(format!("{name} {opened_at} / {}", mb(p.baseline)));
        }
        if let Some((apparent, allocated)) = cells.size {
            t.set(&l.size, Better::Lower, i, allocated as f64 / 1e6);
            sizes.push(format!("{name} {}", mb(apparent)));
        }
        if let Some(s) = cells.stats {
            notes.push(format!("{name} (c): {s}"));
        }
        for (threads, x) in cells.reads {
            let label = if threads == 1 { &l.reads_1 } else { &l.reads_2 };
            t.set(label, Better::Higher, i, x);
        }
        for (scans, label, what) in [
            (cells.scans, &l.scans, "scans"),
            (cells.scans_rev, &l.scans_rev, "reverse scans"),
        ] {
            if let Some((x, mean)) = scans {
                t.set(label, Better::Higher, i, x);
                if (mean - c.scan_len as f64).abs() > 0.05 * c.scan_len as f64 {
                    notes.push(format!("{name} (e): {what} averaged {mean:.0} entries"));
                }
            }
        }
        if let Some((per_s, p99_ms, max_ms)) = cells.after {
            t.set(&l.after_rate, Better::Higher, i, per_s);
            t.set(&l.after_p99, Better::Lower, i, p99_ms);
            t.set(&l.after_max, Better::Lower, i, max_ms);
        }
        if let Some((apparent, allocated)) = cells.size_after {
            t.set(&l.size_after, Better::Lower, i, allocated as f64 / 1e6);
            sizes_after.push(format!("{name} {}", mb(apparent)));
        }
        if let Some(s) = cells.after_stats {
            notes.push(format!("{name} (c), the commits after the load: {s}"));
        }
        if let Err(e) = result {
            failed(notes, "(c)/(d)/(e)", name, &e);
        }
    }
    let value_len = workloads::value_len();
    let raw = c.keys * (KEY_LEN + value_len) as u64;
    notes.push(format!(
        "(c) raw data of the bulk load: {} keys × ({KEY_LEN} + {value_len}) bytes = {} (key + value bytes), to read the memory and file rows against. The memory row is the peak of RssAnon (heap and anonymous mappings; pages of memory-mapped files are not in it), sampled every 5 ms from before the load's transaction begins until its durable commit returns, minus RssAnon just before (freed memory is handed back with `malloc_trim(0)` first, and each engine runs after the previous one is closed). RssAnon before the engine opened / before its load began (the baseline): {}.",
        fmt_num(c.keys as f64),
        mb(raw),
        if baselines.is_empty() {
            "not available".to_string()
        } else {
            baselines.join(", ")
        }
    ));
    if !sizes.is_empty() {
        notes.push(format!(
            "Apparent file sizes after (c): {}.",
            sizes.join(", ")
        ));
    }
    if !sizes_after.is_empty() {
        notes.push(format!(
            "Apparent file sizes after the commits that follow (c): {}.",
            sizes_after.join(", ")
        ));
    }
}
