//! What a damaged log's error says was durable (`Error::LogCorrupted::durable_seq`,
//! `LogDamage::lost`): never a commit nothing names, and as far as the markers of later
//! groups prove (`format-spec/log.md`, "Reading the stream", step 4).

use capsuledb::format::{Header, LOG_PAGE_HEADER_LEN, MARKER_LEN, PROOF_LEN, Proof};
use capsuledb::storage::{SimStorage, Storage};
use capsuledb::{Database, Error, Options};

const TABLE: &str = "t";
const PAGE: u64 = 4096;

/// Commit `i` of a fresh database: key `k{i}` (the first also creates the table).
fn commit_key(c: &mut capsuledb::Connection, i: u64) {
    let mut tx = c.begin().unwrap();
    if i == 1 {
        tx.create_table(TABLE).unwrap();
    }
    tx.put(TABLE, format!("k{i:03}").as_bytes(), b"v").unwrap();
    assert_eq!(tx.commit().unwrap().seq, i);
}

fn keys(db: &Database) -> usize {
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    tx.iter(TABLE).unwrap().count()
}

fn open_image(image: &SimStorage) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(3)
        .open_storage(std::sync::Arc::new(image.clone()))
}

/// The newest header of a file's bytes.
fn newest_header(bytes: &[u8]) -> Header {
    [0u32, 1]
        .into_iter()
        .filter_map(|copy| Header::decode(&bytes[(copy as usize) * PAGE as usize..], copy).ok())
        .max_by_key(|h| h.generation)
        .unwrap()
}

/// The open of `image` (see [`crashed_past_a_checkpoint`]) refuses commit 4 on, saying
/// that the later groups prove all but the last group or so durable.
fn refused_naming_the_later_groups(image: &SimStorage) {
    match open_image(image) {
        Err(Error::LogCorrupted {
            seq, durable_seq, ..
        }) => {
            assert_eq!(seq, 4);
            assert!(durable_seq >= 703 - 512 - 1, "durable_seq {durable_seq}");
        }
        Err(e) => panic!("expected LogCorrupted, got {e}"),
        Ok(_) => panic!("the damaged log opened"),
    }
}

/// The image a crash leaves after a checkpoint at commit 3 and 700 durable commits after
/// it (none below the durable bound), with its newest header.
fn crashed_past_a_checkpoint() -> (SimStorage, Header) {
    let sim = SimStorage::new();
    let db = open_image(&sim).unwrap();
    let mut c = db.connect();
    for i in 1..=3 {
        commit_key(&mut c, i);
    }
    db.checkpoint().unwrap().unwrap();
    for i in 4..=703 {
        commit_key(&mut c, i);
    }
    let image = sim.fork();
    image.crash_losing_unsynced();
    drop(c);
    drop(db);
    let header = newest_header(&image.view().unwrap());
    assert_eq!(header.checkpoint_seq, 3);
    (image, header)
}

/// The log's start page damaged beyond repair right after a checkpoint, no commit after
/// it: the open refuses (the start page must read whatever was committed), and the error
/// claims no commit past the checkpoint durable (it named commit 4 durable, a commit
/// never made).
#[test]
fn a_damaged_start_page_after_a_checkpoint_proves_no_later_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    {
        let db = Database::open(&path).unwrap();
        let mut c = db.connect();
        for i in 1..=3u64 {
            commit_key(&mut c, i);
        }
        drop(c);
        db.checkpoint().unwrap().unwrap();
        db.close().unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let header = newest_header(&bytes);
    assert_eq!(header.checkpoint_seq, 3);
    let at = (header.marker_start_page * PAGE) as usize;
    bytes[at..at + LOG_PAGE_HEADER_LEN].fill(0xa5);
    std::fs::write(&path, &bytes).unwrap();
    match Database::open(&path) {
        Err(e @ Error::LogCorrupted { .. }) => {
            let Error::LogCorrupted {
                page,
                seq,
                durable_seq,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(
                (*page, *seq, *durable_seq),
                (header.marker_start_page, 4, 3)
            );
            assert!(e.to_string().contains("if any were made"), "{e}");
        }
        Err(e) => panic!("expected LogCorrupted, got {e}"),
        Ok(_) => panic!("a damaged start page opened"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was written");
    let db = Options::new().read_only(true).open(&path).unwrap();
    assert_eq!(keys(&db), 3);
    let damage = db.info().unwrap().log_damage.unwrap();
    assert_eq!(
        damage.lost(),
        "commits from 4 on, if any were made, are not proven durable"
    );
}

/// The start page's first sector lost after a crash, with 700 durable commits past the
/// checkpoint: the error names what the later pages prove durable (it said the file
/// proved none of them durable).
#[test]
fn a_lost_start_page_sector_reports_what_later_groups_prove() {
    let (image, header) = crashed_past_a_checkpoint();
    image
        .write_at(header.marker_start_page * PAGE, &[0u8; 512])
        .unwrap();
    refused_naming_the_later_groups(&image);
}

/// A committed capsule damaged after a crash, with 700 durable commits past it: a valid
/// marker proves commit 4 durable, and the later groups prove far more (the error said
/// "commits 4 to 4": the stop's own marker, which verifies, hid the later evidence).
#[test]
fn a_damaged_capsule_reports_what_later_groups_prove() {
    let (image, header) = crashed_past_a_checkpoint();
    let bytes = image.view().unwrap().to_vec();
    // Commit 4's marker, on the stream's start page (whose slot 0 is commit 1); its
    // proof names the capsule.
    let marker = (header.marker_start_page * PAGE) as usize + LOG_PAGE_HEADER_LEN + 3 * MARKER_LEN;
    let at = u64::from_le_bytes(bytes[marker + 8..marker + 16].try_into().unwrap()) as usize;
    let (proof, _) = Proof::decode(&bytes[at..at + PROOF_LEN]).unwrap();
    assert_eq!(proof.seq, 4);
    image.write_at(proof.capsule_offset + 40, &[0x5a]).unwrap();
    refused_naming_the_later_groups(&image);
}
