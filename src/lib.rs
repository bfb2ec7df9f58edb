//! # capsuledb
//!
//! An embedded, single-file, multi-writer MVCC database engine: many threads run
//! serializable transactions at once, commits are made durable in groups (two fsyncs
//! per group), and reads go through a memory-mapped file.
//!
//! ```
//! # fn main() -> capsuledb::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = capsuledb::Database::open(dir.path().join("app.db"))?;
//! let mut conn = db.connect();
//! let mut tx = conn.begin()?; // Serializable
//! tx.create_table("accounts")?;
//! tx.put("accounts", b"alice", b"100")?;
//! tx.commit()?; // Durable
//! assert_eq!(conn.begin_read()?.get("accounts", b"alice")?.as_deref(), Some(&b"100"[..]));
//! # Ok(()) }
//! ```
//!
//! ## Layers
//! Bottom up, each using only the ones below it: `storage` (the only code touching the
//! OS: a memory-mapped file and a fault-injecting simulator) → `format` (every on-disk
//! structure, checked against `format-spec/`) → `pager` (allocation, free pages, growth)
//! → `btree` (the copy-on-write B+tree) → `mvcc` (the version store, snapshots,
//! visibility) → `commit` (validation, group commit, the log, recovery) → `checkpoint`
//! (folding into the tree, the free list, compaction) → `api` (`Database`, `Connection`,
//! `Transaction`).
//!
//! ## Safety
//! `unsafe` appears only in `storage::file`, for mapping the file and for the `flock` and
//! `fdatasync` calls, each with a `// SAFETY:` comment. Everything else is safe Rust.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![warn(missing_docs)]

mod api;
mod btree;
mod checkpoint;
mod commit;
mod error;
pub mod format;
mod mvcc;
mod pager;
pub mod raftlog;
pub mod rng;
pub mod storage;
mod util;

pub use api::{
    CATALOG_NAME, CommitInfo, Connection, Database, DbInfo, Durability, IntegrityReport, Isolation,
    MAX_KEY_LEN, MAX_TABLE_NAME_LEN, MAX_TRANSACTION_BYTES, MAX_VALUE_LEN, Options, Page, Range,
    Stats, Transaction, ValueRef,
};
pub use checkpoint::CheckpointReport;
pub use commit::{CommitEvent, QUEUE_COMMITS_MAX, Received, Subscription};
pub use error::{Error, Result};
pub use mvcc::HistoryRetention;
