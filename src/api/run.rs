//! Closure transactions: [`Connection::run`] begins, runs the closure, commits, and on a
//! conflict waits until the conflicting commit is visible and runs the closure again,
//! within a [`RetryPolicy`]; [`Connection::read`] runs a closure on a read-only snapshot.

use super::{Connection, Transaction};
use crate::error::Error;
use crate::types::{Durability, Isolation};
use std::time::{Duration, Instant};

/// When [`Connection::run`] stops retrying a transaction that keeps meeting conflicts.
///
/// The default allows 1000 attempts within 30 seconds. Between attempts `run` waits
/// for the commit it met rather than spinning, so an attempt costs about one commit's
/// time, and when `n` transactions contend for one key each attempt wins with a chance
/// of about `1/n`: with 16 contenders the chance of losing 1000 times in a row is below
/// `1e-28`, while 100 attempts would fail about once in 600 transactions. The bounds
/// thus stop only a transaction that conflicts with something forever, or one starved
/// by contention far beyond what the application expects. The time bound is checked
/// between attempts; a closure that is running is never interrupted.
///
/// ```
/// use capsuledb::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy::default()
///     .max_attempts(10)
///     .max_elapsed(Duration::from_secs(1));
/// assert_eq!(policy.attempts(), 10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    max_attempts: u32,
    max_elapsed: Duration,
}

/// Attempts [`RetryPolicy::default`] allows.
pub const RETRY_ATTEMPTS_DEFAULT: u32 = 1000;

/// Time [`RetryPolicy::default`] allows from the first attempt's start.
pub const RETRY_ELAPSED_DEFAULT: Duration = Duration::from_secs(30);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: RETRY_ATTEMPTS_DEFAULT,
            max_elapsed: RETRY_ELAPSED_DEFAULT,
        }
    }
}

impl RetryPolicy {
    /// At most `attempts` runs of the closure (at least 1: `0` counts as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// No new attempt once `elapsed` has passed since the first one began.
    pub fn max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// The most attempts allowed.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The time allowed.
    pub fn elapsed(&self) -> Duration {
        self.max_elapsed
    }
}

impl Connection {
    /// Runs `f` in a Serializable transaction and commits it [`Durability::Durable`],
    /// retrying on conflict within [`RetryPolicy::default`]; returns what `f` returned.
    ///
    /// - On [`Error::Conflict`] at commit, `run` waits until the conflicting commit is
    ///   visible ([`crate::Database::wait_for`]), then runs `f` again in a new
    ///   transaction; `f` may run several times, so it should have no effects outside
    ///   the transaction (or only ones that can repeat).
    /// - When the policy's bound is reached, it returns [`Error::RetriesExhausted`]
    ///   holding the last conflict.
    /// - If `f` returns an error, the transaction rolls back and `run` returns that
    ///   error unchanged. If `f` panics, the transaction rolls back as the panic
    ///   unwinds. Either way nothing of it is committed.
    /// - Any other commit error is returned as it came, and `f` is not run again:
    ///   after [`Error::Io`] or [`Error::Poisoned`] the commit may or may not have
    ///   happened (see [`Error`]), and running `f` again could apply it twice.
    ///
    /// The error type is the closure's own: any `E: From<capsuledb::Error>` (this
    /// crate's [`Error`], `anyhow::Error`, `Box<dyn std::error::Error>`, or an
    /// application enum with a `From` impl), so `?` works on capsuledb calls and on the
    /// application's own inside the closure, and what comes out is exactly what the
    /// closure returned.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
    /// let mut conn = db.connect();
    /// conn.run(|tx| tx.create_table("counters"))?;
    /// let n = conn.run(|tx| {
    ///     let n = match tx.get("counters", b"hits")? {
    ///         Some(v) => u64::from_le_bytes(v.try_into().unwrap_or_default()),
    ///         None => 0,
    ///     };
    ///     tx.put("counters", b"hits", &(n + 1).to_le_bytes())?;
    ///     Ok::<_, capsuledb::Error>(n + 1)
    /// })?;
    /// assert_eq!(n, 1);
    /// # Ok(()) }
    /// ```
    pub fn run<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnMut(&mut Transaction<'_>) -> Result<T, E>,
        E: From<Error>,
    {
        self.run_with(
            Isolation::Serializable,
            Durability::Durable,
            &RetryPolicy::default(),
            f,
        )
    }

    /// [`Connection::run`] at the given isolation level and commit durability, retrying
    /// within `policy`.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
    /// use capsuledb::{Durability, Isolation, RetryPolicy};
    /// let mut conn = db.connect();
    /// let policy = RetryPolicy::default().max_attempts(5);
    /// conn.run_with(Isolation::Snapshot, Durability::Applied, &policy, |tx| {
    ///     tx.create_table("t")
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn run_with<T, E, F>(
        &mut self,
        isolation: Isolation,
        durability: Durability,
        policy: &RetryPolicy,
        mut f: F,
    ) -> Result<T, E>
    where
        F: FnMut(&mut Transaction<'_>) -> Result<T, E>,
        E: From<Error>,
    {
        let start = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut tx = self.begin_with(isolation)?;
            let value = f(&mut tx)?;
            match tx.commit_with(durability) {
                Ok(_) => return Ok(value),
                Err(conflict @ Error::Conflict { committed_seq, .. }) => {
                    let exhausted = |conflict: Error| -> E {
                        Error::RetriesExhausted {
                            attempts,
                            elapsed: start.elapsed(),
                            last: Box::new(conflict),
                        }
                        .into()
                    };
                    if attempts >= policy.max_attempts || start.elapsed() >= policy.max_elapsed {
                        return Err(exhausted(conflict));
                    }
                    // A new attempt that began before the conflicting commit is visible
                    // would meet the same conflict again.
                    self.db.wait_for(committed_seq, Durability::Applied)?;
                    // The wait may have spent the time bound (a `Durable` commit is
                    // visible only after its syncs): no new attempt then.
                    if start.elapsed() >= policy.max_elapsed {
                        return Err(exhausted(conflict));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs `f` on a read-only snapshot ([`Connection::begin_read`]) and returns what it
    /// returned. A snapshot never aborts, so there is nothing to retry.
    ///
    /// ```
    /// # fn main() -> capsuledb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
    /// let mut conn = db.connect();
    /// conn.run(|tx| tx.create_table("t"))?;
    /// let tables = conn.read(|tx| tx.tables())?;
    /// assert_eq!(tables, ["t"]);
    /// # Ok(()) }
    /// ```
    pub fn read<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E>,
        E: From<Error>,
    {
        let tx = self.begin_read()?;
        f(&tx)
    }
}
