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

    let crafted = SimStorage::from_bytes(bytes);
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
}
