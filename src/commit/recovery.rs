//! Recovery: replays the committed prefix of the marker stream, telling a torn tail from
//! damage and repairing from redundancy (`format-spec/log.md`, "Recovery").
//!
//! The stream ends at the first page or record that is neither valid nor repairable. Past
//! the durable bound that is the torn tail of a crash; at or below it, it is damage: a
//! strict (read-write) recovery fails with [`Error::LogCorrupted`], a lenient (read-only)
//! one returns the prefix before it and describes the damage.

use super::arena::PageUse;
use super::evidence::{
    chained_later, chained_later_past_lost_header, holds_stream_markers, later_markers,
    linked_page_with_lost_header, marker_header_verifies, slot_blank, slot_holds, started_anywhere,
};
use super::group::GROUP_COMMITS_MAX;
use super::marker_writer::{MarkerWriter, StreamTail};
use super::repair::{LogFile, Repair};
use super::replay::replay;
use crate::error::{Error, Result};
use crate::format::{
    Header, LOG_PAGE_HEADER_LEN, MARKER_LEN, Marker, MarkerPageHeader, PageKind, first_data_page,
    marker_slot, slots_per_page, verify_log_page,
};
use crate::mvcc::{ReplayWindow, VersionStore};
use crate::storage::Storage;
use crate::types::TableId;
use std::collections::{BTreeMap, BTreeSet};

/// What recovery found.
pub struct Recovered {
    /// Last committed sequence.
    pub tip: u64,
    /// Where the next marker goes.
    pub tail: StreamTail,
    /// Pages in use by the valid log (marker, proof and capsule pages).
    pub used_pages: BTreeSet<u64>,
    /// Largest table id mentioned by any committed capsule.
    pub max_table_id: TableId,
    /// Commits replayed.
    pub replayed: u64,
    /// The stream's started pages, oldest first, as `(first_seq, page)`.
    pub marker_pages: Vec<(u64, u64)>,
    /// Capsule and proof pages in use, with their runs and largest sequences.
    pub log: LogUse,
    /// Records and headers rebuilt from redundancy, to be written back.
    pub repairs: Vec<Repair>,
    /// Damage below the durable bound (only from a lenient recovery; a strict one fails).
    pub damage: Option<LogDamage>,
    /// The tail page's header must be rewritten (with a fresh next page) before markers
    /// are appended: its stored next page could not be confirmed.
    pub rewrite_tail_header: bool,
}

/// Capsule and proof pages in use by the valid log.
#[derive(Default)]
pub struct LogUse {
    /// Capsule pages (first page of each run).
    pub capsules: BTreeMap<u64, PageUse>,
    /// Proof pages.
    pub proofs: BTreeMap<u64, PageUse>,
    /// Bytes used in each single-page capsule or proof page, by page.
    pub ends: BTreeMap<u64, u64>,
}

impl LogUse {
    /// The page holding the newest record of `map` and the bytes used in it, when it
    /// is a single page: where an arena may continue appending.
    pub fn resume_point(&self, map: &BTreeMap<u64, PageUse>) -> Option<(u64, u64)> {
        let (&page, u) = map.iter().max_by_key(|(_, u)| u.max_seq)?;
        (u.run_pages == 1)
            .then(|| self.ends.get(&page).map(|&used| (page, used)))
            .flatten()
    }
}

/// Damage to the commit log where durable commits lie: what a read-only open reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogDamage {
    /// The page where the damage was found.
    pub page: u64,
    /// The first commit that cannot be recovered.
    pub seq: u64,
    /// The highest commit the file proves was durable: at least `seq`, or below it when
    /// no commit from `seq` on is proven (damage to the first marker page).
    pub durable_seq: u64,
    /// What failed.
    pub what: String,
    /// Marker records of later commits still found past the damage (their chain cannot
    /// be verified across it): `(first seq, last seq, records)`.
    pub later_markers: Option<(u64, u64, u64)>,
}

impl LogDamage {
    /// The commits the damage cuts off, in words: "commits 9 to 61 were durable", or,
    /// when the file proves none of them, "commits from 9 on, if any were made, are not
    /// proven durable".
    pub fn lost(&self) -> String {
        if self.durable_seq < self.seq {
            format!(
                "commits from {} on, if any were made, are not proven durable",
                self.seq
            )
        } else {
            format!("commits {} to {} were durable", self.seq, self.durable_seq)
        }
    }

