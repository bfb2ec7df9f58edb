//! `Database`: one open database file, shared by every handle in the process.

use super::{Connection, Options, Transaction};
use crate::checkpoint::CheckpointReport;
use crate::commit::Subscription;
use crate::engine::{DbInfo, Engine, Follower, IntegrityReport, Stats};
use crate::error::Result;
use crate::storage::Storage;
use crate::types::Durability;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// An open capsuledb database. Cheap to clone (an `Arc`); `Send + Sync`.
///
/// Opening the same file twice in one process returns handles to the same engine;
/// another process opening it read-write gets [`Error::Locked`](crate::Error::Locked).
/// Read-only opens ([`Options::read_only`]) are live readers, in any process, beside
/// the one writer.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = capsuledb::Database::open(dir.path().join("app.db"))?;
/// let info = db.info()?;
/// assert_eq!(info.page_size, 4096);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Database {
    handle: Arc<Owner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path())
            .field("live_reader", &matches!(self.handle.0, Handle::Live(_)))
            .finish_non_exhaustive()
    }
}

/// What a `Database` and its clones share (every connection and Raft log holds one).
/// The engine counts these, one per open of its file in this process: when the last is
/// dropped, every commit queued by then is made durable at once, on the dropping thread.
/// A background thread of the engine (an automatic checkpoint, the idle watcher) may
/// still hold the engine then, and the engine's own drop, which does the same, would run
/// only when that thread lets go, too late for a process that exits right after dropping
/// its handles.
struct Owner(Handle);

impl Owner {
    fn new(handle: Handle) -> Owner {
        if let Handle::Engine(e) = &handle {
            e.handles.fetch_add(1, Ordering::AcqRel);
        }
        Owner(handle)
    }

    /// An owner of a handle whose open already counted it (`engine::open_path` counts
    /// under its registry's lock, so an open meeting a closed engine never sees it
    /// without the handle that is about to keep it).
    fn counted(handle: Handle) -> Owner {
        Owner(handle)
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        match &self.0 {
            Handle::Engine(e) => {
                if e.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
                    e.flush_for_last_handle();
                }
            }
            // The last handle of a live reader: its pins go with it, not a moment later
            // with a look of its idle-follow thread.
            Handle::Live(f) => f.stop_idle_follow(),
        }
    }
}

/// A writer's (or a storage's) one engine, or a live reader that follows another
/// process's writes from one header generation's engine to the next.
#[derive(Clone)]
enum Handle {
    Engine(Arc<Engine>),
    Live(Arc<Follower>),
}

