//! openraft's storage traits on capsuledb (cargo feature `openraft`, openraft 0.9).
//!
//! - [`LogStore`] is openraft's `RaftLogStorage` + `RaftLogReader` over a
//!   [`RaftLog`]: each openraft entry is stored serialized (JSON) as the payload of one
//!   raftlog entry of the same index and term; the vote, the committed log id and the
//!   full id of the last purged entry are meta records of the log, each saved in the
//!   same commit as what it describes. It works for any type config whose entries
//!   serialize.
//! - [`StateMachine`] is `RaftStateMachine` for [`TypeConfig`]: a key-value state
//!   machine whose data is a capsuledb table (`<name>.sm`), applied in durable
//!   transactions (one per batch, or per part of a batch over 256 MiB of writes), each
//!   together with the last applied log id and membership
//!   (`<name>.sm.meta`), so a crash never separates the data from what it reflects.
//!   Snapshots are a consistent read snapshot of those tables, serialized; the current
//!   one is kept in `<name>.sm.snapshot` in chunks.
//!
//! `append` does not wait for its entries to be durable: it commits the entries without waiting
//! ([`RaftLog::append_async`]) and hands the ticket with openraft's callback to the log
//! store's flusher thread (`capsuledb-raft-flush`, one per log store, started at the
//! first append, stopped when the last clone is dropped), which calls the callback once
//! the entries are durable, so the runtime's thread does not wait for the disk on an
//! append. It can still block briefly: while 8,192 commits wait for a group, for a
//! batch large enough to be written into the tree directly, and for the commits
//! sequenced before its own to become visible (entries are readable when `append`
//! returns, and commits become visible in sequence order): under load, up to the
//! first sync of a group in flight, one `fdatasync`; and, while the version store holds
//! more than twice its budget and a checkpoint folds it, each commit sleeps up to 20 ms
//! (the back-pressure every writer meets). (openraft 0.9 waits for
//! each append's callback before its next storage call, so one append per log store is
//! in flight; the log stores of several nodes in one database share group commits.) The
//! other calls (vote, committed, truncate, purge, the state machine's apply, install and
//! build) block the calling thread on a durable commit (one or two `fdatasync`s): run
//! openraft on a multi-threaded runtime with a spare worker.
//!
//! A purge waits until the [`StateMachine`] of the same name (`<name>.sm.meta`) has
//! durably applied the purged index (and fails, which openraft takes as fatal, once a
//! state machine of that name in this process failed an install, apply or snapshot read
//! without a later install succeeding: a `Raft` started again on the same open
//! `Database` after such a failure stops at its first purge that must wait; reopen the
//! database to start afresh): openraft purges right after handing a received
//! snapshot's install to the state machine's task, and a purge durable before that
//! install, then a crash, would leave the log without entries the state machine still
//! needs. With a state machine of the application's own (no such table), the purge does
//! not wait: that state machine must make an installed snapshot durable before openraft
//! can purge past it, or keep its own record.
//!
//! Limits. An entry is stored as one capsuledb value, so its JSON must fit
//! [`crate::MAX_VALUE_LEN`]: [`Request::check`] says whether a request does (JSON
//! spends up to 4 bytes per byte of a key or value), and a leader must check before
//! `client_write`, since openraft stops on a log store that cannot store an entry. A
//! request whose key is over [`crate::MAX_KEY_LEN`] that reaches the log anyway is
//! applied as nothing ([`Response::refused`]). A snapshot is built, and installed, in
//! one transaction ([`crate::MAX_TRANSACTION_BYTES`], 1 GiB): the build stores the
//! pairs as JSON, the install the JSON and the pairs themselves, so a state machine of
//! more than about 230 MB of keys and values cannot be installed on a follower (and one
//! over about 250 MB cannot be snapshotted), and openraft stops when a build or an
//! install fails. Keep such state elsewhere, or set openraft's snapshot policy to
//! `Never`.
//!
//! ```
//! use capsuledb::raftlog::openraft::{LogStore, StateMachine, TypeConfig};
//! # fn main() -> capsuledb::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = capsuledb::Database::open(dir.path().join("node1.db"))?;
//! let log_store: LogStore<TypeConfig> = LogStore::open(&db)?;
//! let state_machine = StateMachine::open(&db)?;
//! // openraft::Raft::new(1, config, network, log_store, state_machine).await ...
//! # let _ = (log_store, state_machine);
//! # Ok(()) }
//! ```

