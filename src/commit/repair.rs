//! Repairs from redundancy (`format-spec/log.md`, "Repairs from redundancy").
//!
//! Each function rebuilds damaged bytes from other durable records and returns them only
//! when a checksum written together with the original confirms them, so a repair never
//! invents a record: it restores the one that was written.

use crate::format::{
    CAPSULE_HEADER_LEN, CAPSULE_MAGIC, LOG_PAGE_HEADER_LEN, MARKER_LEN, Marker, MarkerPageHeader,
    PROOF_LEN, PROOF_MAGIC, PageKind, Proof, capsule_total_len, checksum, decode_capsule,
    verify_log_page, write_log_page_header,
};
use crate::storage::View;
use std::collections::BTreeMap;

/// Bytes recovery rebuilt, to be written back by a read-write open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// Absolute file offset of the rebuilt bytes.
    pub offset: u64,
    /// The rebuilt bytes.
    pub bytes: Vec<u8>,
    /// What was repaired, for reports.
    pub what: String,
}

/// The file as recovery reads it, with a lazily built index of every proof and capsule
/// record found in the file's log pages (used only when something needs repairing).
pub struct LogFile<'a> {
    /// The mapped file.
    pub view: &'a View,
    /// Bytes per page.
    pub page_size: u64,
    /// First data page.
    pub first_data: u64,
    /// Pages in the file.
    pub file_pages: u64,
    index: Option<RecordIndex>,
    /// Every capsule's proof with sequence 0, by [`rest_checksum`], built on first use:
    /// a rebuild looks a marker's proof up here instead of trying every capsule.
    rebuilt: Option<std::collections::HashMap<u32, Vec<Proof>>>,
}

/// The checksum of `p`'s encoding with its sequence set to 0. CRC-32 is affine over
/// messages of one length, so the checksum of the proof of `seq` is
/// `rest_checksum(p) ^ seq_checksum(seq) ^ zeros_checksum()`: a marker's recorded
/// checksum names the rest of its proof whatever its sequence.
fn rest_checksum(p: &Proof) -> u32 {
    Proof::checksum_of(&Proof { seq: 0, ..*p }.encode())
}

/// The CRC-32 of a proof's checksummed bytes (4..48) all zero but `seq` (8..16).
fn seq_checksum(seq: u64) -> u32 {
    let mut b = [0u8; PROOF_LEN - 4];
    b[4..12].copy_from_slice(&seq.to_le_bytes());
    checksum(&[&b])
}

/// The CRC-32 of a proof's checksummed bytes all zero.
fn zeros_checksum() -> u32 {
    checksum(&[&[0u8; PROOF_LEN - 4]])
}

/// Offsets of every decodable proof (by sequence) and capsule record in the file.
#[derive(Default)]
struct RecordIndex {
    proofs: BTreeMap<u64, Vec<u64>>,
    capsules: Vec<u64>,
    /// Bytes of capsule records checksummed while building: at most about the file's
    /// size, whatever runs its headers claim.
    summed: u64,
}

impl<'a> LogFile<'a> {
    /// The file behind `view`.
    pub fn new(view: &'a View, page_size: u32, first_data: u64) -> LogFile<'a> {
        let page_size = u64::from(page_size);
        LogFile {
            view,
            page_size,
            first_data,
            file_pages: view.len() as u64 / page_size,
            index: None,
            rebuilt: None,
        }
    }

    /// The bytes of `page`, if it lies inside the file.
    pub fn page(&self, page: u64) -> Option<&'a [u8]> {
        self.view
            .get(page.checked_mul(self.page_size)?, self.page_size as usize)
    }

    /// The page holding file offset `offset`.
    pub fn page_of(&self, offset: u64) -> u64 {
        offset / self.page_size
    }

