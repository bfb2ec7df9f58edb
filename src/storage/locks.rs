//! Open-file-description byte-range locks between the processes that share a database
//! file (`format-spec/locking.md`): a live reader pins the header generation it reads
//! with a read lock on one byte per generation; the writer tests for pins before it
//! reuses pages. The locked bytes lie far past any data, so no lock covers a byte that
//! is read or written. OFD locks belong to the open file description: they work on a
//! read-only descriptor, two descriptors in one process do not share them, and the
//! kernel drops them when the last descriptor closes, so a killed reader releases its
//! pins.

use std::fs::File;
use std::io;

/// The byte that pins generation `g` is `PIN_BASE + g` (`format-spec/locking.md`).
pub const PIN_BASE: u64 = 1 << 62;
/// Generations at or above this cannot be pinned (their byte would pass `i64::MAX`).
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
}

/// Pins `generation`: a shared lock on its byte, held by `file`'s description.
pub fn pin(file: &File, generation: u64) -> io::Result<()> {
    imp::read_lock(file, PIN_BASE + generation.min(PIN_GENERATION_MAX))
}

/// Releases the pin on `generation` held by `file`'s description.
pub fn unpin(file: &File, generation: u64) -> io::Result<()> {
    imp::unlock(file, PIN_BASE + generation.min(PIN_GENERATION_MAX))
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
        pin(&reader, 3).unwrap();
        drop(reader);
        assert!(
            !pinned_below(&writer, 8).unwrap(),
            "closing releases the pin"
        );
    }
}
