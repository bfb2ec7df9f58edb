//! Damage to the durable log is never mistaken for the end of the log (issue 14): it is
//! repaired from redundancy, or a read-write open refuses it with
//! `Error::LogCorrupted` and writes nothing, while a read-only open reads up to it.
//! A torn tail stays silent.

use capsuledb::format::{LOG_PAGE_HEADER_LEN, MARKER_LEN, PROOF_LEN};
use capsuledb::{Database, Error, Options};
use std::path::Path;

const TABLE: &str = "t";
const PAGE: u64 = 4096;
/// The first marker page of a new 4 KiB-page database.
const MARKER_PAGE: u64 = 2;

/// Commit `i` of a fresh database: key `k{i}` (the first also creates the table).
fn commit_key(c: &mut capsuledb::Connection, i: u64) {
    let mut tx = c.begin().unwrap();
    if i == 1 {
        tx.create_table(TABLE).unwrap();
    }
    tx.put(TABLE, format!("k{i:03}").as_bytes(), b"v").unwrap();
    assert_eq!(tx.commit().unwrap().seq, i);
}

/// `n` one-commit processes, as `capsuledb put` makes them: open, commit, close.
fn short_lived_commits(path: &Path, n: u64) {
    for i in 1..=n {
        let db = Database::open(path).unwrap();
        commit_key(&mut db.connect(), i);
        db.close().unwrap();
    }
}

fn keys(db: &Database) -> usize {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    tx.iter(TABLE).unwrap().count()
}

fn marker_offset(seq: u64) -> u64 {
    MARKER_PAGE * PAGE + LOG_PAGE_HEADER_LEN as u64 + (seq - 1) * MARKER_LEN as u64
}

fn proof_offset_of(bytes: &[u8], seq: u64) -> u64 {
    let at = marker_offset(seq) as usize + 8;
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn issue_14_flip_in_the_marker_of_commit_9_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    short_lived_commits(&path, 61);
    let mut bytes = std::fs::read(&path).unwrap();
    // Byte 300 of the first marker page: inside the marker of commit 9.
    let at = (MARKER_PAGE * PAGE + 300) as usize;
    assert_eq!(at as u64 / 32, marker_offset(9) / 32);
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db), 61, "every durable commit is there");
    assert_eq!(db.stats().repaired_log_records, 1);
    assert_eq!(db.stats().visible_seq, 61);
    assert!(db.check_integrity().unwrap().is_ok());
    db.close().unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(
        db.stats().repaired_log_records,
        0,
        "the repair was written back"
    );
    assert_eq!(keys(&db), 61);
}

#[test]
fn a_lost_marker_and_proof_refuse_a_write_open_and_read_up_to_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    short_lived_commits(&path, 61);
    let mut bytes = std::fs::read(&path).unwrap();
    // Commit 9's marker and its proof are both gone: nothing can rebuild it.
    let proof = proof_offset_of(&bytes, 9) as usize;
    bytes[proof..proof + PROOF_LEN].fill(0);
    let m = marker_offset(9) as usize;
    bytes[m..m + MARKER_LEN].fill(0);
    std::fs::write(&path, &bytes).unwrap();

    match Database::open(&path) {
        Err(Error::LogCorrupted {
            page,
            seq,
            durable_seq,
            ..
        }) => assert_eq!((page, seq, durable_seq), (MARKER_PAGE, 9, 61)),
        Err(e) => panic!("expected LogCorrupted, got {e}"),
        Ok(_) => panic!("53 durable commits vanished without an error"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was written");

    let db = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(keys(&db), 8, "the commits before the damage");
    let damage = db
        .info()
        .unwrap()
        .log_damage
        .expect("the damage is reported");
    assert_eq!((damage.seq, damage.durable_seq), (9, 61));
    assert_eq!(damage.later_markers, Some((10, 61, 52)));
    let report = db.check_integrity().unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("commit 9 cannot be recovered") && p.contains("10 to 61")),
        "{:?}",
        report.problems
    );
    drop(db);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was written");
}

