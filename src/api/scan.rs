//! `Scan`: the borrowing scan. It lends each key and value (`&[u8]`) until the next
//! step instead of handing out owned copies: no allocation per entry.

use super::range::Range;
use super::transaction::Transaction;
use crate::engine::{OwnWrites, ScanMerge, Step, ValueRef};
use crate::error::Result;
use crate::mvcc::bounds_nonempty;
use crate::util::bound_slice;
use std::ops::{Bound, RangeBounds};

/// A scan over a table's keys that lends each entry until the next call, from
/// [`Transaction::scan`] or [`Transaction::scan_rev`]. It is a cursor, not an
/// [`Iterator`]: a key and value borrow the scan, so copy what must outlive the step.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = capsuledb::Database::open(dir.path().join("app.db"))?;
/// let mut conn = db.connect();
/// let mut tx = conn.begin()?;
/// tx.create_table("t")?;
/// tx.put("t", b"a", b"1")?;
/// tx.put("t", b"b", b"2")?;
/// let mut total = 0;
/// let mut scan = tx.scan("t", b"a".as_slice()..)?;
/// while let Some(entry) = scan.next() {
///     let (_key, value) = entry?;
///     total += value.len();
/// }
/// assert_eq!(total, 2);
/// # Ok(()) }
/// ```
pub struct Scan<'t, 'c> {
    inner: Inner<'t, 'c>,
    /// Set once the scan handed out an error reporting damage: it has ended.
    damaged: bool,
}

impl std::fmt::Debug for Scan<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan").finish_non_exhaustive()
    }
}

#[expect(
    clippy::large_enum_variant,
    reason = "one per scan, on the caller's stack: boxing would allocate per scan"
)]
enum Inner<'t, 'c> {
    Empty,
    Merge(ScanMerge<'t>),
    /// A time-travel scan: history entries override the tree's values, and the owned
    /// iterator knows how to merge them; its current entry is lent.
    Owned {
        range: Range<'t, 'c>,
        reverse: bool,
        current: Option<(Vec<u8>, ValueRef)>,
    },
}

impl Scan<'_, '_> {
    /// The next entry in the scan's order, or `None` at the end. After an error that
    /// reports damage ([`crate::Error::is_corruption`]) the scan has ended: every later
    /// call returns `None` (going on would skip the damaged leaf, or a whole subtree,
    /// without another error). After any other error (an I/O failure, such as a
    /// mapping that could not grow) a later call goes on where the scan stopped, but
    /// on a time-travel transaction ([`crate::Database::begin_read_at`]), whose scan
    /// ends at any error: there, an error is the scan's last item.
    #[expect(
        clippy::should_implement_trait,
        reason = "a lending cursor: its items borrow the scan, which Iterator cannot express"
    )]
    // Inlined into the caller's loop (with the merge's common step): an entry returned
    // through memory from a call costs a stalled load on the caller's side.
    #[inline(always)]
    pub fn next(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if matches!(self.inner, Inner::Owned { .. }) {
            return self.next_owned().into_item();
        }
        if self.damaged {
            return None;
        }
        match &mut self.inner {
            Inner::Merge(m) => {
                let item = m.next();
                if let Some(Err(e)) = &item
                    && e.is_corruption()
                {
                    self.damaged = true;
                }
                item
            }
            Inner::Empty | Inner::Owned { .. } => None,
        }
    }

    /// [`Scan::next`] of a time-travel scan.
    #[inline(never)]
    fn next_owned(&mut self) -> Step<'_> {
        Step::from(self.owned_item())
    }

    /// [`Scan::next_owned`]'s step.
    fn owned_item(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        let Inner::Owned {
            range,
            reverse,
            current,
        } = &mut self.inner
        else {
            return None;
        };
        let item = if *reverse {
            range.next_back()
        } else {
            range.next()
        };
        match item? {
            Ok(entry) => {
                let (k, v) = current.insert(entry);
                Some(Ok((k.as_slice(), &**v)))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl<'c> Transaction<'c> {
    /// Scans the keys of `table` inside `range` in ascending order, lending each key
    /// and value (see [`Scan`]); the owned [`Transaction::range`] hands out copies.
    /// Under `Serializable` the whole range counts as read, however far the scan
    /// goes: bound the range to what you will read.
    pub fn scan<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        table: &str,
        range: R,
    ) -> Result<Scan<'_, 'c>> {
        self.scan_dir(table, range, false)
    }

    /// [`Transaction::scan`] in descending order.
    pub fn scan_rev<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        table: &str,
        range: R,
    ) -> Result<Scan<'_, 'c>> {
        self.scan_dir(table, range, true)
    }

    fn scan_dir<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        table: &str,
        range: R,
        reverse: bool,
    ) -> Result<Scan<'_, 'c>> {
        let id = self.table_id(table)?;
        let lo: Bound<Vec<u8>> = range.start_bound().map(|k| k.as_ref().to_vec());
        let hi: Bound<Vec<u8>> = range.end_bound().map(|k| k.as_ref().to_vec());
        if self.time_travel() {
            let range = Range::new(self, id, lo, hi);
            return Ok(Scan {
                damaged: false,
                inner: Inner::Owned {
                    range,
                    reverse,
                    current: None,
                },
            });
        }
        self.record_range(id, bound_slice(&lo), bound_slice(&hi));
        if !bounds_nonempty(bound_slice(&lo), bound_slice(&hi)) {
            return Ok(Scan {
                damaged: false,
                inner: Inner::Empty,
            });
        }
        let own: OwnWrites<'_> = match self.writes.get(&id) {
            Some(t) => t.range(bound_slice(&lo), bound_slice(&hi), reverse),
            None => crate::types::WritesIter::empty(),
        };
        let merge = ScanMerge::new(
            self.engine(),
            &mut self.pin(),
            id,
            lo,
            hi,
            self.snapshot_seq(),
            reverse,
            own,
        )?;
        Ok(Scan {
            damaged: false,
            inner: Inner::Merge(merge),
        })
    }
}
