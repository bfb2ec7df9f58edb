//! `ValueRef`: a committed value, lent from the mapping or shared from the version store.

use std::ops::Deref;
use std::sync::Arc;

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
    /// A value held by the version store or the transaction.
    Shared(Arc<[u8]>),
    /// A value inside the file mapping (the checkpointed tree); the view keeps the
    /// mapping alive.
    Mapped {
        view: crate::storage::View,
        offset: usize,
        len: usize,
        /// Keeps the tree's pages from being freed and reused while the value lives.
        _pages: Arc<dyn std::any::Any + Send + Sync>,
    },
}

impl ValueRef {
    pub(crate) fn shared(bytes: Arc<[u8]>) -> ValueRef {
        ValueRef {
            inner: ValueInner::Shared(bytes),
        }
    }

    /// A value that is the slice `bytes` of `view`'s bytes.
    pub(crate) fn mapped(
        view: &crate::storage::View,
        bytes: &[u8],
        pages: &Arc<dyn std::any::Any + Send + Sync>,
    ) -> ValueRef {
        let (offset, len) = ValueRef::locate(view, bytes);
        ValueRef::mapped_owned(view.clone(), offset, len, Arc::clone(pages))
    }

    /// Where `bytes`, a slice of `view`, sits in it.
    pub(crate) fn locate(view: &crate::storage::View, bytes: &[u8]) -> (usize, usize) {
        let base = view.as_ptr() as usize;
        ((bytes.as_ptr() as usize).saturating_sub(base), bytes.len())
    }

    /// A mapped value taking ownership of its view and page guard (no reference-count
    /// traffic on the point-read path).
    pub(crate) fn mapped_owned(
        view: crate::storage::View,
        offset: usize,
        len: usize,
        pages: Arc<dyn std::any::Any + Send + Sync>,
    ) -> ValueRef {
        ValueRef {
            inner: ValueInner::Mapped {
                view,
                offset,
                len,
                _pages: pages,
            },
        }
    }
}

impl Deref for ValueRef {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.inner {
            ValueInner::Shared(b) => b,
            ValueInner::Mapped {
                view, offset, len, ..
            } => view.get(*offset as u64, *len).unwrap_or(&[]),
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
