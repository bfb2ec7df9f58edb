//! Log arenas: byte-granular append space in capsule or proof pages.
//!
//! Small records are packed back to back in the current page, so a one-key commit
//! does not cost a page. A page's 32-byte header is written when the page is started,
//! before any record in it. A record larger than a page gets a run of contiguous pages.
//!
//! The arena remembers, per page (or run), how many appended records are still in flight
//! (written but not yet sequenced or abandoned) and the largest sequence among its
//! records, so a checkpoint can free exactly the pages that hold only folded commits.

use crate::Result;
use crate::format::{LOG_PAGE_HEADER_LEN, PageKind, write_log_page_header};
use crate::pager::Pager;
use crate::storage::Storage;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where an appended record went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Absolute file offset.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// The page (or first page of the run) holding the record.
    pub page: u64,
    /// Pages in the record's own run (`1` for a record packed in a shared page).
    pub run_pages: u64,
}

/// Use of one log page (or run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageUse {
    /// Pages in the run.
    pub run_pages: u64,
    /// Records appended but not yet settled.
    pub inflight: u32,
    /// Largest commit sequence among its records.
    pub max_seq: u64,
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
    pages: BTreeMap<u64, PageUse>,
}

fn kind_header(run_pages: u64) -> [u8; 16] {
    let mut kh = [0u8; 16];
    kh[..4].copy_from_slice(&(run_pages as u32).to_le_bytes());
    kh
}

impl LogArena {
    /// An arena continuing at `resume` (a page of `pages` and the bytes used in it), or
    /// on a fresh page at its first append; `pages` are the log pages of this kind that
    /// recovery found in use. Continuing the last page keeps short-lived processes from
    /// leaving a page each behind.
    pub fn new(
        kind: PageKind,
        pager: Arc<Pager>,
        storage: Arc<dyn Storage>,
        pages: BTreeMap<u64, PageUse>,
        resume: Option<(u64, u64)>,
    ) -> LogArena {
        let page_size = u64::from(pager.page_size());
        let (page, used) = resume
            .filter(|&(p, used)| {
                pages.get(&p).is_some_and(|u| u.run_pages == 1)
                    && (LOG_PAGE_HEADER_LEN as u64..=page_size).contains(&used)
            })
            .unwrap_or((0, 0));
        LogArena {
            kind,
            pager,
            storage,
            state: Mutex::new(ArenaState { page, used, pages }),
        }
    }

    fn page_payload(&self) -> u64 {
        u64::from(self.pager.page_size()) - LOG_PAGE_HEADER_LEN as u64
    }

    /// Reserves space for records of the given lengths (each in one piece), marks them
    /// in flight, and returns their extents. Starts (and writes the header of) new pages.
    fn reserve(&self, lens: &[u64]) -> Result<Vec<Extent>> {
        let page_size = u64::from(self.pager.page_size());
        let mut st = self.state.lock();
        let mut out = Vec::with_capacity(lens.len());
        for &len in lens {
            let extent = if len > self.page_payload() {
                let pages = (LOG_PAGE_HEADER_LEN as u64 + len).div_ceil(page_size);
                let first = self.pager.alloc_run(pages)?;
                self.write_page_header(first, pages)
                    .inspect_err(|_| self.pager.free(first..first + pages))?;
                Extent {
                    offset: self.pager.offset_of(first) + LOG_PAGE_HEADER_LEN as u64,
                    len,
                    page: first,
                    run_pages: pages,
                }
            } else {
                if st.page == 0 || st.used + len > page_size {
                    let page = self.pager.alloc_log()?;
                    // A failed header write fails only this commit: the page, in no
                    // list yet, goes back rather than leaking until a reopen.
                    self.write_page_header(page, 1)
                        .inspect_err(|_| self.pager.free([page]))?;
                    st.page = page;
                    st.used = LOG_PAGE_HEADER_LEN as u64;
                }
                let e = Extent {
                    offset: self.pager.offset_of(st.page) + st.used,
                    len,
                    page: st.page,
                    run_pages: 1,
                };
                st.used += len;
                e
            };
            let u = st.pages.entry(extent.page).or_default();
            u.run_pages = extent.run_pages;
            u.inflight += 1;
            out.push(extent);
        }
        Ok(out)
    }

