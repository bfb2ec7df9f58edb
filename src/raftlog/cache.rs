//! A bounded in-memory copy of the log's newest entries, so that followers catching
//! up and the state machine applying read them without going through the engine.
//!
//! The cache holds a contiguous run of committed entries ending at the last one (an
//! `append_async`'s before they are durable: a reader of this process sees them, as it
//! does the engine's). Entries go in only after the commit that appends them succeeded,
//! and come out (a truncate, a purge) before the commit that removes them, so no read
//! serves an entry the log no longer holds; it is changed under the log's writer lock,
//! cleared when a commit fails, and starts empty on every open, so it never holds what a
//! crash lost.

use super::Entry;
use std::collections::VecDeque;

/// Most payload bytes the cache holds; the oldest entries are dropped beyond it.
const CACHE_BYTES_MAX: usize = 16 << 20;
/// Most entries the cache holds.
const CACHE_ENTRIES_MAX: usize = 64 << 10;
/// Entries larger than this are not cached (they would evict too much).
const CACHED_ENTRY_BYTES_MAX: usize = 1 << 20;

pub(super) struct Cache {
    /// Consecutive entries, oldest first.
    entries: VecDeque<Entry>,
    /// Sum of the payload lengths in `entries`.
    bytes: usize,
}

impl Cache {
    pub(super) fn new() -> Cache {
        Cache {
            entries: VecDeque::new(),
            bytes: 0,
        }
    }

    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.index)
    }

    fn next_index(&self) -> Option<u64> {
        self.entries.back().map(|e| e.index + 1)
    }

    /// Records entries just committed (durable, or on their way: `append_async`) right
    /// after the last one.
    pub(super) fn append(&mut self, entries: &[Entry]) {
        let Some(head) = entries.first() else { return };
        let follows = self.next_index().is_none_or(|next| next == head.index);
        debug_assert!(
            follows,
            "cache append at {} after {:?}",
            head.index,
            self.next_index()
        );
        if !follows {
            // Not contiguous with what we hold (the log's checks rule it out); start
            // over rather than serve a gap.
            self.clear();
        }
        for e in entries {
            if e.data.len() > CACHED_ENTRY_BYTES_MAX {
                // Keep the run contiguous: forget everything up to this entry.
                self.clear();
                continue;
            }
            self.bytes += e.data.len();
            self.entries.push_back(e.clone());
        }
        while self.bytes > CACHE_BYTES_MAX || self.entries.len() > CACHE_ENTRIES_MAX {
            match self.entries.pop_front() {
                Some(e) => self.bytes -= e.data.len(),
                None => break,
            }
        }
        debug_assert!(self.is_contiguous());
    }

    /// Forgets entries at `from` and after.
    pub(super) fn truncate(&mut self, from: u64) {
        while self.entries.back().is_some_and(|e| e.index >= from) {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= e.data.len();
            }
        }
    }

    /// Forgets entries up to and including `upto`.
    pub(super) fn purge(&mut self, upto: u64) {
        while self.entries.front().is_some_and(|e| e.index <= upto) {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= e.data.len();
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn position(&self, index: u64) -> Option<usize> {
        let first = self.first_index()?;
        let offset = usize::try_from(index.checked_sub(first)?).ok()?;
        (offset < self.entries.len()).then_some(offset)
    }

    pub(super) fn get(&self, index: u64) -> Option<Entry> {
        self.entries.get(self.position(index)?).cloned()
    }

    pub(super) fn get_term(&self, index: u64) -> Option<u64> {
        self.entries.get(self.position(index)?).map(|e| e.term)
    }

    /// Entries from `lo` up to `hi`, stopping after the one that brings their payloads
    /// to `budget` bytes (at least one), if the cache holds all of those.
    pub(super) fn range_within(&self, lo: u64, hi: u64, budget: usize) -> Option<Vec<Entry>> {
        let start = self.position(lo)?;
        let wanted = usize::try_from(hi.saturating_sub(lo)).unwrap_or(usize::MAX);
        let expected = wanted.saturating_add(1).min(self.entries.len() - start);
        let first_len = self.entries.get(start).map_or(0, |e| e.data.len());
        let mut found =
            Vec::with_capacity(super::read::entries_to_reserve(expected, budget, first_len));
        let mut bytes = 0usize;
        for e in self.entries.range(start..) {
            if e.index > hi || (bytes >= budget && !found.is_empty()) {
                return Some(found);
            }
            bytes = bytes.saturating_add(e.data.len());
            found.push(e.clone());
        }
        // Ran out: complete only if the last entry wanted was the cache's last.
        (found.last().map(|e| e.index) == Some(hi) || bytes >= budget).then_some(found)
    }

    fn is_contiguous(&self) -> bool {
        self.entries
            .iter()
            .zip(self.entries.iter().skip(1))
            .all(|(a, b)| a.index + 1 == b.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64) -> Entry {
        Entry::new(index, 1, vec![index as u8; 4])
    }

    #[test]
    fn serves_only_covered_ranges() {
        let mut c = Cache::new();
        c.append(&[e(5), e(6), e(7)]);
        assert_eq!(c.range_within(5, 7, usize::MAX).map(|v| v.len()), Some(3));
        assert_eq!(c.range_within(4, 7, usize::MAX), None);
        assert_eq!(c.range_within(6, 8, usize::MAX), None);
        c.truncate(7);
        assert_eq!(c.get(7), None);
        c.append(&[e(7)]);
        c.purge(5);
        assert_eq!(c.get(5), None);
        assert_eq!(c.range_within(6, 7, usize::MAX).map(|v| v.len()), Some(2));
        c.append(&[Entry::new(8, 1, vec![0; CACHED_ENTRY_BYTES_MAX + 1])]);
        assert_eq!(c.get(7), None, "an uncached entry breaks the run");
        c.append(&[e(9)]);
        assert_eq!(c.get(9), Some(e(9)));
    }
}
