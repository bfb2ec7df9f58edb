//! Live snapshots and the visible sequence.
//!
//! `visible` is the largest sequence such that every commit at or below it is
//! visible; it only moves forward, over a gap-free prefix. A commit is ready to become
//! visible once its versions are applied and it reached the durability its committer
//! asked for; the committer reports the first ([`SnapshotRegistry::mark_applied`]), the
//! group commit the second ([`SnapshotRegistry::reached`]), whichever comes last moves
//! `visible`. So a committer that is slow to wake after its group's sync holds back no
//! later commit. The registry counts the live snapshots so the GC horizon (the oldest of
//! them) is known.

use crate::types::Durability;
use crate::util::{ThreadShards, WakeSlots};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Condition variables the visibility waiters are spread over by sequence
/// (`seq % VISIBLE_SLOTS`), so a commit that becomes visible wakes its own waiter, not
/// every committer waiting for a later one.
const VISIBLE_SLOTS: usize = 32;

/// The live snapshots of one shard: `(sequence, holders, validating holders)`, a
/// handful at most. A validating holder is a read-write transaction, which validates
/// against the commit index at its commit; a read-only snapshot never does, so it holds
/// back the version store's collection but not the index's pruning
/// ([`SnapshotRegistry::validation_horizon`]).
/// Live snapshots are counted in [`ThreadShards`]: a thread counts its snapshots in its
/// own shard, so two threads beginning and ending read transactions lock and write
/// different cache lines, and neither takes the lock the commit path advances
/// visibility under. Aligned so that no two shards share a cache line.
#[repr(align(128))]
#[derive(Default)]
pub struct LiveShard {
    live: Mutex<Vec<(u64, usize, usize)>>,
}

impl LiveShard {
    fn add(&self, seq: u64, validates: bool) {
        let v = usize::from(validates);
        let mut live = self.live.lock();
        match live.iter_mut().find(|(s, _, _)| *s == seq) {
            Some((_, n, m)) => {
                *n += 1;
                *m += v;
            }
            None => live.push((seq, 1, v)),
        }
    }

    fn remove(&self, seq: u64, validates: bool) {
        let mut live = self.live.lock();
        if let Some(i) = live.iter().position(|(s, _, _)| *s == seq) {
            match live.get_mut(i) {
                Some((_, n, m)) if *n > 1 => {
                    *n -= 1;
                    *m -= usize::from(validates);
                }
                _ => {
                    live.swap_remove(i);
                }
            }
        }
    }
}

/// Tracks visibility and the snapshots that are alive.
pub struct SnapshotRegistry {
    state: Mutex<State>,
    /// Waiters for a sequence to become visible, spread over the slots by sequence.
    visible_slots: WakeSlots<VISIBLE_SLOTS>,
    /// Signalled when an exclusive hold ([`SnapshotRegistry::try_exclusive`]) ends.
    reopened: Condvar,
    visible: AtomicU64,
    /// Live snapshots, by the shard of the thread that took them.
    live: ThreadShards<Arc<LiveShard>>,
    /// `State::exclusive`, for `begin` to test without the lock.
    exclusive: AtomicBool,
    /// The newest horizon computed ([`SnapshotRegistry::recent_horizon`]).
    last_horizon: AtomicU64,
    /// The newest validation horizon computed
    /// ([`SnapshotRegistry::recent_validation_horizon`]).
    last_validation_horizon: AtomicU64,
}

impl Default for SnapshotRegistry {
    fn default() -> SnapshotRegistry {
        SnapshotRegistry {
            state: Mutex::default(),
            visible_slots: WakeSlots::default(),
            reopened: Condvar::new(),
            visible: AtomicU64::new(0),
            live: ThreadShards::default(),
            exclusive: AtomicBool::new(false),
            last_horizon: AtomicU64::new(0),
            last_validation_horizon: AtomicU64::new(0),
        }
    }
}

#[derive(Default)]
struct State {
    visible: u64,
    /// Sequences whose versions are applied, above `visible`, with the durability
    /// their committers wait for.
    applied: BTreeMap<u64, Durability>,
    /// Every commit at or below this is written to the file (its marker).
    written: u64,
    /// Every commit at or below this is durable.
    durable: u64,
    /// Set when a sequenced commit can never become visible (its I/O failed): the
    /// smallest such sequence, and the first cause given. Visibility never reaches it;
    /// a smaller sequence is still made visible by its committer (or stalls too).
    stalled: Option<(u64, String)>,
    /// While set, no new snapshot is taken (a tree commit is being published).
    exclusive: bool,
}

