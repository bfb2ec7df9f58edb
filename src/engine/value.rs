//! `ValueRef`: a committed value, lent from the mapping or shared from the version store.

use crate::checkpoint::TreeState;
use crate::mvcc::{TablePin, VersionStore};
use crate::storage::View;
use crate::types::TableId;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// A value read without copying: it borrows the engine's own bytes.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
/// # let mut conn = db.connect();
/// # let mut tx = conn.begin()?;
/// # tx.create_table("t")?;
/// tx.put("t", b"k", b"value")?;
/// let v = tx.get_ref("t", b"k")?.unwrap();
/// assert_eq!(&*v, b"value");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ValueRef {
    inner: ValueInner,
}

#[derive(Clone)]
enum ValueInner {
    /// From the version store or the transaction's own writes.
    Shared(Arc<[u8]>),
    /// Bytes of the mapping, kept valid by the transaction's read pin.
    Mapped {
        pin: Arc<ReadPin>,
        offset: usize,
        len: usize,
    },
}

/// What a transaction reads the checkpointed state through, taken once at `begin`: the
/// tree (whose guard keeps its pages from being freed) and a view of the mapping that
/// covers them. A transaction's pin is often its thread shard's kept one
/// ([`crate::engine::Engine::shared_pin`]), shared with the shard's other transactions
/// (so its `tables` are whichever the shard read first); a time-travel transaction's is
/// its own, and only such pins use `filter_use`. Values handed out hold the pin they
/// were read through. A checkpoint that publishes a newer tree
/// bumps the checkpointer's generation, and the next read that needs the tree reloads
/// the pin ([`crate::engine::Engine::refresh`]).
pub(crate) struct ReadPin {
    pub(crate) view: View,
    pub(crate) tree: TreeState,
    /// The checkpointer's generation when `tree` was loaded (loaded before it).
    pub(crate) generation: u64,
    /// The version store's tables this pin's reads looked in, each taken once (see
    /// [`TablePin`]); filled on first use, at most [`PINNED_TABLES_MAX`].
    pub(crate) tables: [OnceLock<TablePin>; PINNED_TABLES_MAX],
    /// Whether the tree's history filter still earns its keep for this pin's past reads.
    pub(crate) filter_use: FilterUse,
}

/// Past point reads a pin's history filter is judged over.
const FILTER_ROUND: u32 = 256;

/// How often a pin's history filter answered "not there" ([`FilterUse::note`]). Where
/// nearly every key has a history entry (an update-heavy table inside its window), the
/// filter only ever says "maybe" and each past read pays its hash and probes for nothing;
/// after a round of [`FILTER_ROUND`] reads with fewer than one "not there" in 16, the pin
/// stops asking it. Relaxed loads and stores of a pin its own transaction reads through:
/// no locked instruction on the read path.
#[derive(Debug, Default)]
pub(crate) struct FilterUse {
    asked: AtomicU32,
    spared: AtomicU32,
    off: AtomicBool,
}

impl FilterUse {
    /// Whether to ask the filter.
    #[inline]
    pub(crate) fn worth_asking(&self) -> bool {
        !self.off.load(Ordering::Relaxed)
    }

    /// Records one answer (`spared`: the filter said "not there", saving a descent).
    #[inline]
    pub(crate) fn note(&self, spared: bool) {
        let asked = self.asked.load(Ordering::Relaxed) + 1;
        let spared = self.spared.load(Ordering::Relaxed) + u32::from(spared);
        if asked < FILTER_ROUND {
            self.asked.store(asked, Ordering::Relaxed);
            self.spared.store(spared, Ordering::Relaxed);
            return;
        }
        if spared < FILTER_ROUND / 16 {
            self.off.store(true, Ordering::Relaxed);
        }
        self.asked.store(0, Ordering::Relaxed);
        self.spared.store(0, Ordering::Relaxed);
    }
}

/// Store tables a read pin keeps; reads of further tables take theirs per read.
pub(crate) const PINNED_TABLES_MAX: usize = 4;

impl ReadPin {
    /// Where `bytes` (a slice of this pin's view) lies in the view.
    #[inline]
    pub(crate) fn locate(&self, bytes: &[u8]) -> (usize, usize) {
        let base = self.view.as_ptr() as usize;
        ((bytes.as_ptr() as usize).saturating_sub(base), bytes.len())
    }

    /// The newest version of `key` in `table` at or below `snapshot` in `store`
    /// ([`VersionStore::get`]), through the table's pin, taken on first use.
    pub(crate) fn store_get(
        &self,
        store: &VersionStore,
        table: TableId,
        key: &[u8],
        snapshot: u64,
    ) -> Option<crate::types::Value> {
        for slot in &self.tables {
            let pinned = match slot.get() {
                Some(p) => p,
                None => {
                    // An empty slot: pin the table there (a table the store never
                    // held is not pinned; it may appear later).
                    let p = store.pin_table(table)?;
                    slot.get_or_init(|| p)
                }
            };
            if pinned.table() == table {
                return pinned.get(key, snapshot);
            }
        }
        store.get(table, key, snapshot)
    }

    /// The bytes at `offset` of the view (empty when out of range, which a located
    /// slice never is).
    #[inline]
    pub(crate) fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        self.view.get(offset as u64, len).unwrap_or(&[])
    }
}

impl ValueRef {
    pub(crate) fn shared(bytes: Arc<[u8]>) -> ValueRef {
        ValueRef {
            inner: ValueInner::Shared(bytes),
        }
    }

    /// `len` bytes at `offset` of `pin`'s view.
    pub(crate) fn pinned(pin: &Arc<ReadPin>, offset: usize, len: usize) -> ValueRef {
        ValueRef {
            inner: ValueInner::Mapped {
                pin: Arc::clone(pin),
                offset,
                len,
            },
        }
    }
}

impl Deref for ValueRef {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.inner {
            ValueInner::Shared(b) => b,
            ValueInner::Mapped { pin, offset, len } => pin.bytes(*offset, *len),
        }
    }
}

impl AsRef<[u8]> for ValueRef {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for ValueRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValueRef({})", crate::util::show_bytes(self))
    }
}

impl PartialEq<[u8]> for ValueRef {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

#[cfg(test)]
mod filter_use_tests {
    use super::*;

    #[test]
    fn a_filter_that_spares_nothing_is_no_longer_asked() {
        let u = FilterUse::default();
        for _ in 0..FILTER_ROUND - 1 {
            u.note(false);
            assert!(u.worth_asking());
        }
        u.note(false);
        assert!(!u.worth_asking());
    }

    #[test]
    fn a_filter_that_spares_descents_is_kept() {
        let u = FilterUse::default();
        for i in 0..FILTER_ROUND * 4 {
            // One "not there" in eight: a round keeps it.
            u.note(i % 8 == 0);
        }
        assert!(u.worth_asking());
        // Fewer than one in 16 over a whole round turns it off.
        for i in 0..FILTER_ROUND {
            u.note(i % 32 == 0);
        }
        assert!(!u.worth_asking());
    }
}
