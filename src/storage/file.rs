//! The real file: `memmap2` for reads, positioned writes, `fdatasync`, `flock`.

use super::{Storage, View};
use crate::error::{Error, Result};
use memmap2::{Mmap, MmapOptions};
use parking_lot::RwLock;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A database file on disk, exclusively locked for the life of this value (a
/// read-only handle, [`FileStorage::open_read_only`], takes no lock).
///
/// Reads go through a shared memory mapping of the whole file. When the file grows,
/// the next [`Storage::view`] maps it again; views taken earlier keep their old mapping
/// alive, so a reader never sees its bytes disappear while the file grows.
pub struct FileStorage {
    file: File,
    path: PathBuf,
    /// The file's length as this process last set or extended it.
    len: AtomicU64,
    map: RwLock<Option<MapState>>,
    /// Opened with [`FileStorage::open_read_only`]: every write fails.
    read_only: bool,
    /// Pins held through this open file description, by generation. A pin is one
    /// byte's lock on the description, not counted by the kernel: two engines of one
    /// handle pinning the same generation (a live reader opening its generation again)
    /// share it, and it is unlocked when the last lets go.
    pins: parking_lot::Mutex<std::collections::BTreeMap<u64, usize>>,
    /// `fdatasync` calls that succeeded.
    syncs: AtomicU64,
    /// Set when a sync (or a write-behind's wait) of this file failed. The kernel
    /// reports a failed writeback once per open file and may have dropped the data:
    /// every later sync fails too, so no commit is acknowledged durable on top of
    /// writes that may be lost, whichever thread's sync consumed the error.
    sync_failed: std::sync::atomic::AtomicBool,
    /// Held across a sync's look at `sync_failed`, its `fdatasync` and its store of the
    /// flag (and across a write-behind's wait): the kernel reports a failed writeback
    /// to one of two concurrent waits on this file description, and the other, finding
    /// the flag not yet set, would have acknowledged commits over lost writes.
    sync_lock: parking_lot::Mutex<()>,
}

struct MapState {
    view: View,
    mapped_len: u64,
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage")
            .field("path", &self.path)
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl FileStorage {
    /// Opens (and with `create`, creates) the file at `path` and takes an exclusive,
    /// non-blocking `flock` on it. A file locked by another process (or by another
    /// open handle in this one) gives [`Error::Locked`].
    pub fn open(path: &Path, create: bool) -> Result<FileStorage> {
        FileStorage::open_mode(path, false, create)
    }

    /// Opens the existing file at `path` without write access and without a `flock`:
    /// a live reader, beside any other readers and one writer. Its length follows the
    /// file's (another process may grow it). Every write gives
    /// [`Error::ReadOnlyDatabase`].
    pub fn open_read_only(path: &Path) -> Result<FileStorage> {
        FileStorage::open_mode(path, true, false)
    }

    fn open_mode(path: &Path, read_only: bool, create: bool) -> Result<FileStorage> {
        if path.is_dir() {
            return Err(Error::InvalidPath {
                path: path.to_path_buf(),
                reason: "is a directory",
            });
        }
        // A FIFO would block the open until a writer came; a device is no database.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(Error::InvalidPath {
                path: path.to_path_buf(),
                reason: "is not a regular file",
            });
        }
        let mut tries = 0;
        let file = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(!read_only)
                .create(create && !read_only)
                .open(path)
                .map_err(|source| Error::Io {
                    op: "open the database file",
                    source,
                })?;
            // The writer's exclusive `flock`; a reader takes none, so it never conflicts
            // with the writer and pins generations instead (`format-spec/locking.md`).
            if read_only {
                break file;
            }
            lock(&file, path, libc::LOCK_EX)?;
            // A file renamed over the path between the open and the lock (a backup's
            // overwrite takes the lock of the file it replaces, which this one did not
            // hold yet): locked, this one has no name, and every commit to it would be
            // lost with it. The file at the path is opened again.
            tries += 1;
            if still_at(&file, path) || tries >= 16 {
                break file;
            }
        };
        let len = file
            .metadata()
            .map_err(io_err("stat the database file"))?
            .len();
        Ok(FileStorage {
            file,
            path: path.to_path_buf(),
            len: AtomicU64::new(len),
            map: RwLock::new(None),
            read_only,
            pins: parking_lot::Mutex::new(std::collections::BTreeMap::new()),
            syncs: AtomicU64::new(0),
            sync_failed: std::sync::atomic::AtomicBool::new(false),
            sync_lock: parking_lot::Mutex::new(()),
        })
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnlyDatabase);
        }
        Ok(())
    }

    /// The path this storage was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `(device, inode)` of the open file, identifying it across different paths.
    pub fn file_id(&self) -> Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = self
            .file
            .metadata()
            .map_err(io_err("stat the database file"))?;
        Ok((m.dev(), m.ino()))
    }
}

