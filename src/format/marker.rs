//! `CommitMarker` records and marker pages (`format-spec/log.md`).

use super::checksum;
use super::page::LOG_PAGE_HEADER_LEN;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Length of a marker record (one slot).
pub const MARKER_LEN: usize = 32;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
struct RawMarker {
    seq: U64,
    proof_offset: U64,
    proof_checksum: U32,
    reserved: [u8; 8],
    chain: U32,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
struct RawMarkerPageHeader {
    next_page: U64,
    first_seq: U64,
}

const _: () = assert!(size_of::<RawMarker>() == MARKER_LEN);
const _: () = assert!(size_of::<RawMarkerPageHeader>() == 16);

/// Marker slots in one page.
pub fn slots_per_page(page_size: u32) -> u64 {
    (u64::from(page_size) - LOG_PAGE_HEADER_LEN as u64) / MARKER_LEN as u64
}

/// Slot `slot`'s record in a marker page (`page`: the page's bytes, or the file from the
/// page's start on): `None` past the bytes given.
pub fn marker_slot(page: &[u8], slot: u64) -> Option<&[u8]> {
    let at = usize::try_from(slot)
        .ok()?
        .checked_mul(MARKER_LEN)?
        .checked_add(LOG_PAGE_HEADER_LEN)?;
    page.get(at..at.checked_add(MARKER_LEN)?)
}

/// A commit marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The commit sequence number.
    pub seq: u64,
    /// File offset of the commit's proof.
    pub proof_offset: u64,
    /// The proof's checksum.
    pub proof_checksum: u32,
}

impl Marker {
    /// Encodes the marker chained to `prev_chain`; returns the bytes and the new chain.
    pub fn encode(&self, prev_chain: u32) -> ([u8; MARKER_LEN], u32) {
        let mut raw = RawMarker {
            seq: U64::new(self.seq),
            proof_offset: U64::new(self.proof_offset),
            proof_checksum: U32::new(self.proof_checksum),
            reserved: [0; 8],
            chain: U32::new(0),
        };
        let chain = checksum(&[
            &prev_chain.to_le_bytes(),
            raw.as_bytes().get(..28).unwrap_or(&[]),
        ]);
        raw.chain = U32::new(chain);
        let mut out = [0u8; MARKER_LEN];
        out.copy_from_slice(raw.as_bytes());
        (out, chain)
    }

    /// The chain value a marker record stores (the one the next marker chains to),
    /// not verified.
    pub fn stored_chain(bytes: &[u8]) -> Option<u32> {
        let raw = RawMarker::read_from_bytes(bytes.get(..MARKER_LEN)?).ok()?;
        Some(raw.chain.get())
    }

    /// Decodes the slot expected to hold `expected_seq`, chained to `prev_chain`.
    /// `None` means the stream ends here (empty, torn, stale or foreign record).
    pub fn decode(bytes: &[u8], expected_seq: u64, prev_chain: u32) -> Option<(Marker, u32)> {
        let b = bytes.get(..MARKER_LEN)?;
        let raw = RawMarker::read_from_bytes(b).ok()?;
        if raw.seq.get() != expected_seq || raw.reserved != [0; 8] {
            return None;
        }
        // Checked over the copy the fields came from: a live reader's mapping may be
        // written meanwhile, and a second read could pass with fields from the first.
        let chain = checksum(&[&prev_chain.to_le_bytes(), raw.as_bytes().get(..28)?]);
        if chain != raw.chain.get() {
            return None;
        }
        Some((
            Marker {
                seq: expected_seq,
                proof_offset: raw.proof_offset.get(),
                proof_checksum: raw.proof_checksum.get(),
            },
            chain,
        ))
    }
}

/// The kind header of a marker page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkerPageHeader {
    /// The page the stream continues on.
    pub next_page: u64,
    /// Sequence of slot 0.
    pub first_seq: u64,
}

impl MarkerPageHeader {
    /// The 16-byte kind header.
    pub fn encode(&self) -> [u8; 16] {
        let raw = RawMarkerPageHeader {
            next_page: U64::new(self.next_page),
            first_seq: U64::new(self.first_seq),
        };
        let mut out = [0u8; 16];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// Decodes a kind header.
    pub fn decode(kind_header: &[u8; 16]) -> MarkerPageHeader {
        let raw =
            RawMarkerPageHeader::read_from_bytes(&kind_header[..]).unwrap_or(RawMarkerPageHeader {
                next_page: U64::new(0),
                first_seq: U64::new(0),
            });
        MarkerPageHeader {
            next_page: raw.next_page.get(),
            first_seq: raw.first_seq.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::spec_table;
    use proptest::prelude::*;
    use std::mem::offset_of;

    #[test]
    fn offsets_match_spec() {
        let md = include_str!("../../format-spec/log.md");
        let spec = spec_table::rows(md, "Marker record");
        let code = [
            ("seq", offset_of!(RawMarker, seq), 8),
            ("proof_offset", offset_of!(RawMarker, proof_offset), 8),
            ("proof_checksum", offset_of!(RawMarker, proof_checksum), 4),
            ("reserved", offset_of!(RawMarker, reserved), 8),
            ("chain", offset_of!(RawMarker, chain), 4),
        ];
        spec_table::assert_layout(&spec, &code);
        let spec = spec_table::rows(md, "Marker pages and the marker stream");
        let code = [
            (
                "next_page",
                16 + offset_of!(RawMarkerPageHeader, next_page),
                8,
            ),
            (
                "first_seq",
                16 + offset_of!(RawMarkerPageHeader, first_seq),
                8,
            ),
        ];
        spec_table::assert_layout(&spec, &code);
        assert_eq!(slots_per_page(4096), 127);
    }

    #[test]
    fn chain_rejects_stale_and_reordered_records() {
        let m1 = Marker {
            seq: 1,
            proof_offset: 100,
            proof_checksum: 7,
        };
        let m2 = Marker {
            seq: 2,
            proof_offset: 200,
            proof_checksum: 8,
        };
        let (b1, c1) = m1.encode(5);
        let (b2, c2) = m2.encode(c1);
        assert_eq!(Marker::decode(&b1, 1, 5), Some((m1, c1)));
        assert_eq!(Marker::decode(&b2, 2, c1), Some((m2, c2)));
        assert_eq!(Marker::decode(&b2, 2, 6), None, "wrong predecessor");
        assert_eq!(Marker::decode(&b1, 2, 5), None, "wrong slot");
        assert_eq!(Marker::decode(&[0u8; 32], 1, 5), None, "empty slot");
    }

    proptest! {
        #[test]
        fn round_trip(seq in any::<u64>(), off in any::<u64>(), pc in any::<u32>(), prev in any::<u32>()) {
            let m = Marker { seq, proof_offset: off, proof_checksum: pc };
            let (b, c) = m.encode(prev);
            prop_assert_eq!(Marker::decode(&b, seq, prev), Some((m, c)));
            let h = MarkerPageHeader { next_page: off, first_seq: seq };
            prop_assert_eq!(MarkerPageHeader::decode(&h.encode()), h);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), seq in any::<u64>(), prev in any::<u32>()) {
            let _ = Marker::decode(&bytes, seq, prev);
        }

        #[test]
        fn any_bit_flip_is_caught(seq in any::<u64>(), bit in 0usize..MARKER_LEN * 8) {
            let m = Marker { seq, proof_offset: 9, proof_checksum: 9 };
            let (mut b, _) = m.encode(3);
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Marker::decode(&b, seq, 3).is_none());
        }
    }
}
