//! Appends markers to the dense marker stream, starting new marker pages as needed.

use crate::Result;
use crate::format::{
    LOG_PAGE_HEADER_LEN, MARKER_LEN, Marker, MarkerPageHeader, PageKind, marker_slot,
    slots_per_page, write_log_page_header,
};
use crate::pager::Pager;
use crate::storage::Storage;
use std::sync::Arc;

/// Where the stream's next marker goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamTail {
    /// The marker page being filled.
    pub page: u64,
    /// Sequence of its slot 0.
    pub first_seq: u64,
    /// The page the stream continues on.
    pub next_page: u64,
    /// Sequence of the next marker.
    pub next_seq: u64,
    /// Chain value of the last marker (or the seed).
    pub chain: u32,
}

impl StreamTail {
    /// Forgets a next page that is a page of the tree (or of the free list): below
    /// `page_count` and not among the pages outside the tree (`non_tree`). A writer takes
    /// its pages from outside the tree, so only a crafted header (its checksum right)
    /// names one, and a read-write open zeroes the next page: it chooses one of its own,
    /// as for a next page recovery could not confirm. Returns whether it forgot one. A
    /// tail page in the tree (a crafted full page linking to it), which the open would
    /// write a marker page over, is an error naming it.
    pub fn forget_next_page_in_tree(
        &mut self,
        page_count: u64,
        non_tree: &std::collections::BTreeSet<u64>,
    ) -> Result<bool> {
        let in_tree = |p: u64| p != 0 && p < page_count && !non_tree.contains(&p);
        if in_tree(self.page) {
            return Err(crate::Error::corrupted(
                self.page,
                "the marker stream continues on a page of the tree",
            ));
        }
        let forget = in_tree(self.next_page);
        if forget {
            self.next_page = 0;
        }
        Ok(forget)
    }
}

/// The writer of the marker stream; used by one flushing leader at a time.
pub struct MarkerWriter {
    storage: Arc<dyn Storage>,
    pager: Arc<Pager>,
    tail: StreamTail,
    /// The stream's started pages since the checkpoint, oldest first: `(first_seq, page)`.
    pages: std::collections::VecDeque<(u64, u64)>,
    /// Why an append failed: `tail` and `pages` may then name a page never written, so
    /// [`MarkerWriter::start_after`] refuses (the group is poisoned once its step
    /// returns, and a checkpoint between the two would name that page in its header).
    failed: Option<String>,
}

impl MarkerWriter {
    /// A writer continuing the stream at `tail`; `pages` are the stream's started
    /// pages, oldest first, as `(first_seq, page)`.
    pub fn new(
        storage: Arc<dyn Storage>,
        pager: Arc<Pager>,
        tail: StreamTail,
        pages: Vec<(u64, u64)>,
    ) -> MarkerWriter {
        let mut pages: std::collections::VecDeque<(u64, u64)> = pages.into();
        if pages.back().is_none_or(|&(_, p)| p != tail.page) {
            pages.push_back((tail.first_seq, tail.page));
        }
        MarkerWriter {
            storage,
            pager,
            tail,
            pages,
            failed: None,
        }
    }

    /// Where a stream starting after commit `seq` begins: the started page holding the
    /// slot of `seq + 1`, and the chain of marker `seq` (read from `file`, where it is
    /// durable). `Ok(None)` when the slot of `seq + 1` is on a page not started yet, or
    /// `seq` is not past `seed`'s sequence.
    ///
    /// `seed` is the stream's start as the current header names it: the sequence its
    /// first marker follows and the chain value before that marker. Marker `seq` is
    /// checked against the chain of the marker before it (or `seed`) before its chain is
    /// used: copied unchecked, a bit flipped at rest in it would seed the next stream with
    /// a value no later marker continues, and a recovery from that header would take the
    /// stream for ended there, losing every commit after it.
    pub fn start_after(
        &self,
        file: &[u8],
        seq: u64,
        seed: (u64, u32),
    ) -> Result<Option<(u64, u32)>> {
        if let Some(cause) = &self.failed {
            return Err(crate::Error::Poisoned {
                cause: cause.clone(),
            });
        }
        if seq <= seed.0 {
            return Ok(None);
        }
        let slots = slots_per_page(self.pager.page_size());
        let holding = |s: u64| {
            self.pages
                .iter()
                .find(|(f, _)| *f <= s && s < f + slots)
                .copied()
        };
        let slot = |s: u64| {
            let (first, page) = holding(s)?;
            let from = usize::try_from(self.pager.offset_of(page)).ok()?;
            Some((page, marker_slot(file.get(from..)?, s - first)?))
        };
        let (Some((_, start_page)), Some((page, bytes))) = (holding(seq + 1), slot(seq)) else {
            return Ok(None);
        };
        let prev_chain = if seq - 1 == seed.0 {
            Some(seed.1)
        } else {
            slot(seq - 1)
                .and_then(|(_, b)| b.get(28..32)?.try_into().ok())
                .map(u32::from_le_bytes)
        };
        match prev_chain.and_then(|c| Marker::decode(bytes, seq, c)) {
            Some((_, chain)) => Ok(Some((start_page, chain))),
            None => Err(crate::Error::corrupted(
                page,
                format!(
                    "marker {seq} does not continue the marker chain, so no checkpoint can \
                     start the next stream after it (reopening the database repairs a \
                     marker damaged in up to two bits)"
                ),
            )),
        }
    }

