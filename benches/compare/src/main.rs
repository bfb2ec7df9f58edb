//! `compare`: runs the same durable workloads on capsuledb, redb, LMDB (heed), SQLite and
//! fjall in one process, on one file system, and prints one Markdown table.
//!
//! Every engine implements the small [`engine::Engine`] trait; every workload is written
//! once against it. See README.md for what each row measures.

mod driver;
mod engine;
mod engines;
mod fsync;
mod report;
mod rng;
mod smallbank;
mod workloads;

use driver::Run;
use engine::{Engine, Key, Res, err};
use report::{Better, Table, fmt_num};
use smallbank::Bank;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Instant;

const USAGE: &str = "\
compare: the same durable workloads on capsuledb, redb, LMDB, SQLite and fjall

usage: compare [--quick] [options]

  --quick              tiny sizes (about 20 s in all); other flags still override
  --dir PATH           where the databases go (a fresh subdirectory; default: the temp dir)
  --engines LIST       comma-separated subset of: capsuledb,redb,lmdb,sqlite,fjall
  --commits N          (a) transactions on one thread            [2000]
  --seconds S          (b) and (f) duration of each run          [5]
  --threads LIST       (b) writer thread counts                  [4,16,64]
  --keys N             (c) keys in the bulk load                 [1000000]
  --read-seconds S     (d) and (e) duration of each run          [3]
  --scan-len N         (e) entries per scan                      [1000]
  --bank-threads N     (f) threads                               [16]
  --accounts N         (f) accounts (each checking + savings)    [10000]
  --hot N              (f) accounts in the hot set               [100]
  --hot-pct P          (f) percent of picks that hit the hot set [90]
  --seed N             seed for every key and choice             [42]
";

struct Config {
    base: PathBuf,
    engines: Vec<String>,
    commits: u64,
    seconds: f64,
    threads: Vec<usize>,
    keys: u64,
    read_seconds: f64,
    scan_len: usize,
    bank_threads: usize,
    bank: Bank,
    seed: u64,
    fsync_seconds: f64,
}

fn parse_args() -> Res<Config> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        std::process::exit(0);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let mut c = Config {
        base: std::env::temp_dir(),
        engines: ["capsuledb", "redb", "lmdb", "sqlite", "fjall"]
            .map(String::from)
            .to_vec(),
        commits: if quick { 200 } else { 2000 },
        seconds: if quick { 0.5 } else { 5.0 },
        threads: vec![4, 16, 64],
        keys: if quick { 20_000 } else { 1_000_000 },
        read_seconds: if quick { 0.5 } else { 3.0 },
        scan_len: 1000,
        bank_threads: 16,
        bank: Bank {
            accounts: if quick { 1000 } else { 10_000 },
            hot: 100,
            hot_pct: 90,
        },
        seed: 42,
        fsync_seconds: if quick { 0.3 } else { 1.0 },
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--quick" {
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| err(format!("{flag} needs a value\n\n{USAGE}")))?;
        let bad = |_: &dyn std::error::Error| err(format!("bad value {value:?} for {flag}"));
        match flag.as_str() {
            "--dir" => c.base = PathBuf::from(value),
            "--engines" => c.engines = value.split(',').map(|s| s.trim().to_lowercase()).collect(),
            "--commits" => c.commits = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => c.seconds = value.parse().map_err(|e| bad(&e))?,
            "--threads" => {
                c.threads = value
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(&e))?
            }
            "--keys" => c.keys = value.parse().map_err(|e| bad(&e))?,
            "--read-seconds" => c.read_seconds = value.parse().map_err(|e| bad(&e))?,
            "--scan-len" => c.scan_len = value.parse().map_err(|e| bad(&e))?,
            "--bank-threads" => c.bank_threads = value.parse().map_err(|e| bad(&e))?,
            "--accounts" => c.bank.accounts = value.parse().map_err(|e| bad(&e))?,
            "--hot" => c.bank.hot = value.parse().map_err(|e| bad(&e))?,
            "--hot-pct" => c.bank.hot_pct = value.parse().map_err(|e| bad(&e))?,
            "--seed" => c.seed = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(err(format!("unknown flag {flag}\n\n{USAGE}"))),
        }
    }
    if c.keys == 0 || c.bank.accounts < 2 || c.bank.hot == 0 || c.bank.hot_pct > 100 {
        return Err(err(
            "--keys must be > 0, --accounts >= 2, --hot > 0, --hot-pct <= 100",
        ));
    }
    Ok(c)
}

