//! Folding the version store once commits stop. A checkpoint is otherwise started only
//! by a commit (`Engine::commit`, when the store passes its budget or the log its commit
//! bound): after a burst of commits that leaves the store well filled but under budget
//! (a load in batches of a few thousand keys), every read of the idle database would
//! keep merging the store with the tree until some later commit; so would a load a
//! live snapshot held back from the budget's checkpoint. A watcher thread, started by
//! such a commit (beside the checkpoint, which it waits out, if one started), folds the
//! store once no commit has come for
//! [`IDLE_AFTER`] and every commit is durable (a fold stops at the durable ones), forgets the commit index's records of the commits it folded, and
//! then ends; it holds the engine only while it looks, folds and prunes.

use super::Engine;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long commits must have stopped before the watcher folds the store (it looks
/// every `IDLE_AFTER`, so the fold starts one to two of them after the last commit).
const IDLE_AFTER: Duration = Duration::from_millis(50);

/// The watcher is started once the store holds this fraction of its budget or more
/// (a sixteenth: 4 MiB of the default 64 MiB, tens of thousands of small versions).
const IDLE_FOLD_FRACTION: u64 = 16;

impl Engine {
    /// Whether the store holds enough to be worth an idle fold.
    fn worth_idle_fold(&self, store_bytes: u64) -> bool {
        store_bytes > 0 && store_bytes >= self.version_bytes_max / IDLE_FOLD_FRACTION
    }

    /// After a commit through the log that left `store_bytes` in the store: starts the
    /// idle watcher when the store is worth folding and none runs.
    pub(super) fn arm_idle_fold(&self, store_bytes: u64) {
        // Read before the swap: commits while a watcher runs write nothing shared here.
        // If the thread cannot start, nothing is lost: the next commit's checkpoint
        // policy still applies.
        if !self.read_only && self.worth_idle_fold(store_bytes) {
            self.start_once(&self.idle_armed, "capsuledb-idle", watch);
        }
    }

    /// Starts `run` on a thread named `name` unless `armed` says one runs (it is set
    /// here, and cleared again if the thread cannot start; `run` clears it when it
    /// ends). The thread gets the engine weakly: it never keeps a dropped one alive.
    pub(super) fn start_once(&self, armed: &AtomicBool, name: &str, run: fn(Weak<Engine>)) {
        if armed.load(Ordering::Acquire) || armed.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(me));
        if spawned.is_err() {
            armed.store(false, Ordering::Release);
        }
    }
}

/// Clears a flag when dropped: a background checkpoint's `checkpoint_running` is cleared
/// however its work ends, a panic included (a flag left set would keep every later
/// automatic checkpoint from starting, and make back-pressure wait on a fold that never
/// ends). The watcher's own flag is handed over, not just cleared: see
/// [`ClearIfPanicking`].
pub(super) struct ClearOnDrop<'a>(pub(super) &'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Clears a flag when dropped by a panic: the idle watcher's "I run" flag, which the
/// watcher hands over (clears, then a commit may set it again) rather than clearing once
/// at its end, so only an unwinding thread clears it here (a flag left set would keep
/// every later watcher from starting). The flusher has none (see `flush.rs`).
pub(super) struct ClearIfPanicking<'a>(pub(super) &'a AtomicBool);

impl Drop for ClearIfPanicking<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(false, Ordering::Release);
        }
    }
}

