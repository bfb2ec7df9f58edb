//! The evidence recovery weighs past where the marker stream stops
//! (`format-spec/log.md`, "Reading the stream", step 4): markers a later group wrote,
//! found through the stopping page's links or, when its header is lost, on the pages
//! where the stream would have put them.

use super::group::GROUP_COMMITS_MAX;
use super::repair::LogFile;
use crate::format::{Marker, MarkerPageHeader, PageKind, marker_slot, verify_log_page};

/// Whether the slot of `seq` on marker page `page` (whose slot 0 is `first_seq`) holds
/// marker `seq`, chained to `chain`.
pub(super) fn slot_holds(f: &LogFile<'_>, page: u64, first_seq: u64, seq: u64, chain: u32) -> bool {
    f.page(page)
        .and_then(|b| marker_slot(b, seq - first_seq))
        .is_some_and(|r| Marker::decode(r, seq, chain).is_some())
}

/// Whether the slot of `seq` on marker page `page` (whose slot 0 is `first_seq`) holds
/// only zeros (never written, or scrubbed by an open).
pub(super) fn slot_blank(f: &LogFile<'_>, page: u64, first_seq: u64, seq: u64) -> bool {
    f.page(page)
        .and_then(|b| marker_slot(b, seq - first_seq))
        .is_some_and(|r| r.iter().all(|&b| b == 0))
}

/// The first of the last two consecutive marker records, both at least a group
/// ([`GROUP_COMMITS_MAX`]) past `seq`, the second chained to the first's stored chain,
/// found past a stop at `seq` on `page` (whose slot 0 is `first_seq`) as
/// [`later_markers`] walks, on pages whose headers verify: markers a later group wrote.
/// Such a pair was written after every marker up to `seq` was synced (a group's markers
/// follow the sync of every earlier group's, and a group holds at most
/// [`GROUP_COMMITS_MAX`] commits), so no earlier run left one: its recovery read its
/// synced markers (a run continues from its recovered tip, which lies within a group of
/// any pair it left), and an older stream's sequences lie below the checkpoint.
pub(super) fn chained_later(
    f: &LogFile<'_>,
    page: u64,
    first_seq: u64,
    seq: u64,
    slots: u64,
) -> Option<u64> {
    chained_later_from(f, page, first_seq, seq, slots, true)
}

/// [`chained_later`], also over the slots of `page` itself when `verified_first` is
/// false: a stop at a page whose header is lost, whose own later slots (a 32 or 64 KiB
/// page holds more than a group) may hold a later group's markers. Such a pair proves
/// what it proves wherever it lies: no earlier run left one (see `chained_later`).
fn chained_later_from(
    f: &LogFile<'_>,
    page: u64,
    first_seq: u64,
    seq: u64,
    slots: u64,
    verified_first: bool,
) -> Option<u64> {
    let mut found = None;
    let mut prev: Option<(u64, u32)> = None;
    walk_later_slots(
        f,
        page,
        first_seq,
        seq,
        slots,
        verified_first,
        |at, record| {
            if let Some((p, chain)) = prev
                && p + 1 == at
                && p >= seq + GROUP_COMMITS_MAX as u64
                && Marker::decode(record, at, chain).is_some()
            {
                found = Some(p);
            }
            prev = Marker::stored_chain(record).map(|c| (at, c));
            // On to the last such pair: the later it lies, the more it proves durable.
            true
        },
    );
    found
}

/// Whether `page` is a marker page whose header verifies with `first_seq`.
pub(super) fn marker_header_verifies(f: &LogFile<'_>, page: u64, first_seq: u64) -> bool {
    f.page(page).is_some_and(|b| {
        verify_log_page(b, PageKind::Marker, page)
            .is_ok_and(|kh| MarkerPageHeader::decode(&kh).first_seq == first_seq)
    })
}