#[test]
fn a_lost_marker_page_header_in_the_middle_of_the_stream_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    {
        let db = Database::open(&path).unwrap();
        let mut c = db.connect();
        for i in 1..=300u64 {
            commit_key(&mut c, i);
        }
        drop(c);
        db.close().unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    // The second marker page (first_seq 128): the first page names it.
    let next = MARKER_PAGE * PAGE + 16;
    let second = u64::from_le_bytes(bytes[next as usize..next as usize + 8].try_into().unwrap());
    let at = (second * PAGE) as usize;
    bytes[at..at + LOG_PAGE_HEADER_LEN].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    match Database::open(&path) {
        Err(Error::LogCorrupted {
            page,
            seq,
            durable_seq,
            ..
        }) => assert_eq!((page, seq, durable_seq), (second, 128, 300)),
        Err(e) => panic!("expected LogCorrupted, got {e}"),
        Ok(_) => panic!("durable commits vanished without an error"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was written");
    let db = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(keys(&db), 127);
}

#[test]
fn a_flipped_header_checksum_of_the_tail_page_gets_a_fresh_next_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    short_lived_commits(&path, 5);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(MARKER_PAGE * PAGE) as usize] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db), 5);
    // Rebuilt, then given a fresh next page: the stored one is not confirmed.
    assert_eq!(db.stats().repaired_log_records, 1);
    let mut c = db.connect();
    for i in 6..=200u64 {
        let mut tx = c.begin().unwrap();
        tx.put(TABLE, format!("k{i:03}").as_bytes(), b"v").unwrap();
        tx.commit().unwrap();
    }
    drop(c);
    assert!(db.check_integrity().unwrap().is_ok());
    db.close().unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db), 200);
}

/// A bit flipped at rest in the durable marker a checkpoint would start the next stream
/// after: the checkpoint does not seed the next stream with the damaged chain value
/// (it did: no later marker continued that value, so a recovery from that header lost
/// every commit after the checkpoint, silently when the process crashed before another
/// header write, and here, after a clean close, as `LogCorrupted` at commit 11 on every
/// read-write open). It stops one commit earlier, after the marker before, and leaves the
/// damaged one to recovery, which repairs it; if that marker fails too, it refuses.
#[test]
fn a_checkpoint_never_starts_the_stream_after_a_damaged_marker() {
    use capsuledb::storage::{SimStorage, Storage};
    use std::sync::Arc;
    let sim = SimStorage::new();
    let open = || {
        Options::new()
            .random_seed(3)
            .open_storage(Arc::new(sim.clone()))
            .unwrap()
    };
    let db = open();
    let mut c = db.connect();
    let flip = |at: u64| {
        let byte = sim.view().unwrap()[at as usize];
        sim.write_at(at, &[byte ^ 0x04]).unwrap();
    };
    for i in 1..=10 {
        commit_key(&mut c, i);
    }
    // One bit of marker 10's chain value (its bytes 28..32), where a checkpoint now
    // would read it: the checkpoint stops at commit 9.
    flip(marker_offset(10) + 29);
    let report = db.checkpoint().unwrap().unwrap();
    assert_eq!(report.checkpoint_seq, 9);
    for i in 11..=15 {
        commit_key(&mut c, i);
    }
    // Markers 14 and 15 both damaged: no checkpoint can start after either.
    flip(marker_offset(15) + 29);
    flip(marker_offset(14) + 29);
    match db.checkpoint() {
        Err(Error::Corrupted { page, what }) => {
            assert_eq!(page, MARKER_PAGE);
            assert!(what.contains("marker 14"), "{what}");
        }
        other => panic!("a checkpoint after two damaged markers gave {other:?}"),
    }
    drop(c);
    drop(db);
    sim.crash_losing_unsynced();
    let db = open();
    assert_eq!(keys(&db), 15, "every durable commit is there");
    assert_eq!(
        db.stats().repaired_log_records,
        3,
        "the damaged markers were repaired"
    );
    assert!(db.check_integrity().unwrap().is_ok());
}

