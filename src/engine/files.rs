//! The files this process has open: one engine per file, shared by every `Database`
//! handle that opens it, and the wait for this process's own dying engine to release a
//! file's lock.

use super::Engine;
use super::config::Config;
use crate::error::{Error, Result};
use crate::storage::FileStorage;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Engines open in this process, by `(device, inode)`, so that opening the same file
/// twice shares one engine instead of failing on our own lock; and the files whose open
/// (its recovery) is under way, outside this lock: an open of one of them waits for it
/// and shares its engine, an open of any other file does not wait.
type FileId = (u64, u64);

#[derive(Default)]
struct OpenFiles {
    engines: HashMap<FileId, Weak<Engine>>,
    opening: HashSet<FileId>,
}

static OPEN_FILES: Mutex<Option<OpenFiles>> = Mutex::new(None);
/// Signalled when an open under way ends (`OpenFiles::opening` loses a file).
static OPEN_ENDED: parking_lot::Condvar = parking_lot::Condvar::new();

/// Marks a file's open as under way; dropped (ending it, waking the opens waiting for
/// it) once the open registered its engine, or failed, or panicked.
struct Opening(FileId);

impl Drop for Opening {
    fn drop(&mut self) {
        if let Some(files) = OPEN_FILES.lock().as_mut() {
            files.opening.remove(&self.0);
        }
        OPEN_ENDED.notify_all();
    }
}

/// Called with the path just before an engine is opened (a test holds an open there).
#[cfg(test)]
#[expect(clippy::type_complexity, reason = "a test's hook")]
static BEFORE_ENGINE_OPEN: Mutex<Option<Arc<dyn Fn(&Path) + Send + Sync>>> = Mutex::new(None);

/// Files whose lock an engine of this process still holds, and the signal that one was
/// released: an open that meets our own lock while the engine holding it is being
/// dropped (on another thread) waits for it instead of reporting `Locked`.
/// Counted per file: a dying engine's notice may still stand when a new engine of the
/// same file (which took the lock the dying one had just released) adds its own.
static HELD: Mutex<Option<HashMap<FileId, usize>>> = Mutex::new(None);
static HELD_RELEASED: parking_lot::Condvar = parking_lot::Condvar::new();

/// How long an open waits for this process's own dying engine to release the file.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an open tries again a lock no engine of this process holds, before it says
/// `Locked`. A child process forked (by any thread of this process, or of the process
/// holding the file) holds the lock from its fork until its exec closes the descriptor it
/// inherited: without this, an open right after a close met `Locked` in 4 of 10 tries
/// while another thread started child processes.
const FORKED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Marks a file's lock as held by an engine of this process; dropped as the engine's
/// last field, after its storage.
pub(crate) struct LockNotice(FileId);

impl LockNotice {
    fn new(id: FileId) -> LockNotice {
        *HELD
            .lock()
            .get_or_insert_with(Default::default)
            .entry(id)
            .or_default() += 1;
        LockNotice(id)
    }

    /// The open file's device and inode.
    pub(crate) fn file_id(&self) -> FileId {
        self.0
    }
}

impl Drop for LockNotice {
    fn drop(&mut self) {
        if let Some(held) = HELD.lock().as_mut()
            && let Some(count) = held.get_mut(&self.0)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.0);
            }
        }
        HELD_RELEASED.notify_all();
    }
}

/// One try at opening and locking the file.
fn open_file(path: &Path, config: &Config) -> Result<FileStorage> {
    if config.read_only {
        FileStorage::open_read_only(path)
    } else {
        FileStorage::open(path, true)
    }
}

/// After an open met `Locked` at `now`: whether to try again (after waiting here, with
/// the registry's lock released, so that opens of other files go on meanwhile). While an
/// engine of this process that is being dropped holds the file, until it releases it
/// (at most [`RELEASE_WAIT`] from the open's `start`); otherwise (another process, or a
/// child process forked a moment ago until its exec, or this process's dying engine
/// released it between the refused open and this look: its lock goes before its notice)
/// for [`FORKED_LOCK_WAIT`] from the first such refusal, `retry_until`.
fn wait_to_retry(
    path: &Path,
    start: std::time::Instant,
    retry_until: &mut Option<std::time::Instant>,
) -> bool {
    let Some(id) = file_id_of(path) else {
        return false;
    };
    let mut held = HELD.lock();
    if held.as_ref().is_some_and(|h| h.contains_key(&id)) {
        return !HELD_RELEASED
            .wait_until(&mut held, start + RELEASE_WAIT)
            .timed_out();
    }
    drop(held);
    let now = std::time::Instant::now();
    if now >= *retry_until.get_or_insert(now + FORKED_LOCK_WAIT) {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_millis(1));
    true
}

