//! `check_integrity()`: every checksum and invariant of the checkpointed state and the
//! log, and the accounting of every page.

use super::Engine;
use crate::btree;
use crate::btree::OnNodePage;
use crate::checkpoint::read_free_list;
use crate::error::{Error, Result};
use crate::format::first_data_page;
use crate::format::{check_table_name, decode_table_id};
use crate::mvcc::VersionStore;
use crate::mvcc::history::{self, HISTORY_PREFIX, decode_list};
use crate::types::CATALOG_TABLE;
use std::collections::BTreeSet;
use std::ops::Bound;

/// A check of one tree entry (key, value), adding what it finds to the report.
type EntryCheck<'a> = dyn FnMut(&mut IntegrityReport, &[u8], &[u8]) + 'a;

/// What [`crate::Database::check_integrity`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "the check returns `Ok` with the problems it found: look at `problems` or `is_ok`"]
pub struct IntegrityReport {
    /// Every problem found, each naming a page; empty when the database is sound.
    pub problems: Vec<String>,
    /// Pages the checkpointed tree uses (branches, leaves, overflow runs).
    pub tree_pages: u64,
    /// Keys in the checkpointed tree.
    pub tree_keys: u64,
    /// Tables in the checkpointed catalog.
    pub tables: u64,
    /// Pages the log uses (marker, proof and capsule pages).
    pub log_pages: u64,
    /// Pages free for reuse now.
    pub free_pages: u64,
    /// Pages the header accounts for.
    pub page_count: u64,
    /// Commits in the log after the checkpoint, all verified.
    pub log_commits: u64,
    /// Log records and headers that are damaged but can be rebuilt from redundancy (a
    /// read-write open rewrites them).
    pub log_repairable: u64,
}

/// One line describing damage to the log, and what lies beyond it.
fn describe_damage(d: &crate::commit::LogDamage) -> String {
    let beyond = match d.later_markers {
        Some((lo, hi, n)) => format!(
            "; past it, {n} marker records of commits {lo} to {hi} remain, unreadable across the damage"
        ),
        None => "; no marker record of a later commit remains past it".into(),
    };
    format!("{}{beyond}", d.to_error())
}