impl State {
    /// The stall's cause, if visibility stalled at or below `seq`.
    fn stalled_at_or_below(&self, seq: u64) -> Option<&String> {
        self.stalled
            .as_ref()
            .filter(|(at, _)| *at <= seq)
            .map(|(_, cause)| cause)
    }
}

/// A registered snapshot; dropping it lets the horizon move past it.
pub struct SnapshotGuard {
    shard: Arc<LiveShard>,
    seq: u64,
    validates: bool,
}

impl SnapshotGuard {
    /// The snapshot's sequence: reads see commits at or below it.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Drop for SnapshotGuard {
    fn drop(&mut self) {
        self.shard.remove(self.seq, self.validates);
    }
}

/// Holds new snapshots back while it lives ([`SnapshotRegistry::try_exclusive`]).
pub struct ExclusiveHold {
    registry: Arc<SnapshotRegistry>,
}

impl Drop for ExclusiveHold {
    fn drop(&mut self) {
        self.registry.reopen();
    }
}

impl SnapshotRegistry {
    /// A registry whose visible sequence starts at `visible`.
    pub fn new(visible: u64) -> Arc<SnapshotRegistry> {
        let r = SnapshotRegistry::default();
        {
            let mut st = r.state.lock();
            st.visible = visible;
            st.written = visible;
            st.durable = visible;
        }
        r.visible.store(visible, Ordering::SeqCst);
        r.last_horizon.store(visible, Ordering::SeqCst);
        r.last_validation_horizon.store(visible, Ordering::SeqCst);
        Arc::new(r)
    }

    /// Takes a snapshot at the current visible sequence (waiting while an exclusive
    /// hold lasts), counted in the calling thread's shard, for a transaction that may
    /// commit: it holds back the commit index's pruning as well as the version store's
    /// collection. [`SnapshotRegistry::begin_read_only`] for one that never commits.
    ///
    /// The sequence is read, counted, then read again: a snapshot is taken only when
    /// `visible` did not move in between. A [`SnapshotRegistry::horizon`] that reads
    /// `visible` and then misses this count (it locked the shard first) read a value no
    /// newer than the second read, so it never passes the snapshot. In the same way an
    /// exclusive hold either sees the count or is seen by the test that follows it.
    pub fn begin(&self) -> SnapshotGuard {
        self.begin_as(true)
    }

    /// [`SnapshotRegistry::begin`] for a snapshot that never validates (a read-only
    /// transaction): the commit index may forget the commits after it.
    pub fn begin_read_only(&self) -> SnapshotGuard {
        self.begin_as(false)
    }

    fn begin_as(&self, validates: bool) -> SnapshotGuard {
        let shard = self.live.home();
        loop {
            if self.exclusive.load(Ordering::SeqCst) {
                let mut st = self.state.lock();
                while st.exclusive {
                    self.reopened.wait(&mut st);
                }
            }
            let seq = self.visible.load(Ordering::SeqCst);
            // Tests widen the window a horizon may slip through here.
            #[cfg(test)]
            std::thread::yield_now();
            shard.add(seq, validates);
            if self.visible.load(Ordering::SeqCst) == seq && !self.exclusive.load(Ordering::SeqCst)
            {
                return SnapshotGuard {
                    shard: Arc::clone(shard),
                    seq,
                    validates,
                };
            }
            shard.remove(seq, validates);
        }
    }

    /// The oldest live snapshot, or the visible sequence when none is live. No current
    /// or future registered snapshot reads below it; a time-travel read
    /// (`begin_read_at`) is not registered and reads at or above the history floor,
    /// which pruning also stays below.
    pub fn horizon(&self) -> u64 {
        self.horizons().0
    }

    /// The oldest live snapshot of a transaction that may commit (read-write), or the
    /// visible sequence when none is live: no current or future commit validates
    /// against a commit at or below it, so the commit index may forget those. A
    /// read-only snapshot (a long backup) does not hold it back.
    pub fn validation_horizon(&self) -> u64 {
        self.horizons().1
    }

    /// [`SnapshotRegistry::horizon`] and [`SnapshotRegistry::validation_horizon`], from
    /// one look at every shard.
    pub fn horizons(&self) -> (u64, u64) {
        let visible = self.visible.load(Ordering::SeqCst);
        let (mut h, mut v) = (visible, visible);
        for shard in self.live.iter() {
            for &(s, _, validators) in shard.live.lock().iter() {
                h = h.min(s);
                if validators > 0 {
                    v = v.min(s);
                }
            }
        }
        self.last_horizon.fetch_max(h, Ordering::AcqRel);
        self.last_validation_horizon.fetch_max(v, Ordering::AcqRel);
        (h, v)
    }

