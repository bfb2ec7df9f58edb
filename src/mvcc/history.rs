//! History retention: which past states stay readable (`begin_read_at`), and the
//! version lists that keep them in the tree (`format-spec/btree.md`, "History").
//!
//! Every state at a sequence `S >= floor` (and at or below the visible sequence) is
//! readable. The floor only rises (but once: a tree commit that fails lowers a floor it
//! raised to its own sequence back to that sequence less one, `format-spec/btree.md`): it follows
//! the retention setting, but never passes a live time-travel snapshot (a
//! [`HistoryPin`]).
//!
//! Versions of a key folded by a checkpoint while still inside the window go to a
//! *history entry*: tree key `HISTORY_PREFIX ‖ table ‖ key`, value a list of
//! `(seq, value or tombstone)` newest first, whose oldest element is the key's state at
//! or below the floor. A read at `S` seeks that one entry and takes the newest element
//! at or below `S`; a key without an entry has not changed inside the window, so its
//! tree value is its value at every retained `S`.

use crate::error::{Error, Result};
use crate::types::TableId;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The first 8 bytes of every history entry's tree key (no table has this id).
pub const HISTORY_PREFIX: [u8; 8] = u64::MAX.to_be_bytes();

/// The tree key holding the persisted floor (a table id no table can have).
pub fn floor_key() -> Vec<u8> {
    let mut k = HISTORY_PREFIX.to_vec();
    k.extend_from_slice(&u64::MAX.to_be_bytes());
    k.extend_from_slice(b"floor");
    k
}

/// The tree key holding the drops whose data is still kept: `(table, seq)` pairs.
pub fn drops_key() -> Vec<u8> {
    let mut k = HISTORY_PREFIX.to_vec();
    k.extend_from_slice(&u64::MAX.to_be_bytes());
    k.extend_from_slice(b"drops");
    k
}

/// Dropped tables whose data is kept: `(table, drop seq)` pairs.
pub type KeptDrops = Vec<(TableId, u64)>;

/// Encodes the kept drops.
pub fn encode_drops(drops: &[(TableId, u64)]) -> Vec<u8> {
    drops
        .iter()
        .flat_map(|(t, s)| t.to_le_bytes().into_iter().chain(s.to_le_bytes()))
        .collect()
}

/// Decodes the kept drops.
pub fn decode_drops(bytes: &[u8]) -> Result<KeptDrops> {
    if !bytes.len().is_multiple_of(16) {
        return Err(corrupt("the drops record is not a whole number of pairs"));
    }
    Ok(bytes
        .chunks_exact(16)
        .map(|c| {
            let (t, s) = c.split_at(8);
            (
                u64::from_le_bytes(t.try_into().unwrap_or([0; 8])),
                u64::from_le_bytes(s.try_into().unwrap_or([0; 8])),
            )
        })
        .collect())
}

/// The tree key of `key`'s history entry in `table`.
pub fn history_key(table: TableId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + key.len());
    k.extend_from_slice(&HISTORY_PREFIX);
    k.extend_from_slice(&table.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// The composite key (`table ‖ key`) a history key belongs to.
pub fn history_owner(history_key: &[u8]) -> Option<&[u8]> {
    history_key
        .strip_prefix(&HISTORY_PREFIX[..])
        .filter(|k| k.len() >= 8)
}

/// How long past states stay readable through `begin_read_at`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryRetention {
    /// Only what live snapshots need (the default): no extra space.
    #[default]
    Snapshots,
    /// The states of the last `n` commits.
    Commits(u64),
    /// The states committed within this long. States committed before the database was
    /// opened count as committed at the open.
    Duration(Duration),
}

pub use crate::format::{VersionList, decode_list, encode_list, find_in_list};

/// What a replay of the log keeps of each key's versions: no snapshot lives while it
/// runs, so only the states the history window will serve, from `floor` on, or, under
/// a retention of the last `commits` commits, from `seq - commits` on at each commit
/// `seq` (a later tip only moves that window up). Each applied version prunes the
/// versions below the horizon that a newer one at or below it hides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayWindow {
    floor: u64,
    commits: u64,
}

impl ReplayWindow {
    /// Every state from `floor` on.
    pub fn from_floor(floor: u64) -> ReplayWindow {
        ReplayWindow {
            floor,
            commits: u64::MAX,
        }
    }

