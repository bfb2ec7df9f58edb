//! What a checkpoint takes from the version store and gives back: the versions at or below
//! its horizon, in tree order ([`VersionStore::fold_chains`]), and, once its tree is
//! published, their removal ([`VersionStore::remove_folded`]). Both walk each table a chunk
//! of keys per lock, so a committer or a reader of the table waits for one chunk at most.

use super::{Chain, Chains, LOCK_CHUNK_KEYS, Version, VersionStore, version_bytes};
use crate::types::{TableId, Value};
use crate::util::HeadKey;
use parking_lot::RwLock;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl VersionStore {
    /// Every table's chains, in table order (the tree's), taken out of the map's lock so
    /// a walk over them locks one table at a time.
    fn tables_in_order(&self) -> Vec<(TableId, Arc<RwLock<Chains>>)> {
        let mut tables: Vec<(TableId, Arc<RwLock<Chains>>)> = self
            .tables
            .read()
            .iter()
            .map(|(&id, t)| (id, Arc::clone(t)))
            .collect();
        tables.sort_by_key(|(id, _)| *id);
        tables
    }

    /// Every version at or below `horizon` of every key, newest first, keys in tree
    /// order: what a checkpoint folds into the tree (the newest) and into history
    /// entries (the rest).
    pub fn fold_chains(&self, horizon: u64) -> FoldedChains {
        // Room for every version the store holds, and as many keys, taken at once: grown
        // by doubling, the arrays held up to twice that, and each growth held the old
        // and the new copy together (a fold after a load in batches: 38 MB at the peak).
        // The count is a hint: committers add to it after their versions are in, so it
        // may lag (even wrap below zero for a moment when a dropped table's versions are
        // taken out first), and versions above the horizon are not folded. A room that
        // cannot be had is not taken; the arrays then grow as before.
        let versions = usize::try_from(self.version_count()).unwrap_or(0);
        let mut out = FoldedChains::default();
        let _ = out.versions.try_reserve_exact(versions);
        let _ = out.ends.try_reserve_exact(versions);
        for (id, t) in self.tables_in_order() {
            // A chunk of keys at a time, so a committer applying to this table waits
            // for one chunk, never for the whole table (versions applied in between are
            // above the horizon and not folded).
            let mut after: Option<HeadKey> = None;
            loop {
                let chains = t.read();
                let lo = after.take().map_or(Bound::Unbounded, Bound::Excluded);
                let mut n = 0usize;
                let range = chains.range((lo, Bound::Unbounded));
                // Taking a version raises its value's reference count, a cache miss a
                // key: the chains a few keys ahead have their newest value fetched early.
                let mut ahead = range.clone().skip(FOLD_PREFETCH_AHEAD);
                for (key, chain) in range {
                    if n == LOCK_CHUNK_KEYS {
                        break;
                    }
                    n += 1;
                    if n == LOCK_CHUNK_KEYS {
                        after = Some(key.clone());
                    }
                    if let Some((_, c)) = ahead.next()
                        && let Some(Version { value: Some(v), .. }) = c.last()
                    {
                        crate::util::prefetch(v, 64);
                    }
                    out.push(
                        id,
                        key,
                        chain
                            .iter()
                            .rev()
                            .filter(|v| v.seq <= horizon)
                            .map(|v| (v.seq, v.value.clone())),
                    );
                }
                if after.is_none() {
                    break;
                }
            }
        }
        out
    }

    /// Drops every version at or below `horizon` (now in the tree), a chunk of keys
    /// per table lock at a time.
    pub fn remove_folded(&self, horizon: u64) {
        let mut removed = (0u64, 0u64);
        // What a chunk removed is freed after its lock is released: the frees (a value
        // and a chain each) would otherwise hold readers and committers up.
        let mut garbage: Vec<Chain> = Vec::new();
        let mut emptied: Vec<HeadKey> = Vec::new();
        for (id, t) in self.tables_in_order() {
            let mut after: Option<HeadKey> = None;
            loop {
                let mut chains = t.write();
                let lo = after.take().map_or(Bound::Unbounded, Bound::Excluded);
                let mut n = 0usize;
                for (key, chain) in chains.range_mut((lo, Bound::Unbounded)) {
                    if n == LOCK_CHUNK_KEYS {
                        break;
                    }
                    n += 1;
                    let cut = chain.partition_point(|v| v.seq <= horizon);
                    removed.0 += cut as u64;
                    removed.1 += chain
                        .iter()
                        .take(cut)
                        .map(|v| version_bytes(key, v))
                        .sum::<u64>();
                    if cut == chain.len() {
                        emptied.push(key.clone());
                    } else {
                        // Rare: versions committed while the checkpoint ran.
                        chain.drop_front(cut);
                    }
                    if n == LOCK_CHUNK_KEYS {
                        after = Some(key.clone());
                    }
                }
                for key in emptied.drain(..) {
                    if let Some(chain) = chains.remove(&key) {
                        garbage.push(chain);
                    }
                    self.uncount_chain(id, &key);
                }
                drop(chains);
                garbage.clear();
                if after.is_none() {
                    break;
                }
            }
        }
        self.versions.fetch_sub(removed.0, Ordering::Relaxed);
        self.bytes.fetch_sub(removed.1, Ordering::Relaxed);
        self.requeue_pending();
    }

    /// Queues the pending prunes again from what the chains hold after a fold: each
    /// chain still long once, at its second-oldest version. A prune's horizon stops at
    /// the history floor and a fold's does not, so a chain a fold emptied kept its
    /// entries (one per commit that left it long) until the floor passed them: under a
    /// day's window at 2,000 updates a second, about 173 million entries (15 GB) beside
    /// a store within its budget.
    fn requeue_pending(&self) {
        let queued = std::mem::take(&mut *self.gc_pending.lock());
        let keys: BTreeSet<(TableId, HeadKey)> =
            queued.into_iter().map(|(_, t, k)| (t, k)).collect();
        let mut again = Vec::new();
        for (table, key) in keys {
            let Some(t) = self.table(table) else { continue };
            if let Some(next) = t.read().get(&key).and_then(|chain| chain.get(1)) {
                again.push((next.seq, table, key));
            }
        }
        self.gc_pending.lock().extend(again);
    }
}

