//! The `decode` harness: the first byte picks a mode (`DECODE_*`). Modes 0-6 and 10 run
//! every public decoder of `capsuledb::format` on the bytes, raw and with the checksum
//! fixed up so the structural checks behind it are reached; modes 7-9 are in
//! [`decode_in_db`](super::decode_in_db).

use super::decode_in_db::{capsule_in_database, page_in_database};
use super::input::{Input, u64_at};
use capsuledb::format::{
    CAPSULE_HEADER_LEN, HEADER_LEN, Header, LOG_PAGE_HEADER_LEN, MARKER_LEN, Marker,
    MarkerPageHeader, PROOF_LEN, PageKind, Proof, capsule_total_len, checksum, decode_capsule,
    decode_list, encode_capsule, encode_list, find_in_list, first_data_page, verify_log_page,
    verify_sealed_page,
};

/// Modes of [`fuzz_decode`], chosen by the first input byte modulo this.
pub const DECODE_MODES: u8 = 11;
/// Mode: `Header::decode` on the bytes as they are.
pub const DECODE_HEADER: u8 = 0;
/// Mode: `Header::decode` after fixing the checksum field.
pub const DECODE_HEADER_FIXED: u8 = 1;
/// Mode: `verify_sealed_page` / `verify_log_page` for every kind, bytes as they are.
pub const DECODE_PAGE: u8 = 2;
/// Mode: the same with the page checksum fixed up.
pub const DECODE_PAGE_FIXED: u8 = 3;
/// Mode: `Proof::decode` (flag byte: fix the checksum first).
pub const DECODE_PROOF: u8 = 4;
/// Mode: `Marker::decode` (flag byte: fix the chain first).
pub const DECODE_MARKER: u8 = 5;
/// Mode: `decode_capsule` (flag byte: fix length and checksum first).
pub const DECODE_CAPSULE: u8 = 6;
/// Mode: a tree, overflow or free-list page of a real database replaced, checksum fixed.
pub const DECODE_TREE_IN_DB: u8 = 7;
/// Mode: a capsule, proof or marker page of a real database replaced, header fixed.
pub const DECODE_LOG_IN_DB: u8 = 8;
/// Mode: a committed capsule in the log of a real database replaced, with its
/// checksum, its proof and every marker from its own on fixed to match.
pub const DECODE_CAPSULE_IN_DB: u8 = 9;
/// Mode: a history version list (`decode_list`, and `find_in_list` at the sequence the
/// first 8 bytes give, on the rest).
pub const DECODE_VERSION_LIST: u8 = 10;

/// Decodes arbitrary bytes with the decoder the first byte names (see `DECODE_*`):
/// never a panic; whatever decodes re-encodes to the same bytes; a page whose header
/// fields and checksum are right verifies.
pub fn fuzz_decode(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % DECODE_MODES {
        DECODE_HEADER => decode_header(rest, false),
        DECODE_HEADER_FIXED => decode_header(rest, true),
        DECODE_PAGE => decode_page(rest, false),
        DECODE_PAGE_FIXED => decode_page(rest, true),
        DECODE_PROOF => decode_proof(rest),
        DECODE_MARKER => decode_marker(rest),
        DECODE_CAPSULE => decode_capsule_bytes(rest),
        DECODE_TREE_IN_DB => page_in_database(rest, true),
        DECODE_LOG_IN_DB => page_in_database(rest, false),
        DECODE_CAPSULE_IN_DB => capsule_in_database(rest),
        _ => decode_version_list(rest),
    }
}

/// A list that decodes answers every read like its decoded form and, when indexed,
/// re-encodes to the same bytes; one that does not decode never panics a read either.
fn decode_version_list(rest: &[u8]) {
    let seq = u64_at(rest, 0);
    let bytes = rest.get(8..).unwrap_or(&[]);
    let found = find_in_list(bytes, seq);
    let Ok(list) = decode_list(bytes) else {
        return;
    };
    let want = list
        .iter()
        .find(|(s, _)| *s <= seq)
        .map(|(_, v)| v.as_deref());
    assert_eq!(
        found.ok(),
        Some(want),
        "find_in_list disagrees with decode_list"
    );
    if bytes.get(..4) == Some(&[0, 0, 0, 0]) {
        assert_eq!(
            encode_list(&list).ok().as_deref(),
            Some(bytes),
            "a decoded list re-encodes differently"
        );
    }
}