    /// Continues in a new stream (after a tree commit at `next_seq - 1`): its first page
    /// `page` (already written; its slot 0 is `first_seq`, its slot for `next_seq`
    /// empty) and its reserved next page. The old stream's pages stay listed until
    /// [`MarkerWriter::drop_pages_before`] drops them; the old stream's reserved next
    /// page, never started, is returned.
    pub fn restart(
        &mut self,
        page: u64,
        next_page: u64,
        first_seq: u64,
        next_seq: u64,
        chain: u32,
    ) -> u64 {
        let old_reserved = self.tail.next_page;
        self.tail = StreamTail {
            page,
            first_seq,
            next_page,
            next_seq,
            chain,
        };
        self.pages.push_back((first_seq, page));
        old_reserved
    }

    /// Forgets, and returns, the stream pages before `page`.
    pub fn drop_pages_before(&mut self, page: u64) -> Vec<u64> {
        let mut gone = Vec::new();
        while let Some(&(_, p)) = self.pages.front() {
            if p == page {
                break;
            }
            gone.push(p);
            self.pages.pop_front();
        }
        gone
    }

    /// The stream's pages since the checkpoint, and the reserved next page.
    pub fn pages(&self) -> Vec<u64> {
        self.pages
            .iter()
            .map(|(_, p)| *p)
            .chain([self.tail.next_page])
            .collect()
    }

