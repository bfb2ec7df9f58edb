//! `Database`: one open database file, shared by every handle in the process.

use super::engine::Engine;
use crate::commit::Subscription;
use crate::format::{
    FORMAT_VERSION, HEADER_COPY_OFFSETS, HEADER_LEN, HEADER_REGION_LEN, Header, HeaderFault,
    first_data_page,
};
use crate::storage::{FileStorage, Storage};
use crate::{Connection, Durability, Error, Options, Result, Transaction};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// An open capsuledb database. Cheap to clone (an `Arc`); `Send + Sync`.
///
/// Opening the same file twice in one process returns handles to the same engine;
/// another process opening it gets [`Error::Locked`].
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
    pub(crate) engine: Arc<Engine>,
}

/// Counters describing the engine's state, for tests, benchmarks and the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Last allocated commit sequence.
    pub tip_seq: u64,
    /// Largest sequence visible to new snapshots.
    pub visible_seq: u64,
    /// Versions held in the version store.
    pub versions: u64,
    /// Approximate bytes held in the version store.
    pub version_bytes: u64,
    /// Live snapshots (open transactions).
    pub live_snapshots: usize,
    /// Recent commits kept by the commit index for validation.
    pub commit_index_records: usize,
    /// Transactions admitted by validation.
    pub admitted: u64,
    /// Transactions refused by first-committer-wins.
    pub write_conflicts: u64,
    /// Transactions refused by SSI.
    pub ssi_conflicts: u64,
    /// Stays in the serialized section.
    pub section_count: u64,
    /// Total nanoseconds in the serialized section.
    pub section_ns_total: u64,
    /// Longest stay in the serialized section, in nanoseconds.
    pub section_ns_max: u64,
    /// Highest sequence on stable storage.
    pub durable_seq: u64,
    /// Commit groups flushed (each costs two `fdatasync`s).
    pub groups: u64,
    /// Commits flushed by those groups.
    pub group_commits: u64,
    /// `fdatasync` calls made by commit groups.
    pub group_syncs: u64,
    /// Bytes of capsules written by committers.
    pub capsule_bytes: u64,
    /// Bytes of proofs and markers written by commit groups.
    pub log_bytes: u64,
    /// Commits replayed by recovery when the database was opened.
    pub recovered_commits: u64,
    /// Pages in the free set.
    pub free_pages: u64,
    /// First page never allocated.
    pub high_water_page: u64,
    /// Last commit sequence folded into the checkpointed tree.
    pub checkpoint_seq: u64,
    /// Checkpoints run since the database was opened.
    pub checkpoints: u64,
}

/// A summary of an open database, as the CLI's `info` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbInfo {
    /// The format version the file needs to be read.
    pub format_version: u32,
    /// Bytes per page.
    pub page_size: u32,
    /// Length of the file in bytes.
    pub file_len: u64,
    /// Pages accounted for by the checkpointed state.
    pub page_count: u64,
    /// Last commit sequence folded into the checkpointed state.
    pub checkpoint_seq: u64,
    /// Header generation (incremented on every checkpoint).
    pub header_generation: u64,
    /// Which header copy is current (0 = A, 1 = B).
    pub header_copy: u32,
    /// Random id given to the database at creation.
    pub database_id: u64,
}

/// Engines open in this process, by `(device, inode)`, so that opening the same file
/// twice shares one engine instead of failing on our own lock.
type FileId = (u64, u64);
static OPEN_FILES: Mutex<Option<HashMap<FileId, Weak<Engine>>>> = Mutex::new(None);

/// Files whose lock an engine of this process still holds, and the signal that one was
/// released: an open that meets our own lock while the engine holding it is being
/// dropped (on another thread) waits for it instead of reporting `Locked`.
static HELD: Mutex<Option<std::collections::HashSet<FileId>>> = Mutex::new(None);
static HELD_RELEASED: parking_lot::Condvar = parking_lot::Condvar::new();

/// How long an open waits for this process's own dying engine to release the file.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Marks a file's lock as held by an engine of this process; dropped as the engine's
/// last field, after its storage.
pub(crate) struct LockNotice(FileId);

impl LockNotice {
    fn new(id: FileId) -> LockNotice {
        HELD.lock().get_or_insert_with(Default::default).insert(id);
        LockNotice(id)
    }
}

impl Drop for LockNotice {
    fn drop(&mut self) {
        if let Some(held) = HELD.lock().as_mut() {
            held.remove(&self.0);
        }
        HELD_RELEASED.notify_all();
    }
}

