//! The one error type of capsuledb.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result alias used throughout capsuledb.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in capsuledb.
///
/// The variants fall into families a caller handles differently:
/// - retryable: [`Error::Conflict`] (run the transaction again);
/// - environment: [`Error::Io`], [`Error::Locked`], [`Error::InvalidPath`];
/// - a bad file: [`Error::NotADatabase`], [`Error::Truncated`],
///   [`Error::UnsupportedVersion`], [`Error::Corrupted`];
/// - misuse: the limits, missing or existing tables, read-only writes;
/// - engine state: [`Error::Poisoned`] (a commit's I/O failed; reopen) and
///   [`Error::Closed`].
///
/// A commit (or [`crate::Connection::run`]) that returns [`Error::Io`] or
/// [`Error::Poisoned`] may or may not have happened: its own write or sync may have
/// failed after its marker reached the file, and a reopen then finds it. Only a read
/// after reopening tells; run it again only if it can repeat or the read shows it
/// missing. Any other error from a commit means nothing of it was written.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// An operating-system call failed; `op` says what capsuledb was doing.
    Io {
        /// What capsuledb was doing, e.g. "sync the database file".
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// Another process (or another open handle) holds the file's lock. An open tries
    /// again for half a second first: a child process just forked holds the lock of a file
    /// its parent has open (or has just closed) until its exec.
    Locked {
        /// The file that is locked.
        path: PathBuf,
    },
    /// The path cannot hold a database (a directory, for instance).
    InvalidPath {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The file is not a capsuledb database (its magic bytes do not match).
    NotADatabase {
        /// What was found instead.
        what: String,
    },
    /// The file is shorter than its structure requires.
    Truncated {
        /// The file's length in bytes.
        len: u64,
        /// The length at least required.
        needed: u64,
    },
    /// The file needs a newer format version than this build has: to be read at all
    /// (its `read_version`), or, for a read-write open, to be written (its
    /// `write_version`: such a file still opens with `Options::read_only`).
    UnsupportedVersion {
        /// The format version the file requires.
        found: u32,
        /// The newest format version this build supports.
        supported: u32,
    },
    /// A checksum or structural check failed; the file is damaged.
    Corrupted {
        /// The page number where the damage was found. `0` (header copy A's page) also
        /// stands for damage no one page holds, which `what` then describes: an entry of
        /// a Raft log missing between two others, a live reader's next state ending
        /// before commits it already read, no table id left.
        page: u64,
        /// What failed.
        what: String,
    },
    /// The commit log is damaged where commits known to be durable lie, or on a page it
    /// needs whatever was committed (its first marker page): commit `seq` is the first
    /// that cannot be recovered, and every commit from `seq` to `durable_seq` was
    /// durable (`format-spec/log.md`, "Recovery"); `durable_seq` below `seq` says the
    /// file proves no commit from `seq` on (none may have been made). A read-write open refuses such a
    /// file and writes nothing; a read-only open ([`crate::Options::read_only`]) opens
    /// the commits before `seq`, and `capsuledb salvage` copies them to a new file.
    LogCorrupted {
        /// The page where the damage was found.
        page: u64,
        /// The first commit that cannot be recovered.
        seq: u64,
        /// The highest commit the file proves was durable: at least `seq`, or below it
        /// when no commit from `seq` on is proven (damage to the first marker page).
        durable_seq: u64,
        /// What failed.
        what: String,
    },
    /// An [`crate::Options`] value is out of range.
    InvalidOptions {
        /// What is wrong.
        what: String,
    },
    /// A concurrent transaction committed first; retry the transaction.
    Conflict {
        /// The table of the conflicting key or range.
        table: String,
        /// The conflicting key (for a range conflict: the key that met the range; for
        /// a table this transaction dropped or cleared after another wrote to it: empty,
        /// the whole table).
        key: Vec<u8>,
        /// The sequence number of the committed transaction met.
        committed_seq: u64,
    },
    /// The table does not exist.
    TableNotFound {
        /// Its name.
        table: String,
    },
    /// The table already exists.
    TableExists {
        /// Its name.
        table: String,
    },
    /// A key is longer than [`crate::MAX_KEY_LEN`].
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is longer than [`crate::MAX_VALUE_LEN`].
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A table name is empty, longer than [`crate::MAX_TABLE_NAME_LEN`], or the name
    /// reserved for the catalog in conflicts ([`crate::CATALOG_NAME`]).
    InvalidTableName {
        /// The name's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A transaction wrote more than the per-transaction limits allow.
    TransactionTooLarge {
        /// What limit was exceeded.
        what: String,
    },
    /// The operation needs a read-write transaction.
    ReadOnly,
    /// The connection already has an open transaction. Not returned by this version:
    /// `Connection::begin` borrows the connection mutably, so a second transaction on it
    /// cannot begin while one is open (the compiler refuses it).
    TransactionInProgress,
    /// A commit's write or sync failed (this commit's own, or an earlier one's), or a
    /// commit panicked: the database refuses commits until reopened. A commit answered
    /// `Poisoned` may be in the file nonetheless (its marker written before the sync
    /// that failed): see the type's notes on an unknown outcome. A `RaftLog` handle also answers it after any
    /// failed commit of its own (it then refuses changes until reopened).
    Poisoned {
        /// The failure that poisoned it.
        cause: String,
    },
    /// The database is shutting down or closed.
    Closed,
    /// A [`crate::raftlog::RaftLog`] call named an index or term that would break the
    /// log's order: an append that does not follow the last entry or is not contiguous,
    /// a term going backwards, a truncate of purged entries, a purge past the last
    /// entry without its term. Nothing was written.
    LogOrder {
        /// The call: "append", "truncate" or "purge".
        op: &'static str,
        /// The index the call named.
        index: u64,
        /// What is wrong, e.g. "expected index 12 after the last entry 11".
        what: String,
    },
    /// `begin_read_at` asked for a state outside the history-retention window
    /// (see [`crate::Options::history_retention`]); or `Transaction::salvage_table` ran
    /// at a past state below the newest tree's checkpoint, which its walk cannot read
    /// (then `oldest` is that checkpoint, the oldest state a salvage reads, and the
    /// message's "window" is the salvage's).
    HistoryUnavailable {
        /// The sequence asked for.
        requested: u64,
        /// The oldest state still retained.
        oldest: u64,
        /// The newest state (the visible sequence).
        newest: u64,
    },
    /// The database was opened read-only; nothing may be written.
    ReadOnlyDatabase,
    /// Stored bytes are not an encoding of the type a typed table expects
    /// (`format-spec/keys.md`, "Validation"): the table was written with other types, or
    /// the key or value came from the byte API.
    Decode {
        /// The type expected, e.g. `u64` or `&str`.
        ty: &'static str,
        /// What is wrong with the bytes.
        what: String,
    },
    /// A typed table's value could not be encoded: its serde implementation failed or
    /// asked for something the codec cannot express (a sequence of unknown length).
    Encode {
        /// The value's type.
        ty: &'static str,
        /// What went wrong.
        what: String,
    },
    /// [`crate::Connection::run`] gave up: every attempt met a conflict until the
    /// [`crate::RetryPolicy`]'s bound on attempts or time was reached. Nothing of any
    /// attempt was committed.
    RetriesExhausted {
        /// Attempts made, the last one included.
        attempts: u32,
        /// Time from the first attempt's start to giving up.
        elapsed: std::time::Duration,
        /// The last conflict met (an [`Error::Conflict`]).
        last: Box<Error>,
    },
}

impl Error {
    /// Whether running the same transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// Whether the error reports a damaged file ([`Error::Corrupted`] or
    /// [`Error::LogCorrupted`]).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupted { .. } | Error::LogCorrupted { .. })
    }

    pub(crate) fn corrupted(page: u64, what: impl Into<String>) -> Error {
        Error::Corrupted {
            page,
            what: what.into(),
        }
    }

    /// A [`Error::Corrupted`] from a decoder that could not know where its bytes lay
    /// (page 0) now names `page`; any other error is unchanged.
    pub(crate) fn on_page(self, page: u64) -> Error {
        match self {
            Error::Corrupted { page: 0, what } => Error::Corrupted { page, what },
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, source } => write!(f, "failed to {op}: {source}"),
            Error::Locked { path } => write!(
                f,
                "database {} is locked by another process or handle",
                path.display()
            ),
            Error::InvalidPath { path, reason } => {
                write!(f, "cannot use {} as a database: {reason}", path.display())
            }
            Error::HistoryUnavailable {
                requested,
                oldest,
                newest,
            } => write!(
                f,
                "the state at seq {requested} is not retained: the history window holds seqs {oldest} to {newest} (see Options::history_retention)"
            ),
            Error::ReadOnlyDatabase => {
                write!(f, "the database was opened read-only; it cannot be written")
            }
            Error::NotADatabase { what } => write!(f, "not a capsuledb database: {what}"),
            Error::Truncated { len, needed } => write!(
                f,
                "database file is truncated: {len} bytes, at least {needed} needed"
            ),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "database needs format version {found}; this build supports up to {supported} \
                 (a file a newer build wrote that this one can still read opens read-only)"
            ),
            Error::Corrupted { page, what } => {
                write!(f, "database is corrupted at page {page}: {what}")
            }
            Error::LogCorrupted {
                page,
                seq,
                durable_seq,
                what,
            } if durable_seq < seq => write!(
                f,
                "database log is corrupted at page {page} ({what}): commits from {seq} on, if \
                 any were made, cannot be recovered; the file proves none of them durable. \
                 Nothing was written; a read-only open reads the state before commit {seq}, \
                 and `capsuledb salvage` copies it to a new file"
            ),
            Error::LogCorrupted {
                page,
                seq,
                durable_seq,
                what,
            } => write!(
                f,
                "database log is corrupted at page {page}: commit {seq} cannot be recovered ({what}); \
                 commits {seq} to {durable_seq} were durable and lie beyond the damage. \
                 Nothing was written; a read-only open reads the state before commit {seq}, \
                 and `capsuledb salvage` copies it to a new file"
            ),
            Error::InvalidOptions { what } => write!(f, "invalid options: {what}"),
            Error::Conflict {
                table,
                key,
                committed_seq,
            } => write!(
                f,
                "conflict on table {table:?} key {} with commit {committed_seq}; retry the transaction",
                crate::util::show_bytes(key)
            ),
            Error::TableNotFound { table } => write!(f, "table {table:?} does not exist"),
            Error::TableExists { table } => write!(f, "table {table:?} already exists"),
            Error::KeyTooLarge { len, max } => {
                write!(f, "key of {len} bytes exceeds the limit of {max} bytes")
            }
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max} bytes")
            }
            Error::InvalidTableName { len, max } => {
                write!(
                    f,
                    "table name of {len} bytes is not allowed (1..={max} bytes, and not the reserved \"(catalog)\")"
                )
            }
            Error::TransactionTooLarge { what } => write!(f, "transaction too large: {what}"),
            Error::ReadOnly => write!(f, "cannot write in a read-only transaction"),
            Error::TransactionInProgress => {
                write!(f, "the connection already has an open transaction")
            }
            Error::Poisoned { cause } => write!(
                f,
                "refuses changes after a failed write or sync, or a panic in a commit ({cause}); reopen it"
            ),
            Error::Closed => write!(f, "database is closed"),
            Error::Decode { ty, what } => {
                write!(f, "stored bytes are not a {ty}: {what}")
            }
            Error::Encode { ty, what } => write!(f, "cannot encode a {ty}: {what}"),
            Error::RetriesExhausted {
                attempts,
                elapsed,
                last,
            } => write!(
                f,
                "gave up after {attempts} attempts in {} ms (see RetryPolicy); the last: {last}",
                elapsed.as_millis()
            ),
            Error::LogOrder { op, index, what } => {
                write!(f, "raft log {op} at index {index} refused: {what}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Error {
        Error::Io {
            op: "do I/O",
            source,
        }
    }
}
