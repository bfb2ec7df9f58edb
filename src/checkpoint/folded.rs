//! What a checkpoint folds, read in place: the version store's chains at or below the
//! horizon and, in a tree commit, the transaction's writes at its sequence, merged in
//! composite-key order without copying either (a million-key tree commit used to copy
//! every key and value into a list first).

use crate::btree::build::{Change, ChangeSource};
use crate::mvcc::history::VersionList;
use crate::mvcc::{FoldedChains, FoldedIter};
use crate::types::{TableId, Value, WriteSet};
use std::cmp::Ordering;
use std::sync::Arc;

/// One folded key's versions.
pub(super) enum Versions<'a> {
    /// From the store, newest first.
    Store(&'a [(u64, Value)]),
    /// A tree commit's write at `seq`, above the store's versions `below`, if any.
    Write {
        seq: u64,
        value: Option<&'a [u8]>,
        below: Option<&'a [(u64, Value)]>,
    },
}

impl<'a> Versions<'a> {
    /// The sequence of the newest version.
    pub fn newest_seq(&self) -> u64 {
        match self {
            Versions::Store(list) => list.first().map_or(0, |(s, _)| *s),
            Versions::Write { seq, .. } => *seq,
        }
    }

    /// The newest value (`None`: a tombstone).
    pub fn newest(&self) -> Option<&'a [u8]> {
        match self {
            Versions::Store(list) => list.first().and_then(|(_, v)| v.as_deref()),
            Versions::Write { value, .. } => *value,
        }
    }

    /// Every version, newest first, as a list of its own.
    pub fn to_list(&self) -> VersionList {
        match self {
            Versions::Store(list) => list.to_vec(),
            Versions::Write { seq, value, below } => {
                let mut list = vec![(*seq, value.map(Arc::from))];
                list.extend(below.iter().flat_map(|b| b.iter().cloned()));
                list
            }
        }
    }
}

/// A folded key: its table, its key within the table, its versions.
pub(super) type Folded<'a> = (TableId, &'a [u8], Versions<'a>);

type WriteItems<'a> = Box<dyn Iterator<Item = (TableId, &'a [u8], Option<&'a [u8]>)> + 'a>;

/// The store's chains (keys in tree order, versions newest first) merged with a tree
/// commit's writes at `seq`, in composite-key order.
pub(super) struct FoldMerge<'a> {
    store: std::iter::Peekable<FoldedIter<'a>>,
    writes: std::iter::Peekable<WriteItems<'a>>,
    seq: u64,
}

impl<'a> FoldMerge<'a> {
    /// The merge of `chains` with `writes` (a tree commit's, at its sequence).
    pub fn new(chains: &'a FoldedChains, writes: Option<(u64, &'a WriteSet)>) -> Self {
        let (seq, items): (u64, WriteItems<'a>) = match writes {
            Some((seq, w)) => (
                seq,
                Box::new(
                    w.iter()
                        .flat_map(|(&t, keys)| keys.iter().map(move |(k, v)| (t, k, v))),
                ),
            ),
            None => (0, Box::new(std::iter::empty())),
        };
        FoldMerge {
            store: chains.iter().peekable(),
            writes: items.peekable(),
            seq,
        }
    }
}

impl<'a> Iterator for FoldMerge<'a> {
    type Item = Folded<'a>;

    fn next(&mut self) -> Option<Folded<'a>> {
        let order = match (self.store.peek(), self.writes.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((st, sk, _)), Some((t, k, _))) => st.cmp(t).then_with(|| sk.cmp(k)),
        };
        if order == Ordering::Less {
            let (table, key, list) = self.store.next()?;
            return Some((table, key, Versions::Store(list)));
        }
        let below = if order == Ordering::Equal {
            self.store.next().map(|(_, _, list)| list)
        } else {
            None
        };
        let (table, key, value) = self.writes.next()?;
        Some((
            table,
            key,
            Versions::Write {
                seq: self.seq,
                value,
                below,
            },
        ))
    }
}

/// What a checkpoint's rebuild applies: each folded key's newest value, then the
/// history entries (whose keys sort after every table's).
pub(super) struct FoldChanges<'a> {
    merge: FoldMerge<'a>,
    retained: super::retained::HistoryChanges<'a>,
    /// The next history change, taken from `retained` and not yet moved past.
    next_retained: Option<Change>,
    /// The current folded key's composite key, and its newest value.
    key: Vec<u8>,
    current: Option<Option<&'a [u8]>>,
    merge_done: bool,
    /// Changes moved past.
    pub taken: u64,
}

impl<'a> FoldChanges<'a> {
    /// The folded keys of `merge`, then `retained`.
    pub fn new(merge: FoldMerge<'a>, retained: super::retained::HistoryChanges<'a>) -> Self {
        FoldChanges {
            merge,
            retained,
            next_retained: None,
            key: Vec::new(),
            current: None,
            merge_done: false,
            taken: 0,
        }
    }
}

impl ChangeSource for FoldChanges<'_> {
    fn peek(&mut self) -> crate::Result<Option<crate::btree::build::ChangeRef<'_>>> {
        if self.current.is_none() && !self.merge_done {
            match self.merge.next() {
                Some((table, key, versions)) => {
                    self.key.clear();
                    self.key.extend_from_slice(&table.to_be_bytes());
                    self.key.extend_from_slice(key);
                    self.current = Some(versions.newest());
                }
                None => self.merge_done = true,
            }
        }
        if let Some(value) = self.current {
            return Ok(Some((self.key.as_slice(), value)));
        }
        if self.next_retained.is_none() {
            self.next_retained = self.retained.next().transpose()?;
        }
        Ok(self
            .next_retained
            .as_ref()
            .map(|(k, v)| (k.as_slice(), v.as_deref())))
    }

    fn advance(&mut self) {
        self.taken += 1;
        if self.current.take().is_none() {
            self.next_retained = None;
        }
    }
}