/// Opens the file, waiting while an engine of this process that is being dropped still
/// holds its lock.
fn open_file(path: &Path, options: &Options) -> Result<FileStorage> {
    let deadline = std::time::Instant::now() + RELEASE_WAIT;
    loop {
        let opened = if options.read_only {
            FileStorage::open_read_only(path)
        } else {
            FileStorage::open(path, true)
        };
        let Err(Error::Locked { .. }) = &opened else {
            return opened;
        };
        let Some(id) = file_id_of(path) else {
            return opened;
        };
        let mut held = HELD.lock();
        if !held.as_ref().is_some_and(|h| h.contains(&id)) {
            // Another process holds it.
            return opened;
        }
        if HELD_RELEASED.wait_until(&mut held, deadline).timed_out() {
            return opened;
        }
    }
}

fn file_id_of(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

impl Database {
    /// Opens the database file at `path`, creating it with the default [`Options`] if it
    /// does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Options::new().open(path)
    }

    pub(crate) fn open_with_options(path: &Path, options: &Options) -> Result<Database> {
        options.validate()?;
        let mut open_files = OPEN_FILES.lock();
        let registry = open_files.get_or_insert_with(HashMap::new);
        registry.retain(|_, engine| engine.strong_count() > 0);
        if let Some(engine) = file_id_of(path).and_then(|id| registry.get(&id)?.upgrade()) {
            if engine.closing.load(Ordering::Acquire) {
                // `close` was called on another handle that some clone still keeps.
                return Err(Error::Closed);
            }
            if engine.read_only != options.read_only {
                // As between processes: a writer's exclusive lock and readers' shared
                // one exclude each other.
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                });
            }
            return Ok(Database { engine });
        }
        let storage = open_file(path, options)?;
        let id = storage.file_id()?;
        let engine = Engine::open(Arc::new(storage), Some(path.to_path_buf()), options)?;
        *engine.lock_notice.lock() = Some(LockNotice::new(id));
        registry.insert(id, Arc::downgrade(&engine));
        Ok(Database { engine })
    }

    pub(crate) fn open_on_storage(
        storage: Arc<dyn Storage>,
        options: &Options,
    ) -> Result<Database> {
        options.validate()?;
        Ok(Database {
            engine: Engine::open(storage, None, options)?,
        })
    }

    /// The path the database was opened from (`None` on simulated storage).
    pub fn path(&self) -> Option<&Path> {
        self.engine.path.as_deref()
    }

    /// A new connection for running transactions; make one per thread.
    pub fn connect(&self) -> Connection {
        Connection { db: self.clone() }
    }

    /// Engine counters: sequences, version-store size, validation outcomes.
    pub fn stats(&self) -> Stats {
        let e = &self.engine;
        let index = e.committer.index_stats();
        let section = e.committer.section_stats();
        let group = e.committer.group_stats();
        Stats {
            tip_seq: e.committer.tip(),
            visible_seq: e.registry.visible(),
            versions: e.versions.version_count(),
            version_bytes: e.versions.byte_count(),
            live_snapshots: e.registry.live_count(),
            commit_index_records: e.committer.index_records(),
            admitted: index.admitted,
            write_conflicts: index.write_conflicts,
            ssi_conflicts: index.ssi_conflicts,
            section_count: section.count,
            section_ns_total: section.total_ns,
            section_ns_max: section.max_ns,
            durable_seq: e.committer.durable_seq(),
            groups: group.groups,
            group_commits: group.commits,
            group_syncs: group.syncs,
            capsule_bytes: e.committer.capsule_bytes(),
            log_bytes: group.log_bytes,
            recovered_commits: e.recovered_commits,
            free_pages: e.pager.free_count(),
            high_water_page: e.pager.high_water(),
            checkpoint_seq: e.current_tree().checkpoint_seq,
            checkpoints: e.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// Blocks until commit `seq` has reached `level` and is visible to new
    /// transactions. Useful before retrying after [`Error::Conflict`]: a retry that
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
    pub fn wait_for(&self, seq: u64, level: Durability) -> Result<()> {
        self.engine.committer.wait_for(seq, level)
    }

    /// A read-only transaction at the past state `seq`: every commit at or below `seq`
    /// and none after it. `seq` must lie in the history window
    /// ([`Options::history_retention`], [`Database::history_window`]); otherwise
    /// [`Error::HistoryUnavailable`] says what the window holds. While the transaction
    /// lives, the window does not move past `seq`.
    pub fn begin_read_at(&self, seq: u64) -> Result<Transaction<'_>> {
        Transaction::begin_at(Arc::clone(&self.engine), seq)
    }

    /// The states readable through [`Database::begin_read_at`] now: `(oldest, newest)`.
    pub fn history_window(&self) -> (u64, u64) {
        (
            self.engine.committer.history().floor(),
            self.engine.registry.visible(),
        )
    }

    /// Drops retained versions older than `seq` now, whatever the retention setting:
    /// states before `seq` can no longer be read, and a checkpoint gives their space
    /// back to the free list. The window never passes a live `begin_read_at`
    /// transaction or what live snapshots need. Returns the window's new oldest state.
    pub fn drop_history_before(&self, seq: u64) -> Result<u64> {
        let e = &self.engine;
        e.check_writable()?;
        e.committer.drain()?;
        let history = e.committer.history();
        history.drop_before(seq);
        e.committer.maintain();
        e.checkpointer.run(true, true)?;
        Ok(history.floor())
    }

    /// Subscribes to the commits that become durable from now on, each as its sequence
    /// number and the tables it touched, in order and without gaps. The subscriber's
    /// queue holds up to 4096 events; see [`Database::subscribe_with_capacity`].
    pub fn subscribe(&self) -> Subscription {
        self.subscribe_with_capacity(4096)
    }

    /// [`Database::subscribe`] with room for `capacity` unreceived events. When the
    /// queue is full the oldest event is dropped and the subscriber's next receive says
    /// how many it missed ([`Received::Lagged`]): committers never wait for subscribers.
    pub fn subscribe_with_capacity(&self, capacity: usize) -> Subscription {
        let committer = &self.engine.committer;
        committer.feed().subscribe(capacity, || committer.tip())
    }

    /// Shuts the database down: new commits get [`Error::Closed`], and every commit
    /// already sequenced is written and synced before this returns. Dropping the last
    /// handle does the same, but cannot report an error.
    pub fn close(self) -> Result<()> {
        self.engine.closing.store(true, Ordering::Release);
        // Wait for a checkpoint in progress; none starts after this.
        self.engine.checkpointer.shut();
        let drained = self.engine.committer.drain();
        self.engine.committer.feed().close();
        drained
    }

    /// Writes the markers of queued `Applied` commits, then prunes the commit index and
    /// drops versions no live snapshot and no future checkpoint needs. Pruning runs on
    /// its own every few dozen commits; old versions of commits not yet durable are kept
    /// until they are (at most [`crate::QUEUE_COMMITS_MAX`] commits behind), because a
    /// checkpoint folds only durable commits. Calling this is useful before measuring.
    pub fn collect_garbage(&self) -> Result<()> {
        self.engine.committer.drain()?;
        self.engine.committer.maintain();
        Ok(())
    }

    /// Folds every commit that no live snapshot still needs into the checkpointed tree
    /// and writes a new header, so the version store shrinks and reopening replays only
    /// later commits. Runs on its own when the version store or the log outgrows its
    /// budget ([`Options::version_store_budget`], [`Options::checkpoint_log_commits`]).
    /// Returns `None` when there was nothing to fold.
    pub fn checkpoint(&self) -> Result<Option<crate::CheckpointReport>> {
        self.engine.check_writable()?;
        self.engine.run_checkpoint(true)
    }

    /// Checkpoints, then returns the free pages at the end of the file to the operating
    /// system. Returns the number of bytes the file shrank by.
    pub fn compact(&self) -> Result<u64> {
        self.engine.check_writable()?;
        self.engine.checkpointer.compact()
    }

    /// The last error of an automatic checkpoint, if the last one failed.
    pub fn last_checkpoint_error(&self) -> Option<String> {
        self.engine.last_checkpoint_error.lock().clone()
    }

    /// A summary of the database's file and state.
    pub fn info(&self) -> Result<DbInfo> {
        let (h, copy) = self.engine.checkpointer.header();
        Ok(DbInfo {
            format_version: h.read_version,
            page_size: h.page_size,
            file_len: self.engine.storage.len()?,
            page_count: h.page_count,
            checkpoint_seq: h.checkpoint_seq,
            header_generation: h.generation,
            header_copy: copy,
            database_id: h.database_id,
        })
    }
}