fn io_err(op: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| Error::Io { op, source }
}

fn lock(file: &File, path: &Path, mode: libc::c_int) -> Result<()> {
    // SAFETY: `flock` takes a valid, open descriptor owned by `file` and no pointers.
    let rc = unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Err(Error::Locked {
            path: path.to_path_buf(),
        })
    } else {
        Err(Error::Io {
            op: "lock the database file",
            source: err,
        })
    }
}

impl FileStorage {
    /// The file's length: as this process set it, or for a reader, as it is now.
    fn current_len(&self) -> Result<u64> {
        if self.read_only {
            let len = self
                .file
                .metadata()
                .map_err(io_err("stat the database file"))?
                .len();
            self.len.store(len, Ordering::Release);
            return Ok(len);
        }
        Ok(self.len.load(Ordering::Acquire))
    }
}

impl Storage for FileStorage {
    fn len(&self) -> Result<u64> {
        self.current_len()
    }

    fn pin_generation(&self, generation: u64) -> Result<()> {
        let mut pins = self.pins.lock();
        match pins.get_mut(&generation) {
            Some(held) => *held += 1,
            None => {
                super::locks::pin(&self.file, generation)
                    .map_err(io_err("pin a header generation"))?;
                pins.insert(generation, 1);
            }
        }
        Ok(())
    }

    fn unpin_generation(&self, generation: u64) {
        let mut pins = self.pins.lock();
        let Some(held) = pins.get_mut(&generation) else {
            return;
        };
        *held = held.saturating_sub(1);
        if *held == 0 {
            pins.remove(&generation);
            // A failed unlock leaves the pin until the file is closed: the writer only
            // defers page reuse longer.
            let _ = super::locks::unpin(&self.file, generation);
        }
    }

    fn pinned_below(&self, generation: u64) -> Result<bool> {
        super::locks::pinned_below(&self.file, generation).map_err(io_err("test for readers' pins"))
    }

    fn highest_pin_in(&self, from: u64, len: u64) -> Result<Option<u64>> {
        super::locks::highest_pin_in(&self.file, from, len)
            .map_err(io_err("test for readers' pins"))
    }

    fn cut_len(&self, len: u64) -> Result<bool> {
        // Pins are kept out while the length changes, so no reader pins between the
        // test and the cut and then reads a page the cut removed.
        super::locks::without_pins(&self.file, || self.set_len(len))
            .map_err(io_err("keep readers' pins out"))?
            .transpose()
            .map(|cut| cut.is_some())
    }

