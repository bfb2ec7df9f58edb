//! The common page header (`format-spec/page-header.md`).

use super::checksum;
use crate::error::{Error, Result};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Length of the common page header.
pub const PAGE_HEADER_LEN: usize = 16;

/// Length of a log page's fixed header (common header plus kind header), the bytes its
/// checksum covers from offset 4.
pub const LOG_PAGE_HEADER_LEN: usize = 32;

/// Layout version of every page kind in format version 1.
const PAGE_VERSION: u8 = 1;

/// The kind of a data page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PageKind {
    /// Capsule records (a transaction's write set).
    Capsule = 1,
    /// `CommitProof` records.
    Proof = 2,
    /// `CommitMarker` records.
    Marker = 3,
    /// B-tree branch.
    Branch = 4,
    /// B-tree leaf of version 3 and earlier (whole keys in its cells; still read).
    Leaf = 5,
    /// Overflow value chain.
    Overflow = 6,
    /// Persisted free list.
    FreeList = 7,
    /// B-tree leaf whose keys share one 8-byte prefix, stored once (written since
    /// version 4).
    CompactLeaf = 8,
    /// B-tree leaf of cells of one size, without cell heads or offsets (written since
    /// version 7).
    UniformLeaf = 9,
}

impl PageKind {
    /// The kind for a stored byte, if it names one.
    pub fn from_u8(b: u8) -> Option<PageKind> {
        Some(match b {
            1 => PageKind::Capsule,
            2 => PageKind::Proof,
            3 => PageKind::Marker,
            4 => PageKind::Branch,
            5 => PageKind::Leaf,
            6 => PageKind::Overflow,
            7 => PageKind::FreeList,
            8 => PageKind::CompactLeaf,
            9 => PageKind::UniformLeaf,
            _ => return None,
        })
    }