    /// The window an open under `retention` serves, the history floor read from the
    /// tree being `floor`: under `Snapshots` only the newest state (no snapshot is live
    /// at an open); under `Commits(n)` the last `n` commits' states; under `Duration`
    /// every state from the floor on (states before the open count as committed at it).
    pub fn at_open(retention: HistoryRetention, floor: u64) -> ReplayWindow {
        let commits = match retention {
            HistoryRetention::Snapshots => 0,
            HistoryRetention::Commits(n) => n,
            HistoryRetention::Duration(_) => u64::MAX,
        };
        ReplayWindow { floor, commits }
    }

    /// The horizon commit `seq`'s versions are applied with.
    pub fn horizon(&self, seq: u64) -> u64 {
        seq.min(self.floor.max(seq.saturating_sub(self.commits)))
    }

    /// The history floor once the log is replayed up to `tip`.
    pub fn floor_at(&self, tip: u64) -> u64 {
        self.horizon(tip)
    }
}

fn corrupt(what: &str) -> Error {
    Error::corrupted(0, format!("history entry: {what}"))
}

/// Orders versions gathered from several places (the store, a history entry) newest
/// first, keeping one per sequence.
pub fn newest_first(list: &mut VersionList) {
    list.sort_by_key(|e| std::cmp::Reverse(e.0));
    list.dedup_by_key(|e| e.0);
}

/// Keeps what reads at `S >= floor` need: every version above the floor and the newest
/// at or below it.
pub fn prune_list(list: &mut VersionList, floor: u64) {
    if let Some(i) = list.iter().position(|(s, _)| *s <= floor) {
        list.truncate(i + 1);
    }
}

struct State {
    floor: u64,
    /// Live time-travel snapshots: seq -> count.
    pins: BTreeMap<u64, usize>,
    /// The floor asked for by `drop_history_before`.
    explicit: u64,
    /// `(when, tip)` samples for duration retention, oldest first.
    samples: VecDeque<(Instant, u64)>,
    /// While a checkpoint collects the versions it folds, the horizon it folds to: the
    /// floor does not rise above it meanwhile ([`History::hold_for_fold`]).
    fold_cap: u64,
}

/// The retention window of one database.
pub struct History {
    retention: HistoryRetention,
    floor: AtomicU64,
    state: Mutex<State>,
}

/// A live time-travel snapshot: the floor stays at or below its seq while it lives.
pub struct HistoryPin {
    history: Arc<History>,
    seq: u64,
}

impl HistoryPin {
    /// The pinned sequence.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// Keeps the floor from rising past a checkpoint's horizon ([`History::hold_for_fold`]).
pub struct FoldHold {
    history: Arc<History>,
    floor_above: bool,
}

impl FoldHold {
    /// Whether the floor already stood above the horizon when the hold began: versions
    /// at or below the horizon may have been pruned before it, so the tree the fold
    /// builds may be wrong at its own sequence, and the window must stay above it (the
    /// fold persists the floor).
    pub fn floor_above(&self) -> bool {
        self.floor_above
    }
}

impl Drop for FoldHold {
    fn drop(&mut self) {
        self.history.state.lock().fold_cap = u64::MAX;
    }
}

impl Drop for HistoryPin {
    fn drop(&mut self) {
        let mut st = self.history.state.lock();
        if let Some(n) = st.pins.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                st.pins.remove(&self.seq);
            }
        }
    }
}

impl History {
    /// A window starting at `floor` (the persisted one, after a reopen).
    pub fn new(retention: HistoryRetention, floor: u64, tip: u64) -> Arc<History> {
        let mut samples = VecDeque::new();
        samples.push_back((Instant::now(), tip));
        Arc::new(History {
            retention,
            floor: AtomicU64::new(floor),
            state: Mutex::new(State {
                floor,
                pins: BTreeMap::new(),
                explicit: 0,
                samples,
                fold_cap: u64::MAX,
            }),
        })
    }

    /// Keeps the floor at or below `horizon` until the returned guard drops: commits and
    /// garbage collection prune each chain to its newest version at or below the floor,
    /// so while a checkpoint collects the versions at or below `horizon` that it folds, a
    /// floor above `horizon` would let them drop the one it must write.
    pub fn hold_for_fold(self: &Arc<Self>, horizon: u64) -> FoldHold {
        let mut st = self.state.lock();
        st.fold_cap = st.fold_cap.min(horizon);
        FoldHold {
            history: Arc::clone(self),
            floor_above: st.floor > horizon,
        }
    }

    /// The retention setting.
    pub fn retention(&self) -> HistoryRetention {
        self.retention
    }