/// A crash image of 140 durable commits made by one process (no header names them: they
/// lie above the durable bound), and the page of the second marker page (commits 128 on).
fn crashed_after_140_commits() -> (capsuledb::storage::SimStorage, u64) {
    crashed_after(140)
}

/// The image a crash leaves after `n` durable commits of one process (none of them
/// below the durable bound `D`: the process never checkpointed or closed), and the
/// second marker page.
fn crashed_after(n: u64) -> (capsuledb::storage::SimStorage, u64) {
    use capsuledb::storage::{SimStorage, Storage};
    use std::sync::Arc;
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(3)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut c = db.connect();
    for i in 1..=n {
        commit_key(&mut c, i);
    }
    let image = sim.fork();
    image.crash_losing_unsynced();
    drop(c);
    drop(db);
    let view = image.view().unwrap();
    // The first marker page names the second at bytes 16..24.
    let at = (MARKER_PAGE * PAGE) as usize + 16;
    let second = u64::from_le_bytes(view[at..at + 8].try_into().unwrap());
    (image, second)
}

/// Writes a marker page header (one that verifies) at `page` of `image`.
fn write_marker_page_header(
    image: &capsuledb::storage::SimStorage,
    page: u64,
    next_page: u64,
    first_seq: u64,
) {
    use capsuledb::format::{MarkerPageHeader, PageKind, write_log_page_header};
    use capsuledb::storage::Storage;
    let mut header = [0u8; LOG_PAGE_HEADER_LEN];
    let kind_header = MarkerPageHeader {
        next_page,
        first_seq,
    }
    .encode();
    write_log_page_header(&mut header, PageKind::Marker, page, &kind_header).unwrap();
    image.write_at(page * PAGE, &header).unwrap();
}

fn open_image(image: &capsuledb::storage::SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(3)
        .open_storage(std::sync::Arc::new(image.clone()))
}

/// A marker page whose header is damaged past repair (its next-page link three bits
/// off, its checksum failing) but whose markers are whole, after a crash: a torn start
/// of that page would have torn its first marker with the header (they share a sector),
/// so this is damage, and the read-write open refuses it instead of ending the log
/// before the page and losing its commits (it did: 127 of 140 durable commits came
/// back, and no error).
#[test]
fn a_damaged_header_of_a_marker_page_with_whole_markers_is_an_error_after_a_crash() {
    use capsuledb::storage::Storage;
    let (image, second) = crashed_after_140_commits();
    let link = (second * PAGE) as usize + 16;
    let damaged = image.view().unwrap()[link] ^ 0b0000_0111;
    image.write_at(link as u64, &[damaged]).unwrap();
    match open_image(&image) {
        Err(Error::LogCorrupted {
            seq, durable_seq, ..
        }) => {
            assert_eq!(seq, 128);
            assert_eq!(durable_seq, 128);
        }
        Ok(db) => panic!(
            "the open took the damaged page for the end of the log: {} of 140 commits",
            keys(&db)
        ),
        Err(e) => panic!("unexpected error {e}"),
    }
    // A read-only open reads every commit before the damage and reports it.
    let db = Options::new()
        .read_only(true)
        .open_storage(std::sync::Arc::new(image.clone()))
        .unwrap();
    assert_eq!(keys(&db), 127);
    assert_eq!(db.info().unwrap().log_damage.map(|d| d.seq), Some(128));
}

/// What a crash leaves when the file's growth was not synced and a marker page started
/// since was written: its header verifies but names a next page past the file's end,
/// while its first slot holds a chained marker (of a commit never acknowledged). That is
/// the end of the log, not damage: the open succeeds with the commits before the page.
#[test]
fn a_marker_page_naming_a_page_past_the_end_after_a_crash_ends_the_log() {
    use capsuledb::storage::Storage;
    let (image, second) = crashed_after_140_commits();
    let file_pages = image.view().unwrap().len() as u64 / PAGE;
    write_marker_page_header(&image, second, file_pages + 3, 128);
    let db = open_image(&image).unwrap();
    assert_eq!(keys(&db), 127);
}

