//! Recovery: replays the valid prefix of the marker stream (`format-spec/log.md`).

use super::arena::PageUse;
use super::marker_writer::{MarkerWriter, StreamTail};
use crate::error::{Error, Result};
use crate::format::{
    Header, LOG_PAGE_HEADER_LEN, MARKER_LEN, Marker, MarkerPageHeader, PROOF_LEN, PageKind, Proof,
    decode_capsule, first_data_page, slots_per_page, verify_log_page,
};
use crate::mvcc::VersionStore;
use crate::storage::{Storage, View};
use crate::types::{CATALOG_TABLE, TABLE_ID_MAX, TableId};
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
}

/// Capsule and proof pages in use by the valid log.
#[derive(Default)]
pub struct LogUse {
    /// Capsule pages (first page of each run).
    pub capsules: BTreeMap<u64, PageUse>,
    /// Proof pages.
    pub proofs: BTreeMap<u64, PageUse>,
}

struct Reader<'a> {
    view: &'a View,
    page_size: u64,
}

impl Reader<'_> {
    fn page(&self, page: u64) -> Option<&[u8]> {
        self.view
            .get(page.checked_mul(self.page_size)?, self.page_size as usize)
    }

    fn page_of(&self, offset: u64) -> u64 {
        offset / self.page_size
    }
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
    /// A start page that fails to verify is damage (`true`: the header named it) or
    /// the stream's end (`false`: a live reader resuming where it stopped).
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

    /// The stream from where `tail` stopped.
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

/// Replays the marker stream into `versions` and returns the stream's tail.
pub fn recover(
    storage: &dyn Storage,
    header: &Header,
    versions: &VersionStore,
    floor: u64,
) -> Result<Recovered> {
    recover_from(
        storage,
        header.page_size,
        StreamStart::at_checkpoint(header),
        versions,
        floor,
    )
}

/// Replays the marker stream from `from` into `versions` and returns the stream's tail.
pub fn recover_from(
    storage: &dyn Storage,
    page_size: u32,
    from: StreamStart,
    versions: &VersionStore,
    floor: u64,
) -> Result<Recovered> {
    let view = storage.view()?;
    let r = Reader {
        view: &view,
        page_size: u64::from(page_size),
    };
    let slots = slots_per_page(page_size);
    let first_data = first_data_page(page_size);
    let file_pages = view.len() as u64 / u64::from(page_size);
    let mut used = BTreeSet::new();
    let mut seq = from.seq;
    let mut chain = from.chain;
    let mut page = from.page;
    let mut first_seq = seq;
    let mut max_table_id = 0;
    let mut replayed = 0;
    let mut start = true;
    let mut marker_pages = Vec::new();
    let mut log = LogUse::default();
    let next_page = loop {
        let ph = r
            .page(page)
            .ok_or_else(|| Error::corrupted(page, "marker page lies past the end of the file"))
            .and_then(|bytes| verify_log_page(bytes, PageKind::Marker, page))
            .map(|kh| MarkerPageHeader::decode(&kh))
            .and_then(|h| {
                // The start page may hold slots at or below the checkpoint, which are
                // skipped; every later page starts right after its predecessor.
                let first_ok = if start {
                    h.first_seq <= first_seq && first_seq - h.first_seq < slots
                } else {
                    h.first_seq == first_seq
                };
                if !first_ok {
                    Err(Error::corrupted(
                        page,
                        format!(
                            "marker page starts at seq {} (expected {first_seq})",
                            h.first_seq
                        ),
                    ))
                } else if h.next_page < first_data
                    || h.next_page == page
                    || h.next_page >= file_pages
                {
                    // The pager grows the file before it hands a page out, so a synced
                    // marker page never names a page past the file's end.
                    Err(Error::corrupted(
                        page,
                        format!(
                            "marker page names next page {} outside the file's data pages {first_data}..{file_pages}",
                            h.next_page
                        ),
                    ))
                } else {
                    Ok(h)
                }
            });
        let ph = match ph {
            Ok(h) => h,
            // The start page was synced before the header named it: damage. A later
            // page is started by the same write as its first markers: a torn start.
            Err(e) if start && from.strict => return Err(e),
            Err(_) => break None,
        };
        start = false;
        first_seq = ph.first_seq;
        used.insert(page);
        marker_pages.push((first_seq, page));
        let bytes = r.page(page).unwrap_or(&[]);
        let mut slot = seq - first_seq;
        while slot < slots && seq <= from.seq_max {
            let at = LOG_PAGE_HEADER_LEN + slot as usize * MARKER_LEN;
            let Some((marker, c)) = bytes
                .get(at..at + MARKER_LEN)
                .and_then(|b| Marker::decode(b, seq, chain))
            else {
                break;
            };
            if from.replay {
                max_table_id = max_table_id.max(replay(
                    &r, page, &marker, versions, floor, &mut used, &mut log,
                )?);
            }
            chain = c;
            seq += 1;
            slot += 1;
            replayed += 1;
        }
        if slot < slots {
            break Some((page, ph.next_page));
        }
        // Page full: the stream continues on its next page.
        used.insert(ph.next_page);
        first_seq += slots;
        page = ph.next_page;
    };
    let tip = seq - 1;
    let tail = match next_page {
        Some((page, next)) => {
            used.insert(next);
            StreamTail {
                page,
                first_seq,
                next_page: next,
                next_seq: seq,
                chain,
            }
        }
        None => {
            // The stream filled a page and its next page was never validly started: the
            // stream continues there, with a next page chosen when it is started.
            StreamTail {
                page,
                first_seq,
                next_page: 0,
                next_seq: seq,
                chain,
            }
        }
    };
    Ok(Recovered {
        tip,
        tail,
        used_pages: used,
        max_table_id,
        replayed,
        marker_pages,
        log,
    })
}

