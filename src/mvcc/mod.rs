//! The version store: committed versions not yet folded into the B-tree, per key,
//! readable concurrently with inserts, plus the snapshot registry that gives the GC
//! horizon.
//!
//! A read at snapshot `S` sees the newest version with `seq <= S`. Versions no live
//! snapshot can see are dropped: of the versions at or below the horizon (the oldest
//! live snapshot) only the newest survives, a tombstone too (it hides the tree's older
//! value until a checkpoint folds it).

mod chain;
mod fold;
pub mod history;
pub mod history_directory;
pub mod history_filter;
mod id_ranges;
mod read;
mod snapshots;

pub use fold::{FoldedChains, FoldedIter};
pub use history::{History, HistoryPin, HistoryRetention, ReplayWindow};
pub use read::{FlatBatch, SCAN_BATCH_MAX, ScanBatch, TablePin, bounds_nonempty};
pub use snapshots::{SnapshotGuard, SnapshotRegistry};

use crate::types::{TableId, Value, WriteSet};
use crate::util::HeadKey;
use parking_lot::{Mutex, RwLock};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[derive(Clone, Debug)]
struct Version {
    seq: u64,
    value: Value,
}

use chain::Chain;

type Chains = BTreeMap<HeadKey, Chain>;

/// Committed versions per table and key, oldest first in each chain.
#[derive(Default)]
pub struct VersionStore {
    tables: RwLock<HashMap<TableId, Arc<RwLock<Chains>>>>,
    versions: AtomicU64,
    bytes: AtomicU64,
    /// Keys whose chains still held more than one version after their last prune,
    /// ordered by when a prune can next drop something from them ([`PendingKey`]).
    gc_pending: Mutex<BTreeSet<PendingKey>>,
    /// Tables dropped at a sequence, whose data goes once the horizon passes it.
    dropped: Mutex<Vec<(TableId, u64)>>,
    /// Tables whose data is gone; a write to one is not kept. Validation refuses a
    /// commit writing a table dropped after its snapshot, and a write serialized before
    /// the drop is applied before the table dies, so this is a guard, not a path any
    /// valid history takes. As ranges: one entry per drop grew without bound.
    dead: Mutex<id_ranges::IdRanges>,
    /// Keys with a chain, per slot of tables (`table % TABLE_SLOTS`): a reader whose
    /// table's slot is zero skips the store with one atomic load.
    slot_keys: [AtomicU64; TABLE_SLOTS],
    /// Keys with a chain, per bucket of `(table, key)` ([`key_bucket`]): a point read
    /// whose key's bucket is zero skips the store (its table lock and map search) even
    /// while the store holds other keys of the table.
    key_buckets: KeyBuckets,
}

/// [`VersionStore::key_buckets`]: [`KEY_BUCKETS`] counts.
struct KeyBuckets(Box<[AtomicU32]>);

impl Default for KeyBuckets {
    fn default() -> KeyBuckets {
        KeyBuckets((0..KEY_BUCKETS).map(|_| AtomicU32::new(0)).collect())
    }
}

/// Buckets of [`VersionStore::key_buckets`] (256 KiB of counts: they stay in a core's
/// second-level cache). A store of a few thousand keys leaves most of them zero; one of
/// hundreds of thousands (near its default budget) leaves few, and reads then take the
/// table's lock as before.
const KEY_BUCKETS: usize = 1 << 16;

/// The bucket of `key` in `table`.
fn key_bucket(table: TableId, key: &[u8]) -> usize {
    const M: u64 = 0x9E37_79B9_7F4A_7C15;
    let h = (history_filter::KeyFilter::hash_of(key) ^ table.wrapping_mul(M)).wrapping_mul(M);
    (h >> (64 - KEY_BUCKETS.trailing_zeros())) as usize
}

/// A chain that a prune may shorten once the horizon reaches its first field: the
/// sequence of its second-oldest version (a prune keeps the newest version at or below
/// the horizon and drops the older ones). A chain's value only grows (prunes and folds
/// take from the front, commits add at the back), and every commit that gives a chain
/// its second version queues it again, so no prune comes late; an entry that comes
/// early finds nothing to drop and queues the chain at its new value.
type PendingKey = (u64, TableId, HeadKey);