    /// The newest horizon [`SnapshotRegistry::horizon`] computed, without computing one
    /// (no shard is locked). A horizon stays a lower bound of every snapshot taken later
    /// (those read a `visible` at least as new), so an older one is only less precise:
    /// what a commit prunes its chains to, between the maintenance passes that compute a
    /// fresh one.
    pub fn recent_horizon(&self) -> u64 {
        self.last_horizon.load(Ordering::Acquire)
    }

    /// The newest validation horizon computed, as [`SnapshotRegistry::recent_horizon`].
    pub fn recent_validation_horizon(&self) -> u64 {
        self.last_validation_horizon.load(Ordering::Acquire)
    }

    /// When the only live snapshot is one holder of `own`: holds every new snapshot
    /// back until the returned guard is dropped, so no snapshot but `own` can read below
    /// what becomes visible meanwhile. `None` when other snapshots are live (or another
    /// exclusive hold is in place).
    pub fn try_exclusive(self: &Arc<Self>, own: u64) -> Option<ExclusiveHold> {
        {
            let mut st = self.state.lock();
            if st.exclusive {
                return None;
            }
            st.exclusive = true;
            self.exclusive.store(true, Ordering::SeqCst);
        }
        // Counted after the flag is up: a `begin` that this count misses sees the flag.
        let (mut total, mut mine) = (0usize, 0usize);
        for shard in self.live.iter() {
            for &(s, n, _) in shard.live.lock().iter() {
                total += n;
                if s == own {
                    mine += n;
                }
            }
        }
        if total == 1 && mine == 1 {
            Some(ExclusiveHold {
                registry: Arc::clone(self),
            })
        } else {
            self.reopen();
            None
        }
    }

    /// Ends an exclusive hold: new snapshots may be taken again.
    fn reopen(&self) {
        let mut st = self.state.lock();
        st.exclusive = false;
        self.exclusive.store(false, Ordering::SeqCst);
        drop(st);
        self.reopened.notify_all();
    }

    /// The visible sequence.
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Number of live snapshots.
    pub fn live_count(&self) -> usize {
        self.live
            .iter()
            .map(|shard| shard.live.lock().iter().map(|(_, n, _)| n).sum::<usize>())
            .sum()
    }

    /// Marks `seq` ready; the visible sequence advances over every ready sequence
    /// that has no gap below it.
    pub fn mark_ready(&self, seq: u64) {
        self.mark_applied(seq, Durability::Applied);
    }

    /// Records that `seq`'s versions are applied and that it becomes visible once it
    /// reaches `level` (at once for `Applied`; for `Written` and `Durable` when the
    /// group commit reports that level reached, [`SnapshotRegistry::reached`]).
    pub fn mark_applied(&self, seq: u64, level: Durability) {
        let mut st = self.state.lock();
        if seq <= st.visible {
            return;
        }
        st.applied.insert(seq, level);
        self.advance(&mut st);
    }

    /// The group commit reports every commit up to `written` written and up to
    /// `durable` durable.
    pub fn reached(&self, written: u64, durable: u64) {
        let mut st = self.state.lock();
        st.written = st.written.max(written).max(durable);
        st.durable = st.durable.max(durable);
        self.advance(&mut st);
    }

    /// Moves `visible` over every next sequence that is applied and reached its level.
    fn advance(&self, st: &mut State) {
        let before = st.visible;
        while let Some(next) = st.visible.checked_add(1) {
            let ready = match st.applied.get(&next) {
                None => false,
                Some(Durability::Applied) => true,
                Some(Durability::Written) => st.written >= next,
                Some(Durability::Durable) => st.durable >= next,
            };
            if !ready {
                break;
            }
            st.applied.remove(&next);
            st.visible = next;
        }
        if st.visible != before {
            self.visible.store(st.visible, Ordering::SeqCst);
            self.visible_slots.wake_range(before, st.visible);
        }
    }

    /// Blocks until `seq` is visible. Fails if visibility stalled for good at or below
    /// it.
    pub fn wait_visible(&self, seq: u64) -> Result<(), String> {
        if self.visible.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let mut st = self.state.lock();
        while st.visible < seq {
            if let Some(cause) = st.stalled_at_or_below(seq) {
                return Err(cause.clone());
            }
            self.visible_slots.slot(seq).wait(&mut st);
        }
        Ok(())
    }

