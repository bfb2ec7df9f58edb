//! capsuledb: one shared `Database`, a `Connection` per thread, Serializable
//! transactions committed with `Durability::Durable` (group commit: each fdatasync is the second of one group and the first of the next).

use super::TABLE;
use crate::engine::{Attempt, Body, Engine, Key, Res, Tx};
use capsuledb::{Connection, Database, Durability, Error, Isolation, Stats, Transaction};
use std::path::Path;
use std::sync::Mutex;

pub struct Capsule {
    db: Database,
    /// Counters when the database was opened, so the note covers this run only.
    base: Mutex<Option<Stats>>,
}

struct CapsTx<'t, 'c> {
    tx: &'t mut Transaction<'c>,
}

impl Tx for CapsTx<'_, '_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.tx.get(TABLE, key)?)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        Ok(self.tx.put(TABLE, key, value)?)
    }
}

/// The conflict inside a boxed error, if that is what it is.
fn conflict_seq(e: &crate::engine::BoxError) -> Option<u64> {
    match e.downcast_ref::<Error>() {
        Some(Error::Conflict { committed_seq, .. }) => Some(*committed_seq),
        _ => None,
    }
}

impl Engine for Capsule {
    type Session = Connection;
    const NAME: &'static str = "capsuledb";
    const DURABILITY: &'static str =
        "`commit_with(Durability::Durable)` (group commit: each fdatasync the second of one group and the first of the next)";
    const SERIALIZATION: &'static str = "many optimistic writers, `Isolation::Serializable` (SSI); on `Error::Conflict` the transaction is retried after `db.wait_for(committed_seq, Durability::Applied)` (the conflicting commit is visible)";

    fn open(dir: &Path) -> Res<Self> {
        let db = Database::open(dir.join("capsule.db"))?;
        let mut conn = db.connect();
        let mut tx = conn.begin()?;
        tx.create_table(TABLE)?;
        tx.commit_with(Durability::Durable)?;
        let base = Mutex::new(Some(db.stats()));
        Ok(Capsule { db, base })
    }

    fn session(&self) -> Res<Connection> {
        Ok(self.db.connect())
    }

    fn transact(
        &self,
        conn: &mut Connection,
        _read_only: bool,
        body: &mut Body<'_>,
    ) -> Res<Attempt> {
        // Even a read-only body runs Serializable: a plain snapshot of an SSI history
        // may show a state no serial order produces.
        let mut tx = conn.begin_with(Isolation::Serializable)?;
        let ran = body(&mut CapsTx { tx: &mut tx });
        let outcome = ran.and_then(|()| Ok(tx.commit_with(Durability::Durable)?));
        match outcome {
            Ok(_) => Ok(Attempt::Committed),
            Err(e) => match conflict_seq(&e) {
                Some(seq) => Ok(Attempt::Retry {
                    wait_for: Some(seq),
                }),
                None => Err(e),
            },
        }
    }

    fn before_retry(&self, wait_for: Option<u64>) {
        // A retry that began before the conflicting commit is visible would meet the
        // same conflict again. An error here (the database closing) shows on the retry.
        if let Some(seq) = wait_for {
            let _ = self.db.wait_for(seq, Durability::Applied);
        }
    }

    fn read_batch(&self, conn: &mut Connection, keys: &[Key]) -> Res<usize> {
        let tx = conn.begin_read()?;
        let mut found = 0;
        for key in keys {
            if let Some(v) = tx.get_ref(TABLE, key)? {
                std::hint::black_box(&*v);
                found += 1;
            }
        }
        Ok(found)
    }

    // The borrowing scan, as heed and redb lend their entries too.
    fn scan(&self, conn: &mut Connection, start: &[u8], n: usize) -> Res<usize> {
        let tx = conn.begin_read()?;
        let mut scan = tx.scan(TABLE, start..)?;
        let mut read = 0;
        while read < n {
            let Some(item) = scan.next() else { break };
            std::hint::black_box(item?);
            read += 1;
        }
        Ok(read)
    }

    fn scan_rev(&self, conn: &mut Connection, start: &[u8], n: usize) -> Res<usize> {
        let tx = conn.begin_read()?;
        let mut scan = tx.scan_rev(TABLE, ..=start)?;
        let mut read = 0;
        while read < n {
            let Some(item) = scan.next() else { break };
            std::hint::black_box(item?);
            read += 1;
        }
        Ok(read)
    }

    fn stats_note(&self) -> Option<String> {
        let now = self.db.stats();
        let base = self.base.lock().ok()?.replace(now)?;
        let groups = now.groups - base.groups;
        let commits = now.group_commits - base.group_commits;
        let syncs = now.group_syncs - base.group_syncs;
        let conflicts = (
            now.write_conflicts - base.write_conflicts,
            now.ssi_conflicts - base.ssi_conflicts,
        );
        (groups > 0).then(|| {
            format!(
                "{commits} commits in {groups} groups ({:.1} commits/group, {:.2} fdatasyncs/commit); conflicts {} FCW + {} SSI",
                commits as f64 / groups as f64,
                syncs as f64 / commits.max(1) as f64,
                conflicts.0,
                conflicts.1
            )
        })
    }

    fn close(self) -> Res<()> {
        Ok(self.db.close()?)
    }
}