pub(crate) fn file_id_of(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// Opens the database file at `path`, or hands out the engine this process already has
/// open for it, counted as one more handle (`Engine::handles`): the caller's owner
/// takes that count over.
pub(crate) fn open_path(path: &Path, config: &Config) -> Result<Arc<Engine>> {
    config.validate()?;
    let start = std::time::Instant::now();
    let mut retry_until = None;
    let (mut open_files, storage) = loop {
        let open_files = OPEN_FILES.lock();
        match open_registered(path, config, open_files)? {
            Ok(engine) => return Ok(engine),
            // Under the lock: the file is created or opened and locked, and marked as
            // opening (below), before any other open of this process looks for it.
            Err(open_files) => match open_file(path, config) {
                Err(locked @ Error::Locked { .. }) => {
                    // Waited for without the lock: opens of other files go on.
                    drop(open_files);
                    if !wait_to_retry(path, start, &mut retry_until) {
                        return Err(locked);
                    }
                }
                opened => break (open_files, opened?),
            },
        }
    };
    let id = storage.file_id()?;
    open_files
        .get_or_insert_with(OpenFiles::default)
        .opening
        .insert(id);
    let opening = Opening(id);
    drop(open_files);
    #[cfg(test)]
    {
        let hook = BEFORE_ENGINE_OPEN.lock().clone();
        if let Some(hook) = hook {
            hook(path);
        }
    }
    let engine = Engine::open(Arc::new(storage), Some(path.to_path_buf()), config)?;
    *engine.lock_notice.lock() = Some(LockNotice::new(id));
    engine.handles.fetch_add(1, Ordering::AcqRel);
    OPEN_FILES
        .lock()
        .get_or_insert_with(OpenFiles::default)
        .engines
        .insert(id, Arc::downgrade(&engine));
    // Registered first: a waiter woken by the end of the opening finds the engine.
    drop(opening);
    Ok(engine)
}

type Registry = parking_lot::MutexGuard<'static, Option<OpenFiles>>;

/// How long after another thread's `close` is done an open waits for the closed
/// engine's other handles (another thread's open of the same file, ending its work) to
/// go before it takes one still counted for a kept clone ([`Error::Closed`]). Long
/// enough for a thread descheduled on a loaded machine; an application that keeps a
/// clone of a closed handle pays it once per open.
const CLOSE_HANDLE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The engine this process has open for `path`, counted as one more handle (after
/// waiting for an open of it under way), or the registry's lock back when there is none
/// to share.
fn open_registered(
    path: &Path,
    config: &Config,
    mut open_files: Registry,
) -> Result<std::result::Result<Arc<Engine>, Registry>> {
    // When a closed engine's close was first seen done with a handle still counted.
    let mut done_seen: Option<std::time::Instant> = None;
    loop {
        let files = open_files.get_or_insert_with(OpenFiles::default);
        let id = file_id_of(path);
        if id.is_some_and(|id| files.opening.contains(&id)) {
            // Another thread is opening this file (recovering it, perhaps for a while):
            // its engine is the one to share, or its failure leaves the open to this one.
            OPEN_ENDED.wait(&mut open_files);
            continue;
        }
        files.engines.retain(|_, engine| engine.strong_count() > 0);
        let Some(engine) = id.and_then(|id| files.engines.get(&id)?.upgrade()) else {
            return Ok(Err(open_files));
        };
        // Poisoned, with no handle left (only a background thread, a checkpoint's
        // fold say, still holds it): the open the error asks for must give a fresh
        // engine, not this one again. Closed here, it goes as a closed one does.
        if engine.handles.load(Ordering::Acquire) == 0 && engine.committer.is_poisoned() {
            engine.closing.store(true, Ordering::SeqCst);
        }
        if engine.closing.load(Ordering::Acquire) {
            if engine.handles.load(Ordering::Acquire) > 0 {
                // `close` was called on another handle. While it runs (the closer's
                // own handle goes before it is marked done), and a moment after (other
                // threads' handles of the shared engine end their work), the open
                // waits to open the file afresh; a handle counted after that is a
                // clone some thread keeps.
                let done = engine.close_done.load(Ordering::Acquire);
                let seen = done.then(|| *done_seen.get_or_insert_with(std::time::Instant::now));
                if seen.is_none_or(|at| at.elapsed() < CLOSE_HANDLE_GRACE) {
                    drop(engine);
                    OPEN_ENDED.wait_for(&mut open_files, std::time::Duration::from_millis(1));
                    continue;
                }
                return Err(Error::Closed);
            }
            // Closed, and no handle is left: only a background thread still holds the
            // engine, for a moment. The open waits for it to go (`wait_to_retry` waits
            // for the lock it releases) and opens the file afresh, as after any close.
            drop(engine);
        } else if engine.read_only != config.read_only {
            // Not reached by the public API (a read-only open is a live reader,
            // `Follower`, never registered here); an engine is shared only with an open
            // of its own kind.
            return Err(Error::Locked {
                path: path.to_path_buf(),
            });
        } else {
            engine.handles.fetch_add(1, Ordering::AcqRel);
            // Logged without the registry's lock: a logger may open a database.
            drop(open_files);
            if engine.config.differs_at_runtime(config) {
                // One engine per file: the first open's options hold.
                log::warn!(
                    "{}: already open in this process; this open shares that engine and \
                     its options, not the ones it was given",
                    path.display()
                );
            }
            return Ok(Ok(engine));
        }
        return Ok(Err(open_files));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Opens and closes `other` on a thread of its own while another open waits: it
    /// ends without waiting for that one (which ends only when the test lets it).
    fn opens_meanwhile(other: &Path, config: &Config) {
        let (done, done_rx) = mpsc::channel();
        let (other, config) = (other.to_path_buf(), config.clone());
        std::thread::spawn(move || {
            let _ = done.send(open_path(&other, &config).map(|e| e.close()));
        });
        let opened = done_rx.recv_timeout(Duration::from_secs(60));
        assert!(
            matches!(opened, Ok(Ok(_))),
            "an open of another file waited for the one under way: {opened:?}"
        );
    }

    /// An open meeting its file locked by this process's own dying engine waits for it
    /// (up to 30 s), as one meeting a lock held elsewhere tries again for a moment: both
    /// waited under the registry's lock, and every other open of the process waited too.
    #[test]
    fn an_open_waiting_for_a_lock_holds_up_no_other_open() {
        let dir = tempfile::tempdir().unwrap();
        let (held, other) = (dir.path().join("held.db"), dir.path().join("other.db"));
        for p in [&held, &other] {
            open_path(p, &Config::default()).unwrap().close().unwrap();
        }
        // A dying engine of this process: the file's lock, and its notice.
        let storage = FileStorage::open(&held, true).unwrap();
        let notice = LockNotice::new(storage.file_id().unwrap());
        let config = Config::default();
        let waiting = {
            let (held, config) = (held.clone(), config.clone());
            std::thread::spawn(move || open_path(&held, &config))
        };
        std::thread::sleep(Duration::from_millis(200));
        opens_meanwhile(&other, &config);
        // Without the lock released, the other open ended only once this one had given
        // up (after 30 s).
        assert!(
            !waiting.is_finished(),
            "the open of another file waited for this one to give up"
        );
        // The engine goes: its lock, then its notice.
        drop(storage);
        drop(notice);
        waiting.join().unwrap().unwrap().close().unwrap();
    }

    /// An open whose recovery takes long (held here) no longer holds up the opens of
    /// other files (they waited for it under one lock); a second open of the same file
    /// waits for it and shares its engine.
    #[test]
    fn a_long_open_holds_up_only_opens_of_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let (slow, other) = (dir.path().join("slow.db"), dir.path().join("other.db"));
        for p in [&slow, &other] {
            open_path(p, &Config::default()).unwrap().close().unwrap();
        }
        let (entered, entered_rx) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let (entered, release_rx) = (Mutex::new(entered), Mutex::new(release_rx));
        let held = slow.clone();
        *BEFORE_ENGINE_OPEN.lock() = Some(Arc::new(move |p: &Path| {
            if p == held {
                let _ = entered.lock().send(());
                let _ = release_rx.lock().recv();
            }
        }));
        let config = Config::default();
        let first = {
            let (slow, config) = (slow.clone(), config.clone());
            std::thread::spawn(move || open_path(&slow, &config).unwrap())
        };
        entered_rx.recv().unwrap();
        opens_meanwhile(&other, &config);
        let second = {
            let (slow, config) = (slow.clone(), config.clone());
            std::thread::spawn(move || open_path(&slow, &config).unwrap())
        };
        release.send(()).unwrap();
        let (a, b) = (first.join().unwrap(), second.join().unwrap());
        *BEFORE_ENGINE_OPEN.lock() = None;
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second open shares the first one's engine"
        );
        assert_eq!(a.handles.load(Ordering::Acquire), 2);
        a.close().unwrap();
    }
}
