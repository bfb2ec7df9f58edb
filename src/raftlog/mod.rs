//! A Raft log store on one capsuledb database.
//!
//! [`RaftLog`] keeps a Raft replica's log and its hard state (term, vote, commit index)
//! in two tables of a [`Database`], `<name>.log` and `<name>.meta` (the default name is
//! `raft`; the byte layout is in `codec.rs`). Every call that changes the log is one
//! transaction, and every call but [`RaftLog::append_async`] returns once it is
//! durable (an append commits [`Durability::Applied`] and waits for `Durable`, so its
//! entries are readable in this process a moment before; the others commit `Durable`):
//! an append, a truncate or a purge is never half done, and the hard state is never
//! torn. With those calls alone, after a crash or power loss the log
//! holds exactly the calls that returned `Ok` (and possibly the one in flight, whole or
//! not at all). Concurrent appenders on different logs of one database share the
//! engine's group commit. [`RaftLog::append_async`] pipelines appends: it returns an
//! [`AppendTicket`] before the entries are durable, so one log can keep several batches
//! in flight, sharing group commits; after a crash the log is a prefix of the appends,
//! holding at least those whose ticket was waited on (and every one before a later
//! durable call that returned `Ok`).
//!
//! The log's bounds ([`RaftLog::first_index`], [`RaftLog::last_index`]) are kept in
//! memory and answered without I/O; recently appended entries are kept in a bounded
//! in-memory cache too (see [`RaftLog::entries`]).
//!
//! ```
//! use capsuledb::raftlog::{Entry, HardState, RaftLog};
//! # fn main() -> capsuledb::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = capsuledb::Database::open(dir.path().join("raft.db"))?;
//! let log = RaftLog::open(&db)?;
//! log.append(&[Entry::new(1, 1, b"a".to_vec()), Entry::new(2, 1, b"b".to_vec())])?;
//! log.append(&[Entry::new(3, 2, b"c".to_vec())])?;
//! assert_eq!((log.first_index(), log.last_index()), (1, Some(3)));
//!
//! // A new leader overwrites a conflicting suffix: truncate, then append.
//! log.truncate(3)?;
//! log.append(&[Entry::new(3, 3, b"c'".to_vec())])?;
//! assert_eq!(log.entry(3)?.unwrap().data, b"c'");
//!
//! // Compaction after a snapshot: the term of the last purged entry is remembered.
//! log.purge(2)?;
//! assert_eq!(log.first_index(), 3);
//! assert_eq!(log.term(2)?, Some(1));
//! assert_eq!(log.entries(..)?.len(), 1);
//!
//! log.save_hard_state(&HardState { term: 3, vote: Some(2), commit: 3 })?;
//! drop(log);
//! let log = RaftLog::open(&db)?; // everything above survives a reopen (or a crash)
//! assert_eq!(log.hard_state().vote, Some(2));
//! assert_eq!((log.first_index(), log.last_index()), (3, Some(3)));
//! # Ok(()) }
//! ```
//!
//! ## Index rules
//! - An empty log that never purged anything starts at the index of its first append
//!   (0 for openraft, 1 for the raft-rs convention). Otherwise an append must start
//!   right after [`RaftLog::last_entry_id`] and be contiguous, with terms that never go
//!   down.
//! - [`RaftLog::truncate`] may not reach purged entries; [`RaftLog::purge`] may not go
//!   past the last entry ([`RaftLog::purge_to`] may, given the term, as installing a
//!   snapshot needs).
//!
//! Breaking a rule gives [`Error::LogOrder`] and writes nothing.
//!
//! ## One handle per log
//! The bounds and the cache live in the handle, so two handles on the same tables would
//! each miss the other's changes (an append at any index on a log the other had
//! filled, leaving a hole). Opening a log that is already open in this process, on
//! the same database, returns the open handle (a clone); the handles are shared.
//!
//! ## After an I/O failure
//! A commit that fails for any reason but [`Error::Conflict`] may or may not have
//! reached the disk, so the handle stops accepting changes ([`Error::Poisoned`]); the
//! engine refuses commits too. Reopen the database and the log to continue.

mod batch;
mod bounds;
mod cache;
mod codec;
mod entry;
#[cfg(feature = "openraft")]
pub mod openraft;
mod read;