/// The versions a checkpoint folds ([`VersionStore::fold_chains`]): per key, in tree
/// order, its table, its key and its versions newest first. Held in three flat arrays,
/// not in two allocations per key (a fold after a load in batches takes hundreds of
/// thousands of keys).
#[derive(Default)]
pub struct FoldedChains {
    key_bytes: Vec<u8>,
    versions: Vec<(u64, Value)>,
    /// Per key: its table, and where its key and its versions end in the arrays.
    ends: Vec<(TableId, usize, usize)>,
}

impl FoldedChains {
    /// Adds `key` of `table` with `versions` (newest first), after every key added
    /// before it in tree order; a key without versions is left out.
    fn push(&mut self, table: TableId, key: &[u8], versions: impl Iterator<Item = (u64, Value)>) {
        let start = self.versions.len();
        self.versions.extend(versions);
        if self.versions.len() > start {
            self.key_bytes.extend_from_slice(key);
            self.ends
                .push((table, self.key_bytes.len(), self.versions.len()));
        }
    }

    /// Each key's table, key and versions (newest first), in tree order.
    pub fn iter(&self) -> FoldedIter<'_> {
        FoldedIter {
            chains: self,
            next: 0,
            key_start: 0,
            versions_start: 0,
        }
    }
}

/// How many keys ahead of the one handed out [`FoldedIter`] prefetches the value of.
const FOLD_PREFETCH_AHEAD: usize = 8;

/// Bytes of that value it prefetches.
const FOLD_PREFETCH_BYTES: usize = 256;

/// [`FoldedChains::iter`].
#[derive(Clone)]
pub struct FoldedIter<'a> {
    chains: &'a FoldedChains,
    next: usize,
    key_start: usize,
    versions_start: usize,
}

impl<'a> Iterator for FoldedIter<'a> {
    type Item = (TableId, &'a [u8], &'a [(u64, Value)]);

    fn next(&mut self) -> Option<Self::Item> {
        let &(table, key_end, versions_end) = self.chains.ends.get(self.next)?;
        // The newest value of a key a few ahead: the build copies each key's value
        // from where its commit put it in the heap, a cache miss a key otherwise.
        if let Some(&(_, _, ahead)) = self.chains.ends.get(self.next + FOLD_PREFETCH_AHEAD - 1)
            && let Some((_, Some(value))) = self.chains.versions.get(ahead)
        {
            crate::util::prefetch(value, FOLD_PREFETCH_BYTES);
        }
        self.next += 1;
        let key = self.chains.key_bytes.get(self.key_start..key_end)?;
        let versions = self
            .chains
            .versions
            .get(self.versions_start..versions_end)?;
        self.key_start = key_end;
        self.versions_start = versions_end;
        Some((table, key, versions))
    }
}
