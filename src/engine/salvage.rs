//! Reading what can still be read of a table in a damaged file ([`crate::Database::salvage_table`]).

use super::{Engine, ReadPin};
use crate::btree;
use crate::btree::OnNodePage;
use crate::btree::salvage::{Damage, salvage_leaf};
use crate::error::{Error, Result};
use crate::types::{CATALOG_TABLE, TABLE_ID_MAX, TableId, Value};
use std::ops::Bound;
use std::sync::Arc;

/// Where a salvage hands each entry it read: an error stops the walk.
pub(crate) type EntrySink<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// Store entries a salvage takes per hold of the table's lock.
const STORE_BATCH: usize = 4096;

/// Keys of a table a salvage could not read: their tree page (or value) failed its
/// checks. Versions of those keys committed after the last checkpoint come from the log
/// and are not lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalvageLoss {
    /// The damaged page.
    pub page: u64,
    /// What failed.
    pub what: String,
    /// The first key that may be lost (inclusive).
    pub from: Vec<u8>,
    /// Where the lost keys end (exclusive; `None`: the end of the table).
    pub until: Option<Vec<u8>>,
}

/// The outcome of [`crate::Database::salvage_table`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// The commit whose state was read.
    pub seq: u64,
    /// Entries handed to the caller.
    pub entries: u64,
    /// What could not be read, in key order.
    pub losses: Vec<SalvageLoss>,
}

impl Engine {
    /// Hands `entry` every key of `table` in `[from, until)` (`None`: to the table's
    /// end) at `snapshot` that can be read, in key order, passing over tree pages and
    /// values that fail their checks (each named in the report). The store's versions
    /// override the tree's, as in every read. A tree value `valid` refuses (a catalog
    /// entry that is no table id, in a page that verifies: a crafted file) is a loss of
    /// its key alone, naming its page.
    pub(crate) fn salvage_table(
        &self,
        pin: &mut Arc<ReadPin>,
        table: TableId,
        (from, until): (&[u8], Option<&[u8]>),
        snapshot: u64,
        valid: &dyn Fn(&[u8]) -> Result<()>,
        entry: &mut EntrySink<'_>,
    ) -> Result<SalvageReport> {
        // The store first, then the tree: a checkpoint takes versions out of the store
        // only after it published the tree that holds them, so the newest tree, taken
        // after, has every version the store no longer had.
        let store = self.store_entries(table, (from, until), snapshot);
        self.refresh(pin)?;
        let p: &ReadPin = pin;
        self.tree_holds(p, snapshot)?;
        let lo = btree::composite(table, from);
        let hi = match until {
            Some(u) => btree::composite(table, u),
            None => table
                .checked_add(1)
                .map(|t| t.to_be_bytes().to_vec())
                .ok_or_else(|| Error::corrupted(0, "table id out of range"))?,
        };
        let mut report = SalvageReport {
            seq: snapshot,
            ..SalvageReport::default()
        };
        // A damaged value of a key the store has a version of (at or below the
        // snapshot) is no loss: that version is the key's state, a tombstone included.
        // (The store's entries are in key order; a value's damage covers its key alone,
        // up to the key with a zero byte appended.)
        let superseded = |d: &Damage| {
            let one_key = d.until.strip_suffix(&[0]) == Some(d.from.as_slice());
            one_key
                && d.from.get(8..).is_some_and(|k| {
                    store
                        .binary_search_by(|(sk, _)| sk.as_slice().cmp(k))
                        .is_ok()
                })
        };
        let mut rest = store.iter().peekable();
        let mut from = lo;
        let mut key = Vec::new();
        loop {
            let step = salvage_leaf(&p.view, self.page_size, p.tree.root, &from, &hi);
            for (k, v) in &step.entries {
                key.clear();
                k.extend_into(&mut key);
                // A key too short to hold a table id (a crafted file) is no table's.
                let Some(user) = key.get(8..) else {
                    continue;
                };
                // The store's keys below this one, then this one: the store's version
                // when it has one (a tombstone hides the tree's), else the tree's.
                while let Some((sk, sv)) = rest.next_if(|(sk, _)| sk.as_slice() < user) {
                    if let Some(value) = sv {
                        entry(sk, value)?;
                        report.entries += 1;
                    }
                }
                if let Some((_, sv)) = rest.next_if(|(sk, _)| sk.as_slice() == user) {
                    if let Some(value) = sv {
                        entry(user, value)?;
                        report.entries += 1;
                    }
                    continue;
                }
                if let Err(e) = valid(v) {
                    let mut past = user.to_vec();
                    past.push(0);
                    report.losses.push(loss(
                        Damage {
                            error: e.on_node_page_of(&p.view, v, self.page_size),
                            from: key.clone(),
                            until: btree::composite(table, &past),
                        },
                        &hi,
                    ));
                    continue;
                }
                entry(user, v)?;
                report.entries += 1;
            }
            report.losses.extend(
                step.damage
                    .into_iter()
                    .filter(|d| !superseded(d))
                    .map(|d| loss(d, &hi)),
            );
            match step.next {
                Some(next) => from = next,
                None => break,
            }
        }
        for (k, v) in rest {
            if let Some(value) = v {
                entry(k, value)?;
                report.entries += 1;
            }
        }
        // A refused value's loss was met before the damage its leaf's step reported.
        report.losses.sort_by(|a, b| a.from.cmp(&b.from));
        Ok(report)
    }

