//! Live snapshots and the visible sequence.
//!
//! `visible` is the largest sequence such that every commit at or below it is
//! visible; it only moves forward, over a gap-free prefix. The registry counts the
//! live snapshots so the GC horizon (the oldest of them) is known.

use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tracks visibility and the snapshots that are alive.
#[derive(Default)]
pub struct SnapshotRegistry {
    state: Mutex<State>,
    visible_changed: Condvar,
    visible: AtomicU64,
}

#[derive(Default)]
struct State {
    visible: u64,
    /// Sequences ready to become visible but waiting for a smaller one.
    ready: BTreeSet<u64>,
    /// Live snapshot sequence -> number of holders.
    live: BTreeMap<u64, usize>,
    /// Set when a sequenced commit can never become visible (its I/O failed).
    stalled: Option<String>,
}

/// A registered snapshot; dropping it lets the horizon move past it.
pub struct SnapshotGuard {
    registry: Arc<SnapshotRegistry>,
    seq: u64,
}

impl SnapshotGuard {
    /// The snapshot's sequence: reads see commits at or below it.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Drop for SnapshotGuard {
    fn drop(&mut self) {
        let mut st = self.registry.state.lock();
        if let Some(n) = st.live.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                st.live.remove(&self.seq);
            }
        }
    }
}

impl SnapshotRegistry {
    /// A registry whose visible sequence starts at `visible`.
    pub fn new(visible: u64) -> Arc<SnapshotRegistry> {
        let r = SnapshotRegistry::default();
        r.state.lock().visible = visible;
        r.visible.store(visible, Ordering::Release);
        Arc::new(r)
    }

    /// Takes a snapshot at the current visible sequence.
    pub fn begin(self: &Arc<Self>) -> SnapshotGuard {
        let mut st = self.state.lock();
        let seq = st.visible;
        *st.live.entry(seq).or_default() += 1;
        SnapshotGuard {
            registry: Arc::clone(self),
            seq,
        }
    }

    /// The oldest live snapshot, or the visible sequence when none is live. No current
    /// or future snapshot reads below it.
    pub fn horizon(&self) -> u64 {
        let st = self.state.lock();
        st.live.keys().next().copied().unwrap_or(st.visible)
    }

    /// The visible sequence.
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Number of live snapshots.
    pub fn live_count(&self) -> usize {
        self.state.lock().live.values().sum()
    }

    /// Marks `seq` ready; the visible sequence advances over every ready sequence
    /// that has no gap below it.
    pub fn mark_ready(&self, seq: u64) {
        let mut st = self.state.lock();
        if seq <= st.visible {
            return;
        }
        st.ready.insert(seq);
        let before = st.visible;
        while let Some(next) = st.visible.checked_add(1).filter(|n| st.ready.contains(n)) {
            st.ready.remove(&next);
            st.visible = next;
        }
        if st.visible != before {
            self.visible.store(st.visible, Ordering::Release);
            self.visible_changed.notify_all();
        }
    }

    /// Blocks until `seq` is visible. Fails if visibility stalled for good below it.
    pub fn wait_visible(&self, seq: u64) -> Result<(), String> {
        let mut st = self.state.lock();
        while st.visible < seq {
            if let Some(cause) = &st.stalled {
                return Err(cause.clone());
            }
            self.visible_changed.wait(&mut st);
        }
        Ok(())
    }

    /// Records that some sequenced commit will never become visible (its I/O failed),
    /// releasing everyone waiting for a later sequence.
    pub fn stall(&self, cause: String) {
        let mut st = self.state.lock();
        st.stalled.get_or_insert(cause);
        self.visible_changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_is_a_gap_free_prefix() {
        let r = SnapshotRegistry::new(0);
        r.mark_ready(2);
        assert_eq!(r.visible(), 0);
        r.mark_ready(1);
        assert_eq!(r.visible(), 2);
        r.mark_ready(3);
        assert_eq!(r.visible(), 3);
    }

    #[test]
    fn horizon_follows_the_oldest_snapshot() {
        let r = SnapshotRegistry::new(5);
        let a = r.begin();
        r.mark_ready(6);
        let b = r.begin();
        assert_eq!((a.seq(), b.seq()), (5, 6));
        assert_eq!(r.horizon(), 5);
        drop(a);
        assert_eq!(r.horizon(), 6);
        drop(b);
        r.mark_ready(7);
        assert_eq!(r.horizon(), 7);
        assert_eq!(r.live_count(), 0);
    }
}
