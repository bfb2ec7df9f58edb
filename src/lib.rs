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
//! Bottom up, each using only its own layer and the ones below it (`tests/layering.rs`
//! holds the code to this order; `ARCHITECTURE.md` walks through it):
//!
//! 1. `types`, `util`, `rng`: the shared vocabulary (isolation and durability levels,
//!    limits, table ids, write sets) and small helpers; `types` imports nothing.
//! 2. `error`: the one `Error` enum; `keys`: the order-preserving encoding of typed
//!    keys and values (`format-spec/keys.md`).
//! 3. `storage`: the file the database lives in (a memory-mapped file and a
//!    fault-injecting simulator); the rest of the OS a few higher layers use directly
//!    (a backup's rename, a file's identity, `malloc_trim`).
//! 4. `format`: every on-disk structure, checked against `format-spec/`.
//! 5. `pager`: page allocation, free pages, growth.
//! 6. `btree`: the copy-on-write B+tree.
//! 7. `mvcc`: the version store, snapshots, history retention.
//! 8. `commit`: validation, group commit, the log, recovery.
//! 9. `checkpoint`: folding into the tree, the free list, compaction.
//! 10. `engine`: opening and recovery wiring, committing, the committed read path,
//!     checkpoint triggering, integrity checks.
//! 11. `api`: `Database`, `Options`, `Connection`, `Transaction`, retrying closures,
//!     typed tables, backup: the public face.
//! 12. `raftlog`: a Raft log store built on the public API.
//!
//! ## Safety
//! `unsafe` appears only in `storage::file` and `storage::locks`, for mapping the file, the
//! open-file-description locks of live readers (`format-spec/locking.md`), and the `flock`,
//! `fdatasync`, `sync_file_range` (the write-behind) and `renameat2` (a rename that never
//! replaces) calls, in `engine` for one `malloc_trim` after a bulk commit, and in
//! `types::prefetch` (re-exported as `util::prefetch`) for the x86-64 prefetch hint (it never faults and reads nothing into
//! the program), each with a `// SAFETY:` comment. Everything else is safe Rust.

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
#![warn(missing_debug_implementations)]

mod api;
mod btree;
mod checkpoint;
mod commit;
mod engine;
mod error;
pub mod format;
mod keys;
mod mvcc;
mod pager;
pub mod raftlog;
pub mod rng;
pub mod storage;
mod types;
mod util;

pub use api::{
    BACKUP_COPY_OP, BACKUP_DIR_SYNC_OP, BACKUP_OUTPUT_OPS, BackupOptions, BackupProgress,
    BackupReport, CATALOG_NAME, Connection, Database, Options, Page, RETRY_ATTEMPTS_DEFAULT,
    RETRY_ELAPSED_DEFAULT, Range, RetryPolicy, Scan, TEMP_STEM_MAX, Table, TableDef, Transaction,
    TypedRange, temporary_name_stem,
};
pub use checkpoint::CheckpointReport;
pub use commit::{CommitEvent, LogDamage, QUEUE_COMMITS_MAX, Received, Subscription};
pub use engine::{DbInfo, IntegrityReport, SalvageLoss, SalvageReport, Stats, ValueRef};
pub use error::{Error, Result};
#[cfg(feature = "serde")]
pub use keys::Serde;
pub use keys::{Key, Value, decode_key, encode_key, encode_value};
pub use mvcc::HistoryRetention;
pub use types::{
    CommitInfo, Durability, Isolation, MAX_KEY_LEN, MAX_TABLE_NAME_LEN, MAX_TRANSACTION_BYTES,
    MAX_VALUE_LEN,
};
