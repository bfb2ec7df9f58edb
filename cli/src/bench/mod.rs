//! `capsuledb bench`: a real workload on a temporary database, phase by phase, each
//! with a progress bar, then one summary table (or JSON).
//!
//! Every write phase gets a fresh database file (so one phase's versions and log do
//! not slow the next); the read phases share the one the bulk load filled. Each
//! writer cycles through its own pool of random keys, which keeps the in-memory
//! version store bounded until checkpoints exist.

mod commits;
mod driver;
mod fsync;
mod histogram;
mod reads;
mod report;

use crate::error::{CliError, CliResult};
use capsuledb::rng::Rng;
use capsuledb::{Database, Durability};
use driver::Limits;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use report::PhaseResult;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes per benchmark key.
pub const KEY_LEN: usize = 24;
/// Bytes per benchmark value.
pub const VALUE_LEN: usize = 150;
/// The table every phase uses.
pub const TABLE: &str = "bench";

/// Most threads one phase may start.
const THREADS_MAX: usize = 1024;
/// Most keys the bulk load may write (they all stay in memory until checkpoints exist).
const KEYS_MAX: u64 = 5_000_000;
/// Longest a phase may be asked to run.
const SECONDS_MAX: f64 = 3600.0;

/// The phases, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Raw 4 KiB write + fdatasync on a scratch file.
    Fsync,
    /// Durable commits from one thread.
    Single,
    /// Durable commits from each of --threads.
    Concurrent,
    /// Serializable read-2-write-1 transactions on a hot set, retrying conflicts.
    Contended,
    /// Applied-durability (in-memory) commits from each of --applied-threads.
    Applied,
    /// One transaction writing --keys keys.
    Bulk,
    /// Random point reads (needs the bulk load, which then runs too).
    Reads,
    /// 1000-key range scans (needs the bulk load, which then runs too).
    Scans,
}

const ALL_PHASES: [Phase; 8] = [
    Phase::Fsync,
    Phase::Single,
    Phase::Concurrent,
    Phase::Contended,
    Phase::Applied,
    Phase::Bulk,
    Phase::Reads,
    Phase::Scans,
];

/// Options of `capsuledb bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Run in a new temporary directory inside DIR (which must exist), to measure a
    /// chosen file system; by default the system temporary directory (TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Seconds each timed phase runs (the fsync probe runs at most 1.5 s).
    #[arg(long, value_name = "S", default_value_t = 5.0, value_parser = parse_seconds)]
    pub seconds_per_phase: f64,
    /// End each timed phase after N operations (commits, reads or scans) even if its
    /// time is not up.
    #[arg(long = "commits", visible_alias = "ops", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub ops_max: Option<u64>,
    /// Thread counts of the concurrent durable-commit phase, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [4, 16, 64], value_parser = parse_threads)]
    pub threads: Vec<usize>,
    /// Threads of the contended Serializable phase.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = parse_threads)]
    pub contended_threads: usize,
    /// Keys in the contended phase's hot set.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub hot_keys: u64,
    /// Thread counts of the Applied-durability phase, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [1, 16], value_parser = parse_threads)]
    pub applied_threads: Vec<usize>,
    /// Thread counts of the point-read phase, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [1, 2], value_parser = parse_threads)]
    pub read_threads: Vec<usize>,
    /// Keys written by the bulk load, then read and scanned by the read phases.
    #[arg(long, value_name = "N", default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=KEYS_MAX))]
    pub keys: u64,
    /// Distinct keys each writer thread cycles through in the commit phases.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub keys_per_writer: u64,
    /// Run only these phases, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_enum)]
    pub phases: Vec<Phase>,
    /// Seed of the key generator: the same seed writes the same keys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the bulk-loaded database (table `bench`) at FILE instead of deleting it, to
    /// try the other subcommands on it (`info`, `check`, `scan`, ...). FILE must not
    /// exist; the bulk phase must be among the phases run.
    #[arg(long, value_name = "FILE")]
    pub keep: Option<PathBuf>,
    /// Print the results as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= SECONDS_MAX {
        Ok(v)
    } else {
        Err(format!("must be more than 0 and at most {SECONDS_MAX}"))
    }
}

fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=THREADS_MAX).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a thread count in 1..={THREADS_MAX}")),
    }
}

/// What every phase needs: the options, the directory, and a counter naming the
/// database files.
pub struct Bench<'a> {
    args: &'a BenchArgs,
    dir: &'a Path,
    limits: Limits,
    next_db: AtomicU32,
}