/// Opens `E` in a fresh directory `dir`, runs `f`, closes it and removes the directory.
fn with_engine<E: Engine, T>(dir: &Path, f: impl FnOnce(&E, &Path) -> Res<T>) -> Res<T> {
    std::fs::create_dir_all(dir)?;
    let result = E::open(dir).and_then(|e| {
        let r = f(&e, dir);
        let closed = e.close();
        let r = r?;
        closed?;
        Ok(r)
    });
    let _ = std::fs::remove_dir_all(dir);
    result
}

/// What the harness does with one engine, type-erased so engines sit in one list.
trait Runner {
    fn name(&self) -> &'static str;
    fn durability(&self) -> &'static str;
    fn serialization(&self) -> &'static str;
    fn single(&self, dir: &Path, c: &Config) -> Res<f64>;
    fn concurrent(&self, dir: &Path, c: &Config, threads: usize) -> Res<(Run, Option<String>)>;
    fn load_read_scan(&self, dir: &Path, c: &Config, keys: &[Key], out: &mut Cells) -> Res<()>;
    fn smallbank(&self, dir: &Path, c: &Config) -> Res<(Run, Option<String>)>;
}

/// The figures of the load / read / scan group, filled in as they are measured.
#[derive(Default)]
struct Cells {
    load_s: Option<f64>,
    size: Option<(u64, u64)>,
    stats: Option<String>,
    reads: Vec<(usize, f64)>,
    scans: Option<(f64, f64)>,
}

struct R<E>(PhantomData<E>);

impl<E: Engine> Runner for R<E> {
    fn name(&self) -> &'static str {
        E::NAME
    }
    fn durability(&self) -> &'static str {
        E::DURABILITY
    }
    fn serialization(&self) -> &'static str {
        E::SERIALIZATION
    }
    fn single(&self, dir: &Path, c: &Config) -> Res<f64> {
        with_engine::<E, _>(dir, |e, _| workloads::single(e, c.commits, c.seed))
    }
    fn concurrent(&self, dir: &Path, c: &Config, threads: usize) -> Res<(Run, Option<String>)> {
        with_engine::<E, _>(dir, |e, _| {
            let _ = e.stats_note();
            let run = workloads::concurrent(e, threads, c.seconds, c.seed)?;
            Ok((run, e.stats_note()))
        })
    }
    fn load_read_scan(&self, dir: &Path, c: &Config, keys: &[Key], out: &mut Cells) -> Res<()> {
        with_engine::<E, _>(dir, |e, dir| {
            let _ = e.stats_note();
            let s = workloads::bulk_load(e, keys, c.seed)?;
            out.load_s = Some(s);
            out.size = Some(fsync::dir_size(dir)?);
            out.stats = e.stats_note();
            eprintln!(
                "    bulk load {s:.2} s, {:.1} MB on disk",
                out.size.map_or(0, |s| s.1) as f64 / 1e6
            );
            for threads in [1, 2] {
                let run = workloads::reads(e, keys, threads, c.read_seconds, c.seed)?;
                eprintln!(
                    "    point reads ×{threads}: {} reads/s",
                    fmt_num(run.per_s())
                );
                out.reads.push((threads, run.per_s()));
            }
            let (run, mean) = workloads::scans(e, c.scan_len, c.read_seconds, c.seed)?;
            eprintln!(
                "    scans: {} scans/s ({mean:.0} entries each)",
                fmt_num(run.per_s())
            );
            out.scans = Some((run.per_s(), mean));
            Ok(())
        })
    }
    fn smallbank(&self, dir: &Path, c: &Config) -> Res<(Run, Option<String>)> {
        with_engine::<E, _>(dir, |e, _| {
            c.bank.setup(e)?;
            let _ = e.stats_note();
            let run = c.bank.run(e, c.bank_threads, c.seconds, c.seed)?;
            Ok((run, e.stats_note()))
        })
    }
}