    /// The typed error a read-write open returns for this damage.
    pub fn to_error(&self) -> Error {
        Error::LogCorrupted {
            page: self.page,
            seq: self.seq,
            durable_seq: self.durable_seq,
            what: self.what.clone(),
        }
    }
}

/// Where the walk of the stream stopped.
struct Stop {
    /// The page where the stream stopped (the damaged page for damage).
    page: u64,
    /// The marker page the stream stopped on.
    tail_page: u64,
    seq: u64,
    what: String,
    /// Damage whatever the durable bound (the start page, a committed record's proof or
    /// capsule).
    always: bool,
    /// Damage to a live reader too: a marker that verified named a proof or capsule
    /// that does not (the marker was written after they were synced), or a page header
    /// that fails while its slot holds the next marker (see the walk).
    proven: bool,
    /// The walk stopped at its last sequence (`StreamStart::seq_max`): no damage.
    limit: bool,
    /// Where the stream would continue: the slot's page (`Some(next_page)`) or a page not
    /// started (`None`).
    next_page: Option<u64>,
    /// First sequence of `page`.
    first_seq: u64,
}

/// What the walk collects besides the versions it applies.
#[derive(Default)]
pub(super) struct Walk {
    pub(super) used: BTreeSet<u64>,
    /// Proof and capsule pages whose header replay checked (or rebuilt): the kind and
    /// the run's length it found, so a later record on the page is held to them.
    pub(super) checked: std::collections::BTreeMap<u64, (crate::format::PageKind, u64)>,
    pub(super) log: LogUse,
    pub(super) repairs: Vec<Repair>,
    pub(super) max_table_id: TableId,
}

fn marker_page_header(
    f: &LogFile<'_>,
    page: u64,
    first_seq: u64,
) -> std::result::Result<MarkerPageHeader, String> {
    let bytes = f
        .page(page)
        .ok_or("marker page lies past the end of the file")?;
    let kh = verify_log_page(bytes, PageKind::Marker, page).map_err(|e| e.to_string())?;
    let h = MarkerPageHeader::decode(&kh);
    if h.first_seq != first_seq {
        return Err(format!(
            "marker page starts at seq {} (expected {first_seq})",
            h.first_seq
        ));
    }
    // The pager grows the file before it hands a page out, so a synced marker page never
    // names a page past the file's end.
    if h.next_page < f.first_data || h.next_page == page || h.next_page >= f.file_pages {
        return Err(format!(
            "marker page names next page {} outside the file's data pages {}..{}",
            h.next_page, f.first_data, f.file_pages
        ));
    }
    Ok(h)
}

/// Where a walk of the marker stream starts, and how far it goes.
#[derive(Clone, Copy, Debug)]
pub struct StreamStart {
    /// The marker page holding the slot of `seq` (or the page the stream continues on).
    pub page: u64,
    /// The first sequence to read.
    pub seq: u64,
    /// The chain value the marker of `seq` chains to.
    pub chain: u32,
    /// `true`: the header named this start (recovery as `format-spec/log.md` says:
    /// damage is told from a torn tail, and records are rebuilt from redundancy).
    /// `false`: a live reader resuming where it stopped, while a writer in another
    /// process may be appending: the first page or record that does not verify is the
    /// end of what it can see, never damage, and nothing is rebuilt, but for a marker
    /// page header whose slot holds the next marker, chained, which is rebuilt in memory
    /// (`format-spec/locking.md`, "One exception").
    pub strict: bool,
    /// Verify and apply each commit's proof and capsule (`false`: markers only).
    pub replay: bool,
    /// The walk ends after this sequence.
    pub seq_max: u64,
}

impl StreamStart {
    /// The stream after the checkpoint `header` names, replayed to its end.
    pub fn at_checkpoint(header: &Header) -> StreamStart {
        StreamStart {
            page: header.marker_start_page,
            seq: header.checkpoint_seq + 1,
            chain: header.marker_chain_seed,
            strict: true,
            replay: true,
            seq_max: u64::MAX,
        }
    }

