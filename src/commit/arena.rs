//! Log arenas: byte-granular append space in capsule or proof pages.
//!
//! Small records are packed back to back in the current page, so a one-key commit
//! does not cost a page. A page's 32-byte header is written when the page is started,
//! before any record in it. A record larger than a page gets a run of contiguous pages.

use crate::Result;
use crate::format::{LOG_PAGE_HEADER_LEN, PageKind, write_log_page_header};
use crate::pager::Pager;
use crate::storage::Storage;
use parking_lot::Mutex;
use std::sync::Arc;

/// Where an appended record went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Absolute file offset.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// First page of its own run, when the record got a run of pages to itself.
    pub run: Option<(u64, u64)>,
}

/// Append space for one kind of log page.
pub struct LogArena {
    kind: PageKind,
    pager: Arc<Pager>,
    storage: Arc<dyn Storage>,
    state: Mutex<ArenaState>,
}

#[derive(Default)]
struct ArenaState {
    /// Current page (0 = none yet) and the next free byte in it.
    page: u64,
    used: u64,
}

fn kind_header(run_pages: u64) -> [u8; 16] {
    let mut kh = [0u8; 16];
    kh[..4].copy_from_slice(&(run_pages as u32).to_le_bytes());
    kh
}

impl LogArena {
    /// An arena that starts on a fresh page at its first append.
    pub fn new(kind: PageKind, pager: Arc<Pager>, storage: Arc<dyn Storage>) -> LogArena {
        LogArena {
            kind,
            pager,
            storage,
            state: Mutex::new(ArenaState::default()),
        }
    }

    fn page_payload(&self) -> u64 {
        u64::from(self.pager.page_size()) - LOG_PAGE_HEADER_LEN as u64
    }

    /// Reserves space for records of the given lengths (each in one piece) and returns
    /// their offsets. Starts (and writes the header of) new pages as needed.
    fn reserve(&self, lens: &[u64]) -> Result<Vec<Extent>> {
        let page_size = u64::from(self.pager.page_size());
        let mut st = self.state.lock();
        let mut out = Vec::with_capacity(lens.len());
        for &len in lens {
            if len > self.page_payload() {
                let pages = (LOG_PAGE_HEADER_LEN as u64 + len).div_ceil(page_size);
                let first = self.pager.alloc_run(pages)?;
                self.write_page_header(first, pages)?;
                out.push(Extent {
                    offset: self.pager.offset_of(first) + LOG_PAGE_HEADER_LEN as u64,
                    len,
                    run: Some((first, pages)),
                });
                continue;
            }
            if st.page == 0 || st.used + len > page_size {
                let page = self.pager.alloc()?;
                self.write_page_header(page, 1)?;
                st.page = page;
                st.used = LOG_PAGE_HEADER_LEN as u64;
            }
            out.push(Extent {
                offset: self.pager.offset_of(st.page) + st.used,
                len,
                run: None,
            });
            st.used += len;
        }
        Ok(out)
    }

    fn write_page_header(&self, page: u64, run_pages: u64) -> Result<()> {
        let mut head = [0u8; LOG_PAGE_HEADER_LEN];
        write_log_page_header(&mut head, self.kind, page, &kind_header(run_pages))?;
        self.storage.write_at(self.pager.offset_of(page), &head)
    }

    /// Appends one record; the write happens outside the arena's lock.
    pub fn append(&self, record: &[u8]) -> Result<Extent> {
        let extents = self.reserve(&[record.len() as u64])?;
        let e = extents
            .first()
            .copied()
            .ok_or_else(|| crate::Error::corrupted(0, "arena reserved nothing"))?;
        if let Err(err) = self.storage.write_at(e.offset, record) {
            self.release(e);
            return Err(err);
        }
        Ok(e)
    }

    /// Appends records, writing each contiguous stretch with one call.
    pub fn append_many(&self, records: &[&[u8]]) -> Result<Vec<Extent>> {
        let lens: Vec<u64> = records.iter().map(|r| r.len() as u64).collect();
        let extents = self.reserve(&lens)?;
        let mut i = 0;
        while i < extents.len() {
            let start = extents.get(i).map_or(0, |e| e.offset);
            let mut buf: Vec<u8> = Vec::new();
            let mut j = i;
            while let (Some(e), Some(r)) = (extents.get(j), records.get(j)) {
                if e.offset != start + buf.len() as u64 {
                    break;
                }
                buf.extend_from_slice(r);
                j += 1;
            }
            self.storage.write_at(start, &buf)?;
            i = j;
        }
        Ok(extents)
    }

    /// Gives back the space of a record that will never be referenced (an aborted
    /// commit's capsule): its own run of pages goes back to the pager; space at the
    /// end of the current page is reused; anything else waits for a checkpoint.
    pub fn release(&self, e: Extent) {
        if let Some((first, pages)) = e.run {
            self.pager.free(first..first + pages);
            return;
        }
        let mut st = self.state.lock();
        if st.page != 0 && self.pager.offset_of(st.page) + st.used == e.offset + e.len {
            st.used -= e.len;
        }
    }
}