/// Whether marker page position `first_seq` of the stream could be `page`: its slot 0
/// holds marker `first_seq` chained to `chain` (the last marker before it), or two of its
/// slots hold consecutive markers of that position, the second chained to the first.
pub(super) fn holds_stream_markers(
    f: &LogFile<'_>,
    page: u64,
    first_seq: u64,
    chain: u32,
    slots: u64,
) -> bool {
    let Some(b) = f.page(page) else {
        return false;
    };
    if marker_slot(b, 0).is_some_and(|r| Marker::decode(r, first_seq, chain).is_some()) {
        return true;
    }
    (0..slots.saturating_sub(1)).any(|s| {
        let (Some(a), Some(n)) = (marker_slot(b, s), marker_slot(b, s + 1)) else {
            return false;
        };
        Marker::stored_chain(a).is_some_and(|c| Marker::decode(n, first_seq + s + 1, c).is_some())
    })
}

/// Whether any page of the file is a marker page whose header verifies with
/// `first_seq`. Reads the first bytes of every page: only a walk that reaches the end of
/// a full page whose next page is unconfirmed pays for it.
pub(super) fn started_anywhere(f: &LogFile<'_>, first_seq: u64) -> bool {
    (f.first_data..f.file_pages).any(|p| {
        verify_marker_page(f, p)
            .is_some_and(|kh| MarkerPageHeader::decode(&kh).first_seq == first_seq)
    })
}

/// The first page past a stop on `page` (whose slot 0 is `first_seq`), along the stored
/// `next_page` links of pages whose headers verify, that fails to verify at its
/// position yet holds a record naming one of its slots there: a page this stream
/// started whose header (and so its link onward) was lost, with its slot 0's position.
/// A page never started (blank, or stale from an older stream whose sequences lie below
/// the checkpoint) holds no such record, so an ordinary end of the log pays nothing for
/// the search past it.
pub(super) fn linked_page_with_lost_header(
    f: &LogFile<'_>,
    page: u64,
    first_seq: u64,
    slots: u64,
) -> Option<(u64, u64)> {
    let (mut page, mut first) = (page, first_seq);
    // Every page at most once.
    for _ in 0..f.file_pages {
        let next = stored_next_page(f.page(page)?, page)?;
        let next_first = first.checked_add(slots)?;
        if !marker_header_verifies(f, next, next_first) {
            let b = f.page(next)?;
            let names_its_slot = (0..slots).any(|s| {
                marker_slot(b, s)
                    .and_then(|r| <[u8; 8]>::try_from(r.get(..8)?).ok())
                    .is_some_and(|stored| u64::from_le_bytes(stored) == next_first + s)
            });
            return names_its_slot.then_some((next, next_first));
        }
        page = next;
        first = next_first;
    }
    None
}

/// Candidate pages [`chained_later_past_lost_header`] walks from, at most: a hostile
/// file of many linked marker pages would otherwise cost a walk per page.
const LOST_HEADER_CANDIDATES_MAX: usize = 4;

/// [`chained_later`] for a stop at `seq` on marker page `page` (slot 0 `first_seq`) whose
/// header, and so its link to the next page, is lost (damaged, or the page read back
/// blank): the page's own later slots, then the file's marker pages whose headers verify
/// at the stream's later positions (`first_seq` plus a whole number of pages), walked
/// from in stream order. Pages of an earlier crashed run or an older stream cannot hold a
/// chained pair a whole group past `seq` (see `chained_later`). Reads the first bytes of
/// every page when the own slots prove nothing: only a recovery from the checkpoint that
/// stops at a lost header (the walk reached a page that was never started, the usual end
/// of a log whose last page filled exactly, or one damaged) pays for it.
pub(super) fn chained_later_past_lost_header(
    f: &LogFile<'_>,
    page: u64,
    first_seq: u64,
    seq: u64,
    slots: u64,
) -> Option<u64> {
    if let Some(found) = chained_later_from(f, page, first_seq, seq, slots, false) {
        return Some(found);
    }
    let mut candidates: Vec<(u64, u64)> = (f.first_data..f.file_pages)
        .filter_map(|p| {
            let kh = verify_marker_page(f, p)?;
            let at = MarkerPageHeader::decode(&kh).first_seq;
            // Sequences near the top of the range (only a hostile page names one) would
            // overflow the walk's sums.
            (at > first_seq && at < u64::MAX / 2 && (at - first_seq).is_multiple_of(slots.max(1)))
                .then_some((at, p))
        })
        .collect();
    candidates.sort_unstable();
    candidates
        .into_iter()
        .take(LOST_HEADER_CANDIDATES_MAX)
        .find_map(|(at, p)| chained_later(f, p, at, seq, slots))
}

