//! The fuzz harnesses: what each cargo-fuzz target does with its input bytes.
//!
//! The targets in `fuzz_targets/` are one-line wrappers around these functions, and
//! `tests/fuzz_corpus.rs` in the root package includes this file with `#[path]` to replay
//! the committed corpus and the regressions as ordinary tests on stable. So this file
//! depends on `capsuledb` and `std` only — no libFuzzer types.
//!
//! Each harness panics only when capsuledb misbehaves: a panic inside the engine, a
//! wrong answer against a model, a decoder that accepts what it should refuse or
//! re-encodes differently, or an error where none is allowed.
//!
//! - [`fuzz_open_bytes`]: arbitrary file bytes opened as a database, then read,
//!   checked, committed to, checkpointed and closed: errors allowed, panics not.
//! - [`fuzz_decode`]: every public decoder of `capsuledb::format` on arbitrary bytes
//!   (raw, and with the checksum fixed up so the structural checks behind it are
//!   reached), plus tree, run and log pages replaced inside a real database with a
//!   valid checksum, which reaches the decoders that are not public (B+tree nodes,
//!   overflow and free-list runs, the marker stream), and committed capsules replaced
//!   with their proof and marker chain fixed up, which reaches recovery's replay.
//! - [`fuzz_api_model`]: the input as a sequence of API operations on simulated
//!   storage, checked against a `BTreeMap` model, with checkpoints, compaction,
//!   reopens, crashes (process crash, power loss with torn writes, power loss losing
//!   everything unsynced) and power cuts after a number of I/O operations.

use capsuledb::format::{
    CAPSULE_HEADER_LEN, HEADER_COPY_OFFSETS, HEADER_LEN, Header, LOG_PAGE_HEADER_LEN, MARKER_LEN,
    Marker, MarkerPageHeader, PROOF_LEN, PageKind, Proof, capsule_total_len, checksum,
    decode_capsule, encode_capsule, first_data_page, slots_per_page, verify_log_page,
    verify_sealed_page,
};
use capsuledb::storage::SimStorage;
use capsuledb::{
    Connection, Database, Durability, Error, Isolation, MAX_KEY_LEN, Options, Transaction,
};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

// ---------------------------------------------------------------------------------------
// Input reading
// ---------------------------------------------------------------------------------------

/// Reads the fuzz input front to back; past the end every byte reads as zero.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        out.copy_from_slice(s);
    }
    u64::from_le_bytes(out)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        out.copy_from_slice(s);
    }
    u32::from_le_bytes(out)
}

// ---------------------------------------------------------------------------------------
// open_bytes
// ---------------------------------------------------------------------------------------

/// Entries read from one scan of an arbitrary file, at most: a bound so a damaged tree
/// that loops cannot keep the harness busy (the engine's own bounds are what is tested).
const SCAN_ENTRIES_MAX: usize = 100_000;
/// Tables of an arbitrary file scanned, at most.
const SCAN_TABLES_MAX: usize = 64;
/// Keys of each scanned table read back with `get`, at most.
const GETS_PER_TABLE_MAX: usize = 64;

fn open_sim(sim: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(1)
        .open_storage(Arc::new(sim.clone()))
}

/// Opens arbitrary file bytes as a database. If that works: lists the tables, scans
/// each forwards and backwards, reads keys back, runs `check_integrity()`, commits
/// once, checkpoints and closes. Every step may fail with an error; none may panic,
/// hang or allocate without bound.
pub fn fuzz_open_bytes(data: &[u8]) {
    let sim = SimStorage::from_bytes(data.to_vec());
    if let Ok(db) = open_sim(&sim) {
        exercise(db);
    }
}

/// Everything `fuzz_open_bytes` does with a database that opened.
fn exercise(db: Database) {
    let _ = db.info();
    let _ = db.stats();
    let mut conn = db.connect();
    let mut before = Vec::new();
    if let Ok(tx) = conn.begin_read() {
        if let Ok(names) = tx.tables() {
            for name in names.iter().take(SCAN_TABLES_MAX) {
                read_table(&tx, name);
            }
            before = names;
        }
        let _ = tx.get("no such table", b"k");
    }
    let _ = db.check_integrity();
    // One commit: a new table with one key, and a write to the first existing table.
    // Whatever the file held, a commit that succeeded reads back.
    const FRESH: &str = "fuzz-new-table";
    let mut committed = false;
    if let Ok(mut tx) = conn.begin() {
        let created = !before.iter().any(|n| n == FRESH) && tx.create_table(FRESH).is_ok();
        let put = created && tx.put(FRESH, b"fuzz-key", b"fuzz-value").is_ok();
        if let Some(first) = before.first() {
            let _ = tx.put(first, b"fuzz-key", b"fuzz-value");
            let _ = tx.delete(first, b"");
        }
        committed = tx.commit_with(Durability::Durable).is_ok() && put;
    }
    if committed && let Ok(tx) = conn.begin_read() {
        if let Ok(names) = tx.tables() {
            assert!(
                names.iter().any(|n| n == FRESH),
                "a committed create_table is missing: {names:?}"
            );
            assert!(
                !names.iter().any(|n| n == "fuzz-key") || before.iter().any(|n| n == "fuzz-key"),
                "a key put into a new table shows up as a table name: the new table got \
                 the catalog's id"
            );
        }
        if let Ok(v) = tx.get(FRESH, b"fuzz-key") {
            assert_eq!(
                v.as_deref(),
                Some(&b"fuzz-value"[..]),
                "a committed put reads back wrong"
            );
        }
        if let Ok(n) = tx.len(FRESH) {
            assert_eq!(n, 1, "a new table holds more than what was put into it");
        }
    }
    drop(conn);
    let _ = db.checkpoint();
    let _ = db.close();
}