use crate::{Database, Durability, Error, Isolation, Result};
pub use batch::{EntryBatch, EntryRef, Iter as EntryBatchIter};
use bounds::{Bounds, check_bounds};
use cache::Cache;
use codec::{HARD_STATE_KEY, PURGED_KEY, decode_entry_value, decode_log_key, log_key};
pub use entry::{AppendTicket, Entry, EntryId, HardState};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;

/// Tries at creating the log's tables when another opener races us.
const OPEN_TRIES_MAX: u32 = 8;

/// The logs open in this process: the database they are on ([`Database::identity`]:
/// the handle holds that database, so the value names no other while the handle lives),
/// their name and their shared state.
type OpenLogs = Vec<(usize, String, std::sync::Weak<Inner>)>;
static OPEN_LOGS: Mutex<OpenLogs> = Mutex::new(Vec::new());
/// Held by an open that reads a log's bounds from the database, until its handle is
/// registered in [`OPEN_LOGS`].
static OPENING: Mutex<()> = Mutex::new(());

/// Table name used by [`RaftLog::open`].
pub const DEFAULT_NAME: &str = "raft";

/// The longest payload an [`Entry`] may carry: one stored value
/// ([`crate::MAX_VALUE_LEN`]) less the entry's term stored in front of it. An append of a
/// longer one is [`Error::ValueTooLarge`] naming the payload's length and this limit.
pub const ENTRY_PAYLOAD_MAX: usize = crate::MAX_VALUE_LEN - codec::TERM_LEN;

/// A Raft log and hard state stored in a capsuledb [`Database`]. Cheap to clone (the
/// clones share one log); `Send + Sync`. See the [module docs](self).
#[derive(Clone)]
pub struct RaftLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RaftLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLog")
            .field("log_table", &self.inner.log_table)
            .field("first_index", &self.first_index())
            .field("last_index", &self.last_index())
            .finish_non_exhaustive()
    }
}

// Shared across threads by design: a compile-time check.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<RaftLog>();
};

struct Inner {
    db: Database,
    log_table: String,
    meta_table: String,
    /// Serializes the calls that change the log (append, truncate, purge), held across
    /// their commit so `bounds` always matches the committed log (an append from
    /// [`RaftLog::append_async`] may not be durable yet; later commits are durable only
    /// after it).
    writer: Mutex<()>,
    /// Serializes hard-state saves so `hard` matches the last durable save.
    hard_writer: Mutex<()>,
    bounds: Mutex<Bounds>,
    hard: Mutex<HardState>,
    cache: RwLock<Cache>,
    /// Why the handle stopped accepting changes, after an ambiguous commit failure.
    poisoned: Mutex<Option<String>>,
}

impl RaftLog {
    /// Opens the log named [`DEFAULT_NAME`] in `db`, creating its tables if absent.
    pub fn open(db: &Database) -> Result<RaftLog> {
        RaftLog::open_named(db, DEFAULT_NAME)
    }

    /// Opens the log stored in the tables `<name>.log` and `<name>.meta` of `db`,
    /// creating them if absent. Several logs can share one database under different
    /// names (their appends then share group commits).
    ///
    /// A database opened read-only is refused with [`Error::ReadOnlyDatabase`] (the open
    /// begins a read-write transaction): the log's bounds are read once and kept in
    /// memory, and a live reader's would stay those of its open.
    pub fn open_named(db: &Database, name: &str) -> Result<RaftLog> {
        let id = db.identity();
        // A dead entry for the same log may stand before a live one: every match is
        // tried.
        let live = |open: &OpenLogs| {
            open.iter()
                .filter(|(d, n, _)| *d == id && n == name)
                .find_map(|(_, _, inner)| inner.upgrade())
        };
        let open_now = || {
            let mut open = OPEN_LOGS.lock();
            open.retain(|(_, _, inner)| inner.strong_count() > 0);
            live(&open)
        };
        if let Some(inner) = open_now() {
            return Ok(RaftLog { inner });
        }
        // Opened without the registry's lock (it commits) but one at a time: two opens
        // racing each other could otherwise both read the log's bounds, one register,
        // append and drop its handle, and the other then register bounds without those
        // appends (and accept an append that leaves a gap or overwrites them).
        let _opening = OPENING.lock();
        if let Some(inner) = open_now() {
            return Ok(RaftLog { inner });
        }
        let log = RaftLog::open_new(db, name)?;
        OPEN_LOGS
            .lock()
            .push((id, name.to_string(), Arc::downgrade(&log.inner)));
        Ok(log)
    }

