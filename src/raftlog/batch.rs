//! Entries read owned into one buffer ([`EntryBatch`], from [`super::RaftLog::entry_batch`]).
//!
//! [`super::RaftLog::entries`] gives each entry its own `Vec<u8>`: ten thousand entries are
//! ten thousand allocations, and an allocator that hands freed memory back to the system
//! (glibc trims the top of its heap past 128 KiB) makes the next read fault every page in
//! again. A batch holds every payload back to back in one buffer and the entries' heads in
//! another, so its entries take two allocations (for entries of like sizes, up to 65,536
//! of them and 16 MiB), and it can be kept, moved to another thread or sent on after the
//! read transaction ends.

use super::entry::{Entry, EntryId};

/// Entries read owned, their payloads back to back in one buffer: what
/// [`super::RaftLog::entry_batch`] returns. Iterate it for [`EntryRef`]s, or turn it into
/// `Vec<Entry>` with [`EntryBatch::into_entries`].
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = capsuledb::Database::open(dir.path().join("raft.db"))?;
/// use capsuledb::raftlog::{Entry, RaftLog};
/// let log = RaftLog::open(&db)?;
/// log.append(&[Entry::new(1, 1, b"a".to_vec()), Entry::new(2, 1, b"bc".to_vec())])?;
/// let batch = log.entry_batch(1..=2)?;
/// assert_eq!(batch.len(), 2);
/// assert_eq!(batch.get(1).map(|e| e.data), Some(&b"bc"[..]));
/// let indices: Vec<u64> = batch.iter().map(|e| e.index).collect();
/// assert_eq!(indices, [1, 2]);
/// assert_eq!(batch.into_entries()[0], Entry::new(1, 1, b"a".to_vec()));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryBatch {
    /// Every entry's payload, in entry order, back to back.
    bytes: Vec<u8>,
    /// One per entry, in order.
    heads: Vec<Head>,
}

/// An entry's position and term, and where its payload ends in [`EntryBatch::bytes`] (it
/// starts where the previous entry's ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    index: u64,
    term: u64,
    end: usize,
}

/// One entry of an [`EntryBatch`], its payload lent from the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryRef<'a> {
    /// Position in the log.
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// The payload.
    pub data: &'a [u8],
}

impl EntryRef<'_> {
    /// The entry's `(index, term)`.
    pub fn id(&self) -> EntryId {
        EntryId {
            index: self.index,
            term: self.term,
        }
    }

    /// The entry as an owned [`Entry`] (copies the payload).
    pub fn to_entry(&self) -> Entry {
        Entry::new(self.index, self.term, self.data.to_vec())
    }
}

impl EntryBatch {
    /// An empty batch with room for `entries` heads and `bytes` payload bytes.
    pub(super) fn with_capacity(entries: usize, bytes: usize) -> EntryBatch {
        EntryBatch {
            bytes: Vec::with_capacity(bytes),
            heads: Vec::with_capacity(entries),
        }
    }

    /// Adds an entry after the last one (the caller keeps indices in order).
    pub(super) fn push(&mut self, index: u64, term: u64, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        self.heads.push(Head {
            index,
            term,
            end: self.bytes.len(),
        });
    }

    /// Makes room for `bytes` more payload bytes.
    pub(super) fn reserve_bytes(&mut self, bytes: usize) {
        self.bytes.reserve(bytes);
    }

    /// How many entries the batch holds.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether the batch holds no entry.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// The sum of the entries' payload lengths.
    pub fn payload_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The `i`-th entry of the batch (not the entry of index `i`), if there is one.
    pub fn get(&self, i: usize) -> Option<EntryRef<'_>> {
        let head = self.heads.get(i)?;
        let start = match i.checked_sub(1) {
            Some(before) => self.heads.get(before)?.end,
            None => 0,
        };
        Some(EntryRef {
            index: head.index,
            term: head.term,
            data: self.bytes.get(start..head.end)?,
        })
    }

    /// The first entry, if any.
    pub fn first(&self) -> Option<EntryRef<'_>> {
        self.get(0)
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<EntryRef<'_>> {
        self.get(self.len().checked_sub(1)?)
    }

    /// The entries in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            batch: self,
            front: 0,
            back: self.len(),
        }
    }

    /// The entries as owned [`Entry`]s (one allocation per entry, as
    /// [`super::RaftLog::entries`] makes).
    pub fn into_entries(self) -> Vec<Entry> {
        self.iter().map(|e| e.to_entry()).collect()
    }
}

impl<'a> IntoIterator for &'a EntryBatch {
    type Item = EntryRef<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The entries of an [`EntryBatch`] in order ([`EntryBatch::iter`]).
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    batch: &'a EntryBatch,
    /// The next entry from the front.
    front: usize,
    /// One past the next entry from the back.
    back: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        if self.front >= self.back {
            return None;
        }
        let e = self.batch.get(self.front)?;
        self.front += 1;
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back.saturating_sub(self.front);
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        self.batch.get(self.back)
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A batch gives back exactly the entries pushed into it, forwards, backwards and
        /// by position, and as owned entries.
        #[test]
        fn a_batch_gives_back_what_was_pushed(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30),
            first in 0u64..1_000,
        ) {
            let entries: Vec<Entry> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| Entry::new(first + i as u64, 1 + i as u64 / 4, p.clone()))
                .collect();
            let mut batch = EntryBatch::with_capacity(0, 0);
            for e in &entries {
                batch.push(e.index, e.term, &e.data);
            }
            prop_assert_eq!(batch.len(), entries.len());
            prop_assert_eq!(batch.is_empty(), entries.is_empty());
            prop_assert_eq!(batch.payload_bytes(), payloads.iter().map(Vec::len).sum::<usize>());
            let forwards: Vec<Entry> = batch.iter().map(|e| e.to_entry()).collect();
            prop_assert_eq!(&forwards, &entries);
            let mut backwards: Vec<Entry> = batch.iter().rev().map(|e| e.to_entry()).collect();
            backwards.reverse();
            prop_assert_eq!(&backwards, &entries);
            for (i, e) in entries.iter().enumerate() {
                let got = batch.get(i).map(|r| r.to_entry());
                prop_assert_eq!(got.as_ref(), Some(e));
            }
            prop_assert!(batch.get(entries.len()).is_none());
            prop_assert_eq!(batch.first().map(|e| e.id()), entries.first().map(Entry::id));
            prop_assert_eq!(batch.last().map(|e| e.id()), entries.last().map(Entry::id));
            prop_assert_eq!(batch.iter().len(), entries.len());
            prop_assert_eq!(batch.into_entries(), entries);
        }
    }
}
