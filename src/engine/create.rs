//! Creating a database file and choosing its header copy at open.

use super::config::Config;
use crate::btree;
use crate::btree::OnNodePage;
use crate::error::{Error, Result};
use crate::format::{
    FORMAT_VERSION, HEADER_COPY_OFFSETS, HEADER_LEN, HEADER_REGION_LEN, Header, HeaderFault,
    first_data_page,
};
use crate::mvcc::history::HISTORY_PREFIX;
use crate::storage::{Storage, View};
use crate::types::{CATALOG_TABLE, TableId};
use std::ops::Bound;

/// Writes a new database into an empty storage: both header copies, synced.
pub(crate) fn create(storage: &dyn Storage, config: &Config) -> Result<(Header, u32)> {
    let seed = config.seed.unwrap_or_else(clock_seed);
    let mut rng = crate::rng::Rng::new(seed);
    let page_size = config.page_size;
    let first_data = first_data_page(page_size);
    let page_count = created_pages(page_size);
    let header = Header {
        read_version: FORMAT_VERSION,
        write_version: FORMAT_VERSION,
        page_size,
        generation: 1,
        database_id: rng.next_u64(),
        page_count,
        checkpoint_seq: 0,
        catalog_root: 0,
        freelist_root: 0,
        marker_start_page: first_data,
        marker_chain_seed: rng.next_u64() as u32,
        log_durable_seq: 0,
    };
    storage.set_len(page_count * u64::from(page_size))?;
    let marker_page = crate::commit::MarkerWriter::new_page_image(
        first_data,
        page_size,
        crate::format::MarkerPageHeader {
            next_page: first_data + 1,
            first_seq: 1,
        },
    )?;
    storage.write_at(first_data * u64::from(page_size), &marker_page)?;
    // The headers go last, after everything they name is durable: a crash before
    // them leaves a file `interrupted_creation` recognises.
    storage.sync()?;
    // Copy B first, durable before copy A is written: a crash between them leaves copy A
    // blank beside a first-generation copy B, the one blank copy an open takes for an
    // interrupted creation ([`copy_damage`]). A blank copy B is damage: the first header
    // written after creation goes to copy B, so it may hold a newer state.
    for (copy, offset) in (0u32..2).zip(HEADER_COPY_OFFSETS).rev() {
        storage.write_at(offset, &header.encode(copy))?;
        storage.sync()?;
    }
    // Every creation, an interrupted one completed by a later open too.
    storage.sync_name()?;
    Ok((header, 0))
}

/// Pages of a new database of `page_size`-byte pages: the header region's, then the
/// marker stream's first page on the first data page and the page after it, reserved as
/// the stream's next page.
fn created_pages(page_size: u32) -> u64 {
    first_data_page(page_size) + 2
}

/// The longest file [`create`] makes, over every page size (`format-spec/header.md`,
/// "Choosing a copy": 196,608 bytes, three 64 KiB pages).
fn created_len_max() -> u64 {
    std::iter::successors(Some(crate::format::PAGE_SIZE_MIN), |&ps| ps.checked_mul(2))
        .take_while(|&ps| ps <= crate::format::PAGE_SIZE_MAX)
        .map(|ps| created_pages(ps) * u64::from(ps))
        .max()
        .unwrap_or(0)
}

/// Whether the file is what a crash during [`create`] leaves: no more than a new
/// database's pages, a header region never written (all zero), and nothing else but
/// possibly the first marker page's 32-byte header: no commit ever reached it. A file
/// with anything more (a marker, a capsule) is a damaged database, never re-created.
pub(crate) fn interrupted_creation(storage: &dyn Storage) -> Result<bool> {
    let len = storage.len()?;
    if len > created_len_max() {
        return Ok(false);
    }
    let view = storage.view()?;
    // A file cut below `len` since (by a writer while a live reader looks): not a
    // creation this open may complete.
    let Some(bytes) = view.get(0, len as usize) else {
        return Ok(false);
    };
    let page_header_at = |i: usize| {
        let block = crate::format::PAGE_SIZE_MIN as usize;
        i >= HEADER_REGION_LEN as usize && i % block < crate::format::LOG_PAGE_HEADER_LEN
    };
    Ok(bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b == 0 || page_header_at(i)))
}

fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// `A` or `B`, the name of header copy `copy` (0 or 1).
fn copy_name(copy: usize) -> char {
    if copy == 0 { 'A' } else { 'B' }
}

