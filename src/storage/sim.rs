//! A simulated file for crash, corruption and fault tests.
//!
//! It keeps the *durable* image (what the syncs made durable) apart from the
//! *unsynced* operations (each sync covers those made before it was called). [`SimStorage::crash`] throws the live state away
//! and keeps the durable image plus a seeded subset of the unsynced operations, each
//! kept whole, dropped, or torn at [`SECTOR_SIZE`] boundaries. It can also flip bits,
//! fail the N-th write, sync or resize, refuse to grow past a size (a full disk), and
//! "lose power" after N operations so a test can crash at every I/O point.
//! A test can hold the N-th sync until it releases it ([`SimStorage::hold_nth_sync`]),
//! to line concurrent commits up deterministically around one sync.
//! When asked ([`SimStorage::start_trace`]) it records the order of its successful
//! writes and resizes and of each sync's call and successful return, so a test can
//! check the order the engine issues them in.
//! The same seed always gives the same image.

use super::{Storage, View};
use crate::error::{Error, Result};
use crate::rng::Rng;
use parking_lot::{Condvar, Mutex};
use std::io;
use std::sync::Arc;

/// The unit of atomicity the simulator assumes for writes: a write may be torn only
/// at these boundaries (absolute file offsets).
pub const SECTOR_SIZE: u64 = 512;

/// An in-memory file with crash and fault injection. Clones share one file, so a
/// test keeps a handle while the engine owns another.
#[derive(Clone, Default)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
}

#[derive(Default)]
struct SimState {
    live: Arc<Vec<u8>>,
    durable: Vec<u8>,
    unsynced: Vec<Unsynced>,
    /// Operations ever taken out of `unsynced` (synced, crashed or lost): an operation's
    /// number is this plus its position there, so a sync makes durable exactly the
    /// operations made before it was called, however other syncs ran meanwhile.
    unsynced_gone: u64,
    /// Syncs called so far, numbering [`TraceOp::SyncStart`] and [`TraceOp::Sync`].
    sync_calls: u64,
    counts: IoCounts,
    faults: Faults,
    /// Operations still allowed before the simulated power loss.
    power_budget: Option<u64>,
    /// The operations recorded since [`SimStorage::start_trace`], if tracing.
    trace: Option<Vec<TraceOp>>,
    /// The bytes of each [`TraceOp::Write`] in `trace`, in order.
    trace_bytes: Vec<Vec<u8>>,
}

/// One operation of a traced [`SimStorage`], in the order it happened: successful
/// writes and resizes, and each sync's call and successful return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceOp {
    /// `write_at` of `len` bytes at `offset`.
    Write {
        /// File offset of the first byte.
        offset: u64,
        /// Bytes written.
        len: u64,
    },
    /// A `sync` was called (numbered from 1): it makes durable what was written before
    /// this point, not what is written while it runs.
    SyncStart(u64),
    /// The `sync` of that number returned successfully: what was written before its
    /// [`TraceOp::SyncStart`] is durable.
    Sync(u64),
    /// `set_len` to this length.
    SetLen(u64),
}

/// Takes every unsynced operation out (a crash, a lost writeback), counting them gone.
fn take_unsynced(st: &mut SimState) -> Vec<Unsynced> {
    st.unsynced_gone += st.unsynced.len() as u64;
    std::mem::take(&mut st.unsynced)
}

enum Unsynced {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// Counters of the calls made on a [`SimStorage`] since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounts {
    /// Successful `write_at` calls.
    pub writes: u64,
    /// Bytes passed to successful `write_at` calls.
    pub bytes_written: u64,
    /// Successful `sync` calls.
    pub syncs: u64,
    /// Successful `set_len` calls.
    pub set_lens: u64,
    /// Successful remaps: `view` calls after the length changed (a real file maps the
    /// file again then).
    pub remaps: u64,
}

#[derive(Default)]
struct Faults {
    fail_write: Option<u64>,
    /// Bytes of the failing write that land before it fails (none: it writes nothing).
    fail_write_keep: usize,
    fail_sync: Option<u64>,
    fail_set_len: Option<u64>,
    /// Every `set_len` from this one (by count) on fails.
    fail_set_lens_from: Option<u64>,
    fail_remap: Option<u64>,
    /// The length the last successful view saw (what a real file has mapped).
    mapped_len: Option<usize>,
    max_len: Option<u64>,
    /// The sync (by count) that blocks on a gate until the test releases it.
    hold_sync: Option<(u64, SyncGate)>,
}