    /// [`SnapshotRegistry::wait_visible`] for a caller that waits for a commit which
    /// may not be sequenced yet: it also ends, with `Ok(false)`, once `ended` holds (the
    /// database closed and no commit will take `seq`). Waiters are woken for that by
    /// [`SnapshotRegistry::wake_all`].
    pub fn wait_visible_until(&self, seq: u64, ended: impl Fn() -> bool) -> Result<bool, String> {
        if self.visible.load(Ordering::Acquire) >= seq {
            return Ok(true);
        }
        let mut st = self.state.lock();
        while st.visible < seq {
            if let Some(cause) = st.stalled_at_or_below(seq) {
                return Err(cause.clone());
            }
            if ended() {
                return Ok(false);
            }
            self.visible_slots.slot(seq).wait(&mut st);
        }
        Ok(true)
    }

    /// Wakes every waiter for visibility, to look again (at a close).
    pub fn wake_all(&self) {
        let _st = self.state.lock();
        self.visible_slots.wake_all();
    }

    /// Records that commit `seq` will never become visible (its I/O failed), releasing
    /// everyone waiting for it or a later sequence. A waiter for an earlier one waits
    /// on: that commit may have reached its level (a sync before the failed one made it
    /// durable) and becomes visible once every commit below it is applied, and a
    /// `Poisoned` answer would have its committer retry a commit that happened. If it
    /// never does, its own committer stalls it.
    pub fn stall(&self, seq: u64, cause: String) {
        let mut st = self.state.lock();
        st.stalled = Some(match st.stalled.take() {
            Some((at, first)) => (seq.min(at), first),
            None => (seq, cause),
        });
        self.visible_slots.wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit becomes visible when it is both applied and at its level, whichever
    /// comes last, and never before a smaller one.
    #[test]
    fn visible_once_applied_and_at_its_level() {
        let r = SnapshotRegistry::new(0);
        r.mark_applied(1, Durability::Durable);
        r.mark_applied(2, Durability::Applied);
        r.mark_applied(3, Durability::Written);
        assert_eq!(
            r.visible(),
            0,
            "1 is not durable yet, 2 and 3 wait behind it"
        );
        r.reached(2, 0);
        assert_eq!(r.visible(), 0, "written is not durable");
        r.reached(2, 1);
        assert_eq!(
            r.visible(),
            2,
            "1 durable; 2 needed nothing; 3 is not written yet"
        );
        r.reached(3, 1);
        assert_eq!(r.visible(), 3);
        // The level may come first: the group reports 5 durable before 4 and 5 are
        // applied (a committer not yet scheduled).
        r.reached(5, 5);
        assert_eq!(r.visible(), 3);
        r.mark_applied(5, Durability::Durable);
        assert_eq!(r.visible(), 3, "4 is not applied");
        r.mark_applied(4, Durability::Durable);
        assert_eq!(r.visible(), 5);
        // Durable implies written.
        r.mark_applied(6, Durability::Written);
        r.reached(0, 6);
        assert_eq!(r.visible(), 6);
    }

    /// Waiters spread over the slots each wake once their own sequence is visible,
    /// whatever order the commits become ready in, and all of them when visibility
    /// stalls.
    #[test]
    fn every_visibility_waiter_wakes() {
        let r = Arc::new(SnapshotRegistry::new(0));
        let waiters: Vec<_> = (1..=100u64)
            .map(|seq| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || r.wait_visible(seq))
            })
            .collect();
        let mut order: Vec<u64> = (1..=100).collect();
        let mut rng = crate::rng::Rng::new(5);
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        for seq in order {
            r.mark_ready(seq);
        }
        for w in waiters {
            assert_eq!(w.join().unwrap(), Ok(()));
        }
        let stuck = {
            let r = Arc::clone(&r);
            std::thread::spawn(move || r.wait_visible(150))
        };
        r.mark_ready(102);
        r.stall(103, "a sync failed".into());
        assert_eq!(stuck.join().unwrap(), Err("a sync failed".to_string()));
    }

    /// A commit below the one that stalled is still waited for, not failed: it was
    /// durable before the failed sync, and becomes visible once a slower commit below
    /// it is applied (told `Poisoned`, its committer would run it again).
    #[test]
    fn a_stall_fails_only_its_sequence_and_later_ones() {
        let r = SnapshotRegistry::new(0);
        // 1 is still being applied; 2 reached `Durable`; 3's sync failed.
        r.mark_applied(2, Durability::Durable);
        r.reached(2, 2);
        let waiter = {
            let r = Arc::clone(&r);
            std::thread::spawn(move || r.wait_visible(2))
        };
        let later = {
            let r = Arc::clone(&r);
            std::thread::spawn(move || r.wait_visible(4))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        r.stall(3, "a sync failed".into());
        assert_eq!(later.join().unwrap(), Err("a sync failed".to_string()));
        r.mark_applied(1, Durability::Applied);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(r.visible(), 2);
        // A lower stall moves the bound down and keeps the first cause.
        r.stall(1, "later".into());
        assert_eq!(r.wait_visible(3), Err("a sync failed".to_string()));
        assert_eq!(r.wait_visible(2), Ok(()));
    }

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

    /// Read-only snapshots hold back the horizon, not the validation horizon; a
    /// read-write one at the same sequence holds back both, until its own drop.
    #[test]
    fn validation_horizon_follows_the_oldest_read_write_snapshot() {
        let r = SnapshotRegistry::new(5);
        let reader = r.begin_read_only();
        r.mark_ready(6);
        let writer = r.begin();
        let reader_too = r.begin_read_only();
        r.mark_ready(7);
        assert_eq!((r.horizon(), r.validation_horizon()), (5, 6));
        assert_eq!(r.recent_validation_horizon(), 6);
        drop(writer);
        assert_eq!((r.horizon(), r.validation_horizon()), (5, 7));
        drop(reader);
        assert_eq!((r.horizon(), r.validation_horizon()), (6, 7));
        let writer = r.begin();
        drop(reader_too);
        assert_eq!((r.horizon(), r.validation_horizon()), (7, 7));
        drop(writer);
        assert_eq!(r.live_count(), 0);
    }

    #[test]
    fn an_exclusive_hold_needs_to_be_alone_and_holds_new_snapshots_back() {
        let r = SnapshotRegistry::new(5);
        let own = r.begin();
        let other = r.begin();
        assert!(
            r.try_exclusive(own.seq()).is_none(),
            "another snapshot is live"
        );
        drop(other);
        let hold = r.try_exclusive(own.seq()).expect("alone");
        assert!(r.try_exclusive(own.seq()).is_none(), "one hold at a time");
        let waiter = {
            let r = Arc::clone(&r);
            std::thread::spawn(move || r.begin().seq())
        };
        r.mark_ready(6);
        drop(hold);
        assert_eq!(
            waiter.join().unwrap(),
            6,
            "the held snapshot sees what became visible"
        );
    }

    /// A sequence with the ticks of a shared clock before and after it was held or
    /// computed.
    type Ticked = (u64, u64, u64);

    /// Snapshots taken on several threads while commits become visible and another
    /// thread computes horizons: no horizon computed before a snapshot's guard is
    /// dropped passes it.
    #[test]
    fn no_horizon_passes_a_live_snapshot() {
        use std::sync::atomic::AtomicBool;
        let r = SnapshotRegistry::new(0);
        let clock = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let tick = || clock.fetch_add(1, Ordering::SeqCst);
        let (snapshots, horizons): (Vec<Ticked>, Vec<Ticked>) = std::thread::scope(|sc| {
            sc.spawn(|| {
                for seq in 1..=1_000_000 {
                    r.mark_ready(seq);
                }
                stop.store(true, Ordering::SeqCst);
            });
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    sc.spawn(|| {
                        let mut out = Vec::new();
                        // At least one sample, however late the thread is scheduled
                        // (on a loaded machine the marking can end before it starts).
                        while out.is_empty() || !stop.load(Ordering::SeqCst) {
                            let g = r.begin();
                            let from = tick();
                            std::hint::spin_loop();
                            let to = tick();
                            out.push((g.seq(), from, to));
                            drop(g);
                        }
                        out
                    })
                })
                .collect();
            let horizons = sc.spawn(|| {
                let mut out = Vec::new();
                while out.is_empty() || !stop.load(Ordering::SeqCst) {
                    let from = tick();
                    let h = r.horizon();
                    let to = tick();
                    out.push((h, from, to));
                }
                out
            });
            let snapshots: Vec<_> = readers
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect();
            (snapshots, horizons.join().unwrap())
        });
        assert!(!snapshots.is_empty() && !horizons.is_empty());
        // A horizon computed before a snapshot ends may be used (to prune) while it is
        // live: none may pass it. One thread computed them, in order of their ticks.
        let mut highest = Vec::with_capacity(horizons.len());
        let mut max = 0;
        for &(h, _, _) in &horizons {
            max = max.max(h);
            highest.push(max);
        }
        for &(seq, _, live_to) in &snapshots {
            let before = horizons.partition_point(|&(_, _, to)| to < live_to);
            if let Some(&h) = before.checked_sub(1).and_then(|i| highest.get(i)) {
                assert!(h <= seq, "horizon {h} passed the live snapshot {seq}");
            }
        }
        assert_eq!(r.live_count(), 0);
        assert_eq!(r.horizon(), 1_000_000);
    }
}
