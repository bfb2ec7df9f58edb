//! The in-database modes of the `decode` harness: tree, run and log pages replaced
//! inside a real database with a valid checksum, which reaches the decoders that are not
//! public (B+tree nodes, overflow and free-list runs, the marker stream), and committed
//! capsules replaced with their proof and marker chain fixed up, which reaches
//! recovery's replay. Each damaged file then goes through the `open_bytes` exercise.

use super::decode::{LOG_KINDS, SEALED_KINDS};
use super::input::{Input, u32_at, u64_at};
use super::open_bytes::exercise_bytes;
use super::sample::sample_database;
use capsuledb::format::{
    CAPSULE_HEADER_LEN, HEADER_COPY_OFFSETS, Header, LOG_PAGE_HEADER_LEN, MARKER_LEN, Marker,
    MarkerPageHeader, PROOF_LEN, PageKind, Proof, checksum, decode_capsule, first_data_page,
    slots_per_page, verify_log_page,
};
use std::sync::OnceLock;

/// Page size of the sample databases.
pub(super) const SAMPLE_PAGE_SIZE: usize = 4096;

/// Pages of `file` whose header names their own page number and one of `kinds`.
pub(super) fn pages_of_kind(
    file: &[u8],
    page_size: usize,
    kinds: &[PageKind],
) -> Vec<(u64, PageKind)> {
    let first = first_data_page(page_size as u32) as usize;
    (first..file.len() / page_size)
        .filter_map(|p| {
            let at = p * page_size;
            let kind = PageKind::from_u8(*file.get(at + 4)?)?;
            (kinds.contains(&kind) && u64_at(file, at + 8) == p as u64).then_some((p as u64, kind))
        })
        .collect()
}

/// The sample database the in-database modes mutate (built once per process).
fn base_database() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| sample_database(SAMPLE_PAGE_SIZE as u32, true, true))
}

/// Replaces part of one page of the sample database with fuzz bytes, fixes its
/// checksum, opens the file and uses it like `fuzz_open_bytes`.
///
/// Input: `[page index, flags, offset / 16, bytes...]`. The bytes overwrite the page
/// from byte `16 + 16 * offset`, so the kind, version and page number stay valid; flag
/// bit 0 also rewrites the kind byte (to `kinds[flags >> 1 % kinds]`).
pub(super) fn page_in_database(rest: &[u8], tree: bool) {
    let kinds: &[PageKind] = if tree { &SEALED_KINDS } else { &LOG_KINDS };
    let mut file = base_database().to_vec();
    let pages = pages_of_kind(&file, SAMPLE_PAGE_SIZE, kinds);
    if replace_page(&mut file, &pages, kinds, rest) {
        exercise_bytes(file);
    }
}

/// Overwrites one of `pages` of `file` with fuzz bytes and fixes its checksum, as
/// [`page_in_database`] describes its input; `false` when there is no page to damage.
pub(super) fn replace_page(
    file: &mut [u8],
    pages: &[(u64, PageKind)],
    kinds: &[PageKind],
    rest: &[u8],
) -> bool {
    let ps = SAMPLE_PAGE_SIZE;
    let mut input = Input::new(rest);
    let index = usize::from(input.u8());
    let flags = input.u8();
    let offset = 16 + 16 * usize::from(input.u8());
    let Some(&(page, _)) = pages.get(index % pages.len().max(1)) else {
        return false;
    };
    let start = page as usize * ps;
    let body = rest.get(3..).unwrap_or(&[]);
    // Overwrite inside this page and the ones after it (runs span pages), never
    // past the file's end.
    for (i, &b) in body.iter().enumerate() {
        if let Some(x) = file.get_mut(start + offset + i) {
            *x = b;
        }
    }
    if flags & 1 == 1 {
        file[start + 4] = kinds[usize::from(flags >> 1) % kinds.len()] as u8;
    }
    let kind = PageKind::from_u8(file[start + 4]);
    let end = match kind {
        Some(PageKind::Overflow | PageKind::FreeList) => {
            let n = u32_at(file, start + 16) as usize;
            start + n.max(1) * ps
        }
        Some(PageKind::CompactLeaf | PageKind::UniformLeaf) => {
            // A leaf of several pages: its count at byte 19 (0 or 1: one page).
            let n = usize::from(file.get(start + 19).copied().unwrap_or(0));
            start + n.max(1) * ps
        }
        Some(PageKind::Branch | PageKind::Leaf) => start + ps,
        _ => start + LOG_PAGE_HEADER_LEN,
    };
    if let Some(covered) = file.get(start + 4..end) {
        let sum = checksum(&[covered]);
        file[start..start + 4].copy_from_slice(&sum.to_le_bytes());
    }
    true
}

/// Where one commit of the log sits in a database file.
struct LogCommit {
    marker_at: usize,
    proof_at: usize,
    capsule_at: usize,
    capsule_len: usize,
    /// The chain value the commit's marker chains to.
    prev_chain: u32,
}

/// Log marker pages followed, at most (the samples use one or two).
const MARKER_PAGES_MAX: usize = 64;

