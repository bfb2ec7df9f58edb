//! The group-commit coordinator: leader/follower flushing of proofs and markers, with
//! consecutive groups overlapped.
//!
//! Admitted commits join a bounded queue in sequence order (inside the serialized
//! section). A committer that needs `Written` or `Durable` either waits or, if no
//! step is running, becomes the leader for one **step**:
//!
//! 1. up to [`GROUP_COMMITS_MAX`] queued commits become group N+1: their proofs are
//!    written;
//! 2. the markers of the group whose proofs the previous step's sync made durable
//!    (group N) are written, and `written` is published;
//! 3. one `fdatasync`: it is FSYNC_2 of group N and FSYNC_1 of group N+1;
//! 4. `durable` is published for group N, and the waiters it satisfies are woken (and
//!    one more, to lead the next step).
//!
//! So while group N waits on its FSYNC_2, group N+1 has formed and written its proofs,
//! and one sync serves both. Every commit still sees capsule, proof, a sync, marker, a
//! sync, in that order, before it is acknowledged `Durable`: its proof is written in
//! the step that makes it group N+1, its marker only in the next step, after that sync.
//! A lone commit takes two steps, as it took two syncs before. Any I/O failure, or a
//! panic inside a step (caught by its leader), poisons the coordinator: both groups a
//! failed sync served, and every waiting and later commit, get [`Error::Poisoned`] (the
//! step's leader gets the failure itself, an [`Error::Io`] say: as unknown); but
//! a `Written` commit whose marker the failed step wrote before its sync was published
//! written, and its wait here answers `Ok` (its committer then reports it as it
//! becomes visible, or not).

use super::arena::LogArena;
use super::doorbells::Doorbells;
use super::feed::Feed;
use super::marker_writer::MarkerWriter;
use crate::error::{Error, Result};
use crate::format::Proof;
use crate::mvcc::SnapshotRegistry;
use crate::storage::Storage;
use crate::types::Durability;
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Most commits flushed by one group. Part of the file format's contract: recovery
/// takes markers this many sequences past where the stream stops as proof that the
/// stopping marker was synced (`format-spec/log.md`, "Reading the stream", step 4), so a
/// writer must never flush larger groups.
pub const GROUP_COMMITS_MAX: usize = 512;

/// Bells waiters are spread over by sequence (`seq % WAKE_SLOTS`), so a step wakes only
/// the committers it finished, not every waiter.
const WAKE_SLOTS: usize = 64;

/// Most commits waiting for a flush; a committer finding the queue this full flushes
/// (or waits) before it is admitted.
pub const QUEUE_COMMITS_MAX: usize = 8192;

/// A sequenced commit waiting for its proof and marker.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    /// Its proof (sequence, snapshot, capsule location and checksums).
    pub proof: Proof,
}

/// Counters of the coordinator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Groups flushed.
    pub groups: u64,
    /// Commits flushed by those groups.
    pub commits: u64,
    /// `fdatasync` calls made by groups.
    pub syncs: u64,
    /// Bytes written for proofs and markers.
    pub log_bytes: u64,
}

/// The waiters' map for a level ([`State::waiting`] or [`State::waiting_written`]).
fn waiting(st: &mut State, level: Durability) -> &mut BTreeMap<u64, usize> {
    match level {
        Durability::Written => &mut st.waiting_written,
        _ => &mut st.waiting,
    }
}

/// A commit whose proof is written: `(seq, proof_offset, proof_checksum)`.
type Proved = (u64, u64, u32);

struct State {
    /// The group whose proofs the last step's sync made durable; its markers are the
    /// next step's to write.
    proved: Vec<Proved>,
    leader_active: bool,
    /// Committers blocked in [`GroupCommit::wait_for`] until a sequence is durable, by
    /// that sequence. A sequence leaves when it becomes durable ([`GroupCommit::publish`]):
    /// its waiters return without taking the state lock again.
    waiting: BTreeMap<u64, usize>,
    /// The same for committers waiting only until a sequence is written: a step that
    /// writes markers wakes these alone (a durable waiter woken then would only sleep
    /// again, two needless task switches a commit).
    waiting_written: BTreeMap<u64, usize>,
    written: u64,
    durable: u64,
    poisoned: Option<String>,
    stats: GroupStats,
    /// Steps that returned, failed or not.
    steps_ended: u64,
}

