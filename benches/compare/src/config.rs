//! The command line: every size knob, and which groups of rows to run.

use crate::engine::{Res, err};
use crate::smallbank::Bank;
use std::path::PathBuf;

pub const USAGE: &str = "\
compare: the same durable workloads on capsuledb, redb, LMDB, SQLite and fjall

usage: compare [--quick] [options]

  --quick              tiny sizes (about 30 s in all); other flags still override
  --dir PATH           where the databases go (a fresh subdirectory; default: the temp dir)
  --engines LIST       comma-separated subset of: capsuledb,redb,lmdb,sqlite,fjall
  --only GROUPS        comma-separated groups of rows to run     [all]
                         single      (a) durable commits on 1 thread
                         concurrent  (b) durable commits on N threads
                         commits     both (a) and (b)
                         load        (c) to (e): bulk load, its peak memory, point
                                     reads, forward and reverse scans, then the
                                     commits after the load and the files after them
                         bank        (f) SmallBank
                       the letters a, b, c (or d, e) and f name the same groups
  --commits N          (a) transactions on one thread            [2000]
  --seconds S          (b) and (f) duration of each run          [5]
  --threads LIST       (b) writer thread counts                  [4,16,64]
  --keys N             (c) keys in the bulk load                 [1000000]
  --read-seconds S     (d) and (e) duration of each run          [3]
  --scan-len N         (e) entries per scan                      [1000]
  --after-commits N    (c) durable 1-key commits after the load  [1000]
  --value-len N        (a) to (e) bytes per value (at least 8)   [150]
  --load-batch N       (c) keys per transaction of the bulk load
                       (0: all in one)                           [0]
  --key-order ORDER    (c) random, or ascending (a big-endian counter
                       in each key's first 8 bytes, loaded in order) [random]
  --reads-per-snapshot N  (d) point reads per read transaction   [256]
  --bank-threads N     (f) threads                               [16]
  --accounts N         (f) accounts (each checking + savings)    [10000]
  --hot N              (f) accounts in the hot set               [100]
  --hot-pct P          (f) percent of picks that hit the hot set [90]
  --seed N             seed for every key and choice             [42]
";

/// A group of rows that runs as one unit (`--only`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Group {
    /// (a)
    Single,
    /// (b)
    Concurrent,
    /// (c), (d), (e) and what follows the load.
    Load,
    /// (f)
    Bank,
}

impl Group {
    const ALL: [Group; 4] = [Group::Single, Group::Concurrent, Group::Load, Group::Bank];

    /// The groups one `--only` name stands for.
    fn parse(name: &str) -> Option<&'static [Group]> {
        Some(match name {
            "single" | "a" => &[Group::Single],
            "concurrent" | "b" => &[Group::Concurrent],
            "commits" => &[Group::Single, Group::Concurrent],
            "load" | "c" | "d" | "e" => &[Group::Load],
            "bank" | "smallbank" | "f" => &[Group::Bank],
            "all" => &Group::ALL,
            _ => return None,
        })
    }
}

pub struct Config {
    pub base: PathBuf,
    pub engines: Vec<String>,
    pub groups: Vec<Group>,
    pub commits: u64,
    pub seconds: f64,
    pub threads: Vec<usize>,
    pub keys: u64,
    pub read_seconds: f64,
    pub scan_len: usize,
    pub after_commits: usize,
    pub bank_threads: usize,
    pub bank: Bank,
    pub seed: u64,
    /// `--load-batch`: keys per transaction of the bulk load (0: one transaction).
    pub load_batch: usize,
    /// `--key-order ascending`: the bulk load's keys ascend in load order.
    pub ascending_keys: bool,
    pub fsync_seconds: f64,
}

impl Config {
    /// Whether `--only` selected `g` (everything runs without `--only`).
    pub fn runs(&self, g: Group) -> bool {
        self.groups.contains(&g)
    }
}

fn parse_groups(value: &str) -> Res<Vec<Group>> {
    let mut groups = Vec::new();
    for name in value.split(',').map(|s| s.trim().to_lowercase()) {
        let named = Group::parse(&name)
            .ok_or_else(|| err(format!("unknown group {name:?} for --only\n\n{USAGE}")))?;
        for g in named {
            if !groups.contains(g) {
                groups.push(*g);
            }
        }
    }
    Ok(groups)
}

pub fn parse_args() -> Res<Config> {
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
        groups: Group::ALL.to_vec(),
        commits: if quick { 200 } else { 2000 },
        seconds: if quick { 0.5 } else { 5.0 },
        threads: vec![4, 16, 64],
        keys: if quick { 20_000 } else { 1_000_000 },
        read_seconds: if quick { 0.5 } else { 3.0 },
        scan_len: 1000,
        after_commits: if quick { 200 } else { 1000 },
        bank_threads: 16,
        bank: Bank {
            accounts: if quick { 1000 } else { 10_000 },
            hot: 100,
            hot_pct: 90,
        },
        seed: 42,
        ascending_keys: false,
        load_batch: 0,
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
            "--only" => c.groups = parse_groups(value)?,
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
            "--after-commits" => c.after_commits = value.parse().map_err(|e| bad(&e))?,
            "--value-len" => {
                let n: usize = value.parse().map_err(|e| bad(&e))?;
                if n < 8 {
                    return Err(err("--value-len must be at least 8"));
                }
                crate::workloads::set_value_len(n);
            }
            "--reads-per-snapshot" => {
                let n: usize = value.parse().map_err(|e| bad(&e))?;
                if n == 0 {
                    return Err(err("--reads-per-snapshot must be at least 1"));
                }
                crate::workloads::set_reads_per_snapshot(n);
            }
            "--bank-threads" => c.bank_threads = value.parse().map_err(|e| bad(&e))?,
            "--accounts" => c.bank.accounts = value.parse().map_err(|e| bad(&e))?,
            "--hot" => c.bank.hot = value.parse().map_err(|e| bad(&e))?,
            "--hot-pct" => c.bank.hot_pct = value.parse().map_err(|e| bad(&e))?,
            "--seed" => c.seed = value.parse().map_err(|e| bad(&e))?,
            "--load-batch" => c.load_batch = value.parse().map_err(|e| bad(&e))?,
            "--key-order" => {
                c.ascending_keys = match value.as_str() {
                    "random" => false,
                    "ascending" => true,
                    _ => return Err(err("--key-order is random or ascending")),
                }
            }
            _ => return Err(err(format!("unknown flag {flag}\n\n{USAGE}"))),
        }
    }
    if c.keys == 0
        || c.after_commits == 0
        || c.bank.accounts < 2
        || c.bank.hot == 0
        || c.bank.hot_pct > 100
        || (c.bank.hot < 2 && c.bank.hot_pct == 100)
    {
        return Err(err(
            "--keys and --after-commits must be > 0, --accounts >= 2, --hot > 0, --hot-pct <= 100, \
             and --hot >= 2 when --hot-pct is 100 (a transfer needs two accounts)",
        ));
    }
    if c.scan_len == 0 {
        return Err(err("--scan-len must be at least 1"));
    }
    // Each thread's keys carry its number in two bytes: more threads would share keys.
    if c.threads.iter().any(|&t| t == 0 || t > 65_535) {
        return Err(err("--threads must each be 1 to 65,535"));
    }
    for (flag, s) in [("--seconds", c.seconds), ("--read-seconds", c.read_seconds)] {
        if !(s.is_finite() && s > 0.0 && s < 1e9) {
            return Err(err(format!("{flag} must be a positive number of seconds")));
        }
    }
    Ok(c)
}
