//! Live readers (`format-spec/locking.md`): a read-only open of a file that another
//! process may be writing. Each header generation is read by an engine of its own,
//! opened read-only and pinned (an OFD read lock on the generation's byte) before it
//! reads anything the header names. A [`Follower`] hands out the engine of the newest
//! generation: before each transaction it rereads the header, opens the next
//! generation's engine when a checkpoint moved it, and otherwise replays the commits
//! appended to the marker stream since the last look. Transactions keep the engine they
//! began on, and with it their tree, their version store and their pin.

use super::Engine;
use super::config::Config;
use super::create::{header_copy_page, read_header};
use crate::commit::{Recovered, StreamStart, recover_from};
use crate::error::{Error, Result};
use crate::format::Header;
use crate::mvcc::ReplayWindow;
use crate::mvcc::VersionStore;
use crate::storage::{FileStorage, GenerationPin, Storage};
use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Attempts at reading a header whose generation is still current after pinning it
/// (each failed attempt means the writer published a newer one meanwhile).
const PIN_ATTEMPTS_MAX: u32 = 64;

/// Reads the newest valid header of a file another process may be writing. The file's
/// length is read before the header, so a header written (after the file grew) in
/// between names pages past that length, and a copy being written reads as damaged
/// (beside a copy naming pages past the length taken, that is reported as damage);
/// reading again settles both. Real damage persists across the attempts.
pub(crate) fn read_header_live(storage: &dyn Storage) -> Result<(Header, u32)> {
    let mut attempt = 0;
    loop {
        match read_header(storage, true) {
            Err(Error::Truncated { .. } | Error::Corrupted { .. })
                if attempt < PIN_ATTEMPTS_MAX =>
            {
                attempt += 1
            }
            other => return other,
        }
    }
}

/// Reads the header and pins its generation, then checks that the generation is still
/// the newest: a writer that tests for pins after publishing a newer header then sees
/// this one (`format-spec/locking.md`, "Pinning").
pub(crate) fn read_header_pinned(
    storage: &Arc<dyn Storage>,
) -> Result<(Header, u32, GenerationPin)> {
    for _ in 0..PIN_ATTEMPTS_MAX {
        let (header, copy) = read_header_live(storage.as_ref())?;
        let pin = GenerationPin::new(storage, header.generation)?;
        let (again, _) = read_header_live(storage.as_ref())?;
        // The same header twice, not just the same generation: one read overlapping the
        // writer's write of that copy is taken again.
        if again == header {
            return Ok((header, copy, pin));
        }
    }
    Err(Error::Io {
        op: "pin a header generation",
        source: std::io::Error::other(
            "the writer published a newer header on every attempt to pin one",
        ),
    })
}

/// Replays the marker stream from `start` as a live reader must: a first pass reads
/// only the markers, a second (with a fresh view of the file, which then covers every
/// record those markers name) replays exactly those. From the checkpoint (`start.strict`)
/// this is a lenient recovery (damage below the durable bound is reported, not an
/// error); resuming mid-stream, the first page or record that does not verify ends the
/// stream: it may be the writer's write in progress. Nothing is written either way.
pub(crate) fn recover_live(
    storage: &dyn Storage,
    header: &Header,
    start: StreamStart,
    versions: &VersionStore,
    window: ReplayWindow,
) -> Result<Recovered> {
    let markers = recover_from(
        storage,
        header,
        StreamStart {
            replay: false,
            ..start
        },
        versions,
        window,
        true,
    )?;
    let last = markers.tail.next_seq.saturating_sub(1);
    let mut rec = recover_from(
        storage,
        header,
        StreamStart {
            seq_max: last,
            ..start
        },
        versions,
        window,
        true,
    )?;
    // The second pass stops at `last`: damage the first found past it is still damage.
    if rec.damage.is_none() {
        rec.damage = markers.damage;
    }
    Ok(rec)
}

