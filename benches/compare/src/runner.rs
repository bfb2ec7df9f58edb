//! What the harness does with one engine, type-erased so that engines sit in one list:
//! each method opens the engine in a fresh directory, runs one group's workload, closes
//! it and removes the directory.

use crate::config::Config;
use crate::driver::Run;
use crate::engine::{Engine, Key, Res, err};
use crate::engines;
use crate::load_group::{self, Cells};
use crate::workloads;
use std::marker::PhantomData;
use std::path::Path;

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

pub trait Runner {
    fn name(&self) -> &'static str;
    fn durability(&self) -> &'static str;
    fn serialization(&self) -> &'static str;
    fn single(&self, dir: &Path, c: &Config) -> Res<f64>;
    fn concurrent(&self, dir: &Path, c: &Config, threads: usize) -> Res<(Run, Option<String>)>;
    /// The load group; `out` keeps whatever was measured before a failure.
    fn load_read_scan(&self, dir: &Path, c: &Config, keys: &[Key], out: &mut Cells) -> Res<()>;
    fn smallbank(&self, dir: &Path, c: &Config) -> Res<(Run, Option<String>)>;
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
        with_engine::<E, _>(dir, |e, dir| load_group::measure(e, dir, c, keys, out))
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

pub fn runners(names: &[String]) -> Res<Vec<Box<dyn Runner>>> {
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

/// A directory name for an engine.
pub fn slug(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}