/// Keys a checkpoint's pass over a table handles per hold of the table's lock.
const LOCK_CHUNK_KEYS: usize = 4096;

/// Slots of [`VersionStore::may_have`]'s per-table key counts.
const TABLE_SLOTS: usize = 32;

fn slot_of(table: TableId) -> usize {
    (table % TABLE_SLOTS as u64) as usize
}

fn version_bytes(key: &[u8], v: &Version) -> u64 {
    (key.len() + v.value.as_ref().map_or(0, |b| b.len()) + 32) as u64
}

impl VersionStore {
    /// An empty store.
    pub fn new() -> VersionStore {
        VersionStore::default()
    }

    /// Whether the store may hold a version of some key of `table`. `false` means
    /// [`VersionStore::get`] and [`VersionStore::scan`] would find nothing: one atomic
    /// load, no lock. A chain is counted before its first version is inserted and
    /// uncounted after its last is removed (with release ordering, so a reader that sees
    /// the count drop to zero also sees the new tree a checkpoint published before).
    pub fn may_have(&self, table: TableId) -> bool {
        self.slot_keys
            .get(slot_of(table))
            .is_none_or(|n| n.load(Ordering::Acquire) > 0)
    }

    /// Whether the store may hold a version of `key` in `table`: [`VersionStore::may_have`]
    /// narrowed to the key's bucket, with the same ordering (a chain is counted in its
    /// bucket before its first version goes in, and uncounted after it is removed). Two
    /// atomic loads, no lock.
    #[inline]
    pub fn may_have_key(&self, table: TableId, key: &[u8]) -> bool {
        self.may_have(table)
            && self
                .key_buckets
                .0
                .get(key_bucket(table, key))
                .is_none_or(|n| n.load(Ordering::Acquire) > 0)
    }

