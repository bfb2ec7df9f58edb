//! A marker whose chain is right (a crafted file) naming a proof that crosses a page
//! boundary: recovery took the 48 bytes across the two pages, found them damaged, rebuilt
//! the proof from its capsule and a read-write open wrote it back there, over the start
//! of the next page (which a later commit may have reused). A record never crosses a page
//! boundary (`format-spec/log.md`): the marker is damage, and nothing is written.

use capsuledb::format::{LOG_PAGE_HEADER_LEN, MARKER_LEN, PageKind, checksum};
use capsuledb::storage::{SimStorage, Storage};
use capsuledb::{Error, Options};
use std::sync::Arc;

const PS: usize = 4096;

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn a_proof_across_a_page_boundary_is_damage_and_nothing_is_written() {
    let sim = SimStorage::new();
    let options = || Options::new().random_seed(5).page_size(PS as u32);
    let db = options().open_storage(Arc::new(sim.clone())).unwrap();
    let mut c = db.connect();
    for i in 1..=5u64 {
        let mut tx = c.begin().unwrap();
        if i == 1 {
            tx.create_table("t").unwrap();
        }
        tx.put("t", format!("k{i}").as_bytes(), b"v").unwrap();
        assert_eq!(tx.commit().unwrap().seq, i);
    }
    // A crash that loses nothing synced: the markers stay above the durable bound.
    let image = sim.fork();
    image.crash_losing_unsynced();
    drop(c);
    drop(db);
    let mut bytes = image.view().unwrap().to_vec();
    let page = (0..bytes.len() / PS)
        .find(|&p| bytes[p * PS + 4] == PageKind::Marker as u8 && u64_at(&bytes, p * PS + 24) == 1)
        .expect("the marker page of commit 1");
    // Commit 5's marker names a proof 16 bytes before the end of its proof page.
    let slot = |seq: u64| page * PS + LOG_PAGE_HEADER_LEN + (seq as usize - 1) * MARKER_LEN;
    let at = slot(5);
    let proof_page = u64_at(&bytes, at + 8) as usize / PS;
    let crossing = (proof_page * PS + PS - 16) as u64;
    bytes[at + 8..at + 16].copy_from_slice(&crossing.to_le_bytes());
    let prev_chain = bytes[slot(4) + 28..slot(4) + 32].to_vec();
    let chain = checksum(&[&prev_chain, &bytes[at..at + 28]]);
    bytes[at + 28..at + 32].copy_from_slice(&chain.to_le_bytes());
    let next_page = bytes[(proof_page + 1) * PS..(proof_page + 2) * PS].to_vec();

    let crafted = SimStorage::from_bytes(bytes.clone());
    let opened = options().open_storage(Arc::new(crafted.clone()));
    assert!(
        matches!(opened, Err(Error::LogCorrupted { seq: 5, .. })),
        "{opened:?}"
    );
    let after = crafted.live_bytes();
    assert_eq!(
        &after[(proof_page + 1) * PS..(proof_page + 2) * PS],
        &next_page[..],
        "the open wrote over the page after the proof page"
    );
    // A refused open writes nothing anywhere (the proof page, a header).
    assert!(after[..] == bytes[..], "the refused open wrote to the file");
}

/// A tail marker page whose header (its checksum right: a crafted file) names a page of
/// the tree as its next page: a read-write open zeroes the next page of the tail, and
/// zeroed the catalog's root, after which every read failed. It chooses a next page of
/// its own, and the data stays whole.
#[test]
fn a_next_page_in_the_tree_is_never_zeroed() {
    next_page_named_is_never_zeroed(false, |_, header, _, _| header.catalog_root as usize);
}

/// The same with the next page naming the page holding the last commit's capsule (the
/// stream's own records): the open zeroed it, and the next open refused the commit.
#[test]
fn a_next_page_holding_a_replayed_capsule_is_never_zeroed() {
    next_page_named_is_never_zeroed(false, capsule_page_of_last);
}

/// A full last marker page naming such a page: the walk took it for the stream's next
/// page, and the open wrote a fresh marker page over it. A page of the tree is refused
/// (named), a page in use is left alone (the stream ends on the full page).
#[test]
fn a_full_pages_next_page_in_the_tree_or_in_use_is_never_written() {
    next_page_named_is_never_zeroed(true, |_, header, _, _| header.catalog_root as usize);
    next_page_named_is_never_zeroed(true, capsule_page_of_last);
}