    /// Whether pages of this kind are sealed (checksum over the whole page).
    pub fn is_sealed(self) -> bool {
        !matches!(self, PageKind::Capsule | PageKind::Proof | PageKind::Marker)
    }
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
struct RawPageHeader {
    checksum: U32,
    kind: u8,
    version: u8,
    reserved: [u8; 2],
    page_number: U64,
}

const _: () = assert!(size_of::<RawPageHeader>() == PAGE_HEADER_LEN);

fn put_header(page: &mut [u8], kind: PageKind, page_number: u64) -> Result<()> {
    let raw = RawPageHeader {
        checksum: U32::new(0),
        kind: kind as u8,
        version: PAGE_VERSION,
        reserved: [0; 2],
        page_number: U64::new(page_number),
    };
    page.get_mut(..PAGE_HEADER_LEN)
        .ok_or_else(|| Error::corrupted(page_number, "page buffer shorter than its header"))?
        .copy_from_slice(raw.as_bytes());
    Ok(())
}

fn set_checksum(page: &mut [u8], covered_end: usize, page_number: u64) -> Result<()> {
    let sum = checksum(&[page
        .get(4..covered_end)
        .ok_or_else(|| Error::corrupted(page_number, "page buffer too short"))?]);
    if let Some(field) = page.get_mut(..4) {
        field.copy_from_slice(&sum.to_le_bytes());
    }
    Ok(())
}

/// Writes the common header of a sealed page into `page` (a whole page buffer) and
/// its checksum over bytes `4..page.len()`. Call last, after the body is filled in.
pub fn seal_page(page: &mut [u8], kind: PageKind, page_number: u64) -> Result<()> {
    assert!(kind.is_sealed(), "seal_page on a log page kind");
    put_header(page, kind, page_number)?;
    let len = page.len();
    set_checksum(page, len, page_number)
}

/// Writes the 32-byte fixed header of a log page: the common header followed by the
/// 16-byte `kind_header`, with the checksum over bytes `4..32`.
pub fn write_log_page_header(
    buf: &mut [u8],
    kind: PageKind,
    page_number: u64,
    kind_header: &[u8; 16],
) -> Result<()> {
    assert!(!kind.is_sealed(), "write_log_page_header on a sealed kind");
    put_header(buf, kind, page_number)?;
    buf.get_mut(PAGE_HEADER_LEN..LOG_PAGE_HEADER_LEN)
        .ok_or_else(|| Error::corrupted(page_number, "page buffer shorter than its header"))?
        .copy_from_slice(kind_header);
    set_checksum(buf, LOG_PAGE_HEADER_LEN, page_number)
}

fn verify_common(page: &[u8], kind: PageKind, page_number: u64, covered_end: usize) -> Result<()> {
    let fail = |what: String| Err(Error::corrupted(page_number, what));
    let Some(head) = page.get(..PAGE_HEADER_LEN) else {
        return fail("page is cut short".into());
    };
    let Ok(raw) = RawPageHeader::read_from_bytes(head) else {
        return fail("page is cut short".into());
    };
    if raw.kind != kind as u8 {
        return fail(match PageKind::from_u8(raw.kind) {
            Some(found) => format!("expected a {kind:?} page, found a {found:?} page"),
            None => format!("expected a {kind:?} page, found kind byte {}", raw.kind),
        });
    }
    if raw.version != PAGE_VERSION {
        return fail(format!("unsupported {kind:?} page version {}", raw.version));
    }
    if raw.reserved != [0, 0] {
        return fail("reserved page header bytes are not zero".into());
    }
    if raw.page_number.get() != page_number {
        return fail(format!(
            "misdirected write: page header says page {}",
            raw.page_number.get()
        ));
    }
    let Some(covered) = page.get(4..covered_end) else {
        return fail("page is cut short".into());
    };
    let computed = checksum(&[covered]);
    if raw.checksum.get() != computed {
        return fail(format!(
            "{kind:?} page checksum mismatch (stored {:#010x}, computed {computed:#010x})",
            raw.checksum.get()
        ));
    }
    Ok(())
}

/// Verifies a sealed page (the whole of `page`) read at `page_number` as `kind`.
pub fn verify_sealed_page(page: &[u8], kind: PageKind, page_number: u64) -> Result<()> {
    verify_common(page, kind, page_number, page.len())
}

/// Verifies a log page's fixed header and returns its 16-byte kind header.
pub fn verify_log_page(page: &[u8], kind: PageKind, page_number: u64) -> Result<[u8; 16]> {
    // Checked over a copy: a live reader reads the header of a marker page the writer
    // may be rewriting, and what it returns must be the bytes the checksum covered.
    let mut head = [0u8; LOG_PAGE_HEADER_LEN];
    head.copy_from_slice(
        page.get(..LOG_PAGE_HEADER_LEN)
            .ok_or_else(|| Error::corrupted(page_number, "page is cut short"))?,
    );
    verify_common(&head, kind, page_number, LOG_PAGE_HEADER_LEN)?;
    let mut out = [0u8; 16];
    out.copy_from_slice(&head[PAGE_HEADER_LEN..LOG_PAGE_HEADER_LEN]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::spec_table;
    use proptest::prelude::*;
    use std::mem::offset_of;

    #[test]
    fn offsets_match_spec() {
        let spec = spec_table::rows(include_str!("../../format-spec/page-header.md"), "Layout");
        let code = [
            ("checksum", offset_of!(RawPageHeader, checksum), 4),
            ("kind", offset_of!(RawPageHeader, kind), 1),
            ("version", offset_of!(RawPageHeader, version), 1),
            ("reserved", offset_of!(RawPageHeader, reserved), 2),
            ("page_number", offset_of!(RawPageHeader, page_number), 8),
        ];
        spec_table::assert_layout(&spec, &code);
    }

    #[test]
    fn kinds_match_spec_numbers() {
        for b in 1..=9u8 {
            assert_eq!(PageKind::from_u8(b).map(|k| k as u8), Some(b));
        }
        assert_eq!(PageKind::from_u8(0), None);
        assert_eq!(PageKind::from_u8(10), None);
    }

    #[test]
    fn sealed_page_detects_kind_number_and_flips() {
        let mut page = vec![0u8; 4096];
        page[100] = 42;
        seal_page(&mut page, PageKind::Leaf, 9).unwrap();
        verify_sealed_page(&page, PageKind::Leaf, 9).unwrap();
        let err = verify_sealed_page(&page, PageKind::Branch, 9)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("page 9") && err.contains("found a Leaf"),
            "{err}"
        );
        let err = verify_sealed_page(&page, PageKind::Leaf, 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("misdirected"), "{err}");
        page[4000] ^= 0x10;
        let err = verify_sealed_page(&page, PageKind::Leaf, 9)
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum"), "{err}");
        let zero = vec![0u8; 4096];
        assert!(verify_sealed_page(&zero, PageKind::Leaf, 9).is_err());
    }

    #[test]
    fn log_page_header_covers_only_its_header() {
        let mut page = vec![0u8; 4096];
        let kh = [3u8; 16];
        write_log_page_header(&mut page, PageKind::Marker, 5, &kh).unwrap();
        page[1000] = 77; // a record appended later does not disturb the header
        assert_eq!(verify_log_page(&page, PageKind::Marker, 5).unwrap(), kh);
        page[20] ^= 1;
        assert!(verify_log_page(&page, PageKind::Marker, 5).is_err());
    }

    proptest! {
        #[test]
        fn sealed_round_trip(body in proptest::collection::vec(any::<u8>(), 4096 - 16), n in any::<u64>(), k in 4u8..=9) {
            let kind = PageKind::from_u8(k).unwrap();
            let mut page = vec![0u8; 16];
            page.extend_from_slice(&body);
            seal_page(&mut page, kind, n).unwrap();
            prop_assert!(verify_sealed_page(&page, kind, n).is_ok());
            prop_assert_eq!(&page[16..], &body[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), n in any::<u64>(), k in 1u8..=7) {
            let kind = PageKind::from_u8(k).unwrap();
            let _ = verify_sealed_page(&bytes, kind, n);
            let _ = verify_log_page(&bytes, kind, n);
        }
    }
}
