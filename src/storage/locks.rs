//! Open-file-description byte-range locks between the processes that share a database
//! file (`format-spec/locking.md`): a live reader pins the header generation it reads
//! with a read lock on one byte per generation; the writer tests for pins before it
//! reuses pages. The locked bytes lie far past any data, so no lock covers a byte that
//! is read or written. OFD locks belong to the open file description: they work on a
//! read-only descriptor, two descriptors in one process do not share them, and the
//! kernel drops them when the last descriptor closes, so a killed reader releases its
//! pins. The writer cuts the file only while it keeps every pin out ([`without_pins`]).

use std::fs::File;
use std::io;

/// The byte that pins generation `g` is `PIN_BASE + g` (`format-spec/locking.md`).
pub const PIN_BASE: u64 = 1 << 62;
/// Generations at or above this cannot be pinned (the byte of this one would be at
/// `i64::MAX`, where a one-byte lock cannot end).
pub const PIN_GENERATION_MAX: u64 = (1 << 62) - 1;

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use std::os::unix::io::AsRawFd;

    fn flock_for(kind: libc::c_short, start: u64, len: u64) -> libc::flock {
        libc::flock {
            l_type: kind,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: start as libc::off_t,
            l_len: len as libc::off_t,
            // Must be zero for the OFD commands.
            l_pid: 0,
        }
    }

    fn fcntl(file: &File, cmd: libc::c_int, lock: &mut libc::flock) -> io::Result<()> {
        // SAFETY: `file` owns an open descriptor and `lock` is a valid, initialised
        // `struct flock` that the call may read and (for F_OFD_GETLK) write.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, lock as *mut libc::flock) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn read_lock(file: &File, byte: u64) -> io::Result<()> {
        let mut l = flock_for(libc::F_RDLCK as libc::c_short, byte, 1);
        fcntl(file, libc::F_OFD_SETLK, &mut l)
    }

    pub fn unlock(file: &File, byte: u64) -> io::Result<()> {
        let mut l = flock_for(libc::F_UNLCK as libc::c_short, byte, 1);
        fcntl(file, libc::F_OFD_SETLK, &mut l)
    }

    pub fn any_lock(file: &File, start: u64, len: u64) -> io::Result<bool> {
        // Asking for a write lock reports any other description's read lock.
        let mut l = flock_for(libc::F_WRLCK as libc::c_short, start, len);
        fcntl(file, libc::F_OFD_GETLK, &mut l)?;
        Ok(l.l_type != libc::F_UNLCK as libc::c_short)
    }

    pub fn try_write_lock(file: &File, start: u64, len: u64) -> io::Result<bool> {
        let mut l = flock_for(libc::F_WRLCK as libc::c_short, start, len);
        match fcntl(file, libc::F_OFD_SETLK, &mut l) {
            Ok(()) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn unlock_range(file: &File, start: u64, len: u64) -> io::Result<()> {
        let mut l = flock_for(libc::F_UNLCK as libc::c_short, start, len);
        fcntl(file, libc::F_OFD_SETLK, &mut l)
    }
}

/// Whether a failed `F_OFD_SETLK` met another description's lock (POSIX allows either
/// error).
fn is_conflict(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES))
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "live readers need open-file-description locks (Linux)",
        )
    }

    pub fn read_lock(_: &File, _: u64) -> io::Result<()> {
        Err(unsupported())
    }

    pub fn unlock(_: &File, _: u64) -> io::Result<()> {
        Ok(())
    }

    pub fn any_lock(_: &File, _: u64, _: u64) -> io::Result<bool> {
        Ok(false)
    }

    pub fn try_write_lock(_: &File, _: u64, _: u64) -> io::Result<bool> {
        Ok(true)
    }

    pub fn unlock_range(_: &File, _: u64, _: u64) -> io::Result<()> {
        Ok(())
    }
}