/// A read-only open's recovery that stopped at damage: logged, and refused when the
/// damage lies below the history floor the tree was written with (`floor`, when read):
/// such a tree is right only from the floor on (the log puts right the keys written
/// between its checkpoint and the floor), so no state before the damage can be read
/// exactly.
pub(crate) fn damage_before_reads(rec: &Recovered, floor: Option<u64>, path: &str) -> Result<()> {
    let Some(d) = &rec.damage else {
        return Ok(());
    };
    if floor.is_some_and(|floor| rec.tip < floor) {
        return Err(d.to_error());
    }
    log::warn!(
        "{path}: read-only open: the commit log is damaged; reads see the commits before it: {}",
        d.to_error()
    );
    Ok(())
}

impl Engine {
    /// A live reader's engine: replays the commits written to the marker stream since
    /// the last call and makes them visible. Nothing for a writer's engine.
    pub(crate) fn follow_log(&self) -> Result<()> {
        let mut tail = self.live_tail.lock();
        let Some(t) = *tail else { return Ok(()) };
        // Versions a live snapshot or the history window needs are kept (a reader's
        // window is the file's: every state from the floor its generation's tree keeps).
        let floor = self
            .committer
            .history()
            .floor()
            .min(self.registry.horizon());
        let (header, _) = self.checkpointer.header();
        let rec = recover_live(
            self.storage.as_ref(),
            &header,
            StreamStart::after(&t),
            &self.versions,
            ReplayWindow::from_floor(floor),
        )?;
        // Any of the other process's commits may have changed the catalog.
        if rec.tail.next_seq > t.next_seq {
            self.committer.catalog_changing(rec.tail.next_seq - 1);
        }
        for seq in t.next_seq..rec.tail.next_seq {
            self.registry.mark_ready(seq);
        }
        *tail = Some(rec.tail);
        // Damage the writer's later records prove is never read as the end of what it
        // wrote (the reader would stay at an earlier state without a word); damage this
        // engine's open already reported (`log_damage`) is where it stays.
        match rec.damage {
            Some(d)
                if self
                    .log_damage
                    .as_ref()
                    .is_none_or(|known| known.seq != d.seq) =>
            {
                Err(d.to_error())
            }
            _ => Ok(()),
        }
    }
}

/// How often a live reader's background thread moves an idle handle to the newest
/// header generation (its pin with it).
const IDLE_FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// A read-only database handle that follows a file another process writes.
pub(crate) struct Follower {
    /// One open file description for every generation's engine: its pins are this
    /// handle's.
    storage: Arc<dyn Storage>,
    path: PathBuf,
    config: Config,
    current: Mutex<Arc<Engine>>,
    /// The open file's device and inode.
    file_id: Option<(u64, u64)>,
    idle: Arc<IdleFollow>,
    /// A generation whose open a look refused for damage (below its history floor: no
    /// state of it reads exactly), reported by that look: later looks keep the generation
    /// the handle holds (pinned, so still its own) until a newer one is published,
    /// rather than fail every transaction, each after a whole read-only recovery.
    refused: Mutex<Option<u64>>,
}

/// What the handle shares with its idle-follow thread ([`Follower::start_idle_follow`]).
#[derive(Default)]
struct IdleFollow {
    stop: Mutex<bool>,
    wake: Condvar,
    /// Held by the thread while it holds the handle, for [`Follower::stop_idle_follow`].
    tick: Mutex<()>,
    /// A generation the thread found damaged (or behind the handle): not opened again
    /// by the thread (each try is a whole read-only recovery); the handle's own next
    /// look reports it.
    skip: Mutex<Option<u64>>,
}

impl Follower {
    /// Opens `path` read-only, at its newest header and commit.
    pub(crate) fn open(path: &Path, config: &Config) -> Result<Follower> {
        config.validate()?;
        let file = FileStorage::open_read_only(path)?;
        let file_id = file.file_id().ok();
        let storage: Arc<dyn Storage> = Arc::new(file);
        let engine = Engine::open(Arc::clone(&storage), Some(path.to_path_buf()), config)?;
        Ok(Follower {
            storage,
            path: path.to_path_buf(),
            config: config.clone(),
            current: Mutex::new(engine),
            file_id,
            idle: Arc::default(),
            refused: Mutex::new(None),
        })
    }