    /// The tables other than the catalog with an entry at `snapshot` that can be read,
    /// in the tree (a walk over every table's keys that passes over damage, stepping
    /// from one table's first entry to the next table) or in the store, in id order;
    /// and the tree pages the walk could not read, each a loss whose `from` and `until`
    /// are the ids (8 bytes, big-endian) of the first table whose keys it may hold and
    /// of the first after them (`None`: every later id). Tables dropped at or below
    /// `snapshot` are left out (a checkpoint keeps a dropped table's data while the
    /// drop is inside the history window).
    pub(crate) fn salvage_table_ids(
        &self,
        pin: &mut Arc<ReadPin>,
        snapshot: u64,
    ) -> Result<(Vec<TableId>, Vec<SalvageLoss>)> {
        let mut ids = std::collections::BTreeSet::new();
        for table in self.versions.table_ids() {
            let has_value = self
                .store_entries(table, (&[], None), snapshot)
                .iter()
                .any(|(_, v)| v.is_some());
            if table != CATALOG_TABLE && has_value {
                ids.insert(table);
            }
        }
        self.refresh(pin)?;
        let p: &ReadPin = pin;
        self.tree_holds(p, snapshot)?;
        let id_of = |key: &[u8]| btree::split_composite(key).0;
        // History entries sort after every table, under ids past the largest.
        let end = (TABLE_ID_MAX + 1).to_be_bytes();
        let mut losses: Vec<SalvageLoss> = Vec::new();
        let mut from = btree::composite(CATALOG_TABLE + 1, &[]);
        loop {
            let step = salvage_leaf(&p.view, self.page_size, p.tree.root, &from, &end);
            let first = step.entries.first().map(|(k, _)| {
                let mut key = Vec::new();
                k.extend_into(&mut key);
                key
            });
            // Damage past the first entry is that table's own (its salvage reports it)
            // or is met again from the next table on.
            for d in step.damage {
                if first.as_ref().is_some_and(|f| d.from >= *f) {
                    continue;
                }
                let (page, what) = match d.error {
                    Error::Corrupted { page, what } => (page, what),
                    other => (0, other.to_string()),
                };
                // The first table id none of whose keys lies below the loss's end: its
                // first 8 bytes, padded with zeros (a crafted separator may be shorter:
                // read as id 0, the CLI named ids 1 to 2^64 - 1), one more when the
                // key goes on past them.
                let mut first8 = [0u8; 8];
                first8.iter_mut().zip(&d.until).for_each(|(b, u)| *b = *u);
                let last = u64::from_be_bytes(first8);
                let past = if d.until.len() > 8 {
                    last.saturating_add(1)
                } else {
                    last
                };
                losses.push(SalvageLoss {
                    page,
                    what,
                    from: id_of(&d.from).to_be_bytes().to_vec(),
                    until: (d.until.as_slice() < &end[..]).then(|| past.to_be_bytes().to_vec()),
                });
            }
            match (first.as_deref().map(id_of), step.next) {
                // A key too short to hold a table id (a crafted file) names none: the
                // walk steps past it (to the key with a zero byte appended, the next one
                // up), where it stopped and every table after it went unfound and
                // unreported.
                (Some(_), _) if first.as_ref().is_some_and(|k| k.len() < 8) => {
                    from = first.clone().unwrap_or_default();
                    from.push(0);
                }
                // The next table starts after this one's keys, whatever lies between.
                (Some(id), _) if id < TABLE_ID_MAX => {
                    ids.insert(id);
                    from = btree::composite(id + 1, &[]);
                }
                (Some(id), _) => {
                    ids.insert(id);
                    break;
                }
                (None, Some(next)) => from = next,
                (None, None) => break,
            }
        }
        // A loss of ids that were all found hides no table.
        losses.retain(|l| {
            let range = (id_of(&l.from), l.until.as_deref().map(id_of));
            range.1.is_none_or(|past| {
                // (A crafted separator can end a loss below where it starts.)
                past <= range.0
                    || ids.range(range.0..past).count() as u64 != past.saturating_sub(range.0)
            })
        });
        // Dead tables count as dropped too: a checkpoint forgets a drop (marking the
        // table dead) once it published a tree without the table's keys, which the
        // pin taken above may predate.
        ids.retain(|&id| !self.table_dropped(id, snapshot));
        Ok((ids.into_iter().collect(), losses))
    }

