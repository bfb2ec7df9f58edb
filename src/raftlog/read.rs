//! Reading entries: owned ([`RaftLog::entries`], and up to a byte budget
//! [`RaftLog::entries_within`], from the cache of recent appends or the database),
//! owned in one buffer ([`RaftLog::entry_batch`]) and lent
//! ([`RaftLog::for_each_entry`]), both from the database.

use super::RaftLog;
use super::batch::EntryBatch;
use super::codec::{decode_entry_value, decode_log_key, log_key};
use super::entry::Entry;
use crate::{Error, Result, Transaction};
use std::ops::{Bound, RangeBounds};

/// Most entries a read reserves room for before reading them.
const PREALLOCATE_ENTRIES_MAX: u64 = 1 << 16;
/// Most payload bytes [`RaftLog::entry_batch`] reserves before reading past the first
/// entry (it reserves the first entry's length times the entries expected).
const PREALLOCATE_BATCH_BYTES_MAX: usize = 16 << 20;

impl RaftLog {
    /// The held entries whose index lies in `range`, in index order (contiguous:
    /// purged and never-appended indices are simply absent). Served from the in-memory
    /// cache of recent appends when it covers the range, else from the database.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>> {
        self.entries_within(range, usize::MAX)
    }

    /// The part of `range` the log holds, as inclusive first and last indices (`None`:
    /// nothing), clamped to the log's bounds so that the cache can answer for
    /// open-ended ranges and reads reserve room only for what is there.
    fn held_part(&self, range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
        let lo = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.checked_sub(1)?,
            Bound::Unbounded => u64::MAX,
        };
        let (first, last) = self.inner.bounds.lock().held?;
        let (lo, hi) = (lo.max(first), hi.min(last.index));
        (lo <= hi).then_some((lo, hi))
    }

    /// [`RaftLog::entries`] read from the database, bypassing the cache (for checks
    /// and measurements).
    pub fn entries_uncached(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>> {
        let lo = range.start_bound().map(|&i| log_key(i));
        let hi = range.end_bound().map(|&i| log_key(i));
        self.collect((lo, hi), usize::MAX)
    }

    /// The held entries whose index lies in `range`, in index order, owned in one
    /// [`EntryBatch`]: their payloads back to back in one buffer, so the entries take
    /// two allocations (more only when later entries outgrow the room the first one's
    /// length suggested, or past 65,536 entries or 16 MiB), where [`RaftLog::entries`]
    /// makes one per entry (and an allocator that gave that memory back faults it in
    /// again on the next read). Reads the database, not the cache.
    pub fn entry_batch(&self, range: impl RangeBounds<u64>) -> Result<EntryBatch> {
        let Some((first, last)) = self.held_part(&range) else {
            return Ok(EntryBatch::default());
        };
        let (lo, hi) = (log_key(first), log_key(last));
        let expected = self.expected_entries(&(lo..=hi));
        let mut batch = EntryBatch::with_capacity(expected, 0);
        let mut reserved = false;
        self.walk(lo..=hi, |index, term, data| {
            if !reserved {
                // Entries of one log tend to be alike: the first one's length times the
                // count is a good first guess (capped: the count may be a damaged claim).
                let guess = data.len().saturating_mul(expected);
                batch.reserve_bytes(guess.min(PREALLOCATE_BATCH_BYTES_MAX));
                reserved = true;
            }
            batch.push(index, term, data);
            Ok(())
        })?;
        Ok(batch)
    }

    /// Calls `f(index, term, data)` for each held entry whose index lies in `range`,
    /// in index order, lending `data` from the database's mapping: no copy and no
    /// allocation per entry (for a leader serializing entries into a message, or a
    /// follower applying them). Reads the database, not the cache. The first error
    /// `f` returns stops the walk and is returned.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("raft.db"))?;
    /// use capsuledb::raftlog::{Entry, RaftLog};
    /// let log = RaftLog::open(&db)?;
    /// log.append(&[Entry::new(1, 1, b"a".to_vec()), Entry::new(2, 1, b"bc".to_vec())])?;
    /// let mut bytes = 0;
    /// log.for_each_entry(1..=2, |_index, _term, data| {
    ///     bytes += data.len();
    ///     Ok(())
    /// })?;
    /// assert_eq!(bytes, 3);
    /// # Ok(()) }
    /// ```
    pub fn for_each_entry(
        &self,
        range: impl RangeBounds<u64>,
        f: impl FnMut(u64, u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let lo = range.start_bound().map(|&i| log_key(i));
        let hi = range.end_bound().map(|&i| log_key(i));
        self.walk((lo, hi), f)
    }

    /// The held entries from the start of `range`, in index order, stopping after the
    /// one that brings their payloads to `budget` bytes (never before the first, however
    /// large): a leader filling one replication message reads no entry past it. Read
    /// in one look, at the cache of recent appends when it holds them, else in one
    /// snapshot of the database, so the entries are one state of the log (a truncate
    /// and new appends between two parts of a read could join an old entry to a new
    /// one).
    pub fn entries_within(
        &self,
        range: impl RangeBounds<u64>,
        budget: usize,
    ) -> Result<Vec<Entry>> {
        let Some((lo, hi)) = self.held_part(&range) else {
            return Ok(Vec::new());
        };
        if let Some(found) = self.inner.cache.read().range_within(lo, hi, budget) {
            return Ok(found);
        }
        self.collect(log_key(lo)..=log_key(hi), budget)
    }

    /// Calls `f(index, term, data)` for each entry under the log keys in `keys`, in
    /// order, through the borrowing scan: each key and value is lent from the mapping
    /// (or the store).
    fn walk(
        &self,
        keys: impl RangeBounds<[u8; 8]>,
        mut f: impl FnMut(u64, u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.walk_while(keys, |index, term, data| {
            f(index, term, data).map(|()| true)
        })
    }

    /// [`RaftLog::walk`] until `f` returns `false` (after that entry).
    fn walk_while(
        &self,
        keys: impl RangeBounds<[u8; 8]>,
        mut f: impl FnMut(u64, u64, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut conn = self.inner.db.connect();
        let tx = conn.begin_read()?;
        // Every committed state of a log is contiguous with terms that do not go down:
        // within one snapshot, a gap or a lower term is damage, never an answer.
        let from = match keys.start_bound() {
            Bound::Included(k) => Some(u64::from_be_bytes(*k)),
            Bound::Excluded(k) => u64::from_be_bytes(*k).checked_add(1),
            Bound::Unbounded => None,
        };
        let to = match keys.end_bound() {
            Bound::Included(k) => Some(u64::from_be_bytes(*k)),
            Bound::Excluded(k) => u64::from_be_bytes(*k).checked_sub(1),
            Bound::Unbounded => None,
        };
        let mut prev: Option<(u64, u64)> = None;
        let mut scan = tx.scan(&self.inner.log_table, keys)?;
        while let Some(item) = scan.next() {
            let (k, v) = item?;
            let index = decode_log_key(k)?;
            let (term, data) = decode_entry_value(index, v)?;
            match prev {
                Some((p, _)) if p.checked_add(1) != Some(index) => {
                    return Err(missing(p.saturating_add(1), p, index));
                }
                Some((p, pt)) if term < pt => {
                    return Err(Error::corrupted(
                        0,
                        format!("raft log entry {index} has term {term}, below {pt} of entry {p}"),
                    ));
                }
                None => {
                    // The range starts before the first entry found: fine at the log's
                    // start, damage if the snapshot holds an entry below it.
                    if let Some(lo) = from.filter(|&lo| lo < index) {
                        check_present(&tx, &self.inner.log_table, lo, index)?;
                    }
                }
                Some(_) => {}
            }
            prev = Some((index, term));
            if !f(index, term, data)? {
                return Ok(());
            }
        }
        // The range ends before the next entry held: damage if the snapshot holds one
        // past the range's end and one before the gap (at the range's top, or around
        // the whole range).
        let next = match prev {
            Some((p, _)) => p.checked_add(1),
            None => from,
        };
        if let (Some(next), Some(to)) = (next, to)
            && next <= to
        {
            let table = &self.inner.log_table;
            let above = tx.range::<&[u8], _>(table, &log_key(next)[..]..)?.next();
            if let Some((k, _)) = above.transpose()? {
                let above = decode_log_key(&k)?;
                match prev {
                    Some((p, _)) => return Err(missing(next, p, above)),
                    None => check_present(&tx, table, next, above)?,
                }
            }
        }
        Ok(())
    }

    /// The entries under the log keys in `keys`, from the database, stopping after the
    /// one that brings their payloads to `budget` bytes (`usize::MAX`: all of them).
    fn collect(&self, keys: impl RangeBounds<[u8; 8]>, budget: usize) -> Result<Vec<Entry>> {
        let expected = self.expected_entries(&keys);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        // The only copy per entry is the entry's own data.
        self.walk_while(keys, |index, term, data| {
            if out.is_empty() {
                out.reserve(entries_to_reserve(expected, budget, data.len()));
            }
            out.push(Entry::new(index, term, data.to_vec()));
            bytes = bytes.saturating_add(data.len());
            Ok(bytes < budget)
        })?;
        Ok(out)
    }

    /// How many entries to reserve room for before reading those under `keys`.
    fn expected_entries(&self, keys: &impl RangeBounds<[u8; 8]>) -> usize {
        // Keys are consecutive indices: the range bounds how many entries come back.
        let first = match keys.start_bound() {
            Bound::Included(k) => u64::from_be_bytes(*k),
            Bound::Excluded(k) => u64::from_be_bytes(*k).saturating_add(1),
            Bound::Unbounded => 0,
        };
        let last = match keys.end_bound() {
            Bound::Included(k) => u64::from_be_bytes(*k),
            Bound::Excluded(k) => u64::from_be_bytes(*k).saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        };
        let held = self.len();
        // The log's bounds come from its first and last keys; entries between them are
        // counted, not read, so a damaged file could claim far more than it holds: the
        // first allocation is capped and the vector grows with what is really there.
        let expected = last
            .saturating_sub(first)
            .saturating_add(1)
            .min(held)
            .min(PREALLOCATE_ENTRIES_MAX);
        usize::try_from(expected).unwrap_or(0)
    }
}

/// How many entries a read of at most `expected` entries under `budget` payload bytes
/// reserves room for, its first entry's payload `first_len` bytes: a budgeted read
/// expects entries of about the first's size, so a small budget over a long range does
/// not reserve the whole range.
pub(super) fn entries_to_reserve(expected: usize, budget: usize, first_len: usize) -> usize {
    if budget == usize::MAX {
        return expected;
    }
    expected.min((budget / first_len.max(1)).saturating_add(1))
}

/// The error for entry `index` missing between entries `below` and `above`.
fn missing(index: u64, below: u64, above: u64) -> Error {
    Error::corrupted(
        0,
        format!("raft log entry {index} is missing between entries {below} and {above}"),
    )
}

/// Checks, in `tx`'s snapshot, that no entry of `log_table` lies below `lo` when the
/// first one at or above it is `found` (past `lo`): the log is contiguous, so one below
/// means the entries `lo..found` are missing.
pub(super) fn check_present(
    tx: &Transaction<'_>,
    log_table: &str,
    lo: u64,
    found: u64,
) -> Result<()> {
    let below = tx
        .range_rev::<&[u8], _>(log_table, ..&log_key(lo)[..])?
        .next()
        .transpose()?;
    match below {
        Some((k, _)) => Err(missing(lo, decode_log_key(&k)?, found)),
        None => Ok(()),
    }
}