impl Database {
    /// Opens the database file at `path`, creating it with the default [`Options`] if it
    /// does not exist, is empty, or holds only what a creation a crash cut short leaves
    /// (zeros and marker pages, no longer than a new database).
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Options::new().open(path)
    }

    pub(crate) fn open_with_options(path: &Path, options: &Options) -> Result<Database> {
        let handle = if options.config.read_only {
            let follower = Arc::new(Follower::open(path, &options.config)?);
            follower.start_idle_follow();
            Handle::Live(follower)
        } else {
            Handle::Engine(crate::engine::open_path(path, &options.config)?)
        };
        Ok(Database {
            handle: Arc::new(Owner::counted(handle)),
        })
    }

    /// The engine now (a live reader's: of the generation it last looked at).
    /// A value naming this database (its engine, or a live reader's handle) among the
    /// open ones, for as long as a clone of this handle lives.
    pub(crate) fn identity(&self) -> usize {
        match &self.handle.0 {
            Handle::Engine(e) => Arc::as_ptr(e) as usize,
            Handle::Live(_) => Arc::as_ptr(&self.handle) as usize,
        }
    }

    /// A weak reference to what [`Database::identity`] names: while it is kept, no other
    /// database takes that value, and its strong count tells whether the named one lives.
    #[cfg(feature = "openraft")]
    pub(crate) fn identity_ref(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        match &self.handle.0 {
            Handle::Engine(e) => {
                Arc::downgrade(e) as std::sync::Weak<dyn std::any::Any + Send + Sync>
            }
            Handle::Live(_) => Arc::downgrade(&self.handle) as std::sync::Weak<_>,
        }
    }

    /// The device and inode of the file this handle has open (`None` for a database on
    /// storage of the application's own).
    pub(crate) fn open_file_id(&self) -> Option<(u64, u64)> {
        match &self.handle.0 {
            Handle::Engine(e) => e.lock_notice.lock().as_ref().map(|n| n.file_id()),
            Handle::Live(f) => f.file_id(),
        }
    }

    pub(crate) fn engine(&self) -> Arc<Engine> {
        match &self.handle.0 {
            Handle::Engine(e) => Arc::clone(e),
            Handle::Live(f) => f.current(),
        }
    }

    /// The engine a new transaction of a connection begins on, borrowed from the
    /// handle when it is a writer's (no shared reference count per transaction); a
    /// live reader's first follows the writer to its newest header and commit.
    pub(crate) fn latest_ref(&self) -> Result<EngineRef<'_>> {
        match &self.handle.0 {
            Handle::Engine(e) => Ok(EngineRef::Borrowed(e)),
            Handle::Live(f) => f.latest().map(EngineRef::Owned),
        }
    }

    /// The engine a new transaction begins on: a live reader's first follows the
    /// writer to its newest header and commit.
    pub(crate) fn latest(&self) -> Result<Arc<Engine>> {
        match &self.handle.0 {
            Handle::Engine(e) => Ok(Arc::clone(e)),
            Handle::Live(f) => f.latest(),
        }
    }

    pub(crate) fn open_on_storage(
        storage: Arc<dyn Storage>,
        options: &Options,
    ) -> Result<Database> {
        options.config.validate()?;
        let engine = Engine::open(storage, None, &options.config)?;
        Ok(Database {
            handle: Arc::new(Owner::new(Handle::Engine(engine))),
        })
    }

    /// The path the database was opened from (`None` on simulated storage). Opens of one
    /// file by two paths (a link) share the first open's engine, and its path.
    pub fn path(&self) -> Option<&Path> {
        match &self.handle.0 {
            Handle::Engine(e) => e.path.as_deref(),
            Handle::Live(f) => Some(f.path()),
        }
    }

    /// A new connection for running transactions; make one per thread.
    pub fn connect(&self) -> Connection {
        Connection::new(self.clone())
    }

    /// Engine counters: sequences, version-store size, validation outcomes.
    pub fn stats(&self) -> Stats {
        self.engine().stats()
    }

    /// Blocks until commit `seq` has reached `level` and is visible to new
    /// transactions. Useful before retrying after [`Error::Conflict`](crate::Error::Conflict): a retry that
    /// begins before the conflicting commit (its `committed_seq`) is visible would meet
    /// the same conflict again.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = capsuledb::Database::open(dir.path().join("app.db"))?;
    /// let mut conn = db.connect();
    /// let mut tx = conn.begin()?;
    /// tx.create_table("t")?;
    /// let seq = tx.commit_with(capsuledb::Durability::Applied)?.seq;
    /// db.wait_for(seq, capsuledb::Durability::Durable)?;
    /// # Ok(()) }
    /// ```
    ///
    /// On a read-only handle (a live reader of another process's commits) it waits until
    /// `seq` is visible to it, following the writer: a reader sees a commit once the
    /// writer has written its marker, and cannot tell a written marker from a synced
    /// one, so every level waits for that.
    ///
    /// A `seq` no commit has taken yet waits for a future commit; once the database is
    /// closed (by any handle) such a wait ends with [`Error::Closed`](crate::Error::Closed),
    /// once it is poisoned (no commit is taken any more) with
    /// [`Error::Poisoned`](crate::Error::Poisoned).
    pub fn wait_for(&self, seq: u64, level: Durability) -> Result<()> {
        match &self.handle.0 {
            Handle::Engine(e) => e.committer.wait_for(seq, level),
            Handle::Live(f) => {
                // Nothing in this process moves a reader's state: it looks again, less
                // often the longer it waits (at most every 20 ms).
                let mut pause = std::time::Duration::from_micros(200);
                loop {
                    if f.latest()?.registry.visible() >= seq {
                        return Ok(());
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(20));
                }
            }
        }
    }

    /// A read-only transaction at the past state `seq`: every commit at or below `seq`
    /// and none after it. `seq` must lie in the history window
    /// ([`Options::history_retention`], [`Database::history_window`]); otherwise
    /// [`Error::HistoryUnavailable`](crate::Error::HistoryUnavailable) says what the window holds. While the transaction
    /// lives, the window does not move past `seq`. Like [`Connection::begin_read`](crate::Connection::begin_read),
    /// it waits out a transaction being committed straight into the tree.
    pub fn begin_read_at(&self, seq: u64) -> Result<Transaction<'_>> {
        Transaction::begin_at(self.latest()?, seq)
    }

    /// The states readable through [`Database::begin_read_at`] now: `(oldest, newest)`
    /// (waiting out a transaction being committed straight into the tree, as
    /// `begin_read_at` does).
    pub fn history_window(&self) -> (u64, u64) {
        // A live reader's newest generation (the current one can be a checkpoint
        // behind, naming a floor `begin_read_at` refuses), moved to as its idle thread
        // does: damage is left for the next transaction to report.
        match &self.handle.0 {
            Handle::Engine(e) => e.history_window(),
            Handle::Live(f) => f.newest_quietly().history_window(),
        }
    }

    /// Drops retained versions older than `seq` now, whatever the retention setting:
    /// states before `seq` can no longer be read, and a checkpoint gives their space
    /// back to the free list. The window never passes a live `begin_read_at`
    /// transaction or what live snapshots need; a `seq` past the newest state drops the
    /// history before the newest state, and the retention setting goes on for later
    /// commits. Returns the window's new oldest state.
    pub fn drop_history_before(&self, seq: u64) -> Result<u64> {
        self.engine().drop_history_before(seq)
    }

    /// Subscribes to the commits that become durable from now on, each as its sequence
    /// number and the tables it touched, in order and without gaps. An event comes once
    /// its commit is durable and visible: a transaction begun on it reads the commit. The subscriber's
    /// queue holds up to 4096 events; see [`Database::subscribe_with_capacity`].
    ///
    /// Until a database has its first subscriber, committers record nothing for the
    /// feed: when that first subscription begins while commits are in flight (taken
    /// their sequence, not yet durable), it receives, once they are durable, a
    /// [`Received::Lagged`](crate::Received::Lagged) counting them, and its events
    /// start after them.
    pub fn subscribe(&self) -> Subscription {
        self.subscribe_with_capacity(4096)
    }

    /// [`Database::subscribe`] with room for `capacity` unreceived events. When the
    /// queue is full the oldest event is dropped and the subscriber's next receive says
    /// how many it missed ([`Received::Lagged`](crate::Received::Lagged)): committers never wait for subscribers.
    ///
    /// A database opened read-only follows another process's commits without their
    /// tables: its subscription is closed at once ([`Received::Closed`](crate::Received::Closed)).
    pub fn subscribe_with_capacity(&self, capacity: usize) -> Subscription {
        if let Handle::Live(_) = &self.handle.0 {
            return crate::commit::Feed::closed_subscription();
        }
        let engine = self.engine();
        // A read-only storage (`open_storage`) commits nothing either.
        if engine.read_only {
            return crate::commit::Feed::closed_subscription();
        }
        let committer = &engine.committer;
        committer
            .feed()
            .subscribe(capacity, || (committer.tip(), engine.registry.visible()))
    }

    /// Shuts the database down: new commits get [`Error::Closed`](crate::Error::Closed), and every commit
    /// already sequenced is written and synced before this returns. Every open of the
    /// same file in this process shares one engine, so this closes them all. Dropping the last
    /// handle does the same, but cannot report an error. On a poisoned database (a
    /// commit's I/O failed) it returns [`Error::Poisoned`](crate::Error::Poisoned): commits
    /// acknowledged below `Durable` may be lost. An error from the final header write
    /// leaves every commit durable (each group's sync succeeded before it was reported)
    /// and the database closed. Opening the file again in this process afterwards opens
    /// it afresh (waiting a moment while a background thread lets go of the closed
    /// engine; an open meeting the close under way waits for it), unless a clone of a
    /// closed handle or one of its connections is still kept a second after the close
    /// returned (another thread's handle, say, ending its work): then the open answers [`Error::Closed`](crate::Error::Closed). A
    /// [`crate::ValueRef`] of the closed database still kept holds its file (and its
    /// lock) open until dropped: an open meanwhile answers
    /// [`Error::Locked`](crate::Error::Locked) (a scan kept borrows its transaction,
    /// and so a connection: that open answers [`Error::Closed`](crate::Error::Closed)).
    pub fn close(self) -> Result<()> {
        let Database { handle } = self;
        match &handle.0 {
            Handle::Engine(e) => {
                // This handle goes before the close is marked done, so an open waiting
                // for it never meets it still counted.
                let e = Arc::clone(e);
                e.close_then(move || drop(handle))
            }
            Handle::Live(f) => f.close(),
        }
    }

    /// Writes the markers of queued `Applied` commits, then prunes the commit index and
    /// drops versions no live snapshot and no future checkpoint needs. Pruning runs on
    /// its own every few dozen commits; old versions of commits not yet durable are kept
    /// until they are (at most [`crate::QUEUE_COMMITS_MAX`] commits behind), because a
    /// checkpoint folds only durable commits. Calling this is useful before measuring.
    pub fn collect_garbage(&self) -> Result<()> {
        self.engine().collect_garbage()
    }

    /// Folds every durable commit that no live snapshot still needs into the
    /// checkpointed tree and writes a new header, so the version store shrinks and
    /// reopening replays only later commits. `Applied` and `Written` commits not yet
    /// durable stay in the store (call [`Database::collect_garbage`] first to flush
    /// them). Runs on its own when the version store or the log outgrows its budget
    /// ([`Options::version_store_budget`], [`Options::checkpoint_log_commits`]).
    /// Returns `None` when there was nothing to fold.
    pub fn checkpoint(&self) -> Result<Option<CheckpointReport>> {
        self.engine().checkpoint()
    }

    /// Checkpoints, then returns the free pages at the end of the file to the operating
    /// system. Returns the number of bytes the file shrank by. While any live reader is
    /// open (a read-only handle, in this process or another: each pins the state it
    /// reads), the file is not cut (0 bytes). While one reads an older state, the pages
    /// it may read are not reused and the tree's leaves are not moved out of the tail
    /// (they would only go to the file's end).
    pub fn compact(&self) -> Result<u64> {
        self.engine().compact()
    }

    /// The last error of an automatic checkpoint, if the last one failed.
    pub fn last_checkpoint_error(&self) -> Option<String> {
        self.engine().last_checkpoint_error.lock().clone()
    }

    /// Verifies the whole database: every page checksum of the tree, its ordering and
    /// balance, the catalog, the history entries (each version list whole, its oldest
    /// version at or below the history floor), the free list, every proof and capsule
    /// of the log, and that every page is used exactly once (tree, free list, log or
    /// free) and none is leaked. Returns the problems found; an `Err` only for I/O failures, and, on a
    /// live reader (a read-only handle following a writer), for damage it meets first
    /// moving to the writer's newest state ([`Error::LogCorrupted`](crate::Error::LogCorrupted) or
    /// [`Error::Corrupted`](crate::Error::Corrupted), as `info` gives then too; a later call reports on the
    /// state before the damage, with [`DbInfo::log_damage`](crate::DbInfo::log_damage) set). Exact when no
    /// transaction commits meanwhile (the CLI's `check` opens the file read-only, so a
    /// writer in another process may commit while it runs).
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = capsuledb::Database::open(dir.path().join("app.db"))?;
    /// assert!(db.check_integrity()?.is_ok());
    /// # Ok(()) }
    /// ```
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        self.latest()?.check_integrity()
    }

    /// A summary of the database's file and state.
    pub fn info(&self) -> Result<DbInfo> {
        self.latest()?.info()
    }
}

