//! A marker page lost whole (read back as zeros), or its first sector lost on a page
//! large enough to hold more than a group, after a crash above the durable bound: the
//! markers of later groups the stream wrote past it prove it durable, so this is damage,
//! never the end of the log (`format-spec/log.md`, "Reading the stream", step 4). The
//! open read it as the end: 127 of 700 acknowledged commits, and no error.

use capsuledb::format::{LOG_PAGE_HEADER_LEN, MARKER_LEN, PageKind};
use capsuledb::storage::{SimStorage, Storage};
use capsuledb::{Database, Error, Options};
use std::sync::Arc;

const TABLE: &str = "t";

fn open(image: &SimStorage, page_size: u32, read_only: bool) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(3)
        .page_size(page_size)
        .read_only(read_only)
        .open_storage(Arc::new(image.clone()))
}

/// `n` acknowledged durable commits of one key each, then a crash that loses nothing
/// synced: no close, so the durable bound stays at the creation's.
fn crashed_after(n: u64, page_size: u32) -> SimStorage {
    let sim = SimStorage::new();
    let db = open(&sim, page_size, false).unwrap();
    let mut c = db.connect();
    for i in 1..=n {
        let mut tx = c.begin().unwrap();
        if i == 1 {
            tx.create_table(TABLE).unwrap();
        }
        tx.put(TABLE, format!("k{i:05}").as_bytes(), b"v").unwrap();
        assert_eq!(tx.commit().unwrap().seq, i);
    }
    let image = sim.fork();
    image.crash_losing_unsynced();
    drop(c);
    drop(db);
    image
}

fn keys(db: &Database) -> u64 {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    tx.iter(TABLE).unwrap().count() as u64
}

fn slots(page_size: u32) -> u64 {
    (u64::from(page_size) - LOG_PAGE_HEADER_LEN as u64) / MARKER_LEN as u64
}

/// The page holding the marker page header whose `first_seq` is `first_seq`.
fn marker_page(image: &SimStorage, page_size: u32, first_seq: u64) -> u64 {
    let view = image.view().unwrap().to_vec();
    let ps = page_size as usize;
    (0..view.len() / ps)
        .find(|&p| {
            let b = &view[p * ps..(p + 1) * ps];
            b[4] == PageKind::Marker as u8
                && u64::from_le_bytes(b[24..32].try_into().unwrap()) == first_seq
        })
        .expect("the marker page is in the file") as u64
}

/// The open refuses the file naming commit `seq` and the page; a read-only open reads
/// the commits before it and reports the damage; `check` is not ok.
fn assert_damage_at(
    image: &SimStorage,
    page_size: u32,
    page: u64,
    seq: u64,
    durable_at_least: u64,
) {
    match open(image, page_size, false) {
        Err(Error::LogCorrupted {
            page: p,
            seq: s,
            durable_seq,
            ..
        }) => {
            assert_eq!((p, s), (page, seq));
            assert!(durable_seq >= durable_at_least, "durable_seq {durable_seq}");
        }
        Ok(db) => panic!(
            "the open took the lost page for the end of the log: {} commits",
            keys(&db)
        ),
        Err(e) => panic!("unexpected error {e}"),
    }
    let db = open(image, page_size, true).unwrap();
    assert_eq!(keys(&db), seq - 1);
    let damage = db
        .info()
        .unwrap()
        .log_damage
        .expect("the damage is reported");
    assert_eq!(damage.seq, seq);
    assert!(damage.durable_seq >= durable_at_least, "{damage:?}");
    assert!(!db.check_integrity().unwrap().is_ok());
}

#[test]
fn a_marker_page_lost_whole_before_later_groups_is_an_error() {
    let ps = 4096u32;
    let s = slots(ps);
    let image = crashed_after(700, ps);
    let second = marker_page(&image, ps, s + 1);
    image
        .write_at(second * u64::from(ps), &vec![0u8; ps as usize])
        .unwrap();
    // The last chained pair lies at 699: commits up to 187 are proven durable.
    assert_damage_at(&image, ps, second, s + 1, 699 - 512);
}