/// Flips bit 0 of the byte at `offset` of the file under a live writer and reader (the
/// write goes through the page cache both map).
fn flip_live(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 1], offset).unwrap();
}

/// A read-only handle following a live writer never stays silently at an earlier state
/// when the writer's later records prove damage (a verified marker whose capsule fails,
/// or a marker lost with its proof and a later group's markers after it): the look that
/// finds it fails with `LogCorrupted`, later looks read the commits before it and
/// `info()` reports it, as a read-only open does. Damage redundancy rebuilds (one bit of
/// a marker, or of its page's header) is rebuilt in memory, and the reader reads on.
#[test]
fn a_live_reader_reports_damage_the_writers_later_records_prove() {
    use capsuledb::format::Proof;
    for case in [
        "capsule",
        "marker and proof",
        "one bit of a marker",
        "one bit of the marker page's header",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let writer = Database::open(&path).unwrap();
        let mut c = writer.connect();
        for i in 1..=10 {
            commit_key(&mut c, i);
        }
        let reader = Options::new().read_only(true).open(&path).unwrap();
        assert_eq!(keys(&reader), 10);
        // More than a group (512 commits) past commit 11.
        for i in 11..=700 {
            commit_key(&mut c, i);
        }
        let bytes = std::fs::read(&path).unwrap();
        let proof_at = proof_offset_of(&bytes, 11);
        let page = match case {
            "capsule" => {
                let at = proof_at as usize;
                let (proof, _) = Proof::decode(&bytes[at..at + PROOF_LEN]).unwrap();
                flip_live(&path, proof.capsule_offset + 40);
                Some(proof.capsule_offset / PAGE)
            }
            "marker and proof" => {
                for at in proof_at..proof_at + 8 {
                    flip_live(&path, at);
                }
                flip_live(&path, marker_offset(11) + 9);
                Some(MARKER_PAGE)
            }
            "one bit of a marker" => {
                flip_live(&path, marker_offset(11) + 9);
                None
            }
            _ => {
                // The header's checksum: the page's slots still hold chained markers.
                flip_live(&path, MARKER_PAGE * PAGE + 1);
                None
            }
        };
        let mut rc = reader.connect();
        match (rc.begin_read(), page) {
            (Err(Error::LogCorrupted { page: p, seq, .. }), Some(page)) => {
                assert_eq!((p, seq), (page, 11), "{case}");
                // Once told, the reader reads the commits before the damage.
                assert_eq!(keys(&reader), 10, "{case}");
                let damage = reader.info().unwrap().log_damage.expect(case);
                assert_eq!(damage.seq, 11, "{case}");
                assert!(!reader.check_integrity().unwrap().is_ok(), "{case}");
            }
            (Ok(tx), None) => {
                drop(tx);
                assert_eq!(keys(&reader), 700, "rebuilt in memory");
                assert!(reader.info().unwrap().log_damage.is_none());
            }
            (Err(e), _) => panic!("{case}: {e}"),
            (Ok(_), Some(_)) => panic!("{case}: read an earlier state"),
        }
        // The writer's own state is whole; after a checkpoint past the damage the
        // reader follows again.
        assert_eq!(keys(&writer), 700);
        writer.checkpoint().unwrap();
        assert_eq!(keys(&reader), 700, "{case}");
    }
}