fn decode_header(rest: &[u8], fix: bool) {
    let mut bytes = rest.to_vec();
    if fix {
        bytes.resize(bytes.len().max(HEADER_LEN), 0);
        let sum = checksum(&[&bytes[..HEADER_LEN - 4]]);
        bytes[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
    }
    for copy in 0..2 {
        if let Ok(h) = Header::decode(&bytes, copy) {
            assert_eq!(
                &h.encode(copy)[..],
                &bytes[..HEADER_LEN],
                "a decoded header re-encodes differently"
            );
            assert!(h.marker_start_page < h.page_count);
            assert!(h.page_count >= first_data_page(h.page_size));
        }
    }
}

pub(super) const SEALED_KINDS: [PageKind; 6] = [
    PageKind::Branch,
    PageKind::Leaf,
    PageKind::CompactLeaf,
    PageKind::UniformLeaf,
    PageKind::Overflow,
    PageKind::FreeList,
];
pub(super) const LOG_KINDS: [PageKind; 3] = [PageKind::Capsule, PageKind::Proof, PageKind::Marker];

fn decode_page(rest: &[u8], fix: bool) {
    let mut page = rest.to_vec();
    let number = u64_at(&page, 8);
    if !fix {
        for kind in SEALED_KINDS.into_iter().chain(LOG_KINDS) {
            let _ = verify_sealed_page(&page, kind, number);
            let _ = verify_sealed_page(&page, kind, number ^ 1);
            if let Ok(kh) = verify_log_page(&page, kind, number) {
                let h = MarkerPageHeader::decode(&kh);
                assert_eq!(h.encode(), kh);
            }
        }
        return;
    }
    if page.len() < LOG_PAGE_HEADER_LEN {
        page.resize(LOG_PAGE_HEADER_LEN, 0);
    }
    // The page number as the padded page holds it (a short input has fewer than 16 bytes).
    let number = u64_at(&page, 8);
    let header_ok = |p: &[u8], kind: PageKind| p[4] == kind as u8 && p[5] == 1 && p[6..8] == [0, 0];
    // Sealed: checksum over the whole buffer.
    let sum = checksum(&[&page[4..]]);
    page[..4].copy_from_slice(&sum.to_le_bytes());
    for kind in SEALED_KINDS {
        let r = verify_sealed_page(&page, kind, number);
        assert_eq!(
            r.is_ok(),
            header_ok(&page, kind),
            "sealed {kind:?} page with a fixed checksum: {r:?}"
        );
        assert!(verify_sealed_page(&page, kind, number.wrapping_add(1)).is_err());
    }
    // Log: checksum over the fixed header only.
    let sum = checksum(&[&page[4..LOG_PAGE_HEADER_LEN]]);
    page[..4].copy_from_slice(&sum.to_le_bytes());
    for kind in LOG_KINDS {
        let r = verify_log_page(&page, kind, number);
        assert_eq!(
            r.is_ok(),
            header_ok(&page, kind),
            "{kind:?} page with a fixed header checksum: {r:?}"
        );
        if let Ok(kh) = r {
            assert_eq!(&kh[..], &page[16..32]);
        }
    }
}

fn decode_proof(rest: &[u8]) {
    let Some((&flag, body)) = rest.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    if flag & 1 == 1 {
        bytes.resize(bytes.len().max(PROOF_LEN), 0);
        let sum = checksum(&[&bytes[4..PROOF_LEN]]);
        bytes[..4].copy_from_slice(&sum.to_le_bytes());
    }
    if let Ok((p, sum)) = Proof::decode(&bytes) {
        let enc = p.encode();
        assert_eq!(
            &enc[..],
            &bytes[..PROOF_LEN],
            "a proof re-encodes differently"
        );
        assert_eq!(Proof::checksum_of(&enc), sum);
    }
}

fn decode_marker(rest: &[u8]) {
    let mut input = Input::new(rest);
    let flag = input.u8();
    let prev = u32::from_le_bytes([input.u8(), input.u8(), input.u8(), input.u8()]);
    let mut bytes = rest.get(5..).unwrap_or(&[]).to_vec();
    if flag & 1 == 1 {
        bytes.resize(bytes.len().max(MARKER_LEN), 0);
        let chain = checksum(&[&prev.to_le_bytes(), &bytes[..28]]);
        bytes[28..32].copy_from_slice(&chain.to_le_bytes());
    }
    let seq = u64_at(&bytes, 0);
    for expected in [seq, seq.wrapping_add(1)] {
        if let Some((m, chain)) = Marker::decode(&bytes, expected, prev) {
            assert_eq!(m.seq, expected);
            let (enc, c) = m.encode(prev);
            assert_eq!(
                &enc[..],
                &bytes[..MARKER_LEN],
                "a marker re-encodes differently"
            );
            assert_eq!(c, chain);
        }
    }
    if let Some(page_header) = bytes.get(..16) {
        let mut kh = [0u8; 16];
        kh.copy_from_slice(page_header);
        assert_eq!(MarkerPageHeader::decode(&kh).encode(), kh);
    }
}

fn decode_capsule_bytes(rest: &[u8]) {
    let Some((&flag, body)) = rest.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    if flag & 1 == 1 {
        bytes.resize(bytes.len().max(CAPSULE_HEADER_LEN), 0);
        if flag & 2 == 0 {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            bytes[8..12].copy_from_slice(&len.to_le_bytes());
        }
        let sum = checksum(&[&bytes[4..]]);
        bytes[..4].copy_from_slice(&sum.to_le_bytes());
    }
    let _ = capsule_total_len(&bytes);
    if let Ok(c) = decode_capsule(&bytes) {
        // What decodes encodes again, and that decodes to the same write set.
        let enc = encode_capsule(c.snapshot, &c.writes, &c.dropped_tables)
            .expect("a decoded capsule re-encodes");
        let again = decode_capsule(&enc.bytes).expect("a re-encoded capsule decodes");
        assert_eq!(again.snapshot, c.snapshot);
        assert_eq!(again.writes, c.writes);
        assert_eq!(again.dropped_tables, c.dropped_tables);
        assert_eq!(again.write_digest, enc.write_digest);
        assert!(
            enc.bytes.len() <= bytes.len(),
            "re-encoding grew the capsule"
        );
    }
}