    /// Counts a chain of `key` in `table` created (before its first version goes in).
    fn count_chain(&self, table: TableId, key: &[u8]) {
        if let Some(n) = self.key_buckets.0.get(key_bucket(table, key)) {
            n.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(n) = self.slot_keys.get(slot_of(table)) {
            n.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Uncounts a chain of `key` in `table` removed (after it left the map).
    fn uncount_chain(&self, table: TableId, key: &[u8]) {
        if let Some(n) = self.key_buckets.0.get(key_bucket(table, key)) {
            n.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(n) = self.slot_keys.get(slot_of(table)) {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn table(&self, table: TableId) -> Option<Arc<RwLock<Chains>>> {
        self.tables.read().get(&table).cloned()
    }

    /// Inserts the versions of one commit and prunes the chains it touched.
    pub fn apply(&self, seq: u64, writes: &WriteSet, horizon: u64) {
        let mut added_versions = 0i64;
        let mut added_bytes = 0i64;
        let mut still_long = Vec::new();
        for (&table, keys) in writes {
            if self.dead.lock().contains(table) {
                continue;
            }
            let t = {
                let existing = self.table(table);
                match existing {
                    Some(t) => t,
                    None => {
                        // Created under the map's lock, and only for a table not dead
                        // by then: `gc` marks a table dead before it removes its chains,
                        // and chains created after that would never be visited again.
                        let mut tables = self.tables.write();
                        if self.dead.lock().contains(table) {
                            continue;
                        }
                        Arc::clone(tables.entry(table).or_default())
                    }
                }
            };
            let mut chains = t.write();
            // A table `gc` removed after this commit found it: the versions would go
            // into chains nothing reaches, counted for ever.
            if self.dead.lock().contains(table) {
                continue;
            }
            for (key, value) in keys {
                let v = Version {
                    seq,
                    value: value.map(Arc::from),
                };
                added_bytes += version_bytes(key, &v) as i64;
                added_versions += 1;
                let chain = match chains.entry(HeadKey::new(key)) {
                    Entry::Vacant(e) => {
                        // Counted before its first version goes in: a reader that
                        // finds no count must find no version.
                        self.count_chain(table, key);
                        e.insert(Chain::new(v))
                    }
                    Entry::Occupied(e) => {
                        let chain = e.into_mut();
                        let at = chain.partition_point(|x| x.seq < seq);
                        chain.insert(at, v);
                        chain
                    }
                };
                let (n, b) = prune_chain(key, chain, horizon);
                added_versions -= n as i64;
                added_bytes -= b as i64;
                if chain.is_empty() {
                    chains.remove(&HeadKey::new(key));
                    self.uncount_chain(table, key);
                } else if let Some(next) = chain.get(1) {
                    still_long.push((next.seq, table, HeadKey::new(key)));
                }
            }
        }
        // One commit's prune can remove more versions than it added (a value and the
        // tombstone above it), so the change is signed.
        if added_versions >= 0 {
            self.versions
                .fetch_add(added_versions as u64, Ordering::Relaxed);
        } else {
            self.versions
                .fetch_sub(added_versions.unsigned_abs(), Ordering::Relaxed);
        }
        if added_bytes >= 0 {
            self.bytes.fetch_add(added_bytes as u64, Ordering::Relaxed);
        } else {
            self.bytes
                .fetch_sub(added_bytes.unsigned_abs(), Ordering::Relaxed);
        }
        if !still_long.is_empty() {
            self.gc_pending.lock().extend(still_long);
        }
    }

    /// Whether `table` was dropped at or below `snapshot` (or is dead: dropped at or
    /// below every live snapshot; this process never gives an id twice).
    pub fn dropped_for(&self, table: TableId, snapshot: u64) -> bool {
        self.dead.lock().contains(table)
            || self
                .dropped
                .lock()
                .iter()
                .any(|&(t, seq)| t == table && seq <= snapshot)
    }

    /// The ids of the tables the store holds versions of, in no order.
    pub fn table_ids(&self) -> Vec<TableId> {
        self.tables.read().keys().copied().collect()
    }

    /// Marks `table` dropped at `seq`; its data goes once no snapshot below `seq` lives.
    pub fn drop_table_at(&self, table: TableId, seq: u64) {
        self.dropped.lock().push((table, seq));
    }

    /// Prunes every chain that may hold versions no snapshot at or above `horizon`
    /// can see, and the data of tables dropped at or below it.
    pub fn gc(&self, horizon: u64) {
        // Only the chains whose second-oldest version is at or below the horizon have
        // anything to drop: a pass costs what it prunes, not every long chain.
        let ready = {
            let mut pending = self.gc_pending.lock();
            let later = pending.split_off(&(horizon.saturating_add(1), 0, HeadKey::default()));
            std::mem::replace(&mut *pending, later)
        };
        let mut keep = Vec::new();
        let mut removed = (0u64, 0u64);
        for (_, table, key) in ready {
            let Some(t) = self.table(table) else { continue };
            let mut chains = t.write();
            let Some(chain) = chains.get_mut(&key) else {
                continue;
            };
            let (n, b) = prune_chain(&key, chain, horizon);
            removed.0 += n;
            removed.1 += b;
            if chain.is_empty() {
                chains.remove(&key);
                self.uncount_chain(table, &key);
            } else if let Some(next) = chain.get(1) {
                keep.push((next.seq, table, key));
            }
        }
        if !keep.is_empty() {
            self.gc_pending.lock().extend(keep);
        }
        self.versions.fetch_sub(removed.0, Ordering::Relaxed);
        self.bytes.fetch_sub(removed.1, Ordering::Relaxed);
        let gone = self.drops_at_or_below(horizon);
        self.kill_tables(&gone);
    }

    /// Marks dropped tables dead and removes their versions: no snapshot reads them,
    /// and a write to them is discarded from now on (validation refuses one from a
    /// transaction that began before the drop: a guard).
    fn kill_tables(&self, tables: &[TableId]) {
        let mut removed = (0u64, 0u64);
        for &table in tables {
            if !self.dead.lock().insert(table) {
                continue;
            }
            // The map's lock is released before the table's is taken.
            let gone = self.tables.write().remove(&table);
            if let Some(t) = gone {
                // Emptied under the table's own lock: a fold (`remove_folded`) or `gc`
                // that fetched the table before it left the map takes that lock too,
                // and finds either the chains it then counts itself or none, never
                // chains counted here as well (counted twice, the store's totals wrapped
                // and a key bucket shared with a live key said it held none).
                let chains = std::mem::take(&mut *t.write());
                for (key, chain) in chains.iter() {
                    removed.0 += chain.len() as u64;
                    removed.1 += chain.iter().map(|v| version_bytes(key, v)).sum::<u64>();
                    self.uncount_chain(table, key);
                }
            }
        }
        self.versions.fetch_sub(removed.0, Ordering::Relaxed);
        self.bytes.fetch_sub(removed.1, Ordering::Relaxed);
    }

    /// Every version of `key` in the store at or below `snapshot`, newest first.
    pub fn chain(&self, table: TableId, key: &[u8], snapshot: u64) -> history::VersionList {
        let Some(t) = self.table(table) else {
            return Vec::new();
        };
        let chains = t.read();
        chains
            .get(&HeadKey::new(key))
            .map_or_else(Vec::new, |chain| {
                chain
                    .iter()
                    .rev()
                    .filter(|v| v.seq <= snapshot)
                    .map(|v| (v.seq, v.value.clone()))
                    .collect()
            })
    }

    /// Tables dropped at or below `horizon`, whose keys a checkpoint removes from the
    /// tree (they stay listed until [`VersionStore::take_drops`]).
    pub fn drops_at_or_below(&self, horizon: u64) -> Vec<TableId> {
        self.dropped
            .lock()
            .iter()
            .filter(|d| d.1 <= horizon)
            .map(|d| d.0)
            .collect()
    }

    /// [`VersionStore::drops_at_or_below`], forgetting them: once a checkpoint that
    /// removed their data from the tree is durable.
    /// The tables are marked dead as they are forgotten (as garbage collection does
    /// while they are listed), so that no write to one reaches the tree (validation
    /// already refuses one from a transaction that began before the drop).
    pub fn take_drops(&self, horizon: u64) -> Vec<TableId> {
        let taken: Vec<TableId> = {
            let mut dropped = self.dropped.lock();
            let taken = dropped
                .iter()
                .filter(|d| d.1 <= horizon)
                .map(|d| d.0)
                .collect();
            dropped.retain(|d| d.1 > horizon);
            taken
        };
        self.kill_tables(&taken);
        taken
    }

    /// Drops recorded at or below `seq` whose data is still kept (inside the history
    /// window): a checkpoint persists them so a reopen still removes the data later.
    pub fn pending_drops(&self, seq: u64) -> Vec<(TableId, u64)> {
        let mut d: Vec<(TableId, u64)> = self
            .dropped
            .lock()
            .iter()
            .copied()
            .filter(|d| d.1 <= seq)
            .collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// Versions held, across all tables.
    pub fn version_count(&self) -> u64 {
        self.versions.load(Ordering::Relaxed)
    }

    /// Approximate bytes held (keys, values and per-version overhead).
    pub fn byte_count(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Drops versions no snapshot at or above `horizon` can see: everything older than the
/// newest version at or below the horizon. That newest one stays, tombstone or not, until
/// a checkpoint folds it into the tree beneath the store.
fn prune_chain(key: &[u8], chain: &mut Chain, horizon: u64) -> (u64, u64) {
    let newest_old = chain.partition_point(|v| v.seq <= horizon);
    let cut = newest_old.saturating_sub(1);
    let bytes = chain
        .iter()
        .take(cut)
        .map(|v| version_bytes(key, v))
        .sum::<u64>();
    chain.drop_front(cut);
    (cut as u64, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(table: TableId, kvs: &[(&[u8], Option<&[u8]>)]) -> WriteSet {
        let mut w = WriteSet::new();
        for (k, v) in kvs {
            w.entry(table).or_default().insert(k, *v).unwrap();
        }
        w
    }

    /// A table cleared again and again (each clear drops its id and gives it the next):
    /// the dead set kept one entry per drop for the life of the process. It stays one
    /// range, and late writes to any dead id are still discarded.
    #[test]
    fn tables_dropped_in_turn_leave_a_dead_set_of_one_range() {
        let vs = VersionStore::new();
        for id in 2..5_002u64 {
            vs.apply(id, &ws(id, &[(b"k", Some(b"v"))]), 0);
            vs.drop_table_at(id, id + 1);
            vs.gc(id + 1);
        }
        assert_eq!(vs.dead.lock().ranges(), 1);
        assert!(vs.dropped_for(2, 0) && vs.dropped_for(5_001, 0));
        assert!(!vs.dropped_for(1, u64::MAX) && !vs.dropped_for(5_002, u64::MAX));
        vs.apply(10_000, &ws(700, &[(b"late", Some(b"v"))]), 0);
        assert!(!vs.may_have_key(700, b"late"));
        assert_eq!(vs.version_count(), 0);
    }

    /// A pruning pass leaves every chain as if it had been pruned at its horizon from
    /// the start: each key keeps the newest version at or below the horizon and all
    /// above it, whatever the order of commits, lagging commit horizons, folds and
    /// passes. Only the chains a pass can shorten are visited, so none may be missed.
    /// Three keys, so chains grow long between passes (queueing a chain at its newest
    /// version instead of its second-oldest made this fail; so did an off-by-one at the
    /// horizon).
    mod gc_model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            /// Commit key `k` (a tombstone when `None`), pruning at `lag` below the seq.
            Commit(u8, Option<u8>, u8),
            /// A pass at `lag` below the newest seq.
            Gc(u8),
            /// A checkpoint folding everything at or below `lag` below the newest seq.
            Fold(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (0u8..3, proptest::option::of(any::<u8>()), 0u8..6)
                    .prop_map(|(k, v, l)| Op::Commit(k, v, l)),
                2 => (0u8..6).prop_map(Op::Gc),
                1 => (0u8..12).prop_map(Op::Fold),
            ]
        }

        fn pruned(chain: &[(u64, Option<u8>)], horizon: u64) -> Vec<(u64, Option<u8>)> {
            let newest_old = chain.iter().filter(|(s, _)| *s <= horizon).count();
            chain[newest_old.saturating_sub(1)..].to_vec()
        }

        proptest! {
            #[test]
            fn passes_prune_exactly_what_the_horizon_allows(
                ops in proptest::collection::vec(op(), 1..120),
            ) {
                let s = VersionStore::new();
                let mut model: BTreeMap<u8, Vec<(u64, Option<u8>)>> = BTreeMap::new();
                let (mut seq, mut horizon) = (0u64, 0u64);
                for op in ops {
                    match op {
                        Op::Commit(k, v, lag) => {
                            seq += 1;
                            horizon = horizon.max(seq.saturating_sub(u64::from(lag) + 1));
                            let value = v.map(|b| [b]);
                            s.apply(seq, &ws(1, &[(&[k], value.as_ref().map(|b| &b[..]))]), horizon);
                            let chain = model.entry(k).or_default();
                            chain.push((seq, v));
                            *chain = pruned(chain, horizon);
                        }
                        Op::Gc(lag) => {
                            horizon = horizon.max(seq.saturating_sub(u64::from(lag)));
                            s.gc(horizon);
                            for chain in model.values_mut() {
                                *chain = pruned(chain, horizon);
                            }
                        }
                        Op::Fold(lag) => {
                            let upto = seq.saturating_sub(u64::from(lag)).min(horizon);
                            s.remove_folded(upto);
                            for chain in model.values_mut() {
                                chain.retain(|(s, _)| *s > upto);
                            }
                            model.retain(|_, c| !c.is_empty());
                        }
                    }
                    if matches!(op, Op::Gc(_)) {
                        for k in 0..3u8 {
                            let got: Vec<(u64, Option<u8>)> = s
                                .chain(1, &[k], u64::MAX)
                                .into_iter()
                                .rev()
                                .map(|(s, v)| (s, v.map(|b| b[0])))
                                .collect();
                            let want = model.get(&k).cloned().unwrap_or_default();
                            prop_assert_eq!(got, want, "key {}", k);
                        }
                        let total: usize = model.values().map(Vec::len).sum();
                        prop_assert_eq!(s.version_count(), total as u64);
                    }
                }
            }
        }
    }

    /// The per-slot key counts behind `may_have`, and the per-bucket ones behind
    /// `may_have_key`, stay exact through applies, pruning, folding and table drops: a
    /// slot (a bucket) is zero exactly when no table (no key) in it has a chain.
    #[test]
    fn may_have_tracks_chains_exactly() {
        let s = VersionStore::new();
        let exact = |s: &VersionStore| {
            let tables = s.tables.read();
            for slot in 0..TABLE_SLOTS {
                let chains: usize = tables
                    .iter()
                    .filter(|(id, _)| slot_of(**id) == slot)
                    .map(|(_, t)| t.read().len())
                    .sum();
                assert_eq!(s.slot_keys[slot].load(Ordering::Relaxed), chains as u64);
            }
            let mut buckets = vec![0u32; KEY_BUCKETS];
            for (&id, t) in tables.iter() {
                for key in t.read().keys() {
                    buckets[key_bucket(id, key)] += 1;
                }
            }
            for (b, want) in buckets.iter().enumerate() {
                assert_eq!(
                    s.key_buckets.0[b].load(Ordering::Relaxed),
                    *want,
                    "bucket {b}"
                );
            }
        };
        assert!(!s.may_have(1));
        let mut seq = 0;
        for round in 0..4u8 {
            for table in [1u64, 2, 1 + TABLE_SLOTS as u64] {
                for i in 0..20u8 {
                    seq += 1;
                    let value = (i % 3 != round % 3).then_some(&b"v"[..]);
                    s.apply(seq, &ws(table, &[(&[i, round % 2], value)]), seq / 2);
                    exact(&s);
                }
            }
            s.gc(seq - 5);
            exact(&s);
        }
        assert!(s.may_have(1) && s.may_have(2));
        assert!(!s.may_have(3));
        // Every key with a chain is found by its bucket; of keys without one, most
        // buckets are empty.
        for (&id, t) in s.tables.read().iter() {
            for key in t.read().keys() {
                assert!(s.may_have_key(id, key));
            }
        }
        let spared = (1000u32..2000)
            .filter(|i| !s.may_have_key(1, &i.to_be_bytes()))
            .count();
        assert!(spared > 900, "{spared} of 1000 absent keys spared");
        s.drop_table_at(2, seq);
        s.gc(seq);
        exact(&s);
        assert!(!s.may_have(2));
        s.remove_folded(seq);
        exact(&s);
        assert!(!s.may_have(1));
    }

    /// A dropped table's cleanup (`gc` past the drop) racing a checkpoint's
    /// `remove_folded` of the same versions: each version is uncounted once. The fold
    /// could take the table before the cleanup removed it from the map and then count
    /// its chains a second time: the store's totals wrapped and the key buckets and
    /// table slots went below what they hold.
    #[test]
    fn a_dropped_tables_cleanup_and_a_fold_count_each_version_once() {
        // The fold takes the tables in id order: it works through `other` while the
        // cleanup removes `dropped` (same slot), then reaches `dropped`.
        let (other, dropped) = (1u64, 1 + 2 * TABLE_SLOTS as u64);
        for round in 0..40u64 {
            let s = std::sync::Arc::new(VersionStore::new());
            let mut w = WriteSet::new();
            for i in 0..20_000u32 {
                w.entry(other)
                    .or_default()
                    .insert(&i.to_be_bytes(), Some(b"v"))
                    .unwrap();
            }
            for i in 0..2_000u32 {
                w.entry(dropped)
                    .or_default()
                    .insert(&i.to_be_bytes(), Some(b"v"))
                    .unwrap();
            }
            s.apply(1, &w, 0);
            s.apply(50, &ws(other, &[(b"late", Some(b"v"))]), 0);
            s.drop_table_at(dropped, 2);
            let cleaner = {
                let s = std::sync::Arc::clone(&s);
                std::thread::spawn(move || {
                    for _ in 0..round * 2_000 {
                        std::hint::spin_loop();
                    }
                    s.gc(10);
                })
            };
            s.remove_folded(10);
            cleaner.join().unwrap();
            assert_eq!(s.version_count(), 1, "round {round}");
            assert!(s.may_have(other) && s.may_have_key(other, b"late"));
            let held: usize = s.tables.read().values().map(|t| t.read().len()).sum();
            assert_eq!(held, 1);
            assert_eq!(
                s.slot_keys[slot_of(other)].load(Ordering::Relaxed),
                1,
                "round {round}"
            );
        }
    }

    #[test]
    fn reads_at_snapshots_and_prunes() {
        let s = VersionStore::new();
        s.apply(1, &ws(1, &[(b"a", Some(b"1"))]), 0);
        s.apply(2, &ws(1, &[(b"a", Some(b"2"))]), 0);
        s.apply(3, &ws(1, &[(b"a", None)]), 0);
        assert_eq!(s.get(1, b"a", 0), None);
        assert_eq!(s.get(1, b"a", 1).unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(s.get(1, b"a", 2).unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(s.get(1, b"a", 3), Some(None));
        assert_eq!(s.version_count(), 3);
        s.gc(2);
        assert_eq!(s.version_count(), 2, "version 1 is unseen at horizon 2");
        s.gc(3);
        assert_eq!(
            s.version_count(),
            1,
            "the tombstone stays until a checkpoint folds it"
        );
        s.remove_folded(3);
        assert_eq!(s.version_count(), 0);
        assert_eq!(s.byte_count(), 0);
    }

    /// A fold's removal works a chunk of keys per lock: across several chunks, every
    /// chain loses exactly its versions at or below the horizon, and a chain left empty
    /// leaves the map and its bucket count.
    #[test]
    fn removing_folded_versions_spans_lock_chunks() {
        let s = VersionStore::new();
        let n = 2 * LOCK_CHUNK_KEYS as u32 + 100;
        let keys: Vec<[u8; 4]> = (0..n).map(u32::to_be_bytes).collect();
        let first: Vec<(&[u8], Option<&[u8]>)> =
            keys.iter().map(|k| (&k[..], Some(&b"old"[..]))).collect();
        s.apply(1, &ws(1, &first), 0);
        let newer: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .step_by(3)
            .map(|k| (&k[..], Some(&b"new"[..])))
            .collect();
        s.apply(2, &ws(1, &newer), 0);
        s.remove_folded(1);
        // Every chain is short again: nothing is left to prune later (entries of
        // chains a fold shortened stayed until the history floor passed them).
        assert!(s.gc_pending.lock().is_empty());
        let kept = n.div_ceil(3);
        assert_eq!(s.version_count(), u64::from(kept));
        for (i, k) in keys.iter().enumerate() {
            let chain = s.chain(1, k, u64::MAX);
            if i % 3 == 0 {
                assert_eq!(chain.len(), 1, "key {i}");
                assert_eq!(chain[0].0, 2);
                assert!(s.may_have_key(1, k));
            } else {
                assert!(chain.is_empty(), "key {i}");
            }
        }
        assert_eq!(s.tables.read()[&1].read().len(), kept as usize);
        s.remove_folded(2);
        assert_eq!((s.version_count(), s.byte_count()), (0, 0));
        assert!(!s.may_have(1));
    }

    #[test]
    fn dropped_table_data_goes_after_horizon() {
        let s = VersionStore::new();
        s.apply(1, &ws(7, &[(b"a", Some(b"1")), (b"b", Some(b"2"))]), 0);
        s.drop_table_at(7, 2);
        s.gc(1);
        assert_eq!(s.version_count(), 2);
        s.gc(2);
        assert_eq!(s.version_count(), 0);
        assert_eq!(s.get(7, b"a", 5), None);
    }
}