/// Writes a new database into an empty storage: both header copies, synced.
pub(crate) fn create(storage: &dyn Storage, options: &Options) -> Result<(Header, u32)> {
    let seed = options.seed.unwrap_or_else(clock_seed);
    let mut rng = crate::rng::Rng::new(seed);
    let page_size = options.page_size;
    let first_data = first_data_page(page_size);
    // The marker stream starts on the first data page; the page after it is reserved
    // as the stream's next page.
    let page_count = first_data + 2;
    let header = Header {
        read_version: FORMAT_VERSION,
        write_version: FORMAT_VERSION,
        page_size,
        generation: 1,
        database_id: rng.next_u64(),
        page_count,
        checkpoint_seq: 0,
        catalog_root: 0,
        freelist_root: 0,
        marker_start_page: first_data,
        marker_chain_seed: rng.next_u64() as u32,
    };
    storage.set_len(page_count * u64::from(page_size))?;
    let marker_page = crate::commit::MarkerWriter::new_page_image(
        first_data,
        page_size,
        crate::format::MarkerPageHeader {
            next_page: first_data + 1,
            first_seq: 1,
        },
    )?;
    storage.write_at(first_data * u64::from(page_size), &marker_page)?;
    // The headers go last, after everything they name is durable: a crash before
    // them leaves a file `interrupted_creation` recognises.
    storage.sync()?;
    for (copy, offset) in (0u32..).zip(HEADER_COPY_OFFSETS) {
        storage.write_at(offset, &header.encode(copy))?;
    }
    storage.sync()?;
    Ok((header, 0))
}

