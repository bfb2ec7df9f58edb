//! Replaying one committed marker: its proof and capsule must verify (repairing the proof
//! and the log page headers from redundancy where possible), then the capsule is applied.

use super::recovery::Walk;
use super::repair::{LogFile, Repair};
use crate::format::{
    LOG_PAGE_HEADER_LEN, Marker, PROOF_LEN, PageKind, Proof, decode_capsule, decode_table_id,
    verify_log_page,
};
use crate::mvcc::{ReplayWindow, VersionStore};
use crate::types::{CATALOG_TABLE, TABLE_ID_MAX, TableId};

/// Why a committed marker's records do not verify: the page and what failed.
pub(super) type Fault = (u64, String);

/// Verifies one committed marker's proof and capsule and applies the capsule. Returns the
/// largest table id the capsule names.
pub(super) fn replay(
    f: &mut LogFile<'_>,
    marker_page: u64,
    m: &Marker,
    versions: &VersionStore,
    window: ReplayWindow,
    w: &mut Walk,
) -> Result<TableId, Fault> {
    let seq = m.seq;
    let proof_page = f.page_of(m.proof_offset);
    // A proof lies inside one proof page, after its header (log.md: a record never
    // crosses a page boundary): one across two pages (a crafted marker, its chain
    // right) would count only the first page as used, and its repair would write over
    // the start of the next, which a later commit may have reused.
    let in_page = m.proof_offset % f.page_size;
    if in_page < LOG_PAGE_HEADER_LEN as u64 || in_page + PROOF_LEN as u64 > f.page_size {
        return Err((
            marker_page,
            format!(
                "its proof at offset {} is not within one page after its header",
                m.proof_offset
            ),
        ));
    }
    let proof_bytes = f.view.get(m.proof_offset, PROOF_LEN).ok_or_else(|| {
        (
            marker_page,
            format!(
                "its proof at offset {} (page {proof_page}) lies past the end of the file",
                m.proof_offset
            ),
        )
    })?;
    let proof = match Proof::decode(proof_bytes) {
        Ok((p, sum)) if sum == m.proof_checksum && p.seq == seq => p,
        other => {
            let why = match other {
                Err(w) => w.to_string(),
                Ok(_) => "its proof does not match its marker".into(),
            };
            let (p, enc) = f
                .rebuild_proof(proof_bytes, seq, m.proof_checksum)
                .ok_or_else(|| (proof_page, why.clone()))?;
            w.repairs.push(Repair {
                offset: m.proof_offset,
                bytes: enc.to_vec(),
                what: format!("the proof of commit {seq} (page {proof_page}: {why})"),
            });
            p
        }
    };
    let cap_page = f.page_of(proof.capsule_offset);
    // A capsule starts after its page's header, and one longer than its page's rest
    // starts right after it, at the head of its run (log.md, "Records"): one over the
    // header (a crafted proof) could take the header's zeros for its checksum.
    let cap_in_page = proof.capsule_offset % f.page_size;
    let cap_fits = u64::from(proof.capsule_len) <= f.page_size - cap_in_page;
    if cap_in_page < LOG_PAGE_HEADER_LEN as u64
        || (!cap_fits && cap_in_page != LOG_PAGE_HEADER_LEN as u64)
    {
        return Err((
            proof_page,
            format!(
                "its capsule at offset {} is not after its page's header, or not at the head \
                 of its run",
                proof.capsule_offset
            ),
        ));
    }
    let cap_bytes = f
        .view
        .get(proof.capsule_offset, proof.capsule_len as usize)
        .ok_or_else(|| {
            (
                proof_page,
                format!(
                    "its capsule at offset {} (page {cap_page}, {} bytes) lies past the end \
                     of the file",
                    proof.capsule_offset, proof.capsule_len
                ),
            )
        })?;
    let capsule = decode_capsule(cap_bytes).map_err(|e| (cap_page, e.0))?;
    let stored_sum = cap_bytes
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes);
    if stored_sum != proof.capsule_checksum
        || capsule.entry_count != proof.entry_count
        || capsule.write_digest != proof.write_digest
        || capsule.snapshot != proof.snapshot
    {
        return Err((cap_page, "its capsule does not match its proof".into()));
    }
    let last_page = f.page_of(proof.capsule_offset + u64::from(proof.capsule_len).max(1) - 1);
    // Each log page's own header is checked the first time a record in it is met.
    for (page, kind, pages_needed) in [
        (proof_page, PageKind::Proof, 1),
        (cap_page, PageKind::Capsule, last_page - cap_page + 1),
    ] {
        // A page met before was checked then: a record on it must be of the kind found
        // there and fit the run found there (a proof inside a capsule or marker page, or
        // a capsule longer than its run, is damage, never read).
        match w.checked.get(&page) {
            Some(&(k, run)) if k == kind && run >= pages_needed => continue,
            Some(&(k, run)) => {
                return Err((
                    page,
                    format!(
                        "a {kind:?} record of {pages_needed} pages on a {k:?} page run of {run} pages"
                    ),
                ));
            }
            None => {}
        }
        let checked = f
            .page(page)
            .ok_or_else(|| "the page lies past the end of the file".to_string())
            .and_then(|b| verify_log_page(b, kind, page).map_err(|e| e.to_string()))
            .and_then(|kh| {
                let run_pages = u64::from(u32::from_le_bytes([kh[0], kh[1], kh[2], kh[3]]));
                if run_pages < pages_needed
                    || kh.get(4..).is_some_and(|r| r.iter().any(|&b| b != 0))
                {
                    Err(format!(
                        "{kind:?} page run of {run_pages} pages does not hold its record"
                    ))
                } else {
                    Ok(run_pages)
                }
            });
        let run_pages = match checked {
            Ok(run_pages) => run_pages,
            Err(_) => pages_needed,
        };
        w.checked.insert(page, (kind, run_pages));
        if let Err(why) = checked {
            let rebuilt = f
                .rebuild_log_header(page, kind, pages_needed)
                .ok_or_else(|| (page, why.clone()))?;
            w.repairs.push(Repair {
                offset: page * f.page_size,
                bytes: rebuilt,
                what: format!("the header of {kind:?} page {page} ({why})"),
            });
        }
    }
    let used_end = |offset: u64, len: u64| (offset + len) - f.page_of(offset) * f.page_size;
    w.used.insert(proof_page);
    // A capsule in a run: the run starts at the page holding the capsule's start.
    w.used.extend(cap_page..=last_page);
    for (map, page, run, end) in [
        (
            &mut w.log.proofs,
            proof_page,
            1,
            used_end(m.proof_offset, PROOF_LEN as u64),
        ),
        (
            &mut w.log.capsules,
            cap_page,
            last_page - cap_page + 1,
            used_end(proof.capsule_offset, u64::from(proof.capsule_len)),
        ),
    ] {
        let u = map.entry(page).or_default();
        u.run_pages = run;
        u.max_seq = u.max_seq.max(seq);
        if run == 1 {
            let e = w.log.ends.entry(page).or_default();
            *e = (*e).max(end);
        }
    }
    let mut max_id = 0;
    for (&table, keys) in &capsule.writes {
        max_id = max_id.max(table);
        if table == CATALOG_TABLE {
            for (_, v) in keys {
                let Some(v) = v else { continue };
                // A value no writer makes (not 8 bytes, or the catalog's own id) is
                // refused here, naming the capsule's page: read later from the version
                // store, it would be reported without a page.
                match decode_table_id(v) {
                    Ok(id) => max_id = max_id.max(id),
                    Err(crate::error::Error::Corrupted { what, .. }) => {
                        return Err((cap_page, format!("its capsule's {what}")));
                    }
                    Err(e) => return Err((cap_page, e.to_string())),
                }
            }
        }
    }
    for &t in &capsule.dropped_tables {
        max_id = max_id.max(t);
    }
    if max_id > TABLE_ID_MAX {
        return Err((
            cap_page,
            format!("its capsule names table id {max_id}, above the highest a table can have"),
        ));
    }
    // No snapshot lives during recovery: only the newest version of a key and those
    // inside the history window matter.
    versions.apply(seq, &capsule.writes, window.horizon(seq));
    for &t in &capsule.dropped_tables {
        versions.drop_table_at(t, seq);
    }
    w.max_table_id = w.max_table_id.max(max_id);
    Ok(max_id)
}