    /// Starts the thread (`capsuledb-follow`) that moves the handle to each new header
    /// generation while no transaction begins: the handle's engine pins its generation,
    /// and without it an idle handle (a monitor that reads once an hour) kept the writer
    /// from reusing every page freed since, and from compacting. It holds the handle only
    /// while it looks, never takes a look a transaction's begin is taking, and swaps in
    /// the next generation only when that opens without damage: damage is left for the
    /// handle's own next look to report. Without the thread (it could not start) the
    /// handle works as before and moves at its next transaction.
    pub(crate) fn start_idle_follow(self: &Arc<Self>) {
        let follower = Arc::downgrade(self);
        let idle = Arc::clone(&self.idle);
        let spawned = std::thread::Builder::new()
            .name("capsuledb-follow".into())
            .spawn(move || idle_follow(&idle, &follower));
        if let Err(e) = spawned {
            log::warn!(
                "{}: no idle-follow thread ({e}): the reader moves to newer generations \
                 only when a transaction begins",
                self.path.display()
            );
        }
    }

    /// Stops the idle-follow thread, waiting for a look it is taking: called as the
    /// last handle goes, so that the thread does not hold the handle (and its pins) a
    /// moment past it.
    pub(crate) fn stop_idle_follow(&self) {
        *self.idle.stop.lock() = true;
        self.idle.wake.notify_all();
        drop(self.idle.tick.lock());
    }

    /// Closes the handle: its idle-follow thread stops first, and the engine is closed
    /// under the lock every look takes, so that no look (a `begin` racing the close, or
    /// the thread) swaps in an open engine after it.
    pub(crate) fn close(&self) -> Result<()> {
        self.stop_idle_follow();
        self.current.lock().close()
    }

    /// One look of the idle-follow thread; `false` once the handle is closed.
    fn follow_idle(&self) -> bool {
        let Some(mut current) = self.current.try_lock() else {
            // A transaction's begin is looking.
            return true;
        };
        if current.check_open().is_err() {
            return false;
        }
        if let Err(e) = self.look(&mut current, true) {
            log::debug!("{}: idle follow: {e}", self.path.display());
        }
        true
    }

    /// The open file's device and inode.
    pub(crate) fn file_id(&self) -> Option<(u64, u64)> {
        self.file_id
    }

    /// The path it was opened from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The engine of the generation last looked at.
    pub(crate) fn current(&self) -> Arc<Engine> {
        Arc::clone(&self.current.lock())
    }

    /// The engine of the newest generation that opens without damage, as the idle
    /// thread moves to it: damage and a header gone back are left for the handle's next
    /// transaction to report (a look that reported them here would have that
    /// transaction read the state before them without a word).
    pub(crate) fn newest_quietly(&self) -> Arc<Engine> {
        let mut current = self.current.lock();
        if current.check_open().is_ok() {
            let _ = self.look(&mut current, true);
        }
        Arc::clone(&current)
    }

    /// The engine of the newest generation, with every commit written so far.
    pub(crate) fn latest(&self) -> Result<Arc<Engine>> {
        let mut current = self.current.lock();
        current.check_open()?;
        self.look(&mut current, false)?;
        Ok(Arc::clone(&current))
    }

