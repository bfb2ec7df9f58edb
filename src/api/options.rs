//! `Options`: how a database is opened.

use super::Database;
use crate::engine::Config;
use crate::error::Result;
use crate::mvcc::HistoryRetention;
use crate::storage::Storage;
use std::path::Path;
use std::sync::Arc;

/// Tuning knobs for opening a database. Start from [`Options::new`] (the defaults) and
/// change what you need.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = capsuledb::Options::new()
///     .page_size(8192)
///     .open(dir.path().join("app.db"))?;
/// assert_eq!(db.info()?.page_size, 8192);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    pub(crate) config: Config,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// The defaults: 4096-byte pages, a 64 MiB version-store budget, a checkpoint
    /// every 100,000 commits at the latest.
    pub fn new() -> Options {
        Options {
            config: Config::default(),
        }
    }

    /// Page size for a *new* database: a power of two from 4096 to 65536. An existing
    /// database keeps the page size it was created with.
    pub fn page_size(mut self, page_size: u32) -> Options {
        self.config.page_size = page_size;
        self
    }

    /// Bytes the in-memory version store may hold before a checkpoint folds it into the
    /// tree (default 64 MiB; at least 16 KiB, else the open fails with
    /// [`crate::Error::InvalidOptions`]). A commit writing more than half of it (or a
    /// durable one of more than 1 MiB while the pages in use are at most eight times
    /// its bytes) goes straight into the tree when no other snapshot is live and it
    /// drops no table; otherwise it goes through the log, and a checkpoint soon follows
    /// a large one.
    pub fn version_store_budget(mut self, bytes: u64) -> Options {
        self.config.version_store_budget = bytes;
        self
    }

    /// Commits the log may hold beyond the last checkpoint before the next one runs
    /// (default 100,000; at least 1); this bounds the time reopening takes. Commits look
    /// at this once every 256 commits (every 8 while the version store holds more than
    /// twice its budget), and not while a checkpoint, `compact` or `check_integrity`
    /// runs, so the log may hold a few hundred commits more. A checkpoint folds only
    /// up to the oldest live snapshot: while one is older than the log (a long
    /// `begin_read`, a backup), the log since the last checkpoint grows past this bound,
    /// and so does the time a reopen after a crash takes.
    pub fn checkpoint_log_commits(mut self, commits: u64) -> Options {
        self.config.checkpoint_log_commits = commits;
        self
    }

    /// How long past states stay readable through [`Database::begin_read_at`] and
    /// [`crate::Transaction::versions`] (default [`HistoryRetention::Snapshots`]: only
    /// what live snapshots need, at no extra cost). Versions inside the window survive
    /// checkpoints as history entries in the tree; [`Database::drop_history_before`]
    /// gives their space back early. The setting is not stored in the file: opening
    /// with a shorter window drops the older history at the next checkpoint (open
    /// read-only to look at a file's history without changing it). Each checkpoint
    /// reads every history entry (one at a time), holding every entry's key and the
    /// entries it rewrites, so a very large window makes checkpoints slower.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use capsuledb::{HistoryRetention, Options};
    /// let db = Options::new()
    ///     .history_retention(HistoryRetention::Commits(10_000))
    ///     .open(dir.path().join("app.db"))?;
    /// let mut conn = db.connect();
    /// let mut tx = conn.begin()?;
    /// tx.create_table("t")?;
    /// tx.put("t", b"k", b"old")?;
    /// let old = tx.commit()?.seq;
    /// let mut tx = conn.begin()?;
    /// tx.put("t", b"k", b"new")?;
    /// tx.commit()?;
    /// db.checkpoint()?; // history survives checkpoints
    /// assert_eq!(db.begin_read_at(old)?.get("t", b"k")?.as_deref(), Some(&b"old"[..]));
    /// # Ok(()) }
    /// ```
    pub fn history_retention(mut self, retention: HistoryRetention) -> Options {
        self.config.history_retention = retention;
        self
    }

    /// Most history keys a checkpointed tree keeps an in-memory directory of (default
    /// 1,048,576; `0`: none). With it, a time-travel point read of a key that changed
    /// inside the window goes straight to the key's version list instead of descending
    /// the tree, and a key that did not is known to have no history entry. It takes 24
    /// bytes of memory a history key (40 when the key's version list is stored in an
    /// overflow extent), and is built when a checkpoint publishes its tree and at open,
    /// taking 32 bytes a key more while it is built. A tree with more history keys keeps
    /// a Bloom filter of them instead (1.25 to 2.5 bytes a key: at least 10 bits, rounded
    /// up to a power of two in all; up to about 16 bytes a key more while it is built),
    /// which only rules keys out. Answers are the same either way.
    pub fn history_directory_keys(mut self, keys: usize) -> Options {
        self.config.history_directory_keys = keys;
        self
    }

    /// Opens the database read-only: the file is opened without write access (so a
    /// file the process may only read can be opened), nothing is ever written, only
    /// read transactions can begin ([`Connection::begin`](crate::Connection::begin)
    /// gives [`Error::ReadOnlyDatabase`](crate::Error::ReadOnlyDatabase); a write in a
    /// read transaction gives [`Error::ReadOnly`](crate::Error::ReadOnly), as on any
    /// database). A database that was never created cannot be opened
    /// this way. A file written by a newer version whose format this build can still
    /// read (its `write_version` is newer, its `read_version` is not) opens only this way.
    ///
    /// A read-only handle is a **live reader**: it opens beside a writer in another
    /// process (or in this one) and never gets [`Error::Locked`](crate::Error::Locked).
    /// Each new transaction sees the newest checkpoint plus every commit the writer has
    /// written so far; older transactions keep their state. The writer reuses no page a
    /// live reader's transactions may still read (`format-spec/locking.md`). The handle
    /// pins the generation it last looked at even with no transaction open; its thread
    /// (`capsuledb-follow`) moves an idle handle to each new generation twice a second,
    /// so pages the writer frees are held back only while a transaction of an older
    /// generation lives (or for a new generation whose log shows damage, until the
    /// handle's next transaction reports it). While any live reader is open, `compact`
    /// does not shrink the file. Linux only.
    ///
    /// Memory: a live reader holds every version the writer committed since its last
    /// checkpoint (it folds nothing, and reads any state from the file's history floor
    /// on), however few of them the writer's own store keeps: a writer rewriting a few
    /// large values gives its readers up to `checkpoint_log_commits` versions of them
    /// until its next checkpoint ([`Options::version_store_budget`] bounds the writer's
    /// store, not a reader's).
    pub fn read_only(mut self, read_only: bool) -> Options {
        self.config.read_only = read_only;
        self
    }

    /// Seeds every random choice the engine makes (the database id, for one), so a run
    /// on simulated storage replays exactly. By default the seed comes from the clock.
    pub fn random_seed(mut self, seed: u64) -> Options {
        self.config.seed = Some(seed);
        self
    }

    /// Opens (creating if missing) the database file at `path` with these options.
    ///
    /// A file this process already has open (read-write) is not opened twice: the new
    /// handle shares that engine, and the first open's options hold until the engine is
    /// gone (a warning is logged when the two differ): every handle of it, and, for a
    /// moment after the last, a background checkpoint it started. An engine poisoned
    /// by a failed write is never handed out again once its last handle is gone: the
    /// open waits for it to go and opens the file afresh.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Database> {
        Database::open_with_options(path.as_ref(), self)
    }

    /// Opens a database on any [`Storage`], such as the simulated storage of the tests.
    /// An empty storage becomes a new database.
    ///
    /// Nothing here keeps a second engine off the same storage (a path's open does, with
    /// the file's lock and the process's registry): two engines on one storage are two
    /// writers, and lose commits. Open a storage again only once the database on it is
    /// closed and every handle of it dropped (a background checkpoint may hold the
    /// engine a moment longer: [`crate::Database::close`] waits for it).
    pub fn open_storage(&self, storage: Arc<dyn Storage>) -> Result<Database> {
        Database::open_on_storage(storage, self)
    }
}