/// Scans `name` both ways and reads keys back; errors end a step, never the harness.
fn read_table(tx: &Transaction<'_>, name: &str) {
    let mut keys = Vec::new();
    if let Ok(it) = tx.iter(name) {
        for item in it.take(SCAN_ENTRIES_MAX) {
            match item {
                Ok((k, v)) => {
                    let _ = v.len();
                    if keys.len() < GETS_PER_TABLE_MAX {
                        keys.push(k);
                    }
                }
                Err(_) => break,
            }
        }
    }
    if let Ok(it) = tx.range_rev::<&[u8], _>(name, ..) {
        for item in it.take(SCAN_ENTRIES_MAX) {
            if item.is_err() {
                break;
            }
        }
    }
    for k in &keys {
        let _ = tx.get(name, k);
        let _ = tx.get_ref(name, k);
    }
    if let (Some(lo), Some(hi)) = (keys.first(), keys.last())
        && let Ok(mut it) = tx.range(name, lo.as_slice()..=hi.as_slice())
    {
        // Both ends, alternately.
        for i in 0..GETS_PER_TABLE_MAX {
            let step = if i % 2 == 0 {
                it.next()
            } else {
                it.next_back()
            };
            match step {
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    }
    let _ = tx.get(name, b"");
    let _ = tx.is_empty(name);
}

// ---------------------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------------------

/// Modes of [`fuzz_decode`], chosen by the first input byte modulo this.
pub const DECODE_MODES: u8 = 10;
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
        _ => capsule_in_database(rest),
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

const SEALED_KINDS: [PageKind; 4] = [
    PageKind::Branch,
    PageKind::Leaf,
    PageKind::Overflow,
    PageKind::FreeList,
];
const LOG_KINDS: [PageKind; 3] = [PageKind::Capsule, PageKind::Proof, PageKind::Marker];

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

/// Page size of the sample databases.
const SAMPLE_PAGE_SIZE: usize = 4096;

/// Pages of `file` whose header names their own page number and one of `kinds`.
fn pages_of_kind(file: &[u8], page_size: usize, kinds: &[PageKind]) -> Vec<(u64, PageKind)> {
    let first = first_data_page(page_size as u32) as usize;
    (first..file.len() / page_size)
        .filter_map(|p| {
            let at = p * page_size;
            let kind = PageKind::from_u8(*file.get(at + 4)?)?;
            (kinds.contains(&kind) && u64_at(file, at + 8) == p as u64).then_some((p as u64, kind))
        })
        .collect()
}

/// The sample database the in-database modes mutate (built once per process).
fn base_database() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| sample_database(SAMPLE_PAGE_SIZE as u32, true, true))
}

/// Replaces part of one page of the sample database with fuzz bytes, fixes its
/// checksum, opens the file and uses it like `fuzz_open_bytes`.
///
/// Input: `[page index, flags, offset / 16, bytes...]`. The bytes overwrite the page
/// from byte `16 + 16 * offset`, so the kind, version and page number stay valid; flag
/// bit 0 also rewrites the kind byte (to `kinds[flags >> 1 % kinds]`).
fn page_in_database(rest: &[u8], tree: bool) {
    let kinds: &[PageKind] = if tree { &SEALED_KINDS } else { &LOG_KINDS };
    let mut file = base_database().to_vec();
    let ps = SAMPLE_PAGE_SIZE;
    let pages = pages_of_kind(&file, ps, kinds);
    let mut input = Input::new(rest);
    let index = usize::from(input.u8());
    let flags = input.u8();
    let offset = 16 + 16 * usize::from(input.u8());
    let Some(&(page, _)) = pages.get(index % pages.len().max(1)) else {
        return;
    };
    let start = page as usize * ps;
    let body = rest.get(3..).unwrap_or(&[]);
    // Overwrite inside this page and the ones after it (runs span pages), never
    // past the file's end.
    for (i, &b) in body.iter().enumerate() {
        if let Some(x) = file.get_mut(start + offset + i) {
            *x = b;
        }
    }
    if flags & 1 == 1 {
        file[start + 4] = kinds[usize::from(flags >> 1) % kinds.len()] as u8;
    }
    let kind = PageKind::from_u8(file[start + 4]);
    let end = match kind {
        Some(PageKind::Overflow | PageKind::FreeList) => {
            let n = u32_at(&file, start + 16) as usize;
            start + n.max(1) * ps
        }
        Some(PageKind::Branch | PageKind::Leaf) => start + ps,
        _ => start + LOG_PAGE_HEADER_LEN,
    };
    if let Some(covered) = file.get(start + 4..end) {
        let sum = checksum(&[covered]);
        file[start..start + 4].copy_from_slice(&sum.to_le_bytes());
    }
    let sim = SimStorage::from_bytes(file);
    if let Ok(db) = open_sim(&sim) {
        exercise(db);
    }
}