    /// The stream from where `tail` stopped (a live reader resuming).
    pub fn after(tail: &StreamTail) -> StreamStart {
        StreamStart {
            page: tail.page,
            seq: tail.next_seq,
            chain: tail.chain,
            strict: false,
            replay: true,
            seq_max: u64::MAX,
        }
    }
}

/// Replays the marker stream into `versions` and returns the stream's tail. A `lenient`
/// recovery returns the prefix before damage (and the damage) instead of failing.
pub fn recover(
    storage: &dyn Storage,
    header: &Header,
    versions: &VersionStore,
    window: ReplayWindow,
    lenient: bool,
) -> Result<Recovered> {
    recover_from(
        storage,
        header,
        StreamStart::at_checkpoint(header),
        versions,
        window,
        lenient,
    )
}

/// Replays the marker stream from `from` into `versions` and returns the stream's tail.
/// `header` gives the page size and the durable bound. A walk that stops at
/// `from.seq_max` stops at no damage; a non-`strict` one never finds damage.
pub fn recover_from(
    storage: &dyn Storage,
    header: &Header,
    from: StreamStart,
    versions: &VersionStore,
    window: ReplayWindow,
    lenient: bool,
) -> Result<Recovered> {
    let view = storage.view()?;
    let ps = u64::from(header.page_size);
    let mut f = LogFile::new(&view, header.page_size, first_data_page(header.page_size));
    let slots = slots_per_page(header.page_size);
    let bound = header.log_durable_seq.max(header.checkpoint_seq);
    let mut w = Walk::default();
    let mut seq = from.seq;
    let mut chain = from.chain;
    let mut page = from.page;
    // Every marker page starts at `1 + m * slots` (format-spec/log.md, "Reading the stream").
    let mut first_seq = 1 + seq.saturating_sub(1) / slots * slots;
    let mut start = true;
    let mut replayed = 0;
    let mut marker_pages = Vec::new();
    // Whether the page being read names its next page without confirmation (its
    // header was rebuilt while its checksum was damaged).
    let mut next_unconfirmed = false;
    let stop = loop {
        let ph = match marker_page_header(&f, page, first_seq) {
            Ok(h) => {
                next_unconfirmed = false;
                h
            }
            Err(what) => {
                // A page reached through an unconfirmed link is no evidence of a torn
                // start: it may not be the stream's page at all. A page whose header
                // fails its checksum while its slot holds the next marker, chained, is no
                // torn start either: the header shares that slot's sector and was written
                // with it, so it was damaged since; a live reader rebuilds it (in memory)
                // too. (A header that verifies but names a next page past the file's end
                // is a crash's: the file's growth was not synced. And a live reader may
                // read a page's header before a writer starts the page and its slot after:
                // the header is read again, and one that verifies now was being written.)
                let header_fails = || {
                    f.page(page)
                        .is_none_or(|b| verify_log_page(b, PageKind::Marker, page).is_err())
                };
                let holds_next = header_fails() && slot_holds(&f, page, first_seq, seq, chain) && {
                    // The header is read again after the slot, never before it.
                    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                    header_fails()
                };
                match (from.strict || holds_next)
                    .then(|| f.rebuild_marker_header(page, first_seq))
                    .flatten()
                {
                    Some((h, bytes, confirmed)) => {
                        w.repairs.push(Repair {
                            offset: page * ps,
                            bytes,
                            what: format!("the header of marker page {page} ({what})"),
                        });
                        next_unconfirmed = !confirmed;
                        h
                    }
                    None => {
                        break Stop {
                            page,
                            tail_page: page,
                            seq,
                            what,
                            always: start || next_unconfirmed || holds_next,
                            proven: holds_next,
                            limit: false,
                            next_page: None,
                            first_seq,
                        };
                    }
                }
            }
        };
        start = false;
        w.used.insert(page);
        marker_pages.push((first_seq, page));
        let bytes = f.page(page).unwrap_or(&[]);
        let mut slot = seq - first_seq;
        let mut stopped = None;
        while slot < slots {
            if seq > from.seq_max {
                stopped = Some(Stop {
                    page,
                    tail_page: page,
                    seq,
                    what: "the walk's last sequence".to_string(),
                    always: false,
                    proven: false,
                    limit: true,
                    next_page: Some(ph.next_page),
                    first_seq,
                });
                break;
            }
            let at = LOG_PAGE_HEADER_LEN + slot as usize * MARKER_LEN;
            let record = bytes.get(at..at + MARKER_LEN).unwrap_or(&[]);
            let decoded = match Marker::decode(record, seq, chain) {
                Some(found) => Some(found),
                None if !from.strict => None,
                None => {
                    let successor = if slot + 1 < slots {
                        bytes.get(at + MARKER_LEN..at + 2 * MARKER_LEN)
                    } else {
                        f.page(ph.next_page).and_then(|b| marker_slot(b, 0))
                    };
                    f.rebuild_marker(record, seq, chain, successor)
                        .map(|(m, c, rebuilt)| {
                            w.repairs.push(Repair {
                                offset: page * ps + at as u64,
                                bytes: rebuilt.to_vec(),
                                what: format!("the marker of commit {seq} (page {page})"),
                            });
                            (m, c)
                        })
                }
            };
            let Some((marker, c)) = decoded else {
                let what = if record.iter().all(|&b| b == 0) {
                    "its marker slot is empty".to_string()
                } else {
                    "its marker record is damaged and cannot be rebuilt from its proof".to_string()
                };
                // A page is started by one write of its header and slot 0, which share a
                // sector: a later page whose header verifies over a slot 0 that does not
                // was not started by this stream (an earlier crashed run left that header
                // at the same position), and its link may name a page this stream has
                // used since. The stream continues on the page, with a next page chosen
                // afresh, and the link is never followed (the open would zero that page).
                let started = slot > 0 || marker_pages.len() == 1;
                stopped = Some(Stop {
                    page,
                    tail_page: page,
                    seq,
                    what,
                    always: false,
                    proven: false,
                    limit: false,
                    next_page: started.then_some(ph.next_page),
                    first_seq,
                });
                break;
            };
            if !from.replay {
                // Markers only.
            } else if let Err((bad_page, what)) =
                replay(&mut f, page, &marker, versions, window, &mut w)
            {
                stopped = Some(Stop {
                    page: bad_page,
                    tail_page: page,
                    seq,
                    what,
                    always: true,
                    proven: true,
                    limit: false,
                    next_page: Some(ph.next_page),
                    first_seq,
                });
                break;
            }
            chain = c;
            seq += 1;
            slot += 1;
            replayed += 1;
        }
        if let Some(s) = stopped {
            break s;
        }
        // Page full, its next page named without confirmation: a page this stream never
        // started there (blank, or holding what an earlier use of the page left: no
        // header of the next position and none of its markers), while no page of the
        // file starts the stream's next position, means the stream ended on this page
        // (the link is not followed: a damaged one may name a page in use; the writer
        // continues on a fresh next page, see `scrub_tail`).
        if next_unconfirmed
            && !marker_header_verifies(&f, ph.next_page, first_seq + slots)
            && !holds_stream_markers(&f, ph.next_page, first_seq + slots, chain, slots)
            && !started_anywhere(&f, first_seq + slots)
        {
            break Stop {
                page,
                tail_page: page,
                seq,
                what: format!("marker page {page} is full and the page after it was never started"),
                always: false,
                proven: false,
                limit: false,
                next_page: Some(ph.next_page),
                first_seq,
            };
        }
        // A full page naming as its next a page the stream or a replayed commit already
        // uses (never one a writer chose: a crafted header, its checksum right): the
        // stream ends on this page, and a writer continues on a fresh next page of its
        // own (`next_in_use` below), never writing over that one.
        if w.used.contains(&ph.next_page) {
            break Stop {
                page,
                tail_page: page,
                seq,
                what: format!(
                    "marker page {page} is full and names page {}, already in use, as its next",
                    ph.next_page
                ),
                // A header rebuilt with an unconfirmed link: damage whatever the bound, as
                // when the walk follows such a link to a page that fails.
                always: next_unconfirmed,
                proven: false,
                limit: false,
                next_page: Some(ph.next_page),
                first_seq,
            };
        }
        // Page full: the stream continues on its next page.
        w.used.insert(ph.next_page);
        first_seq += slots;
        page = ph.next_page;
    };
    // Neither a crash's torn tail nor a live writer's write in progress can be told
    // from damage by the record alone above the durable bound; but two chained markers a
    // whole group past the stop were written after the stop's marker was written and
    // synced, so a stop that still fails when read again is damage. Looked for also
    // when the stop is damage anyway: what it proves durable is reported.
    let damaged_anyway = from.strict && (stop.always || stop.seq <= bound);
    let later_group = (!stop.limit)
        .then(|| {
            chained_later(&f, stop.tail_page, stop.first_seq, stop.seq, slots).or_else(|| {
                // A stop at a page whose header is lost lost its link to the pages after
                // it too: a recovery from the checkpoint (read-write, read-only, or an
                // integrity check; not a live reader resuming) looks for them in the
                // page's own later slots and where the stream would have put them. A
                // page the walk reached as the next page and found blank is searched
                // too: it is how a log whose last page filled exactly ends, and how a
                // started page whose every byte was lost reads (one in `slots` opens
                // stops there, and reads the first bytes of every page). So is a stop at
                // a written slot 0 under a header that verifies: a page an earlier,
                // crashed run started at this position, whose rewrite was lost, links
                // where that run went, not where the stream did. (Not a blank slot 0: a
                // tail page an open scrubbed, read so by every open until the next
                // commit.)
                (from.strict
                    && ((stop.seq == stop.first_seq
                        && !slot_blank(&f, stop.tail_page, stop.first_seq, stop.seq))
                        || !marker_header_verifies(&f, stop.tail_page, stop.first_seq)))
                .then(|| {
                    chained_later_past_lost_header(
                        &f,
                        stop.tail_page,
                        stop.first_seq,
                        stop.seq,
                        slots,
                    )
                })
                .flatten()
                .or_else(|| {
                    // A page the links lead to past the stop, started by this stream
                    // but whose header is lost: the pages after it are found where
                    // the stream would have put them, as for a stop at such a page.
                    let (lost, lost_first) = from
                        .strict
                        .then(|| {
                            linked_page_with_lost_header(&f, stop.tail_page, stop.first_seq, slots)
                        })
                        .flatten()?;
                    chained_later_past_lost_header(&f, lost, lost_first, stop.seq, slots)
                })
            })
        })
        .flatten()
        .filter(|_| {
            // A stop a valid marker proves damage (its proof or capsule failed) is
            // damage already: the later pair only says how far durable commits reach.
            if stop.proven {
                return true;
            }
            // The stop is read again after the later markers, never before them.
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            // (The page's header is not asked: one damaged on disk may have been
            // rebuilt in memory, and a marker that verifies now explains the stop.)
            !slot_holds(&f, stop.tail_page, stop.first_seq, stop.seq, chain)
        });
    let damage =
        ((!stop.limit && damaged_anyway) || stop.proven || later_group.is_some()).then(|| {
            LogDamage {
                page: stop.page,
                seq: stop.seq,
                // The later pair's group began at most a group before it; every earlier group
                // was synced. Damage that counts whatever the bound is proves commit `seq`
                // only when a marker names it (`proven`): a start page (or a page reached
                // through an unconfirmed link) failing its header says nothing of whether
                // any commit followed the bound.
                durable_seq: bound
                    .max(if stop.proven { stop.seq } else { 0 })
                    .max(later_group.map_or(0, |j| j - GROUP_COMMITS_MAX as u64)),
                what: stop.what.clone(),
                // A live reader's walk only decides whether to open its generation again, whose
                // read-only recovery describes the damage: the later markers are counted there.
                later_markers: from
                    .strict
                    .then(|| later_markers(&f, stop.tail_page, stop.first_seq, stop.seq, slots))
                    .flatten(),
            }
        });
    if let Some(d) = &damage
        && !lenient
    {
        return Err(d.to_error());
    }
    let tip = seq - 1;
    // A tail page whose next page is unconfirmed gets a fresh one, and its header is
    // rewritten with it before any marker is written. So does one naming a page the
    // stream or a replayed commit already uses (a crafted header, its checksum right):
    // a read-write open zeroes the next page, and would zero that one.
    let next_in_use = stop.next_page.is_some_and(|n| w.used.contains(&n));
    let rewrite_tail_header = (next_unconfirmed || next_in_use) && stop.next_page.is_some();
    let next_page = stop.next_page.filter(|_| !rewrite_tail_header);
    let full = seq == stop.first_seq.saturating_add(slots);
    let tail = match (next_page, stop.next_page) {
        // A reader (it never writes) at a full page whose next page is unconfirmed waits
        // for the stream on the page named, where the writer, which knows it, goes on:
        // resuming on the full page itself, at the next page's first sequence, it never
        // verified that page's header and stayed behind for good.
        (None, Some(named)) if lenient && full => {
            w.used.insert(named);
            StreamTail {
                page: named,
                first_seq: seq,
                next_page: 0,
                next_seq: seq,
                chain,
            }
        }
        (Some(next), _) => {
            w.used.insert(next);
            StreamTail {
                page: stop.tail_page,
                first_seq: stop.first_seq,
                next_page: next,
                next_seq: seq,
                chain,
            }
        }
        // The stream filled a page and its next page was never validly started: the
        // stream continues there, with a next page chosen when it is started.
        (None, _) => StreamTail {
            page: stop.tail_page,
            first_seq: stop.first_seq,
            next_page: 0,
            next_seq: seq,
            chain,
        },
    };

    Ok(Recovered {
        tip,
        tail,
        used_pages: w.used,
        max_table_id: w.max_table_id,
        replayed,
        marker_pages,
        log: w.log,
        repairs: w.repairs,
        damage,
        rewrite_tail_header,
    })
}