/// Verifies one committed marker's proof and capsule and applies the capsule.
fn replay(
    r: &Reader<'_>,
    marker_page: u64,
    m: &Marker,
    versions: &VersionStore,
    floor: u64,
    used: &mut BTreeSet<u64>,
    log: &mut LogUse,
) -> Result<TableId> {
    let seq = m.seq;
    let proof_page = r.page_of(m.proof_offset);
    let bad = |page: u64, what: String| Error::corrupted(page, format!("commit {seq}: {what}"));
    let proof_bytes = r
        .view
        .get(m.proof_offset, PROOF_LEN)
        .ok_or_else(|| bad(marker_page, "proof lies past the end of the file".into()))?;
    let (proof, proof_sum) = Proof::decode(proof_bytes).map_err(|w| bad(proof_page, w.into()))?;
    if proof_sum != m.proof_checksum || proof.seq != seq {
        return Err(bad(proof_page, "proof does not match its marker".into()));
    }
    let cap_page = r.page_of(proof.capsule_offset);
    let cap_bytes = r
        .view
        .get(proof.capsule_offset, proof.capsule_len as usize)
        .ok_or_else(|| bad(proof_page, "capsule lies past the end of the file".into()))?;
    let capsule = decode_capsule(cap_bytes).map_err(|f| bad(cap_page, f.0))?;
    let stored_sum = cap_bytes
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes);
    if stored_sum != proof.capsule_checksum
        || capsule.entry_count != proof.entry_count
        || capsule.write_digest != proof.write_digest
        || capsule.snapshot != proof.snapshot
    {
        return Err(bad(cap_page, "capsule does not match its proof".into()));
    }
    let last_page = r.page_of(proof.capsule_offset + u64::from(proof.capsule_len).max(1) - 1);
    // Each log page's own header is checked the first time a record in it is met.
    for (page, kind, pages_needed) in [
        (proof_page, PageKind::Proof, 1),
        (cap_page, PageKind::Capsule, last_page - cap_page + 1),
    ] {
        if used.contains(&page) {
            continue;
        }
        let kh = r
            .page(page)
            .ok_or_else(|| bad(page, "page lies past the end of the file".into()))
            .and_then(|b| verify_log_page(b, kind, page).map_err(|e| bad(page, e.to_string())))?;
        let run_pages = u64::from(u32::from_le_bytes([kh[0], kh[1], kh[2], kh[3]]));
        if run_pages < pages_needed || kh.get(4..).is_some_and(|r| r.iter().any(|&b| b != 0)) {
            return Err(bad(
                page,
                format!("{kind:?} page run of {run_pages} pages does not hold its record"),
            ));
        }
    }
    used.insert(proof_page);
    // A capsule in a run: the run starts at the page holding the capsule's start.
    used.extend(cap_page..=last_page);
    for (map, page, run) in [
        (&mut log.proofs, proof_page, 1),
        (&mut log.capsules, cap_page, last_page - cap_page + 1),
    ] {
        let u = map.entry(page).or_default();
        u.run_pages = run;
        u.max_seq = u.max_seq.max(seq);
    }
    let mut max_id = 0;
    for (&table, keys) in &capsule.writes {
        max_id = max_id.max(table);
        if table == CATALOG_TABLE {
            for v in keys.values().flatten() {
                if let Ok(b) = <[u8; 8]>::try_from(&v[..]) {
                    max_id = max_id.max(u64::from_le_bytes(b));
                }
            }
        }
    }
    for &t in &capsule.dropped_tables {
        max_id = max_id.max(t);
    }
    if max_id > TABLE_ID_MAX {
        return Err(bad(
            cap_page,
            format!("names table id {max_id}, above the highest a table can have"),
        ));
    }
    // No snapshot lives during recovery: only the newest version of a key and those
    // inside the history window (at or above `floor`) matter.
    versions.apply(seq, &capsule.writes, seq.min(floor));
    for &t in &capsule.dropped_tables {
        versions.drop_table_at(t, seq);
    }
    Ok(max_id)
}

/// Prepares the tail for new markers: rewrites the tail page's header when no valid
/// marker is on it yet, zeroes the slots after the tail and the whole next page, and
/// syncs, so no record left by the lost tail can ever continue the stream.
/// `tail.next_page` must already be chosen.
pub fn scrub_tail(storage: &dyn Storage, page_size: u32, tail: &StreamTail) -> Result<()> {
    let ps = u64::from(page_size);
    let slot = tail.next_seq - tail.first_seq;
    if slot == 0 {
        let image = MarkerWriter::new_page_image(
            tail.page,
            page_size,
            MarkerPageHeader {
                next_page: tail.next_page,
                first_seq: tail.first_seq,
            },
        )?;
        storage.write_at(tail.page * ps, &image)?;
    } else if slot < slots_per_page(page_size) {
        let from = LOG_PAGE_HEADER_LEN as u64 + slot * MARKER_LEN as u64;
        storage.write_at(tail.page * ps + from, &vec![0u8; (ps - from) as usize])?;
    }
    storage.write_at(tail.next_page * ps, &vec![0u8; ps as usize])?;
    storage.sync()
}