/// Where one commit of the log sits in a database file.
struct LogCommit {
    marker_at: usize,
    proof_at: usize,
    capsule_at: usize,
    capsule_len: usize,
    /// The chain value the commit's marker chains to.
    prev_chain: u32,
}

/// Log marker pages followed, at most (the samples use one or two).
const MARKER_PAGES_MAX: usize = 64;

/// The commits in the log of `file` after its checkpoint, in sequence order.
fn log_commits(file: &[u8]) -> Vec<LogCommit> {
    let mut out = Vec::new();
    let Some(header) = (0..2u32)
        .filter_map(|c| {
            let at = usize::try_from(HEADER_COPY_OFFSETS[c as usize]).ok()?;
            Header::decode(file.get(at..)?, c).ok()
        })
        .max_by_key(|h| h.generation)
    else {
        return out;
    };
    let ps = header.page_size as usize;
    let slots = slots_per_page(header.page_size);
    let mut seq = header.checkpoint_seq + 1;
    let mut chain = header.marker_chain_seed;
    let mut page = header.marker_start_page;
    for _ in 0..MARKER_PAGES_MAX {
        let Some(start) = usize::try_from(page).ok().and_then(|p| p.checked_mul(ps)) else {
            return out;
        };
        let Some(kh) = file
            .get(start..start.saturating_add(ps))
            .and_then(|b| verify_log_page(b, PageKind::Marker, page).ok())
        else {
            return out;
        };
        let ph = MarkerPageHeader::decode(&kh);
        let Some(mut slot) = seq.checked_sub(ph.first_seq) else {
            return out;
        };
        while slot < slots {
            let at = start + LOG_PAGE_HEADER_LEN + slot as usize * MARKER_LEN;
            let Some((m, c)) = file
                .get(at..at + MARKER_LEN)
                .and_then(|b| Marker::decode(b, seq, chain))
            else {
                return out;
            };
            let proof_at = usize::try_from(m.proof_offset).unwrap_or(usize::MAX);
            let Some((p, _)) = file.get(proof_at..).and_then(|b| Proof::decode(b).ok()) else {
                return out;
            };
            out.push(LogCommit {
                marker_at: at,
                proof_at,
                capsule_at: usize::try_from(p.capsule_offset).unwrap_or(usize::MAX),
                capsule_len: p.capsule_len as usize,
                prev_chain: chain,
            });
            chain = c;
            seq += 1;
            slot += 1;
        }
        page = ph.next_page;
    }
    out
}

/// Replaces bytes of one committed capsule of the sample database, then makes the
/// log consistent again: the capsule's checksum (and `total_len` unless flag bit 0),
/// its proof's checksum, entry count and digest (when the capsule still decodes),
/// and the marker chain from its marker on. Recovery then replays what the fuzzer
/// wrote.
///
/// Input: `[commit index, flags, offset / 8, bytes...]`; the bytes overwrite the
/// capsule from byte `8 * offset` (at least 4: the checksum is computed), inside the
/// record.
fn capsule_in_database(rest: &[u8]) {
    let mut file = base_database().to_vec();
    let commits = log_commits(&file);
    let mut input = Input::new(rest);
    let index = usize::from(input.u8()) % commits.len().max(1);
    let flags = input.u8();
    let offset = (8 * usize::from(input.u8())).max(4);
    let Some(target) = commits.get(index) else {
        return;
    };
    let end = target.capsule_at + target.capsule_len;
    for (i, &b) in rest.get(3..).unwrap_or(&[]).iter().enumerate() {
        match file.get_mut(target.capsule_at + offset + i) {
            Some(x) if target.capsule_at + offset + i < end => *x = b,
            _ => break,
        }
    }
    let Some(rec) = file.get_mut(target.capsule_at..end) else {
        return;
    };
    if flags & 1 == 0 && rec.len() >= CAPSULE_HEADER_LEN {
        let len = u32::try_from(rec.len()).unwrap_or(u32::MAX);
        rec[8..12].copy_from_slice(&len.to_le_bytes());
    }
    if rec.len() >= 4 {
        let sum = checksum(&[&rec[4..]]);
        rec[..4].copy_from_slice(&sum.to_le_bytes());
    }
    let decoded = decode_capsule(rec).ok();
    let capsule_sum = u32_at(rec, 0);
    let Some((mut proof, _)) = file
        .get(target.proof_at..)
        .and_then(|b| Proof::decode(b).ok())
    else {
        return;
    };
    proof.capsule_checksum = capsule_sum;
    if let Some(c) = decoded {
        proof.entry_count = c.entry_count;
        proof.write_digest = c.write_digest;
        proof.snapshot = c.snapshot;
    }
    let enc = proof.encode();
    file[target.proof_at..target.proof_at + PROOF_LEN].copy_from_slice(&enc);
    let mut chain = target.prev_chain;
    for (j, c) in commits.iter().enumerate().skip(index) {
        let Some(b) = file.get(c.marker_at..c.marker_at + MARKER_LEN) else {
            return;
        };
        let mut m = Marker {
            seq: u64_at(b, 0),
            proof_offset: u64_at(b, 8),
            proof_checksum: u32_at(b, 16),
        };
        if j == index {
            m.proof_checksum = Proof::checksum_of(&enc);
        }
        let (bytes, next) = m.encode(chain);
        file[c.marker_at..c.marker_at + MARKER_LEN].copy_from_slice(&bytes);
        chain = next;
    }
    let sim = SimStorage::from_bytes(file);
    if let Ok(db) = open_sim(&sim) {
        exercise(db);
    }
}