    /// Moves `current` to the newest generation and commit. With `idle` (the idle-follow
    /// thread's look) it moves only to a new generation that opens without damage, and
    /// leaves everything else (the stream's new commits, damage, a header gone back) for
    /// the handle's own next look, which reports it.
    fn look(&self, current: &mut Arc<Engine>, idle: bool) -> Result<()> {
        let (mut header, mut copy) = read_header_live(self.storage.as_ref())?;
        let (held, _) = current.checkpointer.header();
        // A read that overlapped the writer's publishing of two headers can find the
        // copy it held torn and the other still older: an older header counts only when
        // two reads agree.
        for _ in 0..PIN_ATTEMPTS_MAX {
            if header.generation >= held.generation {
                break;
            }
            let again = read_header_live(self.storage.as_ref())?;
            if again == (header, copy) {
                break;
            }
            (header, copy) = again;
        }
        // Headers only move forward. An older one means the newer copy no longer
        // verifies (damaged at rest) and the other copy was taken: its generation's
        // pages may be the writer's again, so it is never read. The error names the
        // damaged copy's page (the copy not taken).
        let went_back = |generation: u64, taken: u32| {
            Error::corrupted(
                header_copy_page(1 - taken.min(1) as usize, held.page_size),
                format!(
                    "the newest valid header copy is generation {generation}, older than \
                     generation {} this reader already read: the newer copy is damaged",
                    held.generation
                ),
            )
        };
        if header.generation < held.generation {
            return Err(went_back(header.generation, copy));
        }
        if idle
            && (header.generation == held.generation
                || *self.idle.skip.lock() == Some(header.generation))
        {
            return Ok(());
        }
        if header.generation != held.generation && *self.refused.lock() == Some(header.generation) {
            return Ok(());
        }
        // A moved generation, or damage the resumed walk proves, opens the generation
        // again: a read-only recovery from the checkpoint rebuilds what redundancy can (in
        // memory) and reports the rest in `log_damage`, as an open does. Proven damage
        // fails this look once; later looks read the commits before it.
        let proven = header.generation == held.generation
            && match current.follow_log() {
                Ok(()) => false,
                Err(Error::LogCorrupted { .. }) => true,
                Err(e) => return Err(e),
            };
        if header.generation != held.generation || proven {
            let next = Engine::open(
                Arc::clone(&self.storage),
                Some(self.path.clone()),
                &self.config,
            )
            .inspect_err(|e| {
                // Refused for damage (below the history floor, say): the idle thread
                // leaves the generation to the handle's next look, not to another whole
                // recovery every tick; that look reports it, and later ones keep the
                // generation held. Any other failure (an I/O error) is tried again.
                if matches!(e, Error::Corrupted { .. } | Error::LogCorrupted { .. }) {
                    if idle {
                        *self.idle.skip.lock() = Some(header.generation);
                    } else {
                        *self.refused.lock() = Some(header.generation);
                    }
                }
            })?;
            let (next_header, next_copy) = next.checkpointer.header();
            let next_generation = next_header.generation;
            if next_generation < held.generation {
                if idle {
                    *self.idle.skip.lock() = Some(header.generation);
                }
                return Err(went_back(next_generation, next_copy));
            }
            // Damage the new generation's recovery found (below the durable bound: never
            // the writer's write in progress), or a log ending before commits this
            // reader already read, fails this look once, whether or not the generation
            // moved: the reader is never moved back to an earlier state without a word.
            let before = current.registry.visible();
            let after = next.registry.visible();
            let damage = next.log_damage.clone();
            if idle && (damage.is_some() || after < before) {
                *self.idle.skip.lock() = Some(header.generation);
                return Ok(());
            }
            *current = next;
            let error = match damage {
                Some(d) => Some(d.to_error()),
                None if after < before => Some(Error::corrupted(
                    0,
                    format!(
                        "generation {next_generation}'s log ends at commit {after}, before \
                         commit {before} this reader already read"
                    ),
                )),
                None => None,
            };
            if let Some(e) = error {
                log::error!(
                    "{}: a live reader stopped at damage to the commit log: {e}",
                    self.path.display(),
                );
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // Possibly on the idle-follow thread itself: only tells it to stop.
        *self.idle.stop.lock() = true;
        self.idle.wake.notify_all();
    }
}

/// The idle-follow thread's loop ([`Follower::start_idle_follow`]).
fn idle_follow(idle: &IdleFollow, follower: &Weak<Follower>) {
    loop {
        {
            let mut stop = idle.stop.lock();
            if !*stop {
                idle.wake.wait_for(&mut stop, IDLE_FOLLOW_INTERVAL);
            }
            if *stop {
                return;
            }
        }
        let _tick = idle.tick.lock();
        if *idle.stop.lock() {
            return;
        }
        let Some(f) = follower.upgrade() else {
            return;
        };
        if !f.follow_idle() {
            return;
        }
    }
}
