//! The vocabulary every layer shares: isolation and durability levels, limits, table
//! ids, write sets. This module imports no other module of the crate (the layering test,
//! `tests/layering.rs`, holds it to that).

mod hint;
mod order;
mod write_runs;
mod writes;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use hint::prefetch;
pub use order::{cmp_keys, first_word};
pub use writes::{Iter as WritesIter, TABLE_WRITES_BYTES_MAX, TableWrites};

/// Longest key accepted, in bytes. Empty keys are allowed.
pub const MAX_KEY_LEN: usize = 2048;

/// Longest value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 16 << 20;

/// Longest table name accepted, in bytes (names are UTF-8 and not empty).
pub const MAX_TABLE_NAME_LEN: usize = 255;

/// Most bytes of keys and values one transaction may hold: the newest put of each key
/// counts, and an overwritten put only until the transaction's write buffer merges it
/// away, so overwriting one key many times stays far below the limit. A working set
/// rewritten whole many times (every key again, pass after pass) is held, and counted,
/// several times over before merges drop the older copies: up to about ten times its
/// newest size was measured (20 values of 1 MiB rewritten in turn; 100,000 keys
/// rewritten in key order), so such a transaction meets the limit from about 100 MiB
/// of newest data.
///
/// The log's record of a transaction also holds at most 4 GiB, counting 20 bytes an
/// entry besides its key and value: a write set within this limit of more than about
/// 160 million entries (keys of a few bytes, empty values or deletes) is refused at
/// commit with [`Error::TransactionTooLarge`](crate::Error::TransactionTooLarge) unless
/// it is written into the tree directly, which it is when it drops no table, no other
/// snapshot is open and it is large for [`crate::Options::version_store_budget`]
/// (at the default budget, always).
pub const MAX_TRANSACTION_BYTES: usize = 1 << 30;

/// Isolation level of a read-write transaction.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
/// let mut conn = db.connect();
/// let tx = conn.begin_with(capsuledb::Isolation::Snapshot)?;
/// # drop(tx);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// Snapshot isolation with first-committer-wins: no lost updates, no dirty or
    /// non-repeatable reads, no phantoms; write skew is possible. Dropping or clearing a
    /// table counts as writing every key of it.
    Snapshot,
    /// Serializable snapshot isolation: every committed history of `Serializable`
    /// transactions is equivalent to some serial order. Transactions that would complete
    /// a dangerous structure abort with [`crate::Error::Conflict`]. A `Snapshot`
    /// transaction's reads are not tracked, so a history mixing the two levels may
    /// show write skew between them (as in PostgreSQL).
    #[default]
    Serializable,
}

/// How far a commit has gone before `commit` returns. Ordered `Applied < Written < Durable`.
///
/// ```
/// use capsuledb::Durability;
/// assert!(Durability::Applied < Durability::Durable);
/// assert_eq!(Durability::default(), Durability::Durable);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Durability {
    /// Sequenced and visible to later transactions; may be lost if the process dies
    /// (a background flush makes it durable within about 10 ms).
    Applied,
    /// Handed to the operating system; survives a process crash, not a power loss
    /// (unless its group's sync then fails, which poisons the database: after a failed
    /// `fdatasync` the kernel may drop the written pages, and a process crash with them).
    Written,
    /// On stable storage; survives a power loss.
    #[default]
    Durable,
}

/// What a successful commit reports.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
/// let mut conn = db.connect();
/// let mut tx = conn.begin()?;
/// tx.create_table("t")?;
/// let info = tx.commit()?;
/// assert!(info.seq > 0);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitInfo {
    /// The commit's sequence number. A transaction that wrote nothing gets no new
    /// sequence; its `seq` is the snapshot it read.
    pub seq: u64,
    /// The durability the commit reached before returning.
    pub durability: Durability,
}

/// Identifies a table for its whole life. Never given twice by one open database; a
/// reopen may give again the id of a table whose drop has left the history window (and
/// the file with it), never one anything can still read.
pub type TableId = u64;

/// The highest id a table can have: `u64::MAX` prefixes the history entries, and the
/// next id after any table's must still be a table id.
pub const TABLE_ID_MAX: TableId = u64::MAX - 2;

/// The catalog: table name -> table id (8 bytes, little-endian).
pub const CATALOG_TABLE: TableId = 0;

/// A value, or `None` for a tombstone.
pub type Value = Option<Arc<[u8]>>;

/// A transaction's writes: per table, key -> new value or tombstone.
pub type WriteSet = BTreeMap<TableId, TableWrites>;

/// Name shown for the catalog in conflicts on table creation or removal.
pub const CATALOG_NAME: &str = "(catalog)";