impl Bench<'_> {
    /// A progress bar for a timed phase (hidden with --quiet or off a terminal).
    fn bar(&self, label: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(1), self.draw_target());
        let style = ProgressStyle::with_template("{prefix:>28} [{bar:30.cyan/blue}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar
    }

    fn draw_target(&self) -> ProgressDrawTarget {
        if self.args.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }

    /// A seed for one thread of one phase, derived from --seed.
    fn seed_for(&self, label: &str, thread: usize) -> u64 {
        let mut h = self.args.seed ^ 0x6361_7073_756c_6564;
        for b in label.bytes().chain((thread as u64).to_le_bytes()) {
            h = Rng::new(h ^ u64::from(b)).next_u64();
        }
        h
    }

    /// A new database file in the benchmark directory.
    fn fresh_db(&self) -> CliResult<Database> {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        Ok(Database::open(self.dir.join(format!("bench-{n}.db")))?)
    }

    /// Closes a database and gives its file the name `keep`, never replacing a file
    /// there (one made while the benchmark ran) and never leaving part of one: a link
    /// on the same file system; across file systems a copy beside `keep`, synced, then
    /// linked in (a failed copy removes itself).
    fn keep_db(&self, db: Database, keep: &Path) -> CliResult<()> {
        let path = db.path().map(Path::to_path_buf);
        db.close()?;
        let Some(path) = path else { return Ok(()) };
        let kept = crate::salvage::placing_error(
            keep,
            "the benchmark",
            "--keep writes a new file",
            format!("keep the database at {}", keep.display()),
        );
        match std::fs::hard_link(&path, keep) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(kept(e)),
            Err(_) => {
                let temp = crate::backup::temp_path(keep, "bench", "");
                let guard = crate::salvage::RemoveOnDrop(Some(temp.clone()));
                std::fs::copy(&path, &temp)
                    .and_then(|_| std::fs::File::open(&temp)?.sync_all())
                    .map_err(&kept)?;
                crate::salvage::link_no_replace(&temp, keep).map_err(&kept)?;
                drop(guard);
            }
        }
        std::fs::remove_file(&path)
            .map_err(|e| CliError::io(format!("remove {}", path.display()), e))?;
        // The new name reaches the disk before the run reports it kept. A failed sync
        // is a warning: the file is in place, and the run's results are still printed.
        if let Err(e) = crate::salvage::sync_dir_of(keep) {
            let _ = writeln!(
                std::io::stderr(),
                "capsuledb: warning: kept {}, but {e}: a power cut may lose the name",
                keep.display()
            );
        }
        Ok(())
    }

    /// Closes a phase's database (flushing everything) and deletes its file.
    fn finish_db(&self, db: Database) -> CliResult<()> {
        let path = db.path().map(Path::to_path_buf);
        db.close()?;
        if let Some(path) = path {
            std::fs::remove_file(&path)
                .map_err(|e| CliError::io(format!("remove {}", path.display()), e))?;
        }
        Ok(())
    }
}

/// 24 random bytes.
pub fn random_key(rng: &mut Rng) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    key
}

/// A 150-byte value of random bytes.
pub fn value_for(rng: &mut Rng) -> [u8; VALUE_LEN] {
    let mut value = [0u8; VALUE_LEN];
    for chunk in value.chunks_mut(8) {
        let bytes = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&bytes));
    }
    value
}

/// Most bytes the writers' key pools of one commit phase may hold together.
const KEY_POOLS_BYTES_MAX: u64 = 2 << 30;

/// Runs the selected phases and prints the summary. Interrupted by a signal, it leaves the
/// exit to the thread that removes the run's directory (the run's own error, its files
/// gone under it, must not end the process first with another status).
pub fn run(args: &BenchArgs) -> CliResult<()> {
    let result = run_uninterrupted(args);
    crate::interrupt::wait_if_interrupted();
    result
}