    /// The full bytes of a freshly started marker page: header, then zeros.
    pub fn new_page_image(page: u64, page_size: u32, header: MarkerPageHeader) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; page_size as usize];
        write_log_page_header(&mut buf, PageKind::Marker, page, &header.encode())?;
        Ok(buf)
    }

    /// Appends markers `(seq, proof_offset, proof_checksum)` (dense, in order) and
    /// returns the bytes written.
    pub fn append(&mut self, entries: &[(u64, u64, u32)]) -> Result<u64> {
        let appended = self.append_inner(entries);
        if let Err(e) = &appended {
            self.failed
                .get_or_insert_with(|| format!("a marker write failed: {e}"));
        }
        appended
    }

    /// [`MarkerWriter::append`]'s work.
    fn append_inner(&mut self, entries: &[(u64, u64, u32)]) -> Result<u64> {
        let page_size = self.pager.page_size();
        let slots = slots_per_page(page_size);
        let mut written = 0u64;
        // The pages this append starts are each chosen as the next page of the one
        // before, all before the first marker is written: an allocation failing halfway
        // (a full disk) would leave the markers already written behind an error that
        // tells their committers their commits failed.
        let starts = {
            let mut slot = self.tail.next_seq - self.tail.first_seq;
            let mut starts = 0usize;
            for _ in entries {
                if slot >= slots {
                    starts += 1;
                    slot = 0;
                }
                slot += 1;
            }
            starts
        };
        let mut chosen = (0..starts)
            .map(|_| self.pager.alloc_log())
            .collect::<Result<std::collections::VecDeque<u64>>>()?;
        let mut writes: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut i = 0usize;
        while i < entries.len() {
            let mut slot = self.tail.next_seq - self.tail.first_seq;
            if slot >= slots {
                // Start the next page; choose the one after it now.
                let Some(next_next) = chosen.pop_front() else {
                    return Err(crate::Error::Poisoned {
                        cause: "a marker page was started that was not counted".into(),
                    });
                };
                self.tail.first_seq += slots;
                self.tail.page = self.tail.next_page;
                self.tail.next_page = next_next;
                self.pages.push_back((self.tail.first_seq, self.tail.page));
                slot = 0;
            }
            let fresh = slot == 0;
            let mut buf = if fresh {
                MarkerWriter::new_page_image(
                    self.tail.page,
                    page_size,
                    MarkerPageHeader {
                        next_page: self.tail.next_page,
                        first_seq: self.tail.first_seq,
                    },
                )?
            } else {
                Vec::new()
            };
            let start_slot = slot;
            while let Some(&(seq, proof_offset, proof_checksum)) = entries.get(i) {
                if slot >= slots {
                    break;
                }
                if seq != self.tail.next_seq {
                    // A bug, never the file's doing: the group poisons on it.
                    return Err(crate::Error::Poisoned {
                        cause: format!(
                            "marker for seq {seq} where seq {} comes next: markers must be \
                             dense and in order",
                            self.tail.next_seq
                        ),
                    });
                }
                let (bytes, chain) = Marker {
                    seq,
                    proof_offset,
                    proof_checksum,
                }
                .encode(self.tail.chain);
                if fresh {
                    let at = LOG_PAGE_HEADER_LEN + slot as usize * MARKER_LEN;
                    if let Some(dst) = buf.get_mut(at..at + MARKER_LEN) {
                        dst.copy_from_slice(&bytes);
                    }
                } else {
                    buf.extend_from_slice(&bytes);
                }
                self.tail.chain = chain;
                self.tail.next_seq += 1;
                slot += 1;
                i += 1;
            }
            let offset = if fresh {
                self.pager.offset_of(self.tail.page)
            } else {
                self.pager.offset_of(self.tail.page)
                    + (LOG_PAGE_HEADER_LEN + start_slot as usize * MARKER_LEN) as u64
            };
            written += buf.len() as u64;
            writes.push((offset, buf));
        }
        // The last page first: a write failing halfway (a full disk, in a page never
        // written before) leaves the markers written so far after a gap in the stream,
        // which no recovery reads past, rather than the first ones of the group readable
        // behind an error that tells their committers their commits failed.
        for (offset, buf) in writes.iter().rev() {
            self.storage.write_at(*offset, buf)?;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SimStorage;
    use std::collections::BTreeSet;

    /// A failed append leaves `tail` and `pages` naming a page it may never have
    /// written; the group is poisoned only once its step returns, and a checkpoint
    /// between the two took that page as the next stream's start, naming it in a header
    /// (every later open then found the log damaged). `start_after` refuses instead.
    #[test]
    fn no_stream_start_after_a_failed_append() {
        let sim = SimStorage::new();
        let pager = Arc::new(Pager::new(Arc::new(sim.clone()), 4096, 2, BTreeSet::new()).unwrap());
        let (page, next_page) = (pager.alloc_log().unwrap(), pager.alloc_log().unwrap());
        let tail = StreamTail {
            page,
            first_seq: 1,
            next_page,
            next_seq: 1,
            chain: 7,
        };
        let mut w = MarkerWriter::new(Arc::new(sim.clone()), pager, tail, vec![]);
        let image = MarkerWriter::new_page_image(
            page,
            4096,
            MarkerPageHeader {
                next_page,
                first_seq: 1,
            },
        )
        .unwrap();
        sim.write_at(w.pager.offset_of(page), &image).unwrap();
        let slots = slots_per_page(4096);
        let full: Vec<(u64, u64, u32)> = (1..=slots).map(|s| (s, 0, 0)).collect();
        w.append(&full).unwrap();
        let file = sim.view().unwrap();
        assert!(w.start_after(&file, slots - 1, (0, 7)).is_ok());
        drop(file);
        // The next marker starts `next_page`; its write fails.
        sim.fail_nth_write(1);
        assert!(w.append(&[(slots + 1, 0, 0)]).is_err());
        let file = sim.view().unwrap();
        assert!(matches!(
            w.start_after(&file, slots, (0, 7)),
            Err(crate::Error::Poisoned { .. })
        ));
    }
}