#![expect(
    clippy::result_large_err,
    reason = "openraft's traits return its StorageError; the helpers return the same"
)]

use super::{AppendTicket, Entry, EntryId, RaftLog};
use crate::{Database, Durability, Isolation};
use ::openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use ::openraft::{
    AnyError, BasicNode, EntryPayload, LogId, OptionalSend, RaftLogId, RaftLogReader,
    RaftSnapshotBuilder, RaftTypeConfig, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, Vote,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

mod state_machine;
pub use state_machine::StateMachine;

/// Meta record of the log: openraft's vote.
const VOTE: &str = "openraft.vote";
/// Meta record of the log: the committed log id.
const COMMITTED: &str = "openraft.committed";
/// Meta record of the log: the full id of the last purged entry.
const PURGED: &str = "openraft.purged";

/// State-machine meta keys.
const LAST_APPLIED: &[u8] = b"last_applied";
const MEMBERSHIP: &[u8] = b"membership";
const SNAPSHOT_META: &[u8] = b"snapshot_meta";
const SNAPSHOT_COUNT: &[u8] = b"snapshot_count";
/// The current snapshot's length in bytes (JSON): chunks lost from its end are found.
const SNAPSHOT_LEN: &[u8] = b"snapshot_len";
/// Appends handed to a log store's flusher thread and not yet reported durable; an
/// `append` finding the queue full waits for room (back-pressure).
const FLUSH_QUEUE_APPENDS_MAX: usize = 1024;
/// How often a purge waiting for the state machine beside the log to reach its index
/// (`LogStore::wait_state_machine_reaches`) says so in the log, and how often it looks.
const PURGE_WAIT_WARN: std::time::Duration = std::time::Duration::from_secs(10);
const PURGE_POLL_MIN: std::time::Duration = std::time::Duration::from_micros(200);
const PURGE_POLL_MAX: std::time::Duration = std::time::Duration::from_millis(20);
/// State machines (database, name) whose snapshot install, apply or read of the current
/// snapshot failed in this process (openraft's state machine task ends there): a purge
/// waiting for one of them
/// stops waiting. Each entry keeps a weak reference to its database: the database's
/// identity (an address) is not reused while it is kept, and an entry whose database is
/// gone is dropped (a database opened later at the freed address took over its failure,
/// and stopped its first purge that waited for a snapshot install).
type FailedStateMachine = (usize, String, Weak<dyn std::any::Any + Send + Sync>);
static FAILED_INSTALLS: parking_lot::Mutex<Vec<FailedStateMachine>> =
    parking_lot::Mutex::new(Vec::new());

/// Records how the latest snapshot install of state machine `name` in `db` ended, or
/// that an apply or a read of the current snapshot failed (`ok` false): a failure makes purges waiting for more than it
/// applied stop, a later successful install clears it. (Not cleared by a new handle: a
/// purge of the failed Raft still polling would then wait for ever.)
fn note_state_machine(db: &Database, name: &str, ok: bool) {
    let id = db.identity();
    let mut failed = FAILED_INSTALLS.lock();
    failed.retain(|(d, n, w)| !(*d == id && n == name) && w.strong_count() > 0);
    if !ok {
        failed.push((id, name.to_string(), db.identity_ref()));
    }
}

fn install_failed(db: &Database, name: &str) -> bool {
    let id = db.identity();
    let mut failed = FAILED_INSTALLS.lock();
    failed.retain(|(_, _, w)| w.strong_count() > 0);
    failed.iter().any(|(d, n, _)| *d == id && n == name)
}

/// Most payload bytes one append of [`LogStore::append`] commits, and about the most
/// one commit of [`StateMachine`]'s apply writes, well under
/// [`crate::MAX_TRANSACTION_BYTES`].
const APPEND_PART_BYTES_MAX: usize = 256 << 20;

/// `batch` cut into consecutive parts of at most [`APPEND_PART_BYTES_MAX`] payload
/// bytes each (one entry alone may be more; an empty batch is one empty part).
fn append_parts(mut batch: &[Entry]) -> Vec<&[Entry]> {
    let mut parts = Vec::new();
    loop {
        let mut bytes = 0;
        let cut = batch.iter().enumerate().position(|(i, e)| {
            bytes += e.data.len();
            i > 0 && bytes > APPEND_PART_BYTES_MAX
        });
        let (part, rest) = batch
            .split_at_checked(cut.unwrap_or(batch.len()))
            .unwrap_or((batch, &[]));
        parts.push(part);
        if rest.is_empty() {
            return parts;
        }
        batch = rest;
    }
}

/// About the most stored entry bytes [`RaftLogReader::limited_get_log_entries`] returns
/// (at least one entry, however large): what a leader reads, decodes and serializes for
/// one replication message to a follower. Without it a follower 300 entries behind
/// (openraft's `max_payload_entries`) on a log of 16 MiB entries had the leader hold
/// gigabytes for one message.
pub const REPLICATION_READ_BYTES_MAX: usize = 8 << 20;

/// Bytes of a stored snapshot per key (well under [`crate::MAX_VALUE_LEN`]).
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// A write to the key-value state machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// The largest JSON encoding of a [`Request`] that [`Request::check`] accepts: its
/// log entry (the openraft entry as JSON, a few hundred bytes more) must fit one
/// capsuledb value ([`crate::MAX_VALUE_LEN`]). JSON writes each byte of a key or value
/// as a number and a comma, up to 4 bytes, so a value of 4 MiB may not fit.
pub const REQUEST_JSON_BYTES_MAX: usize = crate::MAX_VALUE_LEN - 4096;

impl Request {
    /// Whether this request can go into the log and be applied: its key within
    /// [`crate::MAX_KEY_LEN`] ([`crate::Error::KeyTooLarge`]) and its JSON within
    /// [`REQUEST_JSON_BYTES_MAX`] ([`crate::Error::ValueTooLarge`]). Call it before
    /// `Raft::client_write`: a leader whose log store cannot store an entry stops its
    /// Raft (openraft treats a storage error as fatal). A request with a key too large
    /// that reaches the log anyway is applied as nothing on every replica
    /// ([`Response::refused`]).
    pub fn check(&self) -> crate::Result<()> {
        if let Some(refused) = self.inapplicable() {
            return Err(refused);
        }
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        serde_json::to_writer(&mut count, self).map_err(|e| crate::Error::Encode {
            ty: "raft request",
            what: e.to_string(),
        })?;
        if count.0 > REQUEST_JSON_BYTES_MAX {
            return Err(crate::Error::ValueTooLarge {
                len: count.0,
                max: REQUEST_JSON_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// Why the state machine cannot apply this request, if it cannot: the same answer
    /// on every replica (it depends on the request alone).
    fn inapplicable(&self) -> Option<crate::Error> {
        let (key, value) = match self {
            Request::Set { key, value } => (key, Some(value)),
            Request::Delete { key } => (key, None),
        };
        if key.len() > crate::MAX_KEY_LEN {
            return Some(crate::Error::KeyTooLarge {
                len: key.len(),
                max: crate::MAX_KEY_LEN,
            });
        }
        match value {
            Some(v) if v.len() > crate::MAX_VALUE_LEN => Some(crate::Error::ValueTooLarge {
                len: v.len(),
                max: crate::MAX_VALUE_LEN,
            }),
            _ => None,
        }
    }
}

/// What applying a [`Request`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The key's value before the request.
    pub previous: Option<Vec<u8>>,
    /// Set when the request was applied as nothing because the state machine cannot
    /// hold it (a key over [`crate::MAX_KEY_LEN`]): why. [`Request::check`] refuses
    /// such requests before they reach the log.
    #[serde(default)]
    pub refused: Option<String>,
}

::openraft::declare_raft_types!(
    /// The openraft type configuration of [`StateMachine`]: [`Request`] in,
    /// [`Response`] out, `u64` node ids, openraft's `BasicNode`, entries and Tokio runtime.
    pub TypeConfig:
        D = Request,
        R = Response,
);

type NodeIdOf<C> = <C as RaftTypeConfig>::NodeId;
type Nid = u64;

fn io_err(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

fn logs_read<NID: ::openraft::NodeId>(e: impl std::error::Error + 'static) -> StorageError<NID> {
    StorageIOError::read_logs(io_err(e)).into()
}

fn logs_write<NID: ::openraft::NodeId>(e: impl std::error::Error + 'static) -> StorageError<NID> {
    StorageIOError::write_logs(io_err(e)).into()
}

fn sm_read(e: impl std::error::Error + 'static) -> StorageError<Nid> {
    StorageIOError::read_state_machine(io_err(e)).into()
}

fn sm_write(e: impl std::error::Error + 'static) -> StorageError<Nid> {
    StorageIOError::write_state_machine(io_err(e)).into()
}

// ---------------------------------------------------------------------------------
// The log.

/// openraft's log storage over a [`RaftLog`]; cheap to clone (clones share the log and
/// its flusher thread).
pub struct LogStore<C: RaftTypeConfig> {
    log: RaftLog,
    flusher: Arc<parking_lot::Mutex<Option<Flusher<C>>>>,
}

impl<C: RaftTypeConfig> std::fmt::Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            log: self.log.clone(),
            flusher: Arc::clone(&self.flusher),
        }
    }
}

/// An append whose callback waits for its entries to be durable.
type FlushJob<C> = (AppendTicket, LogFlushed<C>);

/// The thread that reports appends durable to openraft, off the async runtime.
struct Flusher<C: RaftTypeConfig> {
    jobs: Option<SyncSender<FlushJob<C>>>,
    thread: Option<JoinHandle<()>>,
}

impl<C: RaftTypeConfig> Flusher<C> {
    fn start() -> std::io::Result<Flusher<C>> {
        let (jobs, queue) = sync_channel(FLUSH_QUEUE_APPENDS_MAX);
        let thread = std::thread::Builder::new()
            .name("capsuledb-raft-flush".into())
            .spawn(move || Flusher::run(&queue))?;
        Ok(Flusher {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Takes every queued append, waits once for the newest (durability is in commit
    /// order, so that covers the others) and calls their callbacks in order. Returns
    /// when the last sender is gone and the queue is empty.
    fn run(queue: &Receiver<FlushJob<C>>) {
        while let Ok(job) = queue.recv() {
            let mut batch = vec![job];
            while batch.len() < FLUSH_QUEUE_APPENDS_MAX
                && let Ok(job) = queue.try_recv()
            {
                batch.push(job);
            }
            let newest = batch
                .iter()
                .map(|(ticket, _)| ticket)
                .max_by_key(|t| t.seq());
            let result = newest.map_or(Ok(()), AppendTicket::wait);
            for (_, callback) in batch {
                callback.log_io_completed(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(std::io::Error::other(e.to_string())),
                });
            }
        }
    }
}

impl<C: RaftTypeConfig> Drop for Flusher<C> {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish the appends it holds, then stop.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the raft log flusher thread panicked");
        }
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    /// The log store on the log named `raft` in `db` (created if absent).
    pub fn open(db: &Database) -> crate::Result<Self> {
        Ok(LogStore::new(RaftLog::open(db)?))
    }

    /// The log store on an open [`RaftLog`].
    pub fn new(log: RaftLog) -> Self {
        LogStore {
            log,
            flusher: Arc::new(parking_lot::Mutex::new(None)),
        }
    }

    /// Hands an append's ticket and callback to the flusher thread, starting it if
    /// needed. Blocks only while [`FLUSH_QUEUE_APPENDS_MAX`] appends are queued.
    fn flush_later(
        &self,
        ticket: AppendTicket,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        let jobs = {
            let mut flusher = self.flusher.lock();
            if flusher.is_none() {
                *flusher = Some(Flusher::start().map_err(logs_write)?);
            }
            flusher.as_ref().and_then(|f| f.jobs.clone())
        };
        let stopped = || logs_write(std::io::Error::other("the raft log flusher stopped"));
        let jobs = jobs.ok_or_else(stopped)?;
        jobs.send((ticket, callback)).map_err(|_| stopped())
    }

    /// The underlying log.
    pub fn raft_log(&self) -> &RaftLog {
        &self.log
    }

    fn decode(e: &Entry) -> Result<C::Entry, StorageError<NodeIdOf<C>>> {
        let entry: C::Entry = serde_json::from_slice(&e.data).map_err(logs_read)?;
        let id = entry.get_log_id();
        if id.index != e.index || id.leader_id.term != e.term {
            return Err(logs_read(crate::Error::corrupted(
                0,
                format!(
                    "raft log entry {} (term {}) holds openraft entry {id}",
                    e.index, e.term
                ),
            )));
        }
        Ok(entry)
    }

    fn read_meta<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StorageError<NodeIdOf<C>>> {
        match self.log.meta(name).map_err(logs_read)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(logs_read)?)),
            None => Ok(None),
        }
    }

    fn last_purged_log_id(&self) -> Result<Option<LogId<NodeIdOf<C>>>, StorageError<NodeIdOf<C>>> {
        let Some(purged) = self.log.last_purged() else {
            return Ok(None);
        };
        let id: Option<LogId<NodeIdOf<C>>> = self.read_meta(PURGED)?;
        match id {
            Some(id) if id.index == purged.index && id.leader_id.term == purged.term => {
                Ok(Some(id))
            }
            other => Err(logs_read(crate::Error::corrupted(
                0,
                format!("openraft purge record {other:?} does not match the log's {purged:?}"),
            ))),
        }
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    /// The index the [`StateMachine`] beside this log (the one of the same name, in
    /// `<name>.sm.meta`) has durably applied: `None` when there is no such state machine
    /// (an application's own keeps its own promise), `Some(None)` when it has applied
    /// nothing. Its commits are durable before they are visible, so what a read sees
    /// survives a crash.
    fn state_machine_applied(&self) -> Result<Option<Option<u64>>, StorageError<NodeIdOf<C>>> {
        let table = format!("{}.sm.meta", self.log.name());
        let mut conn = self.log.database().connect();
        let tx = conn.begin_read().map_err(logs_read)?;
        if !tx.table_exists(&table).map_err(logs_read)? {
            return Ok(None);
        }
        let Some(bytes) = tx.get(&table, LAST_APPLIED).map_err(logs_read)? else {
            return Ok(Some(None));
        };
        // Decoded as the log id the state machine stores (`format-spec/raftlog.md`):
        // any other JSON with an "index" let a purge go on that the state machine's own
        // read refuses.
        let applied: Option<LogId<Nid>> = serde_json::from_slice(&bytes).map_err(logs_read)?;
        Ok(Some(applied.map(|id| id.index)))
    }

    /// Waits until the state machine beside this log has durably applied `index`.
    /// openraft purges the log right after handing a received snapshot's install to the
    /// state machine's task, without waiting for it: a purge made durable first, then a
    /// crash, left a log purged past a state machine that still needed the entries
    /// (openraft then fails reading them, and the node cannot start). Every other purge
    /// openraft asks for is at or below what is applied, and returns at once.
    async fn wait_state_machine_reaches(
        &self,
        index: u64,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        let mut warned = std::time::Instant::now();
        let mut pause = PURGE_POLL_MIN;
        loop {
            // What the wait is for may never come: the database closed (the read below
            // fails) or poisoned, or the state machine's install or an apply failed
            // (its task ended; openraft then stops, once this returns).
            self.log.usable().map_err(logs_write)?;
            match self.state_machine_applied()? {
                None => return Ok(()),
                Some(Some(applied)) if applied >= index => return Ok(()),
                _ if install_failed(self.log.database(), self.log.name()) => {
                    return Err(logs_write(std::io::Error::other(format!(
                        "the log is not purged to index {index}: the state machine {}.sm \
                         failed to install a snapshot, to apply entries or to read its \
                         snapshot",
                        self.log.name()
                    ))));
                }
                Some(applied) => {
                    // No deadline: an error here is fatal to openraft, and a large
                    // snapshot's install may take long. Said in the log meanwhile.
                    if warned.elapsed() >= PURGE_WAIT_WARN {
                        log::warn!(
                            "a purge of raft log {} to index {index} waits for its state \
                             machine ({}.sm), which has durably applied {applied:?}",
                            self.log.name(),
                            self.log.name()
                        );
                        warned = std::time::Instant::now();
                    }
                    <C::AsyncRuntime as ::openraft::AsyncRuntime>::sleep(pause).await;
                    pause = (pause * 2).min(PURGE_POLL_MAX);
                }
            }
        }
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<NodeIdOf<C>>> {
        let entries = self.log.entries(range).map_err(logs_read)?;
        entries.iter().map(Self::decode).collect()
    }

    /// The entries from `start` up to `end`, stopping after the one that brings them
    /// to [`REPLICATION_READ_BYTES_MAX`] bytes (never before the first), read in one
    /// look at the log ([`RaftLog::entries_within`]): no entry past the budget is read,
    /// and a truncate racing the read cannot join entries of two states of the log.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<NodeIdOf<C>>> {
        let entries = self
            .log
            .entries_within(start..end, REPLICATION_READ_BYTES_MAX)
            .map_err(logs_read)?;
        entries.iter().map(Self::decode).collect()
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<NodeIdOf<C>>> {
        let last_purged_log_id = self.last_purged_log_id()?;
        let last_log_id = match self.log.last_entry_id() {
            Some(last) if !self.log.is_empty() => {
                let e = self
                    .log
                    .entry(last.index)
                    .map_err(logs_read)?
                    .ok_or_else(|| {
                        logs_read(crate::Error::corrupted(
                            0,
                            format!("raft log entry {} is missing", last.index),
                        ))
                    })?;
                Some(Self::decode(&e)?.get_log_id().clone())
            }
            _ => last_purged_log_id.clone(),
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(
        &mut self,
        vote: &Vote<NodeIdOf<C>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(io_err(e)))?;
        self.log
            .save_meta(VOTE, &bytes)
            .map_err(|e| StorageIOError::write_vote(io_err(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeIdOf<C>>>, StorageError<NodeIdOf<C>>> {
        // A failure names the vote, as `save_vote`'s does (not the log's entries).
        let bytes = self
            .log
            .meta(VOTE)
            .map_err(|e| StorageError::from(StorageIOError::read_vote(io_err(e))))?;
        bytes
            .map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|e| StorageIOError::read_vote(io_err(e)).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeIdOf<C>>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        let bytes = serde_json::to_vec(&committed).map_err(logs_write)?;
        self.log.save_meta(COMMITTED, &bytes).map_err(logs_write)
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<NodeIdOf<C>>>, StorageError<NodeIdOf<C>>> {
        Ok(self
            .read_meta::<Option<LogId<NodeIdOf<C>>>>(COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<NodeIdOf<C>>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let purged = self.log.last_purged();
        let mut batch = Vec::new();
        for e in entries {
            let id = e.get_log_id().clone();
            if purged.is_some_and(|p| id.index <= p.index) {
                // Already covered by the state machine: openraft purges up to the last
                // applied id when the log is behind it, and may then hand us entries
                // from below that point. They are purged by definition.
                continue;
            }
            let data = serde_json::to_vec(&e).map_err(logs_write)?;
            batch.push(Entry::new(id.index, id.leader_id.term, data));
        }
        // The entries are in the log now; the flusher reports them durable. A batch
        // over one transaction's limit would fail (fatally, for openraft): it goes in
        // as several appends, and the last one's ticket covers them all (commits
        // become durable in order).
        let mut appended = Ok(None);
        for part in append_parts(&batch) {
            appended = self.log.append_async(part);
            if appended.is_err() {
                break;
            }
        }
        match appended {
            Ok(Some(ticket)) => self.flush_later(ticket, callback),
            Ok(None) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(logs_write(e))
            }
        }
    }

    async fn truncate(
        &mut self,
        log_id: LogId<NodeIdOf<C>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        self.log.truncate(log_id.index).map_err(logs_write)
    }

    async fn purge(&mut self, log_id: LogId<NodeIdOf<C>>) -> Result<(), StorageError<NodeIdOf<C>>> {
        self.wait_state_machine_reaches(log_id.index).await?;
        let id = EntryId {
            index: log_id.index,
            term: log_id.leader_id.term,
        };
        let bytes = serde_json::to_vec(&Some(log_id)).map_err(logs_write)?;
        self.log
            .purge_to_with_meta(id, PURGED, &bytes)
            .map_err(logs_write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_goes_with_its_database() {
        // The list was keyed by the engine's address alone: an entry outlived its
        // database, and one opened later at the freed address inherited its failure.
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| Database::open(dir.path().join(name)).unwrap();
        let failed = open("failed");
        note_state_machine(&failed, "raft-failure-test", false);
        assert!(install_failed(&failed, "raft-failure-test"));
        let id = failed.identity();
        drop(failed);
        let other = open("other");
        // A background thread of the closed engine may hold it a moment longer.
        let kept = || {
            let other_failed = install_failed(&other, "raft-failure-test");
            let kept = FAILED_INSTALLS
                .lock()
                .iter()
                .any(|(d, n, _)| *d == id && n == "raft-failure-test");
            other_failed || kept
        };
        for _ in 0..1000 {
            if !kept() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!kept(), "the closed database's failure is kept");
    }

    #[test]
    fn a_batch_over_the_part_limit_is_appended_in_parts() {
        // Zeroed allocations: the pages are never touched.
        let e = |index, mib: usize| Entry::new(index, 1, vec![0; mib << 20]);
        let batch = vec![e(1, 100), e(2, 100), e(3, 100), e(4, 300), e(5, 1)];
        let parts: Vec<Vec<u64>> = append_parts(&batch)
            .iter()
            .map(|p| p.iter().map(|e| e.index).collect())
            .collect();
        assert_eq!(parts, vec![vec![1, 2], vec![3], vec![4], vec![5]]);
        assert_eq!(append_parts(&[]), vec![&[] as &[Entry]]);
    }
}