/// The kind header of `page` when it is a marker page whose header verifies; the kind
/// byte is looked at first, so a search over every page of the file checksums only
/// marker pages' headers.
fn verify_marker_page(f: &LogFile<'_>, page: u64) -> Option<[u8; 16]> {
    let bytes = f.page(page)?;
    (bytes.get(4) == Some(&(PageKind::Marker as u8)))
        .then(|| verify_log_page(bytes, PageKind::Marker, page).ok())
        .flatten()
}

/// Marker records of later commits found past damage at `seq` on `page` (whose slot 0
/// is `first_seq`), following the pages' stored `next_page` links: records whose `seq`
/// field names their slot. Their chain cannot be verified across the damage.
pub(super) fn later_markers(
    f: &LogFile<'_>,
    page: u64,
    first_seq: u64,
    seq: u64,
    slots: u64,
) -> Option<(u64, u64, u64)> {
    let mut found: Option<(u64, u64, u64)> = None;
    walk_later_slots(f, page, first_seq, seq, slots, false, |at, _| {
        let (lo, _, n) = found.unwrap_or((at, 0, 0));
        found = Some((lo, at, n + 1));
        true
    });
    found
}

/// Calls `visit(seq, record)` for each slot past `seq` (on `page`, whose slot 0 is
/// `first_seq`, and on the pages its stored `next_page` links lead to) whose record's
/// `seq` field names that very slot, in order, while `visit` returns `true`. With
/// `verified_only`, only on pages whose
/// header verifies with the expected `first_seq` (the walk ends at the first that does
/// not).
pub(super) fn walk_later_slots(
    f: &LogFile<'_>,
    page: u64,
    first_seq: u64,
    seq: u64,
    slots: u64,
    verified_only: bool,
    mut visit: impl FnMut(u64, &[u8]) -> bool,
) {
    let (mut page, mut first, mut from) = (page, first_seq, seq + 1);
    // Every page at most once.
    for _ in 0..f.file_pages {
        let Some(bytes) = f.page(page) else { return };
        if verified_only && !marker_header_verifies(f, page, first) {
            return;
        }
        for s in from.saturating_sub(first)..slots {
            let record = marker_slot(bytes, s);
            let stored = record
                .and_then(|r| <[u8; 8]>::try_from(r.get(..8)?).ok())
                .map(u64::from_le_bytes);
            if let (Some(r), true) = (record, stored == Some(first + s))
                && !visit(first + s, r)
            {
                return;
            }
        }
        let Some(next) = stored_next_page(bytes, page) else {
            return;
        };
        if !marker_header_verifies(f, next, first + slots) {
            return;
        }
        page = next;
        first += slots;
        from = first;
    }
}

/// The `next_page` link marker page `page` (its bytes `bytes`) stores: from its header
/// when that verifies, else as the bytes where the header keeps it say (a damaged
/// header's link may still be right).
fn stored_next_page(bytes: &[u8], page: u64) -> Option<u64> {
    verify_log_page(bytes, PageKind::Marker, page)
        .ok()
        .map(|kh| MarkerPageHeader::decode(&kh).next_page)
        .or_else(|| {
            bytes
                .get(16..24)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
        })
}