    /// Rebuilds the 32-byte header of a proof or capsule page from what its position
    /// determines and `run_pages`, the run the record being read needs.
    pub fn rebuild_log_header(&self, page: u64, kind: PageKind, run_pages: u64) -> Option<Vec<u8>> {
        let stored = self.page(page)?.get(..LOG_PAGE_HEADER_LEN)?;
        let run = u32::try_from(run_pages).ok().filter(|&r| r > 0)?;
        let mut kh = [0u8; 16];
        kh[..4].copy_from_slice(&run.to_le_bytes());
        let mut buf = vec![0u8; LOG_PAGE_HEADER_LEN];
        write_log_page_header(&mut buf, kind, page, &kh).ok()?;
        header_confirmed(&buf, stored).then_some(buf)
    }

    /// Rebuilds a marker page header whose `first_seq` the stream position determines.
    /// `next_page` is whichever data page within two bits of the stored one the stored
    /// checksum confirms; failing that
    /// (the checksum itself is damaged), the stored `next_page` when every other stored
    /// byte matches, returned as unconfirmed (`false`): only a page that turns out to
    /// start the rest of the stream confirms it.
    pub fn rebuild_marker_header(
        &self,
        page: u64,
        first_seq: u64,
    ) -> Option<(MarkerPageHeader, Vec<u8>, bool)> {
        let stored = self.page(page)?.get(..LOG_PAGE_HEADER_LEN)?;
        if blank(stored) {
            // A page never started (the usual end of the stream): nothing to confirm.
            return None;
        }
        let stored_next = stored
            .get(16..24)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)?;
        let build = |next_page: u64| {
            let h = MarkerPageHeader {
                next_page,
                first_seq,
            };
            let mut buf = vec![0u8; LOG_PAGE_HEADER_LEN];
            write_log_page_header(&mut buf, PageKind::Marker, page, &h.encode()).ok()?;
            Some((h, buf))
        };
        // Damage confined to `next_page` is a few flipped bits: the candidates are the
        // stored value with at most two of its bits changed, not every page of the file
        // (a file of N pages would offer a false match with odds N / 2^32, a page the
        // stream does not own, which the open's scrub of the tail would then zero; and
        // every damaged header would cost a pass over the file).
        let by_checksum = within_two_bits(stored_next)
            .filter(|&n| n != page && n >= self.first_data && n < self.file_pages)
            .filter_map(build)
            .find(|(_, buf)| buf.get(..4) == stored.get(..4));
        if let Some((h, buf)) = by_checksum {
            return Some((h, buf, true));
        }
        let (h, buf) = build(stored_next)?;
        let plausible = stored_next >= self.first_data && stored_next < self.file_pages;
        (plausible && header_confirmed(&buf, stored)).then_some((h, buf, false))
    }

    /// Rebuilds the marker of `seq` in `slot` (chained to `prev_chain`) from a proof of
    /// `seq`; `successor` is the next slot's bytes, if any. Returns the marker, its chain
    /// and its bytes.
    pub fn rebuild_marker(
        &mut self,
        slot: &[u8],
        seq: u64,
        prev_chain: u32,
        successor: Option<&[u8]>,
    ) -> Option<(Marker, u32, [u8; MARKER_LEN])> {
        // A blank slot has nothing of its own to confirm a rebuild: only a successor
        // holding the next sequence's marker can. Any other successor (blank: the usual
        // end of the stream; or the first slot of a next page this stream never started,
        // holding what an earlier use of the page left) leaves nothing to rebuild, and
        // no search of every proof in the file runs for it.
        let names_next = |s: &[u8]| {
            s.get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .is_some_and(|b| u64::from_le_bytes(b) == seq + 1)
        };
        if blank(slot) && !successor.is_some_and(names_next) {
            return None;
        }
        let stored_offset = slot
            .get(8..16)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)?;
        let confirm = |offset: u64, proof_checksum: u32| {
            let m = Marker {
                seq,
                proof_offset: offset,
                proof_checksum,
            };
            let (bytes, chain) = m.encode(prev_chain);
            // The stored chain confirms the rebuilt fields; or the fields are intact and
            // only the chain field is damaged (a record of another history, left by a
            // torn page start, has intact fields too, but a chain that differs at random).
            let by_self = bytes.get(28..) == slot.get(28..MARKER_LEN)
                || (bytes.get(..28) == slot.get(..28) && near(slot.get(28..MARKER_LEN), chain));
            let by_successor =
                successor.is_some_and(|s| Marker::decode(s, seq + 1, chain).is_some());
            (by_self || by_successor).then_some((m, chain, bytes))
        };
        if let Some(sum) = self.proof_of(stored_offset, seq)
            && let Some(found) = confirm(stored_offset, sum)
        {
            return Some(found);
        }
        let offsets = self.index().proofs.get(&seq).cloned().unwrap_or_default();
        offsets
            .into_iter()
            .filter(|&o| o != stored_offset)
            .find_map(|o| self.proof_of(o, seq).and_then(|sum| confirm(o, sum)))
    }

    /// The checksum of a valid proof of `seq` at `offset`.
    fn proof_of(&self, offset: u64, seq: u64) -> Option<u32> {
        let (p, sum) = Proof::decode(self.view.get(offset, PROOF_LEN)?).ok()?;
        (p.seq == seq).then_some(sum)
    }

    /// Rebuilds the proof of `seq` whose checksum the marker recorded as `proof_checksum`
    /// from the capsule it names: first the capsule at the damaged proof's own
    /// `capsule_offset`, then every capsule record of the file.
    pub fn rebuild_proof(
        &mut self,
        damaged: &[u8],
        seq: u64,
        proof_checksum: u32,
    ) -> Option<(Proof, [u8; PROOF_LEN])> {
        let stored_offset = damaged
            .get(24..32)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes);
        let confirmed = |p: Proof| -> Option<(Proof, [u8; PROOF_LEN])> {
            let proof = Proof { seq, ..p };
            let enc = proof.encode();
            (Proof::checksum_of(&enc) == proof_checksum).then_some((proof, enc))
        };
        if let Some(found) = stored_offset
            .and_then(|o| self.proof_from_capsule(o))
            .and_then(confirmed)
        {
            return Some(found);
        }
        // Every capsule's proof, found by what the recorded checksum says of the rest of
        // the proof (each capsule decoded once per open, not once per damaged proof).
        if self.rebuilt.is_none() {
            let capsules = self.index().capsules.clone();
            let mut rebuilt = std::collections::HashMap::<u32, Vec<Proof>>::new();
            for p in capsules
                .into_iter()
                .filter_map(|o| self.proof_from_capsule(o))
            {
                rebuilt.entry(rest_checksum(&p)).or_default().push(p);
            }
            self.rebuilt = Some(rebuilt);
        }
        let rest = proof_checksum ^ seq_checksum(seq) ^ zeros_checksum();
        self.rebuilt
            .as_ref()?
            .get(&rest)?
            .iter()
            .copied()
            .filter(|p| Some(p.capsule_offset) != stored_offset)
            .find_map(confirmed)
    }

    /// The proof (with sequence 0) of the capsule record at `offset`, if one verifies
    /// there.
    fn proof_from_capsule(&self, offset: u64) -> Option<Proof> {
        let len = capsule_total_len(self.view.get(offset, CAPSULE_HEADER_LEN)?)?;
        let bytes = self.view.get(offset, len as usize)?;
        let capsule = decode_capsule(bytes).ok()?;
        let stored_sum = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
        Some(Proof {
            seq: 0,
            snapshot: capsule.snapshot,
            capsule_offset: offset,
            capsule_len: len,
            capsule_checksum: stored_sum,
            write_digest: capsule.write_digest,
            entry_count: capsule.entry_count,
        })
    }

    /// The index of every proof and capsule record in the file, built on first use.
    fn index(&mut self) -> &RecordIndex {
        if self.index.is_none() {
            self.index = Some(self.build_index());
        }
        self.index.get_or_insert_with(RecordIndex::default)
    }

    fn build_index(&self) -> RecordIndex {
        let mut ix = RecordIndex::default();
        let ps = self.page_size;
        // Pages whose own log page header verifies. The later pages of a run have no
        // header, so a run over one of them is stale (a later page reused) or crafted:
        // its record is read within its first page only. Runs read whole then hold no
        // verified header after their first page and so never overlap: the records'
        // checksums cover each byte of the file at most about once (crafted headers
        // each claiming a run to the file's end, with records that fail their checksum,
        // made each page's walk checksum the rest of the file).
        let headed: Vec<u64> = (self.first_data..self.file_pages)
            .filter(|&p| {
                // Verified as the log kind its kind byte names (any other fails anyway).
                self.page(p).is_some_and(|b| {
                    b.get(4)
                        .and_then(|&k| PageKind::from_u8(k))
                        .filter(|k| {
                            matches!(k, PageKind::Capsule | PageKind::Proof | PageKind::Marker)
                        })
                        .is_some_and(|k| verify_log_page(b, k, p).is_ok())
                })
            })
            .collect();
        let headed_within = |lo: u64, hi: u64| {
            let i = headed.partition_point(|&p| p < lo);
            headed.get(i).is_some_and(|&p| p < hi)
        };
        let mut next = self.first_data;
        while next < self.file_pages {
            let page = next;
            next += 1;
            let Some(bytes) = self.page(page) else {
                continue;
            };
            let is = |kind: PageKind| {
                verify_log_page(bytes, kind, page).is_ok()
                    || self.rebuild_log_header(page, kind, 1).is_some()
            };
            let base = page * ps;
            if is(PageKind::Proof) {
                let mut at = LOG_PAGE_HEADER_LEN as u64;
                while at + PROOF_LEN as u64 <= ps {
                    if let Some(b) = self.view.get(base + at, PROOF_LEN)
                        && b.get(4..8) == Some(&PROOF_MAGIC.to_le_bytes()[..])
                        && let Ok((p, _)) = Proof::decode(b)
                    {
                        ix.proofs.entry(p.seq).or_default().push(base + at);
                    }
                    at += PROOF_LEN as u64;
                }
            } else if is(PageKind::Capsule) {
                // Records are packed back to back; a damaged one ends the walk of its page.
                // They end within the page, or within the run its one large record takes
                // (`run_pages` of a header that verifies; one page for a rebuilt one): a
                // crafted record ending at the next page's first record went on, from
                // every page, to the file's end (quadratic: a hang, then no memory).
                let run = verify_log_page(bytes, PageKind::Capsule, page)
                    .map_or(1, |kh| u64::from(read_u32(&kh[..4])).max(1));
                // The run's last page counts only where the record covers its header's
                // checksum: an honest record may end 1 to 3 bytes into a page whose
                // earlier use's header then still verifies, by chance.
                let last = page.saturating_add(run).saturating_sub(1);
                let covers_last = || {
                    self.view
                        .get(base + LOG_PAGE_HEADER_LEN as u64, CAPSULE_HEADER_LEN)
                        .and_then(capsule_total_len)
                        .map(|len| {
                            (LOG_PAGE_HEADER_LEN as u64 + u64::from(len))
                                .saturating_sub((run - 1) * ps)
                        })
                        .is_some_and(|covered| covered >= 4)
                };
                let stale = run > 1
                    && (headed_within(page + 1, last)
                        || (headed_within(last, last + 1) && covers_last()));
                let run = if stale { 1 } else { run };
                let end = base.saturating_add(run.saturating_mul(ps));
                let first = base + LOG_PAGE_HEADER_LEN as u64;
                // A record verifies at `at` within `end`: its length.
                let verify = |at: u64, end: u64, summed: &mut u64| -> Option<u64> {
                    let head = self.view.get(at, CAPSULE_HEADER_LEN)?;
                    let len = u64::from(capsule_total_len(head)?);
                    let magic_ok = head.get(4..8) == Some(&CAPSULE_MAGIC.to_le_bytes()[..]);
                    let sum_ok = magic_ok
                        && at.saturating_add(len) <= end
                        && len >= CAPSULE_HEADER_LEN as u64
                        && self.view.get(at, len as usize).is_some_and(|b| {
                            *summed += len;
                            b.get(4..).map(|r| checksum(&[r])) == b.get(..4).map(read_u32)
                        });
                    sum_ok.then_some(len)
                };
                // Records packed back to back from `at`, each verifying within `end`,
                // into `found`: where the first that does not verify starts.
                let walk = |mut at: u64, end: u64, found: &mut Vec<u64>, summed: &mut u64| {
                    while let Some(len) = verify(at, end, summed) {
                        found.push(at);
                        at += len;
                    }
                    at
                };
                let mut found = Vec::new();
                let at = walk(first, end, &mut found, &mut ix.summed);
                // Past a record that does not verify (a reservation whose write failed or
                // never came, ahead of a later commit's capsule in the same page), the
                // walk looks on for the next record starting in this page, checksumming
                // at most a page's bytes more: a durable capsule behind such a gap is
                // still found for a proof to be rebuilt from.
                if found.len() == 1 && run > 1 {
                    // The page's one large record: nothing follows it in its run.
                } else if let Some(page_bytes) = self.view.get(base, ps as usize) {
                    let mut budget = ps;
                    let magic = CAPSULE_MAGIC.to_le_bytes();
                    let page_end = base + ps;
                    let mut from = at + 1;
                    while budget > 0 {
                        let lo = (from - base + 4) as usize;
                        let Some(hit) = page_bytes
                            .get(lo..)
                            .and_then(|rest| rest.windows(4).position(|w| w == magic))
                        else {
                            break;
                        };
                        let cand = base + (lo + hit) as u64 - 4;
                        let before = ix.summed;
                        match verify(cand, page_end, &mut ix.summed) {
                            Some(len) => {
                                found.push(cand);
                                // Records packed after it verify as usual.
                                from = walk(cand + len, page_end, &mut found, &mut ix.summed) + 1;
                            }
                            None => from = cand + 1,
                        }
                        budget = budget.saturating_sub((ix.summed - before).max(1));
                    }
                }
                ix.capsules.extend(found.iter().copied());
                // The pages of a run whose record was read hold its bytes, not records
                // of their own: not walked again (a crafted run over others' pages then
                // costs one read of its pages, not one per page).
                if run > 1 && at > first {
                    next = next.max(page.saturating_add(run));
                }
            }
        }
        ix
    }
}