/// The page holding the capsule of the commit in the tail page's last used slot.
fn capsule_page_of_last(
    bytes: &[u8],
    _: &capsuledb::format::Header,
    tail: usize,
    last: u64,
) -> usize {
    let first_seq = u64_at(bytes, tail * PS + 24);
    let slot = tail * PS + LOG_PAGE_HEADER_LEN + (last - first_seq) as usize * MARKER_LEN;
    let proof = u64_at(bytes, slot + 8) as usize;
    u64_at(bytes, proof + 24) as usize / PS
}

/// Commits after a checkpoint (filling their marker page exactly when `full`), a crash,
/// then the tail page's header crafted to name `target`'s page as its next.
fn next_page_named_is_never_zeroed(
    full: bool,
    target: impl Fn(&[u8], &capsuledb::format::Header, usize, u64) -> usize,
) {
    use capsuledb::format::{HEADER_COPY_OFFSETS, Header, MarkerPageHeader, write_log_page_header};
    let slots = ((PS - LOG_PAGE_HEADER_LEN) / MARKER_LEN) as u64;
    let sim = SimStorage::new();
    let options = || Options::new().random_seed(6).page_size(PS as u32);
    let db = options().open_storage(Arc::new(sim.clone())).unwrap();
    let put = |i: u64| {
        let mut c = db.connect();
        let mut tx = c.begin().unwrap();
        if i == 1 {
            tx.create_table("t").unwrap();
        }
        tx.put("t", format!("k{i}").as_bytes(), b"v").unwrap();
        tx.commit().unwrap();
    };
    for i in 1..=5 {
        put(i);
    }
    db.checkpoint().unwrap();
    put(6);
    let page_of = |bytes: &[u8], seq: u64| {
        (0..bytes.len() / PS)
            .find(|&p| {
                let first = u64_at(bytes, p * PS + 24);
                bytes[p * PS + 4] == PageKind::Marker as u8 && first <= seq && seq < first + slots
            })
            .expect("the marker page")
    };
    let last = if full {
        let now = sim.view().unwrap().to_vec();
        u64_at(&now, page_of(&now, 6) * PS + 24) + slots - 1
    } else {
        8
    };
    for i in 7..=last {
        put(i);
    }
    let image = sim.fork();
    image.crash_losing_unsynced();
    drop(db);
    let mut bytes = image.view().unwrap().to_vec();
    let header = HEADER_COPY_OFFSETS
        .iter()
        .enumerate()
        .filter_map(|(c, &at)| Header::decode(&bytes[at as usize..], c as u32).ok())
        .max_by_key(|h| h.generation)
        .expect("a header copy");
    // The marker page holding the last commit's slot: the stream's tail (or, full, the
    // page before the tail).
    let tail = page_of(&bytes, last);
    let first_seq = u64_at(&bytes, tail * PS + 24);
    let named = target(&bytes, &header, tail, last);
    assert!(named > 0 && named != tail);
    let in_tree = named as u64 == header.catalog_root;
    let mut kind_header = [0u8; 16];
    kind_header.copy_from_slice(
        &MarkerPageHeader {
            next_page: named as u64,
            first_seq,
        }
        .encode(),
    );
    write_log_page_header(
        &mut bytes[tail * PS..(tail + 1) * PS],
        PageKind::Marker,
        tail as u64,
        &kind_header,
    )
    .unwrap();
    let named_page = bytes[named * PS..(named + 1) * PS].to_vec();

    let crafted = SimStorage::from_bytes(bytes);
    let opened = options().open_storage(Arc::new(crafted.clone()));
    assert_eq!(
        &crafted.live_bytes()[named * PS..(named + 1) * PS],
        &named_page[..],
        "the open wrote over the page named"
    );
    if full && in_tree {
        let e = opened.expect_err("a stream continuing on a page of the tree");
        assert!(e.is_corruption(), "{e}");
        return;
    }
    let db = opened.unwrap();
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    assert_eq!(tx.iter("t").unwrap().count() as u64, last);
    drop(tx);
    drop(c);
    assert!(db.check_integrity().unwrap().is_ok());
    db.close().unwrap();
    let db = options().open_storage(Arc::new(crafted)).unwrap();
    let mut c = db.connect();
    assert_eq!(
        c.begin_read().unwrap().iter("t").unwrap().count() as u64,
        last
    );
}