/// Writes back what recovery rebuilt, and syncs.
pub fn apply_repairs(storage: &dyn Storage, repairs: &[Repair]) -> Result<()> {
    if repairs.is_empty() {
        return Ok(());
    }
    for r in repairs {
        storage.write_at(r.offset, &r.bytes)?;
    }
    storage.sync()
}

/// Writes the recovered stream's marker pages again, byte for byte, for the open's sync
/// to carry ([`scrub_tail`] syncs). A sync that failed in an earlier run may have left
/// markers in the page cache, marked clean but never written (the kernel reports a lost
/// writeback once; that run refused everything after it): this open reads them, and a
/// power cut later would lose them — a lost marker ends the log there, while the durable
/// bound this open writes names them. Proofs and capsules need no rewrite: a marker is
/// written only after a sync that succeeded carried its proof and capsule.
pub fn rewrite_log_pages(
    storage: &dyn Storage,
    page_size: u32,
    pages: impl IntoIterator<Item = u64>,
) -> Result<()> {
    let ps = u64::from(page_size);
    for page in pages {
        let Some(start) = page.checked_mul(ps) else {
            continue;
        };
        let bytes = match storage.view()?.get(start, ps as usize) {
            Some(b) => b.to_vec(),
            None => continue,
        };
        storage.write_at(start, &bytes)?;
    }
    Ok(())
}