fn runners(names: &[String]) -> Res<Vec<Box<dyn Runner>>> {
    names
        .iter()
        .map(|n| -> Res<Box<dyn Runner>> {
            Ok(match n.as_str() {
                "capsuledb" => Box::new(R::<engines::capsule::Capsule>(PhantomData)),
                "redb" => Box::new(R::<engines::redb_kv::Redb>(PhantomData)),
                "lmdb" | "heed" => Box::new(R::<engines::lmdb::Lmdb>(PhantomData)),
                "sqlite" => Box::new(R::<engines::sqlite::Sqlite>(PhantomData)),
                "fjall" => Box::new(R::<engines::fjall_kv::Fjall>(PhantomData)),
                other => return Err(err(format!("unknown engine {other:?}"))),
            })
        })
        .collect()
}

fn slug(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("compare: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Res<()> {
    let c = parse_args()?;
    std::fs::create_dir_all(&c.base)?;
    let run_dir = tempfile::Builder::new()
        .prefix("capsuledb-compare-")
        .tempdir_in(&c.base)?;
    let root = run_dir.path();
    let started = Instant::now();
    let rs = runners(&c.engines)?;
    let mut t = Table::new(rs.iter().map(|r| r.name()).collect());
    let mut notes: Vec<String> = Vec::new();
    let fail = |notes: &mut Vec<String>, what: &str, engine: &str, e: &engine::BoxError| {
        eprintln!("  {engine}: {what} FAILED: {e}");
        notes.push(format!("{engine} failed {what}: {e}"));
    };

    let fs = fsync::file_system_of(root);
    // The disk's sync rate is measured before every group of rows: on a shared machine
    // it can change several-fold within a run, and each row should be read against it.
    let mut probes: Vec<(String, f64)> = Vec::new();
    let mut probe = |at: &str| -> Res<()> {
        let rate = fsync::raw_fdatasync(root, c.fsync_seconds)?;
        eprintln!(
            "raw 4 KiB pwrite + fdatasync on {fs} before {at}: {} syncs/s",
            fmt_num(rate)
        );
        probes.push((at.to_string(), rate));
        Ok(())
    };

    probe("(a)")?;
    let label_a = format!(
        "(a) 1 thread, {} durable 1-key commits: commits/s",
        c.commits
    );
    t.row(&label_a, Better::Higher);
    for (i, r) in rs.iter().enumerate() {
        eprintln!("(a) {} ...", r.name());
        match r.single(&root.join(format!("{}-a", slug(r.name()))), &c) {
            Ok(x) => {
                eprintln!("  {}: {} commits/s", r.name(), fmt_num(x));
                t.set(&label_a, Better::Higher, i, x);
            }
            Err(e) => fail(&mut notes, "(a)", r.name(), &e),
        }
    }

    for &threads in &c.threads {
        probe(&format!("(b) ×{threads}"))?;
        let label =
            format!("(b) {threads} threads, durable 1-key commits, disjoint keys: commits/s");
        t.row(&label, Better::Higher);
        for (i, r) in rs.iter().enumerate() {
            eprintln!("(b) {} ×{threads} for {} s ...", r.name(), c.seconds);
            match r.concurrent(
                &root.join(format!("{}-b{threads}", slug(r.name()))),
                &c,
                threads,
            ) {
                Ok((run, stats)) => {
                    eprintln!("  {}: {} commits/s", r.name(), fmt_num(run.per_s()));
                    t.set(&label, Better::Higher, i, run.per_s());
                    if let Some(s) = stats {
                        notes.push(format!("{} (b) ×{threads}: {s}", r.name()));
                    }
                }
                Err(e) => fail(&mut notes, &format!("(b) ×{threads}"), r.name(), &e),
            }
        }
    }

    probe("(c)")?;
    let keys = workloads::bulk_keys(c.keys, c.seed);
    let label_c = format!(
        "(c) bulk load of {} keys in one durable transaction: s",
        fmt_num(c.keys as f64)
    );
    let label_size = "(c) all files after the bulk load: MB allocated on disk".to_string();
    let label_d1 = "(d) random point reads, 1 thread: reads/s".to_string();
    let label_d2 = "(d) random point reads, 2 threads: reads/s".to_string();
    let label_e = format!(
        "(e) {}-key range scans from random starts, 1 thread: scans/s",
        c.scan_len
    );
    for (label, better) in [
        (&label_c, Better::Lower),
        (&label_size, Better::Lower),
        (&label_d1, Better::Higher),
        (&label_d2, Better::Higher),
        (&label_e, Better::Higher),
    ] {
        t.row(label, better);
    }
    let mut sizes = Vec::new();
    for (i, r) in rs.iter().enumerate() {
        eprintln!(
            "(c, d, e) {}: bulk load of {} keys, then reads and scans ...",
            r.name(),
            c.keys
        );
        let mut cells = Cells::default();
        let result = r.load_read_scan(
            &root.join(format!("{}-c", slug(r.name()))),
            &c,
            &keys,
            &mut cells,
        );
        if let Some(s) = cells.load_s {
            t.set(&label_c, Better::Lower, i, s);
        }
        if let Some((apparent, allocated)) = cells.size {
            t.set(&label_size, Better::Lower, i, allocated as f64 / 1e6);
            sizes.push(format!("{} {:.1} MB", r.name(), apparent as f64 / 1e6));
        }
        if let Some(s) = cells.stats {
            notes.push(format!("{} (c): {s}", r.name()));
        }
        for (threads, x) in cells.reads {
            t.set(
                if threads == 1 { &label_d1 } else { &label_d2 },
                Better::Higher,
                i,
                x,
            );
        }
        if let Some((x, mean)) = cells.scans {
            t.set(&label_e, Better::Higher, i, x);
            if (mean - c.scan_len as f64).abs() > 0.05 * c.scan_len as f64 {
                notes.push(format!(
                    "{} (e): scans averaged {mean:.0} entries",
                    r.name()
                ));
            }
        }
        if let Err(e) = result {
            fail(&mut notes, "(c)/(d)/(e)", r.name(), &e);
        }
    }
    drop(keys);

    let label_f = format!(
        "(f) SmallBank, {} threads, {} accounts, {}% on {} hot: committed tx/s",
        c.bank_threads,
        fmt_num(c.bank.accounts as f64),
        c.bank.hot_pct,
        c.bank.hot
    );
    let label_fa =
        "(f) SmallBank abort rate (capsuledb retries once its conflict is visible): % of attempts"
            .to_string();
    probe("(f)")?;
    t.row(&label_f, Better::Higher);
    t.row(&label_fa, Better::Lower);
    for (i, r) in rs.iter().enumerate() {
        eprintln!(
            "(f) {} SmallBank ×{} for {} s ...",
            r.name(),
            c.bank_threads,
            c.seconds
        );
        match r.smallbank(&root.join(format!("{}-f", slug(r.name()))), &c) {
            Ok((run, stats)) => {
                eprintln!(
                    "  {}: {} tx/s, {:.1}% aborted, total balance checked",
                    r.name(),
                    fmt_num(run.per_s()),
                    run.abort_pct()
                );
                t.set(&label_f, Better::Higher, i, run.per_s());
                t.set(&label_fa, Better::Lower, i, run.abort_pct());
                if let Some(s) = stats {
                    notes.push(format!("{} (f): {s}", r.name()));
                }
            }
            Err(e) => fail(&mut notes, "(f)", r.name(), &e),
        }
    }

    probe("the end")?;
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!("## capsuledb vs peers: every commit fully durable");
    println!();
    let (lo, hi) = probes.iter().fold((f64::MAX, 0.0f64), |(lo, hi), (_, r)| {
        (lo.min(*r), hi.max(*r))
    });
    println!(
        "Machine: {cpus} CPUs; file system {fs}; raw 4 KiB pwrite + fdatasync (the physical reference): **{}–{} syncs/s** over the run ({}). Total run {:.0} s.",
        fmt_num(lo),
        fmt_num(hi),
        probes
            .iter()
            .map(|(at, r)| format!("before {at}: {}", fmt_num(*r)))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
    println!();
    print!("{}", t.markdown());
    println!();
    println!(
        "↑ higher is better, ↓ lower is better; the ratio column is capsuledb's figure over the best peer's."
    );
    println!();
    println!("Durability and concurrency per engine:");
    for r in &rs {
        println!(
            "- **{}**: {}; {}.",
            r.name(),
            r.durability(),
            r.serialization()
        );
    }
    if !sizes.is_empty() {
        println!("- Apparent file sizes after (c): {}.", sizes.join(", "));
    }
    println!(
        "- (f) checks after each run that the sum of all balances equals the initial sum plus every committed transaction's change."
    );
    for n in &notes {
        println!("- {n}");
    }
    Ok(())
}
