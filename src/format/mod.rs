//! On-disk structures: byte layouts, encoding, decoding and checksums.
//!
//! Each structure lives in its own file and follows its table in `format-spec/`.
//! Decoding untrusted bytes returns an error and never panics. Multi-byte integers
//! are little-endian `zerocopy` types; nothing here depends on the host's byte order.

mod capsule;
mod catalog;
mod header;
mod marker;
mod page;
mod proof;
#[cfg(test)]
pub(crate) mod spec_table;
mod version_list;

/// A capsule's writes: per table, each key's newest value or tombstone.
pub use crate::types::{TableWrites, WriteSet};
pub use capsule::{
    CAPSULE_HEADER_LEN, CAPSULE_MAGIC, Capsule, CapsuleFault, EncodedCapsule, capsule_total_len,
    decode_capsule, encode_capsule,
};
pub(crate) use catalog::{check_table_name, decode_table_id};
pub(crate) use header::check_next_header;
pub use header::{HEADER_COPY_OFFSETS, HEADER_LEN, Header, HeaderFault, MAGIC};
pub use marker::{MARKER_LEN, Marker, MarkerPageHeader, marker_slot, slots_per_page};
pub use page::{
    LOG_PAGE_HEADER_LEN, PAGE_HEADER_LEN, PageKind, seal_page, verify_log_page, verify_sealed_page,
    write_log_page_header,
};
pub use proof::{PROOF_LEN, PROOF_MAGIC, Proof};
pub use version_list::{VersionList, decode_list, encode_list, find_in_list};

/// The newest format version this build reads and writes (`format-spec/README.md`,
/// "Version changes"). Version-1 files are read too, and upgraded by their first header
/// write.
pub const FORMAT_VERSION: u32 = 7;

/// Bytes at the start of the file reserved for the two header copies.
pub const HEADER_REGION_LEN: u64 = 8192;

/// Smallest allowed page size.
pub const PAGE_SIZE_MIN: u32 = 4096;

/// Largest allowed page size.
pub const PAGE_SIZE_MAX: u32 = 65536;

/// Default page size.
pub const PAGE_SIZE_DEFAULT: u32 = 4096;

/// Whether `page_size` is a power of two in `PAGE_SIZE_MIN..=PAGE_SIZE_MAX`.
pub fn page_size_valid(page_size: u32) -> bool {
    page_size.is_power_of_two() && (PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&page_size)
}

/// The first page number after the header region for a page size.
pub fn first_data_page(page_size: u32) -> u64 {
    HEADER_REGION_LEN.div_ceil(u64::from(page_size.max(1)))
}

/// CRC-32 (IEEE, as computed by `crc32fast`) of the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_crc32_ieee() {
        // The check value stated in format-spec/README.md.
        assert_eq!(checksum(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(checksum(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn first_data_page_per_size() {
        assert_eq!(first_data_page(4096), 2);
        assert_eq!(first_data_page(8192), 1);
        assert_eq!(first_data_page(65536), 1);
        assert!(page_size_valid(4096) && page_size_valid(65536));
        assert!(!page_size_valid(2048) && !page_size_valid(131072) && !page_size_valid(5000));
    }
}