    /// [`RaftLog::open_named`] of a log not open in this process.
    fn open_new(db: &Database, name: &str) -> Result<RaftLog> {
        let log_table = format!("{name}.log");
        let meta_table = format!("{name}.meta");
        create_tables(db, &[&log_table, &meta_table])?;
        let mut conn = db.connect();
        let tx = conn.begin_read()?;
        let purged = tx
            .get(&meta_table, PURGED_KEY)?
            .map(|v| codec::decode_purged(&v))
            .transpose()?;
        let hard = tx
            .get(&meta_table, HARD_STATE_KEY)?
            .map(|v| codec::decode_hard_state(&v))
            .transpose()?
            .unwrap_or_default();
        let first = tx.iter(&log_table)?.next().transpose()?;
        let last = tx
            .range_rev::<&[u8], _>(&log_table, ..)?
            .next()
            .transpose()?;
        let held = match (first, last) {
            (Some((fk, _)), Some((lk, lv))) => {
                let first = decode_log_key(&fk)?;
                let last = decode_log_key(&lk)?;
                let (term, _) = decode_entry_value(last, &lv)?;
                Some((first, EntryId { index: last, term }))
            }
            _ => None,
        };
        let bounds = Bounds { purged, held };
        check_bounds(&bounds)?;
        drop(tx);
        Ok(RaftLog {
            inner: Arc::new(Inner {
                db: db.clone(),
                log_table,
                meta_table,
                writer: Mutex::new(()),
                hard_writer: Mutex::new(()),
                bounds: Mutex::new(bounds),
                hard: Mutex::new(hard),
                cache: RwLock::new(Cache::new()),
                poisoned: Mutex::new(None),
            }),
        })
    }

    /// The database the log lives in.
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// Fails when the handle or its database no longer accepts changes (an ambiguous
    /// commit failure poisoned one of them).
    #[cfg(feature = "openraft")]
    pub(crate) fn usable(&self) -> Result<()> {
        self.inner.check_usable()?;
        self.inner.db.engine().committer.check_poisoned()
    }

    /// The log's name: its tables are `<name>.log` and `<name>.meta`.
    pub fn name(&self) -> &str {
        let table = &self.inner.log_table;
        table.strip_suffix(".log").unwrap_or(table)
    }

    /// Index of the first entry the log holds; when it holds none, the index the next
    /// append must start at (0 for a log that never held anything). No I/O.
    pub fn first_index(&self) -> u64 {
        self.inner.bounds.lock().first_index()
    }

    /// Index of the last entry appended and not truncated, or of the last purged entry
    /// when the log holds none; `None` for a log that never held anything. No I/O.
    pub fn last_index(&self) -> Option<u64> {
        self.last_entry_id().map(|id| id.index)
    }

    /// Index and term of the last entry (held or purged), as
    /// [`RaftLog::last_index`]. No I/O.
    pub fn last_entry_id(&self) -> Option<EntryId> {
        self.inner.bounds.lock().last_id()
    }

    /// Index and term of the last purged entry, if anything was purged. No I/O.
    pub fn last_purged(&self) -> Option<EntryId> {
        self.inner.bounds.lock().purged
    }

    /// Number of entries the log holds. No I/O.
    pub fn len(&self) -> u64 {
        self.inner.bounds.lock().held.map_or(0, |(first, last)| {
            last.index.saturating_sub(first).saturating_add(1)
        })
    }

    /// Whether the log holds no entries. No I/O.
    pub fn is_empty(&self) -> bool {
        self.inner.bounds.lock().held.is_none()
    }

    /// Appends `entries` in one transaction and waits until it is durable ([`Durability::Applied`],
    /// then a wait for `Durable`: readable in this process before it returns, and, when the
    /// wait fails, readable in this process although a crash may lose them; the handle
    /// refuses further changes then). They must be contiguous, start
    /// right after the last entry (or anywhere, on a log that never held anything), and
    /// have terms that never go down; otherwise [`Error::LogOrder`] and nothing is
    /// written. A payload over [`ENTRY_PAYLOAD_MAX`] is [`Error::ValueTooLarge`]. Returns once the entries are on stable storage. An empty slice is a
    /// no-op. [`RaftLog::append_async`] returns earlier.
    pub fn append(&self, entries: &[Entry]) -> Result<()> {
        match self.append_async(entries)? {
            Some(ticket) => ticket.wait(),
            None => Ok(()),
        }
    }

