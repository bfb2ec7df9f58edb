//! LMDB through heed: one shared `Env` (default flags: a synchronous flush on every
//! commit); write transactions queue on LMDB's writer mutex; reads use read transactions.

use crate::engine::{Attempt, Body, Engine, Key, Res, Tx, err};
use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};
use std::ops::Bound;
use std::path::Path;

/// The memory map's size: the file only grows as pages are written.
const MAP_SIZE: usize = 16 << 30;
/// Reader slots: more than the threads any workload starts.
const MAX_READERS: u32 = 256;

pub struct Lmdb {
    env: Env<WithoutTls>,
    db: Database<'static, Bytes, Bytes>,
}

struct WriteTx<'t, 'e> {
    db: Database<'static, Bytes, Bytes>,
    txn: &'t mut RwTxn<'e>,
}

impl Tx for WriteTx<'_, '_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.db.get(self.txn, key)?.map(<[u8]>::to_vec))
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        Ok(self.db.put(self.txn, key, value)?)
    }
}

struct ReadTx<'t, 'e> {
    db: Database<'static, Bytes, Bytes>,
    txn: &'t RoTxn<'e, WithoutTls>,
}

impl Tx for ReadTx<'_, '_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.db.get(self.txn, key)?.map(<[u8]>::to_vec))
    }
    fn put(&mut self, _key: &[u8], _value: &[u8]) -> Res<()> {
        Err(err("write in a read-only body"))
    }
}

impl Engine for Lmdb {
    type Session = ();
    const NAME: &'static str = "LMDB (heed)";
    const DURABILITY: &'static str =
        "default env flags (no `NOSYNC`/`NOMETASYNC`: data fdatasync + meta fdatasync per commit)";
    const SERIALIZATION: &'static str = "single writer: `write_txn()` blocks on LMDB's writer mutex; read-only bodies use `read_txn()`";

    fn open(dir: &Path) -> Res<Self> {
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(MAP_SIZE).max_readers(MAX_READERS);
        // SAFETY: each run opens its own fresh directory once, in this process only, and
        // never opens it again while this Env lives.
        let env = unsafe { opts.open(dir) }?;
        let txn = env.write_txn()?;
        // The handle outlives the creating transaction once it is committed.
        let db = env
            .create_databases_and_commit(txn, |opener, txn| {
                opener
                    .create_database::<Bytes, Bytes>(txn, None)
                    .map(CommitOrAbort::<_, ()>::Commit)
            })?
            .unwrap_commit();
        Ok(Lmdb { env, db })
    }

    fn session(&self) -> Res<()> {
        Ok(())
    }

    fn transact(&self, _: &mut (), read_only: bool, body: &mut Body<'_>) -> Res<Attempt> {
        if read_only {
            let txn = self.env.read_txn()?;
            body(&mut ReadTx {
                db: self.db,
                txn: &txn,
            })?;
            return Ok(Attempt::Committed);
        }
        let mut txn = self.env.write_txn()?;
        body(&mut WriteTx {
            db: self.db,
            txn: &mut txn,
        })?;
        txn.commit()?;
        Ok(Attempt::Committed)
    }

    fn read_batch(&self, _: &mut (), keys: &[Key]) -> Res<usize> {
        let txn = self.env.read_txn()?;
        let mut found = 0;
        for key in keys {
            if let Some(v) = self.db.get(&txn, key.as_slice())? {
                std::hint::black_box(v);
                found += 1;
            }
        }
        Ok(found)
    }

    fn scan(&self, _: &mut (), start: &[u8], n: usize) -> Res<usize> {
        let txn = self.env.read_txn()?;
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(start), Bound::Unbounded);
        let mut read = 0;
        for item in self.db.range(&txn, &bounds)?.take(n) {
            let kv = item?;
            std::hint::black_box(kv);
            read += 1;
        }
        Ok(read)
    }

    fn scan_rev(&self, _: &mut (), start: &[u8], n: usize) -> Res<usize> {
        let txn = self.env.read_txn()?;
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Unbounded, Bound::Included(start));
        let mut read = 0;
        for item in self.db.rev_range(&txn, &bounds)?.take(n) {
            let kv = item?;
            std::hint::black_box(kv);
            read += 1;
        }
        Ok(read)
    }

    fn close(self) -> Res<()> {
        self.env.force_sync()?;
        drop(self.env);
        Ok(())
    }
}