impl State {
    /// Whether commit `seq` has reached `level` ([`GroupCommit::reached`], under the lock).
    fn reached(&self, seq: u64, level: Durability) -> bool {
        match level {
            Durability::Applied => true,
            Durability::Written => self.written >= seq,
            Durability::Durable => self.durable >= seq,
        }
    }
}

/// The coordinator.
pub struct GroupCommit {
    feed: Arc<Feed>,
    /// Told each level reached, so a commit becomes visible without waiting for its
    /// committer to wake ([`SnapshotRegistry::reached`]).
    registry: Arc<SnapshotRegistry>,
    storage: Arc<dyn Storage>,
    proofs: LogArena,
    markers: Mutex<MarkerWriter>,
    state: Mutex<State>,
    /// Admitted commits waiting for a step, in sequence order: a lock of their own, so
    /// admitting a commit (inside the serialized section) never waits for the state
    /// lock. Lock order: `state`, then `queue`.
    queue: Mutex<VecDeque<Pending>>,
    /// `queue`'s length, readable without its lock (stored under it).
    queued: AtomicUsize,
    /// The newest sequence ever queued (stored under `queue`'s lock).
    last_queued: AtomicU64,
    /// Woken after every step: [`GroupCommit::drain`], [`GroupCommit::wait_for_room`].
    changed: Condvar,
    /// Waiters for a sequence, spread over the bells by sequence.
    bells: Doorbells<WAKE_SLOTS>,
    /// `State::written` and `State::durable`, readable without the state lock (stored
    /// under it, after the state's own fields).
    written_at: AtomicU64,
    durable_at: AtomicU64,
    /// Whether `State::poisoned` is set, readable without the state lock (stored under
    /// it, never cleared): a commit's first check takes no lock the leader holds.
    poisoned_at: AtomicBool,
    /// Set at close: a waiter for a sequence never queued stops waiting.
    closed: AtomicBool,
    /// Set when a sync outside the steps failed (a checkpoint's): it may have dropped
    /// pages a step wrote, so no later step's sync makes anything durable, as the file
    /// storage fails every sync after a failed one (a storage plugged in need not).
    sync_failed: AtomicBool,
    /// Held around each step's sync and its look at `sync_failed`, and around a sync
    /// outside the steps and its store of `sync_failed`
    /// ([`GroupCommit::serialize_syncs`]): a step's sync that returns while a
    /// checkpoint's failed sync has not yet set the flag would make its group durable
    /// over what the failed one dropped (on a storage plugged in that does not fail every
    /// sync after a failed one; the file storage serializes its syncs the same way).
    syncs: Mutex<()>,
}

impl GroupCommit {
    /// A coordinator whose commits up to `durable` are already on disk.
    pub fn new(
        storage: Arc<dyn Storage>,
        proofs: LogArena,
        markers: MarkerWriter,
        durable: u64,
        feed: Arc<Feed>,
        registry: Arc<SnapshotRegistry>,
    ) -> GroupCommit {
        GroupCommit {
            feed,
            registry,
            storage,
            proofs,
            markers: Mutex::new(markers),
            state: Mutex::new(State {
                proved: Vec::new(),
                leader_active: false,
                waiting: BTreeMap::new(),
                waiting_written: BTreeMap::new(),
                written: durable,
                durable,
                poisoned: None,
                stats: GroupStats::default(),
                steps_ended: 0,
            }),
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            last_queued: AtomicU64::new(durable),
            changed: Condvar::new(),
            bells: Doorbells::default(),
            written_at: AtomicU64::new(durable),
            durable_at: AtomicU64::new(durable),
            poisoned_at: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            sync_failed: AtomicBool::new(false),
            syncs: Mutex::new(()),
        }
    }

