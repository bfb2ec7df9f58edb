//! The one interface every engine implements, so that each workload runs the same code
//! on all of them: per-thread sessions, a transaction body run against a `Tx`, batched
//! point reads inside one snapshot, and range scans in either direction.

use std::path::Path;

/// Errors from any engine, boxed: the harness only reports them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The harness's result type.
pub type Res<T> = Result<T, BoxError>;

/// Bytes per key in every workload.
pub const KEY_LEN: usize = 24;
/// A key.
pub type Key = [u8; KEY_LEN];

/// What one transaction body sees: reads and writes on the benchmark table.
pub trait Tx {
    /// Reads `key` (recorded in the read set where the engine tracks one).
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>>;
    /// Writes `key = value`.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()>;
}

/// How one attempt at a transaction ended.
pub enum Attempt {
    /// Committed at full durability.
    Committed,
    /// Refused by the engine's concurrency control (or its lock timed out); run it again.
    /// `wait_for` is the commit sequence the conflict met, where the engine says.
    Retry { wait_for: Option<u64> },
}

/// The body of a transaction: called once per attempt.
pub type Body<'b> = dyn FnMut(&mut dyn Tx) -> Res<()> + 'b;

/// One engine under test, opened in its own directory.
pub trait Engine: Send + Sync + Sized {
    /// Per-thread state (a connection, or nothing).
    type Session;
    /// Column heading.
    const NAME: &'static str;
    /// How durability is configured, for the footnotes.
    const DURABILITY: &'static str;
    /// How concurrent writers are serialized, for the footnotes.
    const SERIALIZATION: &'static str;

    /// Opens (creating) a database in the empty directory `dir`, with the benchmark
    /// table created.
    fn open(dir: &Path) -> Res<Self>;
    /// A session for the calling thread.
    fn session(&self) -> Res<Self::Session>;
    /// Runs `body` in one read-write transaction committed at full durability.
    /// `read_only` says the body will not write: an engine may then use its read path
    /// if that keeps its isolation serializable.
    fn transact(&self, s: &mut Self::Session, read_only: bool, body: &mut Body<'_>)
    -> Res<Attempt>;
    /// Called before retrying an attempt that returned [`Attempt::Retry`].
    fn before_retry(&self, _wait_for: Option<u64>) {}
    /// Looks up every key in `keys` inside one read snapshot; returns how many exist.
    fn read_batch(&self, s: &mut Self::Session, keys: &[Key]) -> Res<usize>;
    /// Reads up to `n` consecutive entries from `start` on in one read snapshot; returns
    /// how many it read.
    fn scan(&self, s: &mut Self::Session, start: &[u8], n: usize) -> Res<usize>;
    /// Reads up to `n` consecutive entries from `start` down (descending key order,
    /// `start` included) in one read snapshot; returns how many it read.
    fn scan_rev(&self, s: &mut Self::Session, start: &[u8], n: usize) -> Res<usize>;
    /// Engine counters worth a footnote (capsuledb's group commit), if any.
    fn stats_note(&self) -> Option<String> {
        None
    }
    /// Closes the database, flushing whatever the engine flushes at close.
    fn close(self) -> Res<()>;
}

/// A simple message error.
pub fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}