/// A small database with two tables, values inline and in overflow runs.
/// `checkpointed`: folded into the tree twice (so a free list exists); `tail`: more
/// commits after the last checkpoint, left in the log. Closed cleanly.
pub fn sample_database(page_size: u32, checkpointed: bool, tail: bool) -> Vec<u8> {
    let sim = SimStorage::new();
    let db = Options::new()
        .page_size(page_size)
        .random_seed(7)
        .open_storage(Arc::new(sim.clone()))
        .expect("create the sample database");
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("begin");
    tx.create_table("a").expect("create a");
    tx.create_table("b").expect("create b");
    for i in 0..120u32 {
        let len = if i % 40 == 7 {
            3000
        } else {
            8 + (i as usize % 30)
        };
        let v: Vec<u8> = (0..len).map(|j| (i as usize * 7 + j) as u8).collect();
        tx.put("a", format!("key{i:04}").as_bytes(), &v)
            .expect("put");
    }
    for i in 0..10u32 {
        tx.put("b", &i.to_be_bytes(), b"b-value").expect("put");
    }
    tx.commit().expect("commit");
    if checkpointed {
        db.checkpoint().expect("checkpoint");
        let mut tx = conn.begin().expect("begin");
        for i in (0..120u32).step_by(3) {
            tx.delete("a", format!("key{i:04}").as_bytes())
                .expect("delete");
        }
        tx.put("a", b"key0007", b"now short").expect("put");
        tx.commit().expect("commit");
        db.checkpoint().expect("checkpoint");
    }
    if tail {
        let mut tx = conn.begin().expect("begin");
        tx.put("b", b"tail", &[9u8; 2000]).expect("put");
        tx.delete("a", b"key0001").expect("delete");
        tx.commit_with(Durability::Written).expect("commit");
        let mut tx = conn.begin().expect("begin");
        tx.create_table("c").expect("create c");
        tx.put("c", b"", b"empty key").expect("put");
        tx.drop_table("b").expect("drop b");
        tx.commit().expect("commit");
    }
    drop(conn);
    db.close().expect("close");
    sim.crash_losing_unsynced();
    trim_database(sim.live_bytes())
}

/// Cuts the zero pages at the end of a database file that its header does not count
/// (the engine grows files in large steps), so samples and seeds stay small.
pub fn trim_database(mut file: Vec<u8>) -> Vec<u8> {
    let Ok(header) = Header::decode(&file, 0) else {
        return file;
    };
    let ps = header.page_size as usize;
    let counted = usize::try_from(header.page_count)
        .unwrap_or(usize::MAX)
        .saturating_mul(ps);
    let used = file
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| (i / ps + 1) * ps);
    file.truncate(counted.max(used));
    file
}

// ---------------------------------------------------------------------------------------
// api_model
// ---------------------------------------------------------------------------------------

type Key = Vec<u8>;
type Table = BTreeMap<Key, Vec<u8>>;
type Model = BTreeMap<String, Table>;

/// The tables operations name (`t3` is never created, so some names always miss).
pub const MODEL_TABLES: [&str; 3] = ["t0", "t1", "t2"];
/// Operations run per input, at most (keeps every input fast).
const OPS_MAX: usize = 600;
/// Reopens and crashes per input, at most.
const SESSIONS_MAX: usize = 12;
/// `begin_read` snapshots held at once, at most.
const READERS_MAX: usize = 2;

