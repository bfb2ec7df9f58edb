//! `Connection`: one thread's way into the database.

use super::{Database, Transaction};
use crate::error::Result;
use crate::types::Isolation;

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
}

impl Connection {
    /// Begins a Serializable read-write transaction.
    pub fn begin(&mut self) -> Result<Transaction<'_>> {
        self.begin_with(Isolation::Serializable)
    }

    /// Begins a read-write transaction at the given isolation level.
    pub fn begin_with(&mut self, isolation: Isolation) -> Result<Transaction<'_>> {
        Transaction::begin(self, isolation, false)
    }

    /// Begins a read-only snapshot: it never blocks and never aborts; writes give
    /// [`crate::Error::ReadOnly`].
    pub fn begin_read(&mut self) -> Result<Transaction<'_>> {
        Transaction::begin(self, Isolation::Snapshot, true)
    }

    /// The database this connection belongs to.
    pub fn database(&self) -> &Database {
        &self.db
    }
}
