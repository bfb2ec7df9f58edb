//! Overflow runs and free-list runs: a header page followed by continuation pages,
//! one checksum over the whole run (`format-spec/btree.md`).

use crate::error::{Error, Result};
use crate::format::{LOG_PAGE_HEADER_LEN, PageKind, checksum};

/// Where a run's header fields sit in its first page (`format-spec/btree.md`, "Overflow
/// run"): the pages in the run, an overflow value's length, a free list's entry count.
const RUN_PAGES_AT: usize = 16;
const VALUE_LEN_AT: usize = 20;
const ENTRY_COUNT_AT: usize = 24;

/// Pages needed for a run carrying `payload` bytes.
pub fn run_pages(page_size: u32, payload: usize) -> u64 {
    ((LOG_PAGE_HEADER_LEN + payload) as u64).div_ceil(u64::from(page_size))
}

/// Builds the bytes of a run of `kind` at `page` carrying `payload`.
pub fn encode_run(
    kind: PageKind,
    page: u64,
    page_size: u32,
    payload: &[u8],
    value_len: u32,
    entry_count: u64,
) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_run_into(
        &mut buf,
        kind,
        page,
        page_size,
        payload,
        value_len,
        entry_count,
    );
    buf
}

/// Appends the bytes of [`encode_run`] to `buf`, so a writer of many runs encodes them
/// straight into its write buffer: no allocation and no zeroing of the payload's bytes per
/// run.
#[expect(
    clippy::indexing_slicing,
    reason = "the run's bytes are appended before they are indexed"
)]
pub fn encode_run_into(
    buf: &mut Vec<u8>,
    kind: PageKind,
    page: u64,
    page_size: u32,
    payload: &[u8],
    value_len: u32,
    entry_count: u64,
) {
    let pages = run_pages(page_size, payload.len());
    let len = (pages * u64::from(page_size)) as usize;
    let start = buf.len();
    buf.reserve(len);
    buf.extend_from_slice(&[0u8; LOG_PAGE_HEADER_LEN]);
    buf.extend_from_slice(payload);
    buf.resize(start + len, 0);
    let run = &mut buf[start..];
    run[4] = kind as u8;
    run[5] = 1;
    run[8..16].copy_from_slice(&page.to_le_bytes());
    run[RUN_PAGES_AT..VALUE_LEN_AT].copy_from_slice(&(pages as u32).to_le_bytes());
    run[VALUE_LEN_AT..ENTRY_COUNT_AT].copy_from_slice(&value_len.to_le_bytes());
    run[ENTRY_COUNT_AT..LOG_PAGE_HEADER_LEN].copy_from_slice(&entry_count.to_le_bytes());
    let sum = checksum(&[&run[4..]]);
    run[..4].copy_from_slice(&sum.to_le_bytes());
}

/// Pages of an overflow extent holding a value of `len` bytes (`format-spec/btree.md`,
/// "Overflow extent").
pub fn extent_pages(page_size: u32, len: usize) -> u64 {
    (len as u64).div_ceil(u64::from(page_size))
}

/// The checksum an extent reference carries: CRC-32 of the first page's number (8 bytes,
/// little-endian) followed by the value.
pub fn extent_checksum(page: u64, value: &[u8]) -> u32 {
    checksum(&[&page.to_le_bytes(), value])
}

/// Appends the pages of an overflow extent holding `value` to `buf`: the value, then
/// zeros to the end of its last page.
pub fn encode_extent_into(buf: &mut Vec<u8>, page_size: u32, value: &[u8]) {
    let len = extent_pages(page_size, value.len()) * u64::from(page_size);
    let start = buf.len();
    buf.reserve(len as usize);
    buf.extend_from_slice(value);
    buf.resize(start + len as usize, 0);
}

/// The value of `len` bytes in the extent at `page`, its checksum compared with `crc`.
pub fn read_extent(view: &[u8], page: u64, page_size: u32, len: u32, crc: u32) -> Result<&[u8]> {
    let value = extent_bytes(view, page, page_size, len)?;
    let computed = extent_checksum(page, value);
    if computed != crc {
        return Err(Error::corrupted(
            page,
            format!(
                "overflow extent checksum mismatch (its leaf cell states {crc:#010x}, computed {computed:#010x})"
            ),
        ));
    }
    Ok(value)
}

/// The `len` bytes of the extent at `page`, unchecked ([`read_extent`] checks them).
fn extent_bytes(view: &[u8], page: u64, page_size: u32, len: u32) -> Result<&[u8]> {
    match page
        .checked_mul(u64::from(page_size))
        .and_then(|s| usize::try_from(s).ok())
        .and_then(|start| view.get(start..start.checked_add(len as usize)?))
    {
        Some(value) if len > 0 => Ok(value),
        _ => Err(extent_error(page, len)),
    }
}