/// The watcher: looks every [`IDLE_AFTER`] whether a commit came since it last looked;
/// once none did and no checkpoint runs, folds what the store holds and ends.
fn watch(engine: Weak<Engine>) {
    let mut seen = None;
    loop {
        std::thread::sleep(IDLE_AFTER);
        let Some(me) = engine.upgrade() else {
            return;
        };
        // Until the watcher disarms itself below, the flag is its own.
        let unwinding = ClearIfPanicking(&me.idle_armed);
        // Closing, or every handle gone (a fold then would keep the file locked after
        // the application let go of it).
        if me.closing.load(Ordering::Acquire) || me.handles.load(Ordering::Acquire) == 0 {
            me.idle_armed.store(false, Ordering::Release);
            return;
        }
        let tip = me.committer.tip();
        if seen != Some(tip) {
            seen = Some(tip);
            continue;
        }
        // A checkpoint folding now (one a commit over budget started, or the
        // application's own, or a tree commit) leaves the versions committed while it
        // ran, and the watcher's own attempt would find the checkpointer taken: look
        // again once it is done.
        if me.checkpoint_running.load(Ordering::Acquire) || me.checkpointer.busy() {
            continue;
        }
        // `Applied` and `Written` commits not yet durable (the flusher's sync under
        // way): a fold now would stop at the durable ones and leave the rest of the
        // burst in the store with no watcher left. Poisoned, they never will be.
        if me.committer.durable_seq() < tip {
            if me.committer.is_poisoned() {
                me.idle_armed.store(false, Ordering::Release);
                return;
            }
            continue;
        }
        // Disarmed first: a commit from here on starts a new watcher.
        drop(unwinding);
        me.idle_armed.store(false, Ordering::Release);
        // One sequenced since `tip` was read may have found the flag still set and
        // started none (an `Applied` one, not yet durable, the fold would leave out):
        // this watcher goes on watching for it, unless that commit started one since.
        if me.committer.tip() != tip && !me.idle_armed.swap(true, Ordering::AcqRel) {
            seen = None;
            continue;
        }
        // The store was worth folding when the watcher started: whatever is left now,
        // however little, is folded too, so an idle database reads its tree alone.
        if me.versions.byte_count() > 0 && !me.checkpoint_running.swap(true, Ordering::AcqRel) {
            let _running = ClearOnDrop(&me.checkpoint_running);
            let _ = me.run_checkpoint(false, false);
        }
        drop(me);
        // The commit index's records of those commits too, a pass at a time, holding the
        // engine only for each pass, until a commit comes (which then prunes its own
        // share) or the database is dropped or closing.
        loop {
            let Some(me) = engine.upgrade() else {
                return;
            };
            if me.closing.load(Ordering::Acquire) || !me.committer.prune_pass(tip) {
                return;
            }
            drop(me);
            // A committer arriving now takes the index before the next pass does.
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
impl Engine {
    /// Tests: whether a checkpoint runs, as the commit path and the idle watcher see it.
    pub(crate) fn set_checkpoint_running(&self, running: bool) {
        self.checkpoint_running.store(running, Ordering::Release);
    }

    /// Tests: marks the flusher as running, so `Applied` commits start none and stay
    /// queued until something else flushes them.
    pub(crate) fn hold_flusher(&self) {
        self.flush_armed.store(true, Ordering::Release);
    }

    /// Tests: whether an idle watcher is started and has not ended.
    pub(crate) fn idle_watcher_armed(&self) -> bool {
        self.idle_armed.load(Ordering::Acquire)
    }

    /// Tests: holds the checkpointer as a checkpoint of the application's own does,
    /// until the guard is dropped.
    pub(crate) fn hold_checkpointer(&self) -> impl Drop + '_ {
        self.checkpointer.hold_for_test()
    }
}

#[cfg(test)]
mod guard_tests {
    use super::{ClearIfPanicking, ClearOnDrop};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `ClearOnDrop` clears its flag however the scope ends; `ClearIfPanicking` only
    /// when it ends by a panic.
    #[test]
    fn the_guards_clear_their_flags_when_they_should() {
        for panics in [false, true] {
            let always = AtomicBool::new(true);
            let unwinding = AtomicBool::new(true);
            let ended = std::thread::scope(|s| {
                s.spawn(|| {
                    let _a = ClearOnDrop(&always);
                    let _b = ClearIfPanicking(&unwinding);
                    assert!(!panics, "a background thread's panic");
                })
                .join()
            });
            assert_eq!(ended.is_err(), panics);
            assert!(!always.load(Ordering::Acquire));
            assert_eq!(unwinding.load(Ordering::Acquire), !panics);
        }
    }
}