/// The same loss on the last page the stream reached before the end of the file's
/// later pages: each lost page in turn, where later groups still follow it.
#[test]
fn every_marker_page_lost_whole_a_group_before_the_end_is_an_error() {
    let ps = 4096u32;
    let s = slots(ps);
    let n = 1200;
    let image = crashed_after(n, ps);
    let mut first = s + 1;
    while first + 512 < n {
        let lost = image.fork();
        let page = marker_page(&lost, ps, first);
        lost.write_at(page * u64::from(ps), &vec![0u8; ps as usize])
            .unwrap();
        assert_damage_at(&lost, ps, page, first, n - 1 - 512);
        first += s;
    }
}

/// With fewer than a group's commits after the lost page nothing proves it was durable:
/// it reads as the end of the log (the limit the spec states), and the open that reads
/// it so keeps every commit before it.
#[test]
fn a_marker_page_lost_whole_less_than_a_group_before_the_end_reads_as_the_end() {
    let ps = 4096u32;
    let s = slots(ps);
    let image = crashed_after(3 * s + 100, ps);
    let last = marker_page(&image, ps, 3 * s + 1);
    image
        .write_at(last * u64::from(ps), &vec![0u8; ps as usize])
        .unwrap();
    let db = open(&image, ps, false).unwrap();
    assert_eq!(keys(&db), 3 * s);
}

/// A log whose last page filled exactly ends at a blank next page: the search for later
/// groups finds none, and every commit is there, after a crash and after a close.
#[test]
fn a_log_whose_last_page_filled_exactly_opens_whole() {
    let ps = 4096u32;
    let s = slots(ps);
    for pages in [1, 2, 5] {
        let image = crashed_after(pages * s, ps);
        let db = open(&image, ps, false).unwrap();
        assert_eq!(keys(&db), pages * s);
        assert!(db.check_integrity().unwrap().is_ok());
        db.close().unwrap();
        let db = open(&image, ps, false).unwrap();
        assert_eq!(keys(&db), pages * s);
    }
}

/// A 64 KiB marker page holds 2,047 slots, more than a group: its first sector (header
/// and first 15 slots) lost, the markers of later groups on the page itself prove it.
/// The search looked only at later pages, and the open read 2,047 of 3,047 commits.
#[test]
fn a_lost_first_sector_of_a_large_marker_page_before_later_groups_on_it_is_an_error() {
    let ps = 65536u32;
    let s = slots(ps);
    let image = crashed_after(s + 1000, ps);
    let second = marker_page(&image, ps, s + 1);
    image.write_at(second * u64::from(ps), &[0u8; 512]).unwrap();
    assert_damage_at(&image, ps, second, s + 1, s + 999 - 512);
}

/// A page an earlier, crashed run started at the same position, whose rewrite by this
/// run was lost: its header verifies (with that run's link to a page the stream never
/// used) and its slots hold that run's markers, none of which continues the stream. The
/// walk stops at its slot 0 and followed the stale link only: the open read the commits
/// before it and said nothing.
#[test]
fn a_stale_page_at_the_streams_position_before_later_groups_is_an_error() {
    use capsuledb::format::{MarkerPageHeader, write_log_page_header};
    let ps = 4096u32;
    let s = slots(ps);
    let n = 1200;
    let image = crashed_after(n, ps);
    let first = 2 * s + 1;
    let page = marker_page(&image, ps, first);
    // A page past the file's end: a link the stream never followed.
    let stale_next = image.len().unwrap() / u64::from(ps) + 10;
    // That run's markers, which do not chain to this stream's.
    let mut bytes = vec![0xA5u8; ps as usize];
    let kind_header = MarkerPageHeader {
        next_page: stale_next,
        first_seq: first,
    }
    .encode();
    write_log_page_header(&mut bytes, PageKind::Marker, page, &kind_header).unwrap();
    image.write_at(page * u64::from(ps), &bytes).unwrap();
    assert_damage_at(&image, ps, page, first, n - 1 - 512);
}