    /// The oldest readable sequence.
    pub fn floor(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// Pins `seq` for a time-travel snapshot, if it is inside the window (`visible` is
    /// the newest readable sequence).
    pub fn pin(self: &Arc<Self>, seq: u64, visible: u64) -> Result<HistoryPin> {
        let mut st = self.state.lock();
        if seq < st.floor || seq > visible {
            return Err(Error::HistoryUnavailable {
                requested: seq,
                oldest: st.floor,
                newest: visible,
            });
        }
        *st.pins.entry(seq).or_insert(0) += 1;
        Ok(HistoryPin {
            history: Arc::clone(self),
            seq,
        })
    }

    /// Asks for the floor to rise to `seq` (it stops below live pins and `limit`).
    pub fn drop_before(&self, seq: u64) {
        let mut st = self.state.lock();
        st.explicit = st.explicit.max(seq);
    }

    /// Lowers the floor to `seq` if it stands above: after a tree commit at `seq + 1`
    /// failed. Its fold raised the floor to its own sequence before the tree was
    /// written, and visibility stalls below it, so no state would be readable as of. The
    /// version at or below `seq` of every key is still there: pruning never passes the
    /// collection horizon, which stood at or below `seq` throughout the tree commit.
    pub fn lower_after_failed_tree_commit(&self, seq: u64) {
        let mut st = self.state.lock();
        if st.floor > seq {
            st.floor = seq;
            self.floor.store(seq, Ordering::Release);
        }
    }

    /// Raises the floor as far as the retention allows, given the newest sequence `tip`
    /// and `limit`, the highest floor the engine can serve (the GC horizon). Returns the
    /// floor.
    pub fn advance(&self, tip: u64, limit: u64) -> u64 {
        let mut st = self.state.lock();
        let now = Instant::now();
        let target = match self.retention {
            HistoryRetention::Snapshots => limit,
            HistoryRetention::Commits(n) => tip.saturating_sub(n),
            HistoryRetention::Duration(d) => {
                let step = (d / 1000).max(Duration::from_millis(1));
                if st
                    .samples
                    .back()
                    .is_none_or(|(t, _)| now.duration_since(*t) >= step)
                {
                    st.samples.push_back((now, tip));
                }
                let mut target = st.floor;
                while let Some(&(t, s)) = st.samples.front() {
                    if now.duration_since(t) < d {
                        break;
                    }
                    // Every state committed by `t` is older than the window: `s` (the
                    // tip then) is the oldest state still needed.
                    target = target.max(s);
                    if st.samples.len() == 1 {
                        break;
                    }
                    st.samples.pop_front();
                }
                target
            }
        };
        let mut floor = target.max(st.explicit).min(limit).min(st.fold_cap);
        if let Some((&oldest_pin, _)) = st.pins.first_key_value() {
            floor = floor.min(oldest_pin);
        }
        if floor > st.floor {
            st.floor = floor;
            self.floor.store(floor, Ordering::Release);
        }
        st.floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_follows_retention_and_stops_at_pins() {
        let h = History::new(HistoryRetention::Commits(10), 0, 0);
        assert_eq!(h.advance(25, 100), 15);
        let pin = h.pin(20, 25).unwrap();
        assert!(matches!(
            h.pin(14, 25),
            Err(Error::HistoryUnavailable {
                requested: 14,
                oldest: 15,
                newest: 25
            })
        ));
        assert_eq!(h.advance(40, 100), 20, "held by the pin");
        drop(pin);
        assert_eq!(h.advance(40, 100), 30);
        assert_eq!(h.advance(40, 28), 30, "the floor never falls");
        h.drop_before(35);
        assert_eq!(h.advance(40, 100), 35);
        let s = History::new(HistoryRetention::Snapshots, 3, 3);
        assert_eq!(s.advance(50, 44), 44);
    }

    #[test]
    fn a_fold_hold_caps_the_floor_and_says_when_it_stood_above() {
        let h = History::new(HistoryRetention::Snapshots, 0, 0);
        let hold = h.hold_for_fold(10);
        assert!(!hold.floor_above());
        assert_eq!(h.advance(40, 40), 10, "capped at the horizon");
        drop(hold);
        assert_eq!(h.advance(40, 40), 40);
        // The floor rose to the tip before a fold at a lower horizon began.
        let late = h.hold_for_fold(39);
        assert!(late.floor_above());
        assert_eq!(h.advance(45, 45), 40, "never past the hold, never down");
    }
}