/// Decodes header copy `copy`; one that fails is repaired when flipping one of its bits
/// makes it whole (its checksum, over the other 124 bytes, then confirms every bit: no
/// two one-bit repairs of a copy can both verify).
pub(crate) fn decode_or_repair(
    bytes: &[u8],
    copy: u32,
) -> std::result::Result<Header, HeaderFault> {
    let fault = match Header::decode(bytes, copy) {
        Ok(header) => return Ok(header),
        Err(fault @ HeaderFault::Short) => return Err(fault),
        Err(fault) => fault,
    };
    let mut trial = bytes.get(..HEADER_LEN).unwrap_or_default().to_vec();
    for bit in 0..trial.len() * 8 {
        let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
        if let Some(b) = trial.get_mut(byte) {
            *b ^= mask;
        }
        match Header::decode(&trial, copy) {
            Ok(header) => {
                log::warn!(
                    "header copy {}: bit {bit} was flipped; repaired (the checksum confirms it)",
                    copy_name(copy as usize)
                );
                return Ok(header);
            }
            // Whole once repaired, and a newer format's: a newer file, not damage.
            Err(newer @ HeaderFault::NewerVersion(_)) => return Err(newer),
            Err(_) => {}
        }
        if let Some(b) = trial.get_mut(byte) {
            *b ^= mask;
        }
    }
    Err(fault)
}

/// Both header copies of `view`, each decoded or repaired ([`decode_or_repair`]).
fn decode_copies(view: &View) -> Vec<std::result::Result<Header, HeaderFault>> {
    (0u32..)
        .zip(HEADER_COPY_OFFSETS)
        .map(|(copy, offset)| {
            let bytes = view.get(offset, HEADER_LEN).ok_or(HeaderFault::Short)?;
            decode_or_repair(bytes, copy)
        })
        .collect()
}

/// The page header copy `copy` lies on, with `page_size`-byte pages (`format-spec/
/// header.md`: `0` for copy A, `4096 / page_size` for copy B).
pub(crate) fn header_copy_page(copy: usize, page_size: u32) -> u64 {
    HEADER_COPY_OFFSETS.get(copy).copied().unwrap_or(0) / u64::from(page_size.max(1))
}

/// Copy `bad`, which failed with `fault` (after a one-bit repair) beside the valid copy
/// `valid`: its page and what is wrong with it, unless that is no damage. A copy sits
/// alone in its 512-byte sector, which a crash leaves old or new (format-spec/README.md),
/// so a copy that fails is damage and may be the newer one; but creation makes copy B
/// (generation 1) durable before it writes copy A, so a blank copy A beside a
/// first-generation copy B is a crash during creation (a read-write open then writes
/// copy A: [`fill_blank_copy_a`]), and a copy cut off by the file's end is no copy. A
/// blank copy B is damage: the first header written after creation goes to copy B,
/// and zeros there (beside copy A's generation 1) would have the open start from the
/// state before it (a tree commit's, whose only record is that header).
fn copy_damage(
    view: &View,
    valid: &Header,
    bad: usize,
    fault: &HeaderFault,
) -> Option<(u64, String)> {
    let blank = copy_is_blank(view, bad);
    if matches!(fault, HeaderFault::Short) || (bad == 0 && valid.generation == 1 && blank) {
        return None;
    }
    let page = header_copy_page(bad, valid.page_size);
    Some((
        page,
        format!(
            "header copy {} (page {page}) is damaged beyond repair ({fault}); it may hold a newer state than copy {} (generation {})",
            copy_name(bad),
            copy_name(1 - bad.min(1)),
            valid.generation
        ),
    ))
}

/// The damage a read-write open refuses and a read-only open reads past
/// (`DbInfo::header_damage`): a header copy that fails beside one that passes
/// ([`copy_damage`]). `None` for a file whose copies both pass.
///
/// The file may be live (this process's checkpoint, or another process's writer, may be
/// writing a copy this instant, and a copy read mid-write fails its checksum): the
/// copies are read until two reads in a row find the same bytes, so only damage that
/// stays is reported.
/// The damage as `(page of the damaged copy, what)`.
pub(crate) fn header_damage(storage: &dyn Storage) -> Result<Option<(u64, String)>> {
    Ok(header_report(storage)?.0)
}

/// A copy damaged beyond repair beside the one read, as `(its page, what)`, and the
/// copies a read repairs.
pub(crate) type HeaderReport = (Option<(u64, String)>, Vec<String>);

/// Reads of the header region, at most, until two in a row agree.
const HEADER_READS_MAX: u32 = 20;

