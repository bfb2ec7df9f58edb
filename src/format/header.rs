//! The double file header (`format-spec/header.md`).

use super::{checksum, first_data_page, page_size_valid};
use std::fmt;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The magic bytes at offset 0 of each header copy.
pub const MAGIC: [u8; 8] = *b"CAPSULDB";

/// Length of one header copy in bytes.
pub const HEADER_LEN: usize = 128;

/// Byte offsets of copy A and copy B.
pub const HEADER_COPY_OFFSETS: [u64; 2] = [0, 4096];

/// Bytes of the header covered by its checksum.
const CHECKSUM_OFFSET: usize = 124;

/// The header exactly as laid out on disk (see the spec table).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
struct RawHeader {
    magic: [u8; 8],
    read_version: U32,
    write_version: U32,
    page_size: U32,
    copy: U32,
    generation: U64,
    database_id: U64,
    page_count: U64,
    checkpoint_seq: U64,
    catalog_root: U64,
    freelist_root: U64,
    marker_start_page: U64,
    marker_chain_seed: U32,
    log_durable_seq: U64,
    reserved: [u8; 32],
    checksum: U32,
}

const _: () = assert!(size_of::<RawHeader>() == HEADER_LEN);

/// A decoded, validated header copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Oldest format version a reader must support.
    pub read_version: u32,
    /// Oldest format version a writer must support.
    pub write_version: u32,
    /// Bytes per page.
    pub page_size: u32,
    /// Incremented on every header write; the newest valid copy wins.
    pub generation: u64,
    /// Random at creation; never changes.
    pub database_id: u64,
    /// Pages accounted for by the checkpointed state.
    pub page_count: u64,
    /// Last commit sequence folded into the B-tree.
    pub checkpoint_seq: u64,
    /// Root of the catalog tree (0 = none).
    pub catalog_root: u64,
    /// First free-list page (0 = none).
    pub freelist_root: u64,
    /// First marker page after the checkpoint (never 0: a decoded header names a page at
    /// or past the first data page).
    pub marker_start_page: u64,
    /// Chain value the first marker after the checkpoint chains to.
    pub marker_chain_seed: u32,
    /// The durable bound: every marker at or below it was durable when this copy was
    /// written (`format-spec/log.md`, "Durable evidence"); `0` in version-1 files.
    pub log_durable_seq: u64,
}

/// Why a header copy is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderFault {
    /// Fewer than [`HEADER_LEN`] bytes were available.
    Short,
    /// The magic bytes do not match.
    BadMagic,
    /// The checksum does not match.
    BadChecksum {
        /// Stored value.
        stored: u32,
        /// Computed value.
        computed: u32,
    },
    /// The copy field does not name the slot the copy was read from.
    WrongCopy(u32),
    /// `read_version` is newer than this build reads: the copy is not damaged, the file
    /// needs a newer build.
    NewerVersion(u32),
    /// The page size is not a power of two in range.
    BadPageSize(u32),
    /// A reserved byte is not zero.
    ReservedNotZero,
    /// `page_count` does not cover the header region.
    BadPageCount(u64),
    /// `marker_start_page` is outside the data pages.
    BadMarkerStart(u64),
    /// `catalog_root` names a tree but `freelist_root` is `0`, which means "no checkpoint
    /// yet: every data page is free".
    TreeWithoutFreeList(u64),
    /// A field's value leaves no room to go on: a root page outside the data pages
    /// below `page_count`, a `generation` with no pin byte left, a `checkpoint_seq` in the
    /// upper half of the sequence space.
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

/// Largest `checkpoint_seq` a valid header holds: sequences above it are never reached
/// (`format-spec/header.md`, validation 10), so recovery's arithmetic on them cannot wrap.
pub const CHECKPOINT_SEQ_MAX: u64 = u64::MAX / 2;

impl fmt::Display for HeaderFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderFault::Short => write!(f, "header is cut short"),
            HeaderFault::BadMagic => write!(f, "magic bytes do not match"),
            HeaderFault::BadChecksum { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            HeaderFault::WrongCopy(c) => write!(f, "copy field {c} does not match its slot"),
            HeaderFault::NewerVersion(v) => {
                write!(
                    f,
                    "written by format version {v}, newer than this build reads"
                )
            }
            HeaderFault::BadPageSize(s) => write!(f, "page size {s} is not allowed"),
            HeaderFault::ReservedNotZero => write!(f, "reserved header bytes are not zero"),
            HeaderFault::BadPageCount(n) => write!(f, "page count {n} is too small"),
            HeaderFault::BadMarkerStart(p) => {
                write!(f, "marker stream start page {p} is outside the data pages")
            }
            HeaderFault::TreeWithoutFreeList(root) => {
                write!(f, "a tree at page {root} but no free list")
            }
            HeaderFault::OutOfRange { field, value } => {
                write!(f, "{field} {value} is out of range")
            }
        }
    }
}