    /// Whether commit `seq` has reached `level`, without the state lock.
    fn reached(&self, seq: u64, level: Durability) -> bool {
        match level {
            Durability::Applied => true,
            Durability::Written => self.written_at.load(Ordering::Acquire) >= seq,
            Durability::Durable => self.durable_at.load(Ordering::Acquire) >= seq,
        }
    }

    /// Moves `written` and `durable` forward to the given values, publishes them, and
    /// forgets the waiters they satisfy (who find that out from the published values,
    /// without the state lock). Returns the satisfied waiters' sequences, whose bells the
    /// caller rings (after releasing the state lock, if it likes).
    fn publish(&self, st: &mut State, written: u64, durable: u64) -> Vec<u64> {
        st.written = st.written.max(written);
        st.durable = st.durable.max(durable);
        self.written_at.store(st.written, Ordering::Release);
        self.durable_at.store(st.durable, Ordering::Release);
        let still = st.waiting.split_off(&(st.durable + 1));
        let mut done: Vec<u64> = std::mem::replace(&mut st.waiting, still)
            .into_keys()
            .collect();
        let still = st.waiting_written.split_off(&(st.written + 1));
        done.extend(std::mem::replace(&mut st.waiting_written, still).into_keys());
        done
    }

    /// After `publish` (and outside the state lock): tells the snapshot registry the
    /// levels reached, then rings the bells of the waiters they satisfied (`done`), so
    /// the committers woken find their commits visible.
    fn announce(&self, written: u64, durable: u64, done: &[u64]) {
        self.registry.reached(written, durable);
        done.iter().for_each(|&s| self.bells.ring(s));
    }

    /// Whether a step has work: queued commits, or a proved group whose markers are due.
    /// A commit queued just after this read is seen by its own committer's
    /// [`GroupCommit::wait_for`], which then leads.
    fn has_work(&self, st: &State) -> bool {
        self.queued.load(Ordering::Acquire) > 0 || !st.proved.is_empty()
    }

    /// When work is left and no step runs, wakes someone to lead the next one: the
    /// waiter of the smallest sequence not yet durable, else the general waiters.
    fn hand_off(&self, st: &State) {
        if st.leader_active || !self.has_work(st) {
            return;
        }
        let durable = st.waiting.range(st.durable + 1..).next();
        match durable.or_else(|| st.waiting_written.range(st.written + 1..).next()) {
            Some((&s, _)) => self.bells.ring(s),
            None => {
                self.changed.notify_all();
            }
        }
    }