    fn view(&self) -> Result<View> {
        let len = self.current_len()?;
        if let Some(state) = self.map.read().as_ref().filter(|s| s.mapped_len == len) {
            return Ok(state.view.clone());
        }
        let mut map = self.map.write();
        if let Some(state) = map.as_ref().filter(|s| s.mapped_len == len) {
            return Ok(state.view.clone());
        }
        let view = if len == 0 {
            View::empty()
        } else {
            let map_len = usize::try_from(len).map_err(|_| Error::InvalidPath {
                path: self.path.clone(),
                reason: "file is larger than the address space",
            })?;
            // SAFETY: a writer holds the exclusive `flock`, so no other writer changes
            // the file. Within the writer's process the engine never writes a range a
            // live view may read (copy-on-write pages), but for the header copies and
            // the marker stream's pages, which a live reader (of this process or
            // another) reads while they may change, as a read-only open's recovery
            // reads the free and log pages it searches: it trusts them only through
            // checksums over a copy (a header copy and a log page header are checked
            // copied, a marker decoded from its copy, `header_report` reads until two
            // reads agree, a stop in the marker stream is read again), so a changing
            // byte costs a retry or a failed check, never a wrong value. It cuts the file
            // only below pages it holds free: a view kept longer (a read pin, a lent
            // value) may span the cut length, but the tree it reads reaches no freed
            // page (freed pages wait for its guard), so nothing reads past the cut. A
            // reader's views are protected by its generation pins: the writer reuses
            // no page a pinned generation reaches and cuts the file only while no
            // generation is pinned (`format-spec/locking.md`); every view re-reads the
            // length after the pin.
            let mmap: Mmap = unsafe { MmapOptions::new().len(map_len).map(&self.file) }
                .map_err(io_err("map the database file"))?;
            View::mapped(Arc::new(mmap))
        };
        *map = Some(MapState {
            view: view.clone(),
            mapped_len: len,
        });
        Ok(view)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.writable()?;
        self.file
            .write_all_at(data, offset)
            .map_err(io_err("write to the database file"))?;
        let end = offset.saturating_add(data.len() as u64);
        self.len.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.writable()?;
        let _one_at_a_time = self.sync_lock.lock();
        if self.sync_failed.load(Ordering::Acquire) {
            return Err(Error::Io {
                op: "sync the database file",
                source: io::Error::other(
                    "an earlier sync of this file failed: data written before it may not \
                     be on disk (reopen the database to recover what is)",
                ),
            });
        }
        if let Err(e) = sync_data(&self.file) {
            // Every failure: an `fdatasync` this file does not support fails every time
            // anyway, and a writeback error may come back as any code (a FUSE daemon's
            // own, EINTR included; EOPNOTSUPP from the block layer), reported once.
            self.sync_failed.store(true, Ordering::Release);
            return Err(Error::Io {
                op: "sync the database file",
                source: e,
            });
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn sync_name(&self) -> Result<()> {
        self.writable()?;
        // The file's syncs make its bytes durable, not its name: without this a power
        // cut could lose a new database, its durable commits with it. A directory this
        // process may not read cannot be synced, nor one on a file system without
        // directory syncs (EINVAL, EOPNOTSUPP): the open goes on, said in the log.
        // The directory holding the file itself: a path through a symbolic link names
        // the link's directory, which holds no entry of the file.
        let real = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        sync_parent_if_possible(&real, "sync the database file's directory")
    }

    fn write_behind(&self) {
        // Only a hint: skipped while a sync runs (which writes everything back anyway).
        let Some(_one_at_a_time) = self.sync_lock.try_lock() else {
            return;
        };
        if self.writable().is_ok() && write_behind(&self.file).is_err_and(|e| loses_writes(&e)) {
            // Its wait reports (and clears) a failed writeback: the next sync fails.
            self.sync_failed.store(true, Ordering::Release);
        }
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.writable()?;
        self.file
            .set_len(len)
            .map_err(io_err("resize the database file"))?;
        self.len.store(len, Ordering::Release);
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn sync_data(file: &File) -> io::Result<()> {
    // SAFETY: `fdatasync` takes a valid, open descriptor owned by `file`.
    let rc = unsafe { libc::fdatasync(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_data(file: &File) -> io::Result<()> {
    file.sync_data()
}

#[cfg(target_os = "linux")]
fn write_behind(file: &File) -> io::Result<()> {
    // Waits for writeback in flight, then starts it for everything dirty, without
    // waiting for that: two calls. The wait reports a failed writeback (and the kernel
    // then clears it): its error is the caller's, which makes every later sync fail.
    // The start's is not: it fails without losing anything (no memory for the request
    // under pressure; the pages stay dirty for the next sync).
    let range = |flags| {
        // SAFETY: `sync_file_range` takes a valid, open descriptor owned by `file`;
        // offset 0 and length 0 name the whole file.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    range(libc::SYNC_FILE_RANGE_WAIT_BEFORE)?;
    let _ = range(libc::SYNC_FILE_RANGE_WRITE);
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn write_behind(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Whether a failed write-behind wait may have lost writes. The kernel reports a failed
/// writeback (once, then forgets it) with whatever error the device or file system gave:
/// EIO, ENOSPC and EDQUOT, but also ENODATA, ETIMEDOUT, ENOLINK, EREMOTEIO, EILSEQ,
/// ENOMEM, EOPNOTSUPP and EINVAL from the block layer, and any code at all from a FUSE
/// daemon. The call's own checks cannot fail (the whole file, a valid flag, a regular
/// file), so every failure counts but ENOSYS, the system refusing the call before any
/// wait (a seccomp filter). (A failed `fdatasync` counts whatever its code.)
fn loses_writes(e: &io::Error) -> bool {
    e.raw_os_error() != Some(libc::ENOSYS)
}

/// Syncs the directory that holds `path`, making a name created or renamed there
/// durable; `op` says what for in an error.
pub(crate) fn sync_parent(path: &Path, op: &'static str) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io { op, source })
}

/// [`sync_parent`], going on (said in the log) where the directory cannot be synced:
/// one this process may not read, or on a file system without directory syncs
/// (EINVAL, EOPNOTSUPP). The caller has already placed its file under its name.
pub(crate) fn sync_parent_if_possible(path: &Path, op: &'static str) -> Result<()> {
    match sync_parent(path, op) {
        Err(Error::Io { source, .. }) if dir_sync_unsupported(&source) => {
            log::warn!(
                "{}: its directory cannot be synced ({source}): a power cut may lose a \
                 newly created file's name",
                path.display()
            );
            Ok(())
        }
        other => other,
    }
}

/// Whether a directory's sync failed because it cannot be synced at all (a directory
/// this process may not read, or a file system without directory syncs: EINVAL,
/// EOPNOTSUPP), not because the disk failed: the file's name is then left to the file
/// system, as the library's own open and backup do.
pub fn dir_sync_unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
        || matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP))
}

/// Creates the empty file `path` (it must not exist) with the permission bits of the
/// file at `like`, and its owner's read and write (a copy is written before it takes
/// `like`'s bits whole, [`set_mode`]); returns `like`'s bits. A copy of a database
/// readable by its owner alone is not made readable by everyone (a new file's mode is
/// `0666` less the umask).
pub(crate) fn create_like(path: &Path, like: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(like)?.permissions().mode() & 0o7777;
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode | 0o600))?;
    Ok(mode)
}

/// Gives the file at `path` the permission bits `mode`.
pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Renames `from` over `to`, unless `to` is a database a writer has open (holds its
/// `flock`): the rename would take the name from the live file, and the writer's later
/// commits, acknowledged, would go to a file no name reaches. The lock is held across
/// the rename, so a writer opening `to` meanwhile is refused (`Error::Locked`) rather
/// than left on the replaced file; a live reader (it takes no lock) reads on in the file
/// it opened. Only a regular file at `to` is locked (a FIFO's open would block, and a
/// symbolic link is replaced, not the file it names); one this process cannot open is
/// left to the rename to judge.
pub(crate) fn rename_over_unlocked(from: &Path, to: &Path, op: &'static str) -> Result<()> {
    let regular = std::fs::symlink_metadata(to).is_ok_and(|m| m.is_file());
    let held = match regular.then(|| File::open(to)) {
        Some(Ok(file)) => {
            lock(&file, to, libc::LOCK_EX)?;
            Some(file)
        }
        _ => None,
    };
    std::fs::rename(from, to).map_err(|source| Error::Io { op, source })?;
    drop(held);
    Ok(())
}

/// Gives the file at `from` the name `to`, never replacing a file named `to`: an error
/// of kind `AlreadyExists` if one is there. A hard link first (then `from` is removed);
/// on a file system without hard links (vfat, exFAT, many network and FUSE mounts),
/// `renameat2` with `RENAME_NOREPLACE`; where that is not supported either, the name is
/// claimed by an exclusive create and `from` renamed over the claim.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            if let Err(e) = std::fs::remove_file(from) {
                // In place under `to`; only the temporary name stays behind.
                log::warn!(
                    "{} is in place, but its temporary name {} could not be removed: {e}",
                    to.display(),
                    from.display()
                );
            }
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    let path = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (f, t) = (path(from)?, path(to)?);
    // SAFETY: two NUL-terminated paths that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(to)?;
            // The empty claim must not stay behind when the rename fails: a database
            // opened there would be created afresh, empty.
            std::fs::rename(from, to).inspect_err(|_| {
                let _ = std::fs::remove_file(to);
            })
        }
        _ => Err(e),
    }
}

/// Whether `file` is the file `path` names now (same device and inode).
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name that exists is never replaced; a free one is taken and the old one goes.
    #[test]
    fn rename_no_replace_takes_only_a_free_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"new").unwrap();
        std::fs::write(&b, b"kept").unwrap();
        let e = rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"kept");
        std::fs::remove_file(&b).unwrap();
        rename_no_replace(&a, &b).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"new");
        assert!(!a.exists());
    }

    #[test]
    fn after_a_failed_sync_every_later_sync_fails() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStorage::open(&dir.path().join("f.db"), true).unwrap();
        s.write_at(0, &[1u8; 4096]).unwrap();
        s.sync().unwrap();
        // What `sync` records when fdatasync (or a write-behind's wait) fails: the
        // kernel reported the lost writeback once, to whichever call came first.
        s.sync_failed.store(true, Ordering::Release);
        s.write_at(0, &[2u8; 4096]).unwrap();
        let e = s.sync().unwrap_err();
        assert!(
            e.to_string()
                .contains("an earlier sync of this file failed"),
            "{e}"
        );
        assert!(s.sync().is_err());
    }

    /// A failed writeback comes back as the device's own error, not only EIO: each of
    /// these made the next sync succeed over the lost writes (only EIO, ENOSPC and
    /// EDQUOT counted).
    #[test]
    #[cfg(target_os = "linux")]
    fn every_writeback_error_makes_later_syncs_fail() {
        let lost = [
            libc::EIO,
            libc::ENOSPC,
            libc::EDQUOT,
            libc::ENODATA,
            libc::ETIMEDOUT,
            libc::ENOLINK,
            libc::EREMOTEIO,
            libc::EILSEQ,
            libc::ENODEV,
            libc::ENOMEM,
            libc::EAGAIN,
        ];
        for e in lost {
            assert!(loses_writes(&io::Error::from_raw_os_error(e)), "{e}");
        }
        assert!(loses_writes(&io::Error::other("no code")));
        // The block layer's EOPNOTSUPP and EINVAL, a FUSE daemon's EINTR: each was
        // taken for a call refused before any wait, and the next sync succeeded.
        for e in [libc::EOPNOTSUPP, libc::EINVAL, libc::EINTR, libc::ESPIPE] {
            assert!(loses_writes(&io::Error::from_raw_os_error(e)), "{e}");
        }
        // Refused before any wait (a seccomp filter): nothing reported, nothing lost.
        assert!(!loses_writes(&io::Error::from_raw_os_error(libc::ENOSYS)));
    }

    #[test]
    fn view_sees_writes_and_old_views_survive_growth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let s = FileStorage::open(&path, true).unwrap();
        assert_eq!(s.len().unwrap(), 0);
        assert_eq!(s.view().unwrap().len(), 0);
        s.set_len(4096).unwrap();
        s.write_at(10, b"hello").unwrap();
        let v1 = s.view().unwrap();
        assert_eq!(v1.get(10, 5).unwrap(), b"hello");
        s.set_len(1 << 20).unwrap();
        s.write_at(1 << 19, b"far").unwrap();
        let v2 = s.view().unwrap();
        assert_eq!(v2.len(), 1 << 20);
        assert_eq!(v2.get(1 << 19, 3).unwrap(), b"far");
        // The old view still reads its bytes after the remap.
        assert_eq!(v1.len(), 4096);
        assert_eq!(v1.get(10, 5).unwrap(), b"hello");
        assert!(v1.get(4094, 5).is_none());
        s.sync().unwrap();
    }

    /// Two pins of one generation through one handle (a live reader opening its
    /// generation again) hold it until both are let go.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_generation_pinned_twice_stays_pinned_until_both_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let writer = FileStorage::open(&path, true).unwrap();
        writer.set_len(4096).unwrap();
        let reader = FileStorage::open_read_only(&path).unwrap();
        reader.pin_generation(5).unwrap();
        reader.pin_generation(5).unwrap();
        assert!(writer.pinned_below(6).unwrap());
        reader.unpin_generation(5);
        assert!(writer.pinned_below(6).unwrap(), "one pin is still held");
        reader.unpin_generation(5);
        assert!(!writer.pinned_below(6).unwrap());
        reader.unpin_generation(5);
        assert!(
            !writer.pinned_below(6).unwrap(),
            "an extra unpin is harmless"
        );
    }

    #[test]
    fn second_open_in_same_process_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let _a = FileStorage::open(&path, true).unwrap();
        match FileStorage::open(&path, true) {
            Err(Error::Locked { .. }) => {}
            Err(e) => panic!("expected Locked, got {e}"),
            Ok(_) => panic!("expected Locked, got a second handle"),
        }
    }

    #[test]
    fn remapping_while_readers_hold_views() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(FileStorage::open(&dir.path().join("f.db"), true).unwrap());
        s.set_len(4096).unwrap();
        s.write_at(0, &[7u8; 4096]).unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let v = s.view().unwrap();
                        assert!(v.get(0, 4096).unwrap().iter().all(|&b| b == 7));
                    }
                })
            })
            .collect();
        for i in 1..50u64 {
            s.set_len(4096 * (i + 1)).unwrap();
            let _ = s.view().unwrap();
        }
        for r in readers {
            r.join().unwrap();
        }
    }
}
