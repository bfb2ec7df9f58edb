//! The log's records as callers see them (`Entry`, `EntryId`, `HardState`) and the
//! ticket of an append that may not be durable yet.

use super::Inner;
use crate::{Durability, Result};
use std::sync::Arc;

/// One Raft log entry: its position, the term of the leader that created it, and an
/// opaque payload.
///
/// ```
/// let e = capsuledb::raftlog::Entry::new(7, 2, b"set x=1".to_vec());
/// assert_eq!((e.index, e.term), (7, 2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Entry {
    /// Position in the log.
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// The payload, stored as given.
    pub data: Vec<u8>,
}

impl Entry {
    /// An entry at `index` of `term` carrying `data`.
    pub fn new(index: u64, term: u64, data: Vec<u8>) -> Entry {
        Entry { index, term, data }
    }

    /// The entry's `(index, term)`.
    pub fn id(&self) -> EntryId {
        EntryId {
            index: self.index,
            term: self.term,
        }
    }
}

/// An entry's position and term: what Raft compares logs by.
///
/// ```
/// let e = capsuledb::raftlog::Entry::new(9, 2, Vec::new());
/// assert_eq!(e.id(), capsuledb::raftlog::EntryId { index: 9, term: 2 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct EntryId {
    /// Position in the log.
    pub index: u64,
    /// Term of the entry.
    pub term: u64,
}

/// The state a Raft replica must persist before answering a message: its current term,
/// whom it voted for in that term, and (optionally) the commit index.
///
/// ```
/// let h = capsuledb::raftlog::HardState { term: 4, vote: Some(1), commit: 10 };
/// assert_eq!(capsuledb::raftlog::HardState::default().vote, None);
/// # let _ = h;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// Node voted for in `term`, if any.
    pub vote: Option<u64>,
    /// Highest index known committed.
    pub commit: u64,
}

/// An append that may not be durable yet ([`super::RaftLog::append_async`]). Cheap to clone;
/// `Send + Sync`, so another thread can wait on it.
#[derive(Clone)]
#[must_use = "an append is not known durable until its ticket is waited on"]
pub struct AppendTicket {
    pub(super) inner: Arc<Inner>,
    pub(super) seq: u64,
    pub(super) last: EntryId,
}

impl AppendTicket {
    /// Blocks until the append (and every earlier change of the database) is on
    /// stable storage. If that fails, the append may or may not survive a crash, so
    /// the log's handle stops accepting changes ([`crate::Error::Poisoned`]). A
    /// [`RaftLog::truncate`](super::RaftLog::truncate) since the append may have removed
    /// its entries: `Ok` then says the database is durable up to the append, not that
    /// they are still held (compare [`AppendTicket::last`] with the log's term at its
    /// index).
    pub fn wait(&self) -> Result<()> {
        match self.inner.db.wait_for(self.seq, Durability::Durable) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.inner.poison(&e);
                Err(e)
            }
        }
    }

    /// The commit sequence number of the append's transaction.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The id of the append's last entry.
    pub fn last(&self) -> EntryId {
        self.last
    }
}

impl std::fmt::Debug for AppendTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendTicket")
            .field("seq", &self.seq)
            .field("last", &self.last)
            .finish()
    }
}
