//! Which header copy an open starts from when one copy is blank: a creation's crash
//! (copy A blank beside a first-generation copy B) or damage (anything else), and the
//! open that completes such a creation.

use capsuledb::format::{HEADER_COPY_OFFSETS, HEADER_LEN, Header};
use capsuledb::{Database, Error};
use std::path::Path;

fn bytes_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn new_db(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("x.db");
    drop(Database::open(&path).unwrap());
    path
}

fn header_of(bytes: &[u8], copy: usize) -> Header {
    let off = HEADER_COPY_OFFSETS[copy] as usize;
    Header::decode(&bytes[off..off + HEADER_LEN], copy as u32).unwrap()
}

/// Opens `path` read-write, expects an error, and checks the file's bytes did not change.
fn open_err_untouched(path: &Path) -> Error {
    let before = bytes_of(path);
    let err = match Database::open(path) {
        Err(e) => e,
        Ok(_) => panic!("opening {} should fail", path.display()),
    };
    assert_eq!(before, bytes_of(path), "a refused open wrote to the file");
    err
}

/// Zeros the header copy `copy` of the file at `path`.
fn blank_copy(path: &Path, copy: usize) {
    let mut bytes = bytes_of(path);
    let at = HEADER_COPY_OFFSETS[copy] as usize;
    bytes[at..at + HEADER_LEN].fill(0);
    std::fs::write(path, &bytes).unwrap();
}

/// Commits `key` into table "t" (created if missing) and checkpoints: a new header.
fn put_and_checkpoint(path: &Path, key: &[u8]) {
    let db = Database::open(path).unwrap();
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    if !tx.table_exists("t").unwrap() {
        tx.create_table("t").unwrap();
    }
    tx.put("t", key, b"v").unwrap();
    tx.commit().unwrap();
    db.checkpoint().unwrap();
}

/// Zeros in copy B (generation 2, the first header after creation) beside copy A of
/// generation 1 are damage: a read-write open refuses, naming copy B's page. It took
/// them for a creation's crash and opened copy A's state, silently without every
/// commit the newer header held.
#[test]
fn a_blanked_newer_copy_b_is_damage_not_a_creation() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    put_and_checkpoint(&path, b"k1");
    let bytes = bytes_of(&path);
    let (a, b) = (header_of(&bytes, 0), header_of(&bytes, 1));
    assert_eq!(
        (a.generation, b.generation),
        (1, 2),
        "the checkpoint wrote copy B"
    );
    blank_copy(&path, 1);
    match open_err_untouched(&path) {
        Error::Corrupted { page, .. } => {
            assert_eq!(page, HEADER_COPY_OFFSETS[1] / u64::from(b.page_size))
        }
        e => panic!("expected Corrupted naming copy B, got {e:?}"),
    }
}

/// A blank copy A beside copy B of generation 1 is a creation's crash (copy B is made
/// durable first): the open succeeds and writes copy A, so the next header goes to
/// copy B as after a whole creation, and zeros later found in copy A beside that newer
/// copy B are refused as damage. (Without the write, the next header went to copy A,
/// and a blanked copy A then read as the creation's crash: an earlier state.)
#[test]
fn a_creation_that_lost_copy_a_is_completed_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_db(dir.path());
    blank_copy(&path, 0);
    put_and_checkpoint(&path, b"k1");
    let bytes = bytes_of(&path);
    let (a, b) = (header_of(&bytes, 0), header_of(&bytes, 1));
    assert_eq!((a.generation, b.generation), (1, 2));
    blank_copy(&path, 0);
    match open_err_untouched(&path) {
        Error::Corrupted { .. } => {}
        e => panic!("expected Corrupted, got {e:?}"),
    }
}