/// A hold on one future sync of a [`SimStorage`] (see [`SimStorage::hold_nth_sync`]).
#[derive(Clone, Default)]
pub struct SyncGate {
    inner: Arc<(Mutex<GateState>, Condvar)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum GateState {
    #[default]
    Armed,
    Held,
    Released,
}

impl std::fmt::Debug for SyncGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncGate")
            .field("state", &*self.inner.0.lock())
            .finish()
    }
}

impl SyncGate {
    /// Blocks until the held sync has been called (and is waiting on the gate).
    pub fn wait_held(&self) {
        let (m, cv) = &*self.inner;
        let mut st = m.lock();
        while *st == GateState::Armed {
            cv.wait(&mut st);
        }
    }

    /// Lets the held sync (or the sync still to come) go on.
    pub fn release(&self) {
        let (m, cv) = &*self.inner;
        *m.lock() = GateState::Released;
        cv.notify_all();
    }

    fn block(&self) {
        let (m, cv) = &*self.inner;
        let mut st = m.lock();
        if *st == GateState::Armed {
            *st = GateState::Held;
            cv.notify_all();
        }
        while *st != GateState::Released {
            cv.wait(&mut st);
        }
    }
}

fn simulated(what: &str) -> io::Error {
    io::Error::other(format!("simulated {what}"))
}

impl std::fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("SimStorage")
            .field("live_bytes", &st.live.len())
            .field("durable_bytes", &st.durable.len())
            .field("unsynced_writes", &st.unsynced.len())
            .finish_non_exhaustive()
    }
}