    fn write_page_header(&self, page: u64, run_pages: u64) -> Result<()> {
        let mut head = [0u8; LOG_PAGE_HEADER_LEN];
        write_log_page_header(&mut head, self.kind, page, &kind_header(run_pages))?;
        self.storage.write_at(self.pager.offset_of(page), &head)
    }

    /// Appends one record; the write happens outside the arena's lock. The record is
    /// in flight until [`LogArena::settle`] or [`LogArena::release`].
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

    /// Appends records of the commits `seqs` (settled at once), writing each contiguous
    /// stretch with one call.
    pub fn append_settled(&self, records: &[&[u8]], seqs: &[u64]) -> Result<Vec<Extent>> {
        let lens: Vec<u64> = records.iter().map(|r| r.len() as u64).collect();
        let extents = self.reserve(&lens)?;
        for (e, &seq) in extents.iter().zip(seqs) {
            self.settle(e, seq);
        }
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

    /// Records that the record at `e` belongs to commit `seq`.
    pub fn settle(&self, e: &Extent, seq: u64) {
        let mut st = self.state.lock();
        if let Some(u) = st.pages.get_mut(&e.page) {
            u.inflight = u.inflight.saturating_sub(1);
            u.max_seq = u.max_seq.max(seq);
        }
    }

    /// Gives back the space of a record that will never be referenced (an aborted
    /// commit's capsule): its own run of pages goes back to the pager; space at the
    /// end of the current page is reused; anything else waits for a checkpoint.
    pub fn release(&self, e: Extent) {
        let mut st = self.state.lock();
        if e.run_pages > 1 {
            st.pages.remove(&e.page);
            drop(st);
            self.pager.free(e.page..e.page + e.run_pages);
            return;
        }
        if let Some(u) = st.pages.get_mut(&e.page) {
            u.inflight = u.inflight.saturating_sub(1);
        }
        if st.page != 0 && self.pager.offset_of(st.page) + st.used == e.offset + e.len {
            st.used -= e.len;
        }
    }

    /// Removes and returns the pages holding only commits at or below `seq`, with no
    /// record in flight, other than the page being filled: a checkpoint folded them.
    pub fn take_obsolete(&self, seq: u64) -> Vec<u64> {
        let mut st = self.state.lock();
        let current = st.page;
        let gone: Vec<(u64, u64)> = st
            .pages
            .iter()
            .filter(|(p, u)| **p != current && u.inflight == 0 && u.max_seq <= seq)
            .map(|(p, u)| (*p, u.run_pages))
            .collect();
        for (p, _) in &gone {
            st.pages.remove(p);
        }
        gone.into_iter().flat_map(|(p, n)| p..p + n).collect()
    }

    /// Every page the arena holds (runs expanded), for integrity checks.
    pub fn pages(&self) -> Vec<u64> {
        self.state
            .lock()
            .pages
            .iter()
            .flat_map(|(p, u)| *p..*p + u.run_pages)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log page's kind header (bytes 16..32): `run_pages`, then reserved zeros.
    #[test]
    fn offsets_match_spec() {
        let md = include_str!("../../format-spec/log.md");
        let rows = crate::format::spec_table::rows(md, "Log pages");
        crate::format::spec_table::assert_layout(
            &rows,
            &[("run_pages", 16, 4), ("reserved", 20, 12)],
        );
        let kh = kind_header(3);
        assert_eq!(kh.len(), LOG_PAGE_HEADER_LEN - 16);
        assert_eq!(kh[..4], 3u32.to_le_bytes());
        assert!(kh[4..].iter().all(|&b| b == 0));
    }
}