/// [`header_damage`], and the copies a one-bit repair makes whole (read as repaired,
/// reported by `check_integrity` as repairable). A healthy region is read once.
pub(crate) fn header_report(storage: &dyn Storage) -> Result<HeaderReport> {
    let region = |storage: &dyn Storage| -> Result<Vec<u8>> {
        let view = storage.view()?;
        Ok(view
            .get(0, HEADER_REGION_LEN as usize)
            .unwrap_or_default()
            .to_vec())
    };
    let mut last = region(storage)?;
    let mut report = header_report_of(last.clone());
    for _ in 0..HEADER_READS_MAX {
        if report.0.is_none() && report.1.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        let again = region(storage)?;
        if again == last {
            break;
        }
        report = header_report_of(again.clone());
        last = again;
    }
    Ok(report)
}

/// Writes header copy `copy` again with the bytes it holds, and syncs: a header read
/// through the page cache reaches the disk (a read-write open's first write).
pub(crate) fn rewrite_header_copy(storage: &dyn Storage, copy: u32) -> Result<()> {
    let offset = HEADER_COPY_OFFSETS.get(copy as usize).copied().unwrap_or(0);
    let bytes = storage
        .view()?
        .get(offset, HEADER_LEN)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::corrupted(0, "the header copy lies past the file's end"))?;
    storage.write_at(offset, &bytes)?;
    storage.sync()
}

/// The header copies that read only repaired (one flipped bit), each with what it
/// holds: a read-write open writes them back whole.
pub(crate) fn repaired_header_copies(storage: &dyn Storage) -> Result<Vec<(u32, Header)>> {
    let view = storage.view()?;
    Ok((0u32..)
        .zip(HEADER_COPY_OFFSETS)
        .filter_map(|(copy, offset)| {
            let bytes = view.get(offset, HEADER_LEN).unwrap_or_default();
            match Header::decode(bytes, copy) {
                Ok(_) => None,
                Err(_) => decode_or_repair(bytes, copy).ok().map(|h| (copy, h)),
            }
        })
        .collect())
}

/// Whether header copy `copy` of `view` was never written (all zero).
fn copy_is_blank(view: &View, copy: usize) -> bool {
    HEADER_COPY_OFFSETS.get(copy).is_some_and(|&offset| {
        view.get(offset, HEADER_LEN)
            .is_some_and(|b| b.iter().all(|&x| x == 0))
    })
}

/// After a read-write open chose copy B (`copy` 1) of the first generation beside a
/// blank copy A (an interrupted creation, [`copy_damage`]): writes copy A with the same
/// header and makes it durable, and returns the copy now current (A, which wins the
/// tie), so the next header goes to copy B as after a whole creation. Without it, the
/// next header went to copy A, and damage blanking that copy would read as the crash.
/// Any other `copy` and header: nothing written, `copy` returned.
pub(crate) fn fill_blank_copy_a(storage: &dyn Storage, header: &Header, copy: u32) -> Result<u32> {
    if copy != 1 || header.generation != 1 {
        return Ok(copy);
    }
    if !copy_is_blank(&storage.view()?, 0) {
        return Ok(copy);
    }
    storage.write_at(HEADER_COPY_OFFSETS[0], &header.encode(0))?;
    storage.sync()?;
    Ok(0)
}

/// What [`header_report`] says of the header region `bytes`.
fn header_report_of(bytes: Vec<u8>) -> HeaderReport {
    let view = View::new(std::sync::Arc::new(bytes));
    let damage = match decode_copies(&view).as_slice() {
        // A newer format's copy is no damage (an open refuses the file as newer).
        [_, Err(HeaderFault::NewerVersion(_))] | [Err(HeaderFault::NewerVersion(_)), _] => None,
        [Ok(valid), Err(fault)] => copy_damage(&view, valid, 1, fault),
        [Err(fault), Ok(valid)] => copy_damage(&view, valid, 0, fault),
        // Neither copy passes, nor repairs (`decode_copies` tries that): damaged since
        // the open read them, and the next open refuses the file.
        [Err(fault_a), Err(fault_b)] => {
            return (
                Some((
                    0,
                    format!(
                        "both header copies are damaged beyond repair (copy A: {fault_a}; \
                         copy B: {fault_b}): the next open refuses the file"
                    ),
                )),
                Vec::new(),
            );
        }
        _ => None,
    }
    .map(|(page, what)| (page, format!("{what}, which was read")));
    let repaired = (0u32..)
        .zip(HEADER_COPY_OFFSETS)
        .filter(|&(copy, offset)| {
            let bytes = view.get(offset, HEADER_LEN).unwrap_or_default();
            Header::decode(bytes, copy).is_err() && decode_or_repair(bytes, copy).is_ok()
        })
        .map(|(copy, offset)| {
            format!(
                "repairable (a read-write open writes it back whole): header copy {} (at byte \
                 {offset}) has one flipped bit and is read repaired",
                copy_name(copy as usize)
            )
        })
        .collect();
    (damage, repaired)
}