    /// Whether the coordinator is poisoned, without a lock (callable under any).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned_at.load(Ordering::Acquire)
    }

    /// Fails when the coordinator is poisoned.
    pub fn check(&self) -> Result<()> {
        if !self.poisoned_at.load(Ordering::Acquire) {
            return Ok(());
        }
        match &self.state.lock().poisoned {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// [`GroupCommit::check`] once no step is in flight: a step whose write or sync
    /// failed is poisoned only when it returns, and what it wrote before (a marker
    /// page's start) is then known bad.
    pub fn check_settled(&self) -> Result<()> {
        let mut st = self.state.lock();
        // The step in flight now, not every later one: under steady commits a step
        // nearly always runs.
        let ended = st.steps_ended;
        while st.leader_active && st.steps_ended == ended {
            self.changed.wait(&mut st);
        }
        match &st.poisoned {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Queues a sequenced commit. Called inside the serialized section, so the queue
    /// is in sequence order.
    pub fn enqueue(&self, pending: Pending) {
        let mut queue = self.queue.lock();
        debug_assert!(
            queue
                .back()
                .is_none_or(|b| b.proof.seq + 1 == pending.proof.seq)
        );
        let seq = pending.proof.seq;
        queue.push_back(pending);
        // `queued` before `last_queued`: a thread that reads `last_queued` and waits for
        // it (the flusher, `flush_queued`) then finds the commit queued, or taken by a
        // step, when it asks whether to lead. The other order let it find neither and
        // sleep while the committer (at `Applied`, waiting for nothing) returned: no
        // step ran until some other commit came.
        self.queued.store(queue.len(), Ordering::Release);
        self.last_queued.store(seq, Ordering::Release);
    }

    /// The newest sequence ever queued (`durable` at open).
    pub fn last_queued(&self) -> u64 {
        self.last_queued.load(Ordering::Acquire)
    }

    /// Blocks while the queue is full, flushing if nobody else is.
    pub fn wait_for_room(&self) -> Result<()> {
        if self.queued.load(Ordering::Acquire) < QUEUE_COMMITS_MAX {
            return Ok(());
        }
        let mut st = self.state.lock();
        while self.queued.load(Ordering::Acquire) >= QUEUE_COMMITS_MAX {
            self.lead_or_wait(&mut st)?;
        }
        Ok(())
    }

    /// After a close (everything queued was drained): waiters for a sequence never
    /// queued are woken to give up ([`Error::Closed`]); no commit will take it.
    pub fn close_waits(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _st = self.state.lock();
        self.changed.notify_all();
        self.bells.ring_all();
    }

    /// Whether the database closed with `seq` never queued.
    pub fn closed_before(&self, seq: u64) -> bool {
        self.closed.load(Ordering::SeqCst) && seq > self.last_queued()
    }

    /// Blocks until commit `seq` has reached `level` (`Written` or `Durable`).
    pub fn wait_for(&self, seq: u64, level: Durability) -> Result<()> {
        if self.reached(seq, level) {
            return Ok(());
        }
        let mut st = self.state.lock();
        loop {
            if st.reached(seq, level) {
                // Someone must lead the next step if this waiter was the one woken to.
                self.hand_off(&st);
                return Ok(());
            }
            if self.closed_before(seq) {
                // Rung to lead, perhaps: the next waiter is, or a `Written` commit
                // queued after the close's drain would wait for ever.
                self.hand_off(&st);
                return Err(Error::Closed);
            }
            if let Some(cause) = &st.poisoned {
                if st.leader_active {
                    // Poisoned from outside the step in flight (a checkpoint's failed
                    // header write): that step may still make `seq` durable and
                    // visible, and then a `Poisoned` answer would have its committer
                    // retry a commit that happened. Its end decides.
                    self.changed.wait(&mut st);
                    continue;
                }
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if !st.leader_active && self.has_work(&st) {
                if let Err(e) = self.lead(&mut st) {
                    // A step that failed after publishing `seq` at `level` (a `Written`
                    // commit whose marker was written before the step's sync failed)
                    // reached it: the commit is visible, and its committer is told so,
                    // as the group's other waiters are.
                    if st.reached(seq, level) {
                        return Ok(());
                    }
                    return Err(e);
                }
                continue;
            }
            // Sleep on the bell of `seq`, outside the state lock. Once `seq` is reached,
            // `publish` has forgotten this waiter, and it returns without the lock; a
            // waiter rung for anything else (to lead, a poisoning, a sequence sharing
            // its bell) takes the lock again and forgets itself.
            *waiting(&mut st, level).entry(seq).or_default() += 1;
            let ticket = self.bells.ticket(seq);
            drop(st);
            self.bells.wait(seq, ticket, || self.reached(seq, level));
            if self.reached(seq, level) {
                return Ok(());
            }
            st = self.state.lock();
            if !st.reached(seq, level) {
                let map = waiting(&mut st, level);
                if let Some(n) = map.get_mut(&seq) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(&seq);
                    }
                }
            }
        }
    }

    /// Flushes everything queued so far (shutdown).
    pub fn drain(&self) -> Result<()> {
        let mut st = self.state.lock();
        while self.has_work(&st) || st.leader_active {
            self.lead_or_wait(&mut st)?;
        }
        Ok(())
    }

    /// Either runs one step as the leader or waits for a change. A step in flight is
    /// waited out even when poisoned from outside it (a checkpoint's failed header
    /// write): it may still make commits durable and tell their waiters so, and `close`
    /// (through [`GroupCommit::drain`]) must not return before that.
    fn lead_or_wait(&self, st: &mut parking_lot::MutexGuard<'_, State>) -> Result<()> {
        if st.leader_active {
            self.changed.wait(st);
            return Ok(());
        }
        if let Some(cause) = &st.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        if !self.has_work(st) {
            self.changed.wait(st);
            return Ok(());
        }
        self.lead(st)
    }

    /// Runs one step as the leader (no step runs, and there is work).
    fn lead(&self, st: &mut parking_lot::MutexGuard<'_, State>) -> Result<()> {
        st.leader_active = true;
        let fresh: Vec<Pending> = {
            let mut queue = self.queue.lock();
            let n = queue.len().min(GROUP_COMMITS_MAX);
            let fresh = queue.drain(..n).collect();
            self.queued.store(queue.len(), Ordering::Release);
            fresh
        };
        let marked = std::mem::take(&mut st.proved);
        // A panic in a step (a bug, or a `Storage` the application plugged in) would leave
        // `leader_active` set and every later committer, `drain` and `close` waiting on
        // it forever: it poisons the group instead, as a failed I/O does (the panic
        // itself is reported by the thread's panic hook).
        let result = parking_lot::MutexGuard::unlocked(st, || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step(&marked, &fresh)))
                .unwrap_or_else(|payload| {
                    // Not dropped here: a payload whose drop panics would escape.
                    std::mem::forget(payload);
                    Err(Error::Poisoned {
                        cause: "a group commit step panicked".into(),
                    })
                })
        });
        st.leader_active = false;
        st.steps_ended += 1;
        let result = match result {
            Ok(proved) => {
                st.proved = proved;
                Ok(())
            }
            Err(e) => {
                // The first cause stays (a checkpoint's failed header write, say).
                st.poisoned.get_or_insert_with(|| e.to_string());
                self.poisoned_at.store(true, Ordering::Release);
                self.bells.ring_all();
                Err(e)
            }
        };
        self.changed.notify_all();
        self.hand_off(st);
        // Poisoned by this step, or from outside it while it ran (which then left the
        // feed open for what it made durable): no later step runs.
        if st.poisoned.is_some() {
            self.close_feed_poisoned();
        }
        // Logged last, with the state unlocked: every waiter is already told, whatever
        // the logger does, and a logger that calls into the database (its stats, a
        // commit that is then refused) takes this lock.
        if let Err(e) = &result {
            parking_lot::MutexGuard::unlocked(st, || {
                log::error!(
                    "a group commit step failed; the database refuses commits until \
                     reopened: {e}"
                );
            });
        }
        result
    }

    /// One step: the proofs of `fresh`, the markers of `marked` (whose proofs are
    /// durable), then one sync that is FSYNC_2 of `marked` and FSYNC_1 of `fresh`.
    /// Returns `fresh` as proved commits, for the next step's markers.
    fn step(&self, marked: &[Proved], fresh: &[Pending]) -> Result<Vec<Proved>> {
        let mut log_bytes = 0u64;
        // The proofs first: a proof write that fails (a full disk) then leaves no marker
        // of `marked` written behind its error, which tells their committers their
        // commits failed (a marker written first would still reach the disk, and the
        // commit with it).
        let mut proved = Vec::with_capacity(fresh.len());
        if !fresh.is_empty() {
            let encoded: Vec<_> = fresh.iter().map(|p| p.proof.encode()).collect();
            let records: Vec<&[u8]> = encoded.iter().map(|e| &e[..]).collect();
            let seqs: Vec<u64> = fresh.iter().map(|p| p.proof.seq).collect();
            let extents = self.proofs.append_settled(&records, &seqs)?;
            log_bytes += (records.len() * crate::format::PROOF_LEN) as u64;
            proved.extend(
                fresh
                    .iter()
                    .zip(&extents)
                    .zip(&encoded)
                    .map(|((p, e), enc)| (p.proof.seq, e.offset, Proof::checksum_of(enc))),
            );
        }
        if let Some(&(last_marked, _, _)) = marked.last() {
            log_bytes += self.markers.lock().append(marked)?;
            let mut st = self.state.lock();
            // Only the committers waiting for `Written`: the durable ones wait on.
            let durable = st.durable;
            let done = self.publish(&mut st, last_marked, durable);
            drop(st);
            self.announce(last_marked, durable, &done);
        }
        // FSYNC_2 of `marked` and FSYNC_1 of `fresh`: no marker of `fresh` is written
        // before this returns.
        let serial = self.syncs.lock();
        self.storage.sync()?;
        let sync_failed = self.sync_failed.load(Ordering::Acquire);
        drop(serial);
        if sync_failed {
            return Err(Error::Poisoned {
                cause: "an earlier sync of the file failed; this one may not cover what it dropped"
                    .into(),
            });
        }
        let mut st = self.state.lock();
        st.stats.syncs += 1;
        st.stats.log_bytes += log_bytes;
        if let (Some(&(first, _, _)), Some(&(last, _, _))) = (marked.first(), marked.last()) {
            let written = st.written;
            let done = self.publish(&mut st, written, last);
            st.stats.groups += 1;
            st.stats.commits += last - first + 1;
            drop(st);
            self.announce(written, last, &done);
            self.feed.durable(last);
        }
        Ok(proved)
    }

    /// Holds off the steps' syncs: a sync outside the steps runs under it and, when it
    /// fails, calls [`GroupCommit::poison_sync`] before letting go.
    pub fn serialize_syncs(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.syncs.lock()
    }

    /// [`GroupCommit::poison`] for a failed sync outside the steps: a step in flight
    /// makes nothing durable either.
    pub fn poison_sync(&self, cause: String) {
        self.sync_failed.store(true, Ordering::Release);
        self.poison(cause);
    }

    /// Fails every waiting and later commit with `cause` (a tree commit failed).
    pub fn poison(&self, cause: String) {
        let mut st = self.state.lock();
        st.poisoned.get_or_insert(cause);
        self.poisoned_at.store(true, Ordering::Release);
        self.changed.notify_all();
        self.bells.ring_all();
        // A step in flight may still make its group durable, and tells its waiters so:
        // the feed closes when it ends, after its subscribers receive that group.
        let step_in_flight = st.leader_active;
        drop(st);
        if !step_in_flight {
            self.close_feed_poisoned();
        }
    }

    /// Once poisoned and no step runs: subscribers receive every durable commit, as it
    /// becomes visible (its committer is told it succeeded), then `Closed` (no commit
    /// becomes durable any more; they waited until the database was closed). Waiters
    /// for the visibility of a sequence no commit took look again.
    fn close_feed_poisoned(&self) {
        // A step reports its durable sequence to the feed after telling its waiters:
        // one poisoned from outside between the two had not.
        let durable = self.durable_at.load(Ordering::Acquire);
        self.feed.durable(durable);
        self.feed.visible(self.registry.visible());
        self.feed.close_after(durable);
        self.registry.wake_all();
    }

    /// After a tree commit at `seq` (every commit below it durable, nothing queued):
    /// runs `f` on the marker writer, to start the new stream, once no step runs, and
    /// records `seq` as written and durable.
    pub fn skip_to<T>(&self, seq: u64, f: impl FnOnce(&mut MarkerWriter) -> T) -> T {
        let mut st = self.state.lock();
        while st.leader_active {
            self.changed.wait(&mut st);
        }
        debug_assert!(self.queued.load(Ordering::Acquire) == 0 && st.proved.is_empty());
        let out = f(&mut self.markers.lock());
        let done = self.publish(&mut st, seq, seq);
        self.changed.notify_all();
        let (written, durable) = (st.written, st.durable);
        drop(st);
        self.announce(written, durable, &done);
        self.feed.durable(seq);
        out
    }

    /// Runs `f` on the marker writer while no group writes markers.
    pub fn with_markers<T>(&self, f: impl FnOnce(&mut MarkerWriter) -> T) -> T {
        f(&mut self.markers.lock())
    }

    /// The proof arena.
    pub fn proofs(&self) -> &LogArena {
        &self.proofs
    }

    /// Counters so far.
    pub fn stats(&self) -> GroupStats {
        self.state.lock().stats
    }

    /// Highest sequence on disk.
    pub fn durable_seq(&self) -> u64 {
        self.durable_at.load(Ordering::Acquire)
    }
}
