//! `Connection`: one thread's way into the database.

use super::{Database, Transaction};
use crate::engine::Engine;
use crate::error::Result;
use crate::types::{Isolation, TableId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// A connection: what a thread uses to run transactions, one at a time.
///
/// Make one per thread with [`Database::connect`]. A connection has at most one open
/// transaction: `begin` borrows it mutably until the transaction commits or is dropped.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = capsuledb::Database::open(dir.path().join("app.db"))?;
/// let mut conn = db.connect();
/// let mut tx = conn.begin()?;
/// tx.create_table("accounts")?;
/// tx.put("accounts", b"alice", b"100")?;
/// tx.commit()?;
/// let tx = conn.begin_read()?;
/// assert_eq!(tx.get("accounts", b"alice")?.as_deref(), Some(&b"100"[..]));
/// # Ok(()) }
/// ```
pub struct Connection {
    pub(crate) db: Database,
    /// Table names its transactions resolved, kept for the next one (only this
    /// connection's transactions lock it, one at a time).
    pub(crate) names: Arc<Mutex<NameCache>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// Table names resolved by a connection's transactions, kept between them so that a
/// short transaction does not look its table up in the catalog again. Valid while the
/// catalog has not changed: they were resolved at snapshots at or above `at`, the
/// engine's [`crate::commit::Committer::catalog_changed_at`] then, and a transaction
/// takes them only when that value is still `at` and its own snapshot is at or above it
/// (so it sees the same catalog).
#[derive(Default)]
pub(crate) struct NameCache {
    /// The engine they were resolved in (a `Weak`, so that its address stays its own).
    engine: Weak<Engine>,
    at: u64,
    names: HashMap<String, TableId>,
    last: Option<(String, TableId)>,
}

/// The committed table names a transaction resolved at its snapshot. When the
/// transaction ends they go back to its connection's [`NameCache`] (a separate value
/// with its own `Drop`, so that a transaction keeps no borrow of its connection alive
/// past its last use).
#[derive(Default)]
pub(crate) struct Names {
    pub(crate) map: HashMap<String, TableId>,
    /// The last name resolved through `map`: a read loop on one table compares its
    /// name instead of hashing it.
    pub(crate) last: Option<(String, TableId)>,
    /// Where they go back, and the catalog sequence they are valid from; `None` when
    /// they are not kept (a time-travel snapshot, or one below the catalog's last
    /// change).
    home: Option<(Arc<Mutex<NameCache>>, u64)>,
    /// The tables whose catalog entry this transaction has recorded as read (under
    /// Serializable a name taken from the cache is still a read of the catalog; each is
    /// recorded once).
    pub(crate) recorded: RecordedTables,
}

/// A set of table ids: searched in a short list while it is short (a transaction of a
/// few tables, on every call), hashed beyond (a migration over thousands of tables
/// searched the whole list on each call: quadratic).
#[derive(Default)]
pub(crate) struct RecordedTables {
    few: Vec<TableId>,
    many: std::collections::HashSet<TableId>,
}

impl RecordedTables {
    const FEW_MAX: usize = 16;

    /// Adds `id`; whether it was not in the set yet.
    pub(crate) fn insert(&mut self, id: TableId) -> bool {
        if self.few.contains(&id) {
            return false;
        }
        if self.few.len() < Self::FEW_MAX {
            self.few.push(id);
            return true;
        }
        self.many.insert(id)
    }
}

impl Names {
    /// The names a transaction at `snapshot` in `engine`, whose catalog last changed
    /// at `catalog_at`, starts with: the connection's kept names when still valid.
    pub(crate) fn begin(
        cache: &Arc<Mutex<NameCache>>,
        engine: &Arc<Engine>,
        catalog_at: u64,
        snapshot: u64,
    ) -> Names {
        let mut c = cache.lock();
        let mut map = std::mem::take(&mut c.names);
        let mut last = c.last.take();
        let same_engine = std::ptr::eq(c.engine.as_ptr(), Arc::as_ptr(engine));
        if !(same_engine && c.at == catalog_at && snapshot >= catalog_at) {
            // The map's allocation is kept for the transaction's own names.
            map.clear();
            last = None;
        }
        if !same_engine {
            c.engine = Arc::downgrade(engine);
        }
        let home = (snapshot >= catalog_at).then(|| (Arc::clone(cache), catalog_at));
        Names {
            map,
            last,
            home,
            recorded: RecordedTables::default(),
        }
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        if let Some((home, at)) = self.home.take() {
            let mut c = home.lock();
            c.at = at;
            c.names = std::mem::take(&mut self.map);
            c.last = self.last.take();
        }
    }
}

impl Connection {
    pub(crate) fn new(db: Database) -> Connection {
        Connection {
            db,
            names: Arc::default(),
        }
    }

    /// Begins a Serializable read-write transaction.
    pub fn begin(&mut self) -> Result<Transaction<'_>> {
        self.begin_with(Isolation::Serializable)
    }

    /// Begins a read-write transaction at the given isolation level.
    pub fn begin_with(&mut self, isolation: Isolation) -> Result<Transaction<'_>> {
        Transaction::begin(self, isolation, false)
    }

    /// Begins a read-only snapshot: it never aborts, and it waits for no writer except
    /// a transaction being committed straight into the tree (a large one, or a durable
    /// one of more than 1 MiB, admitted while no other snapshot was open), whose fold and
    /// sync it waits out; writes give [`crate::Error::ReadOnly`].
    ///
    /// It reads a snapshot and records nothing, so it is not part of the serializable
    /// order: with Serializable writers it can see a state no serial order of the
    /// committed transactions produces (the read-only anomaly: it sees a commit but not
    /// an earlier-serialized concurrent one). A read whose result must agree with a
    /// serial order runs in a read-write transaction ([`Connection::begin`]) that
    /// commits.
    pub fn begin_read(&mut self) -> Result<Transaction<'_>> {
        Transaction::begin(self, Isolation::Snapshot, true)
    }

    /// The database this connection belongs to.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::RecordedTables;

    #[test]
    fn recorded_tables_hold_each_id_once_past_the_short_list() {
        let mut set = RecordedTables::default();
        for id in 0..100u64 {
            assert!(set.insert(id), "{id} is new");
        }
        for id in (0..100u64).rev() {
            assert!(!set.insert(id), "{id} is held");
        }
        assert!(set.insert(100));
    }
}