/// Reads both header copies and picks the newest valid one (`format-spec/header.md`,
/// "Choosing a copy"). Never writes.
pub(crate) fn read_header(storage: &dyn Storage, read_only: bool) -> Result<(Header, u32)> {
    let len = storage.len()?;
    if len < HEADER_REGION_LEN {
        let view = storage.view()?;
        let magic_ok = view.get(0, 8) == Some(&crate::format::MAGIC[..]);
        if !magic_ok {
            return Err(Error::NotADatabase {
                what: format!("a {len}-byte file without the capsuledb magic"),
            });
        }
        return Err(Error::Truncated {
            len,
            needed: HEADER_REGION_LEN,
        });
    }
    // One copy of the header region, decoded and looked at (a live file's mapping may
    // change between two reads of it).
    let view = {
        let live = storage.view()?;
        View::new(std::sync::Arc::new(
            live.get(0, HEADER_REGION_LEN as usize)
                .unwrap_or_default()
                .to_vec(),
        ))
    };
    let decoded = decode_copies(&view);
    let (a, b) = match decoded.as_slice() {
        [a, b] => (a, b),
        _ => return Err(Error::corrupted(0, "header copies missing")),
    };
    if matches!(a, Err(HeaderFault::BadMagic)) && matches!(b, Err(HeaderFault::BadMagic)) {
        return Err(Error::NotADatabase {
            what: "neither header copy has the capsuledb magic".into(),
        });
    }
    // A copy a newer format wrote (intact: its checksum passed) makes the file a newer
    // one, whichever copy is newest: never read past as damage to the other copy.
    if let Some(found) = [a, b].into_iter().find_map(|d| match d {
        Err(HeaderFault::NewerVersion(v)) => Some(*v),
        _ => None,
    }) {
        return Err(Error::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION,
        });
    }
    // Whether copy `c` was never written (all zero).
    let blank = |c: usize| copy_is_blank(&view, c);
    // The copy that failed beside the chosen one, with its fault.
    let mut fell_back = None;
    let chosen = match (a, b) {
        (Ok(a), Ok(b)) => {
            if a.page_size != b.page_size || a.database_id != b.database_id {
                return Err(Error::corrupted(
                    0,
                    "the two header copies disagree on page size or database id",
                ));
            }
            if b.generation > a.generation {
                (*b, 1)
            } else {
                (*a, 0)
            }
        }
        (Ok(valid), Err(fault)) | (Err(fault), Ok(valid)) => {
            let (good, bad) = if a.is_ok() { (0, 1) } else { (1, 0) };
            // Only a live reader (a writer in another process may be writing that copy
            // this instant) reads the other; a read-write open would start from a
            // possibly earlier state.
            if !read_only && let Some((page, what)) = copy_damage(&view, valid, bad, fault) {
                return Err(Error::corrupted(
                    page,
                    format!(
                        "{what}, so the file is not opened read-write at a possibly earlier state (a read-only open reads copy {})",
                        copy_name(good)
                    ),
                ));
            }
            fell_back = Some((bad, fault));
            (*valid, good as u32)
        }
        (Err(fa), Err(fb))
            if read_only
                && len <= created_len_max()
                && match (fa, fb) {
                    (HeaderFault::BadMagic, HeaderFault::BadChecksum { .. }) => blank(0),
                    (HeaderFault::BadChecksum { .. }, HeaderFault::BadMagic) => blank(1),
                    _ => false,
                } =>
        {
            // A new database's first header copy being written by another process
            // this instant (the other copy not yet written): not a database yet, rather
            // than a damaged one.
            return Err(Error::NotADatabase {
                what: "a database being created (one header copy not yet written, the other \
                       incomplete)"
                    .into(),
            });
        }
        (Err(fa), Err(fb)) => {
            return Err(Error::corrupted(
                0,
                format!("both header copies are invalid: copy A: {fa}; copy B: {fb}"),
            ));
        }
    };
    let (header, _) = chosen;
    if header.read_version > FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: header.read_version,
            supported: FORMAT_VERSION,
        });
    }
    if header.write_version > FORMAT_VERSION && !read_only {
        // A newer writer's file that this build can read: only a read-only open.
        return Err(Error::UnsupportedVersion {
            found: header.write_version,
            supported: FORMAT_VERSION,
        });
    }
    let needed = header
        .page_count
        .saturating_mul(u64::from(header.page_size));
    if len < needed {
        if let Some((bad, fault)) = fell_back {
            // The older copy names pages the newer state (a compaction) cut off: the
            // damage is the other copy's, not a truncation.
            return Err(Error::corrupted(
                header_copy_page(bad, header.page_size),
                format!(
                    "header copy {} is damaged ({fault}), and copy {} names {needed} bytes, \
                     more than the file's {len} (the damaged copy's state cut them off): \
                     neither state can be opened",
                    copy_name(bad),
                    copy_name(1 - bad)
                ),
            ));
        }
        return Err(Error::Truncated { len, needed });
    }
    Ok(chosen)
}