    /// Whether table `id` was dropped at or below `snapshot`.
    pub(crate) fn table_dropped(&self, id: TableId, snapshot: u64) -> bool {
        self.versions.dropped_for(id, snapshot)
    }

    /// Fails for a time-travel snapshot below the tree's checkpoint: a salvaging walk
    /// reads the tree's current entries, not its history, so it cannot read that state.
    fn tree_holds(&self, p: &ReadPin, snapshot: u64) -> Result<()> {
        if snapshot < p.tree.checkpoint_seq {
            return Err(Error::HistoryUnavailable {
                requested: snapshot,
                oldest: p.tree.checkpoint_seq,
                newest: self.registry.visible(),
            });
        }
        Ok(())
    }

    /// Every visible version of `table` in `[from, until)` at `snapshot` in the store,
    /// tombstones included, in key order.
    fn store_entries(
        &self,
        table: TableId,
        (from, until): (&[u8], Option<&[u8]>),
        snapshot: u64,
    ) -> Vec<(Vec<u8>, Value)> {
        let mut out = Vec::new();
        let mut lo: Option<Vec<u8>> = None;
        loop {
            let batch = self.versions.scan(
                table,
                lo.as_deref().map_or(Bound::Included(from), Bound::Excluded),
                until.map_or(Bound::Unbounded, Bound::Excluded),
                snapshot,
                false,
                STORE_BATCH,
            );
            out.extend(batch.entries);
            match batch.resume_after {
                Some(last) => lo = Some(last),
                None => return out,
            }
        }
    }
}

/// A [`Damage`] of the walk over one table's tree keys (`[table id, end)`), in the
/// table's own keys.
fn loss(d: Damage, end: &[u8]) -> SalvageLoss {
    let (page, what) = match d.error {
        Error::Corrupted { page, what } => (page, what),
        other => (0, other.to_string()),
    };
    SalvageLoss {
        page,
        what,
        from: d.from.get(8..).unwrap_or_default().to_vec(),
        until: (d.until.as_slice() < end).then(|| d.until.get(8..).unwrap_or_default().to_vec()),
    }
}