/// Refuses a header about to be written with `generation` and `checkpoint_seq` that
/// [`Header::decode`] would refuse: a writer must never make a header its reader
/// rejects (a hostile file can start from a generation or sequence near the limit; no
/// real one ever comes close).
pub(crate) fn check_next_header(generation: u64, checkpoint_seq: u64) -> crate::error::Result<()> {
    if generation >= crate::storage::locks::PIN_GENERATION_MAX {
        return Err(crate::error::Error::corrupted(
            0,
            format!("the header's generation {generation} leaves no room for another header"),
        ));
    }
    if checkpoint_seq > CHECKPOINT_SEQ_MAX {
        return Err(crate::error::Error::corrupted(
            0,
            format!("checkpoint sequence {checkpoint_seq} is past the largest a header can hold"),
        ));
    }
    Ok(())
}

impl Header {
    /// Encodes the header as copy `copy` (0 = A, 1 = B), checksum included.
    pub fn encode(&self, copy: u32) -> [u8; HEADER_LEN] {
        let mut raw = RawHeader {
            magic: MAGIC,
            read_version: U32::new(self.read_version),
            write_version: U32::new(self.write_version),
            page_size: U32::new(self.page_size),
            copy: U32::new(copy),
            generation: U64::new(self.generation),
            database_id: U64::new(self.database_id),
            page_count: U64::new(self.page_count),
            checkpoint_seq: U64::new(self.checkpoint_seq),
            catalog_root: U64::new(self.catalog_root),
            freelist_root: U64::new(self.freelist_root),
            marker_start_page: U64::new(self.marker_start_page),
            marker_chain_seed: U32::new(self.marker_chain_seed),
            log_durable_seq: U64::new(self.log_durable_seq),
            reserved: [0; 32],
            checksum: U32::new(0),
        };
        let sum = checksum(&[raw.as_bytes().get(..CHECKSUM_OFFSET).unwrap_or(&[])]);
        raw.checksum = U32::new(sum);
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// Decodes and validates the copy read from slot `copy` (0 = A, 1 = B).
    /// `bytes` may be longer than a header; only the first [`HEADER_LEN`] are read.
    pub fn decode(bytes: &[u8], copy: u32) -> Result<Header, HeaderFault> {
        let head = bytes.get(..HEADER_LEN).ok_or(HeaderFault::Short)?;
        let raw = RawHeader::read_from_bytes(head).map_err(|_| HeaderFault::Short)?;
        if raw.magic != MAGIC {
            return Err(HeaderFault::BadMagic);
        }
        // Over the copy decoded, not `bytes` again: a live reader's `bytes` is the shared
        // mapping, which the writer may be overwriting; a checksum of a second read
        // could match fields the first read took from the older header.
        let computed = checksum(&[raw.as_bytes().get(..CHECKSUM_OFFSET).unwrap_or(&[])]);
        if raw.checksum.get() != computed {
            return Err(HeaderFault::BadChecksum {
                stored: raw.checksum.get(),
                computed,
            });
        }
        if raw.copy.get() != copy {
            return Err(HeaderFault::WrongCopy(raw.copy.get()));
        }
        // Written as it is (the checksum says so) by a format this build cannot read:
        // its other fields may mean what this build's checks refuse (a page size, a
        // field in the reserved bytes), which is no damage.
        let read_version = raw.read_version.get();
        if read_version > super::FORMAT_VERSION {
            return Err(HeaderFault::NewerVersion(read_version));
        }
        // No writer makes a version 0, nor a file needing less of its writers than of
        // its readers.
        if read_version == 0 {
            return Err(HeaderFault::OutOfRange {
                field: "read_version",
                value: 0,
            });
        }
        if raw.write_version.get() < read_version {
            return Err(HeaderFault::OutOfRange {
                field: "write_version",
                value: raw.write_version.get().into(),
            });
        }
        let page_size = raw.page_size.get();
        if !page_size_valid(page_size) {
            return Err(HeaderFault::BadPageSize(page_size));
        }
        if raw.reserved.iter().any(|&b| b != 0) {
            return Err(HeaderFault::ReservedNotZero);
        }
        let first = first_data_page(page_size);
        let page_count = raw.page_count.get();
        if page_count < first {
            return Err(HeaderFault::BadPageCount(page_count));
        }
        let marker_start = raw.marker_start_page.get();
        if marker_start < first || marker_start >= page_count {
            return Err(HeaderFault::BadMarkerStart(marker_start));
        }
        let catalog_root = raw.catalog_root.get();
        if catalog_root != 0 && raw.freelist_root.get() == 0 {
            return Err(HeaderFault::TreeWithoutFreeList(catalog_root));
        }
        for (field, root) in [
            ("catalog_root", catalog_root),
            ("freelist_root", raw.freelist_root.get()),
        ] {
            if root != 0 && (root < first || root >= page_count) {
                return Err(HeaderFault::OutOfRange { field, value: root });
            }
        }
        let generation = raw.generation.get();
        if generation >= crate::storage::locks::PIN_GENERATION_MAX {
            return Err(HeaderFault::OutOfRange {
                field: "generation",
                value: generation,
            });
        }
        let checkpoint_seq = raw.checkpoint_seq.get();
        if checkpoint_seq > CHECKPOINT_SEQ_MAX {
            return Err(HeaderFault::OutOfRange {
                field: "checkpoint_seq",
                value: checkpoint_seq,
            });
        }
        Ok(Header {
            read_version: raw.read_version.get(),
            write_version: raw.write_version.get(),
            page_size,
            generation: raw.generation.get(),
            database_id: raw.database_id.get(),
            page_count,
            checkpoint_seq: raw.checkpoint_seq.get(),
            catalog_root: raw.catalog_root.get(),
            freelist_root: raw.freelist_root.get(),
            marker_start_page: raw.marker_start_page.get(),
            marker_chain_seed: raw.marker_chain_seed.get(),
            log_durable_seq: raw.log_durable_seq.get(),
        })
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
        let spec = spec_table::rows(include_str!("../../format-spec/header.md"), "Layout");
        let code = [
            ("magic", offset_of!(RawHeader, magic), 8),
            ("read_version", offset_of!(RawHeader, read_version), 4),
            ("write_version", offset_of!(RawHeader, write_version), 4),
            ("page_size", offset_of!(RawHeader, page_size), 4),
            ("copy", offset_of!(RawHeader, copy), 4),
            ("generation", offset_of!(RawHeader, generation), 8),
            ("database_id", offset_of!(RawHeader, database_id), 8),
            ("page_count", offset_of!(RawHeader, page_count), 8),
            ("checkpoint_seq", offset_of!(RawHeader, checkpoint_seq), 8),
            ("catalog_root", offset_of!(RawHeader, catalog_root), 8),
            ("freelist_root", offset_of!(RawHeader, freelist_root), 8),
            (
                "marker_start_page",
                offset_of!(RawHeader, marker_start_page),
                8,
            ),
            (
                "marker_chain_seed",
                offset_of!(RawHeader, marker_chain_seed),
                4,
            ),
            ("log_durable_seq", offset_of!(RawHeader, log_durable_seq), 8),
            ("reserved", offset_of!(RawHeader, reserved), 32),
            ("checksum", offset_of!(RawHeader, checksum), 4),
        ];
        spec_table::assert_layout(&spec, &code);
        assert_eq!(CHECKSUM_OFFSET, offset_of!(RawHeader, checksum));
    }

    fn sample() -> Header {
        Header {
            read_version: 1,
            write_version: 1,
            page_size: 4096,
            generation: 7,
            database_id: 0xDEAD_BEEF,
            page_count: 10,
            checkpoint_seq: 3,
            catalog_root: 4,
            freelist_root: 6,
            marker_start_page: 5,
            marker_chain_seed: 99,
            log_durable_seq: 2,
        }
    }

    #[test]
    fn each_check_has_its_fault() {
        let good = sample().encode(0);
        assert_eq!(Header::decode(&good, 0), Ok(sample()));
        assert_eq!(Header::decode(&good, 1), Err(HeaderFault::WrongCopy(0)));
        assert_eq!(Header::decode(&good[..100], 0), Err(HeaderFault::Short));
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(Header::decode(&bad, 0), Err(HeaderFault::BadMagic));
        let mut bad = good;
        bad[30] ^= 1;
        assert!(matches!(
            Header::decode(&bad, 0),
            Err(HeaderFault::BadChecksum { .. })
        ));
        let h = Header {
            page_size: 5000,
            ..sample()
        };
        assert_eq!(
            Header::decode(&h.encode(0), 0),
            Err(HeaderFault::BadPageSize(5000))
        );
        let h = Header {
            page_count: 1,
            ..sample()
        };
        assert_eq!(
            Header::decode(&h.encode(0), 0),
            Err(HeaderFault::BadPageCount(1))
        );
        // A non-zero reserved byte with a checksum that covers it.
        let mut bad = good;
        bad[100] = 1;
        let sum = checksum(&[&bad[..CHECKSUM_OFFSET]]);
        bad[CHECKSUM_OFFSET..].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(Header::decode(&bad, 0), Err(HeaderFault::ReservedNotZero));
        let h = Header {
            freelist_root: 0,
            ..sample()
        };
        assert_eq!(
            Header::decode(&h.encode(0), 0),
            Err(HeaderFault::TreeWithoutFreeList(4))
        );
        for (h, field, value) in [
            (
                Header {
                    read_version: 0,
                    write_version: 0,
                    ..sample()
                },
                "read_version",
                0,
            ),
            (
                Header {
                    read_version: 3,
                    write_version: 2,
                    ..sample()
                },
                "write_version",
                2,
            ),
            (
                Header {
                    catalog_root: 1,
                    ..sample()
                },
                "catalog_root",
                1,
            ),
            (
                Header {
                    catalog_root: 10,
                    ..sample()
                },
                "catalog_root",
                10,
            ),
            (
                Header {
                    freelist_root: 12,
                    ..sample()
                },
                "freelist_root",
                12,
            ),
            (
                Header {
                    generation: crate::storage::locks::PIN_GENERATION_MAX,
                    ..sample()
                },
                "generation",
                crate::storage::locks::PIN_GENERATION_MAX,
            ),
            (
                Header {
                    checkpoint_seq: CHECKPOINT_SEQ_MAX + 1,
                    ..sample()
                },
                "checkpoint_seq",
                CHECKPOINT_SEQ_MAX + 1,
            ),
        ] {
            assert_eq!(
                Header::decode(&h.encode(0), 0),
                Err(HeaderFault::OutOfRange { field, value })
            );
        }
        // No checkpoint yet: neither a tree nor a free list.
        let h = Header {
            catalog_root: 0,
            freelist_root: 0,
            ..sample()
        };
        assert_eq!(Header::decode(&h.encode(0), 0), Ok(h));
    }

    fn any_header() -> impl Strategy<Value = Header> {
        (
            any::<(u32, u32, u64, u64)>(),
            12u32..=16,
            any::<(u64, u64, u64, u64, u64, u32)>(),
        )
            .prop_map(
                |((rv, wv, generation, id), shift, (pc, cs, cr, fr, ms, seed))| {
                    let page_size = 1u32 << shift;
                    let first = crate::format::first_data_page(page_size);
                    let page_count = pc.max(first + 1);
                    // A root is 0 or a data page below `page_count`; a tree always comes
                    // with a free list.
                    let root = |r: u64| first + r % (page_count - first);
                    let catalog_root = if cr % 4 == 0 { 0 } else { root(cr) };
                    let freelist_root = if catalog_root == 0 && fr % 4 == 0 {
                        0
                    } else {
                        root(fr)
                    };
                    // A newer read version is refused (`HeaderFault::NewerVersion`), and
                    // so are version 0 and a write version below the read version.
                    let read_version = 1 + rv % super::super::FORMAT_VERSION;
                    Header {
                        read_version,
                        write_version: wv.max(read_version),
                        page_size,
                        generation: generation % crate::storage::locks::PIN_GENERATION_MAX,
                        database_id: id,
                        page_count,
                        checkpoint_seq: cs % (CHECKPOINT_SEQ_MAX + 1),
                        catalog_root,
                        freelist_root,
                        marker_start_page: first + ms % (page_count - first),
                        marker_chain_seed: seed,
                        log_durable_seq: cs.rotate_left(7),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(h in any_header(), copy in 0u32..2) {
            prop_assert_eq!(Header::decode(&h.encode(copy), copy), Ok(h));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), copy in 0u32..2) {
            let _ = Header::decode(&bytes, copy);
        }

        #[test]
        fn any_single_bit_flip_is_caught(h in any_header(), bit in 0usize..(HEADER_LEN * 8)) {
            let mut bytes = h.encode(0);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Header::decode(&bytes, 0).is_err());
        }
    }
}
