//! Flushing `Applied` and `Written` commits that no durable commit follows. Such a
//! commit returns before its group is written; its proof and marker would otherwise wait
//! for the next commit that waits for `Durable` (or for `close`), however long that is:
//! readers in other processes would not see it, and neither would the durable feed. A
//! flusher thread, started by such a commit when none runs, waits [`FLUSH_AFTER`] (so a
//! burst of commits shares its groups) and then makes every commit queued so far durable
//! as a durable committer does (leading the steps, or waiting for the running one), and
//! ends once nothing is left to flush.

use super::Engine;
use crate::types::Durability;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long after an `Applied` or `Written` commit the flusher starts its groups.
pub(super) const FLUSH_AFTER: Duration = Duration::from_millis(10);

impl Engine {
    /// After a commit at `durability` that returned before it was durable: starts the
    /// flusher when none runs.
    pub(super) fn arm_flush(&self, durability: Durability) {
        // If the thread cannot start, the commit stays as durable as its level promised;
        // the next durable commit or `close` flushes it.
        if durability != Durability::Durable && !self.read_only {
            // Between this commit's queueing and the look at the flag, as the flusher
            // has between clearing the flag and its last look at the queue: without
            // both fences each could read the other's old value, and no flusher would
            // run for this commit.
            std::sync::atomic::fence(Ordering::SeqCst);
            self.start_once(&self.flush_armed, "capsuledb-flush", flush);
        }
    }
}

/// The flusher: after [`FLUSH_AFTER`], makes the commits queued so far durable; again
/// while more came meanwhile; then ends.
fn flush(engine: Weak<Engine>) {
    loop {
        std::thread::sleep(FLUSH_AFTER);
        let Some(me) = engine.upgrade() else {
            return;
        };
        // No guard clears `flush_armed` if this thread panics (a group step's panic is
        // caught by its leader and comes back as `Poisoned`, handled below; any other
        // would be a bug that should not start a flusher after every commit).
        if me.closing.load(Ordering::Acquire) {
            // `close` flushes everything itself.
            me.flush_armed.store(false, Ordering::Release);
            return;
        }
        if me.committer.flush_queued().is_err() {
            // Poisoned: every later commit fails, nothing is left to flush.
            me.flush_armed.store(false, Ordering::Release);
            return;
        }
        // Disarmed first, then a last look: a commit queued after the flush looked
        // either sees the flusher disarmed and starts a new one, or is seen here.
        me.flush_armed.store(false, Ordering::Release);
        std::sync::atomic::fence(Ordering::SeqCst);
        if me.committer.last_queued() <= me.committer.durable_seq()
            || me.flush_armed.swap(true, Ordering::AcqRel)
        {
            return;
        }
    }
}

/// Hands the memory a bulk commit freed (millions of small blocks: its write set, its
/// versions, its commit-index entries) back to the allocator's free lists and the OS
/// now. glibc would otherwise merge those blocks inside some later, unrelated
/// allocation: the next small commit would stall for hundreds of milliseconds.
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists; it takes
    // no pointer from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