/// A transaction's engine: borrowed from its connection's handle, or its own reference
/// (a live reader's engine of the moment, a time-travel transaction's).
pub(crate) enum EngineRef<'a> {
    Borrowed(&'a Arc<Engine>),
    Owned(Arc<Engine>),
}

impl std::ops::Deref for EngineRef<'_> {
    type Target = Arc<Engine>;

    fn deref(&self) -> &Arc<Engine> {
        match self {
            EngineRef::Borrowed(e) => e,
            EngineRef::Owned(e) => e,
        }
    }
}

#[cfg(test)]
mod idle_watcher_tests {
    use crate::{Database, Durability, Options};
    use std::time::{Duration, Instant};

    /// A database with a 4 MiB store budget and the table `t`.
    fn open(dir: &tempfile::TempDir) -> Database {
        let db = Options::new()
            .version_store_budget(4 << 20)
            .open(dir.path().join("idle.db"))
            .unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        tx.create_table("t").unwrap();
        tx.commit().unwrap();
        db
    }

    /// 20 durable commits of 100 keys of 110 bytes: over a sixteenth of the budget (the
    /// watcher starts), under the budget (no commit starts a checkpoint). Then several
    /// of the watcher's looks go by.
    fn burst(db: &Database) {
        burst_at(db, Durability::Durable);
    }

