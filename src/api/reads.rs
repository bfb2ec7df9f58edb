//! Convenience reads over the byte API: prefix scans, the first and last entries, and
//! counting a range without copying its values.

use super::{Range, Transaction};
use crate::engine::ValueRef;
use crate::error::Result;
use std::ops::{Bound, RangeBounds};

/// The smallest key above every key that starts with `prefix`: the prefix with its
/// trailing `0xFF` bytes removed and its last byte incremented; `None` when there is
/// none (an empty prefix or one of only `0xFF` bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The key bounds of every key starting with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let hi = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), hi)
}

impl<'c> Transaction<'c> {
    /// Iterates the keys of `table` that start with `prefix`, in ascending order (`.rev()`
    /// for descending). Under Serializable the part of the prefix the iterator fetched
    /// is what validation checks (its batches: the whole prefix once iterated to the
    /// end), so a key added there by a concurrent commit is a conflict.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
    /// let mut conn = db.connect();
    /// let mut tx = conn.begin()?;
    /// tx.create_table("t")?;
    /// for k in ["user/1", "user/2", "users", "video/1"] {
    ///     tx.put("t", k.as_bytes(), b"")?;
    /// }
    /// let keys: Vec<Vec<u8>> = tx.prefix("t", b"user/")?.map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, [b"user/1".to_vec(), b"user/2".to_vec()]);
    /// # Ok(()) }
    /// ```
    pub fn prefix(&self, table: &str, prefix: &[u8]) -> Result<Range<'_, 'c>> {
        self.range(table, prefix_bounds(prefix))
    }

    /// The entry with the smallest key of `table`, if any. It fetches one key at a
    /// time, so under Serializable it records as read the keys it passed and the one it
    /// returns; past keys deleted (by this transaction, or tombstones not yet folded
    /// into the tree) each fetch takes twice as many keys as the last, up to 512, so a
    /// run of m deleted keys costs about log₂ m fetches up to about 1,000 keys and one
    /// more per 512 beyond, and may record up to min(m, 511) keys after the one returned
    /// (a write to them then conflicts with this transaction).
    pub fn first(&self, table: &str) -> Result<Option<(Vec<u8>, ValueRef)>> {
        self.iter(table)?.with_batch_size(1).next().transpose()
    }

    /// The entry with the largest key of `table`, if any; one key a fetch, as
    /// [`Transaction::first`].
    pub fn last(&self, table: &str) -> Result<Option<(Vec<u8>, ValueRef)>> {
        self.iter(table)?.with_batch_size(1).next_back().transpose()
    }

    /// Counts the keys of `table` inside `range` by scanning it; committed values are
    /// lent from the engine, never copied or decoded (this transaction's own writes in
    /// the range are copied, as a range copies them). Under Serializable the range is
    /// recorded like any scan.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
    /// # let mut conn = db.connect();
    /// # let mut tx = conn.begin()?;
    /// # tx.create_table("t")?;
    /// for i in 0..10u8 {
    ///     tx.put("t", &[i], b"v")?;
    /// }
    /// assert_eq!(tx.count("t", [3u8].as_slice()..[7u8].as_slice())?, 4);
    /// assert_eq!(tx.count::<&[u8], _>("t", ..)?, 10);
    /// # Ok(()) }
    /// ```
    pub fn count<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, table: &str, range: R) -> Result<u64> {
        let mut n = 0;
        for item in self
            .range(table, range)?
            .with_batch_size(crate::mvcc::SCAN_BATCH_MAX)
        {
            item?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