    /// Appends `entries` like [`RaftLog::append`] but returns before they are durable,
    /// with a ticket to learn when they are ([`AppendTicket::wait`]); `None` for an
    /// empty slice. The entries are in the log (bounds, reads) at once. Several appends
    /// can be in flight and share one group commit: waiting on a ticket makes its
    /// append and every earlier one durable.
    ///
    /// After a crash the log holds a prefix of the appends made: every append whose
    /// ticket was waited on successfully, possibly some later ones, never a later one
    /// without an earlier one, and none half written.
    ///
    /// ```
    /// use capsuledb::raftlog::{Entry, RaftLog};
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = capsuledb::Database::open(dir.path().join("raft.db"))?;
    /// let log = RaftLog::open(&db)?;
    /// let first = log.append_async(&[Entry::new(1, 1, b"a".to_vec())])?;
    /// let second = log.append_async(&[Entry::new(2, 1, b"b".to_vec())])?;
    /// assert_eq!(log.last_index(), Some(2)); // in the log, maybe not durable yet
    /// second.unwrap().wait()?; // both appends are durable now
    /// assert!(db.stats().durable_seq >= first.unwrap().seq());
    /// # Ok(()) }
    /// ```
    pub fn append_async(&self, entries: &[Entry]) -> Result<Option<AppendTicket>> {
        let Some(head) = entries.first() else {
            return Ok(None);
        };
        let inner = &*self.inner;
        let _writer = inner.writer.lock();
        inner.check_usable()?;
        let before = *inner.bounds.lock();
        let refuse = |index: u64, what: String| Error::LogOrder {
            op: "append",
            index,
            what,
        };
        let mut prev = before.last_id();
        if let Some(p) = prev
            && head.index != p.index.wrapping_add(1)
        {
            return Err(refuse(
                head.index,
                format!(
                    "expected index {} after the last entry {}",
                    p.index.wrapping_add(1),
                    p.index
                ),
            ));
        }
        for e in entries {
            if e.data.len() > ENTRY_PAYLOAD_MAX {
                return Err(Error::ValueTooLarge {
                    len: e.data.len(),
                    max: ENTRY_PAYLOAD_MAX,
                });
            }
            if let Some(p) = prev {
                if p.index.checked_add(1) != Some(e.index) {
                    return Err(refuse(e.index, format!("not contiguous after {}", p.index)));
                }
                if e.term < p.term {
                    return Err(refuse(
                        e.index,
                        format!("term {} below term {} of entry {}", e.term, p.term, p.index),
                    ));
                }
            }
            prev = Some(e.id());
        }
        let last = prev.unwrap_or(head.id());
        let mut conn = inner.db.connect();
        let mut tx = conn.begin_with(Isolation::Snapshot)?;
        for e in entries {
            tx.put(
                &inner.log_table,
                &log_key(e.index),
                &codec::entry_value(e.term, &e.data),
            )?;
        }
        // Sequenced and visible, not yet durable: the ticket waits for that.
        let seq = inner.commit_with(tx, Durability::Applied)?;
        let first = before.held.map_or(head.index, |(first, _)| first);
        let after = Bounds {
            purged: before.purged,
            held: Some((first, last)),
        };
        debug_assert!(check_bounds(&after).is_ok(), "{after:?}");
        *inner.bounds.lock() = after;
        inner.cache.write().append(entries);
        Ok(Some(AppendTicket {
            inner: Arc::clone(&self.inner),
            seq,
            last,
        }))
    }