/// Operation codes of [`fuzz_api_model`] (an op byte modulo [`OP_COUNT`]); the bytes
/// after each are its arguments, as read by `run_session`.
pub mod op {
    /// `[iso]`: rolls back any open transaction and begins one (Snapshot if iso is odd).
    pub const BEGIN: u8 = 0;
    /// `[t]`: create table `t % 3`.
    pub const CREATE: u8 = 1;
    /// `[t]`: drop table.
    pub const DROP: u8 = 2;
    /// `[t, key.., value..]`: put.
    pub const PUT: u8 = 3;
    /// `[t, key..]`: delete.
    pub const DELETE: u8 = 4;
    /// `[t, key..]`: get (and get_ref).
    pub const GET: u8 = 5;
    /// `[t, lo.., hi.., pattern]`: a range read from both ends as `pattern`'s bits say.
    pub const RANGE: u8 = 6;
    /// `[]`: list tables, count and scan every table, read every key back.
    pub const CHECK_ALL: u8 = 7;
    /// `[level]`: commit at `Applied`, `Written`, `Durable` (level % 3).
    pub const COMMIT: u8 = 8;
    /// `[]`: roll back.
    pub const ROLLBACK: u8 = 9;
    /// `[]`: `Database::checkpoint`.
    pub const CHECKPOINT: u8 = 10;
    /// `[]`: `Database::compact`.
    pub const COMPACT: u8 = 11;
    /// `[kind, seed x8]`: crash (kind % 3: process crash, power loss keeping a seeded
    /// subset of unsynced writes, power loss keeping none) and reopen the image.
    pub const CRASH: u8 = 12;
    /// `[]`: close, lose everything unsynced (nothing may be lost), reopen.
    pub const REOPEN: u8 = 13;
    /// `[]`: `check_integrity()` must find no problem.
    pub const INTEGRITY: u8 = 14;
    /// `[]`: open a `begin_read` snapshot (dropping the oldest past the limit).
    pub const OPEN_READER: u8 = 15;
    /// `[i]`: check everything snapshot `i` sees against its model.
    pub const CHECK_READER: u8 = 16;
    /// `[n]`: the power goes out after `n % 64` more storage operations; the first
    /// error that follows ends the session in a crash.
    pub const POWER_CUT: u8 = 17;
    /// `[]`: `collect_garbage`.
    pub const GC: u8 = 18;
    /// Number of operation codes.
    pub const COUNT: u8 = 19;
}

/// Number of operation codes (op bytes are taken modulo this).
pub const OP_COUNT: u8 = op::COUNT;

fn read_key(input: &mut Input<'_>) -> Key {
    let l = input.u8();
    match l {
        // Short keys from a four-letter alphabet, so they collide.
        0..=239 => {
            let n = usize::from(l % 4);
            (0..n).map(|_| b'a' + input.u8() % 4).collect()
        }
        // Long keys around the limit (some over it).
        240..=247 => {
            let fill = input.u8();
            vec![fill; MAX_KEY_LEN - 4 + usize::from(l - 240)]
        }
        // Raw bytes.
        _ => {
            let n = usize::from(input.u8() % 16);
            input.bytes(n)
        }
    }
}

fn read_value(input: &mut Input<'_>) -> Vec<u8> {
    let l = input.u8();
    if l < 224 {
        let n = usize::from(l % 8);
        input.bytes(n)
    } else {
        // Large values: inline up to a quarter page, overflow runs beyond.
        let n = usize::from(l - 223) * 700;
        let seed = input.u8();
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }
}

fn read_bound(input: &mut Input<'_>) -> Bound<Key> {
    match input.u8() % 3 {
        0 => Bound::Unbounded,
        1 => Bound::Included(read_key(input)),
        _ => Bound::Excluded(read_key(input)),
    }
}

fn in_range(lo: &Bound<Key>, hi: &Bound<Key>, k: &[u8]) -> bool {
    std::ops::RangeBounds::<[u8]>::contains(
        &(
            lo.as_ref().map(Vec::as_slice),
            hi.as_ref().map(Vec::as_slice),
        ),
        k,
    )
}

/// Committed states since the last reopen and how far acknowledgements reach.
struct History {
    /// `states[0]`: what the database held when it was opened; then one state per
    /// commit that wrote, in sequence order. A commit that failed during a power cut
    /// adds its state too (it may or may not have reached the disk) and ends the session.
    states: Vec<Model>,
    /// Index of the newest state acknowledged `Durable` (or made durable by a close).
    durable: usize,
    /// Index of the newest state acknowledged `Written` or `Durable`.
    written: usize,
}

impl History {
    fn latest(&self) -> &Model {
        self.states.last().expect("history is never empty")
    }

    fn push(&mut self, state: Model, level: Option<Durability>) {
        self.states.push(state);
        let i = self.states.len() - 1;
        match level {
            Some(Durability::Durable) => {
                self.durable = i;
                self.written = i;
            }
            Some(Durability::Written) => self.written = i,
            _ => {}
        }
    }
}

/// Where a crash leaves the file and which acknowledgements must survive it.
struct CrashImage {
    storage: SimStorage,
    floor: usize,
    what: String,
}

/// How a session ended.
enum SessionEnd {
    /// The input is used up (or its op budget): close and stop. `power_cut`: a power
    /// cut was armed, so closing may fail.
    Done { power_cut: bool },
    /// Close cleanly, then reopen.
    Reopen { power_cut: bool },
    /// Reopen this crash image.
    Crash(CrashImage),
}

fn io_failure(e: &Error) -> bool {
    matches!(e, Error::Io { .. } | Error::Poisoned { .. })
}

fn crash_image(sim: &SimStorage, kind: u8, seed: u64, hist: &History) -> CrashImage {
    let image = sim.fork();
    match kind % 3 {
        0 => CrashImage {
            // The process dies: what was handed to the OS survives, no more.
            storage: SimStorage::from_bytes(image.live_bytes()),
            floor: hist.written,
            what: "process crash".into(),
        },
        1 => {
            image.crash(seed);
            CrashImage {
                storage: image,
                floor: hist.durable,
                what: format!("power loss, seed {seed}"),
            }
        }
        _ => {
            image.crash_losing_unsynced();
            CrashImage {
                storage: image,
                floor: hist.durable,
                what: "power loss losing every unsynced write".into(),
            }
        }
    }
}