/// Above the durable bound, after a crash, a marker lost with its proof (nothing
/// rebuilds it) is damage when markers of a later group follow it: a group's markers
/// are written only after every earlier group's were synced, and a group holds at most
/// 512 commits. With fewer commits after it, it reads as the end of the log (the limit
/// `format-spec/log.md` states).
#[test]
fn a_lost_marker_a_group_before_later_markers_is_an_error_after_a_crash() {
    use capsuledb::storage::Storage;
    for (lost, acknowledged) in [(11u64, true), (650, false)] {
        let (image, _) = crashed_after(700);
        let view = image.view().unwrap().to_vec();
        // Marker `lost` lies on the marker page holding its slot, found along the links.
        let slots = (PAGE - LOG_PAGE_HEADER_LEN as u64) / MARKER_LEN as u64;
        let mut page = MARKER_PAGE;
        for _ in 0..(lost - 1) / slots {
            let at = (page * PAGE) as usize + 16;
            page = u64::from_le_bytes(view[at..at + 8].try_into().unwrap());
        }
        let m = page * PAGE + LOG_PAGE_HEADER_LEN as u64 + ((lost - 1) % slots) * MARKER_LEN as u64;
        let proof = u64::from_le_bytes(view[m as usize + 8..m as usize + 16].try_into().unwrap());
        image.write_at(proof, &[0u8; PROOF_LEN]).unwrap();
        image.write_at(m, &[0u8; MARKER_LEN]).unwrap();
        match (open_image(&image), acknowledged) {
            (
                Err(Error::LogCorrupted {
                    page: p,
                    seq,
                    durable_seq,
                    ..
                }),
                true,
            ) => {
                assert_eq!((p, seq), (page, lost));
                assert!(durable_seq >= lost, "durable_seq {durable_seq}");
                // A read-only handle reads the commits before it, and says why.
                let db = Options::new()
                    .read_only(true)
                    .open_storage(std::sync::Arc::new(image.clone()))
                    .unwrap();
                assert_eq!(keys(&db) as u64, lost - 1);
                assert_eq!(keys(&db) as u64, lost - 1, "a second look reads too");
                assert_eq!(db.info().unwrap().log_damage.map(|d| d.seq), Some(lost));
                assert!(!db.check_integrity().unwrap().is_ok());
            }
            (Ok(db), false) => assert_eq!(keys(&db) as u64, lost - 1),
            (Ok(db), true) => panic!(
                "the open took the lost marker for the end of the log: {} of 700 commits",
                keys(&db)
            ),
            (Err(e), _) => panic!("marker {lost}: {e}"),
        }
    }
}

/// A marker page whose first sector (its header and first slots) is zeroed at rest, with
/// a whole group's worth of durable commits on the pages after it: its link to them is
/// gone with the header, but they are still found (pages whose headers verify at the
/// stream's next positions), so this is damage, not the end of the log (it was: 127 of
/// 700 durable commits came back, and no error).
#[test]
fn a_zeroed_first_sector_of_a_marker_page_before_a_later_group_is_an_error() {
    use capsuledb::storage::Storage;
    let (image, second) = crashed_after(700);
    image.write_at(second * PAGE, &[0u8; 512]).unwrap();
    // A read-only open (and so `check` and `salvage`) says so too: it read the 127
    // commits before the page and reported no damage, `check` said ok, and a salvage
    // listed nothing lost.
    let damage = refused_at_and_reported(&image, 128);
    assert!(damage.durable_seq >= 640 - 512, "{damage:?}");
}

/// Checks that a read-write open of `image` refuses it at commit `seq` (700 durable
/// commits were made), and that a read-only open reads the commits before it and
/// reports the damage, which `check` finds; returns that report.
fn refused_at_and_reported(
    image: &capsuledb::storage::SimStorage,
    seq: u64,
) -> capsuledb::LogDamage {
    match open_image(image) {
        Err(Error::LogCorrupted { seq: s, .. }) => assert_eq!(s, seq),
        Ok(db) => panic!(
            "the open took the damage for the end of the log: {} of 700 commits",
            keys(&db)
        ),
        Err(e) => panic!("unexpected error {e}"),
    }
    let db = Options::new()
        .random_seed(3)
        .read_only(true)
        .open_storage(std::sync::Arc::new(image.clone()))
        .unwrap();
    assert_eq!(keys(&db) as u64, seq - 1);
    let damage = db
        .info()
        .unwrap()
        .log_damage
        .expect("the damage is reported");
    assert_eq!(damage.seq, seq);
    assert!(!db.check_integrity().unwrap().is_ok());
    damage
}