/// Prepares the tail for new markers: rewrites the tail page's header when no valid
/// marker is on it yet, zeroes the slots after the tail and the whole next page, and
/// syncs, so no record left by the lost tail can ever continue the stream.
/// `tail.next_page` must already be chosen.
/// With `rewrite_header`, the tail page's header is rewritten too (a repaired header
/// whose next page recovery could not confirm).
pub fn scrub_tail(
    storage: &dyn Storage,
    page_size: u32,
    tail: &StreamTail,
    rewrite_header: bool,
) -> Result<()> {
    let ps = u64::from(page_size);
    let slot = tail.next_seq - tail.first_seq;
    let image = MarkerWriter::new_page_image(
        tail.page,
        page_size,
        MarkerPageHeader {
            next_page: tail.next_page,
            first_seq: tail.first_seq,
        },
    )?;
    if slot == 0 {
        storage.write_at(tail.page * ps, &image)?;
    } else if rewrite_header {
        storage.write_at(
            tail.page * ps,
            image.get(..LOG_PAGE_HEADER_LEN).unwrap_or(&[]),
        )?;
    }
    if slot > 0 && slot < slots_per_page(page_size) {
        let from = LOG_PAGE_HEADER_LEN as u64 + slot * MARKER_LEN as u64;
        storage.write_at(tail.page * ps + from, &vec![0u8; (ps - from) as usize])?;
    }
    storage.write_at(tail.next_page * ps, &vec![0u8; ps as usize])?;
    storage.sync()
}