    /// Removes the entries at `from` and after, atomically and durably (the conflict
    /// rollback of a follower). `from` past the last entry is a no-op; `from` at or
    /// below the last purged index is [`Error::LogOrder`].
    ///
    /// Every removal (this, [`RaftLog::purge`], [`RaftLog::purge_to`]) is one
    /// transaction deleting one key per removed entry: it holds memory in proportion
    /// and fails with [`Error::TransactionTooLarge`] past about 134 million entries
    /// ([`crate::MAX_TRANSACTION_BYTES`] over 8-byte keys); purge a longer log in steps.
    pub fn truncate(&self, from: u64) -> Result<()> {
        let inner = &*self.inner;
        let _writer = inner.writer.lock();
        inner.check_usable()?;
        let before = *inner.bounds.lock();
        if let Some(p) = before.purged
            && from <= p.index
        {
            return Err(Error::LogOrder {
                op: "truncate",
                index: from,
                what: format!("entries up to {} are purged", p.index),
            });
        }
        let Some((first, last)) = before.held else {
            return Ok(());
        };
        if from > last.index {
            return Ok(());
        }
        let mut conn = inner.db.connect();
        let mut tx = conn.begin_with(Isolation::Snapshot)?;
        let held = if from > first {
            let prev = from - 1;
            let value = tx
                .get_ref(&inner.log_table, &log_key(prev))?
                .ok_or_else(|| Error::corrupted(0, format!("raft log entry {prev} is missing")))?;
            let (term, _) = decode_entry_value(prev, &value)?;
            Some((first, EntryId { index: prev, term }))
        } else {
            None
        };
        inner.delete_entries(&mut tx, from.max(first), last.index)?;
        inner.commit_removal(tx, |cache| cache.truncate(from))?;
        let after = Bounds {
            purged: before.purged,
            held,
        };
        debug_assert!(check_bounds(&after).is_ok(), "{after:?}");
        *inner.bounds.lock() = after;
        Ok(())
    }

    /// Removes the entries up to and including `upto`, atomically and durably (log
    /// compaction after a snapshot), remembering `upto`'s term so
    /// [`RaftLog::first_index`] and [`RaftLog::term`] stay right after a reopen. `upto`
    /// at or below the last purged index is a no-op; past the last entry it is
    /// [`Error::LogOrder`] (use [`RaftLog::purge_to`]).
    pub fn purge(&self, upto: u64) -> Result<()> {
        let inner = &*self.inner;
        let _writer = inner.writer.lock();
        inner.check_usable()?;
        let before = *inner.bounds.lock();
        if before.purged.is_some_and(|p| upto <= p.index) {
            return Ok(());
        }
        match before.held {
            Some((first, _)) if upto < first => Ok(()),
            Some(_) if before.holds(upto) => {
                let term = inner.stored_term(upto)?;
                inner.purge_locked(before, EntryId { index: upto, term }, None)
            }
            _ => Err(Error::LogOrder {
                op: "purge",
                index: upto,
                what: format!(
                    "past the last entry {:?} (purge_to takes the term)",
                    before.last_id().map(|id| id.index)
                ),
            }),
        }
    }

    /// Removes the entries up to and including `upto.index`, like [`RaftLog::purge`],
    /// but `upto` may lie past the last entry (installing a snapshot of a longer log):
    /// the log then holds nothing and the next append must start at `upto.index + 1`.
    /// If the entry at `upto.index` is held, its term must be `upto.term`; past the last
    /// entry a term below the last entry's is taken (the snapshot of a committed prefix
    /// supersedes entries a deposed leader left here), never one below the term of an
    /// entry purged before (purged entries were committed).
    pub fn purge_to(&self, upto: EntryId) -> Result<()> {
        self.purge_to_inner(upto, None)
    }

    /// [`RaftLog::purge_to`], also saving `value` under the meta `name` (as
    /// [`RaftLog::save_meta`]) in the same commit: for adapters that keep more about the
    /// purged entry than its index and term. Nothing is saved when the purge is a no-op.
    pub fn purge_to_with_meta(&self, upto: EntryId, name: &str, value: &[u8]) -> Result<()> {
        self.purge_to_inner(upto, Some((name, value)))
    }