/// Sixteen markers lost on one page (a zeroed stretch, nothing rebuilds them) and the
/// first sector of the next page (its header, so its link onward), with a later group's
/// durable commits on the pages after: the walk past the stop met the next page failing
/// its header and looked no further (the stop's own page verifies, so the search by
/// position was not made), and the open returned 48 of 700 durable commits, no error.
/// The next page holds this stream's markers at its position, so the pages after it are
/// found where the stream put them.
#[test]
fn lost_markers_before_a_page_whose_header_is_lost_are_an_error_after_a_crash() {
    use capsuledb::storage::Storage;
    let (image, second) = crashed_after(700);
    let first = MARKER_PAGE * PAGE + LOG_PAGE_HEADER_LEN as u64;
    image
        .write_at(first + 48 * MARKER_LEN as u64, &[0u8; 16 * MARKER_LEN])
        .unwrap();
    image.write_at(second * PAGE, &[0u8; 512]).unwrap();
    refused_at_and_reported(&image, 49);
}

/// A crashed run whose stream filled its marker page, and whose next page still holds a
/// header an earlier crashed run wrote at the same position (it verifies) over an empty
/// first slot: that header's link names a page the later run used for its proofs. The
/// open must not take the link as the stream's (a start writes the header and slot 0 in
/// one sector, so a header over an empty slot 0 is not this stream's): it zeroed the
/// linked page as the torn tail, and the next open found durable commits' proofs gone.
#[test]
fn a_leftover_marker_page_header_never_gets_a_live_page_zeroed() {
    use capsuledb::storage::Storage;
    let (image, second) = crashed_after(127);
    let bytes = image.view().unwrap().to_vec();
    let live = proof_offset_of(&bytes, 100) / PAGE;
    assert_ne!(live, second);
    write_marker_page_header(&image, second, live, 128);
    let db = open_image(&image).unwrap();
    assert_eq!(keys(&db), 127);
    drop(db);
    let db = open_image(&image).expect("the second open finds every durable commit");
    assert_eq!(keys(&db), 127);
}

/// One flipped bit in the header checksum of an exactly full last marker page, whose
/// next page was never started: the header is rebuilt (its `next_page` unconfirmed) and
/// the blank page it names is the end of the log, since no page of the file continues
/// the stream. Every commit is there (a read-write open refused the file with
/// `LogCorrupted`).
#[test]
fn a_flipped_header_checksum_of_a_full_last_marker_page_is_repaired() {
    // The next page as the writer left it (zeros), or holding what an earlier use of a
    // free page left there.
    for leftover in [None, Some(0xABu8)] {
        flipped_checksum_of_a_full_last_marker_page(leftover);
    }
}

fn flipped_checksum_of_a_full_last_marker_page(leftover: Option<u8>) {
    let slots = (PAGE - LOG_PAGE_HEADER_LEN as u64) / MARKER_LEN as u64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    {
        let db = Database::open(&path).unwrap();
        let mut c = db.connect();
        for i in 1..=slots {
            commit_key(&mut c, i);
        }
        drop(c);
        db.close().unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(MARKER_PAGE * PAGE) as usize] ^= 1;
    if let Some(b) = leftover {
        // The header's `next_page` (bytes 16..24 of the page).
        let at = (MARKER_PAGE * PAGE) as usize + 16;
        let next = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let page = next * PAGE as usize;
        if bytes.len() < page + PAGE as usize {
            bytes.resize(page + PAGE as usize, 0);
        }
        bytes[page..page + PAGE as usize].fill(b);
    }
    std::fs::write(&path, &bytes).unwrap();
    let db = Database::open(&path).unwrap_or_else(|e| panic!("{leftover:?}: {e}"));
    assert_eq!(keys(&db) as u64, slots);
    assert_eq!(db.stats().visible_seq, slots);
    let mut c = db.connect();
    for i in slots + 1..=slots + 200 {
        commit_key(&mut c, i);
    }
    drop(c);
    assert!(db.check_integrity().unwrap().is_ok());
    db.close().unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db) as u64, slots + 200);
}

