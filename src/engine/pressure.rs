//! What a commit starts or pays after it is sequenced: the automatic checkpoint on a
//! thread of its own, the fold of a large transaction on the committing thread, and
//! back-pressure while the version store is far over its budget and a fold runs.

use super::{Engine, flush, idle};
use std::sync::atomic::Ordering;

/// Back-pressure per multiple of the budget the version store is over (see
/// `Engine::throttle`).
const THROTTLE_STEP: std::time::Duration = std::time::Duration::from_millis(1);
/// The longest one commit is held back by back-pressure.
const THROTTLE_MAX: std::time::Duration = std::time::Duration::from_millis(20);

impl Engine {
    /// Runs an automatic checkpoint on a thread of its own (the caller set
    /// `checkpoint_running`).
    pub(super) fn start_background_checkpoint(&self) {
        let Some(me) = self.me.upgrade() else {
            self.checkpoint_running.store(false, Ordering::Release);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("capsuledb-checkpoint".into())
            .spawn(move || {
                let _running = idle::ClearOnDrop(&me.checkpoint_running);
                // Not once every handle is gone: the fold would keep the file locked
                // after the application let go of it (the next open folds anyway).
                if !me.closing.load(Ordering::Acquire) && me.handles.load(Ordering::Acquire) > 0 {
                    // A panic (an application's `Storage`) is told, not lost with the thread.
                    let run = std::panic::AssertUnwindSafe(|| me.run_checkpoint(false, false));
                    if std::panic::catch_unwind(run).is_err() {
                        *me.last_checkpoint_error.lock() = Some("the checkpoint panicked".into());
                    }
                }
            });
        if let Err(e) = spawned {
            self.checkpoint_running.store(false, Ordering::Release);
            *self.last_checkpoint_error.lock() =
                Some(format!("cannot start a checkpoint thread: {e}"));
        }
    }

    /// Back-pressure: while the version store is more than twice over budget and a
    /// checkpoint folds it (or `compact`, `check_integrity` hold the checkpointer), each
    /// commit waits in proportion to how far over it is, at most [`THROTTLE_MAX`].
    fn throttle(&self, bytes: u64) {
        let budget = self.version_bytes_max.max(1);
        let folding = self.checkpoint_running.load(Ordering::Acquire) || self.checkpointer.busy();
        if bytes <= budget.saturating_mul(2) || !folding {
            return;
        }
        self.throttled_commits.fetch_add(1, Ordering::Relaxed);
        let over = (bytes / budget).saturating_sub(1);
        let wait = THROTTLE_STEP
            .saturating_mul(u32::try_from(over).unwrap_or(u32::MAX))
            .min(THROTTLE_MAX);
        std::thread::sleep(wait);
    }

    /// After a transaction that wrote more than half the version-store budget and went
    /// through the log (not a tree commit, which leaves the store empty): folds it into
    /// the tree now, on the committing thread, so that its versions leave the
    /// store before the next commit and its readers read the tree, and prunes the
    /// commit index of its keys. The committer that wrote the bulk pays for both, not
    /// the next one. A failure is kept for
    /// `last_checkpoint_error()` (the commit itself is done). Any other commit that
    /// `wrote` pays its back-pressure here ([`Engine::throttle`]): after its
    /// transaction's snapshot is gone, so the sleep holds back no fold's horizon.
    pub(crate) fn after_commit(&self, write_bytes: usize, wrote: bool) {
        // A tree commit left nothing in the store (and nothing in the commit index).
        let in_store = self.is_large(self.versions.byte_count());
        if self.is_large(write_bytes)
            && in_store
            && !self.read_only
            && !self.closing.load(Ordering::Acquire)
        {
            // Its keys leave the commit index first (rather than in the maintenance pass
            // of some later committer), so the fold's own memory comes on top of less.
            self.committer.maintain();
            flush::release_freed_memory();
            let _ = self.run_checkpoint(true, false);
            flush::release_freed_memory();
            // Armed again now the commit is done: a watcher armed by the commit may have
            // spent its one fold during this cleanup, while a snapshot that holds the
            // load back was still live.
            self.arm_idle_fold(self.versions.byte_count());
        } else if wrote {
            self.throttle(self.versions.byte_count());
        }
    }
}