impl IntegrityReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Engine {
    /// Verifies the whole database; `Database::check_integrity` documents it.
    pub(crate) fn check_integrity(&self) -> Result<IntegrityReport> {
        self.check_open()?;
        let e = self;
        e.checkpointer.hold(|header, non_tree, run| {
            // Again under the hold: a live reader's close between the check above and
            // the hold released its generation pin, and the writer may since reuse the
            // pages read below, or cut the file under the mapping (as `Engine::pin`).
            e.check_open()?;
            let mut r = IntegrityReport {
                page_count: header.page_count,
                ..IntegrityReport::default()
            };
            let file = e.storage.view()?;
            let ps = header.page_size;
            let first_data = first_data_page(ps);
            let problem = |r: &mut IntegrityReport, e: Error| r.problems.push(e.to_string());
            // The header copies: one damaged beyond repair may have held a newer state.
            let (damage, repairable) = super::create::header_report(e.storage.as_ref())?;
            r.problems.extend(damage.map(|(_, what)| what));
            r.problems.extend(repairable);
            // The history floor and the kept drops, as a read-write open reads them (a
            // read-only one reads past them).
            // A read at the floor takes each list's element at or below it: the floor an
            // open starts from (the checkpoint's sequence when none is kept).
            let mut floor = header.checkpoint_seq;
            match crate::checkpoint::read_floor_and_drops(&file, ps, header.catalog_root) {
                Ok((kept, drops)) => {
                    floor = kept.unwrap_or(floor);
                    // Checked against the catalog as an open checks it (a damaged
                    // catalog is reported below, by the walk).
                    let live =
                        super::create::catalog_table_ids(&file, ps, header.catalog_root).ok();
                    let drops = drops.unwrap_or_default();
                    if let Some(e) =
                        super::create::refused_kept_drop(&file, header, &drops, live.as_ref())
                    {
                        problem(&mut r, e);
                    }
                }
                Err(err) => problem(&mut r, err),
            }

            // The tree.
            let mut tree = BTreeSet::new();
            // Past a damaged page to the end, so every damaged page it can reach is named.
            let mut damaged = Vec::new();
            r.tree_keys = btree::walk_reporting(
                &file,
                ps,
                header.catalog_root,
                |p, _, n| tree.extend(p..p + n),
                |err| damaged.push(err),
            );
            let walked = damaged.is_empty();
            for err in damaged {
                problem(&mut r, err);
            }
            r.tree_pages = tree.len() as u64;
            // Every entry of the tree keys from `lo` below `hi` (`None`: to the tree's
            // end), leaf after leaf; whether it read them all (a damaged page stops it,
            // named).
            let range = |r: &mut IntegrityReport,
                         lo: &[u8],
                         hi: Option<&[u8]>,
                         f: &mut EntryCheck<'_>| {
                let mut lo = lo.to_vec();
                loop {
                    match btree::scan_leaf(
                        &file,
                        ps,
                        header.catalog_root,
                        Bound::Included(&lo[..]),
                        hi.map_or(Bound::Unbounded, Bound::Excluded),
                        false,
                        None,
                    ) {
                        Ok(batch) => {
                            // The closure never fails.
                            let _ = batch.try_for_each_whole(|k, v| {
                                f(r, k, v);
                                Ok(())
                            });
                            match batch.leaf_edge {
                                Some(edge) if hi.is_none_or(|hi| edge.as_slice() < hi) => {
                                    lo = edge;
                                }
                                _ => return true,
                            }
                        }
                        Err(err) => {
                            problem(r, err);
                            return false;
                        }
                    }
                }
            };
            // The catalog: valid names to 8-byte ids, each id a table's own (two names
            // on one id would read each other's rows, and a drop of one empty both).
            let catalog = CATALOG_TABLE.to_be_bytes();
            let mut owners: std::collections::HashMap<u64, Vec<u8>> = Default::default();
            // (A damaged catalog page is named by the walk and the scan.)
            let _ = range(&mut r, &catalog, Some(&1u64.to_be_bytes()), &mut |r, k, v| {
                r.tables += 1;
                let name = k.get(8..).unwrap_or(&[]);
                let shown = crate::util::show_bytes(name);
                let valid = std::str::from_utf8(name).is_ok_and(|n| check_table_name(n).is_ok());
                if !valid {
                    r.problems
                        .push(format!("catalog entry {shown} is not a valid table name"));
                }
                match decode_table_id(v).map_err(|err| err.on_node_page_of(&file, v, ps)) {
                    Err(e) => r.problems.push(format!("catalog entry {shown}: {e}")),
                    Ok(id) => {
                        if let Some(other) = owners.insert(id, name.to_vec()) {
                            r.problems.push(format!(
                                "catalog entries {} and {shown} name the same table id {id}",
                                crate::util::show_bytes(&other)
                            ));
                        }
                    }
                }
            });
            // History entries: every version list decodes (the floor and the kept drops
            // sit after them, under a second `FF×8`).
            // The tree's in-memory history index must know every one of them (a key
            // it misses would be read at its current value in the past), and its
            // directory must find each at its version list.
            let current = e.current_tree();
            let index = (current.root == header.catalog_root)
                .then(|| current.history_index())
                .flatten();
            let (mut history_keys, mut unknown, mut first_unknown) = (0usize, 0usize, None);
            let history_end = [HISTORY_PREFIX, HISTORY_PREFIX].concat();
            // " on page N" for a list `v` in the mapped file: the page its leaf's parent
            // names (a multi-page leaf's first page), as its decode errors name it.
            let on_page = |v: &[u8]| {
                crate::util::offset_in(&file, v)
                    .map(|o| o as u64 / u64::from(ps))
                    .map(|p| format!(" on page {}", btree::node_first_page(&file, ps, p)))
                    .unwrap_or_default()
            };
            let all_read = range(&mut r, &HISTORY_PREFIX, Some(&history_end), &mut |r, k, v| {
                history_keys += 1;
                let (table, key) = btree::split_composite(k.get(8..).unwrap_or(&[]));
                match decode_list(v).map_err(|err| err.on_node_page_of(&file, v, ps)) {
                    Err(err) => r.problems.push(format!(
                        "the history entry of key {} in table {table}: {err}",
                        crate::util::show_bytes(key)
                    )),
                    // Its newest element is the key's ordinary entry (`btree.md`): a
                    // list that says otherwise has `versions` and `get` disagree at the
                    // newest states. Tables the catalog names only (a dropped table's
                    // keys go with its drop, its lists after).
                    Ok(list) => match list.last() {
                        Some(&(oldest, _)) if oldest > floor => r.problems.push(format!(
                            "the history entry of key {} in table {table}{}: its oldest \
                             version is commit {oldest}, above the floor {floor}",
                            crate::util::show_bytes(key),
                            on_page(v)
                        )),
                        _ => {
                            let newest = list.first().filter(|_| owners.contains_key(&table));
                            if let Some((seq, value)) = newest {
                                let ordinary = btree::get(
                                    &file,
                                    ps,
                                    header.catalog_root,
                                    &btree::composite(table, key),
                                    None,
                                );
                                if ordinary.is_ok_and(|o| o != value.as_deref()) {
                                    r.problems.push(format!(
                                        "the history entry of key {} in table {table}{}: its \
                                         newest version, commit {seq}, is not the key's entry",
                                        crate::util::show_bytes(key),
                                        on_page(v)
                                    ));
                                }
                            }
                        }
                    },
                }
                if index.is_some_and(|i| !i.knows(&file, k, v)) {
                    unknown += 1;
                    first_unknown.get_or_insert_with(|| {
                        format!("key {} in table {table}", crate::util::show_bytes(key))
                    });
                }
            });
            if let Some(first) = first_unknown {
                r.problems.push(format!(
                    "the in-memory history index does not know {unknown} of the tree's {history_keys} history entries (the first: {first})"
                ));
            }
            // (Counted only over every entry: a scan a damaged page stopped counts short.)
            if let Some(i) = index
                && all_read
                && i.keys() != history_keys
            {
                r.problems.push(format!(
                    "the in-memory history index was built from {} keys; the tree holds {history_keys} history entries",
                    i.keys()
                ));
            }

            // Under a second `FF×8` only the floor and the kept drops (`btree.md`): a
            // checkpoint reads any other key there as a history entry, and fails on it
            // at every try.
            let (floor_key, drops_key) = (history::floor_key(), history::drops_key());
            let _ = range(&mut r, &history_end, None, &mut |r, k, v| {
                if k != floor_key.as_slice() && k != drops_key.as_slice() {
                    r.problems.push(format!(
                        "tree key {}{} is neither the history floor nor the kept drops, \
                         under their prefix",
                        crate::util::show_bytes(k),
                        on_page(v)
                    ));
                }
            });
            // No key of a table id above the highest (a read-write open refuses it; a
            // read-only one reads past it).
            if let Err(err) = super::create::max_data_table_id(&file, ps, header.catalog_root) {
                problem(&mut r, err);
            }

            // The persisted free list must match what the engine holds.
            let persisted = read_free_list(
                &file,
                ps,
                header.freelist_root,
                first_data,
                header.page_count,
            );
            let free_list_read = persisted.is_ok();
            match persisted {
                Ok((n, _)) if n != *non_tree => r.problems.push(format!(
                    "the free list at page {} does not match the engine's ({} against {} pages)",
                    header.freelist_root,
                    n.len(),
                    non_tree.len()
                )),
                Ok(_) => {}
                Err(err) => problem(&mut r, err),
            }
            // A tree page outside the data pages would be handed out again by the pager.
            for &p in tree.range(..first_data).chain(tree.range(header.page_count..)) {
                r.problems.push(format!(
                    "page {p} of the tree lies outside the data pages (from {first_data} up to {})",
                    header.page_count
                ));
            }
            let run_pages: BTreeSet<u64> = (run.0..run.0 + run.1).collect();
            if !walked {
                // Every page below the damage would look leaked: one line says so.
                r.problems.push(
                    "pages the tree walk could not reach (below the damage above) are not reported as leaked"
                        .to_string(),
                );
            } else if !free_list_read {
                // Every free page would look leaked: the error above says why.
                r.problems.push(
                    "pages are not checked for leaks: the free list could not be read".to_string(),
                );
            }
            let walked = walked && free_list_read;
            // Who uses each page in use (the three sets merged in order, no copy); the
            // pages between are leaked, said as runs. Walked over the pages in use, not
            // every page: a crafted header's `page_count` over a sparse file may name
            // billions.
            let pages = first_data..header.page_count;
            let mut sets = [&tree, non_tree, &run_pages]
                .map(|set| set.range(pages.clone()).copied().peekable());
            let users = std::iter::from_fn(|| {
                let p = sets.iter_mut().filter_map(|s| s.peek().copied()).min()?;
                Some((p, sets.each_mut().map(|s| s.next_if_eq(&p).is_some())))
            });
            let leaked = |from: u64, to: u64, r: &mut IntegrityReport| {
                if walked && from < to {
                    r.problems.push(if to - from == 1 {
                        format!("page {from} is leaked: neither in the tree nor in the free list")
                    } else {
                        format!(
                            "pages {from} to {} ({} pages) are leaked: neither in the tree nor \
                             in the free list",
                            to - 1,
                            to - from
                        )
                    });
                }
            };
            let mut next = first_data;
            for (p, uses) in users {
                leaked(next, p, &mut r);
                next = p + 1;
                match uses.iter().filter(|&&u| u).count() {
                    1 => {}
                    _ => {
                        let names = ["the tree", "the free list", "the free list's own run"];
                        let users: Vec<&str> = names
                            .iter()
                            .zip(uses)
                            .filter_map(|(name, used)| used.then_some(*name))
                            .collect();
                        r.problems
                            .push(format!("page {p} is used more than once: by {}", users.join(" and by ")));
                    }
                }
            }
            leaked(next, header.page_count, &mut r);

            // The log after the checkpoint: every marker, proof and capsule verifies.
            // Read leniently: every repair is reported, and the first damage that cannot
            // be repaired, with the marker records that remain past it.
            let recovered = e.committer.with_markers_quiet(|| {
                let scratch = VersionStore::new();
                // Every commit acknowledged durable by now has its marker in the file
                // (no group writes markers meanwhile): the walk must reach it.
                let durable = (!e.read_only).then(|| e.committer.durable_seq());
                if e.read_only {
                    // A writer in another process may be appending (a live reader).
                    let start = crate::commit::StreamStart::at_checkpoint(header);
                    super::follow::recover_live(
                        e.storage.as_ref(),
                        header,
                        start,
                        &scratch,
                        crate::mvcc::ReplayWindow::from_floor(u64::MAX),
                    )
                } else {
                    crate::commit::recover(
                        e.storage.as_ref(),
                        header,
                        &scratch,
                        crate::mvcc::ReplayWindow::from_floor(u64::MAX),
                        true,
                    )
                }
                .map(|rec| (rec, durable))
            });
            match recovered {
                Ok((rec, durable)) => {
                    // A stop the walk took for the end of the log, above the durable
                    // bound on disk (so not damage by the file alone), below commits this
                    // engine acknowledged durable: a crash now would lose them.
                    if let Some(durable) = durable.filter(|&d| rec.damage.is_none() && rec.tip < d) {
                        r.problems.push(format!(
                            "the log on disk ends after commit {} (marker page {}), but commits up to {durable} were acknowledged durable: a reopen would lose commits {} to {durable}",
                            rec.tip,
                            rec.tail.page,
                            rec.tip + 1
                        ));
                    }
                    r.log_commits = rec.replayed;
                    r.log_repairable = rec.repairs.len() as u64;
                    for rep in &rec.repairs {
                        r.problems.push(format!(
                            "repairable (a read-write open rebuilds it from redundancy): {}",
                            rep.what
                        ));
                    }
                    if let Some(d) = &rec.damage {
                        r.problems.push(describe_damage(d));
                    }
                }
                Err(err) => problem(&mut r, err),
            }
            let log: BTreeSet<u64> = e.committer.log_pages().into_iter().collect();
            r.log_pages = log.len() as u64;
            let free = e.pager.free_pages();
            r.free_pages = free.len() as u64;
            for p in &log {
                if tree.contains(p) {
                    r.problems
                        .push(format!("page {p} is used by both the log and the tree"));
                }
                if run_pages.contains(p) {
                    r.problems.push(format!(
                        "page {p} is used by both the log and the free-list run"
                    ));
                }
                if free.contains(p) {
                    r.problems
                        .push(format!("page {p} is used by the log and free"));
                }
            }
            for p in &free {
                if tree.contains(p) {
                    r.problems
                        .push(format!("page {p} is reachable from the tree and free"));
                }
                if run_pages.contains(p) {
                    r.problems
                        .push(format!("page {p} is in the free-list run and free"));
                }
            }
            Ok(r)
        })
    }
}