/// Whether a stored 4-byte checksum field is `value` or differs from it in at most
/// [`FIELD_DAMAGE_BITS_MAX`] bits: damage to the field itself. A field written for other
/// contents differs at random (about 16 bits), so this never accepts foreign bytes but
/// with odds of about 1 in 8 million.
fn near(stored: Option<&[u8]>, value: u32) -> bool {
    stored
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|b| (u32::from_le_bytes(b) ^ value).count_ones() <= FIELD_DAMAGE_BITS_MAX)
}

/// Bits of a damaged checksum field a repair accepts as damage rather than as a field
/// written for other contents.
const FIELD_DAMAGE_BITS_MAX: u32 = 2;

/// Whether a rebuilt 32-byte log page header is confirmed by the stored one: by its
/// stored checksum, or (the checksum field alone damaged) every other stored byte.
fn header_confirmed(rebuilt: &[u8], stored: &[u8]) -> bool {
    rebuilt.get(..4) == stored.get(..4)
        || (rebuilt.get(4..32) == stored.get(4..32) && near(stored.get(..4), read_u32(rebuilt)))
}

fn blank(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

fn read_u32(b: &[u8]) -> u32 {
    b.get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

/// `value` and every value that differs from it in one or two bits.
fn within_two_bits(value: u64) -> impl Iterator<Item = u64> {
    std::iter::once(value)
        .chain((0..64).map(move |i| value ^ (1 << i)))
        .chain((0..64).flat_map(move |i| ((i + 1)..64).map(move |j| value ^ (1 << i) ^ (1 << j))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const PS: u32 = 4096;

    /// The lookup a proof rebuild uses: a proof's checksum is the rest of it, its
    /// sequence and a constant combined (CRC-32 is affine over one length).
    #[test]
    fn a_proofs_checksum_splits_into_its_sequence_and_the_rest() {
        let mut rng = crate::rng::Rng::new(7);
        for _ in 0..1000 {
            let p = Proof {
                seq: rng.next_u64(),
                snapshot: rng.next_u64(),
                capsule_offset: rng.next_u64(),
                capsule_len: rng.next_u64() as u32,
                capsule_checksum: rng.next_u64() as u32,
                write_digest: rng.next_u64() as u32,
                entry_count: rng.next_u64() as u32,
            };
            assert_eq!(
                Proof::checksum_of(&p.encode()),
                rest_checksum(&p) ^ seq_checksum(p.seq) ^ zeros_checksum()
            );
        }
    }

    fn file_with(page: u64, header: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; 6 * PS as usize];
        let at = (page * u64::from(PS)) as usize;
        bytes[at..at + header.len()].copy_from_slice(header);
        bytes
    }

    /// Capsule pages `2..2 + n`, each with a header that verifies (`run_pages` 1, or
    /// `run` on page 2, whose later pages then have none) and a checksum-valid record at
    /// offset 32 of `page_size` bytes: each record ends at the next page's offset 32,
    /// over its page header.
    fn chained_capsule_pages(n: u64, run: u32) -> Vec<u8> {
        let ps = PS as usize;
        let mut bytes = vec![0u8; (2 + n as usize + 1) * ps];
        for page in 2..2 + n {
            if page > 2 && page < 2 + u64::from(run) {
                continue;
            }
            let at = page as usize * ps;
            let mut kh = [0u8; 16];
            kh[..4].copy_from_slice(&(if page == 2 { run } else { 1 }).to_le_bytes());
            write_log_page_header(&mut bytes[at..at + ps], PageKind::Capsule, page, &kh).unwrap();
        }
        for page in 2..2 + n {
            let at = page as usize * ps + LOG_PAGE_HEADER_LEN;
            bytes[at + 4..at + 8].copy_from_slice(&CAPSULE_MAGIC.to_le_bytes());
            bytes[at + 8..at + 12].copy_from_slice(&PS.to_le_bytes());
        }
        // Checksums last to first: a record's bytes include the next page's header,
        // whose record checksum is then already in place.
        for page in (2..2 + n).rev() {
            let at = page as usize * ps + LOG_PAGE_HEADER_LEN;
            let sum = checksum(&[&bytes[at + 4..at + ps]]);
            bytes[at..at + 4].copy_from_slice(&sum.to_le_bytes());
        }
        bytes
    }

    /// A capsule page with `gap` bytes of a record that does not verify (a reservation
    /// whose write failed, its stale bytes a record's magic and length) before a
    /// committed capsule: its offset, and the page's bytes.
    fn capsule_behind_a_gap(gap: usize) -> (u64, Vec<u8>) {
        let ps = PS as usize;
        let mut bytes = vec![0u8; 4 * ps];
        let at = 2 * ps;
        let mut kh = [0u8; 16];
        kh[0] = 1;
        write_log_page_header(&mut bytes[at..at + ps], PageKind::Capsule, 2, &kh).unwrap();
        let mut writes = crate::types::WriteSet::new();
        let mut t = crate::types::TableWrites::new();
        t.insert(b"key", Some(b"value")).unwrap();
        writes.insert(7, t);
        let rec = crate::format::encode_capsule(3, &writes, &[])
            .unwrap()
            .bytes;
        let stale = at + LOG_PAGE_HEADER_LEN;
        bytes[stale + 4..stale + 8].copy_from_slice(&CAPSULE_MAGIC.to_le_bytes());
        bytes[stale + 8..stale + 12].copy_from_slice(&(gap as u32).to_le_bytes());
        let good = stale + gap;
        bytes[good..good + rec.len()].copy_from_slice(&rec);
        (good as u64, bytes)
    }

    #[test]
    fn a_capsule_behind_a_record_that_does_not_verify_is_indexed() {
        for gap in [40, 300, 1000] {
            let (good, bytes) = capsule_behind_a_gap(gap);
            let view = View::new(Arc::new(bytes));
            let file = LogFile::new(&view, PS, 2);
            let ix = file.build_index();
            assert_eq!(ix.capsules, vec![good], "gap {gap}");
            assert!(ix.summed <= 2 * u64::from(PS), "{}", ix.summed);
            let proof = file.proof_from_capsule(good).expect("the capsule verifies");
            assert_eq!(proof.snapshot, 3);
        }
    }

    #[test]
    fn a_capsule_pages_walk_stays_within_its_page() {
        // Every page's walk went on through the records of every page after it: n²/2
        // entries (a crafted file of 200 MB: about 10^9, a hang and then no memory).
        let view = View::new(Arc::new(chained_capsule_pages(64, 1)));
        let ix = LogFile::new(&view, PS, 2).build_index();
        assert!(ix.capsules.is_empty(), "{} records", ix.capsules.len());
        // A run header lets its one record reach over the run's pages, and those
        // pages are not walked again.
        let view = View::new(Arc::new(chained_capsule_pages(64, 2)));
        let ix = LogFile::new(&view, PS, 2).build_index();
        assert_eq!(
            ix.capsules,
            vec![2 * u64::from(PS) + LOG_PAGE_HEADER_LEN as u64]
        );
    }

    #[test]
    fn runs_claimed_to_the_files_end_are_checksummed_about_once() {
        // Capsule pages 2..2 + n whose verified headers each claim a run to the file's
        // end, each with a record as long as its run whose checksum fails: every page's
        // record was checksummed over the rest of the file, n²/2 pages in all (a crafted
        // file of 200 MB: about 10^9 pages' worth, a hang).
        let n = 64u64;
        let ps = PS as usize;
        let pages = 2 + n as usize;
        let mut bytes = vec![0u8; pages * ps];
        for page in 2..2 + n {
            let at = page as usize * ps;
            let run = u32::try_from(pages as u64 - page).unwrap();
            let mut kh = [0u8; 16];
            kh[..4].copy_from_slice(&run.to_le_bytes());
            write_log_page_header(&mut bytes[at..at + ps], PageKind::Capsule, page, &kh).unwrap();
            let rec = at + LOG_PAGE_HEADER_LEN;
            let len = run * PS - LOG_PAGE_HEADER_LEN as u32;
            bytes[rec + 4..rec + 8].copy_from_slice(&CAPSULE_MAGIC.to_le_bytes());
            bytes[rec + 8..rec + 12].copy_from_slice(&len.to_le_bytes());
        }
        let view = View::new(Arc::new(bytes));
        let file = pages as u64 * u64::from(PS);
        let ix = LogFile::new(&view, PS, 2).build_index();
        assert!(ix.capsules.is_empty(), "{} records", ix.capsules.len());
        assert!(
            ix.summed <= file,
            "{} bytes checksummed of {file}",
            ix.summed
        );
    }

    /// The header of marker page 2 (next page 4, first seq 128) and its bytes.
    fn marker_header_of_page_2() -> (MarkerPageHeader, Vec<u8>) {
        let h = MarkerPageHeader {
            next_page: 4,
            first_seq: 128,
        };
        let mut bytes = vec![0u8; LOG_PAGE_HEADER_LEN];
        write_log_page_header(&mut bytes, PageKind::Marker, 2, &h.encode()).unwrap();
        (h, bytes)
    }

    #[test]
    fn every_single_flip_of_a_marker_page_header_is_rebuilt() {
        let (h, good) = marker_header_of_page_2();
        for bit in 0..LOG_PAGE_HEADER_LEN * 8 {
            let mut damaged = good.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let view = View::new(Arc::new(file_with(2, &damaged)));
            let f = LogFile::new(&view, PS, 2);
            let (got, bytes, confirmed) = f.rebuild_marker_header(2, 128).unwrap();
            assert_eq!((got, &bytes), (h, &good), "bit {bit}");
            // Only a flip in the checksum itself leaves `next_page` unconfirmed.
            assert_eq!(confirmed, bit >= 32, "bit {bit}");
        }
        // A page never started, or one of another stream position, is not rebuilt.
        let view = View::new(Arc::new(file_with(2, &[])));
        assert!(
            LogFile::new(&view, PS, 2)
                .rebuild_marker_header(2, 128)
                .is_none()
        );
        let view = View::new(Arc::new(file_with(2, &good)));
        assert!(
            LogFile::new(&view, PS, 2)
                .rebuild_marker_header(2, 255)
                .is_none()
        );
    }

    /// `next_page` damaged in two bits is rebuilt; in three, no page of the file is tried
    /// in its place (any could match the stored checksum by chance), so the header is
    /// damage.
    #[test]
    fn a_next_page_is_rebuilt_only_within_two_bits_of_the_stored_one() {
        let (h, good) = marker_header_of_page_2();
        // `next_page` is the kind header's first field: bytes 16..24 of the page.
        let damaged_in = |bits: &[usize]| {
            let mut d = good.clone();
            for &b in bits {
                d[16 + b / 8] ^= 1 << (b % 8);
            }
            d
        };
        let view = View::new(Arc::new(file_with(2, &damaged_in(&[0, 1]))));
        let (got, _, confirmed) = LogFile::new(&view, PS, 2)
            .rebuild_marker_header(2, 128)
            .unwrap();
        assert_eq!((got, confirmed), (h, true));
        let view = View::new(Arc::new(file_with(2, &damaged_in(&[0, 1, 3]))));
        assert!(
            LogFile::new(&view, PS, 2)
                .rebuild_marker_header(2, 128)
                .is_none()
        );
    }

    #[test]
    fn a_marker_of_another_history_is_not_taken_for_a_damaged_one() {
        // A proof page holding a valid proof of seq 5.
        let mut kh = [0u8; 16];
        kh[..4].copy_from_slice(&1u32.to_le_bytes());
        let mut page = vec![0u8; LOG_PAGE_HEADER_LEN];
        write_log_page_header(&mut page, PageKind::Proof, 3, &kh).unwrap();
        let proof = Proof {
            seq: 5,
            snapshot: 4,
            capsule_offset: 9999,
            capsule_len: 40,
            capsule_checksum: 1,
            write_digest: 2,
            entry_count: 1,
        }
        .encode();
        page.extend_from_slice(&proof);
        let view = View::new(Arc::new(file_with(3, &page)));
        let mut f = LogFile::new(&view, PS, 2);
        let offset = 3 * u64::from(PS) + LOG_PAGE_HEADER_LEN as u64;
        let m = Marker {
            seq: 5,
            proof_offset: offset,
            proof_checksum: Proof::checksum_of(&proof),
        };
        // Chained to predecessor 7: intact fields, but a chain for another history.
        let (foreign, _) = m.encode(7);
        assert!(f.rebuild_marker(&foreign, 5, 9, None).is_none());
        // The same record with one flipped bit in any place is rebuilt.
        let (good, chain) = m.encode(9);
        for bit in 0..MARKER_LEN * 8 {
            let mut damaged = good;
            damaged[bit / 8] ^= 1 << (bit % 8);
            let got = f.rebuild_marker(&damaged, 5, 9, None);
            assert_eq!(got, Some((m, chain, good)), "bit {bit}");
        }
    }

    #[test]
    fn every_single_flip_of_a_log_page_header_is_rebuilt() {
        for (kind, run) in [(PageKind::Proof, 1u64), (PageKind::Capsule, 3)] {
            let mut kh = [0u8; 16];
            kh[..4].copy_from_slice(&(run as u32).to_le_bytes());
            let mut good = vec![0u8; LOG_PAGE_HEADER_LEN];
            write_log_page_header(&mut good, kind, 3, &kh).unwrap();
            for bit in 0..LOG_PAGE_HEADER_LEN * 8 {
                let mut damaged = good.clone();
                damaged[bit / 8] ^= 1 << (bit % 8);
                let view = View::new(Arc::new(file_with(3, &damaged)));
                let f = LogFile::new(&view, PS, 2);
                assert_eq!(f.rebuild_log_header(3, kind, run), Some(good.clone()));
                // Another run length is never confirmed.
                assert_eq!(f.rebuild_log_header(3, kind, run + 1), None, "bit {bit}");
            }
        }
    }
}
