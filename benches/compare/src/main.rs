//! `compare`: runs the same durable workloads on capsuledb, redb, LMDB (heed), SQLite and
//! fjall in one process, on one file system, and prints one Markdown table.
//!
//! Every engine implements the small [`engine::Engine`] trait; every workload is written
//! once against it. See README.md for what each row measures.

mod config;
mod driver;
mod engine;
mod engines;
mod fsync;
mod load_group;
mod memory;
mod report;
mod rng;
mod runner;
mod smallbank;
mod workloads;

use config::{Group, parse_args};
use engine::Res;
use report::{Better, Table, failed, fmt_num};
use runner::{runners, slug};
use std::time::Instant;

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

    if c.runs(Group::Single) {
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
                Err(e) => failed(&mut notes, "(a)", r.name(), &e),
            }
        }
    }
    if c.runs(Group::Concurrent) {
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
                    Err(e) => failed(&mut notes, &format!("(b) ×{threads}"), r.name(), &e),
                }
            }
        }
    }
    if c.runs(Group::Load) {
        probe("(c)")?;
        load_group::run(&mut t, &mut notes, &rs, &c, root);
    }
    if c.runs(Group::Bank) {
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
                Err(e) => failed(&mut notes, "(f)", r.name(), &e),
            }
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
    if c.runs(Group::Bank) {
        println!(
            "- (f) checks after each run that the sum of all balances equals the initial sum plus every committed transaction's change."
        );
    }
    for n in &notes {
        println!("- {n}");
    }
    Ok(())
}