/// Everything a database holds, read through a fresh snapshot.
fn read_state(db: &Database) -> Model {
    let mut conn = db.connect();
    let tx = conn
        .begin_read()
        .expect("begin_read on a recovered database");
    let mut model = Model::new();
    for name in tx.tables().expect("list tables") {
        let table: Table = tx
            .iter(&name)
            .expect("scan")
            .map(|r| r.map(|(k, v)| (k, v.to_vec())).expect("scan entry"))
            .collect();
        for (k, v) in &table {
            assert_eq!(tx.get(&name, k).expect("get").as_ref(), Some(v));
        }
        model.insert(name, table);
    }
    model
}

/// Checks everything `tx` sees against `model`.
fn check_view(tx: &Transaction<'_>, model: &Model) {
    let names: Vec<String> = model.keys().cloned().collect();
    assert_eq!(tx.tables().expect("tables"), names, "table list");
    for name in MODEL_TABLES {
        match model.get(name) {
            None => assert!(
                matches!(tx.get(name, b"a"), Err(Error::TableNotFound { .. })),
                "{name} should not exist"
            ),
            Some(table) => {
                let got: Vec<(Key, Vec<u8>)> = tx
                    .iter(name)
                    .expect("iter")
                    .map(|r| r.map(|(k, v)| (k, v.to_vec())).expect("scan entry"))
                    .collect();
                let want: Vec<(Key, Vec<u8>)> =
                    table.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert_eq!(got, want, "scan of {name}");
                let mut rev: Vec<(Key, Vec<u8>)> = tx
                    .range_rev::<&[u8], _>(name, ..)
                    .expect("range_rev")
                    .map(|r| r.map(|(k, v)| (k, v.to_vec())).expect("scan entry"))
                    .collect();
                rev.reverse();
                assert_eq!(rev, want, "reverse scan of {name}");
                assert_eq!(tx.len(name).expect("len"), table.len() as u64);
                assert_eq!(tx.is_empty(name).expect("is_empty"), table.is_empty());
                for (k, v) in table {
                    assert_eq!(tx.get(name, k).expect("get").as_ref(), Some(v));
                }
            }
        }
    }
}

/// The open read-write transaction and the model of what it sees.
struct Open<'c> {
    tx: Transaction<'c>,
    view: Model,
    wrote: bool,
}

/// Interprets the input as API operations against a `BTreeMap` model on simulated
/// storage (see [`op`] for the encoding). The first byte chooses options: page size,
/// version-store budget and checkpoint interval (small ones make checkpoints run on
/// their own). After every crash the reopened database must hold exactly the state
/// after some commit at or after the last one whose acknowledgement must survive that
/// crash, and `check_integrity()` must be clean.
pub fn fuzz_api_model(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    let options = Options::new()
        .random_seed(u64::from(config))
        .page_size(if config & 1 == 0 { 4096 } else { 8192 })
        .version_store_budget(match (config >> 1) & 3 {
            0 | 1 => 64 << 20,
            2 => 16 << 10,
            _ => 2 << 10,
        })
        .checkpoint_log_commits(if config & 8 == 0 { 100_000 } else { 4 });
    let mut sim = SimStorage::new();
    let mut hist = History {
        states: vec![Model::new()],
        durable: 0,
        written: 0,
    };
    let mut ops_left = OPS_MAX;
    let mut context = "create".to_string();
    for _ in 0..SESSIONS_MAX {
        let db = options
            .open_storage(Arc::new(sim.clone()))
            .unwrap_or_else(|e| panic!("open after {context}: {e}"));
        let got = read_state(&db);
        let floor = hist.durable.min(hist.written);
        let Some(i) = (floor..hist.states.len())
            .rev()
            .find(|&i| hist.states[i] == got)
        else {
            panic!(
                "after {context} the database holds a state that is not a commit prefix at \
                 or after the last one that must survive (index {floor} of {}):\n  got {got:?}\n  \
                 latest {:?}\n  floor {:?}",
                hist.states.len(),
                hist.latest(),
                hist.states[floor],
            )
        };
        let report = db.check_integrity().expect("check_integrity");
        assert!(report.is_ok(), "after {context}: {:?}", report.problems);
        hist = History {
            states: vec![hist.states.swap_remove(i)],
            durable: 0,
            written: 0,
        };
        let end = run_session(&db, &sim, &mut input, &mut hist, &mut ops_left);
        match end {
            SessionEnd::Crash(image) => {
                // Dropping the old engine drains into the old storage; the image is
                // already taken.
                drop(db);
                hist.durable = image.floor;
                hist.written = image.floor;
                context = image.what;
                sim = image.storage;
            }
            SessionEnd::Reopen { power_cut } | SessionEnd::Done { power_cut } => {
                let done = matches!(end, SessionEnd::Done { .. });
                match db.close() {
                    Ok(()) => {
                        // Closing wrote and synced every commit.
                        sim.crash_losing_unsynced();
                        let last = hist.states.len() - 1;
                        hist.durable = last;
                        hist.written = last;
                        context = "close and reopen".into();
                    }
                    Err(e) if power_cut => {
                        let image = crash_image(&sim, 1, 0, &hist);
                        context = format!("close failing after a power cut ({e})");
                        hist.durable = image.floor;
                        hist.written = image.floor;
                        sim = image.storage;
                    }
                    Err(e) => panic!("close failed: {e}"),
                }
                if done {
                    // One last reopen checks what the close left.
                    let db = options
                        .open_storage(Arc::new(sim.clone()))
                        .unwrap_or_else(|e| panic!("open after {context}: {e}"));
                    let got = read_state(&db);
                    let floor = hist.durable;
                    assert!(
                        hist.states[floor..].contains(&got),
                        "after {context}: got {got:?}, latest {:?}",
                        hist.latest()
                    );
                    let report = db.check_integrity().expect("check_integrity");
                    assert!(report.is_ok(), "after {context}: {:?}", report.problems);
                    return;
                }
            }
        }
    }
}