/// The commits in the log of `file` after its checkpoint, in sequence order.
fn log_commits(file: &[u8]) -> Vec<LogCommit> {
    let mut out = Vec::new();
    let Some(header) = (0..2u32)
        .filter_map(|c| {
            let at = usize::try_from(HEADER_COPY_OFFSETS[c as usize]).ok()?;
            Header::decode(file.get(at..)?, c).ok()
        })
        .max_by_key(|h| h.generation)
    else {
        return out;
    };
    let ps = header.page_size as usize;
    let slots = slots_per_page(header.page_size);
    let mut seq = header.checkpoint_seq + 1;
    let mut chain = header.marker_chain_seed;
    let mut page = header.marker_start_page;
    for _ in 0..MARKER_PAGES_MAX {
        let Some(start) = usize::try_from(page).ok().and_then(|p| p.checked_mul(ps)) else {
            return out;
        };
        let Some(kh) = file
            .get(start..start.saturating_add(ps))
            .and_then(|b| verify_log_page(b, PageKind::Marker, page).ok())
        else {
            return out;
        };
        let ph = MarkerPageHeader::decode(&kh);
        let Some(mut slot) = seq.checked_sub(ph.first_seq) else {
            return out;
        };
        while slot < slots {
            let at = start + LOG_PAGE_HEADER_LEN + slot as usize * MARKER_LEN;
            let Some((m, c)) = file
                .get(at..at + MARKER_LEN)
                .and_then(|b| Marker::decode(b, seq, chain))
            else {
                return out;
            };
            let proof_at = usize::try_from(m.proof_offset).unwrap_or(usize::MAX);
            let Some((p, _)) = file.get(proof_at..).and_then(|b| Proof::decode(b).ok()) else {
                return out;
            };
            out.push(LogCommit {
                marker_at: at,
                proof_at,
                capsule_at: usize::try_from(p.capsule_offset).unwrap_or(usize::MAX),
                capsule_len: p.capsule_len as usize,
                prev_chain: chain,
            });
            chain = c;
            seq += 1;
            slot += 1;
        }
        page = ph.next_page;
    }
    out
}

/// Replaces bytes of one committed capsule of the sample database, then makes the
/// log consistent again: the capsule's checksum (and `total_len` unless flag bit 0),
/// its proof's checksum, entry count and digest (when the capsule still decodes),
/// and the marker chain from its marker on. Recovery then replays what the fuzzer
/// wrote.
///
/// Input: `[commit index, flags, offset / 8, bytes...]`; the bytes overwrite the
/// capsule from byte `8 * offset` (at least 4: the checksum is computed), inside the
/// record.
pub(super) fn capsule_in_database(rest: &[u8]) {
    let mut file = base_database().to_vec();
    let commits = log_commits(&file);
    let mut input = Input::new(rest);
    let index = usize::from(input.u8()) % commits.len().max(1);
    let flags = input.u8();
    let offset = (8 * usize::from(input.u8())).max(4);
    let Some(target) = commits.get(index) else {
        return;
    };
    let end = target.capsule_at + target.capsule_len;
    for (i, &b) in rest.get(3..).unwrap_or(&[]).iter().enumerate() {
        match file.get_mut(target.capsule_at + offset + i) {
            Some(x) if target.capsule_at + offset + i < end => *x = b,
            _ => break,
        }
    }
    let Some(rec) = file.get_mut(target.capsule_at..end) else {
        return;
    };
    if flags & 1 == 0 && rec.len() >= CAPSULE_HEADER_LEN {
        let len = u32::try_from(rec.len()).unwrap_or(u32::MAX);
        rec[8..12].copy_from_slice(&len.to_le_bytes());
    }
    if rec.len() >= 4 {
        let sum = checksum(&[&rec[4..]]);
        rec[..4].copy_from_slice(&sum.to_le_bytes());
    }
    let decoded = decode_capsule(rec).ok();
    let capsule_sum = u32_at(rec, 0);
    let Some((mut proof, _)) = file
        .get(target.proof_at..)
        .and_then(|b| Proof::decode(b).ok())
    else {
        return;
    };
    proof.capsule_checksum = capsule_sum;
    if let Some(c) = decoded {
        proof.entry_count = c.entry_count;
        proof.write_digest = c.write_digest;
        proof.snapshot = c.snapshot;
    }
    let enc = proof.encode();
    file[target.proof_at..target.proof_at + PROOF_LEN].copy_from_slice(&enc);
    let mut chain = target.prev_chain;
    for (j, c) in commits.iter().enumerate().skip(index) {
        let Some(b) = file.get(c.marker_at..c.marker_at + MARKER_LEN) else {
            return;
        };
        let mut m = Marker {
            seq: u64_at(b, 0),
            proof_offset: u64_at(b, 8),
            proof_checksum: u32_at(b, 16),
        };
        if j == index {
            m.proof_checksum = Proof::checksum_of(&enc);
        }
        let (bytes, next) = m.encode(chain);
        file[c.marker_at..c.marker_at + MARKER_LEN].copy_from_slice(&bytes);
        chain = next;
    }
    exercise_bytes(file);
}