fn run_uninterrupted(args: &BenchArgs) -> CliResult<()> {
    // Every writer of a commit phase holds its pool of keys: refuse a combination whose
    // pools alone would not fit in memory, before anything runs.
    let most_threads = args
        .threads
        .iter()
        .chain(&args.applied_threads)
        .copied()
        .chain([args.contended_threads, 1])
        .max()
        .unwrap_or(1) as u64;
    let pool_bytes = most_threads
        .saturating_mul(args.keys_per_writer)
        .saturating_mul(KEY_LEN as u64);
    if pool_bytes > KEY_POOLS_BYTES_MAX {
        return Err(CliError::msg(format!(
            "{most_threads} writers × {} keys per writer would hold {} MiB of keys; \
             lower --threads or --keys-per-writer (at most {} MiB)",
            args.keys_per_writer,
            pool_bytes >> 20,
            KEY_POOLS_BYTES_MAX >> 20
        )));
    }
    // `--keep` is checked before any phase runs: it never replaces a file, and a path
    // that cannot be kept is said at once, not after the whole run.
    if let Some(keep) = &args.keep {
        if keep.symlink_metadata().is_ok() {
            return Err(CliError::msg(format!(
                "{} exists; --keep writes a new file only",
                keep.display()
            )));
        }
        let parent = keep.parent().filter(|p| !p.as_os_str().is_empty());
        if parent.is_some_and(|p| !p.is_dir()) {
            return Err(CliError::msg(format!(
                "--keep {}: no such directory",
                keep.display()
            )));
        }
        // A directory the run could not write to (permissions, a read-only or full file
        // system) was found only after every phase, and the results were lost with it.
        tempfile::Builder::new()
            .prefix(".capsuledb-keep-")
            .tempfile_in(parent.unwrap_or(Path::new(".")))
            .map_err(|e| {
                CliError::io(
                    format!("--keep {}: create a file in its directory", keep.display()),
                    e,
                )
            })?;
        // The reads and scans run the bulk load too.
        let loads = [Phase::Bulk, Phase::Reads, Phase::Scans];
        if !args.phases.is_empty() && !args.phases.iter().any(|p| loads.contains(p)) {
            return Err(CliError::msg(
                "--keep keeps the bulk-loaded database: add the bulk phase to --phases",
            ));
        }
    }
    let tmp = match &args.path {
        Some(dir) => tempfile::Builder::new()
            .prefix("capsuledb-bench-")
            .tempdir_in(dir)
            .map_err(|e| CliError::io(format!("create a directory in {}", dir.display()), e))?,
        None => tempfile::Builder::new()
            .prefix("capsuledb-bench-")
            .tempdir()
            .map_err(|e| CliError::io("create a temporary directory", e))?,
    };
    // Interrupted, the run removes its directory as a finished one does (the threads the
    // phases start inherit the blocked signals), and the copy `--keep` may be writing
    // beside its target (across file systems).
    let keep_temp = args
        .keep
        .as_deref()
        .map(|keep| crate::backup::temp_prefix(keep, "bench"));
    crate::interrupt::remove_on_signal(tmp.path().to_path_buf(), keep_temp);
    let machine = report::Machine {
        directory: tmp.path().display().to_string(),
        file_system: fsync::file_system_of(tmp.path()),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        seed: args.seed,
        seconds_per_phase: args.seconds_per_phase,
    };
    // Output goes through `writeln!`: a closed pipe or a full disk is an error the
    // caller reports (a closed pipe is no failure), never a panic as with `println!`.
    if !args.json {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "capsuledb bench: {} ({}), {} CPUs, {} s per phase, seed {}",
            machine.directory, machine.file_system, machine.cpus, args.seconds_per_phase, args.seed
        )?;
        if machine.file_system.starts_with("tmpfs") || machine.file_system.starts_with("ramfs") {
            writeln!(
                out,
                "note: this directory is in memory, so fsync costs nothing; use --path DIR on a disk"
            )?;
        }
        out.flush()?;
    }
    let bench = Bench {
        args,
        dir: tmp.path(),
        limits: Limits {
            seconds: args.seconds_per_phase,
            ops_max: args.ops_max,
        },
        next_db: AtomicU32::new(0),
    };
    let results = run_phases(&bench)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&report::json(&machine, &results))
            .map_err(|e| CliError::msg(format!("cannot encode the results: {e}")))?;
        writeln!(out, "{text}")?;
    } else {
        writeln!(out)?;
        write!(out, "{}", report::table(&results))?;
    }
    out.flush()?;
    tmp.close()
        .map_err(|e| CliError::io("remove the benchmark directory", e))?;
    Ok(())
}

fn run_phases(b: &Bench<'_>) -> CliResult<Vec<PhaseResult>> {
    let selected = if b.args.phases.is_empty() {
        ALL_PHASES.to_vec()
    } else {
        b.args.phases.clone()
    };
    let wants = |p: Phase| selected.contains(&p);
    let mut results = Vec::new();
    if wants(Phase::Fsync) {
        let bar = b.bar("raw fdatasync ×1");
        let row = fsync::raw_fdatasync(b.dir, b.limits, &bar)?;
        bar.finish_with_message(format!("{} syncs/s", report::grouped(row.ops_per_s)));
        results.push(row);
    }
    if wants(Phase::Single) {
        results.push(commits::commits(
            b,
            "durable commit",
            1,
            Durability::Durable,
        )?);
    }
    if wants(Phase::Concurrent) {
        for &t in &b.args.threads {
            results.push(commits::commits(
                b,
                "durable commit",
                t,
                Durability::Durable,
            )?);
        }
    }
    if wants(Phase::Contended) {
        results.push(commits::contended(b, b.args.contended_threads)?);
    }
    if wants(Phase::Applied) {
        for &t in &b.args.applied_threads {
            results.push(commits::commits(
                b,
                "applied commit",
                t,
                Durability::Applied,
            )?);
        }
    }
    if wants(Phase::Bulk) || wants(Phase::Reads) || wants(Phase::Scans) {
        let (row, loaded) = reads::bulk_load(b)?;
        results.push(row);
        if wants(Phase::Reads) {
            for &t in &b.args.read_threads {
                results.push(reads::point_reads(b, &loaded, t)?);
            }
        }
        if wants(Phase::Scans) {
            results.push(reads::range_scans(b, &loaded, 1)?);
        }
        match &b.args.keep {
            Some(keep) => b.keep_db(loaded.db, keep)?,
            None => b.finish_db(loaded.db)?,
        }
    }
    Ok(results)
}