    /// [`burst`]'s commits at `level`, then several of the watcher's looks.
    fn burst_at(db: &Database, level: Durability) {
        let mut c = db.connect();
        for r in 0..20u64 {
            let mut tx = c.begin().unwrap();
            for k in 0..100u64 {
                tx.put("t", &(r * 100 + k).to_be_bytes(), &[r as u8; 100])
                    .unwrap();
            }
            tx.commit_with(level).unwrap();
        }
        std::thread::sleep(Duration::from_millis(400));
    }

    /// Waits (a minute at most) for the watcher to empty the store, then reads every key.
    fn folded_and_exact(db: &Database) {
        let start = Instant::now();
        while db.stats().version_bytes > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the watcher gave up: {:?}",
                db.stats()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut c = db.connect();
        let tx = c.begin_read().unwrap();
        for k in 0..2000u64 {
            let v = tx.get("t", &k.to_be_bytes()).unwrap().unwrap();
            assert_eq!(v, vec![(k / 100) as u8; 100]);
        }
    }

    /// A burst's last commits can come while a checkpoint the budget started still
    /// folds: the watcher then waits for it and folds what it left, instead of leaving
    /// those versions in the store for every later read to merge.
    #[test]
    fn the_watcher_waits_out_a_running_checkpoint_and_folds_what_it_left() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        let engine = db.engine();
        // A checkpoint runs (as far as every other part of the engine can tell).
        engine.set_checkpoint_running(true);
        burst(&db);
        assert!(
            db.stats().version_bytes > 0,
            "folded while a checkpoint ran"
        );
        assert!(engine.idle_watcher_armed());
        engine.set_checkpoint_running(false);
        folded_and_exact(&db);
    }

    /// A burst of `Applied` commits whose flush has not made them durable yet: the
    /// watcher folded at once (its fold stops at the durable ones, here none of the
    /// burst) and ended, leaving the whole burst in the store. It waits for them now.
    #[test]
    fn the_watcher_waits_for_the_burst_to_be_durable() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        let engine = db.engine();
        // No flusher starts: the burst stays queued until `collect_garbage` below.
        engine.hold_flusher();
        burst_at(&db, Durability::Applied);
        assert!(
            engine.idle_watcher_armed(),
            "the watcher ended before the burst was durable: {:?}",
            db.stats()
        );
        db.collect_garbage().unwrap();
        folded_and_exact(&db);
    }

    /// The same when the checkpointer is held by the application's own checkpoint (or a
    /// tree commit): the watcher's attempt would find it taken and end.
    #[test]
    fn the_watcher_waits_out_the_applications_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        let engine = db.engine();
        let held = engine.hold_checkpointer();
        burst(&db);
        assert!(
            db.stats().version_bytes > 0,
            "folded while the checkpointer was held"
        );
        assert!(engine.idle_watcher_armed());
        drop(held);
        folded_and_exact(&db);
    }
}

