//! `Range`: a double-ended iterator over a table's keys, fetched in bounded batches.
//!
//! The unread region is `(lo, hi)`. Each fetch reads one batch from one end of it:
//! the committed versions visible at the snapshot, merged with the transaction's own
//! writes over exactly the key span the batch covered, tombstones dropped. The span is
//! recorded in the read set (Serializable), so what was scanned — even when it held
//! nothing or only tombstones — is what validation checks.

use super::transaction::Transaction;
use crate::Result;
use crate::engine::ValueRef;
use crate::mvcc::{SCAN_BATCH_MAX, bounds_nonempty};
use crate::types::TableId;
use crate::util::bound_slice;
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

/// An entry of a batch: a key and its value, or `None` for a tombstone.
type Entry = (Vec<u8>, Option<ValueRef>);

/// First batch size; batches double up to [`SCAN_BATCH_MAX`] so a short scan records a
/// short range.
const FIRST_BATCH: usize = 16;

/// An iterator over `(key, value)` pairs of a table in key order. Use `.rev()` for
/// descending order; both ends can be consumed alternately. After it yields an error it
/// ends (`None` from either end); begin a new range after the last key handed out to go
/// on.
pub struct Range<'t, 'c> {
    tx: &'t Transaction<'c>,
    table: TableId,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    /// Whether `(lo, hi)` is known to hold nothing more.
    drained: bool,
    /// An error was handed out: nothing more is.
    failed: bool,
    front: VecDeque<(Vec<u8>, ValueRef)>,
    /// Descending: the back of this deque holds the smallest key.
    back: VecDeque<(Vec<u8>, ValueRef)>,
    batch: usize,
    /// A batch size the caller chose: it stays fixed instead of doubling.
    fixed_batch: bool,
}

impl std::fmt::Debug for Range<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Range")
            .field("table", &self.table)
            .field("lo", &self.lo)
            .field("hi", &self.hi)
            .field("buffered", &(self.front.len() + self.back.len()))
            .finish_non_exhaustive()
    }
}

impl<'t, 'c> Range<'t, 'c> {
    pub(crate) fn new(
        tx: &'t Transaction<'c>,
        table: TableId,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
    ) -> Self {
        let drained = !bounds_nonempty(bound_slice(&lo), bound_slice(&hi));
        if drained {
            // An empty range is still a scan: record it.
            tx.record_range(table, bound_slice(&lo), bound_slice(&hi));
        }
        Range {
            tx,
            table,
            lo,
            hi,
            drained,
            failed: false,
            front: VecDeque::new(),
            back: VecDeque::new(),
            batch: FIRST_BATCH,
            fixed_batch: false,
        }
    }