/// A flipped bit in the header checksum of the tail marker page (acknowledged durable
/// commits above the durable bound on it), and a crash at every point of the open that
/// repairs it (the header rebuilt, a new next page named since the stored one is not
/// confirmed, the tail scrubbed): every crash leaves a file the next open repairs again,
/// with all 140 commits.
/// (When no page is free, the new next page lies past the file's old end: the open now
/// syncs that growth before writing the header naming it. That case needs the free set
/// held by a reader of another process and is not reached here.)
#[test]
fn a_crash_while_the_open_repairs_the_tail_page_header_loses_nothing() {
    use capsuledb::storage::SimStorage;
    let (image, second) = crashed_after_140_commits();
    image.flip_bit(second * PAGE, 0);
    let mut crashes = 0;
    // Every cut point of the open, and of the drop after it (which writes the durable
    // bound): the budget grows until both fit in it whole.
    for budget in 0u64.. {
        assert!(budget < 10_000, "the repairing open never completed");
        let mut completed = false;
        for seed in 0..6u64 {
            let sim: SimStorage = image.fork();
            sim.power_off_after(budget);
            let opened = open_image(&sim).map(drop);
            // The open and the drop after it both ran within the budget.
            completed |= sim.power_left().is_some_and(|left| left > 0);
            sim.crash(seed);
            if opened.is_err() {
                crashes += 1;
            }
            match open_image(&sim) {
                Ok(db) => assert_eq!(
                    keys(&db),
                    140,
                    "power off after {budget} operations, crash seed {seed}: commits lost"
                ),
                // The repair's own writes are crash-safe: a crash inside it leaves a
                // file the next open repairs again, never one it refuses.
                Err(e) => panic!("power off after {budget}, seed {seed}: {e}"),
            }
        }
        if completed {
            break;
        }
    }
    assert!(crashes > 0, "no crash happened inside the open");
}

/// The newest markers of a running writer lost from the file (a sector zeroed under it):
/// above the durable bound on disk, so the file alone takes the stop for the end of the
/// log, but the writer's own check knows those commits were acknowledged durable and
/// says a reopen would lose them (it said ok).
#[test]
fn a_writers_check_reports_acknowledged_commits_missing_from_the_log() {
    use capsuledb::storage::{SimStorage, Storage};
    use std::sync::Arc;
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(3)
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut c = db.connect();
    for i in 1..=20 {
        commit_key(&mut c, i);
    }
    assert!(db.check_integrity().unwrap().is_ok());
    // Markers 16 to 20 fill the page's second sector.
    assert_eq!(marker_offset(16), MARKER_PAGE * PAGE + 512);
    sim.write_at(MARKER_PAGE * PAGE + 512, &[0u8; 512]).unwrap();
    let report = db.check_integrity().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("commits up to 20 were acknowledged durable")),
        "{report:?}"
    );
}

/// A live reader that opened on a full marker page whose header checksum is damaged,
/// with the next page not yet started, follows the writer once it goes on (it stayed at
/// that state, with no error, until the writer's next checkpoint: it resumed on the full
/// page as if it were the next one, whose header then never verified).
#[test]
fn a_live_reader_goes_on_past_a_full_page_whose_header_checksum_flipped() {
    let slots = (PAGE - LOG_PAGE_HEADER_LEN as u64) / MARKER_LEN as u64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let writer = Database::open(&path).unwrap();
    let mut c = writer.connect();
    for i in 1..=slots {
        commit_key(&mut c, i);
    }
    // The page is full; its header's checksum (bytes 0..4) takes a flipped bit.
    flip_live(&path, MARKER_PAGE * PAGE + 1);
    let reader = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(keys(&reader), slots as usize);
    for i in slots + 1..=slots + 5 {
        commit_key(&mut c, i);
    }
    assert_eq!(
        keys(&reader),
        slots as usize + 5,
        "the reader stayed behind"
    );
    // The page it waited on is the log's, not a free one.
    let report = reader.check_integrity().unwrap();
    assert!(
        !report.problems.iter().any(|p| p.contains("used by")),
        "{report:?}"
    );
}
