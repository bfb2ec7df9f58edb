//! redb: one shared `Database`; write transactions queue on redb's single-writer lock and
//! commit with `Durability::Immediate` (the default); reads use read transactions.

use crate::engine::{Attempt, Body, Engine, Key, Res, Tx, err};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use std::path::Path;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new(super::TABLE);

pub struct Redb {
    db: Database,
}

struct WriteTx<'t, 'x> {
    table: &'t mut redb::Table<'x, &'static [u8], &'static [u8]>,
}

impl Tx for WriteTx<'_, '_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        use redb::ReadableTable;
        Ok(self.table.get(key)?.map(|v| v.value().to_vec()))
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        self.table.insert(key, value)?;
        Ok(())
    }
}

struct ReadTx<'t> {
    table: &'t redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Tx for ReadTx<'_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.table.get(key)?.map(|v| v.value().to_vec()))
    }
    fn put(&mut self, _key: &[u8], _value: &[u8]) -> Res<()> {
        Err(err("write in a read-only body"))
    }
}

impl Engine for Redb {
    type Session = ();
    const NAME: &'static str = "redb";
    const DURABILITY: &'static str =
        "`Durability::Immediate` (default: the commit syncs the file before it returns)";
    const SERIALIZATION: &'static str = "single writer: `begin_write()` blocks until the previous write transaction ends; read-only bodies use `begin_read()`";

    fn open(dir: &Path) -> Res<Self> {
        let db = Database::create(dir.join("redb.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        Ok(Redb { db })
    }

    fn session(&self) -> Res<()> {
        Ok(())
    }

    fn transact(&self, _: &mut (), read_only: bool, body: &mut Body<'_>) -> Res<Attempt> {
        if read_only {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(TABLE)?;
            body(&mut ReadTx { table: &table })?;
            return Ok(Attempt::Committed);
        }
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut table = tx.open_table(TABLE)?;
            body(&mut WriteTx { table: &mut table })?;
        }
        tx.commit()?;
        Ok(Attempt::Committed)
    }

    fn read_batch(&self, _: &mut (), keys: &[Key]) -> Res<usize> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TABLE)?;
        let mut found = 0;
        for key in keys {
            if let Some(v) = table.get(key.as_slice())? {
                std::hint::black_box(v.value());
                found += 1;
            }
        }
        Ok(found)
    }

    fn scan(&self, _: &mut (), start: &[u8], n: usize) -> Res<usize> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TABLE)?;
        let mut read = 0;
        for item in table.range(start..)?.take(n) {
            let (k, v) = item?;
            std::hint::black_box((k.value(), v.value()));
            read += 1;
        }
        Ok(read)
    }

    fn scan_rev(&self, _: &mut (), start: &[u8], n: usize) -> Res<usize> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TABLE)?;
        let mut read = 0;
        for item in table.range(..=start)?.rev().take(n) {
            let (k, v) = item?;
            std::hint::black_box((k.value(), v.value()));
            read += 1;
        }
        Ok(read)
    }

    fn close(self) -> Res<()> {
        drop(self.db);
        Ok(())
    }
}