/// How long [`pin`] retries while the writer keeps pins out (it does so only for one
/// `ftruncate`).
const PIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Pins `generation`: a shared lock on its byte, held by `file`'s description. While
/// the writer keeps pins out ([`without_pins`]) the lock is tried again.
pub fn pin(file: &File, generation: u64) -> io::Result<()> {
    let byte = PIN_BASE + generation.min(PIN_GENERATION_MAX);
    let deadline = std::time::Instant::now() + PIN_WAIT;
    loop {
        match imp::read_lock(file, byte) {
            Err(e) if is_conflict(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            other => return other,
        }
    }
}

/// Runs `f` while no other description pins any generation, keeping new pins out
/// meanwhile: a write lock over every pin byte, taken without waiting and released
/// after `f`. `None` (and `f` not run) when another description holds a pin.
pub fn without_pins<T>(file: &File, f: impl FnOnce() -> T) -> io::Result<Option<T>> {
    /// Releases the write lock over the pin bytes however `f` ends (a panic unwinding
    /// through it included): held on, it would keep every reader's pin out until the
    /// writer closes.
    struct Release<'a>(&'a File);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            let _ = imp::unlock_range(self.0, PIN_BASE, PIN_GENERATION_MAX);
        }
    }
    if !imp::try_write_lock(file, PIN_BASE, PIN_GENERATION_MAX)? {
        return Ok(None);
    }
    let release = Release(file);
    let out = f();
    std::mem::forget(release);
    // Unlocking a whole range splits no lock, so it should not fail; tried twice.
    imp::unlock_range(file, PIN_BASE, PIN_GENERATION_MAX)
        .or_else(|_| imp::unlock_range(file, PIN_BASE, PIN_GENERATION_MAX))?;
    Ok(Some(out))
}

/// Releases the pin on `generation` held by `file`'s description.
pub fn unpin(file: &File, generation: u64) -> io::Result<()> {
    imp::unlock(file, PIN_BASE + generation.min(PIN_GENERATION_MAX))
}

/// The highest generation in `[from, from + len)` another open file description pins,
/// if any: one test, and a halving search only when something is pinned there.
pub fn highest_pin_in(file: &File, from: u64, len: u64) -> io::Result<Option<u64>> {
    let end = from.saturating_add(len).min(PIN_GENERATION_MAX);
    if from >= end || !imp::any_lock(file, PIN_BASE + from, end - from)? {
        return Ok(None);
    }
    // A pin lies in `[lo, end)`, none in `(hi, end)`.
    let (mut lo, mut hi) = (from, end - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if imp::any_lock(file, PIN_BASE + mid, end - mid)? {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Some(lo))
}

/// Whether another open file description pins any generation below `generation`.
pub fn pinned_below(file: &File, generation: u64) -> io::Result<bool> {
    let len = generation.min(PIN_GENERATION_MAX);
    if len == 0 {
        return Ok(false);
    }
    imp::any_lock(file, PIN_BASE, len)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The highest pin in a window, found by halving from one test.
    #[test]
    fn the_highest_pin_in_a_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let writer = File::options().read(true).write(true).open(&path).unwrap();
        let reader = File::open(&path).unwrap();
        assert_eq!(highest_pin_in(&writer, 1, 64).unwrap(), None);
        pin(&reader, 5).unwrap();
        pin(&reader, 9).unwrap();
        assert_eq!(highest_pin_in(&writer, 1, 64).unwrap(), Some(9));
        assert_eq!(highest_pin_in(&writer, 1, 8).unwrap(), Some(5));
        assert_eq!(highest_pin_in(&writer, 9, 1).unwrap(), Some(9));
        assert_eq!(highest_pin_in(&writer, 10, 64).unwrap(), None);
        assert_eq!(highest_pin_in(&reader, 1, 64).unwrap(), None, "own pins");
    }

    #[test]
    fn pins_are_seen_by_another_description_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let writer = File::options().read(true).write(true).open(&path).unwrap();
        let reader = File::open(&path).unwrap();
        assert!(!pinned_below(&writer, 10).unwrap());
        pin(&reader, 7).unwrap();
        assert!(pinned_below(&writer, 8).unwrap());
        assert!(!pinned_below(&writer, 7).unwrap(), "7 is not below 7");
        assert!(
            !pinned_below(&reader, 8).unwrap(),
            "own locks never conflict"
        );
        unpin(&reader, 7).unwrap();
        assert!(!pinned_below(&writer, 8).unwrap());
        // While pins are kept out, none is taken; a pin keeps them from being kept out.
        assert_eq!(without_pins(&writer, || 5).unwrap(), Some(5));
        pin(&reader, 3).unwrap();
        assert_eq!(without_pins(&writer, || 5).unwrap(), None);
        unpin(&reader, 3).unwrap();
        let late = std::thread::scope(|s| {
            without_pins(&writer, || {
                let t = s.spawn(|| pin(&reader, 4));
                std::thread::sleep(std::time::Duration::from_millis(20));
                assert!(!pinned_below(&writer, 8).unwrap(), "no pin while kept out");
                t
            })
            .unwrap()
            .unwrap()
            .join()
            .unwrap()
        });
        late.unwrap();
        assert!(
            pinned_below(&writer, 8).unwrap(),
            "the pin is taken afterwards"
        );
        unpin(&reader, 4).unwrap();
        pin(&reader, 3).unwrap();
        drop(reader);
        assert!(
            !pinned_below(&writer, 8).unwrap(),
            "closing releases the pin"
        );
    }
}