/// Runs operations until the input (or the op budget) ends or one ends the session.
fn run_session(
    db: &Database,
    sim: &SimStorage,
    input: &mut Input<'_>,
    hist: &mut History,
    ops_left: &mut usize,
) -> SessionEnd {
    let mut power_cut = false;
    // Each operation begins at most one transaction, each on its own connection, so a
    // transaction can outlive the loop iteration that began it.
    let mut conns: Vec<Connection> = (0..(*ops_left).min(input.data.len()) + 2)
        .map(|_| db.connect())
        .collect();
    let mut pool = conns.iter_mut();
    let mut open: Option<Open<'_>> = None;
    let mut readers: Vec<(Transaction<'_>, Model)> = Vec::new();
    // On an I/O error during a power cut: crash now (a failed commit may or may not
    // have reached the disk, so its state is a candidate, not a floor).
    macro_rules! fail {
        ($e:expr, $what:expr) => {{
            let e = $e;
            assert!(
                power_cut && io_failure(&e),
                "{} failed without a fault injected: {e}",
                $what
            );
            let seed = input.u64();
            return SessionEnd::Crash(crash_image(sim, 1, seed, hist));
        }};
    }
    while !input.is_empty() && *ops_left > 0 {
        *ops_left -= 1;
        let code = input.u8() % OP_COUNT;
        let needs_tx = matches!(
            code,
            op::CREATE | op::DROP | op::PUT | op::DELETE | op::GET | op::RANGE | op::CHECK_ALL
        );
        if code == op::BEGIN || (needs_tx && open.is_none()) {
            let iso = if code == op::BEGIN && input.u8() % 2 == 1 {
                Isolation::Snapshot
            } else {
                Isolation::Serializable
            };
            let Some(conn) = pool.next() else {
                return SessionEnd::Done { power_cut };
            };
            let tx = conn.begin_with(iso).expect("begin");
            assert_eq!(
                tx.snapshot_seq(),
                db.stats().tip_seq,
                "a new snapshot sees every commit"
            );
            open = Some(Open {
                tx,
                view: hist.latest().clone(),
                wrote: false,
            });
        }
        match code {
            op::BEGIN => {}
            op::CREATE | op::DROP => {
                let o = open.as_mut().expect("open");
                let name = MODEL_TABLES[usize::from(input.u8()) % MODEL_TABLES.len()];
                if code == op::CREATE {
                    let r = o.tx.create_table(name);
                    if o.view.contains_key(name) {
                        assert!(
                            matches!(&r, Err(Error::TableExists { .. })),
                            "create {name}: {r:?}"
                        );
                    } else {
                        r.unwrap_or_else(|e| panic!("create {name}: {e}"));
                        o.view.insert(name.to_string(), Table::new());
                        o.wrote = true;
                    }
                } else {
                    let r = o.tx.drop_table(name);
                    if o.view.remove(name).is_some() {
                        r.unwrap_or_else(|e| panic!("drop {name}: {e}"));
                        o.wrote = true;
                    } else {
                        assert!(
                            matches!(&r, Err(Error::TableNotFound { .. })),
                            "drop {name}: {r:?}"
                        );
                    }
                }
            }
            op::PUT | op::DELETE => {
                let o = open.as_mut().expect("open");
                let name = MODEL_TABLES[usize::from(input.u8()) % MODEL_TABLES.len()];
                let key = read_key(input);
                let value = (code == op::PUT).then(|| read_value(input));
                let r = match &value {
                    Some(v) => o.tx.put(name, &key, v),
                    None => o.tx.delete(name, &key),
                };
                match o.view.get_mut(name) {
                    _ if key.len() > MAX_KEY_LEN => {
                        assert!(
                            matches!(&r, Err(Error::KeyTooLarge { .. })),
                            "long key: {r:?}"
                        )
                    }
                    Some(table) => {
                        r.unwrap_or_else(|e| panic!("write to {name}: {e}"));
                        match value {
                            Some(v) => table.insert(key, v),
                            None => table.remove(&key),
                        };
                        o.wrote = true;
                    }
                    None => assert!(matches!(&r, Err(Error::TableNotFound { .. })), "{r:?}"),
                }
            }
            op::GET => {
                let o = open.as_ref().expect("open");
                let name = MODEL_TABLES[usize::from(input.u8()) % MODEL_TABLES.len()];
                let key = read_key(input);
                let r = o.tx.get(name, &key);
                let r2 = o.tx.get_ref(name, &key).map(|v| v.map(|v| v.to_vec()));
                match o.view.get(name) {
                    _ if key.len() > MAX_KEY_LEN => {
                        assert!(matches!(&r, Err(Error::KeyTooLarge { .. })), "{r:?}")
                    }
                    Some(table) => {
                        let want = table.get(&key).cloned();
                        assert_eq!(r.expect("get"), want, "get {name} {key:?}");
                        assert_eq!(r2.expect("get_ref"), want, "get_ref {name} {key:?}");
                    }
                    None => assert!(matches!(&r, Err(Error::TableNotFound { .. })), "{r:?}"),
                }
            }
            op::RANGE => {
                let o = open.as_ref().expect("open");
                let name = MODEL_TABLES[usize::from(input.u8()) % MODEL_TABLES.len()];
                let lo = read_bound(input);
                let hi = read_bound(input);
                let pattern = input.u8();
                let r = o.tx.range(name, (lo.clone(), hi.clone()));
                match o.view.get(name) {
                    Some(table) => {
                        let want: Vec<(Key, Vec<u8>)> = table
                            .iter()
                            .filter(|(k, _)| in_range(&lo, &hi, k))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        let mut it = r.expect("range");
                        let (mut front, mut back) = (Vec::new(), Vec::new());
                        // Both ends as the pattern's bits say (all ones: reverse only).
                        for step in 0..=want.len() {
                            let rev = pattern == 0xff || (pattern >> (step % 8)) & 1 == 1;
                            let item = if rev { it.next_back() } else { it.next() };
                            let Some(item) = item else { break };
                            let (k, v) = item.expect("range entry");
                            if rev {
                                back.push((k, v.to_vec()));
                            } else {
                                front.push((k, v.to_vec()));
                            }
                        }
                        assert!(it.next().is_none(), "range {lo:?}..{hi:?} yields too much");
                        back.reverse();
                        front.extend(back);
                        assert_eq!(
                            front, want,
                            "range {name} {lo:?}..{hi:?} pattern {pattern:#x}"
                        );
                    }
                    None => assert!(matches!(r, Err(Error::TableNotFound { .. }))),
                }
            }
            op::CHECK_ALL => {
                let o = open.as_ref().expect("open");
                check_view(&o.tx, &o.view);
            }
            op::COMMIT => {
                let level = match input.u8() % 3 {
                    0 => Durability::Applied,
                    1 => Durability::Written,
                    _ => Durability::Durable,
                };
                if let Some(o) = open.take() {
                    let snapshot = o.tx.snapshot_seq();
                    let tip = db.stats().tip_seq;
                    match o.tx.commit_with(level) {
                        Ok(info) => {
                            assert_eq!(info.durability, level);
                            if o.wrote {
                                assert_eq!(
                                    info.seq,
                                    tip + 1,
                                    "a writing commit takes the next seq"
                                );
                                hist.push(o.view, Some(level));
                            } else {
                                assert_eq!(info.seq, snapshot, "a commit without writes");
                            }
                        }
                        Err(e) => {
                            if o.wrote {
                                hist.push(o.view, None);
                            }
                            fail!(e, "commit");
                        }
                    }
                }
            }
            op::ROLLBACK => {
                if let Some(o) = open.take() {
                    o.tx.rollback();
                }
            }
            op::CHECKPOINT => {
                if let Err(e) = db.checkpoint() {
                    fail!(e, "checkpoint");
                }
            }
            op::COMPACT => {
                if let Err(e) = db.compact() {
                    fail!(e, "compact");
                }
            }
            op::GC => {
                if let Err(e) = db.collect_garbage() {
                    fail!(e, "collect_garbage");
                }
            }
            op::CRASH => {
                let kind = input.u8();
                let seed = input.u64();
                return SessionEnd::Crash(crash_image(sim, kind, seed, hist));
            }
            op::REOPEN => return SessionEnd::Reopen { power_cut },
            op::INTEGRITY => {
                let report = db.check_integrity().expect("check_integrity");
                assert!(report.is_ok(), "{:?}", report.problems);
            }
            op::OPEN_READER => {
                let Some(conn) = pool.next() else {
                    return SessionEnd::Done { power_cut };
                };
                if readers.len() >= READERS_MAX {
                    readers.remove(0);
                }
                let tx = conn.begin_read().expect("begin_read");
                readers.push((tx, hist.latest().clone()));
            }
            op::CHECK_READER => {
                let i = usize::from(input.u8());
                if !readers.is_empty() {
                    let n = i % readers.len();
                    let (tx, model) = &readers[n];
                    check_view(tx, model);
                    assert!(matches!(
                        tx.get("t3", b""),
                        Err(Error::TableNotFound { .. })
                    ));
                }
            }
            op::POWER_CUT => {
                let n = u64::from(input.u8() % 64);
                sim.power_off_after(n);
                power_cut = true;
            }
            _ => unreachable!("op codes are taken modulo OP_COUNT"),
        }
    }
    SessionEnd::Done { power_cut }
}
