//! fjall (LSM): an `OptimisticTxDatabase` (its serializable multi-writer mode) with one
//! shared keyspace; every write transaction commits with `PersistMode::SyncData` (`fdatasync`, as
//! the other engines sync).

use super::TABLE;
use crate::engine::{Attempt, Body, Engine, Key, Res, Tx, err};
use fjall::{
    KeyspaceCreateOptions, OptimisticTxDatabase, OptimisticTxKeyspace, OptimisticWriteTx,
    PersistMode, Readable, Snapshot,
};
use std::path::Path;

/// Block cache: room for the whole bulk-loaded table, like the other engines' caches.
const CACHE_BYTES: u64 = 512 << 20;

pub struct Fjall {
    db: OptimisticTxDatabase,
    ks: OptimisticTxKeyspace,
}

struct WriteTx<'t> {
    tx: &'t mut OptimisticWriteTx,
    ks: &'t OptimisticTxKeyspace,
}

impl Tx for WriteTx<'_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.tx.get(self.ks, key)?.map(|v| v.to_vec()))
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        self.tx.insert(self.ks, key, value);
        Ok(())
    }
}

struct ReadTx<'t> {
    snap: &'t Snapshot,
    ks: &'t OptimisticTxKeyspace,
}

impl Tx for ReadTx<'_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.snap.get(self.ks, key)?.map(|v| v.to_vec()))
    }
    fn put(&mut self, _key: &[u8], _value: &[u8]) -> Res<()> {
        Err(err("write in a read-only body"))
    }
}

impl Engine for Fjall {
    type Session = ();
    const NAME: &'static str = "fjall";
    const DURABILITY: &'static str = "each write transaction `.durability(Some(PersistMode::SyncData))` (journal fdatasync per commit)";
    const SERIALIZATION: &'static str = "`OptimisticTxDatabase` (optimistic, serializable; conflicts retried at once); its commit check and journal write+fdatasync run under one oracle lock, so durable commits are serial; read-only bodies use a `read_tx()` snapshot";

    fn open(dir: &Path) -> Res<Self> {
        let db = OptimisticTxDatabase::builder(dir)
            .cache_size(CACHE_BYTES)
            .open()?;
        let ks = db.keyspace(TABLE, KeyspaceCreateOptions::default)?;
        Ok(Fjall { db, ks })
    }

    fn session(&self) -> Res<()> {
        Ok(())
    }

    fn transact(&self, _: &mut (), read_only: bool, body: &mut Body<'_>) -> Res<Attempt> {
        if read_only {
            let snap = self.db.read_tx();
            body(&mut ReadTx {
                snap: &snap,
                ks: &self.ks,
            })?;
            return Ok(Attempt::Committed);
        }
        let mut tx = self.db.write_tx()?.durability(Some(PersistMode::SyncData));
        body(&mut WriteTx {
            tx: &mut tx,
            ks: &self.ks,
        })?;
        match tx.commit()? {
            Ok(()) => Ok(Attempt::Committed),
            Err(fjall::Conflict) => Ok(Attempt::Retry { wait_for: None }),
        }
    }

    fn read_batch(&self, _: &mut (), keys: &[Key]) -> Res<usize> {
        let snap = self.db.read_tx();
        let mut found = 0;
        for key in keys {
            if let Some(v) = snap.get(&self.ks, key)? {
                std::hint::black_box(&*v);
                found += 1;
            }
        }
        Ok(found)
    }

    fn scan(&self, _: &mut (), start: &[u8], n: usize) -> Res<usize> {
        let snap = self.db.read_tx();
        let mut read = 0;
        for guard in snap.range(&self.ks, start..).take(n) {
            let kv = guard.into_inner()?;
            std::hint::black_box(&kv);
            read += 1;
        }
        Ok(read)
    }

    fn scan_rev(&self, _: &mut (), start: &[u8], n: usize) -> Res<usize> {
        let snap = self.db.read_tx();
        let mut read = 0;
        for guard in snap.range(&self.ks, ..=start).rev().take(n) {
            let kv = guard.into_inner()?;
            std::hint::black_box(&kv);
            read += 1;
        }
        Ok(read)
    }

    fn close(self) -> Res<()> {
        self.db.persist(PersistMode::SyncData)?;
        Ok(())
    }
}
