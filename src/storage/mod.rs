//! The storage layer: the only code in capsuledb that touches the operating system.
//!
//! Everything above this module reads and writes the database file through the
//! [`Storage`] trait. Two implementations exist:
//!
//! - [`FileStorage`]: a real file, read through a `memmap2` mapping, written with
//!   positioned writes, made durable with `fdatasync`, locked with `flock`;
//! - [`SimStorage`]: an in-memory file for tests that keeps what is durable apart from
//!   what is only written, and can crash, tear writes, flip bits and fail I/O calls,
//!   deterministically per seed.
//!
//! # Visibility rule
//! A [`View`] shows at least every write that completed before the view was taken.
//! Whether it also shows later writes is up to the implementation (a file mapping
//! does, the simulator does not), so callers take a fresh view after writing.

mod file;
pub mod locks;
mod sim;

pub use file::{FileStorage, dir_sync_unsupported};
pub(crate) use file::{
    create_like, rename_no_replace, rename_over_unlocked, set_mode, sync_parent_if_possible,
};
pub use sim::{SECTOR_SIZE, SimStorage, SyncGate, TraceOp};

use crate::Result;
use std::ops::Deref;
use std::sync::Arc;

/// A byte-addressed file that the engine reads through a view and writes in place.
///
/// Implementations must be safe to call from many threads at once. Writes to
/// disjoint ranges may run concurrently; the engine never writes a range that a
/// reader may be reading (copy-on-write discipline above this layer), but for the
/// header copies and the marker stream's pages, which readers copy before they check.
pub trait Storage: Send + Sync + 'static {
    /// Current length of the file in bytes.
    fn len(&self) -> Result<u64>;

    /// Whether the file is empty.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A read-only view of the whole file as it is now (see the module's visibility rule).
    fn view(&self) -> Result<View>;

    /// Writes `data` at byte `offset`, growing the file if the range passes its end.
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()>;

    /// Makes every completed write durable (`fdatasync`).
    fn sync(&self) -> Result<()>;

    /// Calls to [`Storage::sync`] that succeeded so far (for `Stats::file_syncs`); a
    /// storage that does not count them reports 0.
    fn sync_count(&self) -> u64 {
        0
    }

    /// Starts writing back the data written so far and waits for what an earlier call
    /// started: a long writer (a checkpoint) calls it every few MiB, so the dirty data it
    /// leaves for the next `sync` (a group commit's) stays small. No durability promise;
    /// an I/O error shows at the next `sync`. Storage with nothing to write back does
    /// nothing.
    fn write_behind(&self) {}

    /// Makes the storage's name durable where it has one (a new file's directory entry):
    /// a database's creation calls it once its header is durable, and every read-write
    /// open of a created one (a creation may have stopped before it).
    fn sync_name(&self) -> Result<()> {
        Ok(())
    }

    /// Sets the file's length, zero-filling on growth.
    fn set_len(&self, len: u64) -> Result<()>;

    /// Shrinks the file to `len` bytes unless a reader in another handle (or process)
    /// pins any generation: a pinned reader may read any page below the length it
    /// mapped, so the file never shrinks under it (`format-spec/locking.md`, writer rule
    /// 6). Returns whether the file was cut.
    fn cut_len(&self, len: u64) -> Result<bool> {
        if self.pinned_below(locks::PIN_GENERATION_MAX)? {
            return Ok(false);
        }
        self.set_len(len)?;
        Ok(true)
    }

    /// Pins header generation `generation` for this handle (a live reader;
    /// `format-spec/locking.md`). Storage no other process can open pins nothing.
    fn pin_generation(&self, _generation: u64) -> Result<()> {
        Ok(())
    }

    /// Releases this handle's pin on `generation`.
    fn unpin_generation(&self, _generation: u64) {}

    /// Whether a reader in another handle (or process) pins a generation below
    /// `generation`: pages unreachable from `generation` on must not be reused then.
    fn pinned_below(&self, _generation: u64) -> Result<bool> {
        Ok(false)
    }

    /// The highest generation in `[from, from + len)` a reader in another handle (or
    /// process) pins, if any.
    fn highest_pin_in(&self, _from: u64, _len: u64) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// A pin on one header generation, released when dropped.
pub struct GenerationPin {
    storage: Arc<dyn Storage>,
    generation: u64,
}

impl std::fmt::Debug for GenerationPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationPin")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl GenerationPin {
    /// Pins `generation` through `storage`.
    pub fn new(storage: &Arc<dyn Storage>, generation: u64) -> Result<GenerationPin> {
        storage.pin_generation(generation)?;
        Ok(GenerationPin {
            storage: Arc::clone(storage),
            generation,
        })
    }

    /// The pinned generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl Drop for GenerationPin {
    fn drop(&mut self) {
        self.storage.unpin_generation(self.generation);
    }
}

/// Bytes a [`View`] can be built on.
pub trait ViewBytes: Send + Sync {
    /// The viewed bytes.
    fn bytes(&self) -> &[u8];
}

impl ViewBytes for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl ViewBytes for memmap2::Mmap {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A cheap, clonable, read-only view of the file. Holding a view keeps its mapping
/// alive even after the file grows and is remapped.
#[derive(Clone)]
pub struct View {
    inner: ViewInner,
}

/// What a view holds: a file mapping is reached without a dynamic call, since every
/// read of the tree goes through it.
#[derive(Clone)]
enum ViewInner {
    Empty,
    Mapped(Arc<memmap2::Mmap>),
    Other(Arc<dyn ViewBytes>),
}

impl View {
    /// A view over the given bytes.
    pub fn new(bytes: Arc<dyn ViewBytes>) -> View {
        View {
            inner: ViewInner::Other(bytes),
        }
    }

    /// A view over a file mapping.
    pub fn mapped(map: Arc<memmap2::Mmap>) -> View {
        View {
            inner: ViewInner::Mapped(map),
        }
    }

    /// A view of an empty file.
    pub fn empty() -> View {
        View {
            inner: ViewInner::Empty,
        }
    }

    /// The bytes at `offset..offset + len`, or `None` when the range passes the end.
    #[inline]
    pub fn get(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        self.deref().get(start..end)
    }
}

impl Deref for View {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.inner {
            ViewInner::Mapped(m) => m,
            ViewInner::Other(b) => b.bytes(),
            ViewInner::Empty => &[],
        }
    }
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "View({} bytes)", self.len())
    }
}