    fn purge_to_inner(&self, upto: EntryId, meta: Option<(&str, &[u8])>) -> Result<()> {
        let inner = &*self.inner;
        let _writer = inner.writer.lock();
        inner.check_usable()?;
        let before = *inner.bounds.lock();
        if let Some(p) = before.purged
            && upto.index <= p.index
        {
            if upto.index == p.index && upto.term != p.term {
                return Err(Error::LogOrder {
                    op: "purge",
                    index: upto.index,
                    what: format!("already purged with term {}, not {}", p.term, upto.term),
                });
            }
            return Ok(());
        }
        if let Some((first, _)) = before.held
            && upto.index.saturating_add(1) < first
        {
            // Below a log that starts past it (one never purged may start anywhere):
            // nothing to remove, and nothing recorded (only `first - 1` may be, which
            // keeps the first entry right after the purged one).
            return Ok(());
        }
        if before.holds(upto.index) {
            let term = inner.stored_term(upto.index)?;
            if term != upto.term {
                return Err(Error::LogOrder {
                    op: "purge",
                    index: upto.index,
                    what: format!("the entry has term {term}, not {}", upto.term),
                });
            }
        } else if let Some(p) = before.purged
            && upto.term < p.term
        {
            // Past the last entry (a held one is checked against its own term, which
            // `purge` takes as it is): purged entries were committed, and a later
            // committed index has no lower term.
            return Err(Error::LogOrder {
                op: "purge",
                index: upto.index,
                what: format!(
                    "term {} below the term {} of the purged entry {}",
                    upto.term, p.term, p.index
                ),
            });
        }
        // Past the last entry, the whole log goes whatever its terms: a snapshot of a
        // committed prefix supersedes it. Its last term may be below the last entry's
        // (entries a deposed leader left uncommitted here, an older-term entry committed
        // by the current leader), and openraft treats a refusal as fatal.
        inner.purge_locked(before, upto, meta)
    }

    /// The entry at `index`, if the log holds it.
    pub fn entry(&self, index: u64) -> Result<Option<Entry>> {
        if let Some(e) = self.inner.cache.read().get(index) {
            return Ok(Some(e));
        }
        let mut conn = self.inner.db.connect();
        let tx = conn.begin_read()?;
        let Some(value) = tx.get_ref(&self.inner.log_table, &log_key(index))? else {
            // Absent at the log's ends; damage between two entries (the log is
            // contiguous).
            let above = tx
                .range::<&[u8], _>(&self.inner.log_table, &log_key(index)[..]..)?
                .next()
                .transpose()?;
            if let Some((k, _)) = above {
                read::check_present(&tx, &self.inner.log_table, index, decode_log_key(&k)?)?;
            }
            return Ok(None);
        };
        let (term, data) = decode_entry_value(index, &value)?;
        Ok(Some(Entry::new(index, term, data.to_vec())))
    }

    /// The term of entry `index`: of a held entry, or of the last purged one; `None`
    /// for any other index.
    pub fn term(&self, index: u64) -> Result<Option<u64>> {
        let bounds = *self.inner.bounds.lock();
        if let Some(p) = bounds.purged
            && p.index == index
        {
            return Ok(Some(p.term));
        }
        if let Some((_, last)) = bounds.held
            && last.index == index
        {
            return Ok(Some(last.term));
        }
        Ok(self.entry(index)?.map(|e| e.term))
    }

    /// Saves the hard state durably, in one key and one commit: after a crash it is
    /// the old or the new value, never a mix, and the new one if this returned `Ok`.
    pub fn save_hard_state(&self, hard: &HardState) -> Result<()> {
        let inner = &*self.inner;
        let _writer = inner.hard_writer.lock();
        inner.check_usable()?;
        let mut conn = inner.db.connect();
        let mut tx = conn.begin_with(Isolation::Snapshot)?;
        tx.put(
            &inner.meta_table,
            HARD_STATE_KEY,
            &codec::encode_hard_state(hard),
        )?;
        inner.commit(tx)?;
        *inner.hard.lock() = *hard;
        Ok(())
    }

    /// The last saved hard state (all zero and no vote if none was saved). No I/O.
    pub fn hard_state(&self) -> HardState {
        *self.inner.hard.lock()
    }

    /// Saves `value` under `name` durably, in one commit: a small record for adapters
    /// (openraft's vote, a committed index, a snapshot's metadata).
    pub fn save_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        let inner = &*self.inner;
        inner.check_usable()?;
        let mut conn = inner.db.connect();
        let mut tx = conn.begin_with(Isolation::Snapshot)?;
        tx.put(&inner.meta_table, &codec::user_meta_key(name), value)?;
        inner.commit(tx)?;
        Ok(())
    }

    /// The value last saved under `name` with [`RaftLog::save_meta`].
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let mut conn = self.inner.db.connect();
        let tx = conn.begin_read()?;
        tx.get(&self.inner.meta_table, &codec::user_meta_key(name))
    }
}