/// Why the tree's record of kept drops cannot be right, if it cannot: it names the
/// catalog, a table the catalog names (`live`, when it could be read), an id no table
/// can have, or a drop after the checkpoint that kept it. Such a record would have
/// writes to a live table discarded and the next checkpoint delete the catalog or live
/// data.
/// Named by the leaf holding the record.
pub(super) fn refused_kept_drop(
    file: &[u8],
    header: &Header,
    drops: &[(TableId, u64)],
    live: Option<&std::collections::BTreeSet<TableId>>,
) -> Option<Error> {
    let &(table, seq) = drops.iter().find(|&&(table, seq)| {
        table == CATALOG_TABLE
            || table > crate::types::TABLE_ID_MAX
            || seq > header.checkpoint_seq
            || live.is_some_and(|ids| ids.contains(&table))
    })?;
    let e = Error::corrupted(
        0,
        format!(
            "the tree's kept drops name table {table} dropped at commit {seq} (the checkpoint \
             is at commit {}; the catalog, a table the catalog names and an id above the \
             highest are never dropped)",
            header.checkpoint_seq
        ),
    );
    let key = crate::mvcc::history::drops_key();
    // The tree's root, under which the record sits, when its bytes cannot be found.
    let e = match btree::get(file, header.page_size, header.catalog_root, &key, None) {
        Ok(Some(record)) => e.on_node_page_of(file, record, header.page_size),
        _ => e,
    };
    Some(e.on_page(header.catalog_root))
}

/// The table ids the tree's catalog names.
pub(super) fn catalog_table_ids(
    file: &[u8],
    page_size: u32,
    root: u64,
) -> Result<std::collections::BTreeSet<TableId>> {
    let mut ids = std::collections::BTreeSet::new();
    let hi = 1u64.to_be_bytes().to_vec();
    let mut lo = Bound::Included(CATALOG_TABLE.to_be_bytes().to_vec());
    loop {
        let batch = btree::scan_leaf(
            file,
            page_size,
            root,
            lo.as_ref().map(|v| v.as_slice()),
            Bound::Excluded(&hi),
            false,
            None,
        )?;
        for (_, v) in &batch.entries {
            if let Ok(b) = <[u8; 8]>::try_from(*v) {
                let id = u64::from_le_bytes(b);
                if id > crate::types::TABLE_ID_MAX {
                    // Named by the leaf that holds it (the open named the root).
                    return Err(Error::corrupted(
                        0,
                        format!(
                            "the catalog names table id {id}, above the highest a table can have"
                        ),
                    )
                    .on_node_page_of(file, v, page_size));
                }
                ids.insert(id);
            }
        }
        match batch.leaf_edge {
            Some(edge) if edge < hi => lo = Bound::Included(edge),
            _ => return Ok(ids),
        }
    }
}

/// The highest table id owning data in the tree (a dropped table's data stays while
/// its drop is inside the history window, so its id must not be reused): the table of
/// the last key below the history prefix. Reads that key alone: a damaged value beside
/// it is for a read of it to report, not a reason to refuse every open.
pub(super) fn max_data_table_id(file: &[u8], page_size: u32, root: u64) -> Result<TableId> {
    let start = Bound::Excluded(&HISTORY_PREFIX[..]);
    let mut cursor = btree::cursor::Cursor::seek(file, page_size, root, start, true, None)?;
    let Some(run) = cursor.take_run(file, None)? else {
        return Ok(0);
    };
    // A reverse run hands out its cells from `hi - 1` down.
    let key = run.key(file, run.hi - 1)?;
    let id = key.table_bytes().map_or(0, u64::from_be_bytes);
    if id > crate::types::TABLE_ID_MAX {
        // Named by the leaf that holds the key (the open named the root, and refused
        // even read-only, so that neither `check` nor `salvage` could run).
        return Err(Error::corrupted(
            run.leaf_page(),
            format!("a key of table id {id}, above the highest a table can have"),
        ));
    }
    Ok(id)
}