impl SimStorage {
    /// An empty simulated file.
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    /// A simulated file whose durable and live images are `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> SimStorage {
        let s = SimStorage::new();
        {
            let mut st = s.state.lock();
            st.durable.clone_from(&bytes);
            st.live = Arc::new(bytes);
        }
        s
    }

    /// An independent copy of this file with everything unsynced still pending, so a
    /// test can crash the same moment with several seeds.
    pub fn fork(&self) -> SimStorage {
        let st = self.state.lock();
        let copy = SimState {
            live: Arc::new(st.live.as_ref().clone()),
            durable: st.durable.clone(),
            unsynced: st
                .unsynced
                .iter()
                .map(|op| match op {
                    Unsynced::Write { offset, data } => Unsynced::Write {
                        offset: *offset,
                        data: data.clone(),
                    },
                    Unsynced::SetLen(len) => Unsynced::SetLen(*len),
                })
                .collect(),
            unsynced_gone: st.unsynced_gone,
            sync_calls: st.sync_calls,
            counts: st.counts,
            faults: Faults::default(),
            power_budget: None,
            trace: None,
            trace_bytes: Vec::new(),
        };
        SimStorage {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// A copy of the live image (what reads see now).
    pub fn live_bytes(&self) -> Vec<u8> {
        self.state.lock().live.as_ref().clone()
    }

    /// A copy of the durable image (what a crash that keeps nothing unsynced leaves).
    pub fn durable_bytes(&self) -> Vec<u8> {
        self.state.lock().durable.clone()
    }

    /// Counts of successful calls so far.
    pub fn counts(&self) -> IoCounts {
        self.state.lock().counts
    }

    /// Starts recording the successful writes, syncs and resizes (dropping any trace
    /// recorded so far). Off by default, when it costs one branch per operation.
    pub fn start_trace(&self) {
        let mut st = self.state.lock();
        st.trace = Some(Vec::new());
        st.trace_bytes.clear();
    }

    /// Stops recording and returns the operations recorded since
    /// [`SimStorage::start_trace`], in order (empty if tracing was off).
    pub fn take_trace(&self) -> Vec<TraceOp> {
        self.take_trace_with_bytes()
            .into_iter()
            .map(|(op, _)| op)
            .collect()
    }

    /// [`SimStorage::take_trace`] with the bytes each write wrote (empty for the other
    /// operations): a test can tell when a range first held its final contents, and
    /// not only when it was last written.
    pub fn take_trace_with_bytes(&self) -> Vec<(TraceOp, Vec<u8>)> {
        let mut st = self.state.lock();
        let mut bytes = std::mem::take(&mut st.trace_bytes).into_iter();
        let trace = st.trace.take().unwrap_or_default();
        trace
            .into_iter()
            .map(|op| match op {
                TraceOp::Write { .. } => (op, bytes.next().unwrap_or_default()),
                _ => (op, Vec::new()),
            })
            .collect()
    }

    /// How many operations the trace holds so far (0 when not tracing): a position a
    /// test can note when something happens, to compare with the trace's indices.
    pub fn trace_len(&self) -> usize {
        self.state.lock().trace.as_ref().map_or(0, Vec::len)
    }

    /// Number of operations (writes, syncs, resizes) not yet covered by a sync.
    pub fn unsynced_ops(&self) -> usize {
        self.state.lock().unsynced.len()
    }

    /// Makes the `n`-th `write_at` from now (1-based) fail without writing anything.
    pub fn fail_nth_write(&self, n: u64) {
        self.fail_nth_write_partly(n, 0);
    }

    /// Makes the `n`-th `write_at` from now (1-based) write its first `keep` bytes, then
    /// fail (a real write may land part way before an EIO or a full disk stops it).
    pub fn fail_nth_write_partly(&self, n: u64, keep: usize) {
        let mut st = self.state.lock();
        st.faults.fail_write = Some(st.counts.writes + n);
        st.faults.fail_write_keep = keep;
    }

    /// Makes the `n`-th `sync` from now (1-based) fail without making anything durable,
    /// and lose the writes it covered (as [`SimStorage::lose_writeback`]: no later sync
    /// makes them durable, as pages Linux marks clean after a failed writeback).
    pub fn fail_nth_sync(&self, n: u64) {
        let mut st = self.state.lock();
        st.faults.fail_sync = Some(st.counts.syncs + n);
    }

    /// Makes the `n`-th `sync` from now (1-based) wait, before it makes anything
    /// durable, until the returned gate is released. Faults armed for that sync still
    /// apply once it goes on.
    pub fn hold_nth_sync(&self, n: u64) -> SyncGate {
        let gate = SyncGate::default();
        let mut st = self.state.lock();
        st.faults.hold_sync = Some((st.counts.syncs + n, gate.clone()));
        gate
    }

    /// Makes the `n`-th `set_len` from now (1-based) fail without resizing.
    pub fn fail_nth_set_len(&self, n: u64) {
        let mut st = self.state.lock();
        st.faults.fail_set_len = Some(st.counts.set_lens + n);
    }

    /// Makes the `n`-th `set_len` from now (1-based) and every one after it fail without
    /// resizing (a file that can no longer change its length; a retry fails too);
    /// `None` lifts it.
    pub fn fail_set_lens_from(&self, n: Option<u64>) {
        let mut st = self.state.lock();
        st.faults.fail_set_lens_from = n.map(|n| st.counts.set_lens + n);
    }

    /// Makes the `n`-th remap from now (1-based) fail: the `n`-th `view` that follows a
    /// change of the file's length, where a real file maps it again (`mmap` can fail
    /// there, for example when the address space is exhausted).
    pub fn fail_nth_remap(&self, n: u64) {
        let mut st = self.state.lock();
        st.faults.fail_remap = Some(st.counts.remaps + n);
    }

    /// Refuses to let the file grow past `max_len` bytes: a full disk as a storage that
    /// reserves space when the file grows sees it. A Linux file grows sparse, so there
    /// a full disk fails a later write inside the file's length, possibly after part of
    /// it was written; this refuses growth only, and a refused or failed write writes
    /// nothing (`fail_nth_write` fails a write whole).
    pub fn set_max_len(&self, max_len: Option<u64>) {
        self.state.lock().faults.max_len = max_len;
    }

    /// Lets `ops` more operations (writes, syncs, resizes) succeed, then fails every
    /// later one, as if the power went out. Follow with [`SimStorage::crash`].
    pub fn power_off_after(&self, ops: u64) {
        self.state.lock().power_budget = Some(ops);
    }

    /// The operations left before the power goes out ([`SimStorage::power_off_after`]):
    /// `Some(0)` once it has (or is about to), `None` when no power-off is set.
    pub fn power_left(&self) -> Option<u64> {
        self.state.lock().power_budget
    }

    /// Flips one bit in both the live and the durable image (corruption at rest).
    /// Offsets past the end of an image leave that image alone.
    pub fn flip_bit(&self, offset: u64, bit: u8) {
        let mut st = self.state.lock();
        let mask = 1u8 << (bit % 8);
        if let Ok(i) = usize::try_from(offset) {
            if let Some(b) = Arc::make_mut(&mut st.live).get_mut(i) {
                *b ^= mask;
            }
            if let Some(b) = st.durable.get_mut(i) {
                *b ^= mask;
            }
        }
    }

    /// Simulates a crash: the file becomes the durable image plus a subset of the
    /// unsynced operations chosen by `seed`, applied in their original order, each
    /// kept whole, dropped, or (writes only) torn into a subset of its sectors.
    /// Faults and the power-off budget are cleared; the file is usable again.
    pub fn crash(&self, seed: u64) {
        let mut rng = Rng::new(seed);
        let mut st = self.state.lock();
        let mut image = std::mem::take(&mut st.durable);
        for op in take_unsynced(&mut st) {
            match op {
                Unsynced::SetLen(len) => {
                    if rng.chance(1, 2) {
                        resize(&mut image, len);
                    }
                }
                Unsynced::Write { offset, data } => match rng.below(3) {
                    0 => apply_write(&mut image, offset, &data),
                    1 => {}
                    _ => tear_write(&mut image, offset, &data, &mut rng),
                },
            }
        }
        st.durable.clone_from(&image);
        st.live = Arc::new(image);
        st.faults = Faults::default();
        st.power_budget = None;
    }

    /// Simulates a writeback the kernel lost after a failed sync: every unsynced write
    /// is forgotten (no later sync makes it durable) while reads still see it, as
    /// pages marked clean without reaching the disk; a later crash loses them. Length
    /// changes are kept (the file's size is metadata the file system journals, not a
    /// page the writeback drops).
    pub fn lose_writeback(&self) {
        let mut st = self.state.lock();
        for op in take_unsynced(&mut st) {
            if let Unsynced::SetLen(len) = op {
                resize(&mut st.durable, len);
            }
        }
    }

    /// Simulates a crash that loses every unsynced operation.
    pub fn crash_losing_unsynced(&self) {
        let mut st = self.state.lock();
        let image = st.durable.clone();
        st.live = Arc::new(image);
        take_unsynced(&mut st);
        st.faults = Faults::default();
        st.power_budget = None;
    }

    /// Consumes one operation of the power budget, failing once it is spent.
    fn spend_power(st: &mut SimState) -> io::Result<()> {
        match st.power_budget.as_mut() {
            Some(0) => Err(simulated("power loss")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn resize(image: &mut Vec<u8>, len: u64) {
    image.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
}

fn apply_write(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    let end = start + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    if let Some(dst) = image.get_mut(start..end) {
        dst.copy_from_slice(data);
    }
}

/// Keeps each sector-aligned piece of the write with probability one half.
fn tear_write(image: &mut Vec<u8>, offset: u64, data: &[u8], rng: &mut Rng) {
    let end = offset + data.len() as u64;
    let mut piece_start = offset;
    while piece_start < end {
        let piece_end = ((piece_start / SECTOR_SIZE) + 1) * SECTOR_SIZE;
        let piece_end = piece_end.min(end);
        if rng.chance(1, 2) {
            let from = (piece_start - offset) as usize;
            let to = (piece_end - offset) as usize;
            if let Some(piece) = data.get(from..to) {
                apply_write(image, piece_start, piece);
            }
        }
        piece_start = piece_end;
    }
}

impl Storage for SimStorage {
    fn len(&self) -> Result<u64> {
        Ok(self.state.lock().live.len() as u64)
    }

    fn view(&self) -> Result<View> {
        let mut st = self.state.lock();
        let len = st.live.len();
        if st.faults.mapped_len != Some(len) {
            if st.faults.fail_remap == Some(st.counts.remaps + 1) {
                st.faults.fail_remap = None;
                return Err(Error::Io {
                    op: "map the database file",
                    source: simulated("mmap failure"),
                });
            }
            st.counts.remaps += 1;
            st.faults.mapped_len = Some(len);
        }
        let live = Arc::clone(&st.live);
        drop(st);
        Ok(View::new(live))
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let io = |source| Error::Io {
            op: "write to the database file",
            source,
        };
        let mut st = self.state.lock();
        SimStorage::spend_power(&mut st).map_err(io)?;
        if st.faults.fail_write == Some(st.counts.writes + 1) {
            st.faults.fail_write = None;
            let keep = std::mem::take(&mut st.faults.fail_write_keep).min(data.len());
            if keep > 0 {
                let part = data.get(..keep).unwrap_or(data);
                apply_write(Arc::make_mut(&mut st.live), offset, part);
                st.unsynced.push(Unsynced::Write {
                    offset,
                    data: part.to_vec(),
                });
            }
            return Err(io(simulated("write failure")));
        }
        let end = offset.saturating_add(data.len() as u64);
        if st.faults.max_len.is_some_and(|max| end > max) {
            return Err(io(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated full disk",
            )));
        }
        apply_write(Arc::make_mut(&mut st.live), offset, data);
        st.unsynced.push(Unsynced::Write {
            offset,
            data: data.to_vec(),
        });
        st.counts.writes += 1;
        st.counts.bytes_written += data.len() as u64;
        if let Some(trace) = st.trace.as_mut() {
            trace.push(TraceOp::Write {
                offset,
                len: data.len() as u64,
            });
            st.trace_bytes.push(data.to_vec());
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let io = |source| Error::Io {
            op: "sync the database file",
            source,
        };
        let mut st = self.state.lock();
        // As `fdatasync`: what was written before the call, not what is written while
        // it waits (here: while a test holds it).
        let covered = st.unsynced_gone + st.unsynced.len() as u64;
        st.sync_calls += 1;
        let id = st.sync_calls;
        if let Some(trace) = st.trace.as_mut() {
            trace.push(TraceOp::SyncStart(id));
        }
        let next = st.counts.syncs + 1;
        let held = match &st.faults.hold_sync {
            Some((n, _)) if *n == next => st.faults.hold_sync.take(),
            _ => None,
        };
        if let Some((_, gate)) = held {
            drop(st);
            gate.block();
            st = self.state.lock();
        }
        SimStorage::spend_power(&mut st).map_err(io)?;
        if st.faults.fail_sync == Some(st.counts.syncs + 1) {
            st.faults.fail_sync = None;
            // As Linux may: the writeback of what the sync covered failed, and those
            // pages are marked clean, never to reach the disk (reads still see them);
            // a later sync does not make them durable.
            let n = usize::try_from(covered.saturating_sub(st.unsynced_gone))
                .unwrap_or(usize::MAX)
                .min(st.unsynced.len());
            st.unsynced_gone += n as u64;
            let lost: Vec<Unsynced> = st.unsynced.drain(..n).collect();
            for op in lost {
                if let Unsynced::SetLen(len) = op {
                    resize(&mut st.durable, len);
                }
            }
            return Err(io(simulated("sync failure")));
        }
        // Replaying the unsynced operations costs what they wrote, not the file's size.
        let SimState {
            durable,
            unsynced,
            unsynced_gone,
            ..
        } = &mut *st;
        let n = usize::try_from(covered.saturating_sub(*unsynced_gone))
            .unwrap_or(usize::MAX)
            .min(unsynced.len());
        for op in unsynced.drain(..n) {
            match op {
                Unsynced::Write { offset, data } => apply_write(durable, offset, &data),
                Unsynced::SetLen(len) => resize(durable, len),
            }
        }
        *unsynced_gone += n as u64;
        if st.unsynced.is_empty() {
            debug_assert_eq!(st.durable.len(), st.live.len());
        }
        st.counts.syncs += 1;
        if let Some(trace) = st.trace.as_mut() {
            trace.push(TraceOp::Sync(id));
        }
        Ok(())
    }

    fn sync_count(&self) -> u64 {
        self.state.lock().counts.syncs
    }

    fn set_len(&self, len: u64) -> Result<()> {
        let io = |source| Error::Io {
            op: "resize the database file",
            source,
        };
        let mut st = self.state.lock();
        SimStorage::spend_power(&mut st).map_err(io)?;
        if st.faults.fail_set_len == Some(st.counts.set_lens + 1) {
            st.faults.fail_set_len = None;
            return Err(io(simulated("resize failure")));
        }
        if st
            .faults
            .fail_set_lens_from
            .is_some_and(|n| st.counts.set_lens + 1 >= n)
        {
            return Err(io(simulated("resize failure")));
        }
        if st.faults.max_len.is_some_and(|max| len > max) {
            return Err(io(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated full disk",
            )));
        }
        resize(Arc::make_mut(&mut st.live), len);
        st.unsynced.push(Unsynced::SetLen(len));
        st.counts.set_lens += 1;
        if let Some(trace) = st.trace.as_mut() {
            trace.push(TraceOp::SetLen(len));
        }
        Ok(())
    }
}