impl Inner {
    fn check_usable(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Commits durably. A conflict wrote nothing; any other failure may or may not
    /// have reached the disk, so the handle's bounds can no longer be trusted.
    fn commit(&self, tx: crate::Transaction<'_>) -> Result<()> {
        self.commit_with(tx, Durability::Durable).map(|_| ())
    }

    /// Commits a removal of entries, dropping them from the cache first (`forget`): a
    /// reader that saw the new bounds must not be served a removed entry from the cache
    /// (meanwhile readers read the database). Only appends fill the cache, under the
    /// writer lock the caller holds; a failed commit empties it.
    fn commit_removal(
        &self,
        tx: crate::Transaction<'_>,
        forget: impl FnOnce(&mut Cache),
    ) -> Result<()> {
        forget(&mut self.cache.write());
        self.commit(tx).inspect_err(|_| self.cache.write().clear())
    }

    /// Commits at `level` and returns the commit's seq; failures as [`Inner::commit`].
    fn commit_with(&self, tx: crate::Transaction<'_>, level: Durability) -> Result<u64> {
        match tx.commit_with(level) {
            Ok(info) => Ok(info.seq),
            Err(e @ Error::Conflict { .. }) => Err(e),
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Stops accepting changes after an ambiguous failure.
    fn poison(&self, e: &Error) {
        let mut poisoned = self.poisoned.lock();
        if poisoned.is_none() {
            *poisoned = Some(format!("raft log commit failed: {e}"));
        }
    }

    /// The term stored with held entry `index`.
    fn stored_term(&self, index: u64) -> Result<u64> {
        if let Some(e) = self.cache.read().get_term(index) {
            return Ok(e);
        }
        let mut conn = self.db.connect();
        let tx = conn.begin_read()?;
        let value = tx
            .get_ref(&self.log_table, &log_key(index))?
            .ok_or_else(|| Error::corrupted(0, format!("raft log entry {index} is missing")))?;
        Ok(decode_entry_value(index, &value)?.0)
    }

    /// Deletes the entries `lo..=hi` in `tx`: the keys found there, not every index in
    /// between (a log's first and last keys come from the file, so a damaged or hostile
    /// one could put 2^63 indexes between two entries).
    fn delete_entries(&self, tx: &mut crate::Transaction<'_>, lo: u64, hi: u64) -> Result<()> {
        if lo > hi {
            return Ok(());
        }
        let mut held = Vec::new();
        {
            let mut scan = tx.scan(&self.log_table, log_key(lo)..=log_key(hi))?;
            while let Some(item) = scan.next() {
                let (key, _) = item?;
                held.push(decode_log_key(key)?);
            }
        }
        for index in held {
            tx.delete(&self.log_table, &log_key(index))?;
        }
        Ok(())
    }

    /// Purges up to `upto` with the writer lock held and the checks done.
    fn purge_locked(
        &self,
        before: Bounds,
        upto: EntryId,
        meta: Option<(&str, &[u8])>,
    ) -> Result<()> {
        let mut conn = self.db.connect();
        let mut tx = conn.begin_with(Isolation::Snapshot)?;
        let mut held = None;
        if let Some((first, last)) = before.held {
            self.delete_entries(&mut tx, first, upto.index.min(last.index))?;
            if upto.index < last.index {
                held = Some((upto.index + 1, last));
            }
        }
        tx.put(&self.meta_table, PURGED_KEY, &codec::encode_purged(upto))?;
        if let Some((name, value)) = meta {
            tx.put(&self.meta_table, &codec::user_meta_key(name), value)?;
        }
        self.commit_removal(tx, |cache| cache.purge(upto.index))?;
        let after = Bounds {
            purged: Some(upto),
            held,
        };
        debug_assert!(check_bounds(&after).is_ok(), "{after:?}");
        *self.bounds.lock() = after;
        Ok(())
    }
}

/// Creates the tables that do not exist yet, in one commit.
fn create_tables(db: &Database, names: &[&str]) -> Result<()> {
    let mut conn = db.connect();
    let mut tries = 0;
    loop {
        let mut tx = conn.begin_with(Isolation::Snapshot)?;
        let mut missing = false;
        for name in names {
            if !tx.table_exists(name)? {
                tx.create_table(name)?;
                missing = true;
            }
        }
        if !missing {
            return Ok(());
        }
        match tx.commit_with(Durability::Durable) {
            Ok(_) => return Ok(()),
            Err(Error::Conflict { .. }) if tries < OPEN_TRIES_MAX => tries += 1,
            Err(e) => return Err(e),
        }
    }
}