#[cfg(test)]
mod last_handle_tests {
    use crate::{Connection, Database, Durability};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// A connection to the database at `path` with the table `t` (created if missing).
    fn open(path: &Path) -> (Database, Connection) {
        let db = Database::open(path).unwrap();
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        if !tx.tables().unwrap().iter().any(|t| t == "t") {
            tx.create_table("t").unwrap();
        }
        tx.commit_with(Durability::Durable).unwrap();
        (db, c)
    }

    /// 50 `Applied` commits through `c`; the last one's sequence.
    fn applied(c: &mut Connection, from: u64) -> u64 {
        let mut last = 0;
        for k in from..from + 50 {
            let mut tx = c.begin().unwrap();
            tx.put("t", &k.to_be_bytes(), b"v").unwrap();
            last = tx.commit_with(Durability::Applied).unwrap().seq;
        }
        last
    }

    /// The engine still held elsewhere when the last handle goes (as an automatic
    /// checkpoint or the idle watcher holds it): the commits queued `Applied` are durable
    /// when the drop returns, not only once that holder lets go (a process exiting right
    /// after the drop would have lost them). The flusher is kept from running, so nothing
    /// else makes them durable meanwhile.
    #[test]
    fn dropping_the_last_handle_makes_queued_commits_durable_while_the_engine_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let (db, mut c) = open(&dir.path().join("last.db"));
        let held = db.engine();
        held.hold_flusher();
        let last = applied(&mut c, 0);
        let clone = db.clone();
        drop(db);
        assert!(clone.stats().tip_seq >= last, "a clone still works");
        drop(clone);
        assert!(
            held.committer.durable_seq() < last,
            "flushed before the last handle went"
        );
        // The connection holds the last handle.
        drop(c);
        assert!(
            held.committer.durable_seq() >= last,
            "commit {last} not durable after the last handle went (durable up to {})",
            held.committer.durable_seq()
        );
    }

    /// Two opens of one file share its engine: the handles of one going leave the other's
    /// commits queued; the other's last handle going flushes them.
    #[test]
    fn the_last_handle_is_the_last_of_every_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.db");
        let (first, c1) = open(&path);
        let (second, mut c2) = open(&path);
        let held = first.engine();
        held.hold_flusher();
        let last = applied(&mut c2, 0);
        drop((first, c1));
        assert!(
            held.committer.durable_seq() < last,
            "the first open's drop flushed"
        );
        drop((second, c2));
        assert!(held.committer.durable_seq() >= last);
    }

    /// The handles of one open go, twenty times, while another open of the same file
    /// keeps committing: no drop waits for the other open's commits (a watchdog: a drop
    /// takes milliseconds; it fails the test instead of hanging it).
    #[test]
    fn dropping_one_open_does_not_wait_for_another_opens_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, mut c) = open(&path);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut k = 0;
                while !stop.load(Ordering::Acquire) {
                    applied(&mut c, k);
                    k += 50;
                }
                drop((c, db));
            })
        };
        for round in 0..20u64 {
            let (db, mut c) = open(&path);
            applied(&mut c, 1_000_000 + round * 50);
            let start = Instant::now();
            drop((c, db));
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the drop waited on the other open's commits"
            );
        }
        stop.store(true, Ordering::Release);
        writer.join().unwrap();
    }
}