#[cold]
#[inline(never)]
fn extent_error(page: u64, len: u32) -> Error {
    Error::corrupted(
        page,
        if len == 0 {
            "overflow extent of no bytes"
        } else {
            "overflow extent lies past the end of the file"
        },
    )
}

/// A verified run: its payload region and header fields.
pub struct RunRef<'a> {
    /// Bytes after the 32-byte header, to the end of the run.
    pub payload: &'a [u8],
    /// Pages in the run.
    pub pages: u64,
    /// `value_len` field.
    pub value_len: u32,
    /// `entry_count` field.
    pub entry_count: u64,
}

/// Verifies the run of `kind` starting at `page` in the file bytes `view`.
pub fn read_run<'a>(
    view: &'a [u8],
    kind: PageKind,
    page: u64,
    page_size: u32,
) -> Result<RunRef<'a>> {
    read_run_inner(view, kind, page, page_size)
}

#[expect(
    clippy::indexing_slicing,
    reason = "slices are taken after their bounds are checked"
)]
fn read_run_inner<'a>(
    view: &'a [u8],
    kind: PageKind,
    page: u64,
    page_size: u32,
) -> Result<RunRef<'a>> {
    let ps = u64::from(page_size);
    let bad = |what: String| Error::corrupted(page, what);
    let start = page
        .checked_mul(ps)
        .ok_or_else(|| bad("page number out of range".into()))?;
    let head = view
        .get(start as usize..(start + LOG_PAGE_HEADER_LEN as u64) as usize)
        .ok_or_else(|| bad("run lies past the end of the file".into()))?;
    if head[4] != kind as u8 {
        return Err(bad(format!(
            "expected a {kind:?} run, found kind byte {}",
            head[4]
        )));
    }
    if head[5] != 1 || head[6] != 0 || head[7] != 0 {
        return Err(bad(format!(
            "a {kind:?} run of version {} (its reserved bytes {:?})",
            head[5],
            &head[6..8]
        )));
    }
    if u64::from_le_bytes(head[8..16].try_into().unwrap_or_default()) != page {
        return Err(bad(
            "misdirected write: run header names another page".into()
        ));
    }
    let pages = u64::from(u32::from_le_bytes(
        head[RUN_PAGES_AT..VALUE_LEN_AT]
            .try_into()
            .unwrap_or_default(),
    ));
    let value_len = u32::from_le_bytes(
        head[VALUE_LEN_AT..ENTRY_COUNT_AT]
            .try_into()
            .unwrap_or_default(),
    );
    let entry_count = u64::from_le_bytes(
        head[ENTRY_COUNT_AT..LOG_PAGE_HEADER_LEN]
            .try_into()
            .unwrap_or_default(),
    );
    let end = pages
        .checked_mul(ps)
        .and_then(|l| l.checked_add(start))
        .filter(|_| pages > 0)
        .ok_or_else(|| bad("run length out of range".into()))?;
    let run = view
        .get(start as usize..end as usize)
        .ok_or_else(|| bad("run lies past the end of the file".into()))?;
    let stored = u32::from_le_bytes(run[..4].try_into().unwrap_or_default());
    let computed = checksum(&[&run[4..]]);
    if stored != computed {
        return Err(bad(format!(
            "{kind:?} run checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    Ok(RunRef {
        payload: &run[LOG_PAGE_HEADER_LEN..],
        pages,
        value_len,
        entry_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_spec() {
        let md = include_str!("../../format-spec/btree.md");
        let rows = crate::format::spec_table::rows(md, "Overflow run");
        crate::format::spec_table::assert_layout(
            &rows,
            &[
                ("run_pages", RUN_PAGES_AT, VALUE_LEN_AT - RUN_PAGES_AT),
                ("value_len", VALUE_LEN_AT, ENTRY_COUNT_AT - VALUE_LEN_AT),
                (
                    "entry_count",
                    ENTRY_COUNT_AT,
                    LOG_PAGE_HEADER_LEN - ENTRY_COUNT_AT,
                ),
            ],
        );
    }

    #[test]
    fn runs_round_trip_and_catch_flips() {
        let payload: Vec<u8> = (0..9000u32).map(|i| i as u8).collect();
        let mut file = vec![0u8; 4096 * 3];
        file.extend(encode_run(PageKind::Overflow, 3, 4096, &payload, 9000, 0));
        let r = read_run(&file, PageKind::Overflow, 3, 4096).unwrap();
        assert_eq!((r.pages, r.value_len), (3, 9000));
        assert_eq!(&r.payload[..9000], &payload[..]);
        assert!(read_run(&file, PageKind::FreeList, 3, 4096).is_err());
        assert!(read_run(&file, PageKind::Overflow, 2, 4096).is_err());
        file[4096 * 5 + 7] ^= 1;
        assert!(read_run(&file, PageKind::Overflow, 3, 4096).is_err());
    }
}