/// Whether the file is what a crash during [`create`] leaves: no more than a new
/// database's pages, a header region never written (all zero), and nothing else but
/// possibly the first marker page's 32-byte header: no commit ever reached it. A file
/// with anything more (a marker, a capsule) is a damaged database, never re-created.
pub(crate) fn interrupted_creation(storage: &dyn Storage) -> Result<bool> {
    let len = storage.len()?;
    let created_len_max = HEADER_REGION_LEN + 2 * u64::from(crate::format::PAGE_SIZE_MAX);
    if len > created_len_max {
        return Ok(false);
    }
    let view = storage.view()?;
    let bytes = view.get(0, len as usize).unwrap_or(&[]);
    let page_header_at = |i: usize| {
        let block = crate::format::PAGE_SIZE_MIN as usize;
        i >= HEADER_REGION_LEN as usize && i % block < crate::format::LOG_PAGE_HEADER_LEN
    };
    Ok(bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b == 0 || page_header_at(i)))
}

fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Reads both header copies and picks the newest valid one (`format-spec/header.md`,
/// "Choosing a copy"). Never writes.
pub(crate) fn read_header(storage: &dyn Storage, read_only: bool) -> Result<(Header, u32)> {
    let len = storage.len()?;
    if len < HEADER_REGION_LEN {
        let view = storage.view()?;
        let magic_ok = view.get(0, 8) == Some(&crate::format::MAGIC[..]);
        if !magic_ok {
            return Err(Error::NotADatabase {
                what: format!("a {len}-byte file without the capsuledb magic"),
            });
        }
        return Err(Error::Truncated {
            len,
            needed: HEADER_REGION_LEN,
        });
    }
    let view = storage.view()?;
    let decoded: Vec<Result<Header, HeaderFault>> = (0u32..)
        .zip(HEADER_COPY_OFFSETS)
        .map(|(copy, offset)| {
            let bytes = view.get(offset, HEADER_LEN).ok_or(HeaderFault::Short)?;
            Header::decode(bytes, copy)
        })
        .collect();
    let (a, b) = match decoded.as_slice() {
        [a, b] => (a, b),
        _ => return Err(Error::corrupted(0, "header copies missing")),
    };
    if matches!(a, Err(HeaderFault::BadMagic)) && matches!(b, Err(HeaderFault::BadMagic)) {
        return Err(Error::NotADatabase {
            what: "neither header copy has the capsuledb magic".into(),
        });
    }
    let chosen = match (a, b) {
        (Ok(a), Ok(b)) => {
            if a.page_size != b.page_size || a.database_id != b.database_id {
                return Err(Error::corrupted(
                    0,
                    "the two header copies disagree on page size or database id",
                ));
            }
            if b.generation > a.generation {
                (*b, 1)
            } else {
                (*a, 0)
            }
        }
        (Ok(a), Err(_)) => (*a, 0),
        (Err(_), Ok(b)) => (*b, 1),
        (Err(fa), Err(fb)) => {
            return Err(Error::corrupted(
                0,
                format!("both header copies are invalid: copy A: {fa}; copy B: {fb}"),
            ));
        }
    };
    let (header, _) = chosen;
    if header.read_version > FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: header.read_version,
            supported: FORMAT_VERSION,
        });
    }
    if header.write_version > FORMAT_VERSION && !read_only {
        // A newer writer's file that this build can read: only a read-only open.
        return Err(Error::UnsupportedVersion {
            found: header.write_version,
            supported: FORMAT_VERSION,
        });
    }
    let needed = header
        .page_count
        .saturating_mul(u64::from(header.page_size));
    if len < needed {
        return Err(Error::Truncated { len, needed });
    }
    Ok(chosen)
}