    /// Fetches `n` keys per batch (at most 512) instead of starting small and doubling:
    /// a scan that will read many keys saves round trips, one that reads few records a
    /// shorter span for conflict checks. A batch that finds nothing live (only deleted
    /// keys) still doubles the next.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch = n.clamp(1, SCAN_BATCH_MAX);
        self.fixed_batch = true;
        self
    }

    /// Fetches the next batch from the low (`reverse == false`) or high end.
    fn fetch(&mut self, reverse: bool) -> Result<()> {
        while !self.drained {
            let got = self.tx.engine().committed_scan(
                &mut self.tx.pin(),
                self.table,
                bound_slice(&self.lo),
                bound_slice(&self.hi),
                self.tx.snapshot_seq(),
                reverse,
                self.batch,
                self.tx.time_travel(),
            )?;
            // The span this batch covered, from our end to where it stopped.
            let (span_lo, span_hi) = if reverse {
                (got.covered.clone(), self.hi.clone())
            } else {
                (self.lo.clone(), got.covered.clone())
            };
            let (merged, cut) = self.merge_own(
                got.entries,
                bound_slice(&span_lo),
                bound_slice(&span_hi),
                reverse,
            );
            if !self.fixed_batch {
                self.batch = (self.batch * 2).min(SCAN_BATCH_MAX);
            }
            // Own writes past a batch's worth end it early: it covered up to its last key.
            let done = got.done && cut.is_none();
            let covered = cut.map_or(got.covered, Bound::Included);
            let (span_lo, span_hi) = if reverse {
                (covered.clone(), span_hi)
            } else {
                (span_lo, covered.clone())
            };
            self.tx
                .record_range(self.table, bound_slice(&span_lo), bound_slice(&span_hi));
            if done {
                self.drained = true;
            } else {
                let next = match covered {
                    Bound::Included(k) => Bound::Excluded(k),
                    Bound::Excluded(k) => Bound::Included(k),
                    Bound::Unbounded => Bound::Unbounded,
                };
                if reverse {
                    self.hi = next;
                } else {
                    self.lo = next;
                }
                if !bounds_nonempty(bound_slice(&self.lo), bound_slice(&self.hi)) {
                    self.drained = true;
                }
            }
            let live = merged.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
            let target = if reverse {
                &mut self.back
            } else {
                &mut self.front
            };
            let before = target.len();
            target.extend(live);
            if target.len() > before {
                return Ok(());
            }
            // Nothing live (keys the transaction deleted, or tombstones in the store):
            // a chosen batch grows too, or `first` past m deleted keys took m fetches.
            self.batch = (self.batch * 2).min(SCAN_BATCH_MAX);
        }
        Ok(())
    }

    /// Overlays the transaction's own writes in `(lo, hi)` on committed entries, in scan
    /// order. Own tombstones of keys with no committed entry here are passed over
    /// without a copy. At most a batch's worth of entries more than the committed ones
    /// are taken: with more to come, the last key taken is returned, where the batch
    /// then ends (a table written only by this transaction, or written past its last
    /// committed key, was copied whole for one `first` or `is_empty`).
    fn merge_own(
        &self,
        committed: Vec<Entry>,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
    ) -> (Vec<Entry>, Option<Vec<u8>>) {
        let Some(own) = self.tx.writes.get(&self.table) else {
            return (committed, None);
        };
        if !bounds_nonempty(lo, hi) {
            return (committed, None);
        }
        let limit = committed.len() + self.batch;
        let mut own_iter = own.range(lo, hi, reverse).peekable();
        let own_value = |v: Option<&[u8]>| v.map(|v| ValueRef::shared(Arc::from(v)));
        let mut out: Vec<Entry> = Vec::with_capacity(committed.len());
        let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
        let mut committed = committed.into_iter().peekable();
        loop {
            let next_own = own_iter.peek().map(|(k, _)| *k);
            let next_committed = committed.peek().map(|(k, _)| k.as_slice());
            if out.len() >= limit && (next_own.is_some() || next_committed.is_some()) {
                let last = out.last().map(|(k, _)| k.clone());
                return (out, last);
            }
            match (next_committed, next_own) {
                (None, None) => return (out, None),
                (Some(k), Some(ok)) if ok == k => {
                    let (k, _) = committed.next().unwrap_or_default();
                    let ov = own_iter.next().and_then(|(_, v)| v);
                    out.push((k, own_value(ov)));
                }
                (Some(k), Some(ok)) if !before(ok, k) => {
                    out.extend(committed.next());
                }
                (Some(_), None) => out.extend(committed.next()),
                (_, Some(_)) => {
                    if let Some((ok, Some(ov))) = own_iter.next() {
                        out.push((ok.to_vec(), own_value(Some(ov))));
                    }
                }
            }
        }
    }
}

impl Range<'_, '_> {
    /// After an error the range ends: handing out what the other end's batch still held
    /// would skip the keys between the two without a word.
    fn fail(&mut self) {
        self.drained = true;
        self.failed = true;
        self.front.clear();
        self.back.clear();
    }
}

impl Iterator for Range<'_, '_> {
    type Item = Result<(Vec<u8>, ValueRef)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.front.is_empty()
            && let Err(e) = self.fetch(false)
        {
            self.fail();
            return Some(Err(e));
        }
        self.front
            .pop_front()
            .or_else(|| self.back.pop_back())
            .map(Ok)
    }
}

// Once both ends met (or an error was returned), `fetch` does nothing more.
impl std::iter::FusedIterator for Range<'_, '_> {}

impl DoubleEndedIterator for Range<'_, '_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.back.is_empty()
            && let Err(e) = self.fetch(true)
        {
            self.fail();
            return Some(Err(e));
        }
        self.back
            .pop_front()
            .or_else(|| self.front.pop_back())
            .map(Ok)
    }
}

/// A bound's bytes borrowed.
pub(crate) fn bound_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

/// Whether a range ending at `end` and one starting at `start` meet with neither gap
/// nor overlap: one bound includes the key the other excludes.
pub(crate) fn adjoins(end: Bound<&[u8]>, start: Bound<&[u8]>) -> bool {
    match (end, start) {
        (Bound::Included(a), Bound::Excluded(b)) | (Bound::Excluded(a), Bound::Included(b)) => {
            a == b
        }
        _ => false,
    }
}
